//! The HTTP API: one router per module, merged over a shared state.

pub mod access;
mod analytics;
mod audit;
mod dashboard;
mod error;
mod erasure;
mod events;
mod extracts;
mod guard;
mod health;
pub mod pressure;
mod programs;
mod projections;
pub mod summaries;
pub mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use futures::FutureExt;
use tokio::task::JoinSet;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use utfall_events::EventLog;
use utfall_projections::{Lake, ProjectorStatus, ReadModels, follow, observe};

use crate::access::oidc::Oidc;
use crate::access::{Access, secrets};
use crate::cli::{Projectors, ServeArgs};
pub use guard::AllowedHosts;
use utfall_queries::Analytics;

use crate::schedule::{self, Scheduler};
use crate::store::{describe, open_lake_to_write, open_log, open_read_models};

/// How often the server erases those due under a retention rule.
const RETENTION_SWEEP: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// How often the extract scheduler looks for closed periods.
const SCHEDULE_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub log: Arc<dyn EventLog>,
    /// Which store serves the log, e.g. `embedded utfall-data`.
    pub store: String,
    pub models: Arc<ReadModels>,
    /// The read-model projector's standing (poll ETags are made of it).
    pub projector: Arc<ProjectorStatus>,
    pub lake: Arc<Lake>,
    pub lake_projector: Arc<ProjectorStatus>,
    pub analytics: Analytics,
    /// Folders funder extracts are listed and downloaded from.
    pub extracts: Arc<Vec<PathBuf>>,
    /// Principals and the audit log.
    pub access: Access,
    /// The key of evaluators' participant pseudonyms.
    pub pseudonym_key: Arc<[u8]>,
    /// How many batches and queries may run at once.
    pub pressure: pressure::Pressure,
    /// Programme summaries kept while the read models stand still.
    pub summaries: Arc<summaries::Summaries>,
    pub started: Instant,
}

/// What the router holds every request to.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    pub max_body: usize,
    pub body_timeout: std::time::Duration,
    pub allowed_hosts: AllowedHosts,
}

/// Every route with the need it declared.
pub fn routes() -> access::Routes {
    analytics::router()
        .merge(audit::router())
        .merge(dashboard::router())
        .merge(erasure::router())
        .merge(events::router())
        .merge(extracts::router())
        .merge(health::router())
        .merge(programs::router())
        .merge(projections::router())
}

/// The whole API as a router, so tests can drive it without a socket.
pub fn app(state: AppState, limits: RequestLimits) -> Router {
    let (router, _) = routes().into_parts();
    router
        .layer(Extension(state.access.clone()))
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(axum::middleware::from_fn_with_state(limits.allowed_hosts, guard::guard))
        // Each server-side failure is logged where it is mapped, with its
        // cause; a busy answer is back-pressure working, not an error.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)))
        .with_state(state)
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store).await?;
    serve_log(log, args, false).await
}

