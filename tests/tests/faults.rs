//! Faults lose no acknowledged event: a killed server process (embedded
//! store), a restarted NATS server (JetStream), and a server stopped by
//! SIGTERM (which must also exit cleanly).

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use utfall_tests::wire::*;
use utfall_tests::{Server, Store, ThrowawayNats};

/// Posts batches of contacts until `stop` says so; returns the ids the
/// server acknowledged with 201.
async fn ingest_until(server_base: String, token: String, stop: tokio::sync::watch::Receiver<bool>) -> Vec<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut acknowledged = Vec::new();
    let mut day = 0;
    while !*stop.borrow() {
        day += 1;
        let on = (chrono::NaiveDate::from_ymd_opt(2021, 2, 1).unwrap_or_default() + chrono::Duration::days(day % 300))
            .to_string();
        let batch: Vec<Value> = (0..20).map(|_| contact("p1", "A", &on)).collect();
        let sent = client
            .post(format!("{server_base}/v1/events"))
            .bearer_auth(&token)
            .header("content-type", "application/x-ndjson")
            .body(ndjson(&batch))
            .send()
            .await;
        if let Ok(response) = sent
            && response.status() == StatusCode::CREATED
        {
            acknowledged.extend(
                batch
                    .iter()
                    .map(|e| e["event_id"].as_str().unwrap_or_default().to_string()),
            );
        }
    }
    acknowledged
}

async fn enrol_one_participant(server: &Server) {
    let setup = server
        .client()
        .post(server.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&[program_defined("p1"), enrolled("p1", "A", "2021-01-04")]))
        .send()
        .await
        .expect("setup");
    assert_eq!(setup.status(), StatusCode::CREATED);
}

async fn assert_none_lost(acknowledged: Vec<String>, store: &Store) {
    assert!(
        acknowledged.len() > 100,
        "only {} events were acknowledged",
        acknowledged.len()
    );
    let stored = stored_ids(store).await;
    let lost: Vec<_> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
}

async fn stored_ids(store: &Store) -> HashSet<String> {
    let log = store.open().await;
    let mut ids = HashSet::new();
    let mut after = 0;
    loop {
        let page = log.read(after, 10_000).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        ids.extend(page.iter().map(|e| e.event.event_id.to_string()));
    }
    ids
}

#[tokio::test]
async fn a_killed_server_loses_no_acknowledged_event() {
    let store = Store::embedded();
    let mut server = Server::start(&store.args());
    enrol_one_participant(&server).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writer = tokio::spawn(ingest_until(server.base.clone(), server.admin_token.clone(), stopped));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let _ = stop.send(true);
    assert_none_lost(writer.await.expect("writer"), &store).await;
}

#[tokio::test]
async fn a_restarted_nats_server_loses_no_acknowledged_event() {
    let mut nats = ThrowawayNats::start();
    let store = Store::jetstream_at(nats.url.clone());
    let server = Server::start(&store.args());
    enrol_one_participant(&server).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writer = tokio::spawn(ingest_until(server.base.clone(), server.admin_token.clone(), stopped));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    nats.restart();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let _ = stop.send(true);
    assert_none_lost(writer.await.expect("writer"), &store).await;
    // The server keeps accepting events after NATS came back.
    let after = server
        .client()
        .post(server.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&[contact("p1", "A", "2021-12-01")]))
        .send()
        .await
        .expect("post after restart");
    assert_eq!(after.status(), StatusCode::CREATED);
}

/// SIGTERM stops the server, exiting zero, with every acknowledged event
/// stored: projectors, Postgres wire endpoint and scheduler stop with it.
#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_loses_nothing() {
    let store = Store::embedded();
    let mut server = Server::start(&store.args());
    enrol_one_participant(&server).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writer = tokio::spawn(ingest_until(server.base.clone(), server.admin_token.clone(), stopped));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = server.terminate();
    let _ = stop.send(true);
    assert!(status.success(), "utfall serve exited with {status} on SIGTERM");
    assert_none_lost(writer.await.expect("writer"), &store).await;
}
