//! Freshness under a steady ingest load, release build:
//!
//!     cargo build --release -p utfall && cargo bench -p utfall-tests --bench freshness
//!
//! `utfall serve` (embedded store) takes a batch of ten contacts every
//! 20 ms from a background client; meanwhile one enrolment at a time is
//! posted, and the time from its acknowledgement until it shows is measured
//! in the dashboard's summary (the read models), in SQL (`POST /v1/sql`,
//! the lake) and in the outcome report (the lake). Prints p50, p99 and the
//! maximum of each. Then, under the same load, the dashboard's poll
//! (`GET /v1/programs/{p}/summary`) at `UTFALL_BENCH_POLL_RATE` requests a
//! second (default 1000) for `UTFALL_BENCH_POLL_SECONDS` (default 10), once
//! without and once with the last ETag seen (`If-None-Match`): p50, p99,
//! the rate reached and the share answered 304.
//!
//! With `UTFALL_BENCH_EVENTS=N` the store first holds a generated history
//! of about N events (`utfall gen`, `utfall import`), and before the load
//! starts the server answers the analytics benchmark's questions over
//! HTTP (every programme's outcome report and the evaluators' two
//! queries), printing each time and the server's peak resident memory.
//! (An imported history is recorded at the time of the import, so "as
//! known a year back" is the analytics bench's to measure.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use utfall_tests::wire::*;
use utfall_tests::{EVALUATOR_QUERIES, Server, Store, generated, peak_rss_mib, reset_peak_rss, run_utfall, setting};

const SAMPLES: usize = 300;

/// How many participants of programme `load` each view shows.
async fn shown(server: &Server, client: &reqwest::Client, view: usize) -> Option<u64> {
    let request = match view {
        0 => client.get(server.url("/v1/programs/load/summary")),
        1 => client
            .post(server.url("/v1/sql"))
            .json(&json!({"sql": "SELECT count(*) AS enrolled FROM participants WHERE program = 'load'"})),
        _ => client.get(server.url("/v1/programs/load/outcomes")),
    };
    let answer: Value = request.send().await.ok()?.json().await.ok()?;
    // SQL answers rows; the others one object.
    let answer = if view == 1 { answer[0].clone() } else { answer };
    answer["enrolled"].as_u64()
}

/// Imports a generated history of about UTFALL_BENCH_EVENTS events into
/// `store`; returns how many events that asked for (0: none).
fn import_history(store: &Store) -> u64 {
    let events = generated::bench_events(0);
    if events == 0 {
        return 0;
    }
    let work = tempfile::tempdir().expect("work directory");
    let file = work.path().join("history.ndjson");
    generated::generate(events, &file);
    let started = Instant::now();
    let mut args = vec!["import".to_string()];
    args.extend(store.args());
    args.push(file.display().to_string());
    let out = run_utfall(&args, None);
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    println!("utfall import: {:.1} s", started.elapsed().as_secs_f64());
    events
}

/// Times `request` (which must succeed) and prints it under `name`.
async fn timed(name: &str, request: reqwest::RequestBuilder) {
    let started = Instant::now();
    let answer = request.send().await.expect("request");
    assert!(answer.status().is_success(), "{name}: {}", answer.status());
    answer.bytes().await.expect("an answer");
    println!("{name:<50} {:>8.3} s", started.elapsed().as_secs_f64());
}

/// The analytics benchmark's questions over HTTP, each asked twice (the
/// first pays for the catalog of the lake's commit); prints the server's
/// peak memory while it answered.
async fn answer_benchmark(server: &Server) {
    let client = server.client();
    let pid = server.pid();
    reset_peak_rss(&pid);
    let programmes: Value = client
        .get(server.url("/v1/programs"))
        .send()
        .await
        .expect("programmes")
        .json()
        .await
        .expect("JSON");
    let programmes: Vec<String> = programmes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["program"].as_str().map(str::to_string))
        .collect();
    for round in ["first", "again"] {
        let started = Instant::now();
        for programme in &programmes {
            client
                .get(server.url(&format!("/v1/programs/{programme}/outcomes")))
                .send()
                .await
                .expect("outcomes")
                .error_for_status()
                .expect("an outcome report");
        }
        println!(
            "{:<50} {:>8.3} s",
            format!("{} outcome reports ({round})", programmes.len()),
            started.elapsed().as_secs_f64()
        );
        for (name, sql) in EVALUATOR_QUERIES {
            timed(
                &format!("{name} ({round})"),
                client.post(server.url("/v1/sql")).json(&json!({ "sql": sql })),
            )
            .await;
        }
    }
    println!("serve peak RSS while answering: {} MiB", peak_rss_mib(&pid));
}

/// One run of the dashboard's poll: latencies, how many were answered
/// 304, and the seconds the run took.
struct PollRun {
    latencies: Vec<Duration>,
    not_modified: usize,
    seconds: f64,
}

