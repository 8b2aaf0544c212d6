//! Parsing submitted events: NDJSON or a JSON array, strictly, with every
//! problem reported against its event and field.

use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::date::Date;
use crate::envelope::NewEvent;
use crate::invalid::Invalid;
use crate::names::{ProgramName, Pseudonym};
use crate::strict_json::{self, StrictError};
use crate::vocabulary::EventData;

/// At most this many problems are listed for one batch; the count says how
/// many there were in all.
pub const MAX_REPORTED: usize = 100;

/// Why a batch could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("empty batch: no events")]
    Empty,
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{total} invalid event(s); first: {}", .problems.first().map(ToString::to_string).unwrap_or_default())]
    Invalid { problems: Vec<Invalid>, total: usize },
}

/// Collects problems, keeping the first [`MAX_REPORTED`].
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Invalid>,
    pub total: usize,
}

impl Problems {
    pub fn extend(&mut self, problems: Vec<Invalid>) {
        self.total += problems.len();
        let room = MAX_REPORTED.saturating_sub(self.list.len());
        self.list.extend(problems.into_iter().take(room));
    }

    pub fn into_result<T>(self, ok: T) -> Result<T, BatchError> {
        if self.total == 0 {
            Ok(ok)
        } else {
            Err(BatchError::Invalid {
                problems: self.list,
                total: self.total,
            })
        }
    }
}

/// Parses a whole body: a JSON array of events, or NDJSON (one per line).
pub fn parse_batch(body: &[u8]) -> Result<Vec<NewEvent>, BatchError> {
    let today = latest_allowed_date();
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err(BatchError::Empty),
        Some(b'[') => {
            let items = match strict_json::array(body) {
                Ok(items) => items,
                Err(StrictError::Syntax(e)) => return Err(BatchError::Malformed(e.to_string())),
                Err(e) => {
                    return Err(BatchError::Invalid {
                        problems: vec![e.invalid(0, None, None)],
                        total: 1,
                    });
                }
            };
            if items.is_empty() {
                return Err(BatchError::Empty);
            }
            let mut problems = Problems::default();
            let mut events = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                match parse_value(item, index, None, today) {
                    Ok(e) => events.push(e),
                    Err(p) => problems.extend(p),
                }
            }
            problems.into_result(events)
        }
        Some(_) => {
            let mut problems = Problems::default();
            let mut events = Vec::new();
            let lines = body.split(|b| *b == b'\n').enumerate();
            for (index, (line_no, line)) in lines.filter(|(_, l)| !is_blank(l)).enumerate() {
                match parse_line(line, index, line_no + 1, today) {
                    Ok(e) => events.push(e),
                    Err(p) => problems.extend(p),
                }
            }
            problems.into_result(events)
        }
    }
}

pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Parses one NDJSON line.
pub fn parse_line(line: &[u8], index: usize, line_no: usize, today: NaiveDate) -> Result<NewEvent, Vec<Invalid>> {
    match strict_json::value(line) {
        Ok(value) => parse_value(value, index, Some(line_no), today),
        Err(e) => Err(vec![e.invalid(index, Some(line_no), sniff_event_id(line))]),
    }
}

/// The last `occurred_on` accepted as "not in the future": today in the
/// easternmost time zone, so a programme office anywhere can record today.
pub fn latest_allowed_date() -> NaiveDate {
    (Utc::now() + Duration::hours(14)).date_naive()
}

/// The envelope as it arrives; `data` is checked against its type afterwards
/// so that errors inside it carry a `data.` path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    event_id: Option<Uuid>,
    program: ProgramName,
    #[serde(default)]
    participant: Option<Pseudonym>,
    #[serde(default)]
    expected_version: Option<u64>,
    #[serde(rename = "type")]
    kind: String,
    occurred_on: Date,
    #[serde(default)]
    recorded_by: Option<Pseudonym>,
    #[serde(default)]
    data: Option<Value>,
}

