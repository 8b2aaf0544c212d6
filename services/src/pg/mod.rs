//! The Postgres wire protocol endpoint (`utfall serve --pg ADDR`) for SQL
//! clients: psql, R's RPostgres, Python's psycopg, BI tools, through
//! datafusion-postgres. Any user and database name is accepted for now.
//!
//! What this module adds around it, and why:
//! * every SQL text is checked for nesting depth before anything walks it
//!   (a deep query would exhaust the stack and abort the process);
//! * every statement runs under the server's query timeout (or the
//!   session's shorter `statement_timeout`), stops on the protocol's cancel
//!   request, and streams at most `--max-result-rows` rows and
//!   `--max-result-mb` of data; a client that hangs up drops the stream;
//! * only reading is allowed, and `SET` changes only harmless settings of
//!   the session itself: the engine's configuration is shared by every
//!   connection and is never changed by one;
//! * the lake's file list is read afresh for every query (no listing cache),
//!   so rows posted after the server started are seen, and merged parts
//!   are not looked for.

mod bounded;
mod cancel;
mod read_only;

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::StartupHandler;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::{DfSessionService, Parser, QueryHook, ServerOptions, serve_with_handlers};
use futures::Sink;
use tokio::time::Instant;
use utfall_queries::{Analytics, Limits, Snapshot, nesting};

use bounded::bound;
use cancel::{Cancel, Cancelled, Cancels};
use read_only::ReadOnly;

/// Serves SQL over the Postgres protocol until the process ends.
pub async fn serve(analytics: Analytics, address: SocketAddr, max_connections: usize) -> anyhow::Result<()> {
    let ctx = analytics.context(&Snapshot::default()).await?;
    setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider)
        .map_err(|e| anyhow::anyhow!("cannot set up pg_catalog: {e}"))?;
    let options = ServerOptions::new()
        .with_host(address.ip().to_string())
        .with_port(address.port())
        .with_max_connections(max_connections);
    let hooks: Vec<Arc<dyn QueryHook>> = vec![
        Arc::new(ReadOnly),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    let session = Arc::new(DfSessionService::new_with_hooks(Arc::new(ctx), hooks));
    let connections = Arc::new(ConnectionManager::new());
    let cancels = Arc::new(Cancels::default());
    let handlers = Arc::new(Handlers {
        guarded: Arc::new(Guarded {
            parser: Arc::new(Checked(session.query_parser())),
            session,
            limits: analytics.limits(),
            cancels: cancels.clone(),
        }),
        startup: Arc::new(Startup(connections.clone())),
        cancel: Arc::new(Cancel {
            cancels,
            pgwire: DefaultCancelHandler::new(connections),
        }),
    });
    serve_with_handlers(handlers, &options).await?;
    Ok(())
}

struct Handlers {
    guarded: Arc<Guarded>,
    startup: Arc<Startup>,
    cancel: Arc<Cancel>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.guarded.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.guarded.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

/// Registers each connection, so that a cancel request can find its query.
struct Startup(Arc<ConnectionManager>);

#[async_trait]
impl NoopStartupHandler for Startup {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.0.clone())
    }
}

/// datafusion-postgres's handlers, held to the limits.
struct Guarded {
    session: Arc<DfSessionService>,
    parser: Arc<Checked>,
    limits: Limits,
    cancels: Arc<Cancels>,
}

impl Guarded {
    fn deadline(&self, client: &(dyn ClientInfo + Send + Sync)) -> Instant {
        let session = client
            .metadata()
            .get("statement_timeout_ms")
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis);
        Instant::now() + session.map_or(self.limits.timeout, |s| s.min(self.limits.timeout))
    }

    /// Runs `work` (planning and starting a statement) until the deadline
    /// or a cancel request, then bounds the rows it streams the same way.
    async fn run<T>(
        &self,
        deadline: Instant,
        cancelled: Cancelled,
        work: impl Future<Output = PgWireResult<T>>,
    ) -> PgWireResult<T> {
        tokio::select! {
            done = tokio::time::timeout_at(deadline, work) => done.map_err(|_| timed_out())?,
            () = cancelled => Err(user_cancelled()),
        }
    }
}

fn error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

fn timed_out() -> PgWireError {
    error("57014", "canceling statement due to statement timeout".into())
}

fn user_cancelled() -> PgWireError {
    error("57014", "canceling statement due to user request".into())
}

/// Parses `sql` and refuses it when it nests too deeply for the planner,
/// before datafusion-postgres parses and rewrites it recursively.
fn check_nesting(sql: &str) -> PgWireResult<()> {
    nesting::check_length(sql).map_err(|e| error("54000", e.to_string()))?;
    let statements = SqlParser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| error("42601", e.to_string()))?;
    for statement in &statements {
        nesting::check_statement(statement).map_err(|e| error("54001", e.to_string()))?;
    }
    Ok(())
}

#[async_trait]
impl SimpleQueryHandler for Guarded {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        check_nesting(query)?;
        let deadline = self.deadline(client);
        let cancelled = self.cancels.signal(client);
        let responses = self
            .run(
                deadline,
                cancelled.clone(),
                SimpleQueryHandler::do_query(self.session.as_ref(), client, query),
            )
            .await?;
        Ok(responses
            .into_iter()
            .map(|r| bound(r, deadline, cancelled.clone(), self.limits))
            .collect())
    }
}

type DfStatement = (String, Option<(Statement, LogicalPlan)>);

#[async_trait]
impl ExtendedQueryHandler for Guarded {
    type Statement = DfStatement;
    type QueryParser = Checked;

    fn query_parser(&self) -> Arc<Checked> {
        self.parser.clone()
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<DfStatement>, max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = DfStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let deadline = self.deadline(client);
        let cancelled = self.cancels.signal(client);
        let response = self
            .run(
                deadline,
                cancelled.clone(),
                ExtendedQueryHandler::do_query(self.session.as_ref(), client, portal, max_rows),
            )
            .await?;
        Ok(bound(response, deadline, cancelled, self.limits))
    }
}

/// datafusion-postgres's parser behind the nesting check.
struct Checked(Arc<Parser>);

#[async_trait]
impl QueryParser for Checked {
    type Statement = DfStatement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<DfStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        check_nesting(sql)?;
        self.0.parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, statement: &DfStatement) -> PgWireResult<Vec<Type>> {
        self.0.get_parameter_types(statement)
    }

    fn get_result_schema(&self, statement: &DfStatement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        self.0.get_result_schema(statement, format)
    }
}
