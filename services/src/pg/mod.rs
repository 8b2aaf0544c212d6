//! The Postgres wire protocol endpoint (`utfall serve --pg ADDR`) for SQL
//! clients: psql, R's RPostgres, Python's psycopg, BI tools, through
//! datafusion-postgres.
//!
//! What this module adds around it, and why:
//! * every connection signs in with a principal's name and token
//!   ([`sign_in`]); an admin queries the whole catalog, an evaluator their
//!   programmes' rows, pseudonymised ([`sessions`]), as of the date and as
//!   known at the time the session set ([`as_of`]); every statement that
//!   returns rows is audited with the rows it sent;
//! * every SQL text is checked for nesting depth before anything walks it
//!   (a deep query would exhaust the stack and abort the process);
//! * at most `--max-queries` statements run at once on this endpoint; one
//!   more is refused at once (SQLSTATE 53000) rather than queued;
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

mod as_of;
mod bounded;
mod cancel;
mod read_only;
mod sessions;
mod sign_in;

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;
use datafusion_postgres::pgwire::api::auth::sasl::scram::ScramAuth;
use datafusion_postgres::pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use datafusion_postgres::pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, RandomPidSecretKeyGenerator, Type,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::{Parser, ServerOptions, serve_with_handlers};
use futures::Sink;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use utfall_queries::{Analytics, Limits, nesting};

use crate::access::Access;
use bounded::{Audited, bound};
use cancel::{Cancel, Cancelled, Cancels};
use sessions::Sessions;
use sign_in::SignIn;

/// Serves SQL over the Postgres protocol until the process ends.
pub async fn serve(
    analytics: Analytics,
    access: Access,
    pseudonym_key: Arc<[u8]>,
    address: SocketAddr,
    max_connections: usize,
    max_queries: usize,
    tls: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<()> {
    // The files were read by `tls::acceptor` already: they will not fail
    // here and leave the endpoint unencrypted.
    let require_tls = tls.is_some();
    let (cert, key) = tls
        .map(|(c, k)| (c.display().to_string(), k.display().to_string()))
        .unzip();
    let options = ServerOptions::new()
        .with_host(address.ip().to_string())
        .with_port(address.port())
        .with_max_connections(max_connections)
        .with_tls_cert_path(cert)
        .with_tls_key_path(key);
    let limits = analytics.limits();
    let sessions = Arc::new(Sessions::new(analytics, access.clone(), pseudonym_key).await?);
    let connections = Arc::new(ConnectionManager::new());
    let cancels = Arc::new(Cancels::default());
    let handlers = Arc::new(Handlers {
        guarded: Arc::new(Guarded {
            parser: Arc::new(Checked(sessions.clone())),
            sessions,
            limits,
            cancels: cancels.clone(),
            running: Arc::new(Semaphore::new(max_queries)),
        }),
        startup: Arc::new(SignIn {
            connections: connections.clone(),
            pids: RandomPidSecretKeyGenerator::default(),
            parameters: DefaultServerParameterProvider::default(),
            require_tls,
            scram: ScramAuth::new(Arc::new(sign_in::Verifiers(access.tokens.clone()))),
            access,
        }),
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
    startup: Arc<SignIn>,
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

/// datafusion-postgres's handlers, each statement in its caller's session,
/// held to the limits and audited.
struct Guarded {
    sessions: Arc<Sessions>,
    parser: Arc<Checked>,
    limits: Limits,
    cancels: Arc<Cancels>,
    /// Room for the statements running at once.
    running: Arc<Semaphore>,
}

impl Guarded {
    /// Room for one more statement, held until its rows have been sent.
    fn room(&self) -> PgWireResult<OwnedSemaphorePermit> {
        self.running.clone().try_acquire_owned().map_err(|_| {
            // insufficient_resources: the client may retry shortly.
            error("53000", "too many SQL queries are running at once; retry shortly".into())
        })
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
            () = cancelled => Err(user_cancelled()),
        }
    }

    /// `response` bounded, and audited when it returns rows.
    fn bound(
        &self,
        response: Response,
        deadline: Instant,
        cancelled: Cancelled,
        audited: Audited,
        room: Arc<OwnedSemaphorePermit>,
    ) -> Response {
        bound(response, deadline, cancelled, self.limits, audited, room)
    }

    /// Audits a statement that failed before it returned rows; a record
    /// that cannot be written replaces the statement's error.
    async fn failed(&self, audited: Audited, e: PgWireError) -> PgWireError {
        let mut record = audited.record;
        record.outcome = match &e {
            PgWireError::UserError(info) => info.code.clone(),
            _ => "error".into(),
        };
        match audited.log.append(&record).await {
            Ok(()) => e,
            Err(audit) => {
                tracing::error!(error = %audit, "cannot write an audit record of a Postgres wire statement");
                error("58000", "the audit log cannot be written".into())
            }
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
        let caller = self.sessions.caller(client).await?;
        let record = caller.record(client, query);
        let audited = || Audited {
            log: self.sessions.access.audit.clone(),
            record: record.clone(),
        };
        let room = match self.room() {
            Ok(room) => Arc::new(room),
            Err(e) => return Err(self.failed(audited(), e).await),
        };
        let deadline = self.deadline(client);
        let cancelled = self.cancels.signal(client);
        let responses = match self
            .run(
                deadline,
                cancelled.clone(),
                SimpleQueryHandler::do_query(caller.session.as_ref(), client, query),
            )
            .await
        {
            Ok(responses) => responses,
            Err(e) => return Err(self.failed(audited(), e).await),
        };
        Ok(responses
            .into_iter()
            .map(|r| self.bound(r, deadline, cancelled.clone(), audited(), room.clone()))
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
        let caller = self.sessions.caller(client).await?;
        let audited = Audited {
            log: self.sessions.access.audit.clone(),
            record: caller.record(client, &portal.statement.statement.0),
        };
        let room = match self.room() {
            Ok(room) => Arc::new(room),
            Err(e) => return Err(self.failed(audited, e).await),
        };
        let deadline = self.deadline(client);
        let cancelled = self.cancels.signal(client);
        let response = self
            .run(
                deadline,
                cancelled.clone(),
                ExtendedQueryHandler::do_query(caller.session.as_ref(), client, portal, max_rows),
            )
            .await;
        match response {
            Ok(response) => Ok(self.bound(response, deadline, cancelled, audited, room)),
            Err(e) => Err(self.failed(audited, e).await),
        }
    }
}

/// The parser of the caller's session, behind the nesting check.
struct Checked(Arc<Sessions>);

impl Checked {
    async fn parser(&self, client: &(dyn ClientInfo + Send + Sync)) -> PgWireResult<Arc<Parser>> {
        Ok(self.0.caller(client).await?.session.query_parser())
    }
}

#[async_trait]
impl QueryParser for Checked {
    type Statement = DfStatement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<DfStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        check_nesting(sql)?;
        self.parser(client).await?.parse_sql(client, sql, types).await
    }

    // Both read only the statement already parsed in the caller's session:
    // any session's parser answers them alike.
    fn get_parameter_types(&self, statement: &DfStatement) -> PgWireResult<Vec<Type>> {
        self.0.any_parser().get_parameter_types(statement)
    }

    fn get_result_schema(&self, statement: &DfStatement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        self.0.any_parser().get_result_schema(statement, format)
    }
}
