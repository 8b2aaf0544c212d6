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

/// Longest quoted value an error message repeats: a client that sent a
/// megabyte as an id must not get two back.
const ECHOED_CHARS: usize = 40;
/// Longest message, field path or event id in a report.
const REPORTED_CHARS: usize = 300;

impl Invalid {
    /// A problem report whose echoed input is cut to a short prefix.
    pub fn new(index: usize, line: Option<usize>, event_id: Option<String>, field: &str, message: &str) -> Self {
        Self {
            index,
            line,
            event_id: event_id.map(|id| clip(&id, ECHOED_CHARS)),
            field: clip(field, REPORTED_CHARS),
            message: clip(&clip_quoted(message), REPORTED_CHARS),
        }
    }
}

/// `text` cut to `max` characters, marked with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// Every value quoted in `message` (between `"` or backticks, as serde
/// quotes them) cut to [`ECHOED_CHARS`].
fn clip_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..open + 1];
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let close = rest.find(quote).unwrap_or(rest.len());
        out.push_str(&clip(&rest[..close], ECHOED_CHARS));
        rest = &rest[close..];
        if let Some(after) = rest.strip_prefix(quote) {
            out.push_str(quote);
            rest = after;
        }
    }
    out.push_str(rest);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_values_are_cut_to_a_prefix() {
        let long = "x".repeat(1_000_000);
        let problem = Invalid::new(
            0,
            None,
            Some(long.clone()),
            "event_id",
            &format!("invalid value: string \"{long}\", expected a UUID"),
        );
        assert_eq!(
            problem.event_id.as_deref().map(|s| s.chars().count()),
            Some(ECHOED_CHARS + 1)
        );
        assert!(problem.message.ends_with("…\", expected a UUID"), "{}", problem.message);
        assert!(problem.message.len() < 120);
        let short = Invalid::new(
            0,
            None,
            None,
            "data.gender",
            "unknown variant `woman`, expected `female`",
        );
        assert_eq!(short.message, "unknown variant `woman`, expected `female`");
    }
}
