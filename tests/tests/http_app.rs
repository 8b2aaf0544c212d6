//! The HTTP API in-process: `http::app()` driven with `oneshot`, no socket.
//! What every request must pass before a handler sees it: a known `Host`,
//! for anything but reading this server as its origin and an event content
//! type, and for every route not declared open a valid token.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use utfall::access::Need;
use utfall::http::pressure::Pressure;
use utfall::http::routes;
use utfall_tests::in_process_app;
use utfall_tests::wire::*;

/// The app over a fresh embedded store, and its first admin's token.
async fn router(dir: &std::path::Path) -> (axum::Router, String) {
    in_process_app(dir, Pressure::new(64, 8)).await
}

fn post(token: &str, host: &str, content_type: Option<&str>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post("/v1/events")
        .header("host", host)
        .header("authorization", format!("Bearer {token}"));
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
    let (app, token) = router(dir.path()).await;
    let post = |host, content_type, headers| post(&token, host, content_type, headers);
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

/// A request for `path` (its `{…}` parameters filled in) with `token`.
fn request(method: &axum::http::Method, path: &str, token: Option<&str>) -> Request<Body> {
    let path = path
        .replace("{program}", "p1")
        .replace("{id}", "p1.2021-q1")
        .replace("{file}", "outcomes.csv");
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", "localhost:8080")
        .header("content-type", "application/x-ndjson");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = if method == axum::http::Method::POST {
        Body::from(ndjson(&[program_defined("p1")]))
    } else {
        Body::empty()
    };
    request.body(body).expect("request")
}

/// Every route the router holds was declared with its need (the router is
/// built only from declarations); each one not declared open refuses a
/// request without a token, or with a wrong one, and the README lists it
/// with its need.
#[tokio::test]
async fn every_route_declares_its_need_and_refuses_strangers() {
    let dir = tempfile::tempdir().expect("directory");
    let (app, _) = router(dir.path()).await;
    let (_, declared) = routes().into_parts();
    assert!(declared.len() >= 13, "{} routes declared", declared.len());
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README");
    let forged = format!("utfall_{}", "0".repeat(64));
    for route in &declared {
        let row = format!("| `{} {}` |", route.method, route.path);
        assert!(readme.contains(&row), "README's route table lacks {row}");
        for token in [
            None,
            Some("utfall_short"),
            Some(forged.as_str()),
            Some("Basic YWRtaW46YWRtaW4="),
        ] {
            let status = app
                .clone()
                .oneshot(request(&route.method, route.path, token))
                .await
                .expect("answer")
                .status();
            if route.need == Need::Open {
                assert_ne!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{} {} is open",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{} {} with {token:?}",
                    route.method,
                    route.path
                );
            }
        }
    }
}

/// With no room for another batch or query, the answer is 503 with
/// `Retry-After` at once, and nothing is written.
#[tokio::test]
async fn a_full_ingest_queue_or_query_cap_answers_busy_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("directory");
    let (app, token) = in_process_app(dir.path(), Pressure::new(0, 0)).await;
    let answer = app
        .clone()
        .oneshot(post(&token, "127.0.0.1", Some("application/x-ndjson"), &[]))
        .await
        .expect("answer");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()["retry-after"], "1");
    let log = utfall::store::open_log(&utfall_tests::embedded_args(dir.path())).await.expect("log");
    assert_eq!(log.head().await.expect("head"), 0, "a refused batch was written");
    let sql = Request::post("/v1/sql")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/plain")
        .body(Body::from("SELECT 1"))
        .expect("request");
    let answer = app.oneshot(sql).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()["retry-after"], "1");
}

