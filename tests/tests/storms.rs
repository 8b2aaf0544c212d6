//! Kill storms on ingest, both stores: a `utfall gen` history is posted in
//! HTTP batches by several clients, each retrying a batch (same event ids)
//! on any error or timeout until it is acknowledged, while `utfall serve`
//! is SIGKILLed and restarted at moments spread over the run (and, for
//! JetStream, the NATS server too; and in a three-node cluster with the
//! log replicated three times, each node in turn, down for two seconds).
//! Afterwards every event is in the log exactly once, the read models and
//! the lake equal clean rebuilds, and every outcome figure equals a fresh
//! import of the same history. The server takes at most two batches at
//! once (`--max-ingest-batches 2`), so its back-pressure answers (503,
//! `Retry-After`) are part of the storm.
//!
//! Size: `UTFALL_STORM_PARTICIPANTS` (default 300, about 14 k events),
//! `UTFALL_STORM_KILLS` (default 5 server kills), `UTFALL_STORM_NATS_KILLS`
//! (default 2). The full size the README reports: 21 700 participants
//! (1 M events), 20 server kills and 5 NATS kills.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use utfall_projections::ReadModels;
use utfall_tests::{Cli, Store, ThrowawayNats, run_utfall, setting, sqlite_url};

const CLIENTS: usize = 4;
const BATCH: usize = 250;

/// The history as NDJSON lines, and each line's event id.
fn generated(participants: u64, file: &std::path::Path) -> Vec<(String, String)> {
    let out = run_utfall(
        &["gen", "--participants", &participants.to_string(), "--out", &file.display().to_string()].map(String::from),
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(file)
        .expect("generated history")
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).expect("JSON");
            (line.to_string(), event["event_id"].as_str().expect("event id").to_string())
        })
        .collect()
}

/// Events acknowledged, and batches answered "busy", by all clients.
#[derive(Default)]
struct Tally {
    acknowledged: AtomicU64,
    busy: AtomicU64,
}

