//! The Postgres wire protocol endpoint (`utfall serve --pg ADDR`) for SQL
//! clients: psql, R's RPostgres, Python's psycopg, BI tools. It serves the
//! live catalog (everything in the lake) through datafusion-postgres; any
//! user and database name is accepted for now. Only reading is allowed.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::{QueryHook, ServerOptions, serve_with_hooks};
use utfall_queries::{Analytics, Snapshot};

/// Serves SQL over the Postgres protocol until the process ends.
pub async fn serve(analytics: Analytics, address: SocketAddr) -> anyhow::Result<()> {
    let ctx = analytics.context(&Snapshot::default()).await?;
    setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider)
        .map_err(|e| anyhow::anyhow!("cannot set up pg_catalog: {e}"))?;
    let options = ServerOptions::new()
        .with_host(address.ip().to_string())
        .with_port(address.port());
    let hooks: Vec<Arc<dyn QueryHook>> = vec![
        Arc::new(ReadOnly),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    serve_with_hooks(Arc::new(ctx), &options, hooks).await?;
    Ok(())
}

/// Refuses every statement but queries and the session chatter clients
/// send (SET, SHOW, transactions, cursors).
struct ReadOnly;

fn refused(statement: &Statement) -> Option<PgWireError> {
    use Statement::*;
    let allowed = matches!(
        statement,
        Query(_)
            | Explain { analyze: false, .. }
            | Set(_)
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
    (!allowed).then(|| {
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            // read_only_sql_transaction
            "25006".into(),
            format!("SQL access is read-only: {kind} statements are not allowed"),
        )))
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
