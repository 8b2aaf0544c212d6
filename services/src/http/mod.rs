//! The HTTP API: one router per module, merged over a shared state.

mod analytics;
mod dashboard;
mod error;
mod events;
mod extracts;
mod guard;
mod health;
mod programs;
mod projections;
pub mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utfall_events::EventLog;
use utfall_projections::{Lake, ProjectorStatus, ReadModels, follow};

use crate::cli::ServeArgs;
pub use guard::AllowedHosts;
use utfall_queries::Analytics;

use crate::schedule::{self, Scheduler};
use crate::store::{describe, open_lake, open_log, open_read_models};

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
    pub started: Instant,
}

/// What the router holds every request to.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    pub max_body: usize,
    pub body_timeout: std::time::Duration,
    pub allowed_hosts: AllowedHosts,
}

/// The whole API as a router, so tests can drive it without a socket.
pub fn app(state: AppState, limits: RequestLimits) -> Router {
    Router::new()
        .merge(analytics::router())
        .merge(dashboard::router())
        .merge(events::router())
        .merge(extracts::router())
        .merge(health::router())
        .merge(programs::router())
        .merge(projections::router())
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(axum::middleware::from_fn_with_state(limits.allowed_hosts, guard::guard))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store).await?;
    serve_log(log, args).await
}

/// Serves the API over a log that is already open, with the projector
/// keeping the read models current in the background.
pub async fn serve_log(log: Arc<dyn EventLog>, args: ServeArgs) -> anyhow::Result<()> {
    let models = Arc::new(open_read_models(&args.store).await?);
    let projector = Arc::new(ProjectorStatus::default());
    tokio::spawn(follow(log.clone(), models.clone(), projector.clone()));
    let lake = Arc::new(open_lake(&args.store)?);
    let lake_projector = Arc::new(ProjectorStatus::default());
    tokio::spawn(follow(log.clone(), Arc::new(lake.clone()), lake_projector.clone()));
    let analytics = Analytics::new(lake.events_dir(), args.limits.limits());
    if let Some(address) = args.pg {
        let analytics = analytics.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::pg::serve(analytics, address, args.max_connections).await {
                tracing::error!(error = %e, "the Postgres wire endpoint stopped");
            }
        });
        println!("utfall SQL on postgres://{address}/utfall");
    }
    let mut extracts = vec![args.extracts.clone()];
    if let Some(path) = &args.schedule {
        let scheduler = Scheduler::new(schedule::load(path)?);
        extracts.extend(scheduler.outputs().into_iter().filter(|o| *o != args.extracts));
        tokio::spawn(scheduler.run(analytics.clone(), log.clone(), lake.clone(), SCHEDULE_CHECK));
        println!("utfall extract schedule from {}", path.display());
    }
    let state = AppState {
        analytics,
        extracts: Arc::new(extracts),
        models,
        projector,
        lake,
        lake_projector,
        started: Instant::now(),
        log,
        store: describe(&args.store),
    };
    let listener = tokio::net::TcpListener::bind(args.http).await?;
    // Tests and scripts read the bound address (port 0 picks one) from here.
    println!("utfall listening on http://{}", listener.local_addr()?);
    tracing::info!(store = %state.store, "serving");
    let limits = server::ConnectionLimits {
        max_connections: args.max_connections,
        header_timeout: std::time::Duration::from_secs(args.header_timeout),
    };
    server::serve(listener, app(state, args.request_limits()), limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
