//! How bad input is reported: which event, which field, what is wrong.

use std::fmt;

use serde::Serialize;

/// One problem with one event of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invalid {
    /// 0-based index of the event in the batch or file.
    pub index: usize,
    /// 1-based line number, for NDJSON input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The event's `event_id` as given, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Path of the offending field, e.g. `data.scores.feelings`; empty for the
    /// event as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}", self.index)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        if let Some(id) = &self.event_id {
            write!(f, " [{id}]")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// A concurrency conflict: the stream did not hold `expected` events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub index: usize,
    pub event_id: String,
    pub stream: String,
    pub expected_version: u64,
    pub actual_version: u64,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} [{}]: expected_version {} but stream {} holds {} events",
            self.index, self.event_id, self.expected_version, self.stream, self.actual_version
        )
    }
}
