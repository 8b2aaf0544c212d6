//! Fuzzing on the stable toolchain: seeded random inputs, plain and
//! structure-aware, fed to everything that takes outside input — the event
//! parser and validator, the period parser, the extract schedule, SQL text
//! and the HTTP API in-process. Every input must be answered with a value
//! or an error, never a panic (nor, over HTTP, a 5xx other than 503); some
//! targets also check a property. `cargo bench -p utfall-tests --bench
//! fuzz` runs a million inputs per parser (`UTFALL_FUZZ_INPUTS`);
//! `tests/tests/fuzz.rs` runs a few thousand of each in CI, and keeps every
//! input that once failed as a case of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// What a run of one target found.
#[derive(Debug)]
pub struct Outcome {
    pub target: &'static str,
    pub inputs: u64,
    /// The inputs that panicked (or broke the target's property).
    pub failures: Vec<String>,
    pub seconds: f64,
}

/// Feeds `inputs` generated inputs to `check`, catching panics.
pub fn fuzz<I: std::fmt::Debug>(
    target: &'static str,
    inputs: u64,
    seed: u64,
    generate: impl Fn(&mut ChaCha8Rng) -> I,
    check: impl Fn(&I),
) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let mut failures = Vec::new();
    for _ in 0..inputs {
        let input = generate(&mut rng);
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            failures.push(format!("{input:?}"));
        }
    }
    Outcome {
        target,
        inputs,
        failures,
        seconds: started.elapsed().as_secs_f64(),
    }
}

const FIXTURE: &str = include_str!("../fixtures/optimist/events.ndjson");

/// Bytes that are mostly JSON's own: punctuation, keys, values.
pub fn event_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    const PIECES: [&str; 24] = [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "\n", " ", "\"event_id\"", "\"program\"", "\"participant\"",
        "\"type\"", "\"data\"", "\"occurred_on\"", "\"2021-02-30\"", "\"participant_enrolled\"", "null", "true",
        "1e309", "-0", "\"\\ud800\"", "\u{feff}",
    ];
    let mut bytes = Vec::new();
    for _ in 0..rng.random_range(0..64) {
        if rng.random_bool(0.8) {
            bytes.extend_from_slice(PIECES[rng.random_range(0..PIECES.len())].as_bytes());
        } else {
            bytes.push(rng.random());
        }
    }
    bytes
}

/// A fixture event (or a batch of them) with one to three things changed.
pub fn event_json(rng: &mut ChaCha8Rng) -> String {
    let lines: Vec<&str> = FIXTURE.lines().collect();
    let mut events: Vec<Value> = (0..rng.random_range(1..4))
        .map(|_| serde_json::from_str(lines[rng.random_range(0..lines.len())]).unwrap_or(Value::Null))
        .collect();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..events.len());
        mutate(&mut events[at], rng);
    }
    if events.len() == 1 && rng.random_bool(0.5) {
        events[0].to_string()
    } else if rng.random_bool(0.5) {
        Value::Array(events).to_string()
    } else {
        events.iter().map(|e| format!("{e}\n")).collect()
    }
}

fn mutate(value: &mut Value, rng: &mut ChaCha8Rng) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.random_bool(0.7) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = keys[rng.random_range(0..keys.len())].clone();
            match rng.random_range(0..4) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(format!("{key}_x"), odd_value(rng));
                }
                _ => {
                    if let Some(inner) = map.get_mut(&key) {
                        mutate(inner, rng);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() && rng.random_bool(0.7) => {
            let at = rng.random_range(0..items.len());
            mutate(&mut items[at], rng);
        }
        other => *other = odd_value(rng),
    }
}