/// Programme names show only to those with a role in the programme: the
/// dashboard's `/v1/projections` lists the caller's programmes' own
/// projectors, and the open `/metrics` folds them into one unnamed series.
#[tokio::test]
async fn projector_standings_name_only_the_callers_programmes() {
    use utfall::access::{Access, Role};
    use utfall_events::ProgramName;
    use utfall_projections::ReadModels;
    use utfall_projections::read_models::Scope;

    let dir = tempfile::tempdir().expect("directory");
    let (app, admin) = router(dir.path()).await;
    let log = utfall::store::open_log(&utfall_tests::embedded_args(dir.path())).await.expect("log");
    log.append(parse(&[
        program_defined("seen-one"),
        program_defined("hidden-one"),
        enrolled("seen-one", "s1", "2024-01-02"),
        enrolled("hidden-one", "h1", "2024-01-02"),
    ]))
    .await
    .expect("history");
    for program in ["seen-one", "hidden-one"] {
        ReadModels::connect(&utfall_tests::sqlite_url(dir.path()))
            .await
            .expect("read models")
            .scoped(Scope::Programs([program.to_string()].into()))
            .catch_up(log.as_ref(), 10)
            .await
            .expect("a programme's own projector");
    }
    let access = Access::connect(&format!("sqlite://{}", dir.path().join("events.db").display()))
        .await
        .expect("access database");
    let seen = ProgramName::new("seen-one").expect("name");
    let viewer = access.tokens.create("vera", Role::Viewer, &[seen], None).await.expect("viewer");

    let get = |path: &'static str, token: Option<String>| {
        let app = app.clone();
        async move {
            let mut request = Request::get(path).header("host", "localhost");
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let answer = app.oneshot(request.body(Body::empty()).expect("request")).await.expect("answer");
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
            let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.expect("body");
            String::from_utf8(body.to_vec()).expect("UTF-8")
        }
    };
    let names = |body: String| -> Vec<String> {
        let standings: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let mut names: Vec<String> = standings
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|s| s["name"].as_str().map(String::from))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(get("/v1/projections", Some(viewer)).await),
        ["lake", "read_models", "read_models/seen-one"]
    );
    assert_eq!(
        names(get("/v1/projections", Some(admin)).await),
        ["lake", "read_models", "read_models/hidden-one", "read_models/seen-one"]
    );
    let metrics = get("/metrics", None).await;
    assert!(!metrics.contains("seen-one") && !metrics.contains("hidden-one"), "{metrics}");
    assert!(
        metrics.contains("utfall_projection_lag_events{projection=\"read_models/programmes\"} 0"),
        "{metrics}"
    );
}