/// Posts `lines` in batches, each until it is acknowledged; the server's
/// address may change between attempts (it is restarted).
async fn post_all(base: Arc<RwLock<String>>, token: String, lines: Vec<String>, tally: Arc<Tally>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for batch in lines.chunks(BATCH) {
        let body = batch.join("\n");
        let started = Instant::now();
        loop {
            let url = format!("{}/v1/events", base.read().expect("base").clone());
            let sent = client
                .post(url)
                .bearer_auth(&token)
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
                .send()
                .await;
            let answer = match sent {
                Ok(answer) => Some((answer.status(), answer.text().await.unwrap_or_default())),
                Err(_) => None,
            };
            match answer {
                Some((reqwest::StatusCode::CREATED, _)) => break,
                Some((reqwest::StatusCode::UNPROCESSABLE_ENTITY, text)) => {
                    panic!("a batch of the history was refused: {text}")
                }
                Some((reqwest::StatusCode::SERVICE_UNAVAILABLE, text)) if text.contains("too many event batches") => {
                    tally.busy.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            assert!(started.elapsed() < Duration::from_secs(120), "a batch was never acknowledged");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tally.acknowledged.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
}

/// `utfall outcomes` of `program`, without what names the moment asked.
fn figures(cli: &Cli, program: &str) -> Value {
    let out = cli.run("outcomes", &["--program", program, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for moment in ["as_of", "known_at", "log_position"] {
        report.as_object_mut().expect("report").remove(moment);
    }
    report
}

/// Whether two reports agree, numbers to 1e-12 relative: a mean summed
/// over files cut differently (a lake grown page by page, or rebuilt in
/// one) may differ in its last bits.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The fields of the reports that differ, by programme (reports are large).
fn differences(a: &[Value], b: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(b) {
        for (field, value) in a.as_object().into_iter().flatten() {
            if !b.get(field).is_some_and(|other| same(value, other)) {
                found.push(format!("{}: {field}: {value} vs {}", a["program"], b[field]));
            }
        }
    }
    found
}

async fn dump(url: &str) -> BTreeMap<&'static str, Vec<Vec<String>>> {
    let models = ReadModels::connect(url).await.expect("read models");
    let mut tables = BTreeMap::new();
    for table in utfall_projections::read_models::schema::TABLES {
        tables.insert(table, models.dump(table).await.expect("dump"));
    }
    tables
}

/// What the storm does at one of its moments.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL `utfall serve`, and start it again.
    Server,
    /// SIGKILL a NATS server, and start it again after a while.
    Nats { node: usize, down: Duration },
}

/// `kills` server kills, with `nats` kills of NATS node 0 spread among them.
fn faults(kills: u64, nats: u64) -> Vec<Fault> {
    let every = if nats == 0 { u64::MAX } else { (kills + nats) / nats };
    let mut faults = Vec::new();
    let (mut server, mut node) = (0, 0);
    for k in 1..=kills + nats {
        if (k % every == 0 && node < nats) || server == kills {
            node += 1;
            faults.push(Fault::Nats {
                node: 0,
                down: Duration::from_millis(500),
            });
        } else {
            server += 1;
            faults.push(Fault::Server);
        }
    }
    faults
}

async fn ingest_through_a_storm(store: Store, mut nodes: Vec<ThrowawayNats>, faults: Vec<Fault>, serve_args: &[&str]) {
    let participants = setting("UTFALL_STORM_PARTICIPANTS", 300);
    let files = tempfile::tempdir().expect("temp dir");
    let history = files.path().join("history.ndjson");
    let events = generated(participants, &history);
    let total = events.len() as u64;

    // Programme events first; then each participant's, in order, always
    // by the same client.
    let mut programmes = Vec::new();
    let mut per_client: Vec<Vec<String>> = vec![Vec::new(); CLIENTS];
    for (line, _) in &events {
        let event: Value = serde_json::from_str(line).expect("JSON");
        match event["participant"].as_str() {
            None => programmes.push(line.clone()),
            Some(p) => {
                let client = p.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize)) % CLIENTS;
                per_client[client].push(line.clone());
            }
        }
    }

    let cli = Arc::new(Cli::new(store));
    let serve_args: Vec<String> = ["--max-ingest-batches", "2"].iter().chain(serve_args).map(|a| a.to_string()).collect();
    let first = cli.serve(&serve_args.iter().map(String::as_str).collect::<Vec<_>>());
    let token = first.admin_token.clone();
    let base = Arc::new(RwLock::new(first.base.clone()));
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    post_all(base.clone(), token.clone(), programmes, tally.clone()).await;
    let clients: Vec<_> = per_client
        .into_iter()
        .map(|lines| tokio::spawn(post_all(base.clone(), token.clone(), lines, tally.clone())))
        .collect();

    // Strike at evenly spread shares of the history acknowledged, so every
    // fault falls during ingest whatever the machine's speed.
    let mut server = first;
    let (mut server_kills, mut nats_kills) = (0, 0);
    for (k, fault) in faults.iter().enumerate() {
        let due = total * (k as u64 + 1) / (faults.len() as u64 + 1);
        while tally.acknowledged.load(Ordering::Relaxed) < due {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match *fault {
            Fault::Nats { node, down } => {
                nodes[node].stop();
                tokio::time::sleep(down).await;
                nodes[node].restart();
                nats_kills += 1;
            }
            Fault::Server => {
                server.kill();
                let (cli, args) = (cli.clone(), serve_args.clone());
                server = tokio::task::spawn_blocking(move || cli.serve(&args.iter().map(String::as_str).collect::<Vec<_>>()))
                    .await
                    .expect("restart");
                *base.write().expect("base") = server.base.clone();
                server_kills += 1;
            }
        }
    }
    for client in clients {
        client.await.expect("client");
    }
    server.caught_up_within(Duration::from_secs(600)).await;
    server.kill();
    let busy = tally.busy.load(Ordering::Relaxed);
    println!(
        "{total} events acknowledged in {:.0} s through {server_kills} kills of utfall serve and {nats_kills} of NATS; {busy} batches answered busy",
        started.elapsed().as_secs_f64()
    );
    assert!(busy > 0, "four clients never met the server's cap of two batches at once");

    // Exactly once: every event id of the history, none twice.
    let log = cli.store.open().await;
    let mut stored: HashMap<String, u32> = HashMap::new();
    let mut after = 0;
    loop {
        let page = log.read(after, 10_000).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            *stored.entry(e.event.event_id.to_string()).or_default() += 1;
        }
    }
    drop(log);
    let sent: HashSet<&str> = events.iter().map(|(_, id)| id.as_str()).collect();
    let lost = sent.iter().filter(|id| !stored.contains_key(**id)).count();
    let twice = stored.values().filter(|n| **n > 1).count();
    let stray = stored.keys().filter(|id| !sent.contains(id.as_str())).count();
    println!("events lost: {lost}, stored twice: {twice}, not sent: {stray}");
    assert_eq!((lost, twice, stray), (0, 0, 0));

    // The read models and the lake equal clean rebuilds, and the figures a
    // fresh import of the same history.
    let programmes: Vec<String> = events
        .iter()
        .filter(|(line, _)| line.contains("\"type\":\"program_defined\""))
        .map(|(line, _)| serde_json::from_str::<Value>(line).expect("JSON")["program"].as_str().expect("program").to_string())
        .collect();
    let live_figures: Vec<Value> = programmes.iter().map(|p| figures(&cli, p)).collect();
    let url = sqlite_url(cli.store.data_dir());
    let live = dump(&url).await;
    for projection in ["read_models", "lake"] {
        let out = cli.run("rebuild", &["--projection", projection]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(live == dump(&url).await, "the read models differ from a clean rebuild");
    let rebuilt_figures: Vec<Value> = programmes.iter().map(|p| figures(&cli, p)).collect();
    let rebuilt = differences(&live_figures, &rebuilt_figures);
    assert!(rebuilt.is_empty(), "the lake differs from a clean rebuild: {rebuilt:#?}");
    let fresh = Cli::new(Store::embedded());
    let out = fresh.run("import", &[&history.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fresh_figures: Vec<Value> = programmes.iter().map(|p| figures(&fresh, p)).collect();
    let fresh = differences(&live_figures, &fresh_figures);
    assert!(fresh.is_empty(), "the figures differ from a fresh import: {fresh:#?}");
    assert!(total > 1000, "only {total} events");
}

mod embedded {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ingest_through_a_kill_storm() {
        let faults = super::faults(super::setting("UTFALL_STORM_KILLS", 5), 0);
        super::ingest_through_a_storm(utfall_tests::Store::embedded(), Vec::new(), faults, &[]).await;
    }
}

mod jetstream {
    use std::time::Duration;

    use super::Fault;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ingest_through_a_kill_storm() {
        let nats = utfall_tests::ThrowawayNats::start();
        let store = utfall_tests::Store::jetstream_at(nats.url.clone());
        let faults = super::faults(super::setting("UTFALL_STORM_KILLS", 5), super::setting("UTFALL_STORM_NATS_KILLS", 2));
        super::ingest_through_a_storm(store, vec![nats], faults, &[]).await;
    }

    /// A three-node cluster with the log replicated three times: ingest
    /// goes on while each node in turn is down for a while.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ingest_through_the_loss_of_each_cluster_node() {
        let nodes = utfall_tests::ThrowawayNats::cluster(3);
        let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
        let store = utfall_tests::Store::jetstream_at(urls.join(","));
        // The stream can be made once the cluster has elected its leader
        // (seconds; more on a loaded machine).
        let cli = utfall_tests::Cli::new(store);
        let started = std::time::Instant::now();
        loop {
            let made = cli.run("sql", &["SELECT 1", "--nats-replicas", "3"]);
            if made.status.success() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the cluster took no R3 stream in a minute: {}",
                String::from_utf8_lossy(&made.stderr)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let down = Duration::from_secs(2);
        let faults = (0..3).map(|node| Fault::Nats { node, down }).chain([Fault::Server]).collect();
        super::ingest_through_a_storm(cli.store, nodes, faults, &["--nats-replicas", "3"]).await;
    }
}
