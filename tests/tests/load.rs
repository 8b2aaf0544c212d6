//! Under load, both stores: 50 HTTP clients post batches of contacts for
//! overlapping participants at once, half of them stating each event's
//! `expected_version`, for `UTFALL_LOAD_SECONDS` (default 5; the README's
//! figures are from 60). No answer is a 5xx; a stale `expected_version` is
//! answered 409 and nothing of its batch is stored; every acknowledged event
//! is stored exactly once and nothing else is. Prints the acknowledgement
//! latency (p50, p99) and the rate.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use utfall_tests::wire::*;
use utfall_tests::{Server, Store};

const CLIENTS: usize = 50;
const PARTICIPANTS: usize = 40;
/// Events per batch, each for another participant.
const BATCH: usize = 8;
const PROGRAM: &str = "load";

fn pseudonym(i: usize) -> String {
    format!("L{i:03}")
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Event ids acknowledged (201).
    acknowledged: Vec<String>,
    /// Event ids of batches answered 409.
    refused: Vec<String>,
    conflicts: u64,
    /// Answers other than 201 and 409, with their bodies.
    unexpected: Vec<(StatusCode, String)>,
    /// Seconds from sending a batch to its acknowledgement.
    latencies: Vec<f64>,
}

/// Posts batches until `until`. A versioned client states each event's
/// `expected_version` from what it last learnt of the stream (its own
/// acknowledgements, a 409's actual version).
async fn client(server_base: String, token: String, versioned: bool, seed: u64, until: Instant) -> Seen {
    let http = utfall_tests::client_with(&token);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut known: HashMap<String, u64> = (0..PARTICIPANTS).map(|i| (pseudonym(i), 1)).collect();
    let mut seen = Seen::default();
    while Instant::now() < until {
        let mut events = Vec::with_capacity(BATCH);
        let mut ids = Vec::with_capacity(BATCH);
        for i in sample(&mut rng, PARTICIPANTS, BATCH).into_iter() {
            let participant = pseudonym(i);
            let day = 1 + rng.random_range(0..28);
            let mut event = contact(PROGRAM, &participant, &format!("2021-02-{day:02}"));
            if versioned {
                event["expected_version"] = json!(known[&participant]);
            }
            ids.push(event["event_id"].as_str().unwrap_or_default().to_string());
            events.push(event);
        }
        let sent = Instant::now();
        let answer = http
            .post(format!("{server_base}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(ndjson(&events))
            .send()
            .await
            .expect("the server answers");
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::CREATED => {
                seen.latencies.push(sent.elapsed().as_secs_f64());
                seen.acknowledged.extend(ids);
                for (event, appended) in events.iter().zip(body["events"].as_array().into_iter().flatten()) {
                    if let (Some(p), Some(v)) = (event["participant"].as_str(), appended["version"].as_u64()) {
                        known.insert(p.to_string(), v);
                    }
                }
            }
            StatusCode::CONFLICT => {
                seen.conflicts += 1;
                seen.refused.extend(ids);
                for conflict in body["conflicts"].as_array().into_iter().flatten() {
                    let participant = conflict["stream"].as_str().and_then(|s| s.rsplit('/').next());
                    if let (Some(p), Some(v)) = (participant, conflict["actual_version"].as_u64()) {
                        known.insert(p.to_string(), v);
                    }
                }
            }
            other => seen.unexpected.push((other, body.to_string())),
        }
    }
    seen
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN) * 1000.0
}

async fn fifty_clients_post_overlapping_batches(store: Store) {
    let seconds = utfall_tests::setting("UTFALL_LOAD_SECONDS", 5);
    let server = Server::start(&store.args());
    let mut setup = vec![program_defined(PROGRAM)];
    setup.extend((0..PARTICIPANTS).map(|i| enrolled(PROGRAM, &pseudonym(i), "2021-01-04")));
    let answer = server
        .client()
        .post(server.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&setup))
        .send()
        .await
        .expect("setup");
    assert_eq!(answer.status(), StatusCode::CREATED);

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(client(
                server.base.clone(),
                server.admin_token.clone(),
                c % 2 == 0,
                c as u64,
                until,
            ))
        })
        .collect();
    let mut seen = Vec::with_capacity(CLIENTS);
    for c in clients {
        seen.push(c.await.expect("client"));
    }
    let elapsed = started.elapsed().as_secs_f64();

    let unexpected: Vec<_> = seen.iter().flat_map(|s| s.unexpected.iter()).collect();
    assert!(unexpected.is_empty(), "answers other than 201 and 409: {unexpected:?}");
    let acknowledged: Vec<&String> = seen.iter().flat_map(|s| s.acknowledged.iter()).collect();
    let refused: HashSet<&String> = seen.iter().flat_map(|s| s.refused.iter()).collect();
    let conflicts: u64 = seen.iter().map(|s| s.conflicts).sum();
    let unversioned_conflicts: u64 = seen.iter().skip(1).step_by(2).map(|s| s.conflicts).sum();
    assert_eq!(unversioned_conflicts, 0, "a batch without expected_version met a conflict");
    assert!(conflicts > 0, "25 versioned clients on {PARTICIPANTS} participants never met a stale version");

    // Exactly the acknowledged contacts are stored, each once, and each
    // participant's versions run 1, 2, 3 … without a gap.
    let log = store.open().await;
    let mut stored: HashMap<String, u32> = HashMap::new();
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = log.read(after, 10_000).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in page.iter().filter(|e| e.event.body.type_name() == "contact_recorded") {
            *stored.entry(e.event.event_id.to_string()).or_default() += 1;
        }
        for e in page.iter().filter(|e| e.event.participant.is_some()) {
            let participant = e.event.participant.as_ref().map(ToString::to_string).unwrap_or_default();
            versions.entry(participant).or_default().push(e.event.version);
        }
    }
    let twice = stored.values().filter(|n| **n > 1).count();
    let lost = acknowledged.iter().filter(|id| !stored.contains_key(id.as_str())).count();
    let refused_stored = refused.iter().filter(|id| stored.contains_key(id.as_str())).count();
    assert_eq!((stored.len(), twice, lost, refused_stored), (acknowledged.len(), 0, 0, 0));
    for (participant, mut v) in versions {
        v.sort_unstable();
        assert_eq!(v, (1..=v.len() as u64).collect::<Vec<_>>(), "versions of {participant}");
    }

    let mut latencies: Vec<f64> = seen.iter().flat_map(|s| s.latencies.iter().copied()).collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{CLIENTS} clients, {seconds} s: {} batches acknowledged ({} events, {:.0} events/s), {conflicts} answered 409; \
         acknowledgement p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        acknowledged.len(),
        acknowledged.len() as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}

utfall_tests::for_both_stores!(fifty_clients_post_overlapping_batches);
