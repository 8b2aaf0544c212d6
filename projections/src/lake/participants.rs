//! What the lake projector derives per participant, so a query picks rows
//! by predicates instead of folding events: DESIGN's `participants` as
//! bitemporal versions (`participant_versions`), and each participant's
//! first and last measurement per instrument once measured twice
//! (`measurement_pairs`, what measurement change reads). When a page
//! brings a participant's facts, their versions are derived again
//! ([`versions`]) and the difference written: new versions, and in
//! `participant_voids` the ids of versions no longer so (Parquet files are
//! immutable; a merge drops voided rows together with their voids).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::{Deserialize, Serialize};
use utfall_events::StoredEvent;
use utfall_events::instrument::Instrument;
use utfall_events::vocabulary::{EventData, ExitReason, OutcomeGroup, Status};
use uuid::Uuid;

use super::manifest::Manifest;
use super::versions::{Fact, Fold, History, Kind, Retraction, Stored, Version, assign_ids, refold, versions};
use super::{batches, facts};
use crate::ProjectionError;

/// The versions of every participant's row.
pub const VERSIONS: &str = "participant_versions";
/// The versions of every participant's first and last measurement with an
/// instrument.
pub const PAIRS: &str = "measurement_pairs";
/// Ids of versions (of either table) that are no longer so.
pub const VOIDS: &str = "participant_voids";

fn date(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Date32, nullable)
}

fn time(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        nullable,
    )
}

/// The columns every versions table starts with.
fn validity(key: &[&str]) -> Vec<Field> {
    let mut fields = vec![Field::new("version", DataType::Int64, false)];
    fields.extend(key.iter().map(|k| Field::new(*k, DataType::Utf8, false)));
    fields.extend([
        date("valid_from", false),
        date("valid_to", true),
        time("recorded_from", false),
        time("recorded_to", true),
    ]);
    fields
}

pub fn versions_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let mut fields = validity(&["program", "participant"]);
    fields.extend([
        // The log position of the enrolment in force: its attributes are
        // read from `enrolments`, not copied into every version.
        Field::new("enrolment", DataType::Int64, false),
        date("enrolled_on", false),
        date("exited_on", true),
        text("exit_reason"),
        text("current_status"),
        text("current_outcome_group"),
        date("current_status_since", true),
        date("first_job_on", true),
        date("first_education_on", true),
        date("psychiatric_treatment_on", true),
    ]);
    Arc::new(Schema::new(fields))
}

pub fn pairs_schema() -> SchemaRef {
    let mut fields = validity(&["program", "participant", "instrument"]);
    fields.extend([
        Field::new("first_composite", DataType::Float64, false),
        Field::new("last_composite", DataType::Float64, false),
    ]);
    Arc::new(Schema::new(fields))
}

pub fn voids_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("version", DataType::Int64, false)]))
}

/// A participant's row after its validity.
#[derive(Clone, Copy, Debug, PartialEq)]
struct State {
    enrolment: u64,
    enrolled_on: i32,
    exit: Option<(i32, ExitReason)>,
    status: Option<(i32, Status)>,
    first_job_on: Option<i32>,
    first_education_on: Option<i32>,
    psychiatric_treatment_on: Option<i32>,
}

/// The catalog's participant columns.
#[derive(Default)]
struct ParticipantFold {
    enrolment: Option<(u64, i32)>,
    exit: Option<(u64, i32, ExitReason)>,
    status: Option<(i32, Status)>,
    first_job_on: Option<i32>,
    first_education_on: Option<i32>,
    psychiatric_treatment_on: Option<i32>,
}

impl Fold for ParticipantFold {
    type State = State;

    fn add(&mut self, fact: &Fact) {
        let day = fact.occurred_on;
        match fact.kind {
            // The latest enrolment and exit by log position count.
            Kind::Enrolment if self.enrolment.is_none_or(|(p, _)| fact.position > p) => {
                self.enrolment = Some((fact.position, day));
            }
            Kind::Exit(reason) if self.exit.is_none_or(|(p, ..)| fact.position > p) => {
                self.exit = Some((fact.position, day, reason));
            }
            Kind::Status(status) => {
                self.status = Some((day, status));
                match status.outcome_group() {
                    OutcomeGroup::Job => _ = self.first_job_on.get_or_insert(day),
                    OutcomeGroup::Education => _ = self.first_education_on.get_or_insert(day),
                    _ => {}
                }
            }
            Kind::Psychiatric => _ = self.psychiatric_treatment_on.get_or_insert(day),
            _ => {}
        }
    }

