//! The lake's typed tables: one per kind of fact, each row one event with
//! its data in typed columns, so no query parses JSON. Every row carries
//! what its validity depends on — its valid-time date (`occurred_on`), its
//! transaction time (`recorded_at`) and its `event_id`, by which a later
//! retraction (the `retractions` table, with its own `recorded_at`) takes
//! it out of the record. The catalog folds these per as-of date and
//! known-at time (`queries/sql/catalog/`).
//!
//! Rows are the events' own serde shapes where those are already flat;
//! Arrow's JSON decoder turns them into columns without a JSON text.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Fields, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::json::ReaderBuilder;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use serde::Serialize;
use utfall_events::StoredEvent;
use utfall_events::instrument::Instrument;
use utfall_events::vocabulary::*;

use crate::ProjectionError;

/// A typed table: its name (also its folder in the lake) and the columns
/// after the key every table shares.
pub struct FactTable {
    pub name: &'static str,
    columns: fn() -> Vec<Field>,
}

impl FactTable {
    pub fn schema(&self) -> SchemaRef {
        let mut fields = key_fields();
        fields.extend((self.columns)());
        Arc::new(Schema::new(fields))
    }
}

/// Every typed table, in the order of [`Fact::table`]'s indices.
pub const FACTS: [FactTable; 12] = [
    FactTable {
        name: "program_definitions",
        columns: || {
            vec![
                text("name", false),
                text("organisation", false),
                text("country", false),
                Field::new("starts_on", DataType::Date32, false),
                Field::new("ends_on", DataType::Date32, true),
                Field::new("planned_participants", DataType::Int64, true),
                Field::new(
                    "budget",
                    DataType::Struct(Fields::from(vec![
                        Field::new("amount", DataType::Float64, false),
                        text("currency", false),
                    ])),
                    true,
                ),
            ]
        },
    },
    FactTable {
        name: "target_settings",
        columns: || {
            let target = Fields::from(vec![
                text("metric", false),
                text("op", false),
                Field::new("value", DataType::Float64, false),
            ]);
            vec![Field::new(
                "targets",
                DataType::List(Arc::new(Field::new("item", DataType::Struct(target), false))),
                false,
            )]
        },
    },
    FactTable {
        name: "enrolments",
        columns: || {
            vec![
                text("referral_source", true),
                Field::new("birth_year", DataType::Int64, true),
                text("gender", true),
                Field::new(
                    "target_groups",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                    true,
                ),
                text("income_source", true),
                Field::new("prior_psychiatric_diagnosis", DataType::Boolean, true),
                Field::new("physical_challenges", DataType::Boolean, true),
                text("consultant", true),
            ]
        },
    },
    FactTable {
        name: "consents",
        columns: || vec![text("scope", false), Field::new("given", DataType::Boolean, false)],
    },
    FactTable {
        name: "contact_records",
        columns: || {
            vec![
                text("kind", false),
                text("staff_role", true),
                Field::new("attended", DataType::Boolean, false),
                Field::new("minutes", DataType::Int64, true),
            ]
        },
    },
    FactTable {
        name: "measurement_records",
        columns: || {
            let score = Fields::from(vec![text("item", false), Field::new("score", DataType::Float64, false)]);
            vec![
                text("instrument", false),
                Field::new("wave", DataType::Int64, true),
                Field::new("composite", DataType::Float64, true),
                Field::new(
                    "scores",
                    DataType::List(Arc::new(Field::new("item", DataType::Struct(score), false))),
                    false,
                ),
            ]
        },
    },
    FactTable {
        name: "status_changes",
        columns: || {
            vec![
                text("status", false),
                text("outcome_group", false),
                Field::new("hours_per_week", DataType::Float64, true),
                text("pathway", true),
            ]
        },
    },
    FactTable {
        name: "service_changes",
        columns: || vec![text("type", false), text("service", false)],
    },
    FactTable {
        name: "psychiatric_treatments",
        columns: || vec![text("setting", false)],
    },
    FactTable {
        name: "exits",
        columns: || vec![text("reason", false)],
    },
    FactTable {
        name: "retractions",
        columns: || vec![text("retracted_event_id", false), text("reason", false)],
    },
    FactTable {
        name: "indicator_definitions",
        columns: || {
            vec![
                text("name", false),
                text("description", false),
                text("numerator", false),
                text("denominator", true),
            ]
        },
    },
];

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn key_fields() -> Vec<Field> {
    vec![
        Field::new("position", DataType::Int64, false),
        text("event_id", false),
        text("program", false),
        text("participant", true),
        Field::new("occurred_on", DataType::Date32, false),
        Field::new(
            "recorded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]
}

/// What every row starts with.
#[derive(Serialize)]
struct Key<'a> {
    position: u64,
    event_id: String,
    program: &'a str,
    participant: Option<&'a str>,
    /// Days since 1970-01-01.
    occurred_on: i32,
    /// Microseconds since 1970-01-01T00:00Z.
    recorded_at: i64,
}

#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    key: Key<'a>,
    #[serde(flatten)]
    fact: Fact<'a>,
}

