//! Funder extracts made by `utfall extract` or the scheduler, listed and
//! downloaded from the extract folders this server was given.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::access::{Audit, AuditNote, Caller, Routes};
use super::error::ApiError;
use crate::access::{Need, Principal, Role};
use crate::extract::folders::{Listed, find, list};

const RECEIVES: &[Role] = &[Role::Funder];

pub fn router() -> Routes {
    Routes::default()
        .get("/v1/extracts", Need::InSomeProgram(RECEIVES), Audit::Refusals, extracts)
        .get(
            "/v1/extracts/{id}/{file}",
            Need::InSomeProgram(RECEIVES),
            Audit::Every,
            download,
        )
}

/// Every extract of every folder the caller may receive; an id names one
/// programme's period and revision (the first folder holding it wins).
async fn all(state: &AppState, caller: &Principal) -> Result<Vec<Listed>, ApiError> {
    let folders = state.extracts.clone();
    tokio::task::spawn_blocking(move || {
        let mut found: Vec<Listed> = Vec::new();
        for listed in folders.iter().flat_map(|out| list(out)) {
            if found.iter().all(|f| f.id != listed.id) {
                found.push(listed);
            }
        }
        found
    })
    .await
    .map_err(|e| ApiError::Internal(format!("listing extracts: {e}")))
    .map(|mut found| {
        found.retain(|l| caller.holds(RECEIVES, &l.program));
        found
    })
}

async fn extracts(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Vec<Listed>>, ApiError> {
    Ok(Json(all(&state, &caller).await?))
}

/// An extract of another programme is answered as one that does not exist.
async fn download(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let folders = state.extracts.clone();
    let wanted = id.clone();
    let listed = tokio::task::spawn_blocking(move || folders.iter().find_map(|out| find(out, &wanted)))
        .await
        .map_err(|e| ApiError::Internal(format!("finding extract {id}: {e}")))?
        .filter(|l| caller.holds(RECEIVES, &l.program))
        .ok_or_else(|| ApiError::NotFound(format!("no extract {id:?}")))?;
    // Only the files the manifest names: nothing else under the folder is served.
    if !listed.files.contains(&file) {
        return Err(ApiError::NotFound(format!("extract {id} has no file {file:?}")));
    }
    let bytes = tokio::fs::read(listed.folder.join(&file))
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read {file} of extract {id}: {e}")))?;
    let content_type = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("csv") => "text/csv; charset=utf-8",
        Some("parquet") => "application/vnd.apache.parquet",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let note = AuditNote {
        programs: Some(listed.program.clone()),
        detail: Some(format!("{id}/{file}, {} bytes", bytes.len())),
        ..AuditNote::default()
    };
    Ok(note.on((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}-{file}\""),
            ),
        ],
        bytes,
    )
        .into_response()))
}
