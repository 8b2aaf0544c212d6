//! The analytics lake: every event in Parquet and in typed tables, appended
//! in log order, compacted to a bounded number of files, rebuilt on demand,
//! written by one process, read by other engines, and folded by the catalog
//! into the same tables as the read models; the catalogs kept between
//! queries answer for the latest commit.

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
    let theirs = read_by_pyarrow(&lake);
    let ours = serde_json::Value::Object(ours);
    assert_eq!(theirs["facts"], ours, "from the typed facts");
    assert_eq!(theirs["versions"], ours, "from the participants' versions");
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

/// Per generated participant: their enrolment, first status change, exit
/// and first measurement, as (event id, date).
type Milestones = Vec<((String, String), [Option<(String, String)>; 4])>;

fn milestones(events: &[utfall_events::NewEvent]) -> Milestones {
    use utfall_events::vocabulary::EventData;
    let mut found: Milestones = Vec::new();
    for e in events {
        let Some(participant) = &e.participant else { continue };
        let slot = match e.body {
            EventData::ParticipantEnrolled(_) => 0,
            EventData::StatusChanged(_) => 1,
            EventData::ParticipantExited(_) => 2,
            EventData::MeasurementRecorded(_) => 3,
            _ => continue,
        };
        let key = (e.program.to_string(), participant.to_string());
        if slot == 0 {
            found.push((key.clone(), [None, None, None, None]));
        }
        if let Some((_, m)) = found.iter_mut().rev().find(|(k, _)| *k == key) {
            m[slot].get_or_insert((e.event_id.to_string(), e.occurred_on.0.to_string()));
        }
    }
    found
}

/// Corrections in three recordings: late records (a status, a psychiatric
/// treatment and a measurement on the enrolment day, after what the log
/// already holds for that day), retractions of statuses, exits,
/// measurements and enrolments, and new enrolments of those whose
/// enrolment was retracted.
fn corrections(milestones: &Milestones) -> [Vec<serde_json::Value>; 3] {
    use serde_json::json;
    use utfall_tests::wire::id;
    let event = |(program, participant): &(String, String), on: &str, kind: &str, data: serde_json::Value| {
        json!({"event_id": id(), "program": program, "participant": participant, "type": kind,
               "occurred_on": on, "data": data})
    };
    let retract = |key: &(String, String), (target, on): &(String, String)| {
        event(
            key,
            on,
            "event_retracted",
            json!({"event_id": target, "reason": "entered_in_error"}),
        )
    };
    let mut rounds: [Vec<serde_json::Value>; 3] = Default::default();
    for (i, (key, [enrolment, status, exit, measurement])) in milestones.iter().enumerate() {
        let Some((_, enrolled_on)) = enrolment else { continue };
        if i % 4 == 0 {
            rounds[0].push(event(
                key,
                enrolled_on,
                "status_changed",
                json!({"status": "education"}),
            ));
            rounds[0].push(event(
                key,
                enrolled_on,
                "psychiatric_treatment_started",
                json!({"setting": "outpatient"}),
            ));
        }
        if let Some(status) = status.as_ref().filter(|_| i % 3 == 0) {
            rounds[1].push(retract(key, status));
        }
        if let Some(measurement) = measurement.as_ref().filter(|_| i % 3 == 1) {
            rounds[1].push(retract(key, measurement));
        }
        if let Some(exit) = exit.as_ref().filter(|_| i % 5 == 0) {
            rounds[1].push(retract(key, exit));
        }
        if let Some(enrolment) = enrolment.as_ref().filter(|_| i % 7 == 1) {
            rounds[1].push(retract(key, enrolment));
            rounds[2].push(event(
                key,
                &enrolment.1,
                "participant_enrolled",
                json!({"gender": "male"}),
            ));
        }
    }
    rounds
}

