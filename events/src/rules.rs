//! The rules that depend on what a stream already holds: enrolment before
//! anything else, nothing after exit, one enrolment, retractions of the
//! stream's own events, idempotency by `event_id`, and `expected_version`.
//!
//! Both stores run the same [`Planner`]; they differ only in how they read a
//! stream's current state ([`StateReader`]) and how they write the plan.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::date::Date;
use crate::envelope::{NewEvent, RecordedEvent, StreamKey, fingerprint};
use crate::invalid::{Conflict, Invalid};
use crate::log::{AppendError, LogError};
use crate::vocabulary::{EventData, SCHEMA_VERSION, TargetMetric};

/// An event of a stream, as far as enrolment and exit rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dated {
    pub event_id: Uuid,
    pub on: Date,
}

/// What the rules need to know about one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Number of events in the stream.
    pub version: u64,
    /// Programme streams: a `program_defined` has been recorded.
    pub defined: bool,
    /// The enrolment in force (a retracted enrolment no longer counts).
    pub enrolment: Option<Dated>,
    /// The exit in force.
    pub exit: Option<Dated>,
    /// When the participant was erased: nothing more is accepted for them.
    pub erased: Option<Date>,
    /// Programme streams: the names of the indicators defined, which
    /// targets may be set on.
    pub indicators: BTreeSet<String>,
}

impl StreamState {
    /// Folds one more event of this stream into the state.
    pub fn apply(&mut self, event_id: Uuid, occurred_on: Date, body: &EventData) {
        self.version += 1;
        let dated = Some(Dated {
            event_id,
            on: occurred_on,
        });
        match body {
            EventData::ProgramDefined(_) => self.defined = true,
            EventData::ParticipantEnrolled(_) => self.enrolment = dated,
            EventData::ParticipantExited(_) => self.exit = dated,
            EventData::ParticipantErased(_) => self.erased = Some(occurred_on),
            EventData::IndicatorDefined(d) => {
                self.indicators.insert(d.name.as_str().to_string());
            }
            EventData::EventRetracted(r) => {
                if self.enrolment.is_some_and(|d| d.event_id == r.event_id) {
                    self.enrolment = None;
                }
                if self.exit.is_some_and(|d| d.event_id == r.event_id) {
                    self.exit = None;
                }
            }
            _ => {}
        }
    }
}

/// An event already in the log, looked up by `event_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownEvent {
    pub stream: StreamKey,
    pub type_name: &'static str,
    pub fingerprint: u64,
}

impl KnownEvent {
    pub fn of(stream: StreamKey, occurred_on: Date, body: &EventData) -> Self {
        Self {
            stream,
            type_name: body.type_name(),
            fingerprint: fingerprint(occurred_on, body),
        }
    }
}

/// How a store answers the planner's questions about what it holds.
#[async_trait]
pub trait StateReader: Send {
    /// Called once before a batch is planned, so a store can fetch the state
    /// of all its streams and events in a few round trips.
    async fn prefetch(&mut self, _batch: &[NewEvent]) -> Result<(), LogError> {
        Ok(())
    }

    async fn stream_state(&mut self, key: &StreamKey) -> Result<StreamState, LogError>;
    /// The event with this id, if the log holds it. A store may limit the
    /// search to `key`'s stream when that is all it can index.
    async fn known_event(&mut self, key: &StreamKey, id: Uuid) -> Result<Option<KnownEvent>, LogError>;
}

/// What to do with one submitted event.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Append(RecordedEvent),
    /// Already stored with the same content: skipped.
    Duplicate {
        event_id: Uuid,
        stream: StreamKey,
    },
}

/// Validates events against stream state, carrying what earlier events of the
/// same batch (or file) did, so a batch may enrol a participant and record
/// their first contact together.
#[derive(Default)]
pub struct Planner {
    states: HashMap<StreamKey, StreamState>,
    planned: HashMap<Uuid, KnownEvent>,
}

impl Planner {
    /// States of every stream the planner has touched, after its plans.
    pub fn states(&self) -> &HashMap<StreamKey, StreamState> {
        &self.states
    }

