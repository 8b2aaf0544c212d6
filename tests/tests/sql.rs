//! SQL for evaluators: DESIGN's catalog with real types, through
//! `utfall sql` and `POST /v1/sql`, read-only.

use std::collections::BTreeMap;

use serde_json::Value;
use utfall_tests::{Server, Store, fixture, run_utfall};

fn imported() -> Store {
    let store = Store::embedded();
    let mut args = vec!["import".to_string()];
    args.extend(store.args());
    args.extend(["optimist", "sja-meg"].map(|n| fixture(n).display().to_string()));
    assert!(run_utfall(&args, None).status.success());
    store
}

fn sql(store: &Store, query: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sql".to_string()];
    args.extend(store.args());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(query.to_string());
    run_utfall(&args, None)
}

fn sql_json(store: &Store, query: &str) -> Vec<Value> {
    let out = sql(store, query, &["--format", "json"]);
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON array")
}

/// DESIGN's analytics catalog: table and columns, in order.
const CATALOG: [(&str, &str); 9] = [
    (
        "programs",
        "program, name, organisation, country, starts_on, ends_on, planned_participants, budget_amount, budget_currency",
    ),
    ("targets", "program, metric, op, value, set_on"),
    (
        "events",
        "position, event_id, program, participant, version, type, occurred_on, recorded_at, recorded_by, retracted, data",
    ),
    (
        "participants",
        "program, participant, enrolled_on, exited_on, exit_reason, birth_year, gender, referral_source, target_groups, income_source, prior_psychiatric_diagnosis, physical_challenges, consultant, current_status, current_outcome_group, current_status_since, first_job_on, first_education_on, psychiatric_treatment_on",
    ),
    (
        "status_spells",
        "program, participant, status, outcome_group, from_on, to_on, hours_per_week, pathway",
    ),
    (
        "measurements",
        "program, participant, instrument, wave, occurred_on, item, score",
    ),
    (
        "measurement_scores",
        "program, participant, instrument, wave, occurred_on, composite",
    ),
    (
        "contacts",
        "program, participant, occurred_on, kind, staff_role, attended, minutes",
    ),
    ("services", "program, participant, service, from_on, to_on"),
];

