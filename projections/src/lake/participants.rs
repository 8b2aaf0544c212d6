//! DESIGN's `participants` table kept by the lake projector as bitemporal
//! versions (`participant_versions`), so a query finds each participant's
//! row by predicates on four columns instead of folding their events.
//!
//! A version is a participant's row as it stood on the valid-time dates
//! `valid_from..valid_to`, in the record of the transaction times
//! `recorded_from..recorded_to` (ends exclusive; null = still so). It is a
//! pure function of the participant's enrolments, exits, status changes,
//! psychiatric treatments and retractions, by the catalog's rules (a fact
//! counts from its recording, a retraction from its own; same-day facts in
//! log order). So the fold keeps those facts per participant and, when a
//! page brings new ones, derives the participant's versions again and
//! writes the difference: the new versions, and in `participant_voids` the
//! ids of versions no longer so (Parquet files are immutable; a merge
//! drops voided rows together with their voids).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::{Deserialize, Serialize};
use utfall_events::StoredEvent;
use utfall_events::vocabulary::{EventData, ExitReason, OutcomeGroup, Status};
use uuid::Uuid;

use super::manifest::Manifest;
use super::{facts, read};
use crate::ProjectionError;

/// The versions of every participant's row.
pub const VERSIONS: &str = "participant_versions";
/// Ids of versions that are no longer so.
pub const VOIDS: &str = "participant_voids";

pub fn versions_schema() -> SchemaRef {
    let date = |name: &str, nullable| Field::new(name, DataType::Date32, nullable);
    let time = |name: &str, nullable| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            nullable,
        )
    };
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new("program", DataType::Utf8, false),
        Field::new("participant", DataType::Utf8, false),
        date("valid_from", false),
        date("valid_to", true),
        time("recorded_from", false),
        time("recorded_to", true),
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
    ]))
}

pub fn voids_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("version", DataType::Int64, false)]))
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Enrolment,
    Exit(ExitReason),
    Status(Status),
    Psychiatric,
}

#[derive(Clone, Copy, Debug)]
struct Fact {
    event_id: Uuid,
    position: u64,
    /// Days since 1970-01-01.
    occurred_on: i32,
    /// Microseconds since 1970-01-01T00:00Z.
    recorded_at: i64,
    kind: Kind,
}

#[derive(Clone, Copy, Debug)]
struct Retraction {
    target: Uuid,
    recorded_at: i64,
}

/// One participant's facts, and the ids of their versions in force in the
/// lake, in the order [`versions`] derives them.
#[derive(Debug, Default)]
struct History {
    facts: Vec<Fact>,
    retractions: Vec<Retraction>,
    ids: Vec<i64>,
}

/// A version's columns after its validity.
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

/// A state over the valid-time dates `from..to`.
type Tile = (i32, Option<i32>, State);

#[derive(Clone, Copy, Debug, PartialEq)]
struct Version {
    tile: Tile,
    recorded_from: i64,
    recorded_to: Option<i64>,
}

impl Version {
    /// Unique among one participant's versions: at one transaction time
    /// one tile starts on a date.
    fn key(&self) -> (i32, i64) {
        (self.tile.0, self.recorded_from)
    }
}

/// The catalog's participant columns folded over facts in valid-time order.
#[derive(Default)]
struct Fold {
    enrolment: Option<(u64, i32)>,
    exit: Option<(u64, i32, ExitReason)>,
    status: Option<(i32, Status)>,
    first_job_on: Option<i32>,
    first_education_on: Option<i32>,
    psychiatric_treatment_on: Option<i32>,
}

impl Fold {
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
            Kind::Enrolment | Kind::Exit(_) => {}
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

/// The participant's row for every valid-time date, from the facts in
/// force (in valid-time order, same day in log order): one tile per date a
/// fact happened on, while enrolled. Written into `tiles`.
fn tiles<'a>(live: impl Iterator<Item = &'a Fact>, tiles: &mut Vec<Tile>) {
    tiles.clear();
    let mut fold = Fold::default();
    let mut live = live.peekable();
    while let Some(first) = live.next() {
        let day = first.occurred_on;
        fold.add(first);
        while let Some(fact) = live.next_if(|f| f.occurred_on == day) {
            fold.add(fact);
        }
        if let Some(state) = fold.state() {
            tiles.push((day, live.peek().map(|f| f.occurred_on), state));
        }
    }
}

