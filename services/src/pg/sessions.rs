//! Which catalog a signed-in connection queries: an admin the whole one;
//! an evaluator the restricted, pseudonymised view over their programmes;
//! either as of the snapshot the session set. One session per (programmes,
//! snapshot, lake commit), made on first use and shared by every connection
//! asking the same; a new lake commit makes new sessions, so each statement
//! reads the lake as it stands when the statement starts. The principal is looked up again for every statement, so a
//! revoked or expired token stops working at once, also on a connection
//! that is already open.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::query::ExtendedQueryHandler;
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::{DfSessionService, QueryHook};
use tokio::sync::Mutex;
use utfall_events::ProgramName;
use utfall_queries::{Analytics, Evaluation, Snapshot};

use super::as_of::{self, AsOf};
use super::error;
use super::read_only::ReadOnly;
use super::sign_in::SignedIn;
use crate::access::audit::AuditRecord;
use crate::access::{Access, Principal, Role};

/// Most catalogs kept at once; past it the cache starts again. A catalog
/// may hold a computed `participants` (tens of MB at national scale), so
/// as few as the analytics engine keeps itself.
const MAX_CATALOGS: usize = 10;

/// An evaluator's programmes (none: the admin's whole catalog), a snapshot
/// and the version of the lake commit its catalog reads.
type Key = (Option<Vec<ProgramName>>, Snapshot, u64);

pub(super) struct Sessions {
    analytics: Analytics,
    pub access: Access,
    pseudonym_key: Arc<[u8]>,
    sessions: Mutex<HashMap<Key, Arc<DfSessionService>>>,
    /// The admin catalog's parser, for what needs no particular session.
    parser: Arc<datafusion_postgres::Parser>,
}

/// A statement's caller and the session it runs in.
pub(super) struct Caller {
    pub principal: Principal,
    pub session: Arc<DfSessionService>,
}

impl Caller {
    /// The audit record of a statement of this caller from `client`.
    pub fn record(&self, client: &(dyn ClientInfo + Send + Sync), sql: &str) -> AuditRecord {
        let target = format!("postgres wire from {}", client.socket_addr());
        let mut record = AuditRecord::new(Some(&self.principal), "sql", &target, "ok");
        record.programs = Some(self.principal.programs_label(&[Role::Evaluator]));
        record.detail = Some(sql.to_string());
        record
    }
}

async fn service(ctx: SessionContext) -> anyhow::Result<Arc<DfSessionService>> {
    setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider)
        .map_err(|e| anyhow::anyhow!("cannot set up pg_catalog: {e}"))?;
    let hooks: Vec<Arc<dyn QueryHook>> = vec![
        Arc::new(ReadOnly),
        Arc::new(AsOf),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    Ok(Arc::new(DfSessionService::new_with_hooks(Arc::new(ctx), hooks)))
}

fn refused(message: String) -> PgWireError {
    // insufficient_privilege
    error("42501", message)
}

impl Sessions {
    /// Makes the admin's catalog at once, so that a lake it cannot read
    /// stops the server at start.
    pub async fn new(analytics: Analytics, access: Access, pseudonym_key: Arc<[u8]>) -> anyhow::Result<Self> {
        let version = analytics.lake_version()?;
        let admin = service(analytics.context(&Snapshot::default()).await?).await?;
        Ok(Self {
            analytics,
            access,
            pseudonym_key,
            parser: admin.query_parser(),
            sessions: Mutex::new(HashMap::from([((None, Snapshot::default(), version), admin)])),
        })
    }

    /// A parser for what needs no session (types of a parsed statement).
    pub fn any_parser(&self) -> Arc<datafusion_postgres::Parser> {
        self.parser.clone()
    }

    /// The caller of a statement on `client`'s connection.
    pub async fn caller(&self, client: &(dyn ClientInfo + Send + Sync)) -> PgWireResult<Caller> {
        let signed_in = client
            .session_extensions()
            .get::<SignedIn>()
            .ok_or_else(|| error("28000", "not signed in".into()))?;
        let principal = self
            .access
            .current(&signed_in.0)
            .await
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?
            // invalid_authorization_specification
            .ok_or_else(|| error("28000", "the token was revoked or has expired".into()))?;
        let programmes = principal.programs(&[Role::Evaluator]);
        if programmes.as_ref().is_some_and(Vec::is_empty) {
            return Err(refused(format!(
                "{} may not query: SQL is for evaluators and admins",
                principal.name
            )));
        }
        let version = self
            .analytics
            .lake_version()
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        let session = self.session((programmes, as_of::snapshot(client)?, version)).await?;
        Ok(Caller { principal, session })
    }

    async fn session(&self, key: Key) -> PgWireResult<Arc<DfSessionService>> {
        let mut sessions = self.sessions.lock().await;
        if let Some(session) = sessions.get(&key) {
            return Ok(session.clone());
        }
        let analytics = match &key.0 {
            None => self.analytics.clone(),
            Some(programmes) => self
                .analytics
                .for_evaluator(Evaluation::new(programmes.clone(), &self.pseudonym_key)),
        };
        let ctx = analytics
            .context(&key.1)
            .await
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        let session = service(ctx).await.map_err(|e| PgWireError::ApiError(e.into()))?;
        // Sessions over an older commit serve only the statements that
        // already hold them.
        sessions.retain(|k, _| k.2 == key.2);
        if sessions.len() >= MAX_CATALOGS {
            sessions.clear();
        }
        sessions.insert(key, session.clone());
        Ok(session)
    }
}
