//! `GET /healthz`: is the process up, the log reachable, and are the
//! projectors moving. A projector stopped at an unreadable event makes it
//! answer 503 with the position an operator must quarantine. Each
//! component is reported: the log's head, and per projector its position,
//! lag and errors since start. The other background tasks (Postgres wire
//! endpoint, extract scheduler, retention sweep) need no report: the
//! server stops, exiting non-zero, when one of them ends.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utfall_projections::ProjectorStatus;

use super::AppState;
use super::access::{Audit, Routes};
use super::error::ApiError;
use crate::access::Need;

/// Open: orchestrators probe it without credentials; it holds no personal data.
pub fn router() -> Routes {
    Routes::default().get("/healthz", Need::Open, Audit::Refusals, health)
}

async fn health(State(state): State<AppState>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let head = state.log.head().await?;
    let components = json!({
        "log": {"store": state.store, "head": head},
        "read_models": projector(&state.projector, head),
        "lake": projector(&state.lake_projector, head),
    });
    let stalled: Vec<Value> = [("read_models", &state.projector), ("lake", &state.lake_projector)]
        .into_iter()
        .filter_map(|(name, status)| {
            status
                .stalled()
                .map(|s| json!({"projection": name, "position": s.position}))
        })
        .collect();
    if let Some(position) = stalled.first().map(|s| s["position"].clone()) {
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "stalled",
                "log": state.store,
                "head": head,
                "stalled": stalled,
                "components": components,
                "action": format!("the log holds an unreadable event at position {position}: see what it is, then `utfall quarantine --position {position} --reason …` lets the projectors go on past it"),
            })),
        ));
    }
    Ok((
        StatusCode::OK,
        Json(json!({"status": "ok", "log": state.store, "head": head, "components": components})),
    ))
}

fn projector(status: &ProjectorStatus, head: u64) -> Value {
    json!({
        "position": status.position(),
        "lag": head.saturating_sub(status.position()),
        "errors": status.errors(),
        "stalled": status.stalled().is_some(),
    })
}
