//! Where the projector stands: `GET /v1/projections` (JSON) and
//! `GET /metrics` (Prometheus text format).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/projections", get(projections))
        .route("/metrics", get(metrics))
}

struct Standing {
    position: u64,
    head: u64,
    applied: u64,
    errors: u64,
    rate: f64,
}

async fn standing(state: &AppState) -> Result<Standing, ApiError> {
    let head = state.log.head().await?;
    let status = &state.projector;
    let seconds = state.started.elapsed().as_secs_f64().max(1e-3);
    Ok(Standing {
        position: status.position(),
        head,
        applied: status.applied(),
        errors: status.errors(),
        rate: status.applied() as f64 / seconds,
    })
}

async fn projections(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = standing(&state).await?;
    Ok(Json(json!([{
        "name": "read_models",
        "position": s.position,
        "head": s.head,
        "lag": s.head.saturating_sub(s.position),
        "events_per_second": s.rate,
        "applied_since_start": s.applied,
        "errors_since_start": s.errors,
    }])))
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let s = standing(&state).await?;
    let text = format!(
        "# HELP utfall_log_head_position Position of the last event in the log.\n\
         # TYPE utfall_log_head_position gauge\n\
         utfall_log_head_position {head}\n\
         # HELP utfall_projection_position Last log position folded into the projection.\n\
         # TYPE utfall_projection_position gauge\n\
         utfall_projection_position{{projection=\"read_models\"}} {position}\n\
         # HELP utfall_projection_lag_events Events in the log not yet folded into the projection.\n\
         # TYPE utfall_projection_lag_events gauge\n\
         utfall_projection_lag_events{{projection=\"read_models\"}} {lag}\n\
         # HELP utfall_projection_events_total Events folded since the process started.\n\
         # TYPE utfall_projection_events_total counter\n\
         utfall_projection_events_total{{projection=\"read_models\"}} {applied}\n\
         # HELP utfall_projection_errors_total Projector restarts after an error since the process started.\n\
         # TYPE utfall_projection_errors_total counter\n\
         utfall_projection_errors_total{{projection=\"read_models\"}} {errors}\n",
        head = s.head,
        position = s.position,
        lag = s.head.saturating_sub(s.position),
        applied = s.applied,
        errors = s.errors,
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
