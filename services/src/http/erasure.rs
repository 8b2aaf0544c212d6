//! `POST /v1/programs/{program}/participants/{participant}/erase`: an
//! admin erases a participant (see [`crate::erasure`]). The answer waits,
//! briefly, for the projectors to have removed them, and says whether
//! they have. The erasure is audited with its reason; nothing of the
//! person's data is in the request, the answer or the audit record.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utfall_events::names::Code;
use utfall_events::{ProgramName, Pseudonym};

use super::AppState;
use super::access::{Audit, AuditNote, Routes};
use super::error::ApiError;
use crate::access::Need;
use crate::erasure::{EraseError, erase};

/// How long the answer waits for the projectors to pass the erasure.
const REMOVAL_WAIT: Duration = Duration::from_secs(10);

pub fn router() -> Routes {
    Routes::default().post(
        "/v1/programs/{program}/participants/{participant}/erase",
        Need::Admin,
        Audit::Every,
        erase_participant,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseRequest {
    /// A code, e.g. `request` or `retention`; never free text.
    reason: Code,
}

impl From<EraseError> for ApiError {
    fn from(e: EraseError) -> Self {
        match e {
            e @ EraseError::Unknown { .. } => ApiError::NotFound(e.to_string()),
            EraseError::Append(e) => ApiError::Append(e),
            EraseError::Log(e) => ApiError::Log(e),
        }
    }
}

async fn erase_participant(
    State(state): State<AppState>,
    Path((program, participant)): Path<(String, String)>,
    Json(request): Json<EraseRequest>,
) -> Result<Response, ApiError> {
    let program = ProgramName::new(program).map_err(ApiError::BadRequest)?;
    let participant = Pseudonym::new(participant).map_err(ApiError::BadRequest)?;
    let reason = request.reason.as_str().to_string();
    let erasure = erase(state.log.as_ref(), program, participant, request.reason).await?;
    let removed = removed_by(&state, erasure.position).await;
    let note = AuditNote {
        detail: Some(format!("reason: {reason}")),
        ..AuditNote::default()
    };
    let mut answer = serde_json::to_value(&erasure).map_err(|e| ApiError::Internal(e.to_string()))?;
    answer["removed_from_read_models_and_lake"] = json!(removed);
    Ok(note.on(Json(answer).into_response()))
}

/// Whether both projectors pass `position` within [`REMOVAL_WAIT`].
async fn removed_by(state: &AppState, position: u64) -> bool {
    let deadline = tokio::time::Instant::now() + REMOVAL_WAIT;
    loop {
        if state.projector.position() >= position && state.lake_projector.position() >= position {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