    fn state(&self) -> Option<State> {
        let (enrolment, enrolled_on) = self.enrolment?;
        Some(State {
            enrolment,
            enrolled_on,
            exit: self.exit.map(|(_, day, reason)| (day, reason)),
            status: self.status,
            first_job_on: self.first_job_on,
            first_education_on: self.first_education_on,
            psychiatric_treatment_on: self.psychiatric_treatment_on,
        })
    }
}

/// A measurement's place in measurement change's order: by date, then
/// wave (none last), then composite.
type Ordered = (i32, Option<i64>, f64);

fn precedes(a: &Ordered, b: &Ordered) -> bool {
    // Composites are means of scores from 1 to 5: positive, so their bits
    // order as their values do.
    (a.0, a.1.is_none(), a.1, a.2.to_bits()) < (b.0, b.1.is_none(), b.1, b.2.to_bits())
}

/// The first and last composite of one instrument's measurements, once
/// there are two.
#[derive(Default)]
struct PairFold {
    measured: u8,
    first: Option<Ordered>,
    last: Option<Ordered>,
}

impl Fold for PairFold {
    type State = (f64, f64);

    fn add(&mut self, fact: &Fact) {
        if let Kind::Measurement(_, wave, composite) = fact.kind {
            let m = (fact.occurred_on, wave, composite);
            self.measured = self.measured.saturating_add(1);
            if self.first.is_none_or(|f| precedes(&m, &f)) {
                self.first = Some(m);
            }
            if self.last.is_none_or(|l| !precedes(&m, &l)) {
                self.last = Some(m);
            }
        }
    }

    fn state(&self) -> Option<(f64, f64)> {
        (self.measured >= 2).then_some((self.first?.2, self.last?.2))
    }
}

/// A participant version as the columns of [`versions_schema`].
#[derive(Serialize)]
struct Row<'a> {
    version: i64,
    program: &'a str,
    participant: &'a str,
    valid_from: i32,
    valid_to: Option<i32>,
    recorded_from: i64,
    recorded_to: Option<i64>,
    enrolment: u64,
    enrolled_on: i32,
    exited_on: Option<i32>,
    exit_reason: Option<ExitReason>,
    current_status: Option<Status>,
    current_outcome_group: Option<OutcomeGroup>,
    current_status_since: Option<i32>,
    first_job_on: Option<i32>,
    first_education_on: Option<i32>,
    psychiatric_treatment_on: Option<i32>,
}

impl<'a> Row<'a> {
    fn of(version: i64, program: &'a str, participant: &'a str, v: &Version<State>) -> Self {
        let (valid_from, valid_to, s) = v.tile;
        Row {
            version,
            program,
            participant,
            valid_from,
            valid_to,
            recorded_from: v.recorded_from,
            recorded_to: v.recorded_to,
            enrolment: s.enrolment,
            enrolled_on: s.enrolled_on,
            exited_on: s.exit.map(|e| e.0),
            exit_reason: s.exit.map(|e| e.1),
            current_status: s.status.map(|s| s.1),
            current_outcome_group: s.status.map(|s| s.1.outcome_group()),
            current_status_since: s.status.map(|s| s.0),
            first_job_on: s.first_job_on,
            first_education_on: s.first_education_on,
            psychiatric_treatment_on: s.psychiatric_treatment_on,
        }
    }
}

/// A measurement pair version as the columns of [`pairs_schema`].
#[derive(Serialize)]
struct PairRow<'a> {
    version: i64,
    program: &'a str,
    participant: &'a str,
    instrument: Instrument,
    valid_from: i32,
    valid_to: Option<i32>,
    recorded_from: i64,
    recorded_to: Option<i64>,
    first_composite: f64,
    last_composite: f64,
}

/// What one page changes: new versions of each table and voided ids.
pub struct Changes {
    pub versions: Option<RecordBatch>,
    pub pairs: Option<RecordBatch>,
    pub voids: Option<RecordBatch>,
}

type Participant = (String, String);

/// Every participant's facts and versions in force.
#[derive(Debug, Default)]
pub struct Participants {
    people: HashMap<Participant, Person>,
}

