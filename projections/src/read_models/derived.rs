//! Rows derived from several of a participant's events: status spells,
//! service periods, and the participant's current status, exit and first
//! psychiatric treatment. They are written set-wise, per page and per
//! programme: one read of the affected participants' events, one delete and
//! multi-row inserts, and one `UPDATE … FROM (VALUES …)` per chunk of
//! participants, instead of a few statements per participant.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::{AnyConnection, Row};
use utfall_events::EventData;
use utfall_events::vocabulary::{OutcomeGroup, Status};

use super::rows::{Cell, Placeholders, Rows, bind, code};
use crate::ProjectionError;

/// A participant: (programme, pseudonym).
pub type Participant = (String, String);

/// Participants per statement: their pseudonyms are bound one parameter
/// each, and an update binds a few more per participant.
const CHUNK: usize = 500;

/// Items of participants grouped by programme, in chunks of at most
/// [`CHUNK`] participants.
fn chunks<'a, V>(items: impl IntoIterator<Item = (&'a Participant, V)>) -> Vec<(&'a str, Vec<(&'a str, V)>)> {
    let mut by_program: BTreeMap<&str, Vec<(&str, V)>> = BTreeMap::new();
    for ((program, participant), value) in items {
        by_program.entry(program).or_default().push((participant, value));
    }
    let mut chunked = Vec::new();
    for (program, mut items) in by_program {
        while !items.is_empty() {
            let rest = items.split_off(CHUNK.min(items.len()));
            chunked.push((program, std::mem::replace(&mut items, rest)));
        }
    }
    chunked
}

/// The pseudonyms of a chunk.
fn pseudonyms<'a, V>(chunk: &[(&'a str, V)]) -> Vec<&'a str> {
    chunk.iter().map(|(participant, _)| *participant).collect()
}

/// The events still in force of some participants of one programme, in log
/// order, as (date, body) per participant. `types` is one of the fixed
/// filters of this module, never input.
pub async fn events_in_force(
    conn: &mut AnyConnection,
    program: &str,
    participants: &[&str],
    types: &str,
) -> Result<HashMap<String, Vec<(String, EventData)>>, ProjectionError> {
    let mut p = Placeholders::new(conn);
    let sql = format!(
        "SELECT participant, type, occurred_on, data FROM events
         WHERE program = {} AND participant IN ({}) AND retracted = {} {types} ORDER BY position",
        p.one(),
        p.list(participants.len()),
        p.one()
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false).bind(program);
    for participant in participants {
        query = query.bind(*participant);
    }
    let rows = query.bind(false).fetch_all(&mut *conn).await?;
    let mut events: HashMap<String, Vec<(String, EventData)>> = HashMap::new();
    for row in rows {
        let participant: String = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let on: String = row.try_get(2)?;
        let data: String = row.try_get(3)?;
        let data = serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
        let body = EventData::from_wire(&kind, data)
            .map_err(|(field, message)| ProjectionError::Corrupt(format!("{field}: {message}")))?;
        events.entry(participant).or_default().push((on, body));
    }
    Ok(events)
}