/// A value of the kind that breaks parsers: wrong types, extremes, depth.
fn odd_value(rng: &mut ChaCha8Rng) -> Value {
    const TYPES: [&str; 4] = ["participant_erased", "retention_set", "event_retracted", "program_defined"];
    match rng.random_range(0..12) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(i64::MIN),
        3 => json!(u64::MAX),
        4 => json!(-0.0),
        5 => json!(1e300),
        6 => json!("x".repeat(rng.random_range(0..5000))),
        7 => json!("P\u{0}7\u{202e}"),
        8 => {
            let mut deep = json!(1);
            for _ in 0..rng.random_range(1..300) {
                deep = json!([deep]);
            }
            deep
        }
        9 => Value::Object(Map::new()),
        10 => json!(TYPES[rng.random_range(0..TYPES.len())]),
        _ => json!(format!("{}-{:02}-{:02}", rng.random_range(0..10000), rng.random_range(0..14), rng.random_range(0..33))),
    }
}

/// Period text: mostly well-formed pieces, often not quite.
pub fn period_text(rng: &mut ChaCha8Rng) -> String {
    const PIECES: [&str; 14] = ["2022", "1999", "Q", "Q4", "Q5", "-", "..", "2022-01-31", "2022-02-30", "13", "0", "M", " ", "+"];
    (0..rng.random_range(0..5))
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// A schedule: well-formed entries with odd values, or noise.
pub fn schedule_text(rng: &mut ChaCha8Rng) -> String {
    const PROGRAMS: [&str; 5] = ["all", "optimist", "Bad Name", "", "x-"];
    const CADENCES: [&str; 4] = ["monthly", "quarterly", "yearly", "daily"];
    const FORMATS: [&str; 4] = ["\"xlsx\"", "\"csv\"", "\"pdf\"", "1"];
    if rng.random_bool(0.1) {
        return String::from_utf8_lossy(&event_bytes(rng)).to_string();
    }
    let mut text = String::new();
    for _ in 0..rng.random_range(0..3) {
        text.push_str("[[extract]]\n");
        text.push_str(&format!("program = \"{}\"\n", PROGRAMS[rng.random_range(0..PROGRAMS.len())]));
        text.push_str(&format!("period = \"{}\"\n", CADENCES[rng.random_range(0..CADENCES.len())]));
        if rng.random_bool(0.5) {
            text.push_str(&format!("formats = [{}]\n", FORMATS[rng.random_range(0..FORMATS.len())]));
        }
        if rng.random_bool(0.5) {
            text.push_str(&format!("min_cell = {}\n", rng.random_range(-2i64..20)));
        }
        if rng.random_bool(0.3) {
            text.push_str(&format!("first_period = \"{}\"\n", period_text(rng)));
        }
        if rng.random_bool(0.2) {
            text.push_str(&format!("grace_days = {}\n", rng.random::<i64>()));
        }
        if rng.random_bool(0.1) {
            text.push_str("unknown = 1\n");
        }
    }
    text
}

/// SQL text from the catalog's words and what the guard must refuse.
pub fn sql_text(rng: &mut ChaCha8Rng) -> String {
    const WORDS: [&str; 36] = [
        "SELECT", "*", "COUNT(*)", "FROM", "participants", "events", "status_spells", "WHERE", "GROUP BY",
        "ORDER BY", "LIMIT", "1", "-1", "99999999999999999999", "program", "participant", "=", "'optimist'",
        "(", ")", ",", "UNION ALL", "JOIN", "ON", "COPY", "TO", "'/tmp/x.csv'", "CREATE TABLE t AS", "DROP TABLE",
        "INSERT INTO events VALUES (1)", "read_csv('/etc/passwd')", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r)",
        "generate_series(1, 1000000000)", "::", "json_get(data, 'x')", ";",
    ];
    (0..rng.random_range(1..14))
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks one schedule text.
pub fn check_schedule(text: &str) {
    let _ = utfall::schedule::config::parse(text, Path::new("schedule.toml"));
}

/// Checks one batch: parsed, or refused with a message for each problem.
pub fn check_events(body: &[u8]) {
    if let Err(utfall_events::wire::BatchError::Invalid { problems, .. }) = utfall_events::wire::parse_batch(body) {
        assert!(problems.iter().all(|p| !p.message.is_empty()), "a problem without a message");
    }
}

/// Checks one period: parsed, then printed and parsed back to itself.
pub fn check_period(text: &str) {
    if let Ok(period) = text.parse::<utfall_queries::extract::Period>() {
        assert_eq!(period.to_string().parse::<utfall_queries::extract::Period>().ok(), Some(period));
    }
}

/// A request to the API: method, path, content type, whether signed in, body.
#[derive(Debug)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub content_type: Option<&'static str>,
    pub signed_in: bool,
    pub body: Vec<u8>,
}

