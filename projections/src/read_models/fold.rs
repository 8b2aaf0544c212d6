//! How a page of events changes the read models, inside the caller's
//! transaction.
//!
//! New rows are buffered and written with multi-row inserts, and exits and
//! treatments set on them afterwards. Status spells and service periods
//! depend on every status or service event of the participant in
//! valid-time order (a late record may fall between two earlier ones), so
//! they are derived again from the participants' rows in `events` once per
//! page, set-wise, for the participants whose statuses or services changed
//! ([`derived`]). A retraction marks the event retracted and derives all of the
//! participant's rows again from the events left. An erasure deletes all
//! of the participant's rows.

use chrono::SecondsFormat;
use sqlx::AnyConnection;
use utfall_events::{EventData, StoredEvent};

use std::collections::BTreeSet;

use super::derived::{self, Participant, ParticipantUpdates};
use super::rows::{Rows, code};
use super::schema::PARTICIPANT_TABLES;
use crate::ProjectionError;

// Statements that bind a nullable float are not kept prepared: sqlx 0.9's
// database-independent driver sends a NULL f64 as a 4-byte float, and
// PostgreSQL would keep that parameter type for the later non-NULL values.

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
    updates: ParticipantUpdates,
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
            updates: ParticipantUpdates::default(),
        }
    }

    /// Writes the buffered rows and the updates of them, so that reads see
    /// them.
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
        self.updates.apply(conn).await
    }

    /// Writes everything and refreshes derived rows; call once per page.
    pub async fn finish(mut self, conn: &mut AnyConnection) -> Result<(), ProjectionError> {
        self.flush(conn).await?;
        derived::refresh_statuses(conn, &std::mem::take(&mut self.statuses)).await?;
        derived::refresh_services(conn, &std::mem::take(&mut self.services)).await
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
            derived::delete(conn, table, &who.0, &[&who.1]).await?;
        }
        Ok(())
    }

    /// Applies an event to every read model but `events`: new rows,
    /// exits and treatments are buffered, status and service changes mark
    /// the participant for a refresh, and programme events run at once.
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
            EventData::ParticipantExited(x) => {
                let who = (who.program.clone(), who.participant().to_string());
                self.updates.exit(who, on, code(&x.reason));
                Ok(())
            }
            EventData::PsychiatricTreatmentStarted(_) => {
                let who = (who.program.clone(), who.participant().to_string());
                self.updates.treatment(who, on);
                Ok(())
            }
            body => {
                // A programme event: what is buffered is written first.
                self.flush(conn).await?;
                update(conn, who, &on, body).await
            }
        }
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

/// Applies a programme event (definition, targets, retention), statement by
/// statement: they are few.
async fn update(conn: &mut AnyConnection, who: &Who, on: &str, body: &EventData) -> Result<(), ProjectionError> {
    let program = who.program.as_str();
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
        EventData::ParticipantEnrolled(_)
        | EventData::ParticipantExited(_)
        | EventData::PsychiatricTreatmentStarted(_)
        | EventData::ContactRecorded(_)
        | EventData::MeasurementRecorded(_)
        | EventData::StatusChanged(_)
        | EventData::ServiceStarted(_)
        | EventData::ServiceEnded(_)
        | EventData::ConsentRecorded(_)
        | EventData::EventRetracted(_)
        | EventData::ParticipantErased(_)
        | EventData::IndicatorDefined(_) => {}
    }
    Ok(())
}

/// Derives every read-model row of the participant again from their events
/// still in force (after a retraction).
async fn refold(conn: &mut AnyConnection, who: &Who) -> Result<(), ProjectionError> {
    for table in PARTICIPANT_TABLES {
        derived::delete(conn, table, &who.program, &[who.participant()]).await?;
    }
    let mut page = PageFold::new();
    let mut events = derived::events_in_force(conn, &who.program, &[who.participant()], "").await?;
    for (on, body) in events.remove(who.participant()).unwrap_or_default() {
        page.derive(conn, who, on, &body).await?;
    }
    page.finish(conn).await
}
