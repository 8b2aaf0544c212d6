//! What access control costs: the token lookup and the audit record alone,
//! beside the requests they guard — the dashboard's poll (a 304 and a full
//! summary), an audited participant list, and an audited batch of events
//! next to appending the same batch to the log directly. In-process through
//! `http::app()`, over the embedded store holding OPTIMIST; one run.
//!
//!     cargo bench -p utfall-tests --bench access
//!
//! UTFALL_BENCH_ROUNDS (default 500) sets how often each is done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use utfall::access::audit::AuditRecord;
use utfall::access::{Access, Role, secrets};
use utfall::http::pressure::Pressure;
use utfall::http::{AllowedHosts, AppState, RequestLimits, app};
use utfall_events::wire::parse_batch;
use utfall_projections::follow::catch_up;
use utfall_projections::{Lake, ProjectorStatus, ReadModels};
use utfall_queries::{Analytics, Limits};
use utfall_tests::wire::{contact, ndjson};
use utfall_tests::{fixture, sqlite_url};

/// Mean time of `rounds` runs of `work`.
async fn timed<F: Future<Output = ()>>(rounds: u32, mut work: impl FnMut() -> F) -> Duration {
    let started = Instant::now();
    for _ in 0..rounds {
        work().await;
    }
    started.elapsed() / rounds
}

fn get(path: &str, token: &str, etag: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path)
        .header(header::HOST, "localhost")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(etag) = etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    request.body(Body::empty()).expect("request")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: u32 = std::env::var("UTFALL_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir()?;
    let log = utfall::store::open_log(&utfall_tests::embedded_args(dir.path())).await?;
    log.append(parse_batch(&std::fs::read(fixture("optimist"))?)?).await?;
    let models = Arc::new(ReadModels::connect(&sqlite_url(dir.path())).await?);
    catch_up(log.as_ref(), models.as_ref(), 5000).await?;
    let access = Access::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("events.db").display())).await?;
    secrets::first_admin(&access.tokens, dir.path()).await?;
    let optimist = utfall_events::ProgramName::new("optimist")?;
    let token = access.tokens.create("rita", Role::Registrar, &[optimist], None).await?;
    let lake = Arc::new(Lake::open(&dir.path().join("lake"))?);
    let projector = Arc::new(ProjectorStatus::default());
    let state = AppState {
        log: log.clone(),
        store: "embedded (bench)".into(),
        models,
        projector: projector.clone(),
        analytics: Analytics::new(lake.root(), Limits::default()),
        lake,
        lake_projector: Arc::new(ProjectorStatus::default()),
        extracts: Arc::new(Vec::new()),
        started: Instant::now(),
        access: access.clone(),
        pseudonym_key: Arc::from(&[1u8; 32][..]),
        pressure: Pressure::new(64, 8),
        summaries: Arc::default(),
    };
    let limits = RequestLimits {
        max_body: 1 << 20,
        body_timeout: Duration::from_secs(5),
        allowed_hosts: AllowedHosts::new("127.0.0.1".parse()?, &[]),
    };
    let app = app(state, limits);
    let summary = "/v1/programs/optimist/summary";
    let first = app.clone().oneshot(get(summary, &token, None)).await?;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()[header::ETAG].to_str()?.to_string();

    let send = |request: Request<Body>, expected: StatusCode| {
        let app = app.clone();
        async move {
            let status = app.oneshot(request).await.map(|r| r.status()).ok();
            assert_eq!(status, Some(expected));
        }
    };
    let lookup = timed(rounds, || async {
        assert!(access.authenticate(&token).await.ok().flatten().is_some());
    })
    .await;
    let record = AuditRecord::new(None, "bench", "/bench", "200");
    let audit = timed(rounds, || async {
        access.audit.append(&record).await.ok();
    })
    .await;
    let poll_304 = timed(rounds, || {
        send(get(summary, &token, Some(&etag)), StatusCode::NOT_MODIFIED)
    })
    .await;
    let poll_200 = timed(rounds, || send(get(summary, &token, None), StatusCode::OK)).await;
    let participants = timed(rounds, || {
        send(get("/v1/programs/optimist/participants", &token, None), StatusCode::OK)
    })
    .await;
    let batch = |n: usize| {
        (0..n)
            .map(|_| contact("optimist", "P02", "2020-04-01"))
            .collect::<Vec<_>>()
    };
    let posted = timed(rounds, || {
        let request = Request::post("/v1/events")
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from(ndjson(&batch(10))))
            .expect("request");
        send(request, StatusCode::CREATED)
    })
    .await;
    let direct = timed(rounds, || async {
        let events = parse_batch(ndjson(&batch(10)).as_bytes()).expect("events");
        log.append(events).await.expect("append");
    })
    .await;

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let share = |part: Duration, whole: Duration| 100.0 * part.as_secs_f64() / whole.as_secs_f64();
    println!("access control overhead, {rounds} rounds each, embedded store with OPTIMIST (1618 events)");
    println!("{:<58} {:>10} {:>16}", "what", "µs each", "auth / audit");
    println!("{:<58} {:>10.0}", "token lookup (Access::authenticate)", us(lookup));
    println!("{:<58} {:>10.0}", "audit record (AuditLog::append)", us(audit));
    println!(
        "{:<58} {:>10.0} {:>15.0}%",
        "dashboard poll, summary 304 (auth, no audit)",
        us(poll_304),
        share(lookup, poll_304)
    );
    println!(
        "{:<58} {:>10.0} {:>15.0}%",
        "dashboard poll, summary 200 (auth, no audit, kept summary)",
        us(poll_200),
        share(lookup, poll_200)
    );
    println!(
        "{:<58} {:>10.0} {:>15.0}%",
        "participant list 200 (auth + audit)",
        us(participants),
        share(lookup + audit, participants)
    );
    println!(
        "{:<58} {:>10.0} {:>15.0}%",
        "POST /v1/events, 10 events (auth + audit)",
        us(posted),
        share(lookup + audit, posted)
    );
    println!(
        "{:<58} {:>10.0}",
        "the same 10 events appended to the log directly",
        us(direct)
    );
    Ok(())
}
