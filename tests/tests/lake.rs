//! The analytics lake: every event in Parquet and in typed tables, appended
//! in log order, compacted to a bounded number of files, rebuilt on demand,
//! written by one process, read by other engines, and folded by the catalog
//! into the same tables as the read models.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Int64Type};
use utfall_projections::Lake;
use utfall_projections::follow::catch_up;
use utfall_projections::read_models::schema::TABLES;
use utfall_tests::{Store, fixture, run_utfall};

async fn fixtures_log(store: &Store) -> Arc<dyn utfall_events::EventLog> {
    let log = store.open().await;
    for name in ["optimist", "sja-meg"] {
        let events = std::fs::read(fixture(name)).expect("fixture");
        log.append(utfall_events::wire::parse_batch(&events).expect("parses"))
            .await
            .expect("append");
    }
    log
}

fn positions_and_ids(lake: &Lake) -> (Vec<i64>, Vec<String>) {
    let (mut positions, mut ids) = (Vec::new(), Vec::new());
    for batch in lake.read_all().expect("read the lake") {
        positions.extend(batch.column(0).as_primitive::<Int64Type>().values().iter().copied());
        ids.extend(
            batch
                .column(1)
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap_or_default().to_string()),
        );
    }
    (positions, ids)
}

#[tokio::test]
async fn small_pages_make_a_bounded_number_of_files_holding_every_event_once() {
    let store = Store::embedded();
    let log = fixtures_log(&store).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let lake = Arc::new(Lake::open(dir.path()).expect("lake"));
    // Pages of varying small sizes, as a follower delivers them.
    let mut position = 0;
    for size in [1usize, 3, 7, 2, 30, 5].iter().cycle() {
        let events = log.read(position, *size).await.expect("read");
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        lake.append(position, &events).expect("append");
        position = last;
    }
    let files = lake.parts().expect("parts").len();
    assert!(files <= 24, "{files} files for 1618 events");

    let (positions, ids) = positions_and_ids(&lake);
    assert_eq!(positions, (1..=1618).collect::<Vec<i64>>());
    let logged: Vec<String> = log
        .read(0, 2000)
        .await
        .expect("read")
        .iter()
        .map(|e| e.event.event_id.to_string())
        .collect();
    assert_eq!(ids, logged);

    let batch = &lake.read_all().expect("read")[0];
    assert_eq!(
        batch
            .schema()
            .field_with_name("occurred_on")
            .map(|f| f.data_type().clone())
            .ok(),
        Some(DataType::Date32)
    );
    let first_day = batch
        .column(6)
        .as_primitive::<Date32Type>()
        .value_as_date(0)
        .map(|d| d.to_string());
    assert_eq!(first_day.as_deref(), Some("2020-01-01"));
    assert!(
        batch.column(3).is_null(0),
        "the programme-level event has no participant"
    );

    // Appending what the lake already holds changes nothing; a gap is refused.
    lake.append(1600, &log.read(1600, 10).await.expect("read"))
        .expect("re-append");
    assert_eq!(lake.position().expect("position"), 1618);
}

