//! Where the projectors stand: `GET /v1/projections` (JSON) and
//! `GET /metrics` (Prometheus text format). Programme names are shown
//! only to those with a role in the programme: `/v1/projections` lists
//! the caller's programmes' projectors; the open `/metrics` folds them
//! into one series without names.

use std::fmt::Write;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utfall_projections::ProjectorStatus;
use utfall_projections::read_models::checkpoint;

use super::AppState;
use super::access::{Audit, Caller, Routes};
use super::error::ApiError;
use crate::access::{Need, Role};

/// `/metrics` is open for Prometheus (counts and positions only, no
/// programme names); `/v1/projections` is for signed-in users of the
/// dashboard.
pub fn router() -> Routes {
    Routes::default()
        .get("/v1/projections", Need::SignedIn, Audit::Refusals, projections)
        .get("/metrics", Need::Open, Audit::Refusals, metrics)
}

struct Standing {
    name: String,
    /// The unreadable position the projector is stopped at.
    stalled: Option<u64>,
    position: u64,
    lag: u64,
    /// What this process counted, for projectors that run in it.
    counted: Option<Counted>,
}

struct Counted {
    applied: u64,
    errors: u64,
    rate: f64,
}

/// The projectors of this process, and those of the read models that
/// other processes run (`utfall project --programs`), from their
/// checkpoints: one per programme, and the every-programme one.
async fn standings(state: &AppState) -> Result<(u64, Vec<Standing>), ApiError> {
    let head = state.log.head().await?;
    let seconds = state.started.elapsed().as_secs_f64().max(1e-3);
    let here = |name: &str, status: &ProjectorStatus| Standing {
        name: name.to_string(),
        stalled: status.stalled().map(|s| s.position),
        position: status.position(),
        lag: head.saturating_sub(status.position()),
        counted: Some(Counted {
            applied: status.applied(),
            errors: status.errors(),
            rate: status.applied() as f64 / seconds,
        }),
    };
    let mut standings = Vec::new();
    if !state.projector.is_elsewhere() {
        standings.push(here("read_models", &state.projector));
    }
    for (name, position) in state.models.checkpoints().await? {
        if standings.iter().all(|s| s.name != name) {
            standings.push(Standing {
                name,
                stalled: None,
                position,
                lag: head.saturating_sub(position),
                counted: None,
            });
        }
    }
    standings.push(here("lake", &state.lake_projector));
    Ok((head, standings))
}

/// The name of the series the open `/metrics` gives for all the
/// programmes' own projectors together.
const PROGRAMMES: &str = "read_models/programmes";

async fn projections(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Value>, ApiError> {
    let (head, mut standings) = standings(&state).await?;
    if let Some(theirs) = caller.programs(&Role::ALL) {
        standings.retain(|s| checkpoint::programme(&s.name).is_none_or(|p| theirs.iter().any(|t| t.as_str() == p)));
    }
    let lake_files = state.lake.parts()?.len();
    Ok(Json(Value::Array(
        standings
            .iter()
            .map(|s| {
                let mut entry = json!({
                    "name": s.name,
                    "position": s.position,
                    "head": head,
                    "lag": s.lag,
                    "events_per_second": s.counted.as_ref().map(|c| c.rate),
                    "applied_since_start": s.counted.as_ref().map(|c| c.applied),
                    "errors_since_start": s.counted.as_ref().map(|c| c.errors),
                    "stalled_at": s.stalled,
                });
                if s.name == "lake" {
                    entry["files"] = lake_files.into();
                }
                entry
            })
            .collect(),
    )))
}

/// The programmes' own projectors as one standing: the furthest behind.
fn without_programme_names(standings: Vec<Standing>) -> Vec<Standing> {
    let (programmes, mut named): (Vec<Standing>, Vec<Standing>) =
        standings.into_iter().partition(|s| checkpoint::programme(&s.name).is_some());
    if let Some(slowest) = programmes.into_iter().max_by_key(|s| s.lag) {
        named.push(Standing { name: PROGRAMMES.into(), ..slowest });
    }
    named
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (head, standings) = standings(&state).await?;
    let standings = without_programme_names(standings);
    let mut text = format!(
        "# HELP utfall_log_head_position Position of the last event in the log.\n\
         # TYPE utfall_log_head_position gauge\n\
         utfall_log_head_position {head}\n\
         # HELP utfall_queries_running SQL queries and outcome reports running now.\n\
         # TYPE utfall_queries_running gauge\n\
         utfall_queries_running {}\n",
        state.analytics.running()
    );
    type Family = (&'static str, &'static str, &'static str, fn(&Standing) -> Option<String>);
    let families: [Family; 5] = [
        (
            "utfall_projection_position",
            "gauge",
            "Last log position folded into the projection.",
            |s| Some(s.position.to_string()),
        ),
        (
            "utfall_projection_lag_events",
            "gauge",
            "Events in the log not yet folded into the projection.",
            |s| Some(s.lag.to_string()),
        ),
        (
            "utfall_projection_events_total",
            "counter",
            "Events folded since the process started.",
            |s| s.counted.as_ref().map(|c| c.applied.to_string()),
        ),
        (
            "utfall_projection_stalled",
            "gauge",
            "1 while the projector is stopped at an unreadable event (see /healthz).",
            |s| Some(u8::from(s.stalled.is_some()).to_string()),
        ),
        (
            "utfall_projection_errors_total",
            "counter",
            "Projector restarts after an error since the process started.",
            |s| s.counted.as_ref().map(|c| c.errors.to_string()),
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &standings {
            if let Some(value) = value(s) {
                let _ = writeln!(text, "{name}{{projection=\"{}\"}} {value}", s.name);
            }
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