/// One participant's facts and versions in force: of their row, and of
/// their measurement series, one per instrument measured. Held for every
/// participant the lake has seen (217 k at 10 M events), so kept small: a
/// participant is measured on a few instruments, a list is enough.
#[derive(Debug, Default)]
struct Person {
    row: History,
    series: Vec<(Instrument, History)>,
}

impl Person {
    fn series(&mut self, instrument: Instrument) -> &mut History {
        let at = match self.series.iter().position(|(i, _)| *i == instrument) {
            Some(at) => at,
            None => {
                self.series.push((instrument, History::default()));
                self.series.len() - 1
            }
        };
        &mut self.series[at].1
    }
}

/// A page's facts and retractions of one participant.
#[derive(Default)]
struct Page {
    facts: Vec<Fact>,
    retractions: Vec<Retraction>,
}

impl Participants {
    /// Forgets erased participants.
    pub fn forget(&mut self, erased: &super::erasure::Erased) {
        self.people.retain(|who, _| !erased.contains(who));
    }

    /// Takes in a page's events; new versions get ids from `next_id` on.
    pub fn apply(&mut self, events: &[&StoredEvent], next_id: &mut i64) -> Result<Changes, ProjectionError> {
        // Participants in a fixed order, so ids do not depend on hashing.
        let mut page: BTreeMap<(&str, &str), Page> = BTreeMap::new();
        for stored in events {
            let event = &stored.event;
            let Some(participant) = &event.participant else {
                continue;
            };
            let recorded_at = event.recorded_at.timestamp_micros();
            let kind = match &event.body {
                EventData::ParticipantEnrolled(_) => Kind::Enrolment,
                EventData::ParticipantExited(d) => Kind::Exit(d.reason),
                EventData::StatusChanged(d) => Kind::Status(d.status),
                EventData::PsychiatricTreatmentStarted(_) => Kind::Psychiatric,
                EventData::MeasurementRecorded(d) => match facts::composite(&d.scores) {
                    Some(composite) => Kind::Measurement(d.instrument, d.wave.map(i64::from), composite),
                    None => continue,
                },
                EventData::EventRetracted(r) => {
                    page.entry((event.program.as_str(), participant.as_str()))
                        .or_default()
                        .retractions
                        .push(Retraction {
                            target: r.event_id,
                            recorded_at,
                        });
                    continue;
                }
                _ => continue,
            };
            page.entry((event.program.as_str(), participant.as_str()))
                .or_default()
                .facts
                .push(Fact {
                    event_id: event.event_id,
                    position: stored.position,
                    occurred_on: facts::days_since_epoch(event.occurred_on.0),
                    recorded_at,
                    kind,
                });
        }
        let (mut rows, mut pair_rows, mut voids) = (Vec::new(), Vec::new(), Vec::new());
        for (&(program, participant), page) in &page {
            let person = self
                .people
                .entry((program.to_string(), participant.to_string()))
                .or_default();
            let own = |f: &&Fact| !matches!(f.kind, Kind::Measurement(..));
            if page.facts.iter().any(|f| own(&f)) || !page.retractions.is_empty() {
                let history = &mut person.row;
                let before = versions::<ParticipantFold>(history);
                history.facts.extend(page.facts.iter().filter(own));
                history.retractions.extend(&page.retractions);
                refold::<ParticipantFold>(history, &before, next_id, &mut voids, |id, v| {
                    rows.push(Row::of(id, program, participant, v));
                });
            }
            // Retractions go to every measurement series the participant has.
            let mut instruments: BTreeSet<Instrument> = page
                .facts
                .iter()
                .filter_map(|f| match f.kind {
                    Kind::Measurement(instrument, ..) => Some(instrument),
                    _ => None,
                })
                .collect();
            if !page.retractions.is_empty() {
                instruments.extend(person.series.iter().map(|(i, _)| *i));
            }
            for instrument in instruments {
                let history = person.series(instrument);
                let before = versions::<PairFold>(history);
                history.facts.extend(
                    page.facts
                        .iter()
                        .filter(|f| matches!(f.kind, Kind::Measurement(i, ..) if i == instrument)),
                );
                history.retractions.extend(&page.retractions);
                refold::<PairFold>(history, &before, next_id, &mut voids, |id, v| {
                    let (valid_from, valid_to, (first, last)) = v.tile;
                    pair_rows.push(PairRow {
                        version: id,
                        program,
                        participant,
                        instrument,
                        valid_from,
                        valid_to,
                        recorded_from: v.recorded_from,
                        recorded_to: v.recorded_to,
                        first_composite: first,
                        last_composite: last,
                    });
                });
            }
        }
        let versions = (!rows.is_empty())
            .then(|| facts::serialize(&versions_schema(), &rows))
            .transpose()?;
        let pairs = (!pair_rows.is_empty())
            .then(|| facts::serialize(&pairs_schema(), &pair_rows))
            .transpose()?;
        let voids = (!voids.is_empty())
            .then(|| RecordBatch::try_new(voids_schema(), vec![Arc::new(Int64Array::from(voids))]))
            .transpose()?;
        Ok(Changes { versions, pairs, voids })
    }

