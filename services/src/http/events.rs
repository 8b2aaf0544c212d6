//! `POST /v1/events`: the way events get in over HTTP.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
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

/// Content types a batch of events may come as. A browser can post a
/// form, `text/plain` or no type at all from any page without asking: none
/// of those is accepted.
const EVENT_TYPES: [&str; 4] = [
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json",
];

/// Accepts NDJSON or a JSON array. 201 with each event's position and
/// version; 409 on a concurrency conflict; 415 for another content type;
/// 422 listing every invalid event.
async fn append(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !content_type.as_deref().is_some_and(|t| EVENT_TYPES.contains(&t)) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "events are sent as {}",
            EVENT_TYPES.join(" or ")
        )));
    }
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
