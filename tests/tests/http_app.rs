//! The HTTP API in-process: `http::app()` driven with `oneshot`, no socket.
//! What every request must pass before a handler sees it: a known `Host`,
//! and for anything but reading, this server as its origin and an event
//! content type.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use utfall::http::{AllowedHosts, AppState, RequestLimits, app};
use utfall_events::log::embedded::EmbeddedLog;
use utfall_projections::{Lake, ProjectorStatus, ReadModels};
use utfall_queries::{Analytics, Limits};
use utfall_tests::sqlite_url;
use utfall_tests::wire::*;

async fn router(dir: &std::path::Path) -> axum::Router {
    let lake = Arc::new(Lake::open(&dir.join("lake")).expect("lake"));
    let state = AppState {
        log: Arc::new(EmbeddedLog::open(dir).await.expect("log")),
        store: "embedded (test)".into(),
        models: Arc::new(ReadModels::connect(&sqlite_url(dir)).await.expect("read models")),
        projector: Arc::new(ProjectorStatus::default()),
        analytics: Analytics::new(lake.events_dir(), Limits::default()),
        lake,
        lake_projector: Arc::new(ProjectorStatus::default()),
        extracts: Arc::new(Vec::new()),
        started: Instant::now(),
    };
    let limits = RequestLimits {
        max_body: 1 << 20,
        body_timeout: Duration::from_secs(5),
        allowed_hosts: AllowedHosts::new("0.0.0.0".parse().expect("ip"), &["utfall.nav.example".into()]),
    };
    app(state, limits)
}

fn post(host: &str, content_type: Option<&str>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post("/v1/events").header("host", host);
    if let Some(t) = content_type {
        request = request.header("content-type", t);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(Body::from(ndjson(&[program_defined("p1")])))
        .expect("request")
}

#[tokio::test]
async fn requests_pass_the_guard_only_from_known_hosts_and_this_origin() {
    let dir = tempfile::tempdir().expect("directory");
    let app = router(dir.path()).await;
    let status = |request: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(request).await.expect("answer").status() }
    };
    let ndjson = Some("application/x-ndjson");
    let cases = [
        (post("evil.example", ndjson, &[]), StatusCode::MISDIRECTED_REQUEST),
        (
            post("utfall.nav.example", Some("text/plain"), &[]),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            post("utfall.nav.example", None, &[]),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            post("utfall.nav.example", ndjson, &[("origin", "null")]),
            StatusCode::FORBIDDEN,
        ),
        (
            post(
                "utfall.nav.example",
                ndjson,
                &[("origin", "https://utfall.nav.example.evil.example")],
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            post("utfall.nav.example", ndjson, &[("sec-fetch-site", "same-site")]),
            StatusCode::FORBIDDEN,
        ),
        (
            post(
                "[::1]:8080",
                ndjson,
                &[("origin", "http://[::1]:8080"), ("sec-fetch-site", "same-origin")],
            ),
            StatusCode::CREATED,
        ),
        (
            post(
                "utfall.nav.example",
                Some("application/json; charset=utf-8"),
                &[("origin", "https://utfall.nav.example")],
            ),
            StatusCode::CREATED,
        ),
    ];
    for (i, (request, expected)) in cases.into_iter().enumerate() {
        assert_eq!(status(request).await, expected, "case {i}");
    }
    // Reading from another origin is allowed (the browser keeps the answer
    // from the foreign page); a foreign host name is not.
    let read = Request::get("/healthz")
        .header("host", "localhost:8080")
        .header("origin", "https://elsewhere.example")
        .body(Body::empty())
        .expect("request");
    assert_eq!(status(read).await, StatusCode::OK);
    let rebound = Request::get("/healthz")
        .header("host", "rebound.example")
        .body(Body::empty())
        .expect("request");
    assert_eq!(status(rebound).await, StatusCode::MISDIRECTED_REQUEST);
}
