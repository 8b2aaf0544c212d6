//! The lake's `events` table: DESIGN's `events` columns with real types,
//! less `retracted` (which depends on the transaction time asked about).
//! The catalog's `events` reads it; every other table reads the typed ones.

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use utfall_events::StoredEvent;

use super::facts::days_since_epoch;
use crate::ProjectionError;

pub fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("position", DataType::Int64, false),
        Field::new("event_id", DataType::Utf8, false),
        Field::new("program", DataType::Utf8, false),
        Field::new("participant", DataType::Utf8, true),
        Field::new("version", DataType::Int64, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("occurred_on", DataType::Date32, false),
        Field::new(
            "recorded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("recorded_by", DataType::Utf8, true),
        Field::new("data", DataType::Utf8, false),
    ]))
}

pub fn to_batch(events: &[&StoredEvent]) -> Result<RecordBatch, ProjectionError> {
    let e = |f: fn(&StoredEvent) -> Option<String>| -> ArrayRef {
        Arc::new(events.iter().map(|s| f(s)).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(events.iter().map(|s| s.position as i64))),
        e(|s| Some(s.event.event_id.to_string())),
        e(|s| Some(s.event.program.to_string())),
        e(|s| s.event.participant.as_ref().map(ToString::to_string)),
        Arc::new(Int64Array::from_iter_values(
            events.iter().map(|s| s.event.version as i64),
        )),
        e(|s| Some(s.event.body.type_name().to_string())),
        Arc::new(Date32Array::from_iter_values(
            events.iter().map(|s| days_since_epoch(s.event.occurred_on.0)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(events.iter().map(|s| s.event.recorded_at.timestamp_micros()))
                .with_timezone("UTC"),
        ),
        e(|s| s.event.recorded_by.as_ref().map(ToString::to_string)),
        e(|s| Some(s.event.body.data_json())),
    ];
    Ok(RecordBatch::try_new(events_schema(), columns)?)
}