/// GETs the summary `rate` times a second for `seconds`, each request on a
/// task of its own so that a slow answer does not lower the rate. With
/// `etag`, each request carries the last ETag an answer gave.
async fn poll_at(server: &Server, rate: u64, seconds: u64, etag: bool) -> PollRun {
    let client = server.client();
    let url = server.url("/v1/programs/load/summary");
    let last: Arc<Mutex<Option<String>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    let mut requests = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..rate * seconds {
        tick.tick().await;
        let (client, url, last) = (client.clone(), url.clone(), last.clone());
        requests.spawn(async move {
            let mut request = client.get(url);
            let known = last.lock().ok().and_then(|l| l.clone());
            if let Some(tag) = known.filter(|_| etag) {
                request = request.header("if-none-match", tag);
            }
            let sent = Instant::now();
            let answer = request.send().await.expect("GET summary");
            let status = answer.status();
            assert!(status.is_success() || status == 304, "summary answered {status}");
            if let Some(tag) = answer.headers().get("etag").and_then(|t| t.to_str().ok())
                && let Ok(mut l) = last.lock()
            {
                *l = Some(tag.to_string());
            }
            answer.bytes().await.expect("summary body");
            (sent.elapsed(), status == 304)
        });
    }
    let mut run = PollRun {
        latencies: Vec::new(),
        not_modified: 0,
        seconds: 0.0,
    };
    while let Some(done) = requests.join_next().await {
        let (took, not_modified) = done.expect("poll task");
        run.latencies.push(took);
        run.not_modified += usize::from(not_modified);
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

/// The `q` quantile of sorted `times`.
fn quantile(times: &[Duration], q: f64) -> Duration {
    times[((times.len() as f64 * q) as usize).min(times.len() - 1)]
}

#[tokio::main]
async fn main() {
    let store = Store::embedded();
    let history = import_history(&store);
    let started = Instant::now();
    let server = Server::start(&store.args());
    if history > 0 {
        server.caught_up_within(Duration::from_secs(4 * 3600)).await;
        println!(
            "serve caught up with the history: {:.1} s, peak RSS {} MiB",
            started.elapsed().as_secs_f64(),
            peak_rss_mib(&server.pid())
        );
        answer_benchmark(&server).await;
    }
    let setup = server
        .post_events(&[program_defined("load"), enrolled("load", "L0", "2021-01-04")])
        .await;
    assert!(setup.is_success());

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (base, client) = (server.base.clone(), server.client());
    let background = tokio::spawn(async move {
        while !*stopped.borrow() {
            let batch: Vec<Value> = (0..10).map(|_| contact("load", "L0", "2021-02-01")).collect();
            let _ = client
                .post(format!("{base}/v1/events"))
                .header("content-type", "application/x-ndjson")
                .body(ndjson(&batch))
                .send()
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let poller = server.client();
    let mut latencies: [Vec<Duration>; 3] = Default::default();
    for i in 1..=SAMPLES {
        let sent = server
            .post_events(&[enrolled("load", &format!("V{i}"), "2021-03-01")])
            .await;
        assert!(sent.is_success());
        let acknowledged = Instant::now();
        // Each view polled on its own, so a slow one does not delay noticing
        // another.
        let until_shown = |view: usize| {
            let (server, client) = (&server, &poller);
            async move {
                while shown(server, client, view).await != Some(i as u64 + 1) {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                acknowledged.elapsed()
            }
        };
        let (summary, sql, report) = futures::join!(until_shown(0), until_shown(1), until_shown(2));
        for (times, took) in latencies.iter_mut().zip([summary, sql, report]) {
            times.push(took);
        }
    }
    let (rate, seconds) = (setting("UTFALL_BENCH_POLL_RATE", 1000), setting("UTFALL_BENCH_POLL_SECONDS", 10));
    let polls = [
        ("without ETag", poll_at(&server, rate, seconds, false).await),
        ("with the last ETag", poll_at(&server, rate, seconds, true).await),
    ];
    let _ = stop.send(true);
    let _ = background.await;

    println!("\nPOST /v1/events acknowledged -> visible, {SAMPLES} samples under a steady load");
    println!("{:<40} {:>10} {:>10} {:>10}", "where", "p50", "p99", "max");
    for (name, mut times) in ["summary (read models)", "SQL (lake)", "outcome report (lake)"]
        .into_iter()
        .zip(latencies)
    {
        times.sort();
        println!(
            "{name:<40} {:>10.1?} {:>10.1?} {:>10.1?}",
            quantile(&times, 0.5),
            quantile(&times, 0.99),
            times[times.len() - 1]
        );
    }

    println!("\nGET /v1/programs/load/summary at {rate} requests/s for {seconds} s, under the same load");
    println!("{:<24} {:>10} {:>10} {:>10} {:>12} {:>8}", "poll", "p50", "p99", "max", "requests/s", "304s");
    for (name, mut run) in polls {
        run.latencies.sort();
        let count = run.latencies.len();
        println!(
            "{name:<24} {:>10.1?} {:>10.1?} {:>10.1?} {:>12.0} {:>7.0}%",
            quantile(&run.latencies, 0.5),
            quantile(&run.latencies, 0.99),
            run.latencies[count - 1],
            count as f64 / run.seconds,
            100.0 * run.not_modified as f64 / count as f64
        );
    }
}