/// Every version of the participant's row, ordered by [`Version::key`]:
/// the tiles in force at each transaction time a fact or retraction was
/// recorded at, each kept as one version while it stays in force. (Runs
/// for every participant a page touches, twice: it allocates per call,
/// not per transaction time.)
fn versions(history: &History) -> Vec<Version> {
    let mut facts: Vec<&Fact> = history.facts.iter().collect();
    facts.sort_unstable_by_key(|f| (f.occurred_on, f.position));
    let mut times: Vec<i64> = history
        .facts
        .iter()
        .map(|f| f.recorded_at)
        .chain(history.retractions.iter().map(|r| r.recorded_at))
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut open: Vec<(Tile, i64)> = Vec::new();
    let mut out = Vec::new();
    let mut now = Vec::new();
    for t in times {
        let retracted = |f: &Fact| {
            history
                .retractions
                .iter()
                .any(|r| r.recorded_at <= t && r.target == f.event_id)
        };
        tiles(
            facts.iter().copied().filter(|f| f.recorded_at <= t && !retracted(f)),
            &mut now,
        );
        let mut i = 0;
        while let Some((tile, from)) = open.get(i).copied() {
            if now.contains(&tile) {
                i += 1;
            } else {
                open.swap_remove(i);
                out.push(Version {
                    tile,
                    recorded_from: from,
                    recorded_to: Some(t),
                });
            }
        }
        for tile in now.drain(..) {
            if !open.iter().any(|(o, _)| *o == tile) {
                open.push((tile, t));
            }
        }
    }
    out.extend(open.into_iter().map(|(tile, from)| Version {
        tile,
        recorded_from: from,
        recorded_to: None,
    }));
    out.sort_unstable_by_key(Version::key);
    out
}

