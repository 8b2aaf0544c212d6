//! `POST /v1/events`: the way events get in over HTTP.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use utfall_events::AppendError;
use utfall_events::wire::parse_batch;

use super::AppState;
use super::access::{Audit, AuditNote, Caller, Routes};
use super::error::ApiError;
use crate::access::{Need, Role};
use crate::indicators;

/// Registrars record events for their programmes; admins for any.
const RECORDS: &[Role] = &[Role::Registrar];

pub fn router() -> Routes {
    Routes::default().post("/v1/events", Need::InSomeProgram(RECORDS), Audit::Every, append)
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
/// 422 listing every invalid event; 403 (nothing written) when an event is
/// for a programme the caller may not record for.
async fn append(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
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
    let mut programs: Vec<&str> = events.iter().map(|e| e.program.as_str()).collect();
    programs.sort_unstable();
    programs.dedup();
    if let Some((index, event)) = events
        .iter()
        .enumerate()
        .find(|(_, e)| !caller.holds(RECORDS, e.program.as_str()))
    {
        return Err(ApiError::Forbidden(format!(
            "event {} ({}): {} may not record events for programme {:?}; nothing was written",
            index + 1,
            event.event_id,
            caller.name,
            event.program.as_str()
        )));
    }
    let note = AuditNote {
        programs: Some(programs.join(",")),
        ..AuditNote::rows(events.len())
    };
    let _room = state.pressure.ingest()?;
    let problems = indicators::check(&state.analytics, &events, 0).await?;
    if !problems.is_empty() {
        return Err(AppendError::Invalid(problems).into());
    }
    let appended = state.log.append(events).await?;
    let duplicates = appended.iter().filter(|a| a.duplicate).count();
    let response = (
        StatusCode::CREATED,
        Json(json!({
            "stored": appended.len() - duplicates,
            "duplicates": duplicates,
            "events": appended,
        })),
    );
    Ok(note.on(response.into_response()))
}