    /// The folds as the lake commit `manifest` left them: the facts from
    /// the typed tables, the ids of the versions in force from the versions
    /// tables less `participant_voids`. Refuses a lake whose versions are
    /// not those its facts give.
    pub fn load(root: &Path, manifest: &Manifest) -> Result<Self, ProjectionError> {
        let mut this = Self::default();
        // Batch by batch, so loading holds one batch of a table, not the table.
        let batches = |table: &str| batches(manifest.files(root, table));
        for table in [
            "enrolments",
            "exits",
            "status_changes",
            "psychiatric_treatments",
            "measurement_records",
            "retractions",
        ] {
            for batch in batches(table) {
                let batch = batch?;
                let keys = Keys::of(&batch)?;
                for row in 0..batch.num_rows() {
                    let participant = keys.participant(row)?;
                    let recorded_at = keys.recorded_at.value(row);
                    let kind = match table {
                        "enrolments" => Kind::Enrolment,
                        "exits" => Kind::Exit(named(text(&batch, "reason")?.value(row))?),
                        "status_changes" => Kind::Status(named(text(&batch, "status")?.value(row))?),
                        "psychiatric_treatments" => Kind::Psychiatric,
                        "measurement_records" => {
                            let composite = column(&batch, "composite")?.as_primitive::<Float64Type>();
                            if composite.is_null(row) {
                                continue;
                            }
                            let wave = column(&batch, "wave")?.as_primitive::<Int64Type>();
                            Kind::Measurement(
                                named(text(&batch, "instrument")?.value(row))?,
                                (!wave.is_null(row)).then(|| wave.value(row)),
                                composite.value(row),
                            )
                        }
                        _ => {
                            let target = uuid(text(&batch, "retracted_event_id")?.value(row))?;
                            this.people
                                .entry(participant)
                                .or_default()
                                .row
                                .retractions
                                .push(Retraction { target, recorded_at });
                            continue;
                        }
                    };
                    let fact = Fact {
                        event_id: uuid(keys.event_id.value(row))?,
                        position: keys.position.value(row) as u64,
                        occurred_on: keys.occurred_on.value(row),
                        recorded_at,
                        kind,
                    };
                    let person = this.people.entry(participant).or_default();
                    match kind {
                        Kind::Measurement(instrument, ..) => person.series(instrument).facts.push(fact),
                        _ => person.row.facts.push(fact),
                    }
                }
            }
        }
        // A participant's retractions reach their measurement series too
        // (a retraction of another fact changes none of its versions).
        for person in this.people.values_mut() {
            let Person { row, series } = person;
            for (_, history) in series.iter_mut() {
                history.retractions.extend(&row.retractions);
            }
            // Loading grew the lists by doubling; what is held for good
            // need not keep the slack.
            for history in std::iter::once(row).chain(series.iter_mut().map(|(_, h)| h)) {
                history.facts.shrink_to_fit();
                history.retractions.shrink_to_fit();
            }
            series.shrink_to_fit();
        }

        let mut voided = std::collections::HashSet::new();
        for batch in batches(VOIDS) {
            voided.extend(batch?.column(0).as_primitive::<Int64Type>().values().iter().copied());
        }
        let stored = stored_versions(batches(VERSIONS), &voided, |batch, row| {
            Ok((
                text(batch, "program")?.value(row).into(),
                text(batch, "participant")?.value(row).into(),
            ))
        })?;
        assign_ids::<_, ParticipantFold>(
            this.people.iter_mut().map(|(k, person)| (k.clone(), &mut person.row)),
            stored,
            VERSIONS,
        )?;
        let stored = stored_versions(batches(PAIRS), &voided, |batch, row| {
            let participant = (
                text(batch, "program")?.value(row).into(),
                text(batch, "participant")?.value(row).into(),
            );
            Ok((participant, named(text(batch, "instrument")?.value(row))?))
        })?;
        let series = this
            .people
            .iter_mut()
            .flat_map(|(p, person)| person.series.iter_mut().map(move |(i, h)| ((p.clone(), *i), h)));
        assign_ids::<_, PairFold>(series, stored, PAIRS)?;
        Ok(this)
    }
}