/// Serves the API over a log that is already open. The background tasks
/// (projectors, Postgres wire endpoint, extract scheduler) are held in one
/// set: the server stops on SIGINT or SIGTERM, or when one of them ends
/// (none should), and takes them all down with it. A `demo` prints a
/// ready-to-open dashboard link holding the admin token.
pub async fn serve_log(log: Arc<dyn EventLog>, args: ServeArgs, demo: bool) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    crate::tls::check_listen("HTTP", args.http, tls.is_some(), args.insecure_listen)?;
    if let Some(pg) = args.pg {
        crate::tls::check_listen("the Postgres wire endpoint", pg, tls.is_some(), args.insecure_listen)?;
    }
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut access = Access::open(&args.store).await?;
    if let Some(config) = args.oidc.config() {
        let issuer = config.issuer.clone();
        access = access.with_oidc(Oidc::load(config).await?);
        println!("utfall accepts OIDC tokens of {issuer}");
    }
    if let Some(path) = secrets::first_admin(&access.tokens, &args.store.data_dir).await? {
        println!(
            "utfall admin token written to {} (readable by you only): send it as `Authorization: Bearer <token>`; `utfall token create` makes more",
            path.display()
        );
    }
    let pseudonym_key: Arc<[u8]> = secrets::pseudonym_key(&args.pseudonym_key_path())?.into();
    let models = Arc::new(open_read_models(&args.store).await?);
    let projector = match args.projectors {
        Projectors::All => {
            let projector = Arc::new(ProjectorStatus::default());
            let (read_models, status) = (models.clone(), projector.clone());
            tasks.spawn(
                follow(log.clone(), read_models, status)
                    .map(|()| Err(anyhow::anyhow!("the read-model projector ended"))),
            );
            projector
        }
        Projectors::Lake => {
            let projector = Arc::new(ProjectorStatus::elsewhere());
            let observed = observe(models.clone(), projector.clone());
            tasks.spawn(observed.map(|()| Err(anyhow::anyhow!("following the read models' checkpoints ended"))));
            projector
        }
    };
    let lake = Arc::new(open_lake_to_write(&args.store)?);
    let lake_projector = Arc::new(ProjectorStatus::default());
    let (lake_projection, status) = (Arc::new(lake.clone()), lake_projector.clone());
    tasks
        .spawn(follow(log.clone(), lake_projection, status).map(|()| Err(anyhow::anyhow!("the lake projector ended"))));
    let sweep = crate::retention::sweep(log.clone(), models.clone(), access.clone(), RETENTION_SWEEP);
    tasks.spawn(sweep.map(|()| Err(anyhow::anyhow!("the retention sweep ended"))));
    let analytics = Analytics::new(lake.root(), args.limits.limits());
    if let Some(address) = args.pg {
        let (analytics, max_connections, max_queries) = (analytics.clone(), args.max_connections, args.max_queries);
        let (access, key) = (access.clone(), pseudonym_key.clone());
        let tls = args.tls_cert.clone().zip(args.tls_key.clone());
        tasks.spawn(async move {
            crate::pg::serve(analytics, access, key, address, max_connections, max_queries, tls)
                .await
                .context("the Postgres wire endpoint stopped")
        });
        println!("utfall SQL on postgres://{address}/utfall");
    }
    let mut extracts = vec![args.extracts.clone()];
    if let Some(path) = &args.schedule {
        let scheduler = Scheduler::new(schedule::load(path)?);
        extracts.extend(scheduler.outputs().into_iter().filter(|o| *o != args.extracts));
        let run = scheduler.run(analytics.clone(), log.clone(), lake.clone(), SCHEDULE_CHECK);
        tasks.spawn(run.map(|()| Err(anyhow::anyhow!("the extract scheduler ended"))));
        println!("utfall extract schedule from {}", path.display());
    }
    let state = AppState {
        analytics,
        extracts: Arc::new(extracts),
        access,
        pseudonym_key,
        pressure: pressure::Pressure::new(args.max_ingest_batches, args.max_queries),
        summaries: Arc::default(),
        models,
        projector,
        lake,
        lake_projector,
        started: Instant::now(),
        log,
        store: describe(&args.store),
    };
    let listener = tokio::net::TcpListener::bind(args.http).await?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(token) = demo.then(|| secrets::read_admin_token(&args.store.data_dir)).flatten() {
        println!("dashboard (signed in as admin): {scheme}://{address}/#token={token}");
        if let Some(pg) = args.pg {
            let file = args.store.data_dir.join(secrets::ADMIN_TOKEN_FILE);
            println!(
                "SQL: PGPASSWORD=$(cat {}) psql -h {} -p {} -U {} utfall",
                file.display(),
                pg.ip(),
                pg.port(),
                secrets::FIRST_ADMIN
            );
        }
    }
    // The last line on stdout: scripts read the bound address (port 0
    // picks one) from it and may close the pipe after.
    println!("utfall listening on {scheme}://{address}");
    tracing::info!(store = %state.store, "serving");
    let limits = server::ConnectionLimits {
        max_connections: args.max_connections,
        header_timeout: std::time::Duration::from_secs(args.header_timeout),
    };
    let served = tokio::select! {
        served = server::serve(listener, app(state, args.request_limits()), limits, tls, shutdown_signal()) => served.map_err(Into::into),
        Some(ended) = tasks.join_next() => ended.map_err(anyhow::Error::from).and_then(|r| r),
    };
    tasks.shutdown().await;
    served
}

/// SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
