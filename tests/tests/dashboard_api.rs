//! The read-model endpoints the dashboard polls, on a running server whose
//! projector follows the log.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use utfall_tests::wire::*;
use utfall_tests::{Server, Store, fresh_database};

async fn get(server: &Server, path: &str) -> (StatusCode, Value) {
    let response = server.get(path).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `path` until `ready` holds for its body, failing after 10 s.
async fn eventually(server: &Server, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = get(server, path).await;
        if status == StatusCode::OK && ready(&body) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} never became ready: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn optimist_summary_and_paging(server: Server) {
    eventually(&server, "/v1/projections", |b| {
        b[0]["position"] == 1618 && b[0]["lag"] == 0
    })
    .await;
    let (_, summary) = get(&server, "/v1/programs/optimist/summary").await;
    assert_eq!(
        summary["status_distribution"],
        json!({"job": 5, "activity": 5, "moved": 2, "benefit": 1, "none": 2})
    );
    assert_eq!(
        (summary["exited"].as_i64(), summary["active"].as_i64()),
        (Some(3), Some(12))
    );
    assert_eq!(summary["caseload"]["ac-1"], 12);
    let coop = &summary["latest_measurements"][0];
    assert_eq!(
        (
            coop["instrument"].as_str(),
            coop["wave"].as_i64(),
            coop["measured"].as_i64()
        ),
        (Some("coop_wonca"), Some(2), Some(9))
    );

    let (_, programs) = get(&server, "/v1/programs").await;
    assert_eq!(programs[0]["program"], "optimist");
    assert_eq!(programs[1]["enrolled"], 32);

    let (_, page) = get(&server, "/v1/programs/sja-meg/participants?per_page=10&page=4").await;
    assert_eq!(
        (page["total"].as_i64(), page["participants"].as_array().map(Vec::len)),
        (Some(32), Some(2))
    );
    let (_, employed) = get(&server, "/v1/programs/optimist/participants?status=employed").await;
    let employed = employed["participants"].as_array().cloned().unwrap_or_default();
    assert!(!employed.is_empty() && employed.iter().all(|p| p["current_status"] == "employed"));

    let (status, body) = get(&server, "/v1/programs/no-such-programme/summary").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn the_demo_summary_shows_the_published_optimist_figures() {
    let store = Store::embedded();
    optimist_summary_and_paging(Server::start_command("demo", &store.args())).await;
}

#[tokio::test]
async fn read_models_in_postgresql_over_jetstream_give_the_same_figures() {
    let store = Store::jetstream();
    let mut args = store.args();
    args.extend(["--database".to_string(), fresh_database().await]);
    optimist_summary_and_paging(Server::start_command("demo", &args)).await;
}

#[tokio::test]
async fn polls_are_cheap_when_nothing_changed_and_new_events_show_up() {
    let store = Store::embedded();
    let server = Server::start(&store.args());
    let client = server.client();
    assert_eq!(
        server
            .post_events(&[program_defined("p1"), enrolled("p1", "A", "2021-01-04")])
            .await,
        StatusCode::CREATED
    );
    eventually(&server, "/v1/programs/p1/summary", |b| b["enrolled"] == 1).await;

    let first = client
        .get(server.url("/v1/programs/p1/summary"))
        .send()
        .await
        .expect("GET");
    let etag = first.headers().get("etag").cloned().expect("an ETag");
    let again = client
        .get(server.url("/v1/programs/p1/summary"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .expect("GET");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let posted = Instant::now();
    assert_eq!(
        server.post_events(&[enrolled("p1", "B", "2021-01-05")]).await,
        StatusCode::CREATED
    );
    eventually(&server, "/v1/programs/p1/summary", |b| b["enrolled"] == 2).await;
    eprintln!("visible in the summary {:?} after the POST returned", posted.elapsed());
    let changed = client
        .get(server.url("/v1/programs/p1/summary"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(changed.status(), StatusCode::OK);

    let projections = eventually(&server, "/v1/projections", |b| b[0]["lag"] == 0).await;
    assert_eq!(projections[0]["position"], 3);
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("utfall_projection_lag_events{projection=\"read_models\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("utfall_log_head_position 3"), "{metrics}");
}