/// A versions table's versions not voided, by the series `series` names
/// for a row.
fn stored_versions<K: Eq + std::hash::Hash>(
    batches: impl Iterator<Item = Result<RecordBatch, ProjectionError>>,
    voided: &std::collections::HashSet<i64>,
    series: impl Fn(&RecordBatch, usize) -> Result<K, ProjectionError>,
) -> Result<HashMap<K, Stored>, ProjectionError> {
    let mut stored: HashMap<K, Stored> = HashMap::new();
    for batch in batches {
        let batch = batch?;
        let ids = column(&batch, "version")?.as_primitive::<Int64Type>();
        let from = column(&batch, "valid_from")?.as_primitive::<Date32Type>();
        let recorded = column(&batch, "recorded_from")?.as_primitive::<TimestampMicrosecondType>();
        for row in (0..batch.num_rows()).filter(|r| !voided.contains(&ids.value(*r))) {
            stored
                .entry(series(&batch, row)?)
                .or_default()
                .push(((from.value(row), recorded.value(row)), ids.value(row)));
        }
    }
    Ok(stored)
}

/// The key columns every typed table starts with.
struct Keys<'a> {
    position: &'a arrow::array::Int64Array,
    event_id: &'a arrow::array::StringArray,
    program: &'a arrow::array::StringArray,
    participant: &'a arrow::array::StringArray,
    occurred_on: &'a arrow::array::Date32Array,
    recorded_at: &'a arrow::array::TimestampMicrosecondArray,
}

impl<'a> Keys<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, ProjectionError> {
        Ok(Self {
            position: column(batch, "position")?.as_primitive::<Int64Type>(),
            event_id: text(batch, "event_id")?,
            program: text(batch, "program")?,
            participant: text(batch, "participant")?,
            occurred_on: column(batch, "occurred_on")?.as_primitive::<Date32Type>(),
            recorded_at: column(batch, "recorded_at")?.as_primitive::<TimestampMicrosecondType>(),
        })
    }

    fn participant(&self, row: usize) -> Result<Participant, ProjectionError> {
        if self.participant.is_null(row) {
            return Err(ProjectionError::Lake(format!(
                "the participant event at position {} names no participant",
                self.position.value(row)
            )));
        }
        Ok((
            self.program.value(row).to_string(),
            self.participant.value(row).to_string(),
        ))
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a arrow::array::ArrayRef, ProjectionError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ProjectionError::Lake(format!("a lake table has no column {name}")))
}

fn text<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a arrow::array::StringArray, ProjectionError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| ProjectionError::Lake(format!("a lake table has no text column {name}")))
}

fn uuid(text: &str) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(text).map_err(|_| ProjectionError::Lake(format!("{text:?} in the lake is not an event id")))
}

