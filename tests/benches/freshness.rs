//! Freshness under a steady ingest load, release build:
//!
//!     cargo build --release -p utfall && cargo bench -p utfall-tests --bench freshness
//!
//! `utfall serve` (embedded store) takes a batch of ten contacts every
//! 20 ms from a background client; meanwhile one enrolment at a time is
//! posted, and the time from its acknowledgement until it shows is measured
//! in the dashboard's summary (the read models), in SQL (`POST /v1/sql`,
//! the lake) and in the outcome report (the lake). Prints p50, p99 and the
//! maximum of each.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use utfall_tests::wire::*;
use utfall_tests::{Server, Store};

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

#[tokio::main]
async fn main() {
    let store = Store::embedded();
    let server = Server::start(&store.args());
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
    let _ = stop.send(true);
    let _ = background.await;

    println!("\nPOST /v1/events acknowledged -> visible, {SAMPLES} samples under a steady load");
    println!("{:<40} {:>10} {:>10} {:>10}", "where", "p50", "p99", "max");
    for (name, mut times) in ["summary (read models)", "SQL (lake)", "outcome report (lake)"]
        .into_iter()
        .zip(latencies)
    {
        times.sort();
        let quantile = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "{name:<40} {:>10.1?} {:>10.1?} {:>10.1?}",
            quantile(0.5),
            quantile(0.99),
            times[times.len() - 1]
        );
    }
}