    /// Plans a batch. `first_index` numbers the events in error reports.
    /// Nothing is planned if any event is invalid or conflicts; invalid
    /// events leave the planner's state untouched.
    pub async fn plan(
        &mut self,
        reader: &mut (dyn StateReader + '_),
        batch: Vec<NewEvent>,
        first_index: usize,
        recorded_at: DateTime<Utc>,
    ) -> Result<Vec<Step>, AppendError> {
        reader.prefetch(&batch).await?;
        let mut steps = Vec::with_capacity(batch.len());
        let mut invalid = Vec::new();
        let mut conflicts = Vec::new();
        for (offset, event) in batch.into_iter().enumerate() {
            let index = first_index + offset;
            match self.plan_one(reader, event, index, recorded_at).await? {
                Ok(step) => steps.push(step),
                Err(Rejection::Invalid(p)) => invalid.push(p),
                Err(Rejection::Conflict(c)) => conflicts.push(c),
            }
        }
        if !invalid.is_empty() {
            Err(AppendError::Invalid(invalid))
        } else if !conflicts.is_empty() {
            Err(AppendError::Conflict(conflicts))
        } else {
            Ok(steps)
        }
    }

    async fn state(&mut self, reader: &mut (dyn StateReader + '_), key: &StreamKey) -> Result<StreamState, LogError> {
        if let Some(state) = self.states.get(key) {
            return Ok(state.clone());
        }
        let state = reader.stream_state(key).await?;
        self.states.insert(key.clone(), state.clone());
        Ok(state)
    }

    async fn known(
        &mut self,
        reader: &mut (dyn StateReader + '_),
        key: &StreamKey,
        id: Uuid,
    ) -> Result<Option<KnownEvent>, LogError> {
        match self.planned.get(&id) {
            Some(k) => Ok(Some(k.clone())),
            None => reader.known_event(key, id).await,
        }
    }

    async fn plan_one(
        &mut self,
        reader: &mut (dyn StateReader + '_),
        event: NewEvent,
        index: usize,
        recorded_at: DateTime<Utc>,
    ) -> Result<Result<Step, Rejection>, LogError> {
        let key = event.stream();
        let id = event.event_id;
        let invalid = |field: &str, message: String| {
            Err(Rejection::Invalid(Invalid::new(
                index,
                None,
                Some(id.to_string()),
                field,
                &message,
            )))
        };

        // Nothing more for an erased participant, not even a retry of an
        // old event: it could not be told from a new one (it cannot be read).
        let state = self.state(reader, &key).await?;
        if let Some(erased) = state.erased
            && !matches!(event.body, EventData::ParticipantErased(_))
        {
            let who = key.participant.as_ref().map(ToString::to_string).unwrap_or_default();
            return Ok(invalid(
                "participant",
                format!("{who} was erased on {erased}; nothing more can be recorded for them"),
            ));
        }
        if let Some(known) = self.known(reader, &key, id).await? {
            let this = KnownEvent::of(key.clone(), event.occurred_on, &event.body);
            if known == this {
                return Ok(Ok(Step::Duplicate {
                    event_id: id,
                    stream: key,
                }));
            }
            // Whose event holds the id is not the sender's business.
            return Ok(invalid(
                "event_id",
                "already used for a different event; a correction needs a new event_id".into(),
            ));
        }

        if let Some(expected) = event.expected_version
            && expected != state.version
        {
            return Ok(Err(Rejection::Conflict(Conflict {
                index,
                event_id: id.to_string(),
                stream: key.to_string(),
                expected_version: expected,
                actual_version: state.version,
            })));
        }

        if let Some(problem) = self.stream_rule(reader, &key, &state, &event).await? {
            return Ok(invalid(&problem.0, problem.1));
        }

        let mut next = state;
        next.apply(id, event.occurred_on, &event.body);
        self.states.insert(key.clone(), next.clone());
        self.planned
            .insert(id, KnownEvent::of(key, event.occurred_on, &event.body));
        Ok(Ok(Step::Append(RecordedEvent {
            event_id: id,
            program: event.program,
            participant: event.participant,
            version: next.version,
            occurred_on: event.occurred_on,
            recorded_at,
            recorded_by: event.recorded_by,
            schema_version: SCHEMA_VERSION,
            body: event.body,
        })))
    }

    /// The first rule the event breaks, as (field, message).
    async fn stream_rule(
        &mut self,
        reader: &mut (dyn StateReader + '_),
        key: &StreamKey,
        state: &StreamState,
        event: &NewEvent,
    ) -> Result<Option<(Cow<'static, str>, String)>, LogError> {
        let on = event.occurred_on;
        let program = &event.program;
        let who = key.participant.as_ref().map(ToString::to_string).unwrap_or_default();
        let defined = |s: &StreamState| s.defined;
        Ok(match &event.body {
            EventData::ProgramDefined(_) => None,
            EventData::TargetsSet(_) | EventData::RetentionSet(_) | EventData::IndicatorDefined(_)
                if !defined(state) =>
            {
                Some((
                    "program".into(),
                    format!("programme {program} is not defined (no program_defined event)"),
                ))
            }
            EventData::TargetsSet(t) => t.targets.iter().enumerate().find_map(|(i, target)| match &target.metric {
                TargetMetric::Indicator(name) if !state.indicators.contains(name.as_str()) => Some((
                    format!("data.targets[{i}].metric").into(),
                    format!("programme {program} has no indicator {:?} (define it with indicator_defined first)", name.as_str()),
                )),
                _ => None,
            }),
            EventData::RetentionSet(_) | EventData::IndicatorDefined(_) => None,
            EventData::ParticipantEnrolled(_) => {
                let programme = self.state(reader, &StreamKey::program(program.clone())).await?;
                if !programme.defined {
                    Some((
                        "program".into(),
                        format!("programme {program} is not defined (no program_defined event)"),
                    ))
                } else if let Some(enrolment) = state.enrolment {
                    Some(("type".into(), format!("{who} is already enrolled (since {})", enrolment.on)))
                } else {
                    None
                }
            }
            EventData::ParticipantErased(_) if state.version == 0 => {
                Some(("participant".into(), format!("{program} has no participant {who}")))
            }
            EventData::ParticipantErased(_) if state.erased.is_some() => {
                Some(("participant".into(), format!("{who} is already erased")))
            }
            EventData::ParticipantErased(_) => None,
            EventData::EventRetracted(r) => match self.known(reader, key, r.event_id).await? {
                None => Some((
                    "data.event_id".into(),
                    format!("{who}'s stream holds no event {}; {SAME_PARTICIPANT}", r.event_id),
                )),
                Some(target) if target.stream != *key => Some((
                    "data.event_id".into(),
                    format!("{who}'s stream holds no event {}; {SAME_PARTICIPANT}", r.event_id),
                )),
                Some(target) if target.type_name == "event_retracted" => Some((
                    "data.event_id".into(),
                    "a retraction cannot be retracted; record the event again".into(),
                )),
                Some(_) => None,
            },
            _ => match (state.enrolment, state.exit) {
                (None, _) => Some(("participant".into(), format!("{who} is not enrolled in {program}"))),
                (Some(enrolment), _) if on < enrolment.on => Some((
                    "occurred_on".into(),
                    format!("{on} is before {who}'s enrolment on {}", enrolment.on),
                )),
                (_, Some(exit)) if on > exit.on => {
                    Some(("occurred_on".into(), format!("{on} is after {who}'s exit on {}", exit.on)))
                }
                (_, Some(exit)) if matches!(event.body, EventData::ParticipantExited(_)) => {
                    Some(("type".into(), format!("{who} has already exited (on {})", exit.on)))
                }
                _ => None,
            },
        })
    }
}

const SAME_PARTICIPANT: &str = "a retraction must name an earlier event of the same participant";

enum Rejection {
    Invalid(Invalid),
    Conflict(Conflict),
}
