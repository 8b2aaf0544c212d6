//! `GET /v1/audit`: the audit log, for admins.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::AppState;
use super::access::{Audit, AuditNote, Routes};
use super::error::ApiError;
use crate::access::Need;
use crate::access::audit::AuditQuery;

/// Most records one request returns.
const MAX_LIMIT: u32 = 10_000;

pub fn router() -> Routes {
    Routes::default().get("/v1/audit", Need::Admin, Audit::Every, audit)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    since: Option<DateTime<Utc>>,
    principal: Option<String>,
    limit: Option<u32>,
}

/// Records oldest first, from `since`, of one `principal`, at most `limit`
/// (1,000 by default, 10,000 at most).
async fn audit(State(state): State<AppState>, Query(filter): Query<Filter>) -> Result<Response, ApiError> {
    let query = AuditQuery {
        since: filter.since,
        principal: filter.principal,
        limit: filter.limit.unwrap_or(1_000).min(MAX_LIMIT),
    };
    let records = state.access.audit.read(&query).await?;
    Ok(AuditNote::rows(records.len()).on(Json(records).into_response()))
}
