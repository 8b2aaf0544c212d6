//! Outcomes and SQL for evaluators and dashboards, over the lake as far as
//! its projector has come (each answer says its `log_position`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utfall_queries::engine::Answer;
use utfall_queries::horizon::Months;
use utfall_queries::{Anchor, Evaluation, Horizon, QueryError, Sections, Snapshot, render};

use super::AppState;
use super::access::{Audit, AuditNote, Caller, Routes};
use super::error::ApiError;
use super::programs::{no_programme, versioned};
use crate::access::{Need, Role};

/// Outcome reports are aggregates: evaluators may read them too, beside
/// those who see the dashboard.
const SEES_OUTCOMES: &[Role] = &[Role::Viewer, Role::Registrar, Role::Evaluator];

pub fn router() -> Routes {
    Routes::default()
        .get(
            "/v1/programs/{program}/outcomes",
            Need::InProgram(SEES_OUTCOMES),
            Audit::Refusals,
            outcomes,
        )
        .post("/v1/sql", Need::InSomeProgram(&[Role::Evaluator]), Audit::Every, sql)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotQuery {
    as_of: Option<NaiveDate>,
    known_at: Option<DateTime<Utc>>,
}

impl SnapshotQuery {
    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.as_of, self.known_at)
    }
}

/// An outcome report's query: the snapshot, a horizon
/// (`?horizon=6m&from=exit&censor=true`), cohorts (`?cohorts=year`) and
/// the quarterly employment rate (`?quarterly=true`), another programme
/// to compare with (`?compare_with=sja-meg`, which the caller must see too)
/// and each target's course and verdict (`?on_track=true`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomesQuery {
    as_of: Option<NaiveDate>,
    known_at: Option<DateTime<Utc>>,
    horizon: Option<String>,
    from: Option<String>,
    censor: Option<bool>,
    cohorts: Option<String>,
    quarterly: Option<bool>,
    compare_with: Option<String>,
    on_track: Option<bool>,
}

impl OutcomesQuery {
    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.as_of, self.known_at)
    }

    fn horizon(&self) -> Result<Option<Horizon>, ApiError> {
        let Some(months) = &self.horizon else {
            return match (&self.from, self.censor) {
                (None, None) => Ok(None),
                _ => Err(ApiError::BadRequest("`from` and `censor` need a `horizon`".into())),
            };
        };
        let months: Months = months.parse().map_err(ApiError::BadRequest)?;
        let from = match &self.from {
            Some(from) => from.parse().map_err(ApiError::BadRequest)?,
            None => Anchor::Exit,
        };
        Ok(Some(Horizon {
            months: months.0,
            from,
            censor: self.censor.unwrap_or(false),
        }))
    }
}

async fn outcomes(
    State(state): State<AppState>,
    Path(program): Path<String>,
    Caller(caller): Caller,
    Query(query): Query<OutcomesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Another programme's figures only for those who may see them.
    if let Some(other) = &query.compare_with
        && !caller.holds(SEES_OUTCOMES, other)
    {
        return Err(ApiError::Forbidden(format!(
            "comparing needs a viewer, registrar or evaluator role in {other:?} too"
        )));
    }
    let sections = Sections {
        horizon: query.horizon()?,
        cohorts: query.cohorts.as_deref().map(str::parse).transpose().map_err(ApiError::BadRequest)?,
        quarterly: query.quarterly.unwrap_or(false),
        compare_with: query.compare_with.clone(),
        on_track: query.on_track.unwrap_or(false),
    };
    let key = format!("{program}-{:?}-{:?}-{sections:?}", query.as_of, query.known_at);
    versioned(state.lake_projector.position(), &headers, &key, async {
        state
            .analytics
            .outcomes_with(&query.snapshot(), Some(&program), &sections)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| match query.snapshot() {
                Snapshot {
                    as_of: None,
                    known_at: None,
                } => no_programme(&program),
                snapshot => ApiError::NotFound(snapshot.no_programme(&program)),
            })
    })
    .await
}

/// Writes an answer in one of the formats a client can ask for.
type Renderer = fn(&Answer) -> Result<Vec<u8>, QueryError>;

/// A query as JSON: `{"sql": "…", "as_of": "…", "known_at": "…"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    as_of: Option<NaiveDate>,
    known_at: Option<DateTime<Utc>>,
}

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Runs a read-only query. The body is the SQL as text (with `as_of` and
/// `known_at` in the query string) or a JSON [`SqlRequest`]; `Accept`
/// picks JSON (default), CSV (`text/csv`) or an Arrow IPC stream. An
/// evaluator's query runs over their programmes' rows, pseudonymised.
async fn sql(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<SnapshotQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (text, snapshot) = if is_json {
        let request: SqlRequest = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        (request.sql, Snapshot::new(request.as_of, request.known_at))
    } else {
        let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::BadRequest("the SQL is not UTF-8".into()))?;
        (text, query.snapshot())
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (content_type, render): (_, Renderer) = if accept.contains("text/csv") {
        ("text/csv; charset=utf-8", render::csv)
    } else if accept.contains(ARROW_STREAM) {
        (ARROW_STREAM, render::arrow_ipc)
    } else {
        ("application/json", render::json)
    };
    // The answer is bounded and rendered within the time limit; a client
    // that hangs up drops this future, which stops the query.
    let analytics = match caller.programs(&[Role::Evaluator]) {
        None => state.analytics.clone(),
        Some(programmes) => state
            .analytics
            .for_evaluator(Evaluation::new(programmes, &state.pseudonym_key)),
    };
    let _room = state.pressure.query()?;
    let (rows, bytes) = analytics
        .sql_as(&snapshot, &text, |answer| {
            let rows = answer.batches.iter().map(|b| b.num_rows()).sum::<usize>();
            Ok((rows, render(&answer)?))
        })
        .await?;
    let note = AuditNote {
        detail: Some(text),
        ..AuditNote::rows(rows)
    };
    Ok(note.on(([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], bytes).into_response()))
}
