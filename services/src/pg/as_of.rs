//! `SET utfall.as_of = '2022-12-31'` and `SET utfall.known_at =
//! '2023-01-15T12:00:00Z'`: a Postgres-wire session asks the catalog as of
//! a date and as known at a time, as `as_of`/`known_at` do over HTTP and on
//! the command line. The values live in the session's own metadata; each
//! statement runs in a catalog for that snapshot (see `sessions`).
//! `SET … = DEFAULT` (or `''`) goes back to everything there is;
//! `SHOW utfall.as_of` tells what is set.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use datafusion_postgres::pgwire::error::PgWireResult;
use utfall_queries::Snapshot;

use super::error;

pub(super) const AS_OF: &str = "utfall.as_of";
pub(super) const KNOWN_AT: &str = "utfall.known_at";

/// The snapshot `client`'s session asks for.
pub(super) fn snapshot(client: &(dyn ClientInfo + Send + Sync)) -> PgWireResult<Snapshot> {
    let value = |name: &str| client.metadata().get(name).filter(|v| !v.is_empty()).cloned();
    let as_of = value(AS_OF).map(|v| parse_as_of(&v)).transpose()?;
    let known_at = value(KNOWN_AT).map(|v| parse_known_at(&v)).transpose()?;
    Ok(Snapshot::new(as_of, known_at))
}

fn parse_as_of(value: &str) -> PgWireResult<NaiveDate> {
    // invalid_datetime_format
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        error(
            "22007",
            format!("{AS_OF} takes a date, e.g. '2022-12-31', not {value:?}"),
        )
    })
}

fn parse_known_at(value: &str) -> PgWireResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value).map(|t| t.to_utc()).map_err(|_| {
        error(
            "22007",
            format!("{KNOWN_AT} takes an RFC 3339 time, e.g. '2023-01-15T12:00:00Z', not {value:?}"),
        )
    })
}

pub(super) struct AsOf;

/// `SET utfall.…` of this session: the value checked, then kept.
fn set(set: &Set, client: &mut dyn HookClient) -> Option<PgWireResult<Response>> {
    let Set::SingleAssignment {
        scope: None,
        hivevar: false,
        variable,
        values,
    } = set
    else {
        return None;
    };
    let name = variable.to_string().to_lowercase();
    if name != AS_OF && name != KNOWN_AT {
        return None;
    }
    let value = values.first().map(|v| v.to_string()).unwrap_or_default();
    let value = value.trim_matches(['\'', '"']);
    let value = if value.eq_ignore_ascii_case("default") {
        ""
    } else {
        value
    };
    let checked = match (name.as_str(), value) {
        (_, "") => Ok(()),
        (AS_OF, v) => parse_as_of(v).map(|_| ()),
        (_, v) => parse_known_at(v).map(|_| ()),
    };
    Some(checked.map(|()| {
        client.metadata_mut().insert(name, value.to_string());
        Response::Execution(Tag::new("SET"))
    }))
}

/// `SHOW utfall.…`.
fn show(variable: &str, client: &dyn HookClient) -> Option<PgWireResult<Response>> {
    let name = variable.to_lowercase();
    if name != AS_OF && name != KNOWN_AT {
        return None;
    }
    let value = client.metadata().get(&name).cloned().unwrap_or_default();
    let fields = Arc::new(vec![FieldInfo::new(name, None, None, Type::VARCHAR, FieldFormat::Text)]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    let row = encoder.encode_field(&Some(value)).map(|()| encoder.take_row());
    Some(Ok(Response::Query(QueryResponse::new(
        fields,
        Box::pin(futures::stream::once(async move { row })),
    ))))
}

fn respond(statement: &Statement, client: &mut dyn HookClient) -> Option<PgWireResult<Response>> {
    match statement {
        Statement::Set(s) => set(s, client),
        Statement::ShowVariable { variable } => {
            let name: Vec<String> = variable.iter().map(|i| i.value.clone()).collect();
            show(&name.join("."), client)
        }
        _ => None,
    }
}

#[async_trait]
impl QueryHook for AsOf {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        respond(statement, client)
    }

    // Parsing SET and SHOW is datafusion-postgres's own hook's.
    async fn handle_extended_parse_query(
        &self,
        _statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        None
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        respond(statement, client)
    }
}
