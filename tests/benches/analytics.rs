//! Analytics benchmark, release build:
//!
//!     cargo bench -p utfall-tests --bench analytics
//!
//! With UTFALL_BENCH_EVENTS (default 10 000 000) `utfall gen` events written
//! into a lake (as the lake projector writes it), prints side by side:
//! utfall's own path (DataFusion over the lake's typed tables and the
//! versions the projector keeps, for the snapshot asked, then every
//! outcome metric of every programme, then again with every section a
//! report can be asked for; the two evaluator queries the same way; and
//! each piece of a report on its own), and the same metric SQL
//! over the same catalog tables exported once to Parquet, in DataFusion,
//! in DuckDB (PyPI `duckdb`, installed into target/test-tools/clients when
//! missing) and in PostgreSQL (tables loaded with COPY, indexed as the
//! read models are).
//! Each figure is the best of three runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use sqlx::Connection;
use utfall_queries::{Analytics, Anchor, Cohorts, Horizon, Limits, Sections, Snapshot, metrics, render};
use utfall_tests::generated::bench_lake;
use utfall_tests::{EVALUATOR_QUERIES, fresh_database, peak_rss_mib, reset_peak_rss};

const RUNS: usize = 3;
const TABLES: [&str; 4] = ["participants", "status_spells", "measurement_scores", "measurements"];

/// The metric SQL every engine runs over the same tables.
fn queries() -> Vec<(String, String)> {
    let mut q: Vec<(String, String)> = metrics::SHARES
        .iter()
        .map(|m| (m.name.to_string(), m.sql.to_string()))
        .collect();
    q.push(("status_distribution".into(), metrics::STATUS_DISTRIBUTION.into()));
    // utfall's definition reads the pairs the lake projector keeps; every
    // engine here runs it over pairs derived from the catalog with windows.
    q.push((
        "measurement_change (windows)".into(),
        utfall_tests::measurement_change_over_scores(),
    ));
    q.push(("poor_by_wave".into(), metrics::POOR_BY_WAVE.into()));
    q.extend(EVALUATOR_QUERIES.map(|(name, sql)| (name.to_string(), sql.to_string())));
    q
}

async fn best<F, Fut>(mut run: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        run().await;
        times.push(started.elapsed().as_secs_f64());
    }
    times.into_iter().fold(f64::INFINITY, f64::min)
}

fn pg_type(t: &DataType) -> &'static str {
    match t {
        DataType::Date32 => "date",
        DataType::Int64 | DataType::Int32 => "bigint",
        DataType::Float64 => "double precision",
        DataType::Boolean => "boolean",
        _ => "text",
    }
}

async fn load_postgres(url: &str, exported: &[(String, SchemaRef, Vec<u8>)]) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("PostgreSQL");
    for (table, schema, csv) in exported {
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), pg_type(f.data_type())))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} ({})",
            columns.join(", ")
        )))
        .execute(&mut conn)
        .await
        .expect("create");
        let mut copy = conn
            .copy_in_raw(&format!("COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)"))
            .await
            .expect("COPY");
        copy.send(csv.as_slice()).await.expect("COPY data");
        copy.finish().await.expect("COPY finish");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE INDEX ON {table} (program, participant)"
        )))
        .execute(&mut conn)
        .await
        .expect("index");
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
            .execute(&mut conn)
            .await
            .expect("analyze");
    }
}

