//! `POST /v1/events` and `GET /healthz` of a running `utfall serve`, against
//! both stores.

use reqwest::StatusCode;
use serde_json::{Value, json};
use utfall_tests::wire::*;
use utfall_tests::{Server, Store, ThrowawayNats, fixture};

async fn post(server: &Server, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(server.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("POST /v1/events");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn head(server: &Server) -> u64 {
    let health: Value = server.get("/healthz").await.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    let head = health["head"].as_u64().expect("head");
    assert_eq!(health["components"]["log"]["head"], head, "{health}");
    for projector in ["read_models", "lake"] {
        let report = &health["components"][projector];
        assert_eq!(
            report["lag"].as_u64(),
            report["position"].as_u64().map(|p| head - p),
            "{health}"
        );
        assert_eq!(report["stalled"], false, "{health}");
    }
    head
}

async fn fixtures_are_accepted_once(store: Store) {
    let server = Server::start(&store.args());
    let optimist = std::fs::read(fixture("optimist")).expect("fixture");
    let (status, body) = post(&server, optimist.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["stored"].as_u64(), body["duplicates"].as_u64()),
        (Some(796), Some(0))
    );
    let mut positions: Vec<u64> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["position"].as_u64())
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=796).collect::<Vec<u64>>());

    // The same fixture as a JSON array: every event is a duplicate.
    let lines: Vec<Value> = String::from_utf8_lossy(&optimist)
        .lines()
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect();
    let (status, body) = post(&server, Value::Array(lines).to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["stored"].as_u64(), body["duplicates"].as_u64()),
        (Some(0), Some(796))
    );

    let (status, body) = post(&server, std::fs::read(fixture("sja-meg")).expect("fixture")).await;
    assert_eq!((status, body["stored"].as_u64()), (StatusCode::CREATED, Some(822)));
    assert_eq!(head(&server).await, 796 + 822);
}

async fn bad_input_is_refused_naming_event_and_field(store: Store) {
    let server = Server::start(&store.args());
    let setup = vec![
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        exited("p1", "A", "2021-06-30"),
        enrolled("p1", "B", "2021-01-04"),
    ];
    let b_contact = contact("p1", "B", "2021-02-01");
    let (status, body) = post(&server, ndjson(&[setup.clone(), vec![b_contact.clone()]].concat())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = head(&server).await;

    let good = contact("p1", "B", "2021-03-01");
    let next_year = (chrono::Utc::now().date_naive() + chrono::Duration::days(366)).to_string();
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut unknown_type = good.clone();
    unknown_type["type"] = "participant_adopted".into();
    cases.push(("unknown type", unknown_type, "type"));
    let mut no_participant = good.clone();
    no_participant.as_object_mut().map(|o| o.remove("participant"));
    cases.push(("participant event without participant", no_participant, "participant"));
    let coop = json!({"event_id": id(), "program": "p1", "participant": "B", "type": "measurement_recorded",
                      "occurred_on": "2021-03-01", "data": {"instrument": "coop_wonca", "scores": {"feelings": 6}}});
    cases.push(("feelings 6", coop, "data.scores.feelings"));
    let mut no_such_day = good.clone();
    no_such_day["occurred_on"] = "2023-02-30".into();
    cases.push(("2023-02-30", no_such_day, "occurred_on"));
    let mut future = good.clone();
    future["occurred_on"] = next_year.into();
    cases.push(("next year", future, "occurred_on"));
    cases.push((
        "status before enrolment",
        status_changed("p1", "C", "2021-03-01", "employed"),
        "participant",
    ));
    cases.push(("after exit", contact("p1", "A", "2021-07-01"), "occurred_on"));
    cases.push(("second enrolment", enrolled("p1", "B", "2021-03-01"), "type"));
    cases.push((
        "retraction of another participant's event",
        retracted("p1", "A", "2021-06-01", &b_contact),
        "data.event_id",
    ));
    let mut not_uuid = good.clone();
    not_uuid["event_id"] = "P07-first-contact".into();
    cases.push(("non-UUID event_id", not_uuid, "event_id"));

    for (what, bad, field) in cases {
        // The bad event rides in a batch with a good one: nothing is written.
        let (status, body) = post(&server, ndjson(&[good.clone(), bad.clone()])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        let problem = &body["invalid"][0];
        assert_eq!(problem["index"], 1, "{what}: {body}");
        assert_eq!(problem["field"], field, "{what}: {body}");
        assert_eq!(problem["event_id"], bad["event_id"], "{what}: {body}");
        assert!(!problem["message"].as_str().unwrap_or_default().is_empty(), "{what}");
        assert_eq!(head(&server).await, before, "{what} wrote something");
    }

    let text = ndjson(std::slice::from_ref(&good));
    let truncated = format!("{text}{}", &text[..text.len() - 10]);
    let (status, body) = post(&server, truncated).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "truncated line: {body}");
    assert_eq!(
        (
            body["invalid"][0]["index"].as_u64(),
            body["invalid"][0]["line"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(body["invalid"][0]["event_id"], good["event_id"]);

    let (status, body) = post(&server, Vec::<u8>::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "empty body: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("empty"), "{body}");

    let mut noise = vec![0u8; 10 * 1024 * 1024];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for byte in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    let (status, body) = post(&server, noise).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "random bytes");
    assert!(body["total"].as_u64().unwrap_or_default() > 100, "{}", body["total"]);
    assert_eq!(
        body["invalid"].as_array().map(Vec::len),
        Some(100),
        "the report is capped"
    );
    assert_eq!(head(&server).await, before);
}

async fn a_stale_expected_version_is_409(store: Store) {
    let server = Server::start(&store.args());
    let (status, _) = post(
        &server,
        ndjson(&[program_defined("p1"), enrolled("p1", "A", "2021-01-04")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut stale = contact("p1", "A", "2021-01-05");
    stale["expected_version"] = 0.into();
    let (status, body) = post(&server, ndjson(&[stale])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["conflicts"][0]["actual_version"], 1);
    assert_eq!(head(&server).await, 2);
}

async fn an_over_large_body_is_413(store: Store) {
    let mut args = store.args();
    args.extend(["--max-body".to_string(), "65536".to_string()]);
    let server = Server::start(&args);
    let events: Vec<Value> = (0..1000).map(|_| contact("p1", "A", "2021-01-05")).collect();
    let (status, _) = post(&server, ndjson(&events)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(head(&server).await, 0);
}

utfall_tests::for_both_stores!(
    fixtures_are_accepted_once,
    bad_input_is_refused_naming_event_and_field,
    a_stale_expected_version_is_409,
    an_over_large_body_is_413,
);

#[tokio::test]
async fn an_unreachable_log_is_503_with_retry_after_and_nothing_is_lost() {
    let mut nats = ThrowawayNats::start();
    let store = Store::jetstream_at(nats.url.clone());
    let server = Server::start(&store.args());
    let (status, _) = post(&server, ndjson(&[program_defined("p1")])).await;
    assert_eq!(status, StatusCode::CREATED);

    nats.stop();
    let response = server
        .client()
        .post(server.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&[enrolled("p1", "A", "2021-01-04")]))
        .send()
        .await
        .expect("POST while NATS is down");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let health = server.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn the_demo_loads_both_real_programmes_once() {
    let store = Store::embedded();
    {
        let demo = Server::start_command("demo", &store.args());
        assert_eq!(head(&demo).await, 796 + 822);
    }
    let again = Server::start_command("demo", &store.args());
    assert_eq!(head(&again).await, 796 + 822, "a second start adds nothing");
}
