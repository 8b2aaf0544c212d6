//! The web dashboard at `/`: one page and its script, compiled into the
//! binary so it works offline (no CDN, no build step).

use axum::http::header;
use axum::response::{Html, IntoResponse};

use super::access::{Audit, Routes};
use crate::access::Need;

/// The page and script hold no data: they sign in and fetch it.
pub fn router() -> Routes {
    Routes::default().get("/", Need::Open, Audit::Refusals, page).get(
        "/dashboard.js",
        Need::Open,
        Audit::Refusals,
        script,
    )
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
