//! The web dashboard at `/`: one page and its script, compiled into the
//! binary so it works offline (no CDN, no build step).

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(page)).route("/dashboard.js", get(script))
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