/// A version as the columns of [`versions_schema`].
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
    fn of(version: i64, program: &'a str, participant: &'a str, v: &Version) -> Self {
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

/// What one page changes: new versions and the ids of voided ones.
pub struct Changes {
    pub versions: Option<RecordBatch>,
    pub voids: Option<RecordBatch>,
}

/// Every participant's facts and versions in force, by (programme,
/// participant).
#[derive(Debug, Default)]
pub struct Participants {
    histories: HashMap<(String, String), History>,
}

impl Participants {
    /// Takes in a page's events; new versions get ids from `next_id` on.
    pub fn apply(&mut self, events: &[&StoredEvent], next_id: &mut i64) -> Result<Changes, ProjectionError> {
        // Participants in a fixed order, so ids do not depend on hashing.
        let mut page: BTreeMap<(&str, &str), Vec<&StoredEvent>> = BTreeMap::new();
        for stored in events {
            if let Some(participant) = &stored.event.participant
                && relevant(&stored.event.body)
            {
                page.entry((stored.event.program.as_str(), participant.as_str()))
                    .or_default()
                    .push(stored);
            }
        }
        let mut rows = Vec::new();
        let mut voids = Vec::new();
        for (&(program, participant), page_events) in &page {
            let history = self
                .histories
                .entry((program.to_string(), participant.to_string()))
                .or_default();
            let before = versions(history);
            for stored in page_events {
                let event = &stored.event;
                let fact = |kind| Fact {
                    event_id: event.event_id,
                    position: stored.position,
                    occurred_on: facts::days_since_epoch(event.occurred_on.0),
                    recorded_at: event.recorded_at.timestamp_micros(),
                    kind,
                };
                match &event.body {
                    EventData::ParticipantEnrolled(_) => history.facts.push(fact(Kind::Enrolment)),
                    EventData::ParticipantExited(d) => history.facts.push(fact(Kind::Exit(d.reason))),
                    EventData::StatusChanged(d) => history.facts.push(fact(Kind::Status(d.status))),
                    EventData::PsychiatricTreatmentStarted(_) => history.facts.push(fact(Kind::Psychiatric)),
                    EventData::EventRetracted(r) => history.retractions.push(Retraction {
                        target: r.event_id,
                        recorded_at: event.recorded_at.timestamp_micros(),
                    }),
                    _ => {}
                }
            }
            let after = versions(history);
            let mut ids = Vec::with_capacity(after.len());
            let mut old = before.iter().zip(history.ids.iter().copied()).peekable();
            for version in &after {
                while let Some((_, id)) = old.next_if(|(o, _)| o.key() < version.key()) {
                    voids.push(id);
                }
                if let Some((same, id)) = old.next_if(|(o, _)| o.key() == version.key()) {
                    if same == version {
                        ids.push(id);
                        continue;
                    }
                    voids.push(id);
                }
                let id = *next_id;
                *next_id += 1;
                ids.push(id);
                rows.push(Row::of(id, program, participant, version));
            }
            voids.extend(old.map(|(_, id)| id));
            history.ids = ids;
        }
        let versions = (!rows.is_empty())
            .then(|| facts::serialize(&versions_schema(), &rows))
            .transpose()?;
        let voids = (!voids.is_empty())
            .then(|| RecordBatch::try_new(voids_schema(), vec![Arc::new(arrow::array::Int64Array::from(voids))]))
            .transpose()?;
        Ok(Changes { versions, voids })
    }

    /// The fold as the lake commit `manifest` left it: the facts from the
    /// typed tables, the ids of the versions in force from
    /// `participant_versions` less `participant_voids`. Refuses a lake
    /// whose versions are not those its facts give.
    pub fn load(root: &Path, manifest: &Manifest) -> Result<Self, ProjectionError> {
        let mut this = Self::default();
        let batches = |table: &str| -> Result<Vec<RecordBatch>, ProjectionError> {
            let mut all = Vec::new();
            for path in manifest.files(root, table) {
                for batch in read(&path)? {
                    all.push(batch?);
                }
            }
            Ok(all)
        };
        for (table, kind) in [
            ("enrolments", None),
            ("exits", Some("reason")),
            ("status_changes", Some("status")),
            ("psychiatric_treatments", None),
            ("retractions", Some("retracted_event_id")),
        ] {
            for batch in batches(table)? {
                let keys = Keys::of(&batch)?;
                let extra = kind.map(|k| text(&batch, k)).transpose()?;
                for row in 0..batch.num_rows() {
                    let history = this.histories.entry(keys.participant(row)?).or_default();
                    let value = extra.map(|c| c.value(row)).unwrap_or_default();
                    if table == "retractions" {
                        history.retractions.push(Retraction {
                            target: uuid(value)?,
                            recorded_at: keys.recorded_at.value(row),
                        });
                        continue;
                    }
                    let kind = match table {
                        "enrolments" => Kind::Enrolment,
                        "exits" => Kind::Exit(named(value)?),
                        "status_changes" => Kind::Status(named(value)?),
                        _ => Kind::Psychiatric,
                    };
                    history.facts.push(Fact {
                        event_id: uuid(keys.event_id.value(row))?,
                        position: keys.position.value(row) as u64,
                        occurred_on: keys.occurred_on.value(row),
                        recorded_at: keys.recorded_at.value(row),
                        kind,
                    });
                }
            }
        }
        let voided: HashSet<i64> = batches(VOIDS)?
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        let mut stored: HashMap<(String, String), Vec<((i32, i64), i64)>> = HashMap::new();
        for batch in batches(VERSIONS)? {
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| ProjectionError::Lake(format!("{VERSIONS} has no column {name}")))
            };
            let ids = column("version")?.as_primitive::<Int64Type>();
            let programs = column("program")?.as_string::<i32>();
            let participants = column("participant")?.as_string::<i32>();
            let from = column("valid_from")?.as_primitive::<Date32Type>();
            let recorded = column("recorded_from")?.as_primitive::<TimestampMicrosecondType>();
            for row in 0..batch.num_rows() {
                let id = ids.value(row);
                if !voided.contains(&id) {
                    stored
                        .entry((programs.value(row).to_string(), participants.value(row).to_string()))
                        .or_default()
                        .push(((from.value(row), recorded.value(row)), id));
                }
            }
        }
        for (key, history) in &mut this.histories {
            let mut kept = stored.remove(key).unwrap_or_default();
            kept.sort_unstable();
            let derived: Vec<(i32, i64)> = versions(history).iter().map(Version::key).collect();
            if kept.iter().map(|k| k.0).ne(derived.iter().copied()) {
                return Err(disagree(key));
            }
            history.ids = kept.into_iter().map(|k| k.1).collect();
        }
        if let Some(key) = stored.keys().next() {
            return Err(disagree(key));
        }
        Ok(this)
    }
}

