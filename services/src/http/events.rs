//! `POST /v1/events`: the way events get in over HTTP.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use utfall_events::wire::parse_batch;

use super::AppState;
use super::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", post(append))
}

/// Accepts NDJSON or a JSON array. 201 with each event's position and
/// version; 409 on a concurrency conflict; 422 listing every invalid event.
async fn append(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let events = parse_batch(&body)?;
    let appended = state.log.append(events).await?;
    let duplicates = appended.iter().filter(|a| a.duplicate).count();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "stored": appended.len() - duplicates,
            "duplicates": duplicates,
            "events": appended,
        })),
    ))
}
