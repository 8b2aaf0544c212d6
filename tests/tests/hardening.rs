//! The ways in, tried as an attacker and a careless user would: SQL that
//! nests deeply or answers hugely, runaway queries, slow clients, foreign
//! sites and hosts, and bad event JSON. Each answer must be a clear error,
//! never a crashed or stuck server (HTTP and the Postgres wire endpoint).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use utfall_tests::wire::*;
use utfall_tests::{Pg, Server, Store, fixture, free_port, run_utfall, wait_for};

/// A server over both fixtures with its Postgres endpoint, given `limits`.
fn serve(limits: &[&str]) -> (Store, Server, Pg) {
    let store = Store::embedded();
    let mut import = vec!["import".to_string()];
    import.extend(store.args());
    import.extend(["optimist", "sja-meg"].map(|n| fixture(n).display().to_string()));
    assert!(run_utfall(&import, None).status.success());
    let port = free_port();
    let mut extra = store.args();
    extra.extend(["--pg".to_string(), format!("127.0.0.1:{port}")]);
    extra.extend(limits.iter().map(|s| s.to_string()));
    let server = Server::start(&extra);
    wait_for(
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the Postgres endpoint",
    );
    let pg = Pg::admin(&server, port);
    (store, server, pg)
}

async fn sql(server: &Server, text: String) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(server.url("/v1/sql"))
        .body(text)
        .send()
        .await
        .expect("POST /v1/sql");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `psql` running `command`: (succeeded, stdout, stderr).
