//! The web dashboard at `/`: one page and its script, compiled into the
//! binary so it works offline (no CDN, no build step), and its texts in
//! the user's language.

use axum::Json;
use axum::extract::Query;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};
use utfall_queries::language::Language;

use super::access::{Audit, Routes};
use super::error::ApiError;
use crate::access::Need;

/// The page, script and texts hold no data: the page signs in and fetches it.
pub fn router() -> Routes {
    Routes::default()
        .get("/", Need::Open, Audit::Refusals, page)
        .get("/dashboard.js", Need::Open, Audit::Refusals, script)
        .get("/v1/labels", Need::Open, Audit::Refusals, labels)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsQuery {
    lang: Option<String>,
}

/// The dashboard's texts and the labels of metrics, statuses, outcome
/// groups and verdicts in the language asked for: `?lang=`, else the
/// browser's `Accept-Language`, else English.
async fn labels(Query(query): Query<LabelsQuery>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let language = match &query.lang {
        Some(lang) => lang.parse().map_err(ApiError::BadRequest)?,
        None => headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Language::negotiate)
            .unwrap_or_default(),
    };
    Ok(Json(json!({"language": language.code(), "labels": language.catalog()})))
}

async fn page() -> Html<&'static str> {
    Html(include_str!("dashboard/index.html"))
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("dashboard/dashboard.js"),
    )
}