/// Deletes the rows of `table` of some participants of one programme.
/// `table` is one of the read models' fixed names.
pub async fn delete(
    conn: &mut AnyConnection,
    table: &str,
    program: &str,
    participants: &[&str],
) -> Result<(), ProjectionError> {
    let mut p = Placeholders::new(conn);
    let sql = format!(
        "DELETE FROM {table} WHERE program = {} AND participant IN ({})",
        p.one(),
        p.list(participants.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false).bind(program);
    for participant in participants {
        query = query.bind(*participant);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Sets columns of `participants` rows of one programme from `values`, one
/// row per participant with the pseudonym first. `set` names the columns
/// from `v.column2` on (the names `VALUES` gives in both databases).
async fn update_participants(
    conn: &mut AnyConnection,
    program: &str,
    set: &str,
    values: Vec<Vec<Cell>>,
) -> Result<(), ProjectionError> {
    let Some(width) = values.first().map(Vec::len) else {
        return Ok(());
    };
    let mut p = Placeholders::new(conn);
    let rows: Vec<String> = values.iter().map(|_| format!("({})", p.list(width))).collect();
    let sql = format!(
        "UPDATE participants SET {set} FROM (VALUES {}) AS v
         WHERE participants.program = {} AND participants.participant = v.column1",
        rows.join(", "),
        p.one()
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for cell in values.into_iter().flatten() {
        query = bind(query, cell);
    }
    query.bind(program).execute(&mut *conn).await?;
    Ok(())
}

/// Derives the status spells and current status of `who` again.
pub async fn refresh_statuses(conn: &mut AnyConnection, who: &BTreeSet<Participant>) -> Result<(), ProjectionError> {
    for (program, chunk) in chunks(who.iter().map(|p| (p, ()))) {
        let participants = pseudonyms(&chunk);
        let mut events = events_in_force(conn, program, &participants, "AND type = 'status_changed'").await?;
        delete(conn, "status_spells", program, &participants).await?;
        let mut spells = Rows::new(
            "status_spells",
            &[
                "program",
                "participant",
                "status",
                "outcome_group",
                "from_on",
                "to_on",
                "hours_per_week",
                "pathway",
            ],
        );
        let mut current = Vec::with_capacity(participants.len());
        for participant in &participants {
            let mut statuses: Vec<(String, Status, Option<f64>, Option<String>)> = events
                .remove(*participant)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(on, body)| match body {
                    EventData::StatusChanged(s) => {
                        Some((on, s.status, s.hours_per_week, s.pathway.as_ref().map(code)))
                    }
                    _ => None,
                })
                .collect();
            // Valid-time order; same-day changes keep their log order (stable sort).
            statuses.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (from_on, status, hours, pathway)) in statuses.iter().enumerate() {
                spells.push(vec![
                    program.into(),
                    (*participant).into(),
                    code(status).into(),
                    code(&status.outcome_group()).into(),
                    from_on.as_str().into(),
                    statuses.get(i + 1).map(|next| next.0.clone()).into(),
                    (*hours).into(),
                    pathway.clone().into(),
                ]);
            }
            let first = |group: OutcomeGroup| {
                statuses
                    .iter()
                    .find(|s| s.1.outcome_group() == group)
                    .map(|s| s.0.clone())
            };
            let last = statuses.last();
            current.push(vec![
                (*participant).into(),
                last.map(|s| code(&s.1)).into(),
                last.map(|s| code(&s.1.outcome_group())).into(),
                last.map(|s| s.0.clone()).into(),
                first(OutcomeGroup::Job).into(),
                first(OutcomeGroup::Education).into(),
            ]);
        }
        spells.flush(conn).await?;
        update_participants(
            conn,
            program,
            "current_status = v.column2, current_outcome_group = v.column3, current_status_since = v.column4,
             first_job_on = v.column5, first_education_on = v.column6",
            current,
        )
        .await?;
    }
    Ok(())
}

/// Derives the service periods of `who` again: an end closes the latest
/// open period of the same service.
pub async fn refresh_services(conn: &mut AnyConnection, who: &BTreeSet<Participant>) -> Result<(), ProjectionError> {
    for (program, chunk) in chunks(who.iter().map(|p| (p, ()))) {
        let participants = pseudonyms(&chunk);
        let mut events = events_in_force(
            conn,
            program,
            &participants,
            "AND type IN ('service_started', 'service_ended')",
        )
        .await?;
        delete(conn, "services", program, &participants).await?;
        let mut rows = Rows::new("services", &["program", "participant", "service", "from_on", "to_on"]);
        for participant in &participants {
            let mut changes = events.remove(*participant).unwrap_or_default();
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
            for (service, from_on, to_on) in periods {
                rows.push(vec![
                    program.into(),
                    (*participant).into(),
                    service.into(),
                    from_on.into(),
                    to_on.into(),
                ]);
            }
        }
        rows.flush(conn).await?;
    }
    Ok(())
}

/// Exits and first psychiatric treatments of a page, kept until its rows
/// are written and then set on the participants' rows together.
#[derive(Default)]
pub struct ParticipantUpdates {
    /// The last exit in log order wins, as it would one statement at a time.
    exits: BTreeMap<Participant, (String, String)>,
    /// The earliest treatment date of the page.
    treatments: BTreeMap<Participant, String>,
}

impl ParticipantUpdates {
    pub fn exit(&mut self, who: Participant, on: String, reason: String) {
        self.exits.insert(who, (on, reason));
    }

    pub fn treatment(&mut self, who: Participant, on: String) {
        let earliest = self.treatments.entry(who).or_insert_with(|| on.clone());
        if on < *earliest {
            *earliest = on;
        }
    }

    /// Writes the updates kept; the participants' rows must be written.
    pub async fn apply(&mut self, conn: &mut AnyConnection) -> Result<(), ProjectionError> {
        let exits = std::mem::take(&mut self.exits);
        for (program, chunk) in chunks(&exits) {
            let values = chunk
                .into_iter()
                .map(|(p, (on, reason))| vec![p.into(), on.as_str().into(), reason.as_str().into()])
                .collect();
            update_participants(conn, program, "exited_on = v.column2, exit_reason = v.column3", values).await?;
        }
        let treatments = std::mem::take(&mut self.treatments);
        for (program, chunk) in chunks(&treatments) {
            let values = chunk.into_iter().map(|(p, on)| vec![p.into(), on.as_str().into()]).collect();
            update_participants(
                conn,
                program,
                "psychiatric_treatment_on = CASE
                   WHEN participants.psychiatric_treatment_on IS NULL OR participants.psychiatric_treatment_on > v.column2
                   THEN v.column2 ELSE participants.psychiatric_treatment_on END",
                values,
            )
            .await?;
        }
        Ok(())
    }
}
