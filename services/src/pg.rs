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

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use datafusion_postgres::pgwire::messages::cancel::CancelRequest;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::{DfSessionService, Parser, QueryHook, ServerOptions, serve_with_handlers};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Sink, Stream, StreamExt};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use utfall_queries::{Analytics, Limits, Snapshot, nesting};

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
    fn startup_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::auth::StartupHandler> {
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

/// Cancel requests by connection. pgwire's own cancel stops a statement
/// only until its answer starts streaming, while most of a query's work is
/// done as its rows are pulled: these reach the row stream too.
#[derive(Default)]
struct Cancels(std::sync::Mutex<HashMap<(i32, Bytes), Arc<watch::Sender<u64>>>>);

impl Cancels {
    fn register(self: &Arc<Self>, pid: i32, secret: Bytes) -> Registered {
        let sender = Arc::new(watch::channel(0).0);
        if let Ok(mut map) = self.0.lock() {
            map.insert((pid, secret.clone()), sender.clone());
        }
        Registered {
            cancels: self.clone(),
            key: (pid, secret),
            sender,
        }
    }

    fn request(&self, pid: i32, secret: Bytes) {
        let sender = self.0.lock().ok().and_then(|map| map.get(&(pid, secret)).cloned());
        if let Some(sender) = sender {
            sender.send_modify(|n| *n += 1);
        }
    }
}

/// A connection's entry in [`Cancels`], removed when the connection ends.
struct Registered {
    cancels: Arc<Cancels>,
    key: (i32, Bytes),
    sender: Arc<watch::Sender<u64>>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut map) = self.cancels.0.lock() {
            map.remove(&self.key);
        }
    }
}

/// Passes a cancel request to pgwire and to the connection's row stream.
struct Cancel {
    cancels: Arc<Cancels>,
    pgwire: DefaultCancelHandler,
}

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.cancels.request(request.pid, request.secret_key.to_bytes());
        self.pgwire.on_cancel_request(request).await;
    }
}

/// Fires when the client asks to cancel the running statement.
type Cancelled = Shared<BoxFuture<'static, ()>>;

fn error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

impl Guarded {
    /// Fires on a cancel request for this connection made after now.
    fn cancelled(&self, client: &(dyn ClientInfo + Send + Sync)) -> Cancelled {
        let (pid, secret) = client.pid_and_secret_key();
        let registered = client
            .session_extensions()
            .get_or_insert_with(|| self.cancels.register(pid, secret.to_bytes()));
        let mut requests = registered.sender.subscribe();
        let before = *requests.borrow_and_update();
        async move {
            if requests.wait_for(|n| *n > before).await.is_err() {
                futures::future::pending::<()>().await;
            }
        }
        .boxed()
        .shared()
    }

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
            () = cancelled => Err(error("57014", "canceling statement due to user request".into())),
        }
    }

    fn bound(&self, response: Response, deadline: Instant, cancelled: Cancelled) -> Response {
        let Response::Query(mut query) = response else {
            return response;
        };
        let rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
        query.data_rows = Box::pin(Bounded {
            rows,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            cancelled,
            limits: self.limits,
            count: 0,
            bytes: 0,
            done: false,
        });
        Response::Query(query)
    }
}

fn timed_out() -> PgWireError {
    error("57014", "canceling statement due to statement timeout".into())
}

/// A row stream that ends with an error at the deadline, on a cancel
/// request, or past the row and byte limits.
struct Bounded {
    rows: Pin<Box<dyn Stream<Item = PgWireResult<datafusion_postgres::pgwire::messages::data::DataRow>> + Send>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    cancelled: Cancelled,
    limits: Limits,
    count: usize,
    bytes: usize,
    done: bool,
}

impl Stream for Bounded {
    type Item = PgWireResult<datafusion_postgres::pgwire::messages::data::DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        let stop = if self.deadline.as_mut().poll(cx).is_ready() {
            Some(timed_out())
        } else if self.cancelled.poll_unpin(cx).is_ready() {
            Some(error("57014", "canceling statement due to user request".into()))
        } else {
            None
        };
        if let Some(stop) = stop {
            self.done = true;
            return Poll::Ready(Some(Err(stop)));
        }
        let next = self.rows.poll_next_unpin(cx);
        if let Poll::Ready(Some(Ok(row))) = &next {
            self.count += 1;
            self.bytes += row.data.len();
            let too_large = if self.count > self.limits.max_rows {
                Some(format!("more than {} rows", self.limits.max_rows))
            } else if self.bytes > self.limits.max_bytes {
                Some(format!("more than {} MiB", self.limits.max_bytes >> 20))
            } else {
                None
            };
            if let Some(what) = too_large {
                self.done = true;
                let message = utfall_queries::QueryError::TooLarge(what).to_string();
                // program_limit_exceeded
                return Poll::Ready(Some(Err(error("54000", message))));
            }
        }
        next
    }
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
        let cancelled = self.cancelled(client);
        let responses = self
            .run(deadline, cancelled.clone(), SimpleQueryHandler::do_query(self.session.as_ref(), client, query))
            .await?;
        Ok(responses
            .into_iter()
            .map(|r| self.bound(r, deadline, cancelled.clone()))
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
        let cancelled = self.cancelled(client);
        let response = self
            .run(
                deadline,
                cancelled.clone(),
                ExtendedQueryHandler::do_query(self.session.as_ref(), client, portal, max_rows),
            )
            .await?;
        Ok(self.bound(response, deadline, cancelled))
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

/// Settings a session may change: they live in the session's own metadata
/// (datafusion-postgres's `SET` hook keeps them there), never in the engine
/// every session shares.
const SESSION_SETTINGS: [&str; 7] = [
    "statement_timeout",
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
];

/// Refuses every statement but queries and the session chatter clients
/// send (SET of a session setting, SHOW, transactions, cursors).
struct ReadOnly;

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
    (!allowed).then(|| error("25006", format!("SQL access is read-only: {kind} statements are not allowed")))
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
            matches!(value.to_string().trim_matches(['\'', '"']).to_uppercase().as_str(), "UTC" | "GMT")
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
