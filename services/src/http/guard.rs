//! What every request must pass before a handler sees it: a `Host` this
//! server answers to (a browser tricked by DNS rebinding sends the
//! attacker's name), and, for anything but reading, no other site as its
//! origin (a page elsewhere must not record events in a user's name).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The host names (without port) the API answers to.
#[derive(Clone, Debug)]
pub struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    /// `localhost`, the loopback addresses, the bound address and `names`.
    pub fn new(bound: std::net::IpAddr, names: &[String]) -> Self {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        if !bound.is_unspecified() {
            hosts.push(bound.to_string());
        }
        hosts.extend(
            names
                .iter()
                .map(|n| n.trim().to_ascii_lowercase())
                .filter(|n| !n.is_empty()),
        );
        Self(Arc::new(hosts))
    }

    fn allows(&self, host: &str) -> bool {
        self.0.iter().any(|h| h == host)
    }
}

/// The host name of a `Host` header or an origin's authority: lower case,
/// without port or IPv6 brackets.
fn host_name(authority: &str) -> String {
    let authority = authority.trim().to_ascii_lowercase();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    authority.split(':').next().unwrap_or_default().to_string()
}

fn refuse(status: StatusCode, error: &str, message: &str) -> Response {
    (status, Json(json!({"error": error, "message": message}))).into_response()
}

/// Why a request may not change anything, if it comes from another site.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
    {
        return Some("the request comes from another site");
    }
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("null");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let authority = origin.split_once("://").map(|(_, a)| a);
    match authority {
        Some(a) if a.eq_ignore_ascii_case(host) => None,
        _ => Some("the request's Origin is not this server"),
    }
}

pub async fn guard(State(allowed): State<AllowedHosts>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Some(host) = headers.get(header::HOST) {
        let known = host.to_str().is_ok_and(|h| allowed.allows(&host_name(h)));
        if !known {
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "unknown_host",
                "this server does not answer to that host name (see --allowed-hosts)",
            );
        }
    }
    let reading = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !reading && let Some(why) = cross_site(headers) {
        return refuse(StatusCode::FORBIDDEN, "cross_origin", why);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_port_and_brackets() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("utfall.example.org"), "utfall.example.org");
        let allowed = AllowedHosts::new("0.0.0.0".parse().expect("ip"), &["Utfall.Nav.no".into()]);
        assert!(allowed.allows("utfall.nav.no") && allowed.allows("127.0.0.1"));
        assert!(!allowed.allows("0.0.0.0") && !allowed.allows("evil.example"));
    }
}
