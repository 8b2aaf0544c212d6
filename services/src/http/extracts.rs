//! Funder extracts made by `utfall extract` or the scheduler, listed and
//! downloaded from the extract folders this server was given.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use super::error::ApiError;
use crate::extract::folders::{Listed, find, list};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/extracts", get(extracts))
        .route("/v1/extracts/{id}/{file}", get(download))
}

/// Every extract of every folder; an id names one programme's period and
/// revision (the first folder holding it wins).
async fn all(state: &AppState) -> Result<Vec<Listed>, ApiError> {
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
}

async fn extracts(State(state): State<AppState>) -> Result<Json<Vec<Listed>>, ApiError> {
    Ok(Json(all(&state).await?))
}

async fn download(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let folders = state.extracts.clone();
    let wanted = id.clone();
    let listed = tokio::task::spawn_blocking(move || folders.iter().find_map(|out| find(out, &wanted)))
        .await
        .map_err(|e| ApiError::Internal(format!("finding extract {id}: {e}")))?
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
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}-{file}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
