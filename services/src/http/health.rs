//! `GET /healthz`: is the process up and the log reachable.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(health))
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let head = state.log.head().await?;
    Ok(Json(json!({"status": "ok", "log": state.store, "head": head})))
}