#[test]
fn the_catalog_holds_exactly_designs_tables_and_columns_with_real_types() {
    let store = imported();
    let rows = sql_json(
        &store,
        "SELECT table_name, column_name, data_type FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    );
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut types = BTreeMap::new();
    for row in &rows {
        let (table, column) = (
            row["table_name"].as_str().unwrap_or(""),
            row["column_name"].as_str().unwrap_or(""),
        );
        tables.entry(table.to_string()).or_default().push(column.to_string());
        types.insert(
            format!("{table}.{column}"),
            row["data_type"].as_str().unwrap_or("").to_string(),
        );
    }
    let expected: BTreeMap<String, Vec<String>> = CATALOG
        .iter()
        .map(|(t, c)| (t.to_string(), c.split(", ").map(str::to_string).collect()))
        .collect();
    assert_eq!(tables, expected);
    for (column, want) in [
        ("participants.enrolled_on", "Date32"),
        ("participants.target_groups", "List"),
        ("participants.prior_psychiatric_diagnosis", "Boolean"),
        ("events.recorded_at", "Timestamp"),
        ("events.retracted", "Boolean"),
        ("status_spells.to_on", "Date32"),
        ("measurements.score", "Float64"),
        ("programs.planned_participants", "Int64"),
    ] {
        assert!(types[column].starts_with(want), "{column} is {}", types[column]);
    }
    let groups = sql_json(
        &store,
        "SELECT target_groups FROM participants WHERE participant = 'P01' AND program = 'optimist'",
    );
    assert_eq!(groups[0]["target_groups"], serde_json::json!(["youth"]));
}

#[test]
fn writing_and_reading_files_are_refused_and_nothing_is_written() {
    let store = imported();
    let target = tempfile::tempdir().expect("temporary directory");
    let copy_to = target.path().join("out.csv");
    for query in [
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
        "INSERT INTO events SELECT * FROM events".to_string(),
        "DELETE FROM participants".to_string(),
        "DROP VIEW participants".to_string(),
        format!("COPY (SELECT * FROM participants) TO '{}'", copy_to.display()),
        "CREATE EXTERNAL TABLE secrets STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ] {
        let out = sql(&store, &query, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{query} was allowed");
        assert!(stderr.contains("read-only"), "{query}: {stderr}");
    }
    assert!(!copy_to.exists());
    assert_eq!(sql_json(&store, "SELECT count(*) AS n FROM participants")[0]["n"], 47);
}

#[test]
fn formats_and_errors() {
    let store = imported();
    let out = sql(
        &store,
        "SELECT program, name FROM programs ORDER BY program",
        &["--format", "csv"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "program,name\noptimist,OPTIMIST\nsja-meg,SJÅ MEG DER JE ER\n"
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("spells.parquet");
    let out = sql(
        &store,
        "SELECT * FROM status_spells",
        &["--format", "parquet", "--out", &file.display().to_string()],
    );
    assert!(out.status.success());
    assert_eq!(&std::fs::read(&file).expect("parquet written")[..4], b"PAR1");
    let out = sql(&store, "SELECT nothing FROM participants", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing"));
}

#[tokio::test]
async fn http_answers_in_json_csv_and_arrow_and_refuses_writes() {
    let store = imported();
    // The lake is complete before the server starts, so every answer holds all.
    sql_json(&store, "SELECT 1");
    let server = Server::start(&store.args());
    let client = server.client();
    let query = "SELECT program, count(*) AS n FROM participants GROUP BY program ORDER BY program";
    let json: Value = client
        .post(server.url("/v1/sql"))
        .body(query)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        json,
        serde_json::json!([{"program": "optimist", "n": 15}, {"program": "sja-meg", "n": 32}])
    );

    let csv = client
        .post(server.url("/v1/sql"))
        .header("accept", "text/csv")
        .header("content-type", "application/json")
        .body(serde_json::json!({"sql": query, "as_of": "2020-06-30"}).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.expect("text");
    assert!(text.starts_with("program,n\noptimist,"), "{text}");
    assert!(
        !text.contains("optimist,15"),
        "as of mid-2020 fewer were enrolled: {text}"
    );

    let arrow = client
        .post(server.url("/v1/sql"))
        .header("accept", "application/vnd.apache.arrow.stream")
        .body(query)
        .send()
        .await
        .expect("POST")
        .bytes()
        .await
        .expect("bytes");
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow.to_vec()), None).expect("IPC");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 2);

    let refused = client
        .post(server.url("/v1/sql"))
        .body("DROP VIEW events")
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 403);
    let bad = client
        .post(server.url("/v1/sql"))
        .body("SELEC 1")
        .send()
        .await
        .expect("POST");
    assert_eq!(bad.status(), 400);
    let missing = client
        .get(server.url("/v1/programs/nowhere/outcomes"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    let outcomes: Value = client
        .get(server.url("/v1/programs/optimist/outcomes?as_of=2022-12-31"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(outcomes["status_distribution"]["job"], 5);
    assert_eq!(outcomes["measurement_change"][0]["improved"], 6);
}

#[test]
fn queries_are_held_to_the_memory_and_time_limits() {
    let store = imported();
    let big = "SELECT a.position, b.position FROM events a CROSS JOIN events b ORDER BY a.data, b.data";
    let out = sql(&store, big, &["--query-memory-mb", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a 2.6 M-row sort fitted in 1 MiB");
    assert!(stderr.contains("Resources exhausted"), "{stderr}");
    let out = sql(&store, big, &["--query-timeout", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ran longer than 0ns"), "{stderr}");
}