fn disagree((program, participant): &(String, String)) -> ProjectionError {
    ProjectionError::Lake(format!(
        "{VERSIONS} of {program}/{participant} are not what their events give; rebuild the lake (utfall rebuild --projection lake)"
    ))
}

/// Whether an event can change a participant's row.
fn relevant(body: &EventData) -> bool {
    matches!(
        body,
        EventData::ParticipantEnrolled(_)
            | EventData::ParticipantExited(_)
            | EventData::StatusChanged(_)
            | EventData::PsychiatricTreatmentStarted(_)
            | EventData::EventRetracted(_)
    )
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
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| ProjectionError::Lake(format!("a lake table has no column {name}")))
        };
        Ok(Self {
            position: column("position")?.as_primitive::<Int64Type>(),
            event_id: text(batch, "event_id")?,
            program: text(batch, "program")?,
            participant: text(batch, "participant")?,
            occurred_on: column("occurred_on")?.as_primitive::<Date32Type>(),
            recorded_at: column("recorded_at")?.as_primitive::<TimestampMicrosecondType>(),
        })
    }

    fn participant(&self, row: usize) -> Result<(String, String), ProjectionError> {
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
    use utfall_events::RecordedEvent;

    use super::*;

    const EVENTS: &str = r#"{"event_id":"00000000-0000-7000-8000-000000000001","program":"p","participant":"a","type":"participant_enrolled","occurred_on":"2020-01-01","data":{}}
{"event_id":"00000000-0000-7000-8000-000000000002","program":"p","participant":"a","type":"status_changed","occurred_on":"2020-03-01","data":{"status":"employed"}}
{"event_id":"00000000-0000-7000-8000-000000000003","program":"p","participant":"a","type":"status_changed","occurred_on":"2020-02-01","data":{"status":"education"}}
{"event_id":"00000000-0000-7000-8000-000000000004","program":"p","participant":"a","type":"event_retracted","occurred_on":"2020-03-02","data":{"event_id":"00000000-0000-7000-8000-000000000002","reason":"entered_in_error"}}
"#;

    /// The events in log order, recorded at these seconds: the third
    /// before the second, as when clocks disagree.
    fn stored() -> Vec<StoredEvent> {
        utfall_events::wire::parse_batch(EVENTS.as_bytes())
            .unwrap_or_default()
            .into_iter()
            .zip([(1, 100), (2, 300), (3, 200), (4, 400)])
            .map(|(e, (position, seconds))| StoredEvent {
                position,
                event: RecordedEvent {
                    event_id: e.event_id,
                    program: e.program,
                    participant: e.participant,
                    version: 1,
                    occurred_on: e.occurred_on,
                    recorded_at: DateTime::from_timestamp(seconds, 0).unwrap_or_default(),
                    recorded_by: e.recorded_by,
                    schema_version: 1,
                    body: e.body,
                },
            })
            .collect()
    }

    fn day(text: &str) -> i32 {
        facts::days_since_epoch(text.parse().unwrap_or_default())
    }

    /// The version in force on `as_of` as known at `seconds`, by the
    /// catalog's predicates.
    fn at(versions: &[Version], as_of: &str, seconds: i64) -> Option<State> {
        let (d, t) = (day(as_of), seconds * 1_000_000);
        let found: Vec<&Version> = versions
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
        let history = participants.histories.values().next().expect("one participant");
        let all = versions(history);
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
            .histories
            .values()
            .flat_map(|h| versions(h).iter().map(Version::key).collect::<Vec<_>>())
            .collect();
        assert_eq!(live, expected);
        let ids = |p: &Participants| p.histories.values().map(|h| h.ids.len()).sum::<usize>();
        assert_eq!(ids(&paged), expected.len(), "every version in force has its id");
        assert_eq!(ids(&whole), expected.len());
    }
}
