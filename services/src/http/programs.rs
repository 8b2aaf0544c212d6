//! What the dashboard polls. Every answer carries an ETag made of the read
//! models' log position (and the day, for day-relative figures), so a poll
//! with `If-None-Match` costs a 304 when nothing changed.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utfall_projections::read_models::dashboard::ParticipantFilter;

use super::AppState;
use super::access::{Audit, AuditNote, Caller, Routes};
use super::error::ApiError;
use crate::access::{Need, Role};

/// Who sees a programme's aggregates on the dashboard.
const SEES_AGGREGATES: &[Role] = &[Role::Viewer, Role::Registrar];

pub fn router() -> Routes {
    Routes::default()
        .get("/v1/programs", Need::SignedIn, Audit::Refusals, programs)
        .get(
            "/v1/programs/{program}/summary",
            Need::InProgram(SEES_AGGREGATES),
            Audit::Refusals,
            summary,
        )
        .get(
            "/v1/programs/{program}/participants",
            Need::InProgram(&[Role::Registrar]),
            Audit::Every,
            participants,
        )
}

/// The message for a programme that does not exist, or not for the caller.
pub(super) fn no_programme(program: &str) -> ApiError {
    ApiError::NotFound(format!("no programme named {program:?}"))
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

/// The ETag of what the read models (or the lake) held at `position`, for
/// the answer named by `key`.
fn etag(position: u64, key: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!("W/\"{position}-{key}\"")).map_err(|e| ApiError::Internal(e.to_string()))
}

fn not_modified(headers: &HeaderMap, current: HeaderValue) -> Option<Response> {
    (headers.get(header::IF_NONE_MATCH) == Some(&current))
        .then(|| (StatusCode::NOT_MODIFIED, [(header::ETAG, current)]).into_response())
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
    let current = etag(position, key)?;
    if let Some(answer) = not_modified(headers, current.clone()) {
        return Ok(answer);
    }
    Ok(([(header::ETAG, current)], Json(body.await?)).into_response())
}

/// The programmes the caller holds any role in.
async fn programs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let theirs = caller.programs(&crate::access::Role::ALL);
    let key = format!("programs-{}", caller.name);
    versioned(state.projector.position(), &headers, &key, async {
        let mut listed = state.models.programs().await?;
        if let Some(theirs) = theirs {
            listed.retain(|p| theirs.iter().any(|t| t.as_str() == p.program));
        }
        Ok(listed)
    })
    .await
}

/// A programme's summary, from the ones kept while the read models stand
/// still (see [`super::summaries`]).
async fn summary(
    State(state): State<AppState>,
    Path(program): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let today = today();
    let position = state.projector.position_of(&program);
    if let Some(answer) = not_modified(&headers, etag(position, &today)?) {
        return Ok(answer);
    }
    let computed = state
        .summaries
        .get(&state.models, &program, &today, position)
        .await?
        .ok_or_else(|| no_programme(&program))?;
    let headers = [
        (header::ETAG, etag(computed.position, &today)?),
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
    ];
    Ok((headers, computed.json).into_response())
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
    let page = state
        .models
        .participants(&program, &filter, query.page, query.per_page)
        .await?
        .ok_or_else(|| no_programme(&program))?;
    let note = AuditNote::rows(page.participants.len());
    Ok(note.on(versioned(state.projector.position_of(&program), &headers, &key, async { Ok(page) }).await?))
}
