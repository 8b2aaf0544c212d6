//! The audit log: who read or wrote what, when, and what came of it. One
//! row per read of personal data, per write, per refused or failed sign-in
//! and per grant change, in the access database, which refuses updates and
//! deletes. A record that cannot be written fails the request that made it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AnyPool, Row};

use super::{AccessError, Principal};

/// The longest SQL text kept in a record (the engine takes at most 256 KiB).
const MAX_DETAIL: usize = 16 << 10;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Order of writing; 0 until stored.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// Who, when known (a failed sign-in has no principal).
    pub principal: Option<String>,
    pub roles: Option<String>,
    /// What was asked: `GET /v1/programs/{program}/participants`,
    /// `sql` (Postgres wire), `sign_in_failed`, `grant`, …
    pub action: String,
    /// The path asked for, or the connection's peer for Postgres wire.
    pub target: String,
    /// The programmes the request touched (comma-separated).
    pub programs: Option<String>,
    /// The SQL text, or what else the action needs to be understood.
    pub detail: Option<String>,
    /// Rows (or events) returned or stored.
    pub rows: Option<i64>,
    /// The HTTP status, or `ok` / the SQLSTATE on Postgres wire.
    pub outcome: String,
}

impl AuditRecord {
    pub fn new(principal: Option<&Principal>, action: &str, target: &str, outcome: &str) -> Self {
        Self {
            at: Utc::now(),
            principal: principal.map(|p| p.name.clone()),
            roles: principal.map(Principal::roles),
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
            ..Self::default()
        }
    }
}

/// Which records to read.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub since: Option<DateTime<Utc>>,
    pub principal: Option<String>,
    pub limit: u32,
}

#[derive(Clone)]
pub struct AuditLog {
    pool: AnyPool,
}

impl AuditLog {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    pub async fn append(&self, record: &AuditRecord) -> Result<(), AccessError> {
        let detail = record
            .detail
            .as_deref()
            .map(|d| match d.char_indices().nth(MAX_DETAIL) {
                Some((cut, _)) => format!("{}… (cut at {MAX_DETAIL} characters)", &d[..cut]),
                None => d.to_string(),
            });
        sqlx::query(
            "INSERT INTO access_audit (at, principal, roles, action, target, programs, detail, rows, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(record.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(record.principal.clone())
        .bind(record.roles.clone())
        .bind(record.action.clone())
        .bind(record.target.clone())
        .bind(record.programs.clone())
        .bind(detail)
        .bind(record.rows)
        .bind(record.outcome.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records in the order they were written, oldest first.
    pub async fn read(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, AccessError> {
        // RFC 3339 in UTC with fixed precision sorts as text.
        let since = query
            .since
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        let rows = sqlx::query(
            "SELECT seq, at, principal, roles, action, target, programs, detail, rows, outcome FROM access_audit \
             WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR principal = $2) ORDER BY seq LIMIT $3",
        )
        .bind(since)
        .bind(query.principal.clone())
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let at: String = r.try_get(1)?;
                Ok(AuditRecord {
                    seq: r.try_get(0)?,
                    at: DateTime::parse_from_rfc3339(&at)
                        .map_err(|e| AccessError::Invalid(format!("stored audit time {at:?}: {e}")))?
                        .to_utc(),
                    principal: r.try_get(2)?,
                    roles: r.try_get(3)?,
                    action: r.try_get(4)?,
                    target: r.try_get(5)?,
                    programs: r.try_get(6)?,
                    detail: r.try_get(7)?,
                    rows: r.try_get(8)?,
                    outcome: r.try_get(9)?,
                })
            })
            .collect()
    }
}