fn duckdb_python(tools: &Path) -> String {
    let python = tools.join("clients/bin/python");
    let has = |p: &Path| {
        Command::new(p)
            .args(["-c", "import duckdb"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has(&python) {
        assert!(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(tools.join("clients"))
                .status()
                .is_ok_and(|s| s.success())
        );
        let pip = tools.join("clients/bin/pip");
        assert!(
            Command::new(pip)
                .args(["install", "--quiet", "duckdb"])
                .status()
                .is_ok_and(|s| s.success()),
            "pip install duckdb"
        );
    }
    python.display().to_string()
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().expect("work directory");
    let started = Instant::now();
    let (lake, written, participants) = bench_lake(10_000_000, work.path());
    let lake_build = started.elapsed().as_secs_f64();
    let lake_peak = peak_rss_mib("self");
    reset_peak_rss("self");

    let limits = Limits {
        memory_bytes: 8 << 30,
        timeout: std::time::Duration::from_secs(3600),
        max_rows: usize::MAX,
        max_bytes: usize::MAX,
    };
    let analytics = Analytics::new(lake.root(), limits);
    let now = Snapshot::default();
    let report = analytics.outcomes(&now, None).await.expect("outcomes").len();
    let from_lake_all = best(|| async {
        analytics.outcomes(&now, None).await.expect("outcomes");
    })
    .await;
    // Every section issue 16 added, for every programme, beside the plain
    // reports: a horizon, cohorts by year, the quarterly rate, on track.
    let sections = Sections {
        horizon: Some(Horizon {
            months: 6,
            from: Anchor::Exit,
            censor: true,
        }),
        cohorts: Some(Cohorts::Year),
        quarterly: true,
        on_track: true,
        compare_with: None,
    };
    let with_sections = best(|| async {
        analytics.outcomes_with(&now, None, &sections).await.expect("outcomes");
    })
    .await;
    println!(
        "utfall: all reports {from_lake_all:.3} s; with a horizon, cohorts, the quarterly rate and on track {with_sections:.3} s ({:.2}×)",
        with_sections / from_lake_all
    );
    // Each section on its own, to see where that time goes.
    let alone = [
        (
            "a horizon",
            Sections {
                horizon: sections.horizon,
                ..Sections::default()
            },
        ),
        (
            "cohorts",
            Sections {
                cohorts: sections.cohorts.clone(),
                ..Sections::default()
            },
        ),
        (
            "cohorts at a horizon",
            Sections {
                horizon: sections.horizon,
                cohorts: sections.cohorts.clone(),
                ..Sections::default()
            },
        ),
        (
            "the quarterly rate",
            Sections {
                quarterly: true,
                ..Sections::default()
            },
        ),
        (
            "on track",
            Sections {
                on_track: true,
                ..Sections::default()
            },
        ),
    ];
    for (name, section) in &alone {
        let seconds = best(|| async {
            analytics.outcomes_with(&now, None, section).await.expect("outcomes");
        })
        .await;
        println!(
            "utfall: all reports with {name} {seconds:.3} s ({:.2}×)",
            seconds / from_lake_all
        );
    }
    let from_lake_quarter = best(|| async {
        analytics.sql(&now, EVALUATOR_QUERIES[0].1).await.expect("query");
    })
    .await;
    // The same first after a commit: an engine that has kept nothing yet
    // makes the catalog and computes `participants`.
    let fresh = || Analytics::new(lake.root(), limits);
    let first_all = best(|| async {
        fresh().outcomes(&now, None).await.expect("outcomes");
    })
    .await;
    // What a dashboard pays at its first poll after a commit: nothing is
    // computed yet (`participants`, `status_spells`, the horizon's rows).
    let first_with_sections = best(|| async {
        fresh().outcomes_with(&now, None, &sections).await.expect("outcomes");
    })
    .await;
    let first_quarter = best(|| async {
        fresh().sql(&now, EVALUATOR_QUERIES[0].1).await.expect("query");
    })
    .await;
    println!(
        "utfall, first after a commit: all reports {first_all:.3} s, with every section {first_with_sections:.3} s ({:.2}×), by quarter {first_quarter:.3} s",
        first_with_sections / first_all
    );
    let from_lake_consultant = best(|| async {
        analytics.sql(&now, EVALUATOR_QUERIES[1].1).await.expect("query");
    })
    .await;
    // As known a year before the last event was recorded.
    let last_recorded = analytics
        .sql(&now, "SELECT max(recorded_at) AS t FROM events")
        .await
        .expect("last recording");
    let last_recorded = render::json(&last_recorded).expect("JSON");
    let last_recorded: serde_json::Value = serde_json::from_slice(&last_recorded).expect("JSON");
    let known_at = last_recorded[0]["t"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc) - chrono::Duration::days(365))
        .expect("a last recording time");
    let year_back = Snapshot::new(None, Some(known_at));
    let from_lake_year_back = best(|| async {
        analytics.outcomes(&year_back, None).await.expect("outcomes");
    })
    .await;
    let programme = analytics
        .outcomes(&now, None)
        .await
        .expect("outcomes")
        .first()
        .map(|o| o.program.clone())
        .expect("a programme");
    let one_programme =
        analytics.for_programme(&utfall_events::ProgramName::new(programme.clone()).expect("programme name"));
    let from_lake_one = best(|| async {
        one_programme.outcomes(&now, None).await.expect("outcomes");
    })
    .await;
    let answering_peak = peak_rss_mib("self");
    // Where a report's time goes: each piece on its own over utfall's own
    // path, first after a commit (each one makes the catalog and derives
    // the tables it reads).
    let mut pieces = vec![
        // What every query pays before it reads a row: the session over
        // the lake's latest commit.
        ("a session (SELECT 1)".to_string(), "SELECT 1".to_string()),
        (
            "participants".to_string(),
            "SELECT count(*) FROM participants".to_string(),
        ),
        (
            "measurement_scores".into(),
            "SELECT count(*) FROM measurement_scores".into(),
        ),
        ("measurement_change".into(), metrics::MEASUREMENT_CHANGE.into()),
        ("poor_by_wave".into(), metrics::POOR_BY_WAVE.into()),
        ("time_to_first_job".into(), metrics::TIME_TO_FIRST_JOB.into()),
    ];
    pieces.extend(metrics::SHARES.iter().map(|m| (m.name.to_string(), m.sql.to_string())));
    for (name, sql) in &pieces {
        let seconds = best(|| async {
            fresh().sql(&now, sql).await.expect("query");
        })
        .await;
        println!("utfall, {name} alone: {seconds:.3} s");
    }
    println!(
        "utfall: all reports {from_lake_all:.3} s, by quarter {from_lake_quarter:.3} s, by consultant {from_lake_consultant:.3} s, {programme} alone {from_lake_one:.3} s, a year back {from_lake_year_back:.3} s; peak RSS {answering_peak} MiB"
    );

    // The same catalog tables, once, for every engine.
    let parquet_dir = work.path().join("tables");
    std::fs::create_dir_all(&parquet_dir).expect("tables folder");
    let mut exported = Vec::new();
    let mut rows = BTreeMap::new();
    for table in TABLES {
        let answer = analytics
            .sql(&now, &format!("SELECT * FROM {table}"))
            .await
            .expect("export");
        rows.insert(table, answer.batches.iter().map(|b| b.num_rows()).sum::<usize>());
        std::fs::write(
            parquet_dir.join(format!("{table}.parquet")),
            render::parquet(&answer).expect("parquet"),
        )
        .expect("write");
        exported.push((
            table.to_string(),
            answer.schema.clone(),
            render::csv(&answer).expect("csv"),
        ));
    }
    println!("catalog tables: {rows:?}");

    let queries = queries();
    let ctx = SessionContext::new();
    for table in TABLES {
        ctx.register_parquet(
            table,
            parquet_dir.join(format!("{table}.parquet")).display().to_string(),
            ParquetReadOptions::default(),
        )
        .await
        .expect("register");
    }
    let ctx = Arc::new(ctx);
    let mut datafusion = BTreeMap::new();
    for (name, sql) in &queries {
        let seconds = best(|| {
            let ctx = ctx.clone();
            async move {
                ctx.sql(sql).await.expect("plan").collect().await.expect("run");
            }
        })
        .await;
        datafusion.insert(name.clone(), seconds);
    }

    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-tools");
    let python = duckdb_python(&tools);
    let queries_file = work.path().join("queries.json");
    let as_map: BTreeMap<&String, &String> = queries.iter().map(|(n, s)| (n, s)).collect();
    std::fs::write(&queries_file, serde_json::to_string(&as_map).expect("JSON")).expect("write queries");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/analytics/duckdb_timings.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&queries_file)
        .arg(&parquet_dir)
        .arg(RUNS.to_string())
        .output()
        .expect("run DuckDB");
    assert!(out.status.success(), "DuckDB: {}", String::from_utf8_lossy(&out.stderr));
    let duckdb: BTreeMap<String, f64> = serde_json::from_slice(&out.stdout).expect("DuckDB timings");

    let url = fresh_database().await;
    let started = Instant::now();
    load_postgres(&url, &exported).await;
    println!(
        "PostgreSQL: tables loaded with COPY in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("PostgreSQL");
    let mut postgres = BTreeMap::new();
    for (name, sql) in &queries {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(&mut conn)
                .await
                .expect("PostgreSQL query");
            times.push(started.elapsed().as_secs_f64());
        }
        postgres.insert(name.clone(), times.into_iter().fold(f64::INFINITY, f64::min));
    }

    let sum = |engine: &BTreeMap<String, f64>| {
        queries
            .iter()
            .filter(|(n, _)| !n.starts_with("evaluator"))
            .map(|(n, _)| engine[n])
            .sum::<f64>()
    };
    println!("\n{written} events, {participants} participants, best of {RUNS} runs, seconds");
    println!(
        "utfall gen + lake build: {lake_build:.1} s, peak RSS {lake_peak} MiB (the generated NDJSON is held in memory); peak RSS while utfall answered {answering_peak} MiB\n"
    );
    println!("{:<52} {:>12} {:>12} {:>12}", "", "utfall", "DuckDB", "PostgreSQL");
    println!("{:<52} {:>12} {:>12} {:>12}", "", "(from log)", "(tables)", "(tables)");
    println!(
        "{:<52} {from_lake_all:>12.3} {:>12.3} {:>12.3}",
        format!("all outcome reports, {report} programmes"),
        sum(&duckdb),
        sum(&postgres)
    );
    for (name, ours) in [
        ("evaluator: status by quarter", from_lake_quarter),
        ("evaluator: COOP/WONCA by consultant", from_lake_consultant),
    ] {
        println!(
            "{name:<52} {ours:>12.3} {:>12.3} {:>12.3}",
            duckdb[name], postgres[name]
        );
    }
    println!(
        "{:<52} {from_lake_one:>12.3}",
        format!("outcome report of {programme} alone")
    );
    println!(
        "{:<52} {from_lake_year_back:>12.3}   ({:.2}x the current report)\n",
        "all outcome reports as known a year back",
        from_lake_year_back / from_lake_all
    );
    println!(
        "{:<38} {:>11} {:>9} {:>11} {:>10}",
        "same SQL over the same catalog tables", "DataFusion", "DuckDB", "PostgreSQL", "DF/DuckDB"
    );
    let mut totals = [0.0; 3];
    for (name, _) in &queries {
        let (d, k, p) = (datafusion[name], duckdb[name], postgres[name]);
        if !name.starts_with("evaluator") {
            totals[0] += d;
            totals[1] += k;
            totals[2] += p;
        }
        println!("{name:<38} {d:>11.3} {k:>9.3} {p:>11.3} {:>9.1}x", d / k);
    }
    println!(
        "{:<38} {:>11.3} {:>9.3} {:>11.3} {:>9.1}x",
        "all outcome metrics (sum)",
        totals[0],
        totals[1],
        totals[2],
        totals[0] / totals[1]
    );
}