pub fn request(rng: &mut ChaCha8Rng) -> Request {
    const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    const PATHS: [&str; 14] = [
        "/v1/events", "/v1/sql", "/v1/programs", "/v1/programs/optimist/summary", "/v1/programs/optimist/outcomes",
        "/v1/programs/optimist/participants", "/v1/programs/optimist/participants/P01/erase", "/v1/projections",
        "/v1/extracts", "/v1/extracts/x/y", "/v1/audit", "/healthz", "/metrics", "/",
    ];
    const QUERIES: [&str; 6] = ["", "?page=0", "?per_page=99999999999", "?as_of=2022-02-30", "?%ff=%00", "?status=&consultant="];
    const TYPES: [&str; 5] = ["application/x-ndjson", "application/json", "text/plain", "multipart/form-data", "application/json; charset=latin1"];
    let mut path = PATHS[rng.random_range(0..PATHS.len())].to_string();
    if rng.random_bool(0.1) {
        path.push_str(&"/..%2f".repeat(rng.random_range(1..50)));
    }
    path.push_str(QUERIES[rng.random_range(0..QUERIES.len())]);
    let body = match rng.random_range(0..3) {
        0 => event_bytes(rng),
        1 => event_json(rng).into_bytes(),
        _ => sql_text(rng).into_bytes(),
    };
    Request {
        method: METHODS[rng.random_range(0..METHODS.len())],
        path,
        content_type: rng.random_bool(0.8).then(|| TYPES[rng.random_range(0..TYPES.len())]),
        signed_in: rng.random_bool(0.8),
        body,
    }
}

/// Sends `inputs` generated requests to the in-process `app`; a panic, or
/// an answer 5xx other than 503, is a failure.
pub async fn fuzz_http(app: axum::Router, token: &str, inputs: u64, seed: u64) -> Outcome {
    use futures::FutureExt;
    use tower::ServiceExt;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let mut failures = Vec::new();
    for _ in 0..inputs {
        let input = request(&mut rng);
        let mut built = axum::http::Request::builder()
            .method(input.method)
            .uri(&input.path)
            .header("host", "127.0.0.1");
        if let Some(content_type) = input.content_type {
            built = built.header("content-type", content_type);
        }
        if input.signed_in {
            built = built.header("authorization", format!("Bearer {token}"));
        }
        let Ok(sent) = built.body(axum::body::Body::from(input.body.clone())) else {
            continue;
        };
        let answered = AssertUnwindSafe(app.clone().oneshot(sent)).catch_unwind().await;
        match answered {
            Ok(Ok(answer)) if !answer.status().is_server_error() || answer.status().as_u16() == 503 => {}
            Ok(Ok(answer)) => failures.push(format!("{} for {input:?}", answer.status())),
            Ok(Err(e)) => failures.push(format!("{e} for {input:?}")),
            Err(_) => failures.push(format!("panic for {input:?}")),
        }
    }
    Outcome {
        target: "HTTP API (in-process)",
        inputs,
        failures,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Runs SQL text through the engine over an empty lake; a panic is a
/// failure (refusals and errors are answers).
pub async fn fuzz_sql(analytics: &utfall_queries::Analytics, inputs: u64, seed: u64) -> Outcome {
    use futures::FutureExt;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let mut failures = Vec::new();
    let snapshot = utfall_queries::Snapshot::default();
    for _ in 0..inputs {
        let text = sql_text(&mut rng);
        if AssertUnwindSafe(analytics.sql(&snapshot, &text)).catch_unwind().await.is_err() {
            failures.push(text);
        }
    }
    Outcome {
        target: "SQL text",
        inputs,
        failures,
        seconds: started.elapsed().as_secs_f64(),
    }
}