fn psql(pg: &Pg, commands: &[&str]) -> (bool, String, String) {
    let program = std::env::var("UTFALL_TEST_PSQL").unwrap_or_else(|_| "psql".into());
    let mut cmd = pg.command(&program);
    cmd.args(["-X", "-A", "-t"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

async fn alive(server: &Server) {
    let health: Value = server.get("/healthz").await.json().await.expect("json");
    assert_eq!(health["status"], "ok");
}

fn chain(n: usize, separator: &str, term: &str) -> String {
    vec![term; n].join(separator)
}

#[tokio::test]
async fn deep_and_long_sql_gets_an_error_and_the_server_lives() {
    let (_store, server, pg) = serve(&[]);
    let deep = [
        format!("SELECT {}", chain(250, "+", "1")),
        chain(2000, " UNION ALL ", "SELECT 1"),
        format!("SELECT 1 WHERE {}", chain(2000, " OR ", "1=1")),
        format!("SELECT {}", chain(400, "||", "'a'")),
        format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
        format!(
            "SELECT * FROM {}events{}",
            "(SELECT * FROM ".repeat(300),
            ") x".repeat(300)
        ),
        // The body limit's worth of one operator chain.
        format!("SELECT {}", chain((8 << 20) - 8, "+", "1")),
    ];
    for text in &deep {
        let (status, body) = sql(&server, text.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}…: {body}", &text[..40]);
        assert!(body["message"].is_string());
    }
    for text in deep.iter().take(6) {
        let (ok, _, stderr) = psql(&pg, &[text]);
        assert!(!ok && stderr.contains("ERROR"), "{}…: {stderr}", &text[..40]);
    }
    alive(&server).await;

    // Wide but shallow shapes are answered.
    let case = format!(
        "SELECT CASE {} ELSE -1 END AS c",
        (0..3000)
            .map(|i| format!("WHEN {i} = 2999 THEN {i}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (status, body) = sql(&server, case.clone()).await;
    assert_eq!((status, body[0]["c"].as_i64()), (StatusCode::OK, Some(2999)), "{body}");
    let (ok, out, _) = psql(&pg, &[&case]);
    assert_eq!((ok, out.as_str()), (true, "2999"));
    let nested = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let (status, _) = sql(&server, format!("SELECT json_get('{nested}', 0) AS j")).await;
    assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST);
    alive(&server).await;
}

#[tokio::test]
async fn answers_are_bounded_timed_and_complete() {
    let limits = [
        "--max-result-rows",
        "1000",
        "--max-result-mb",
        "8",
        "--query-timeout",
        "3",
    ];
    let (_store, server, pg) = serve(&limits);
    let started = Instant::now();
    for text in [
        "SELECT * FROM generate_series(1, 50000000)",
        "SELECT repeat('x', 4000) FROM generate_series(1, 30000)",
    ] {
        let (status, body) = sql(&server, text.into()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("too_large")),
            "{body}"
        );
        let (ok, _, stderr) = psql(&pg, &[text]);
        assert!(!ok && stderr.contains("more than a query may return"), "{stderr}");
    }
    for text in [
        "SELECT range(1, 10000000000)",
        "SELECT repeat('x', 100000000)",
        "SELECT lpad('x', 2000000000)",
        // Each value within bounds, a batch of them gigabytes.
        "SELECT repeat('x', 1000000) FROM generate_series(1, 8192)",
        "SELECT range(1, 1000000) FROM generate_series(1, 8192)",
    ] {
        let (status, body) = sql(&server, text.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("at most")),
            "{body}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "refusals took {:?}",
        started.elapsed()
    );

    let runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r";
    let started = Instant::now();
    let (status, _) = sql(&server, runaway.into()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (ok, _, stderr) = psql(&pg, &[runaway]);
    assert!(!ok && stderr.contains("statement timeout"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "timeouts took {:?}",
        started.elapsed()
    );

    // A client that gives up stops its query.
    let gave_up = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client")
        .post(server.url("/v1/sql"))
        .bearer_auth(&server.admin_token)
        .body(runaway)
        .send()
        .await;
    assert!(gave_up.is_err());
    let running = || async {
        let text = server.get("/metrics").await.text().await.expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("utfall_queries_running "))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while running().await != Some(0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(running().await, Some(0), "the abandoned query still runs");

    // Every row carries every column, and equal names are made unique.
    let (status, body) = sql(
        &server,
        "SELECT x.a, NULL AS b, y.a FROM (SELECT 1 AS a) x, (SELECT 2 AS a) y".into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([{"a": 1, "b": null, "a_2": 2}]));
    alive(&server).await;
}

/// Each endpoint holds its own cap on statements running at once: one
/// more is refused at once, and the room comes back when the first ends.
#[tokio::test]
async fn the_postgres_endpoint_refuses_a_query_past_its_cap() {
    let (_store, server, pg) = serve(&["--max-queries", "1", "--query-timeout", "10"]);
    let runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r";
    let first = std::thread::spawn({
        let pg = pg.clone();
        move || psql(&pg, &[runaway])
    });
    // Probe while the first runs (psql may take seconds to start on a busy
    // machine, so no fixed window).
    let (mut ok, mut stderr) = (true, String::new());
    while ok && !first.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
        (ok, _, stderr) = psql(&pg, &["SELECT 1"]);
    }
    assert!(!ok && stderr.contains("too many SQL queries are running at once"), "{stderr}");
    let (status, body) = sql(&server, "SELECT 1 AS one".into()).await;
    assert_eq!((status, body), (StatusCode::OK, json!([{"one": 1}])), "HTTP has a cap of its own");
    let (ok, _, stderr) = first.join().expect("first psql");
    assert!(!ok && stderr.contains("statement timeout"), "{stderr}");
    let (ok, out, stderr) = psql(&pg, &["SELECT 1"]);
    assert_eq!((ok, out.as_str()), (true, "1"), "{stderr}");
}

#[tokio::test]
async fn the_postgres_endpoint_sees_new_rows_and_keeps_settings_per_session() {
    let (_store, server, pg) = serve(&["--query-timeout", "30"]);
    let count = || psql(&pg, &["SELECT count(*) FROM events"]).1;
    wait_for(|| count() == "1618", "the lake to hold both fixtures");
    assert_eq!(
        server.post_events(&[program_defined("late-programme")]).await,
        StatusCode::CREATED
    );
    wait_for(|| count() == "1619", "the new event over the Postgres endpoint");

    let (ok, _, stderr) = psql(&pg, &["SET datafusion.sql_parser.dialect = 'MySQL'"]);
    assert!(!ok && stderr.contains("only these settings may be changed"), "{stderr}");
    let (ok, _, stderr) = psql(&pg, &["SET datafusion.catalog.information_schema = false"]);
    assert!(!ok, "{stderr}");
    let (ok, out, _) = psql(
        &pg,
        &["SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'"],
    );
    assert_eq!((ok, out.as_str()), (true, "1"));
    let (ok, out, stderr) = psql(&pg, &["SET statement_timeout = 1000", "SHOW statement_timeout"]);
    assert!(ok, "{stderr}");
    assert!(out.contains("1000") || out.contains("1s"), "{out}");

    let python = std::env::var("UTFALL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hardening/cancel.py");
    let out = pg.command(&python).arg(script).output().expect("python");
    let printed = String::from_utf8_lossy(&out.stdout);
    let seconds: Option<f64> = printed
        .split("cancelled after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok());
    assert!(
        seconds.is_some_and(|s| (1.0..10.0).contains(&s)),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("then 1619"), "{printed}");
}

#[tokio::test]
async fn foreign_sites_hosts_and_content_types_are_refused() {
    let (_store, server, _) = serve(&[]);
    let client = server.client();
    let head = || async { server.get("/healthz").await.json::<Value>().await.expect("j")["head"].clone() };
    let before = head().await;
    let event = ndjson(&[program_defined("sneaky")]);
    let attempts = [
        client
            .post(server.url("/v1/events"))
            .header("content-type", "text/plain")
            .body(event.clone()),
        client.post(server.url("/v1/events")).body(event.clone()),
        client
            .post(server.url("/v1/events"))
            .header("content-type", "application/x-ndjson")
            .header("origin", "https://evil.example")
            .body(event.clone()),
        client
            .post(server.url("/v1/events"))
            .header("content-type", "application/x-ndjson")
            .header("sec-fetch-site", "cross-site")
            .body(event.clone()),
        client
            .post(server.url("/v1/events"))
            .header("content-type", "application/x-ndjson")
            .header("host", "evil.example")
            .body(event.clone()),
    ];
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.send().await.expect("answer").status().as_u16());
    }
    assert_eq!(statuses, [415, 415, 403, 403, 421]);
    let foreign_host = client
        .get(server.url("/v1/programs"))
        .header("host", "rebound.example:80")
        .send()
        .await
        .expect("get");
    assert_eq!(foreign_host.status(), StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(head().await, before, "a refused request wrote something");
    let origin = server.base.trim_start_matches("http://").to_string();
    let same_site = client
        .post(server.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .header("origin", format!("http://{origin}"))
        .body(event)
        .send()
        .await
        .expect("post");
    assert_eq!(same_site.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn bad_event_json_is_refused_by_name_without_echoing_it() {
    let (_store, server, _) = serve(&[]);
    let post = |body: String| async {
        let response = server
            .client()
            .post(server.url("/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("post");
        (response.status(), response.text().await.expect("text"))
    };
    let twice = r#"{"program":"optimist","participant":"P01","participant":"P02","type":"contact_recorded","occurred_on":"2021-03-01","data":{"kind":"phone"}}"#;
    let (status, body) = post(twice.into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["invalid"][0]["field"], "participant", "{body}");
    let nil = twice.replace(
        r#""participant":"P01","#,
        r#""event_id":"00000000-0000-0000-0000-000000000000","#,
    );
    let (status, body) = post(nil).await;
    assert!(
        status == StatusCode::UNPROCESSABLE_ENTITY && body.contains("event_id"),
        "{body}"
    );
    let huge = format!(r#"{{"event_id":"{}","program":"optimist"}}"#, "x".repeat(1 << 20));
    let (status, body) = post(huge).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.len() < 2000, "a 1 MiB id came back as {} bytes", body.len());
    let deep = format!(
        r#"{{"program":"optimist","participant":"P01","type":"contact_recorded","occurred_on":"2021-03-01","data":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, _) = post(deep).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    alive(&server).await;
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let (_store, server, _) = serve(&["--header-timeout", "1", "--body-timeout", "1"]);
    let address = server.base.trim_start_matches("http://").to_string();
    let closed_within = |request: &[u8]| {
        let mut stream = TcpStream::connect(&address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(request).expect("send");
        let started = Instant::now();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        (started.elapsed(), String::from_utf8_lossy(&answer).to_string())
    };
    let (took, _) = closed_within(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    assert!(
        took < Duration::from_secs(5),
        "partial headers held a connection for {took:?}"
    );
    let (took, _) = closed_within(b"");
    assert!(
        took < Duration::from_secs(5),
        "an idle connection was held for {took:?}"
    );
    let (took, answer) = closed_within(
        b"POST /v1/sql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\nConnection: close\r\n\r\nSELECT",
    );
    assert!(took < Duration::from_secs(5), "a short body was waited on for {took:?}");
    assert!(answer.starts_with("HTTP/1.1 4"), "a short body got {answer:?}");
    alive(&server).await;
}

#[tokio::test]
async fn unknown_programmes_are_not_found_everywhere_and_say_why() {
    let (_store, server, _) = serve(&[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.get("/v1/programs/optimist/participants").await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "the read models never held optimist");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in [
        "/v1/programs/nope/participants",
        "/v1/programs/nope/summary",
        "/v1/programs/nope/outcomes",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let early = server.get("/v1/programs/optimist/outcomes?as_of=0001-01-01").await;
    assert_eq!(early.status(), StatusCode::NOT_FOUND);
    let body: Value = early.json().await.expect("json");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("as of 0001-01-01")),
        "{body}"
    );
}

/// Every file and folder under `root` (not `root` itself) with a group or
/// other permission bit.
fn shared_files(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            let meta = entry.metadata().expect("metadata");
            if meta.permissions().mode() & 0o077 != 0 {
                found.push(format!("{} {:o}", entry.path().display(), meta.permissions().mode()));
            }
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    found
}

#[tokio::test]
async fn data_files_are_readable_by_their_owner_only() {
    let (store, server, pg) = serve(&[]);
    wait_for(|| psql(&pg, &["SELECT count(*) FROM events"]).1 == "1618", "the lake");
    let Store::Embedded(dir) = &store else {
        unreachable!("serve() uses the embedded store")
    };
    let out = tempfile::tempdir().expect("extracts");
    let mut extract = vec![
        "extract".to_string(),
        "--program".into(),
        "optimist".into(),
        "--period".into(),
        "2022".into(),
    ];
    extract.extend(store.args());
    extract.extend(["--out".into(), out.path().display().to_string()]);
    drop(server);
    let made = run_utfall(&extract, None);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    for expected in ["events.db", "read.db", "lake"] {
        assert!(dir.path().join(expected).exists(), "no {expected}");
    }
    assert_eq!(shared_files(dir.path()), Vec::<String>::new());
    assert_eq!(shared_files(out.path()), Vec::<String>::new());
}

#[tokio::test]
async fn the_postgres_endpoint_holds_a_connection_limit() {
    let (_store, _server, pg) = serve(&["--max-connections", "2"]);
    // Two sessions that have started up and sit idle.
    let mut startup = b"\0\0\0\0\0\x03\0\0user\0evaluator\0database\0utfall\0\0".to_vec();
    let length = (startup.len() as u32).to_be_bytes();
    startup[..4].copy_from_slice(&length);
    // The probe that saw the port open may still hold a slot for a moment:
    // a session refused for that is tried again.
    let start_session = || -> std::io::Result<TcpStream> {
        let mut session = TcpStream::connect(("127.0.0.1", pg.port))?;
        session.write_all(&startup)?;
        session.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut ready = [0u8; 1];
        session.read_exact(&mut ready)?;
        Ok(session)
    };
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match start_session() {
                    Ok(session) => break session,
                    Err(e) if Instant::now() > deadline => panic!("the server answers no start-up: {e}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })
        .collect();
    let (ok, _, stderr) = psql(&pg, &["SELECT 1"]);
    assert!(!ok, "a third connection was served: {stderr}");
    drop(held);
    wait_for(
        || psql(&pg, &["SELECT 1"]).1 == "1",
        "a connection once the others closed",
    );
}
