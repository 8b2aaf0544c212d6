//! The JSON Schema of the wire format, generated from the types.

/// The schema as pretty-printed JSON, as published in
/// `events/schema/event.v1.schema.json`.
pub fn event_schema_json() -> String {
    let schema = schemars::schema_for!(crate::envelope::NewEvent);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