/// A vocabulary value from its name in the lake.
fn named<'de, T: Deserialize<'de>>(name: &'de str) -> Result<T, ProjectionError> {
    T::deserialize(StrDeserializer::<ValueError>::new(name))
        .map_err(|_| ProjectionError::Lake(format!("{name:?} in the lake is not a known value")))
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    const EVENTS: &str = r#"{"event_id":"00000000-0000-7000-8000-000000000001","program":"p","participant":"a","type":"participant_enrolled","occurred_on":"2020-01-01","data":{}}
{"event_id":"00000000-0000-7000-8000-000000000002","program":"p","participant":"a","type":"status_changed","occurred_on":"2020-03-01","data":{"status":"employed"}}
{"event_id":"00000000-0000-7000-8000-000000000003","program":"p","participant":"a","type":"status_changed","occurred_on":"2020-02-01","data":{"status":"education"}}
{"event_id":"00000000-0000-7000-8000-000000000004","program":"p","participant":"a","type":"event_retracted","occurred_on":"2020-03-02","data":{"event_id":"00000000-0000-7000-8000-000000000002","reason":"entered_in_error"}}
"#;

    /// The events in log order, recorded at these seconds: the third
    /// before the second, as when clocks disagree.
    fn stored() -> Vec<StoredEvent> {
        let seconds = [100, 300, 200, 400];
        super::super::stored_events(EVENTS, |position| {
            DateTime::from_timestamp(seconds[(position - 1) as usize % 4], 0).unwrap_or_default()
        })
    }

    fn day(text: &str) -> i32 {
        facts::days_since_epoch(text.parse().unwrap_or_default())
    }

    /// The version in force on `as_of` as known at `seconds`, by the
    /// catalog's predicates.
    fn at(versions: &[Version<State>], as_of: &str, seconds: i64) -> Option<State> {
        let (d, t) = (day(as_of), seconds * 1_000_000);
        let found: Vec<&Version<State>> = versions
            .iter()
            .filter(|v| v.tile.0 <= d && v.tile.1.is_none_or(|to| to > d))
            .filter(|v| v.recorded_from <= t && v.recorded_to.is_none_or(|to| to > t))
            .collect();
        assert!(found.len() <= 1, "one version at a time: {found:?}");
        found.first().map(|v| v.tile.2)
    }

    #[test]
    fn versions_follow_recording_times_not_log_order() {
        let events = stored();
        assert_eq!(events.len(), 4, "the test's events parse");
        let mut participants = Participants::default();
        let mut next = 0;
        participants
            .apply(&events.iter().collect::<Vec<_>>(), &mut next)
            .expect("apply");
        let history = &participants.people.values().next().expect("one participant").row;
        let all = versions::<ParticipantFold>(history);
        let status = |as_of, seconds| at(&all, as_of, seconds).map(|s| (s.status.map(|s| s.1), s.first_job_on));
        assert_eq!(at(&all, "2019-12-31", 450), None, "not yet enrolled");
        assert_eq!(status("2020-12-31", 150), Some((None, None)));
        assert_eq!(status("2020-12-31", 250), Some((Some(Status::Education), None)));
        assert_eq!(
            status("2020-12-31", 350),
            Some((Some(Status::Employed), Some(day("2020-03-01"))))
        );
        assert_eq!(status("2020-02-15", 350), Some((Some(Status::Education), None)));
        assert_eq!(status("2020-12-31", 450), Some((Some(Status::Education), None)));
    }

    #[test]
    fn pages_write_the_versions_one_page_would_and_void_the_rest() {
        let events = stored();
        let (mut whole, mut paged) = (Participants::default(), Participants::default());
        let (mut next_whole, mut next_paged) = (0, 0);
        whole
            .apply(&events.iter().collect::<Vec<_>>(), &mut next_whole)
            .expect("apply");
        let mut written: Vec<(i64, i32, i64)> = Vec::new();
        let mut voided = Vec::new();
        for page in events.chunks(1) {
            let changes = paged
                .apply(&page.iter().collect::<Vec<_>>(), &mut next_paged)
                .expect("apply");
            if let Some(batch) = changes.versions {
                let ids = batch.column(0).as_primitive::<Int64Type>();
                let from = batch.column(3).as_primitive::<Date32Type>();
                let recorded = batch.column(5).as_primitive::<TimestampMicrosecondType>();
                written.extend((0..batch.num_rows()).map(|i| (ids.value(i), from.value(i), recorded.value(i))));
            }
            if let Some(batch) = changes.voids {
                voided.extend(batch.column(0).as_primitive::<Int64Type>().values().iter().copied());
            }
        }
        assert!(!voided.is_empty(), "later pages void earlier versions");
        let mut live: Vec<(i32, i64)> = written
            .iter()
            .filter(|(id, ..)| !voided.contains(id))
            .map(|(_, from, recorded)| (*from, *recorded))
            .collect();
        live.sort_unstable();
        let expected: Vec<(i32, i64)> = whole
            .people
            .values()
            .flat_map(|p| {
                versions::<ParticipantFold>(&p.row)
                    .iter()
                    .map(Version::key)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(live, expected);
        let ids = |p: &Participants| p.people.values().map(|p| p.row.ids.len()).sum::<usize>();
        assert_eq!(ids(&paged), expected.len(), "every version in force has its id");
        assert_eq!(ids(&whole), expected.len());
    }
}
