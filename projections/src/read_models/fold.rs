//! How a page of events changes the read models, inside the caller's
//! transaction.
//!
//! New rows are buffered and written with multi-row inserts. Status spells
//! and service periods depend on every status or service event of the
//! participant in valid-time order (a late record may fall between two
//! earlier ones), so they are derived again from the participant's rows in
//! `events` once per page for each participant whose statuses or services
//! changed. A retraction marks the event retracted and derives all of the
//! participant's rows again from the events left. An erasure deletes all
//! of the participant's rows.

use chrono::SecondsFormat;
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use utfall_events::vocabulary::{OutcomeGroup, Status};
use utfall_events::{EventData, StoredEvent};

use std::collections::BTreeSet;

use super::rows::Rows;
use super::schema::PARTICIPANT_TABLES;
use crate::ProjectionError;

// Statements that bind a nullable float are not kept prepared: sqlx 0.9's
// database-independent driver sends a NULL f64 as a 4-byte float, and
// PostgreSQL would keep that parameter type for the later non-NULL values.

type Participant = (String, String);

/// The fold of one page: buffered rows and the participants whose derived
/// rows must be refreshed before the page commits.
pub struct PageFold {
    events: Rows,
    participants: Rows,
    contacts: Rows,
    measurements: Rows,
    scores: Rows,
    statuses: BTreeSet<Participant>,
    services: BTreeSet<Participant>,
}

impl PageFold {
    pub fn new() -> Self {
        Self {
            events: Rows::new(
                "events",
                &[
                    "position",
                    "event_id",
                    "program",
                    "participant",
                    "version",
                    "type",
                    "occurred_on",
                    "recorded_at",
                    "recorded_by",
                    "retracted",
                    "data",
                ],
            ),
            participants: Rows::new(
                "participants",
                &[
                    "program",
                    "participant",
                    "enrolled_on",
                    "birth_year",
                    "gender",
                    "referral_source",
                    "target_groups",
                    "income_source",
                    "prior_psychiatric_diagnosis",
                    "physical_challenges",
                    "consultant",
                ],
            ),
            contacts: Rows::new(
                "contacts",
                &[
                    "program",
                    "participant",
                    "occurred_on",
                    "kind",
                    "staff_role",
                    "attended",
                    "minutes",
                ],
            ),
            measurements: Rows::new(
                "measurements",
                &[
                    "program",
                    "participant",
                    "instrument",
                    "wave",
                    "occurred_on",
                    "item",
                    "score",
                ],
            ),
            scores: Rows::new(
                "measurement_scores",
                &[
                    "program",
                    "participant",
                    "instrument",
                    "wave",
                    "occurred_on",
                    "composite",
                ],
            ),
            statuses: BTreeSet::new(),
            services: BTreeSet::new(),
        }
    }