/// An event's data as its table's columns.
#[derive(Serialize)]
#[serde(untagged)]
enum Fact<'a> {
    ProgramDefined(&'a ProgramDefined),
    TargetsSet(&'a TargetsSet),
    Enrolled(&'a ParticipantEnrolled),
    Consent(&'a ConsentRecorded),
    Contact(&'a ContactRecorded),
    Measurement(Measurement),
    Status(StatusFact<'a>),
    Service {
        r#type: &'static str,
        service: Service,
    },
    Psychiatric(&'a PsychiatricTreatmentStarted),
    Exited(&'a ParticipantExited),
    Retracted {
        retracted_event_id: String,
        reason: &'a str,
    },
    Indicator(&'a IndicatorDefined),
}

#[derive(Serialize)]
struct Measurement {
    instrument: Instrument,
    wave: Option<u32>,
    /// The mean of the items answered.
    composite: Option<f64>,
    scores: Vec<Score>,
}

#[derive(Serialize)]
struct Score {
    item: String,
    score: f64,
}

#[derive(Serialize)]
struct StatusFact<'a> {
    #[serde(flatten)]
    change: &'a StatusChanged,
    outcome_group: OutcomeGroup,
}

impl<'a> Fact<'a> {
    /// The fact an event records; none for an erasure, which leaves
    /// nothing of the participant in the lake, nor for a retention rule,
    /// which is no figure (both stay in the `events` table).
    fn of(body: &'a EventData) -> Option<Self> {
        Some(match body {
            EventData::ProgramDefined(d) => Fact::ProgramDefined(d),
            EventData::TargetsSet(d) => Fact::TargetsSet(d),
            EventData::ParticipantEnrolled(d) => Fact::Enrolled(d),
            EventData::ConsentRecorded(d) => Fact::Consent(d),
            EventData::ContactRecorded(d) => Fact::Contact(d),
            EventData::MeasurementRecorded(d) => Fact::Measurement(Measurement {
                instrument: d.instrument,
                wave: d.wave,
                composite: composite(&d.scores),
                scores: d
                    .scores
                    .iter()
                    .map(|(item, score)| Score {
                        item: item.clone(),
                        score: *score,
                    })
                    .collect(),
            }),
            EventData::StatusChanged(d) => Fact::Status(StatusFact {
                change: d,
                outcome_group: d.status.outcome_group(),
            }),
            EventData::ServiceStarted(d) => Fact::Service {
                r#type: body.type_name(),
                service: d.service,
            },
            EventData::ServiceEnded(d) => Fact::Service {
                r#type: body.type_name(),
                service: d.service,
            },
            EventData::PsychiatricTreatmentStarted(d) => Fact::Psychiatric(d),
            EventData::ParticipantExited(d) => Fact::Exited(d),
            EventData::EventRetracted(d) => Fact::Retracted {
                retracted_event_id: d.event_id.to_string(),
                reason: d.reason.as_str(),
            },
            EventData::IndicatorDefined(d) => Fact::Indicator(d),
            EventData::ParticipantErased(_) | EventData::RetentionSet(_) => return None,
        })
    }

    /// The index in [`FACTS`] of the table the fact goes to.
    fn table(&self) -> usize {
        match self {
            Fact::ProgramDefined(_) => 0,
            Fact::TargetsSet(_) => 1,
            Fact::Enrolled(_) => 2,
            Fact::Consent(_) => 3,
            Fact::Contact(_) => 4,
            Fact::Measurement(_) => 5,
            Fact::Status(_) => 6,
            Fact::Service { .. } => 7,
            Fact::Psychiatric(_) => 8,
            Fact::Exited(_) => 9,
            Fact::Retracted { .. } => 10,
            Fact::Indicator(_) => 11,
        }
    }
}

/// A measurement's composite: the mean of the items answered (none when
/// none were).
pub(super) fn composite(scores: &std::collections::BTreeMap<String, f64>) -> Option<f64> {
    (!scores.is_empty()).then(|| scores.values().sum::<f64>() / scores.len() as f64)
}

pub(super) fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - NaiveDate::default()).num_days() as i32
}

/// The events' rows per typed table (in [`FACTS`] order; a table no event
/// of the page goes to gets none).
pub fn to_batches(events: &[&StoredEvent]) -> Result<Vec<Option<RecordBatch>>, ProjectionError> {
    let mut rows: Vec<Vec<Row>> = FACTS.iter().map(|_| Vec::new()).collect();
    for stored in events {
        let event = &stored.event;
        let Some(fact) = Fact::of(&event.body) else {
            continue;
        };
        rows[fact.table()].push(Row {
            key: Key {
                position: stored.position,
                event_id: event.event_id.to_string(),
                program: event.program.as_str(),
                participant: event.participant.as_ref().map(|p| p.as_str()),
                occurred_on: days_since_epoch(event.occurred_on.0),
                recorded_at: event.recorded_at.timestamp_micros(),
            },
            fact,
        });
    }
    FACTS
        .iter()
        .zip(rows)
        .map(|(table, rows)| {
            if rows.is_empty() {
                return Ok(None);
            }
            serialize(&table.schema(), &rows).map(Some)
        })
        .collect()
}

/// `rows` (serde structs whose fields are `schema`'s columns, timestamps
/// as microseconds since the epoch) as one batch of `schema`.
pub(super) fn serialize<T: Serialize>(schema: &SchemaRef, rows: &[T]) -> Result<RecordBatch, ProjectionError> {
    let mut decoder = ReaderBuilder::new(decoded(schema))
        .with_batch_size(rows.len().max(1))
        .build_decoder()?;
    decoder.serialize(rows)?;
    let Some(batch) = decoder.flush()? else {
        return Ok(RecordBatch::new_empty(schema.clone()));
    };
    let mut columns = batch.columns().to_vec();
    for (i, field) in schema.fields().iter().enumerate() {
        if matches!(field.data_type(), DataType::Timestamp(..)) {
            let micros = columns[i]
                .as_primitive::<Int64Type>()
                .reinterpret_cast::<TimestampMicrosecondType>();
            columns[i] = Arc::new(micros.with_timezone("UTC"));
        }
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// `schema` with its timestamps as the integers they are serialised as:
/// Arrow's JSON decoder knows time zones by offset only, not by name.
fn decoded(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(..) => Field::new(f.name(), DataType::Int64, f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use arrow::array::Array;
    use arrow::datatypes::{Date32Type, Float64Type};

    use super::*;

    const EVENTS: &str = r#"{"event_id":"00000000-0000-7000-8000-000000000001","program":"p","type":"program_defined","occurred_on":"2020-01-01","data":{"name":"P","organisation":"O","country":"NO","starts_on":"2020-01-01","budget":{"amount":1.5,"currency":"NOK"}}}
{"event_id":"00000000-0000-7000-8000-000000000002","program":"p","type":"targets_set","occurred_on":"2020-01-01","data":{"targets":[{"metric":"job_share","op":">=","value":0.2}]}}
{"event_id":"00000000-0000-7000-8000-000000000003","program":"p","participant":"a","type":"measurement_recorded","occurred_on":"2020-02-03","data":{"instrument":"coop_wonca","wave":1,"scores":{"pain":2,"feelings":3}}}
{"event_id":"00000000-0000-7000-8000-000000000004","program":"p","participant":"a","type":"status_changed","occurred_on":"2020-02-03","data":{"status":"employed","hours_per_week":20}}
{"event_id":"00000000-0000-7000-8000-000000000005","program":"p","participant":"a","type":"event_retracted","occurred_on":"2020-02-04","data":{"event_id":"00000000-0000-7000-8000-000000000004","reason":"entered_in_error"}}
"#;

    fn stored() -> Vec<StoredEvent> {
        let recorded_at = chrono::DateTime::from_timestamp(1_600_000_000, 123_000).unwrap_or_default();
        super::super::stored_events(EVENTS, |_| recorded_at)
    }

    fn table(batches: &[Option<RecordBatch>], name: &str) -> RecordBatch {
        let index = FACTS.iter().position(|t| t.name == name).unwrap_or(usize::MAX);
        batches
            .get(index)
            .cloned()
            .flatten()
            .unwrap_or_else(|| RecordBatch::new_empty(FACTS[0].schema()))
    }

    #[test]
    fn each_fact_lands_in_its_table_with_typed_columns() {
        let events = stored();
        assert_eq!(events.len(), 5, "the test's events parse");
        let batches = to_batches(&events.iter().collect::<Vec<_>>()).expect("batches");

        let programme = table(&batches, "program_definitions");
        assert_eq!(programme.num_rows(), 1);
        let starts_on = programme
            .column_by_name("starts_on")
            .map(|c| c.as_primitive::<Date32Type>().value(0));
        assert_eq!(
            starts_on,
            Some(days_since_epoch(
                NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default()
            ))
        );
        let budget = programme
            .column_by_name("budget")
            .map(|c| c.as_struct().column(0).as_primitive::<Float64Type>().value(0));
        assert_eq!(budget, Some(1.5));
        let recorded = programme
            .column_by_name("recorded_at")
            .map(|c| c.as_primitive::<TimestampMicrosecondType>().value(0));
        assert_eq!(recorded, Some(1_600_000_000_000_123));

        let targets = table(&batches, "target_settings");
        let list = targets.column_by_name("targets").map(|c| c.as_list::<i32>().value(0));
        assert_eq!(
            list.map(|l| l.as_struct().column(0).as_string::<i32>().value(0).to_string()),
            Some("job_share".into())
        );

        let measurement = table(&batches, "measurement_records");
        assert_eq!(
            measurement
                .column_by_name("composite")
                .map(|c| c.as_primitive::<Float64Type>().value(0)),
            Some(2.5)
        );
        assert_eq!(
            measurement
                .column_by_name("wave")
                .map(|c| c.as_primitive::<Int64Type>().value(0)),
            Some(1)
        );
        assert_eq!(
            measurement
                .column_by_name("scores")
                .map(|c| c.as_list::<i32>().value(0).len()),
            Some(2)
        );

        let status = table(&batches, "status_changes");
        let text = |batch: &RecordBatch, column: &str| {
            batch
                .column_by_name(column)
                .map(|c| c.as_string::<i32>().value(0).to_string())
        };
        assert_eq!(text(&status, "outcome_group").as_deref(), Some("job"));
        assert_eq!(status.column_by_name("pathway").map(|c| c.is_null(0)), Some(true));

        let retraction = table(&batches, "retractions");
        assert_eq!(
            text(&retraction, "retracted_event_id").as_deref(),
            Some("00000000-0000-7000-8000-000000000004")
        );
        assert_eq!(text(&retraction, "participant").as_deref(), Some("a"));
        assert!(table(&batches, "exits").num_rows() == 0);
    }
}
