//! One unreadable message in the log (a corrupted or foreign payload) must
//! not stall everything silently: the projectors stop at it, visibly
//! (`/healthz`, `/metrics`, `/v1/projections`), writes for other
//! participants go on, and `utfall quarantine` lets everything go on past
//! it, recorded. Both stores.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use utfall_tests::wire::*;
use utfall_tests::{Server, Store, run_utfall};

/// A payload no version of utfall can read.
const GARBAGE: &str = r#"{"not":"an event"}"#;

async fn get(server: &Server, path: &str) -> (StatusCode, Value) {
    let response = server.get(path).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn eventually(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn an_unreadable_event_stops_projectors_visibly_until_quarantined(store: Store) {
    let server = Server::start(&store.args());
    let setup = [
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        enrolled("p1", "B", "2021-01-05"),
    ];
    assert_eq!(server.post_events(&setup).await, StatusCode::CREATED);
    let planted = store.plant("p1", "A", 99, "planted", GARBAGE).await;

    eventually("/healthz to report both projectors stalled", async || {
        let (status, health) = get(&server, "/healthz").await;
        let stalled = health["stalled"].as_array().cloned().unwrap_or_default();
        status == StatusCode::SERVICE_UNAVAILABLE
            && stalled.len() == 2
            && stalled.iter().all(|s| s["position"] == planted)
    })
    .await;
    let (_, health) = get(&server, "/healthz").await;
    assert!(
        health["action"]
            .as_str()
            .is_some_and(|a| a.contains("utfall quarantine")),
        "{health}"
    );
    let metrics = server.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("utfall_projection_stalled{projection=\"read_models\"} 1"),
        "{metrics}"
    );
    let (_, projections) = get(&server, "/v1/projections").await;
    assert_eq!(projections[0]["stalled_at"], planted);

    // Other participants are recorded meanwhile; the one whose stream holds
    // the bad message gets a clear answer, never a 500.
    assert_eq!(
        server.post_events(&[contact("p1", "B", "2021-02-01")]).await,
        StatusCode::CREATED
    );
    let status = server.post_events(&[contact("p1", "A", "2021-02-01")]).await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status}"
    );

    // Quarantine is for unreadable events only, and needs a reason.
    let mut refused = vec![
        "quarantine".to_string(),
        "--position".into(),
        "2".into(),
        "--reason".into(),
        "x".into(),
    ];
    refused.extend(store.args());
    let out = run_utfall(&refused, None);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("readable"));

    let mut quarantine = vec![
        "quarantine".to_string(),
        "--position".into(),
        planted.to_string(),
        "--reason".into(),
        "INC-42: foreign message in the stream".into(),
    ];
    quarantine.extend(store.args());
    let out = run_utfall(&quarantine, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    eventually("the projectors to go on past the quarantined event", async || {
        let (status, _) = get(&server, "/healthz").await;
        let (_, projections) = get(&server, "/v1/projections").await;
        status == StatusCode::OK
            && projections.as_array().is_some_and(|p| {
                p.iter()
                    .all(|p| p["stalled_at"].is_null() && p["position"].as_u64() > Some(planted))
            })
    })
    .await;
    assert_eq!(
        server.post_events(&[contact("p1", "A", "2021-03-01")]).await,
        StatusCode::CREATED
    );
    let (_, participants) = get(&server, "/v1/programs/p1/participants").await;
    assert_eq!(participants["total"].as_u64(), Some(2), "{participants}");

    let mut list = vec!["quarantine".to_string(), "--list".into()];
    list.extend(store.args());
    let listed = String::from_utf8_lossy(&run_utfall(&list, None).stdout).to_string();
    assert!(
        listed.starts_with(&format!("{planted}\t")) && listed.contains("INC-42"),
        "{listed}"
    );
}

utfall_tests::for_both_stores!(an_unreadable_event_stops_projectors_visibly_until_quarantined);