    /// Writes the buffered rows, so that reads see them.
    async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), ProjectionError> {
        for rows in [
            &mut self.events,
            &mut self.participants,
            &mut self.contacts,
            &mut self.measurements,
            &mut self.scores,
        ] {
            rows.flush(conn).await?;
        }
        Ok(())
    }

    /// Writes everything and refreshes derived rows; call once per page.
    pub async fn finish(mut self, conn: &mut AnyConnection) -> Result<(), ProjectionError> {
        self.flush(conn).await?;
        for (program, participant) in std::mem::take(&mut self.statuses) {
            refresh_statuses(
                conn,
                &Who {
                    program,
                    participant: Some(participant),
                },
            )
            .await?;
        }
        for (program, participant) in std::mem::take(&mut self.services) {
            refresh_services(
                conn,
                &Who {
                    program,
                    participant: Some(participant),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Records the event in `events` and applies it to the other read models.
    pub async fn apply(&mut self, conn: &mut AnyConnection, stored: &StoredEvent) -> Result<(), ProjectionError> {
        let e = &stored.event;
        if let (EventData::ParticipantErased(_), Some(participant)) = (&e.body, &e.participant) {
            return self.erase(conn, (e.program.to_string(), participant.to_string())).await;
        }
        self.events.push(vec![
            (stored.position as i64).into(),
            e.event_id.to_string().into(),
            e.program.to_string().into(),
            e.participant.as_ref().map(ToString::to_string).into(),
            (e.version as i64).into(),
            e.body.type_name().into(),
            e.occurred_on.to_string().into(),
            e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true).into(),
            e.recorded_by.as_ref().map(ToString::to_string).into(),
            false.into(),
            e.body.data_json().into(),
        ]);
        let who = Who {
            program: e.program.to_string(),
            participant: e.participant.as_ref().map(ToString::to_string),
        };
        let on = e.occurred_on.to_string();
        match &e.body {
            EventData::EventRetracted(r) => {
                // Rare: write what is buffered, then derive the participant again.
                self.flush(conn).await?;
                sqlx::query("UPDATE events SET retracted = $1 WHERE event_id = $2")
                    .bind(true)
                    .bind(r.event_id.to_string())
                    .execute(&mut *conn)
                    .await?;
                refold(conn, &who).await
            }
            body => self.derive(conn, &who, on, body).await,
        }
    }

    /// Removes every row of an erased participant, their erasure included:
    /// nothing of them is kept (the log keeps the erasure).
    async fn erase(&mut self, conn: &mut AnyConnection, who: Participant) -> Result<(), ProjectionError> {
        self.flush(conn).await?;
        self.statuses.remove(&who);
        self.services.remove(&who);
        if conn.backend_name() == "SQLite" {
            // Deleted rows are overwritten, not left in free pages.
            sqlx::query("PRAGMA secure_delete = ON").execute(&mut *conn).await?;
        }
        for table in PARTICIPANT_TABLES.iter().chain(&["events"]) {
            let sql = format!("DELETE FROM {table} WHERE program = $1 AND participant = $2");
            // `table` is one of the fixed names above.
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&who.0)
                .bind(&who.1)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Applies an event to every read model but `events`: new rows are
    /// buffered, status and service changes mark the participant for a
    /// refresh, and updates of existing rows run at once.
    async fn derive(
        &mut self,
        conn: &mut AnyConnection,
        who: &Who,
        on: String,
        body: &EventData,
    ) -> Result<(), ProjectionError> {
        match body {
            EventData::ParticipantEnrolled(p) => {
                let groups = p
                    .target_groups
                    .as_ref()
                    .map(|g| serde_json::to_string(g).unwrap_or_default());
                self.participants.push(vec![
                    who.program.clone().into(),
                    who.participant().into(),
                    on.into(),
                    p.birth_year.map(i64::from).into(),
                    p.gender.as_ref().map(code).into(),
                    p.referral_source.as_ref().map(|c| c.as_str().to_string()).into(),
                    groups.into(),
                    p.income_source.as_ref().map(|c| c.as_str().to_string()).into(),
                    p.prior_psychiatric_diagnosis.into(),
                    p.physical_challenges.into(),
                    p.consultant.as_ref().map(ToString::to_string).into(),
                ]);
                Ok(())
            }
            EventData::ContactRecorded(c) => {
                self.contacts.push(vec![
                    who.program.clone().into(),
                    who.participant().into(),
                    on.into(),
                    code(&c.kind).into(),
                    c.staff_role.as_ref().map(code).into(),
                    c.attended.into(),
                    c.minutes.map(i64::from).into(),
                ]);
                Ok(())
            }
            EventData::MeasurementRecorded(m) => {
                let instrument = code(&m.instrument);
                let wave = m.wave.map(i64::from);
                for (item, score) in &m.scores {
                    self.measurements.push(vec![
                        who.program.clone().into(),
                        who.participant().into(),
                        instrument.clone().into(),
                        wave.into(),
                        on.clone().into(),
                        item.as_str().into(),
                        (*score).into(),
                    ]);
                }
                let composite = m.scores.values().sum::<f64>() / m.scores.len().max(1) as f64;
                self.scores.push(vec![
                    who.program.clone().into(),
                    who.participant().into(),
                    instrument.into(),
                    wave.into(),
                    on.into(),
                    composite.into(),
                ]);
                Ok(())
            }
            EventData::StatusChanged(_) => {
                self.statuses
                    .insert((who.program.clone(), who.participant().to_string()));
                Ok(())
            }
            EventData::ServiceStarted(_) | EventData::ServiceEnded(_) => {
                self.services
                    .insert((who.program.clone(), who.participant().to_string()));
                Ok(())
            }
            body => {
                // Updates of existing rows: the rows they touch must be written.
                self.flush(conn).await?;
                update(conn, who, &on, body).await
            }
        }
    }
}

/// The wire name of a closed value (`employed`, `coop_wonca`, `>=` …).
fn code<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => other.map(|v| v.to_string()).unwrap_or_default(),
    }
}

struct Who {
    program: String,
    participant: Option<String>,
}

impl Who {
    fn participant(&self) -> &str {
        self.participant.as_deref().unwrap_or_default()
    }
}

/// Applies an event that changes rows already there (programmes, targets,
/// exits, psychiatric treatment), statement by statement.
async fn update(conn: &mut AnyConnection, who: &Who, on: &str, body: &EventData) -> Result<(), ProjectionError> {
    let (program, participant) = (who.program.as_str(), who.participant());
    match body {
        EventData::ProgramDefined(p) => {
            sqlx::query(
                "INSERT INTO programs (program, name, organisation, country, starts_on, ends_on, planned_participants,
                                       budget_amount, budget_currency)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (program) DO UPDATE SET name = excluded.name, organisation = excluded.organisation,
                   country = excluded.country, starts_on = excluded.starts_on, ends_on = excluded.ends_on,
                   planned_participants = excluded.planned_participants, budget_amount = excluded.budget_amount,
                   budget_currency = excluded.budget_currency",
            )
            .persistent(false)
            .bind(program)
            .bind(p.name.as_str())
            .bind(p.organisation.as_str())
            .bind(p.country.as_str())
            .bind(p.starts_on.to_string())
            .bind(p.ends_on.map(|d| d.to_string()))
            .bind(p.planned_participants.map(i64::from))
            .bind(p.budget.as_ref().map(|b| b.amount))
            .bind(p.budget.as_ref().map(|b| b.currency.clone()))
            .execute(&mut *conn)
            .await?;
        }
        EventData::TargetsSet(t) => {
            sqlx::query("DELETE FROM targets WHERE program = $1")
                .bind(program)
                .execute(&mut *conn)
                .await?;
            for target in &t.targets {
                sqlx::query("INSERT INTO targets (program, metric, op, value, set_on) VALUES ($1, $2, $3, $4, $5)")
                    .bind(program)
                    .bind(code(&target.metric))
                    .bind(code(&target.op))
                    .bind(target.value)
                    .bind(on)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        EventData::RetentionSet(r) => {
            sqlx::query(
                "INSERT INTO retention_rules (program, months_after_exit, set_on) VALUES ($1, $2, $3)
                 ON CONFLICT (program) DO UPDATE SET months_after_exit = excluded.months_after_exit,
                   set_on = excluded.set_on",
            )
            .bind(program)
            .bind(i64::from(r.months_after_exit))
            .bind(on)
            .execute(&mut *conn)
            .await?;
        }
        EventData::PsychiatricTreatmentStarted(_) => {
            sqlx::query(
                "UPDATE participants SET psychiatric_treatment_on =
                   CASE WHEN psychiatric_treatment_on IS NULL OR psychiatric_treatment_on > $1 THEN $1
                        ELSE psychiatric_treatment_on END
                 WHERE program = $2 AND participant = $3",
            )
            .bind(on)
            .bind(program)
            .bind(participant)
            .execute(&mut *conn)
            .await?;
        }
        EventData::ParticipantExited(x) => {
            sqlx::query(
                "UPDATE participants SET exited_on = $1, exit_reason = $2 WHERE program = $3 AND participant = $4",
            )
            .bind(on)
            .bind(code(&x.reason))
            .bind(program)
            .bind(participant)
            .execute(&mut *conn)
            .await?;
        }
        EventData::ParticipantEnrolled(_)
        | EventData::ContactRecorded(_)
        | EventData::MeasurementRecorded(_)
        | EventData::StatusChanged(_)
        | EventData::ServiceStarted(_)
        | EventData::ServiceEnded(_)
        | EventData::ConsentRecorded(_)
        | EventData::EventRetracted(_)
        | EventData::ParticipantErased(_) => {}
    }
    Ok(())
}

/// The participant's events still in force, in log order, as (date, body).
async fn events_in_force(
    conn: &mut AnyConnection,
    who: &Who,
    types: &str,
) -> Result<Vec<(String, EventData)>, ProjectionError> {
    // `types` is one of the fixed filters below, never input.
    let sql = format!(
        "SELECT type, occurred_on, data FROM events
         WHERE program = $1 AND participant = $2 AND retracted = $3 {types} ORDER BY position"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(who.program.as_str())
        .bind(who.participant())
        .bind(false)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get(0)?;
            let on: String = row.try_get(1)?;
            let data: String = row.try_get(2)?;
            let data = serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
            let body = EventData::from_wire(&kind, data)
                .map_err(|(field, message)| ProjectionError::Corrupt(format!("{field}: {message}")))?;
            Ok((on, body))
        })
        .collect()
}

/// Derives the participant's status spells and current status again.
async fn refresh_statuses(conn: &mut AnyConnection, who: &Who) -> Result<(), ProjectionError> {
    let mut statuses: Vec<(String, Status, Option<f64>, Option<String>)> =
        events_in_force(conn, who, "AND type = 'status_changed'")
            .await?
            .into_iter()
            .filter_map(|(on, body)| match body {
                EventData::StatusChanged(s) => Some((on, s.status, s.hours_per_week, s.pathway.as_ref().map(code))),
                _ => None,
            })
            .collect();
    // Valid-time order; same-day changes keep their log order (stable sort).
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    let (program, participant) = (who.program.as_str(), who.participant());
    sqlx::query("DELETE FROM status_spells WHERE program = $1 AND participant = $2")
        .bind(program)
        .bind(participant)
        .execute(&mut *conn)
        .await?;
    for (i, (from_on, status, hours, pathway)) in statuses.iter().enumerate() {
        let to_on = statuses.get(i + 1).map(|next| next.0.clone());
        sqlx::query(
            "INSERT INTO status_spells (program, participant, status, outcome_group, from_on, to_on, hours_per_week, pathway)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .persistent(false)
        .bind(program)
        .bind(participant)
        .bind(code(status))
        .bind(code(&status.outcome_group()))
        .bind(from_on.as_str())
        .bind(to_on)
        .bind(*hours)
        .bind(pathway.clone())
        .execute(&mut *conn)
        .await?;
    }
    let first = |group: OutcomeGroup| {
        statuses
            .iter()
            .find(|s| s.1.outcome_group() == group)
            .map(|s| s.0.clone())
    };
    let current = statuses.last();
    sqlx::query(
        "UPDATE participants SET current_status = $1, current_outcome_group = $2, current_status_since = $3,
           first_job_on = $4, first_education_on = $5
         WHERE program = $6 AND participant = $7",
    )
    .bind(current.map(|s| code(&s.1)))
    .bind(current.map(|s| code(&s.1.outcome_group())))
    .bind(current.map(|s| s.0.clone()))
    .bind(first(OutcomeGroup::Job))
    .bind(first(OutcomeGroup::Education))
    .bind(program)
    .bind(participant)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Derives the participant's service periods again: an end closes the
/// latest open period of the same service.
async fn refresh_services(conn: &mut AnyConnection, who: &Who) -> Result<(), ProjectionError> {
    let mut changes = events_in_force(conn, who, "AND type IN ('service_started', 'service_ended')").await?;
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut periods: Vec<(String, String, Option<String>)> = Vec::new();
    for (on, body) in changes {
        match body {
            EventData::ServiceStarted(s) => periods.push((code(&s.service), on, None)),
            EventData::ServiceEnded(s) => {
                let service = code(&s.service);
                if let Some(open) = periods.iter_mut().rev().find(|p| p.0 == service && p.2.is_none()) {
                    open.2 = Some(on);
                }
            }
            _ => {}
        }
    }
    let (program, participant) = (who.program.as_str(), who.participant());
    sqlx::query("DELETE FROM services WHERE program = $1 AND participant = $2")
        .bind(program)
        .bind(participant)
        .execute(&mut *conn)
        .await?;
    for (service, from_on, to_on) in periods {
        sqlx::query("INSERT INTO services (program, participant, service, from_on, to_on) VALUES ($1, $2, $3, $4, $5)")
            .bind(program)
            .bind(participant)
            .bind(service)
            .bind(from_on)
            .bind(to_on)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Derives every read-model row of the participant again from their events
/// still in force (after a retraction).
async fn refold(conn: &mut AnyConnection, who: &Who) -> Result<(), ProjectionError> {
    for table in PARTICIPANT_TABLES {
        // Table names come from the fixed list in `schema`.
        let sql = format!("DELETE FROM {table} WHERE program = $1 AND participant = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(who.program.as_str())
            .bind(who.participant())
            .execute(&mut *conn)
            .await?;
    }
    let mut page = PageFold::new();
    for (on, body) in events_in_force(conn, who, "").await? {
        page.derive(conn, who, on, &body).await?;
    }
    page.finish(conn).await
}
