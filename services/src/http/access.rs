//! Access control for the HTTP API, in one place. A route can only be added
//! through [`Routes`], which makes it declare the [`Need`] it has of its
//! caller and whether its every answer is audited; [`authorize`] runs in
//! front of each handler: it resolves the bearer token to a principal
//! (401 without a valid one), checks the need (403, or 404 where a
//! programme's existence would leak), hands the principal to the handler,
//! and writes the audit record — failing the request if it cannot.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{RequestExt, Router};

use super::AppState;
use super::error::ApiError;
use crate::access::audit::AuditRecord;
use crate::access::{Access, Need, Principal, Role};

/// Which answers of a route are written to the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audit {
    /// Every answer: the route reads personal data or writes.
    Every,
    /// Only refusals (aggregates, operational data).
    Refusals,
}

/// A route as declared: what it needs and what is audited.
#[derive(Clone, Debug)]
pub struct Declared {
    pub method: Method,
    pub path: &'static str,
    pub need: Need,
    pub audit: Audit,
}

/// What a handler adds to its route's audit record.
#[derive(Clone, Debug, Default)]
pub struct AuditNote {
    pub rows: Option<i64>,
    pub detail: Option<String>,
    /// The programmes the answer drew on, when not the path's.
    pub programs: Option<String>,
}

impl AuditNote {
    pub fn rows(rows: usize) -> Self {
        Self {
            rows: i64::try_from(rows).ok(),
            ..Self::default()
        }
    }

    /// `response` carrying this note to the audit record.
    pub fn on(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// A router whose every route declares its need.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    declared: Vec<Declared>,
}

impl Routes {
    pub fn get<H, T>(self, path: &'static str, need: Need, audit: Audit, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::GET, path, need, audit, get(handler))
    }

    pub fn post<H, T>(self, path: &'static str, need: Need, audit: Audit, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::POST, path, need, audit, post(handler))
    }

    fn add(
        mut self,
        method: Method,
        path: &'static str,
        need: Need,
        audit: Audit,
        route: MethodRouter<AppState>,
    ) -> Self {
        let declared = Declared {
            method,
            path,
            need,
            audit,
        };
        let check = declared.clone();
        let route = route.route_layer(from_fn(move |request: Request, next: Next| {
            authorize(check.clone(), request, next)
        }));
        self.router = self.router.route(path, route);
        self.declared.push(declared);
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.declared.extend(other.declared);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Declared>) {
        (self.router, self.declared)
    }
}

fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn authorize(route: Declared, mut request: Request, next: Next) -> Response {
    if route.need == Need::Open {
        return next.run(request).await;
    }
    let Some(access) = request.extensions().get::<Access>().cloned() else {
        return ApiError::Internal("no access control configured".into()).into_response();
    };
    let action = format!(
        "{} {}",
        route.method,
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or(route.path, |m| m.as_str())
    );
    let target = request.uri().path_and_query().map_or("", |p| p.as_str()).to_string();
    let principal = match bearer(&request) {
        None => return ApiError::Unauthorized("sign in: send `Authorization: Bearer <token>`".into()).into_response(),
        Some(token) => match access.authenticate(token).await {
            Ok(Some(principal)) => principal,
            Ok(None) => {
                let mut record = AuditRecord::new(None, "sign_in_failed", &target, "401");
                record.detail = Some(format!("{action}: token unknown, revoked or expired, or JWT invalid"));
                return match access.audit.append(&record).await {
                    Ok(()) => ApiError::Unauthorized("the token is unknown, revoked or expired".into()).into_response(),
                    Err(e) => ApiError::Access(e).into_response(),
                };
            }
            Err(e) => return ApiError::Access(e).into_response(),
        },
    };
    let program = match request.extract_parts::<RawPathParams>().await {
        Ok(params) => params.iter().find(|(k, _)| *k == "program").map(|(_, v)| v.to_string()),
        Err(_) => None,
    };
    let refusal = (!route.need.allows(&principal, program.as_deref())).then(|| match (&route.need, &program) {
        // Not a programme of theirs: as if it did not exist.
        (Need::InProgram(_), Some(p)) if !principal.holds(&Role::ALL, p) => {
            ApiError::NotFound(format!("no programme named {p:?}"))
        }
        _ => ApiError::Forbidden(format!("{} may not {action}", principal.name)),
    });
    let response = match refusal {
        Some(refusal) => refusal.into_response(),
        None => {
            request.extensions_mut().insert(principal.clone());
            next.run(request).await
        }
    };
    let status = response.status();
    let refused = status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND;
    // A 304 tells a client that what it holds is current: nothing is read.
    if status == StatusCode::NOT_MODIFIED || (route.audit == Audit::Refusals && !refused) {
        return response;
    }
    let note = response.extensions().get::<AuditNote>().cloned().unwrap_or_default();
    let mut record = AuditRecord::new(Some(&principal), &action, &target, status.as_str());
    record.programs = note.programs.or(program).or_else(|| scope(&principal, route.need));
    record.detail = note.detail;
    record.rows = note.rows;
    match access.audit.append(&record).await {
        Ok(()) => response,
        Err(e) => ApiError::Access(e).into_response(),
    }
}

/// The programmes a request without one in its path was narrowed to.
fn scope(principal: &Principal, need: Need) -> Option<String> {
    let Need::InSomeProgram(roles) = need else {
        return None;
    };
    Some(principal.programs_label(roles))
}

/// The principal [`authorize`] resolved, for handlers that narrow their
/// answer to it.
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::Internal(format!("{} asks for a caller but is declared open", parts.uri.path())))
    }
}