/// Parses and checks one event given as a JSON value.
pub fn parse_value(
    value: Value,
    index: usize,
    line: Option<usize>,
    today: NaiveDate,
) -> Result<NewEvent, Vec<Invalid>> {
    let event_id = value.get("event_id").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let problem = |field: &str, message: String| Invalid::new(index, line, event_id.clone(), field, &message);
    if !value.is_object() {
        return Err(vec![problem("", "an event must be a JSON object".into())]);
    }
    let envelope: Envelope = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        vec![problem(&field, e.into_inner().to_string())]
    })?;
    if envelope.event_id.is_some_and(|id| id.is_nil() || id.is_max()) {
        return Err(vec![problem(
            "event_id",
            "the nil and max UUIDs cannot identify an event; use a random or time-based UUID".into(),
        )]);
    }
    let data = envelope.data.unwrap_or_else(|| Value::Object(Map::new()));
    let body = EventData::from_wire(&envelope.kind, data).map_err(|(field, message)| vec![problem(&field, message)])?;

    let mut problems = Vec::new();
    if matches!(body, EventData::ParticipantErased(_)) {
        // An erasure must also destroy the data key, which an event alone
        // cannot do.
        problems.push(problem(
            "type",
            "participant_erased is recorded by an erasure (`utfall erase` or \
             POST /v1/programs/{program}/participants/{participant}/erase), not sent as an event"
                .into(),
        ));
    }
    match (&envelope.participant, body.is_program_level()) {
        (Some(_), true) => problems.push(problem(
            "participant",
            format!("must be absent: {} is a programme-level event", body.type_name()),
        )),
        (None, false) => problems.push(problem(
            "participant",
            format!("missing: {} is a participant event", body.type_name()),
        )),
        _ => {}
    }
    if envelope.occurred_on.0 > today {
        problems.push(problem(
            "occurred_on",
            format!("{} lies in the future", envelope.occurred_on),
        ));
    }
    for (field, message) in body.check() {
        problems.push(problem(&field, message));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(NewEvent {
        event_id: envelope.event_id.unwrap_or_else(Uuid::now_v7),
        program: envelope.program,
        participant: envelope.participant,
        expected_version: envelope.expected_version,
        occurred_on: envelope.occurred_on,
        recorded_by: envelope.recorded_by,
        body,
    })
}

