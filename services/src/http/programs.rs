//! What the dashboard polls. Every answer carries an ETag made of the read
//! models' log position (and the day, for day-relative figures), so a poll
//! with `If-None-Match` costs a 304 when nothing changed.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utfall_projections::read_models::dashboard::ParticipantFilter;

use super::AppState;
use super::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/programs", get(programs))
        .route("/v1/programs/{program}/summary", get(summary))
        .route("/v1/programs/{program}/participants", get(participants))
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

/// Answers 304 when the client holds the version of `position` (a
/// projection's log position) and `key`, else the body.
pub(super) async fn versioned<T, F>(
    position: u64,
    headers: &HeaderMap,
    key: &str,
    body: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Future<Output = Result<T, ApiError>>,
{
    let etag = format!("W/\"{position}-{key}\"");
    let current = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    if headers.get(header::IF_NONE_MATCH) == Some(&current) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, current)]).into_response());
    }
    Ok(([(header::ETAG, current)], Json(body.await?)).into_response())
}

async fn programs(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    versioned(state.projector.position(), &headers, "programs", async {
        Ok(state.models.programs().await?)
    })
    .await
}

async fn summary(
    State(state): State<AppState>,
    Path(program): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let today = today();
    versioned(state.projector.position(), &headers, &today, async {
        state
            .models
            .summary(&program, &today)
            .await?
            .ok_or(ApiError::NotFound(format!("no programme {program}")))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct ParticipantQuery {
    status: Option<String>,
    consultant: Option<String>,
    #[serde(default = "first_page")]
    page: u32,
    #[serde(default = "default_per_page")]
    per_page: u32,
}

fn first_page() -> u32 {
    1
}

fn default_per_page() -> u32 {
    50
}

async fn participants(
    State(state): State<AppState>,
    Path(program): Path<String>,
    Query(query): Query<ParticipantQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = format!(
        "{}-{}-{}-{}",
        query.status.as_deref().unwrap_or(""),
        query.consultant.as_deref().unwrap_or(""),
        query.page,
        query.per_page
    );
    let filter = ParticipantFilter {
        status: query.status.clone(),
        consultant: query.consultant.clone(),
    };
    versioned(state.projector.position(), &headers, &key, async {
        state
            .models
            .participants(&program, &filter, query.page, query.per_page)
            .await?
            .ok_or(ApiError::NotFound(format!("no programme {program}")))
    })
    .await
}