#[tokio::test]
async fn a_rebuilt_lake_holds_the_same_events() {
    let store = Store::embedded();
    let log = fixtures_log(&store).await;
    let Store::Embedded(data) = &store else {
        unreachable!("an embedded store")
    };
    let lake = Arc::new(Lake::open(&data.path().join("lake")).expect("lake"));
    assert_eq!(catch_up(log.as_ref(), &lake, 100).await.expect("catch up"), 1618);
    let before = positions_and_ids(&lake);
    let files_before = lake.parts().expect("parts").len();

    let mut args = vec!["rebuild".to_string(), "--projection".to_string(), "lake".to_string()];
    args.extend(store.args());
    // This process writes the lake: another may not rebuild it meanwhile.
    let refused = run_utfall(&args, None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("another process"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    drop(lake);

    let output = run_utfall(&args, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("rebuilt lake up to position 1618"));
    let rebuilt = Lake::open(&data.path().join("lake")).expect("rebuilt lake");
    assert_eq!(positions_and_ids(&rebuilt), before);
    assert!(rebuilt.parts().expect("parts").len() <= files_before);
}

/// What tests/lake/read_lake.py counts from the lake's files.
fn read_by_pyarrow(lake: &Lake) -> serde_json::Value {
    utfall_tests::python_json("tests/lake/read_lake.py", lake.root())
}

#[tokio::test]
async fn another_engine_reads_the_lakes_tables_and_gets_utfalls_figures() {
    let store = Store::embedded();
    let log = fixtures_log(&store).await;
    // Retract a job status, so the other engine has to honour retractions.
    let events = log.read(0, 2000).await.expect("read");
    let job = events
        .iter()
        .find(|e| {
            e.event.program.as_str() == "optimist"
                && matches!(&e.event.body, utfall_events::EventData::StatusChanged(s) if s.status == utfall_events::vocabulary::Status::Employed)
        })
        .expect("an employed status in OPTIMIST");
    let retraction = format!(
        r#"{{"program":"optimist","participant":"{}","type":"event_retracted","occurred_on":"{}","data":{{"event_id":"{}","reason":"entered_in_error"}}}}"#,
        job.event.participant.as_ref().map(|p| p.as_str()).unwrap_or_default(),
        job.event.occurred_on.0,
        job.event.event_id
    );
    log.append(utfall_events::wire::parse_batch(retraction.as_bytes()).expect("parses"))
        .await
        .expect("append the retraction");

    let dir = tempfile::tempdir().expect("temporary directory");
    let lake = Arc::new(Lake::open(dir.path()).expect("lake"));
    catch_up(log.as_ref(), &lake, 97).await.expect("catch up");

    let analytics = utfall_queries::Analytics::new(lake.root(), utfall_queries::Limits::default());
    let reports = analytics
        .outcomes(&utfall_queries::Snapshot::default(), None)
        .await
        .expect("outcomes");
    let ours: serde_json::Map<String, serde_json::Value> = reports
        .iter()
        .map(|r| {
            let job = r
                .metrics
                .iter()
                .find(|m| m.metric == "job_share")
                .map_or(0, |m| m.numerator);
            (
                r.program.clone(),
                serde_json::json!({"enrolled": r.enrolled, "job": job}),
            )
        })
        .collect();
    assert_eq!(ours.len(), 2, "both fixtures' programmes: {ours:?}");
    assert_eq!(read_by_pyarrow(&lake), serde_json::Value::Object(ours));
}

/// A catalog answer's rows as text, in the read models' dump format:
/// dates as ISO text, booleans `1`/`0`, numbers in Rust's formatting,
/// lists as JSON, sorted.
fn as_dumped(batches: &[arrow::array::RecordBatch]) -> Vec<Vec<String>> {
    use arrow::datatypes::Float64Type;
    let mut rows = Vec::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .map(|c| {
                    if c.is_null(i) {
                        return "NULL".to_string();
                    }
                    match c.data_type() {
                        DataType::Utf8 => c.as_string::<i32>().value(i).to_string(),
                        DataType::Int64 => c.as_primitive::<Int64Type>().value(i).to_string(),
                        DataType::Float64 => c.as_primitive::<Float64Type>().value(i).to_string(),
                        DataType::Boolean => if c.as_boolean().value(i) { "1" } else { "0" }.to_string(),
                        DataType::Date32 => c
                            .as_primitive::<Date32Type>()
                            .value_as_date(i)
                            .map(|d| d.to_string())
                            .unwrap_or_default(),
                        DataType::List(_) => {
                            let items = c.as_list::<i32>().value(i);
                            let items: Vec<&str> = items.as_string::<i32>().iter().flatten().collect();
                            serde_json::to_string(&items).unwrap_or_default()
                        }
                        other => panic!("no dump format for {other}"),
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    rows.sort();
    rows
}

/// The read models fold events in Rust, the catalog in SQL over the lake's
/// typed tables: on a generated history with late records and retractions,
/// every derived table must come out the same.
#[tokio::test]
async fn the_catalog_equals_the_read_models_on_a_generated_history() {
    let store = Store::embedded();
    let log = store.open().await;
    let head = utfall_tests::append_generated(log.as_ref(), 300, 7).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let models = utfall_projections::ReadModels::connect(&utfall_tests::sqlite_url(dir.path()))
        .await
        .expect("read models");
    assert_eq!(models.catch_up(log.as_ref(), 500).await.expect("read models"), head);
    let lake = Arc::new(Lake::open(&dir.path().join("lake")).expect("lake"));
    assert_eq!(catch_up(log.as_ref(), &lake, 113).await.expect("lake"), head);
    let analytics = utfall_queries::Analytics::new(lake.root(), utfall_queries::Limits::default());

    let now = utfall_queries::Snapshot::default();
    // Every table but `events`, which is stored, not derived.
    for table in TABLES.into_iter().filter(|t| *t != "events") {
        let answer = analytics
            .sql(&now, &format!("SELECT * FROM {table}"))
            .await
            .expect("catalog");
        let catalog = as_dumped(&answer.batches);
        let read_models = models.dump(table).await.expect("dump");
        assert!(!catalog.is_empty(), "{table} has rows");
        assert_eq!(catalog.len(), read_models.len(), "{table}: row counts");
        for (ours, theirs) in catalog.iter().zip(&read_models) {
            assert_eq!(ours, theirs, "{table}");
        }
    }
}