/// Finds the `event_id` in a line that is not valid JSON (e.g. truncated),
/// so the error can still name the event.
fn sniff_event_id(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let after_key = text.split_once("\"event_id\"")?.1;
    let after_colon = after_key.trim_start().strip_prefix(':')?.trim_start();
    let quoted = after_colon.strip_prefix('"')?;
    let (id, _) = quoted.split_once('"')?;
    Some(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Result<NewEvent, Vec<Invalid>> {
        parse_line(json.as_bytes(), 0, 1, latest_allowed_date())
    }

    fn field_of(json: &str) -> String {
        let problems = one(json).expect_err("should be invalid");
        problems[0].field.clone()
    }

    const ENROL: &str = r#"{"event_id":"0190f3c2-7d1e-7c3a-9a55-2f1c0e8b9d10","program":"optimist","participant":"P07","type":"participant_enrolled","occurred_on":"2022-06-01","data":{"gender":"female"}}"#;

    #[test]
    fn a_valid_event_parses() {
        let e = one(ENROL).expect("valid");
        assert_eq!(e.participant.map(|p| p.to_string()), Some("P07".into()));
        assert_eq!(e.body.type_name(), "participant_enrolled");
    }

    #[test]
    fn missing_data_on_an_all_optional_type_is_an_empty_object() {
        let e = one(
            r#"{"program":"optimist","participant":"P07","type":"participant_enrolled","occurred_on":"2022-06-01"}"#,
        );
        assert!(e.is_ok());
    }

    #[test]
    fn each_kind_of_bad_input_names_its_field() {
        assert_eq!(
            field_of(&ENROL.replace("participant_enrolled", "participant_adopted")),
            "type"
        );
        assert_eq!(field_of(&ENROL.replace(r#""participant":"P07","#, "")), "participant");
        assert_eq!(field_of(&ENROL.replace("2022-06-01", "2023-02-30")), "occurred_on");
        assert_eq!(field_of(&ENROL.replace("2022-06-01", "2999-01-01")), "occurred_on");
        assert_eq!(field_of(&ENROL.replace("0190f3c2-7d1e", "nope")), "event_id");
        assert_eq!(field_of(&ENROL.replace("female", "woman")), "data.gender");
        assert_eq!(field_of(&ENROL.replace(r#""gender""#, r#""name""#)), "data.name");
        assert_eq!(field_of(&ENROL.replace(r#""program""#, r#""programme""#)), "programme");
        let coop = r#"{"program":"optimist","participant":"P07","type":"measurement_recorded","occurred_on":"2022-06-01","data":{"instrument":"coop_wonca","scores":{"feelings":6}}}"#;
        assert_eq!(field_of(coop), "data.scores.feelings");
        let nil = ENROL.replace(
            "0190f3c2-7d1e-7c3a-9a55-2f1c0e8b9d10",
            "00000000-0000-0000-0000-000000000000",
        );
        assert_eq!(field_of(&nil), "event_id");
        let erased = r#"{"program":"optimist","participant":"P07","type":"participant_erased","occurred_on":"2022-06-01","data":{"reason":"request"}}"#;
        assert_eq!(field_of(erased), "type");
    }

    #[test]
    fn a_key_given_twice_is_refused_by_name() {
        let twice = ENROL.replace(r#""participant":"P07""#, r#""participant":"P01","participant":"P07""#);
        let problems = one(&twice).expect_err("duplicate key");
        assert_eq!(problems[0].field, "participant");
        assert_eq!(
            problems[0].event_id.as_deref(),
            Some("0190f3c2-7d1e-7c3a-9a55-2f1c0e8b9d10")
        );
        let types = ENROL.replace(
            r#""type":"participant_enrolled""#,
            r#""type":"x","type":"participant_enrolled""#,
        );
        match parse_batch(format!("[{ENROL},{types}]").as_bytes()) {
            Err(BatchError::Invalid { problems, .. }) => {
                assert_eq!((problems[0].index, problems[0].field.as_str()), (1, "type"));
            }
            other => panic!("expected the duplicate type to be refused, got {other:?}"),
        }
    }

    #[test]
    fn a_truncated_line_still_names_its_event() {
        let problems = one(&ENROL[..90]).expect_err("truncated");
        assert_eq!(
            problems[0].event_id.as_deref(),
            Some("0190f3c2-7d1e-7c3a-9a55-2f1c0e8b9d10")
        );
        assert!(problems[0].message.contains("not valid JSON"));
    }

    #[test]
    fn batches_report_every_invalid_event_and_reject_empty_input() {
        let body = format!(
            "{ENROL}\n\n{}\n{}\n",
            ENROL.replace("P07", "P 7"),
            ENROL.replace("female", "x")
        );
        match parse_batch(body.as_bytes()) {
            Err(BatchError::Invalid { problems, total }) => {
                assert_eq!(total, 2);
                assert_eq!((problems[0].index, problems[0].line), (1, Some(3)));
                assert_eq!(problems[1].field, "data.gender");
            }
            other => panic!("expected invalid, got {other:?}"),
        }
        assert!(matches!(parse_batch(b"  \n"), Err(BatchError::Empty)));
        assert!(matches!(parse_batch(b"[]"), Err(BatchError::Empty)));
        assert!(matches!(parse_batch(b"[{"), Err(BatchError::Malformed(_))));
        assert_eq!(
            parse_batch(format!("[{ENROL},{ENROL}]").as_bytes())
                .map(|v| v.len())
                .ok(),
            Some(2)
        );
    }
}
