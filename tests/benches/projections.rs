//! Projection benchmark and fault run, with the release binary:
//!
//!     cargo build --release -p utfall && cargo bench -p utfall-tests --bench projections
//!
//! With UTFALL_BENCH_EVENTS (default 1000000) `utfall gen` events in the
//! embedded log, prints side by side: rebuild rate into SQLite and into
//! PostgreSQL, and PostgreSQL `COPY` of the very rows that rebuild wrote;
//! then the time one `utfall project --programs` process with every
//! programme, and up to three over disjoint shares of them, take to fold the
//! whole log into a fresh PostgreSQL database.
//! Then kills `utfall project` ten times during a catch-up into
//! PostgreSQL and checks the result equals the clean rebuild.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::Connection;
use utfall_projections::ReadModels;
use utfall_projections::read_models::schema::{SCHEMA, TABLES};
use utfall_tests::{Store, fresh_database, project_with_kills, run_utfall, sqlite_url, utfall_bin};

const EVENTS_PER_PARTICIPANT: u64 = 46;

fn timed_rebuild(store: &Store, database: Option<&str>) -> (u64, f64) {
    let mut args = vec!["rebuild".to_string()];
    args.extend(store.args());
    if let Some(url) = database {
        args.extend(["--database".to_string(), url.to_string()]);
    }
    let started = Instant::now();
    let output = run_utfall(&args, None);
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "rebuild failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let position = text
        .split("position ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    (position.expect("rebuild reports its position"), seconds)
}

/// Copies every read-model table of `from` out and into an empty copy in a
/// fresh database with `COPY`; returns rows and seconds of the `COPY FROM`s.
async fn copy_rows(from: &str) -> (u64, f64) {
    let mut source = sqlx::PgConnection::connect(from).await.expect("source");
    let target_url = fresh_database().await;
    let mut target = sqlx::PgConnection::connect(&target_url).await.expect("target");
    for statement in SCHEMA {
        sqlx::query(sqlx::AssertSqlSafe(statement.replace("{bool}", "BOOLEAN")))
            .execute(&mut target)
            .await
            .expect("schema");
    }
    let mut dumps = Vec::new();
    for table in TABLES {
        let mut out = source
            .copy_out_raw(&format!("COPY {table} TO STDOUT"))
            .await
            .expect("COPY TO");
        let mut data = Vec::new();
        while let Some(chunk) = out.next().await {
            data.extend_from_slice(&chunk.expect("COPY data"));
        }
        drop(out);
        dumps.push((table, data));
    }
    let (mut rows, started) = (0, Instant::now());
    for (table, data) in dumps {
        let mut copy = target
            .copy_in_raw(&format!("COPY {table} FROM STDIN"))
            .await
            .expect("COPY FROM");
        copy.send(data).await.expect("send COPY data");
        rows += copy.finish().await.expect("finish COPY");
    }
    (rows, started.elapsed().as_secs_f64())
}

/// Seconds `shares` `utfall project --programs` processes, over disjoint
/// sets of `programmes`, take to fold the log up to `head` into a fresh
/// PostgreSQL database.
async fn shared_out(store: &Store, programmes: &[String], shares: usize, head: u64) -> f64 {
    let url = fresh_database().await;
    let models = ReadModels::connect(&url).await.expect("read models");
    let started = Instant::now();
    let mut projectors: Vec<_> = (0..shares)
        .map(|share| {
            let set: Vec<&str> = programmes.iter().skip(share).step_by(shares).map(String::as_str).collect();
            Command::new(utfall_bin())
                .arg("project")
                .args(store.args())
                .args(["--database", &url, "--programs", &set.join(",")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start utfall project")
        })
        .collect();
    loop {
        let checkpoints = models.checkpoints().await.expect("checkpoints");
        let at_head = |p: &String| {
            checkpoints
                .iter()
                .any(|(name, position)| *name == format!("read_models/{p}") && *position >= head)
        };
        if programmes.iter().all(at_head) {
            break;
        }
        for projector in &mut projectors {
            if projector.try_wait().expect("projector state").is_some() {
                let mut stderr = String::new();
                if let Some(mut pipe) = projector.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("a projector ended: {stderr}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    for mut projector in projectors {
        let _ = projector.kill();
        let _ = projector.wait();
    }
    seconds
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::var("UTFALL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let store = Store::embedded();
    let generated = run_utfall(
        &[
            "gen".into(),
            "--participants".into(),
            (events / EVENTS_PER_PARTICIPANT).to_string(),
        ],
        None,
    );
    let Store::Embedded(dir) = &store else {
        unreachable!("an embedded store")
    };
    let file = dir.path().join("gen.ndjson");
    std::fs::write(&file, &generated.stdout).expect("write events");
    let mut import = vec!["import".to_string()];
    import.extend(store.args());
    import.push(file.display().to_string());
    assert!(run_utfall(&import, None).status.success(), "import failed");

    let (sqlite_events, sqlite_s) = timed_rebuild(&store, None);
    let postgres = fresh_database().await;
    let (pg_events, pg_s) = timed_rebuild(&store, Some(&postgres));
    let (copied_rows, copy_s) = copy_rows(&postgres).await;
    let programmes: Vec<String> = String::from_utf8_lossy(&generated.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["type"] == "program_defined")
        .filter_map(|event| event["program"].as_str().map(String::from))
        .collect();
    let one_s = shared_out(&store, &programmes, 1, pg_events).await;
    let shares = programmes.len().min(3);
    let shared_s = shared_out(&store, &programmes, shares, pg_events).await;

    println!();
    println!("read-model projection of {sqlite_events} `utfall gen` events (embedded log)");
    println!("{:<60} {:>9} {:>16}", "what", "seconds", "rate");
    println!(
        "{:<60} {sqlite_s:>9.1} {:>11.0} ev/s",
        "utfall rebuild into SQLite",
        sqlite_events as f64 / sqlite_s
    );
    println!(
        "{:<60} {pg_s:>9.1} {:>11.0} ev/s",
        "utfall rebuild into PostgreSQL",
        pg_events as f64 / pg_s
    );
    println!(
        "{:<60} {copy_s:>9.1} {:>9.0} rows/s",
        format!("PostgreSQL COPY of the same {copied_rows} read-model rows"),
        copied_rows as f64 / copy_s
    );
    for (what, seconds) in [
        (format!("1 `utfall project --programs` ({} programmes) into PostgreSQL", programmes.len()), one_s),
        (format!("{shares} `utfall project --programs` over disjoint shares"), shared_s),
    ] {
        println!("{what:<60} {seconds:>9.1} {:>11.0} ev/s", pg_events as f64 / seconds);
    }

    let faulted = fresh_database().await;
    let started = Instant::now();
    // Spread the kills over the catch-up: about as long as the rebuild took.
    let longest_run = Duration::from_secs_f64(pg_s / 5.0);
    let positions = project_with_kills(&store, Some(&faulted), 10, longest_run, sqlite_events).await;
    println!(
        "projector killed 10 times during catch-up at positions {positions:?}; caught up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (survived, clean) = (
        ReadModels::connect(&faulted).await.expect("read models"),
        ReadModels::connect(&sqlite_url(dir.path()))
            .await
            .expect("rebuilt read models"),
    );
    for table in TABLES {
        let equal = survived.dump(table).await.expect("dump") == clean.dump(table).await.expect("dump");
        println!(
            "  {table:<20} {}",
            if equal {
                "equal to the clean rebuild"
            } else {
                "DIFFERS from the clean rebuild"
            }
        );
        assert!(equal, "{table} differs after the fault run");
    }
}
