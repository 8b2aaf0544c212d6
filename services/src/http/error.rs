//! One error type for the HTTP API, mapped to status codes. Internal errors
//! are logged and never shown to clients.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utfall_events::wire::BatchError;
use utfall_events::{AppendError, LogError};
use utfall_projections::ProjectionError;
use utfall_queries::QueryError;

use crate::access::AccessError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    ReadModels(#[from] ProjectionError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Internal(String),
}

/// Seconds a client should wait before retrying when the log is unreachable.
const RETRY_AFTER_SECONDS: &str = "5";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unavailable = |e: &LogError| {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "unavailable", "message": e.to_string()})),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            response
        };
        match &self {
            ApiError::Batch(BatchError::Invalid { problems, total }) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "invalid", "message": self.to_string(), "total": total, "invalid": problems})),
            )
                .into_response(),
            ApiError::Batch(e @ (BatchError::Empty | BatchError::Malformed(_))) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "invalid", "message": e.to_string(), "total": 1, "invalid": []})),
            )
                .into_response(),
            ApiError::Append(AppendError::Invalid(problems)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "invalid", "message": self.to_string(), "total": problems.len(), "invalid": problems})),
            )
                .into_response(),
            ApiError::Append(AppendError::Conflict(conflicts)) => (
                StatusCode::CONFLICT,
                Json(json!({"error": "conflict", "message": self.to_string(), "conflicts": conflicts})),
            )
                .into_response(),
            ApiError::Append(AppendError::Log(LogError::Unreadable { position, .. }))
            | ApiError::Log(LogError::Unreadable { position, .. }) => {
                tracing::error!(position, "a request met an unreadable event");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({
                        "error": "unreadable_event",
                        "message": format!("the log holds an unreadable event (position {position}) this request needs; an operator must quarantine it"),
                    })),
                )
                    .into_response()
            }
            ApiError::Append(AppendError::Log(e @ LogError::Unavailable(_))) | ApiError::Log(e @ LogError::Unavailable(_)) => {
                tracing::warn!(error = %e, "event log unavailable");
                unavailable(e)
            }
            ApiError::BadRequest(message) | ApiError::Query(QueryError::Sql(message)) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_query", "message": message})),
            )
                .into_response(),
            ApiError::Query(e @ QueryError::TooLarge(_)) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "too_large", "message": e.to_string()})),
            )
                .into_response(),
            ApiError::Query(e @ QueryError::ReadOnly(_)) => {
                (StatusCode::FORBIDDEN, Json(json!({"error": "read_only", "message": e.to_string()}))).into_response()
            }
            ApiError::Query(e @ (QueryError::Timeout(_) | QueryError::LakeChanged)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "timeout", "message": e.to_string()})),
            )
                .into_response(),
            ApiError::Query(e @ QueryError::UnknownProgram(_)) => {
                (StatusCode::NOT_FOUND, Json(json!({"error": "not_found", "message": e.to_string()}))).into_response()
            }
            ApiError::Unauthorized(message) => {
                let mut response =
                    (StatusCode::UNAUTHORIZED, Json(json!({"error": "unauthorized", "message": message}))).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"utfall\""));
                response
            }
            ApiError::Forbidden(message) => {
                (StatusCode::FORBIDDEN, Json(json!({"error": "forbidden", "message": message}))).into_response()
            }
            ApiError::Access(AccessError::Database(e)) => {
                // Without the access database nothing can be authorised or
                // audited: refuse, and let the client retry.
                tracing::error!(error = %e, "access database unavailable");
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "unavailable", "message": "access control and audit unavailable"})),
                )
                    .into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
                response
            }
            ApiError::Busy(message) => {
                let mut response =
                    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "busy", "message": message}))).into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            ApiError::UnsupportedMediaType(message) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Json(json!({"error": "unsupported_media_type", "message": message})),
            )
                .into_response(),
            ApiError::NotFound(message) => {
                (StatusCode::NOT_FOUND, Json(json!({"error": "not_found", "message": message}))).into_response()
            }
            ApiError::ReadModels(ProjectionError::Database(e)) => {
                tracing::warn!(error = %e, "read models unavailable");
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "unavailable", "message": "read models unavailable"})),
                )
                    .into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
                response
            }
            ApiError::Append(AppendError::Log(_))
            | ApiError::Log(_)
            | ApiError::ReadModels(_)
            | ApiError::Query(QueryError::Engine(_) | QueryError::Lake(_))
            | ApiError::Access(_)
            | ApiError::Internal(_) => {
                tracing::error!(error = %self, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "internal", "message": "internal error"})))
                    .into_response()
            }
        }
    }
}
