//! The event log: the only source of truth. Two stores implement it with the
//! same semantics — [`jetstream::JetStreamLog`] (distributed) and
//! [`embedded::EmbeddedLog`] (a local SQLite file).

pub mod embedded;
pub mod jetstream;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::Serialize;
use uuid::Uuid;

use crate::envelope::{NewEvent, StoredEvent, StreamKey};
use crate::invalid::{Conflict, Invalid};
use crate::rules::{StateReader, StreamState};
use crate::sealing::Sealing;

/// The log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store is unreachable or timed out; retrying later may succeed.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// The store holds something this version cannot read. Every reader
    /// stops there until an operator quarantines the position.
    #[error("event log holds an unreadable event at position {position}: {reason}")]
    Unreadable { position: u64, reason: String },
    /// The event belongs to an erased participant: its data key is
    /// destroyed, so it can never be read again. Every reader passes it by.
    #[error("the event at position {position} belongs to an erased participant")]
    Erased { position: u64 },
    /// An operator's request the log will not carry out.
    #[error("{0}")]
    Refused(String),
}

impl From<sqlx::Error> for LogError {
    fn from(e: sqlx::Error) -> Self {
        LogError::Unavailable(e.to_string())
    }
}

/// Why a batch was not appended. In every case nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("{} invalid event(s); first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Invalid>),
    #[error("{} concurrency conflict(s); first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Conflict(Vec<Conflict>),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Where one event of an appended batch ended up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Appended {
    pub event_id: Uuid,
    pub position: u64,
    pub version: u64,
    /// The event was already stored (same id, same content): nothing new was
    /// written for it.
    pub duplicate: bool,
}

/// A position an operator has set aside because its event cannot be read:
/// every reader skips it, so projections, rebuilds and the rules all go on
/// past it the same way. The log itself is not changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Quarantined {
    pub position: u64,
    /// Why, in the operator's words.
    pub reason: String,
    pub recorded_at: DateTime<Utc>,
}

/// An append-only, totally ordered log of events, split into one stream per
/// participant and one per programme.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Validates the batch against the streams it touches and appends it in
    /// order. Idempotent by `event_id`; an invalid or conflicting batch writes
    /// nothing.
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError>;

    /// Up to `max` events with position greater than `after`, in order.
    async fn read(&self, after: u64, max: usize) -> Result<Vec<StoredEvent>, LogError>;

    /// Every event with position greater than `after`, then each new one as it
    /// is appended. The stream never ends on its own.
    async fn tail(&self, after: u64) -> Result<BoxStream<'static, Result<StoredEvent, LogError>>, LogError>;

    /// All events of one stream, in order.
    async fn read_stream(&self, key: &StreamKey) -> Result<Vec<StoredEvent>, LogError>;

    /// Position of the last event (0 when empty).
    async fn head(&self) -> Result<u64, LogError>;

    /// Reads stream state for a planner outside an append, e.g. to check a
    /// whole file before importing any of it.
    async fn state_reader(&self) -> Result<Box<dyn StateReader + '_>, LogError>;

    /// Sets aside the unreadable event at `position` (refused for a
    /// readable one: quarantine never hides an event that can be read).
    async fn quarantine(&self, position: u64, reason: &str) -> Result<Quarantined, LogError>;

    /// Every quarantined position, in order.
    async fn quarantined(&self) -> Result<Vec<Quarantined>, LogError>;

    /// The stream's current state as the rules see it.
    async fn stream_state(&self, key: &StreamKey) -> Result<StreamState, LogError> {
        self.state_reader().await?.stream_state(key).await
    }

    /// How the log seals and opens participants' data, and holds their keys.
    fn sealing(&self) -> &Sealing;
}

/// Finishes the erasures a crash cut short: one whose event the log holds
/// has its key destroyed now; one whose event was never stored did not
/// happen, and its mark is dropped. Called when a log is opened, before
/// anything is read.
pub async fn finish_erasures(log: &dyn EventLog) -> Result<(), LogError> {
    let keys = log.sealing().keys();
    for stream in keys.pending_erasures().await? {
        if log.stream_state(&stream).await?.erased.is_some() {
            keys.erase(&stream).await?;
        }
        keys.drop_pending_erasure(&stream).await?;
    }
    Ok(())
}

/// Checks that the payload stored at `position` exists and cannot be read,
/// before it may be quarantined.
pub(crate) async fn must_be_unreadable(
    sealing: &Sealing,
    position: u64,
    payload: Option<&[u8]>,
    reason: &str,
) -> Result<Quarantined, LogError> {
    let Some(payload) = payload else {
        return Err(LogError::Refused(format!("the log holds no event at position {position}")));
    };
    if sealing.open(position, payload).await.is_ok() {
        return Err(LogError::Refused(format!(
            "the event at position {position} is readable: only an unreadable event can be quarantined"
        )));
    }
    if reason.trim().is_empty() {
        return Err(LogError::Refused("a quarantine needs a reason".into()));
    }
    Ok(Quarantined {
        position,
        reason: reason.trim().to_string(),
        recorded_at: Utc::now(),
    })
}
