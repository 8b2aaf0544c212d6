//! The published JSON Schema is the one the types generate, and every fixture
//! event both validates against it and parses.

use std::path::Path;

use utfall_events::schema::event_schema_json;
use utfall_events::wire::parse_batch;

const PUBLISHED: &str = "schema/event.v1.schema.json";

fn fixture_lines() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures directory") {
        let path = entry.expect("fixture entry").path().join("events.ndjson");
        let text = std::fs::read_to_string(&path).expect("fixture events");
        lines.extend(text.lines().map(|l| (path.display().to_string(), l.to_string())));
    }
    assert!(lines.len() > 1000, "fixtures hold {} events", lines.len());
    lines
}

#[test]
fn published_schema_matches_the_types() {
    let published = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PUBLISHED)).expect(
        "published schema; regenerate with `cargo run -p utfall -- schema > events/schema/event.v1.schema.json`",
    );
    assert_eq!(published, event_schema_json(), "the published schema is stale");
}

#[test]
fn every_fixture_event_validates_against_the_schema_and_parses() {
    let schema: serde_json::Value = serde_json::from_str(&event_schema_json()).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for (file, line) in fixture_lines() {
        let event: serde_json::Value = serde_json::from_str(&line).expect("fixture line is JSON");
        let errors: Vec<String> = validator.iter_errors(&event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{file}: {line}: {errors:?}");
        parse_batch(line.as_bytes()).unwrap_or_else(|e| panic!("{file}: {line}: {e}"));
    }
}

#[test]
fn the_schema_rejects_what_the_parser_rejects() {
    let schema: serde_json::Value = serde_json::from_str(&event_schema_json()).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let good = serde_json::json!({
        "program": "optimist", "participant": "P07", "type": "status_changed",
        "occurred_on": "2022-06-01", "data": {"status": "employed"}
    });
    assert!(validator.is_valid(&good));
    let mut bad_status = good.clone();
    bad_status["data"]["status"] = "retired".into();
    assert!(!validator.is_valid(&bad_status));
    let mut bad_program = good.clone();
    bad_program["program"] = "Optimist".into();
    assert!(!validator.is_valid(&bad_program));
    let mut unknown_field = good.clone();
    unknown_field["data"]["mood"] = "fine".into();
    assert!(!validator.is_valid(&unknown_field));
    let mut unknown_top_level = good;
    unknown_top_level["name"] = "Kari Nordmann".into();
    assert!(!validator.is_valid(&unknown_top_level));
}