/// `GET …/outcomes?horizon=6m&from=exit` adds the share metrics at the
/// horizon, each participant past the anchor counted once: due (in the
/// denominators), not yet due or censored; a horizon that cannot be read
/// is refused with what to write.
#[tokio::test]
async fn outcomes_over_http_take_their_sections_and_compare_only_with_what_the_caller_sees() {
    let dir = tempfile::tempdir().expect("directory");
    let events: Vec<serde_json::Value> = std::fs::read_to_string(utfall_tests::fixture("optimist"))
        .expect("fixture")
        .lines()
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect();
    let exited = events.iter().filter(|e| e["type"] == "participant_exited").count() as u64;
    {
        let log = utfall::store::open_log(&utfall_tests::embedded_args(dir.path())).await.expect("log");
        log.append(parse(&events)).await.expect("OPTIMIST");
        utfall_projections::Lake::rebuild(&dir.path().join("lake"), log.as_ref(), 1000)
            .await
            .expect("lake");
    }
    let (app, admin) = router(dir.path()).await;
    let access = utfall::access::Access::connect(&format!("sqlite://{}", dir.path().join("events.db").display()))
        .await
        .expect("access database");
    let optimist = utfall_events::ProgramName::new("optimist").expect("name");
    let viewer = access
        .tokens
        .create("vera", utfall::access::Role::Viewer, &[optimist], None)
        .await
        .expect("a viewer of optimist");
    let get_as = |token: String, query: &'static str| {
        let app = app.clone();
        let request = Request::get(format!("/v1/programs/optimist/outcomes?{query}"))
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request");
        async move {
            let answer = app.oneshot(request).await.expect("answer");
            let status = answer.status();
            let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.expect("body");
            (status, serde_json::from_slice::<serde_json::Value>(&body).expect("JSON"))
        }
    };
    let get = |query: &'static str| get_as(admin.clone(), query);
    // Another programme's figures only for those who may see them.
    let (status, answer) = get_as(viewer.clone(), "compare_with=sja-meg").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _) = get_as(viewer, "as_of=2022-12-31").await;
    assert_eq!(status, StatusCode::OK, "the viewer sees their own programme");
    let (status, answer) = get("compare_with=nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, report) = get("as_of=2023-12-31&horizon=6m&from=exit&censor=true").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let horizon = &report["horizon"];
    assert_eq!((horizon["months"].as_u64(), horizon["from"].as_str()), (Some(6), Some("exit")));
    let metrics = horizon["metrics"].as_array().expect("metrics at the horizon");
    assert_eq!(metrics.len(), 5);
    let job = metrics.iter().find(|m| m["metric"] == "job_share").expect("job_share");
    let counted = job["denominator"].as_u64().unwrap_or(0)
        + horizon["not_yet_due"].as_u64().unwrap_or(0)
        + horizon["censored"].as_u64().unwrap_or(0);
    assert_eq!(counted, exited, "{horizon}");
    assert!(job["denominator"].as_u64() > Some(0), "{horizon}");
    let (_, plain) = get("as_of=2022-12-31").await;
    assert!(plain.get("horizon").is_none(), "no horizon asked, none given");
    assert!(plain.get("quarterly_employment").is_none(), "no series asked, none given");
    let (_, quarterly) = get("as_of=2022-12-31&quarterly=true").await;
    let last = quarterly["quarterly_employment"].as_array().and_then(|q| q.last()).cloned();
    assert_eq!(last.map(|q| q["quarter"].clone()), Some(serde_json::json!("2022Q4")), "{quarterly}");
    let (status, by_year) = get("as_of=2022-12-31&cohorts=year").await;
    assert_eq!(status, StatusCode::OK, "{by_year}");
    let enrolled: u64 = by_year["cohorts"]
        .as_array()
        .expect("cohorts")
        .iter()
        .map(|c| c["enrolled"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(Some(enrolled), plain["enrolled"].as_u64(), "every participant in one cohort");

    for (query, says) in [
        ("horizon=6w", "is not a horizon"),
        ("horizon=6m&from=intake", "is not an anchor"),
        ("from=exit", "need a `horizon`"),
        ("cohorts=month", "cohorts are `year`"),
    ] {
        let (status, answer) = get(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert!(answer.to_string().contains(says), "{query}: {answer}");
    }
}

/// An indicator posted over HTTP has its SQL checked before anything of
/// the batch is written: 422 naming the event, the field and the line.
#[tokio::test]
async fn a_bad_indicator_is_refused_over_http_and_nothing_of_its_batch_is_written() {
    let dir = tempfile::tempdir().expect("directory");
    let (app, admin) = router(dir.path()).await;
    let post = |events: Vec<serde_json::Value>| {
        let request = Request::post("/v1/events")
            .header("host", "localhost")
            .header("content-type", "application/x-ndjson")
            .header("authorization", format!("Bearer {admin}"))
            .body(Body::from(ndjson(&events)))
            .expect("request");
        let app = app.clone();
        async move {
            let answer = app.oneshot(request).await.expect("answer");
            let status = answer.status();
            let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.expect("body");
            (status, serde_json::from_slice::<serde_json::Value>(&body).expect("JSON"))
        }
    };
    let bad = serde_json::json!({"event_id": id(), "program": "p1", "type": "indicator_defined", "occurred_on": "2024-01-01",
        "data": {"name": "typo", "description": "A typo on line 2", "numerator": "gender = 'female'\n  AND birth_yeer > 1990"}});
    let (status, body) = post(vec![program_defined("p1"), bad.clone()]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let problem = &body["invalid"][0];
    assert_eq!((problem["index"].as_u64(), problem["event_id"].clone()), (Some(1), bad["event_id"].clone()), "{body}");
    assert_eq!(problem["field"], "data.numerator", "{body}");
    assert!(problem["message"].as_str().is_some_and(|m| m.starts_with("line 2, column 7: ")), "{body}");
    // The programme was not written with it: defining it now is new.
    let (status, body) = post(vec![program_defined("p1")]).await;
    assert_eq!((status, body["stored"].as_u64()), (StatusCode::CREATED, Some(1)), "{body}");
}

/// The dashboard's texts: `?lang=` first, else `Accept-Language`, else
/// English; a language utfall does not speak is 400.
#[tokio::test]
async fn the_dashboards_texts_come_in_the_language_asked_for() {
    let dir = tempfile::tempdir().expect("directory");
    let (app, _) = router(dir.path()).await;
    let get = |query: &'static str, accept: Option<&'static str>| {
        let mut request = Request::get(format!("/v1/labels{query}")).header("host", "localhost");
        if let Some(accept) = accept {
            request = request.header("accept-language", accept);
        }
        let app = app.clone();
        async move {
            let answer = app.oneshot(request.body(Body::empty()).expect("request")).await.expect("answer");
            let status = answer.status();
            let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.expect("body");
            (status, serde_json::from_slice::<serde_json::Value>(&body).expect("JSON"))
        }
    };
    let said = |answer: &serde_json::Value| {
        (answer["language"].as_str().map(str::to_string), answer["labels"]["metric.job_share"].as_str().map(str::to_string))
    };
    let (status, danish) = get("", Some("da-DK,da;q=0.9,en;q=0.8")).await;
    assert_eq!((status, said(&danish)), (StatusCode::OK, (Some("da".into()), Some("I job".into()))));
    let (_, bokmal) = get("?lang=nb", Some("da")).await;
    assert_eq!(said(&bokmal), (Some("nb".into()), Some("I jobb".into())), "?lang= comes first");
    let (_, english) = get("", Some("fr-FR,fr;q=0.9")).await;
    assert_eq!(said(&english), (Some("en".into()), Some("In a job".into())));
    let (status, refused) = get("?lang=sv", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("nb (Norwegian bokmål), da (Danish) or en (English)"), "{refused}");
}
