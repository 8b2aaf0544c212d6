//! SQL over the wire is read-only, and a session may change only its own
//! harmless settings: the engine's configuration is shared by every
//! connection and is never changed by one.

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};

use super::error;

/// Settings a session may change: they live in the session's own metadata
/// (datafusion-postgres's `SET` hook keeps them there), never in the engine
/// every session shares.
const SESSION_SETTINGS: [&str; 9] = [
    "statement_timeout",
    super::as_of::AS_OF,
    super::as_of::KNOWN_AT,
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
];

/// Refuses every statement but queries and the session chatter clients
/// send (SET of a session setting, SHOW, transactions, cursors).
pub(super) struct ReadOnly;

fn refused(statement: &Statement) -> Option<PgWireError> {
    use Statement::*;
    if let Set(set) = statement {
        return refused_setting(set);
    }
    let allowed = matches!(
        statement,
        Query(_)
            | Explain { analyze: false, .. }
            | ShowVariable { .. }
            | ShowVariables { .. }
            | ShowTables { .. }
            | ShowColumns { .. }
            | StartTransaction { .. }
            | Commit { .. }
            | Rollback { .. }
            | Declare { .. }
            | Fetch { .. }
            | Close { .. }
            | Discard { .. }
            | Deallocate { .. }
    );
    let kind = statement.to_string();
    let kind = kind.split_whitespace().next().unwrap_or("this").to_uppercase();
    // read_only_sql_transaction
    (!allowed).then(|| {
        error(
            "25006",
            format!("SQL access is read-only: {kind} statements are not allowed"),
        )
    })
}

fn refused_setting(set: &Set) -> Option<PgWireError> {
    let allowed = match set {
        Set::SingleAssignment {
            scope: None,
            hivevar: false,
            variable,
            ..
        } => SESSION_SETTINGS.contains(&variable.to_string().to_lowercase().as_str()),
        // Answers are in UTC; saying so again is harmless.
        Set::SetTimeZone { value, .. } => {
            matches!(
                value.to_string().trim_matches(['\'', '"']).to_uppercase().as_str(),
                "UTC" | "GMT"
            )
        }
        _ => false,
    };
    (!allowed).then(|| {
        error(
            // cant_change_runtime_param
            "55P02",
            format!(
                "{set}: only these settings may be changed, for this session: {}, and TIME ZONE 'UTC'",
                SESSION_SETTINGS.join(", ")
            ),
        )
    })
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        refused(statement).map(Err)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        refused(statement).map(Err)
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        refused(statement).map(Err)
    }
}
