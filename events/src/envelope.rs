//! The envelope around [`EventData`]: who, when, and where in the log.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::date::Date;
use crate::names::{ProgramName, Pseudonym};
use crate::vocabulary::EventData;

/// An event as a client submits it (the wire format; its JSON Schema is
/// published as `events/schema/event.v1.schema.json`).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[schemars(title = "utfall event (schema version 1)", extend("unevaluatedProperties" = false))]
pub struct NewEvent {
    /// Idempotency key chosen by the client; a UUIDv7 is generated when absent.
    #[schemars(with = "Option<Uuid>")]
    pub event_id: Uuid,
    pub program: ProgramName,
    /// Absent on programme-level events, required on all others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Pseudonym>,
    /// How many events the stream must already hold; a mismatch is a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    /// When it happened in the world (valid time).
    pub occurred_on: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<Pseudonym>,
    #[serde(flatten)]
    pub body: EventData,
}

impl NewEvent {
    pub fn stream(&self) -> StreamKey {
        StreamKey {
            program: self.program.clone(),
            participant: self.participant.clone(),
        }
    }
}

/// One participant's stream, or a programme's own stream (no participant).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub program: ProgramName,
    pub participant: Option<Pseudonym>,
}

impl StreamKey {
    pub fn program(program: ProgramName) -> Self {
        Self {
            program,
            participant: None,
        }
    }
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.participant {
            Some(p) => write!(f, "{}/{}", self.program, p),
            None => write!(f, "{} (programme)", self.program),
        }
    }
}

/// An event as written to the log: the submitted event plus its stream
/// version, transaction time and schema version. Its position is the log's
/// business, see [`StoredEvent`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub program: ProgramName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Pseudonym>,
    /// Position within the stream, from 1.
    pub version: u64,
    pub occurred_on: Date,
    /// Server clock when the log accepted it (transaction time).
    pub recorded_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<Pseudonym>,
    pub schema_version: u32,
    #[serde(flatten)]
    pub body: EventData,
}

impl RecordedEvent {
    pub fn stream(&self) -> StreamKey {
        StreamKey {
            program: self.program.clone(),
            participant: self.participant.clone(),
        }
    }
}

/// A recorded event with its global log position (from 1, gap-free).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub position: u64,
    #[serde(flatten)]
    pub event: RecordedEvent,
}

/// What identifies an event's content for idempotency: a retry must carry the
/// same type, date and data as the stored event with that `event_id`. A hash,
/// so that the state of millions of events fits in memory; it is only ever
/// compared within one process.
pub fn fingerprint(occurred_on: Date, body: &EventData) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    occurred_on.hash(&mut hasher);
    serde_json::to_string(body).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}