/// The lake keeps participants and measurement pairs as bitemporal
/// versions; the catalog once folded them from the typed facts in SQL. On a
/// generated history, appended in several recordings and then corrected
/// (late records, retractions, new enrolments) with the lake reopened
/// midway (its folds reloaded from its files), the two agree — the
/// participants table and measurement change — for every as-of date and
/// known-at time asked.
#[tokio::test]
async fn participant_versions_equal_the_fold_of_the_facts_at_every_snapshot() {
    use utfall_queries::{Analytics, Limits, Snapshot};

    let store = Store::embedded();
    let log = store.open().await;
    let generated = run_utfall(
        &[
            "gen".into(),
            "--participants".into(),
            "120".into(),
            "--seed".into(),
            "11".into(),
        ],
        None,
    );
    assert!(generated.status.success(), "utfall gen");
    let events = utfall_events::wire::parse_batch(&generated.stdout).expect("generated events parse");
    let milestones = milestones(&events);
    let mut recordings: Vec<Vec<utfall_events::NewEvent>> =
        events.chunks(events.len() / 3 + 1).map(<[_]>::to_vec).collect();
    recordings.extend(
        corrections(&milestones)
            .iter()
            .map(|round| utfall_tests::wire::parse(round)),
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let mut lake = Arc::new(Lake::open(dir.path()).expect("lake"));
    let mut recorded = Vec::new();
    for (i, recording) in recordings.into_iter().enumerate() {
        log.append(recording).await.expect("valid events");
        recorded.push(chrono::Utc::now());
        if i == 2 || i == 4 {
            drop(lake);
            lake = Arc::new(Lake::open(dir.path()).expect("reopened lake"));
        }
        catch_up(log.as_ref(), &lake, 97).await.expect("lake");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // A merge applies the voids of the versions it merges: what is left
    // in a span voids versions of earlier spans only.
    let ids = |file: &std::path::Path| -> Vec<i64> {
        let file = std::fs::File::open(file).expect("lake file");
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 8192)
            .expect("Parquet")
            .flat_map(|b| {
                b.expect("batch")
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    };
    let manifest = lake.manifest().expect("manifest");
    let mut voids_left = 0;
    for part in &manifest.parts {
        let of = |table: &str| {
            part.files
                .get(table)
                .map(|f| ids(&lake.root().join(f)))
                .unwrap_or_default()
        };
        let (versions, voids) = (
            of(utfall_projections::lake::VERSIONS),
            of(utfall_projections::lake::VOIDS),
        );
        assert!(
            voids.iter().all(|v| !versions.contains(v)),
            "a merge leaves no void of its own versions"
        );
        voids_left += voids.len();
    }
    assert!(
        manifest.parts.len() > 1 && voids_left > 0,
        "the test leaves voids across spans"
    );

    let analytics = Analytics::new(lake.root(), Limits::default());
    let reference = include_str!("lake/participants_from_facts.sql");
    let order = " ORDER BY program, participant";
    let dates = ["2020-06-30", "2021-03-31", "2022-01-15", "2023-12-31"].map(|d| d.parse::<chrono::NaiveDate>().ok());
    let (mut compared, mut paired) = (0, 0);
    for known_at in recorded.iter().copied().map(Some).chain([None]) {
        for as_of in dates.into_iter().chain([None]) {
            let snapshot = Snapshot::new(as_of, known_at);
            let ours = analytics
                .sql(&snapshot, &format!("SELECT * FROM participants{order}"))
                .await
                .expect("participants");
            let folded = analytics
                .sql(&snapshot, &format!("SELECT * FROM ({reference}){order}"))
                .await
                .expect("the fold of the facts");
            let (ours, folded) = (as_dumped(&ours.batches), as_dumped(&folded.batches));
            assert_eq!(ours, folded, "as of {as_of:?}, known at {known_at:?}");
            compared += ours.len();

            let change = |sql: &str| {
                format!(
                    "SELECT program, instrument, paired, round(mean_first, 9) AS f, round(mean_last, 9) AS l,
                            improved, unchanged, worse, lowest_composite, highest_composite
                     FROM ({sql}) ORDER BY program, instrument"
                )
            };
            let ours = analytics
                .sql(&snapshot, &change(utfall_queries::metrics::MEASUREMENT_CHANGE))
                .await
                .expect("measurement change");
            let folded = analytics
                .sql(&snapshot, &change(&utfall_tests::measurement_change_over_scores()))
                .await
                .expect("measurement change from the scores");
            let (ours, folded) = (as_dumped(&ours.batches), as_dumped(&folded.batches));
            assert_eq!(
                ours, folded,
                "measurement change as of {as_of:?}, known at {known_at:?}"
            );
            paired += ours.len();
        }
    }
    assert!(
        compared > 1000,
        "the snapshots hold participants ({compared} rows compared)"
    );
    assert!(
        paired > 50,
        "the snapshots hold measurement change ({paired} rows compared)"
    );
}

/// Counts participants as `analytics` answers for `snapshot`: in SQL and
/// in the outcome report of `programme`.
async fn enrolled(analytics: &utfall_queries::Analytics, snapshot: &utfall_queries::Snapshot) -> (i64, u64) {
    let counted = analytics
        .sql(snapshot, "SELECT count(*) AS n FROM participants")
        .await
        .expect("count");
    let counted = counted.batches[0].column(0).as_primitive::<Int64Type>().value(0);
    let reported = analytics
        .outcomes(snapshot, Some("kept"))
        .await
        .expect("outcomes")
        .first()
        .map_or(0, |o| o.enrolled);
    (counted, reported)
}

#[tokio::test]
async fn the_catalogs_kept_between_queries_follow_every_commit() {
    use utfall_queries::{Analytics, Limits, Snapshot};
    use utfall_tests::wire::{enrolled as enrolment, program_defined};

    let store = Store::embedded();
    let log = store.open().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let lake = Arc::new(Lake::open(dir.path()).expect("lake"));
    let analytics = Analytics::new(lake.root(), Limits::default());
    let scoped = analytics.for_programme(&utfall_events::ProgramName::new("kept".to_string()).expect("name"));
    let now = Snapshot::default();
    let before_march = Snapshot::new("2021-02-28".parse().ok(), None);
    log.append(utfall_tests::wire::parse(&[program_defined("kept")]))
        .await
        .expect("valid events");
    for i in 1..=3u64 {
        log.append(utfall_tests::wire::parse(&[enrolment("kept", &format!("K{i}"), "2021-03-01")]))
            .await
            .expect("valid events");
        catch_up(log.as_ref(), &lake, 10).await.expect("lake");
        // Each asked twice: once making the catalog, once from the kept one.
        for _ in 0..2 {
            assert_eq!(enrolled(&analytics, &now).await, (i as i64, i), "commit {i}");
            assert_eq!(enrolled(&scoped, &now).await, (i as i64, i), "commit {i}, one programme");
            assert_eq!(enrolled(&analytics, &before_march).await, (0, 0), "commit {i}, as of February");
        }
    }
}
