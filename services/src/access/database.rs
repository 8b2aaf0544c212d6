//! Where principals, grants and the audit log live: the deployment's
//! database — `--database` (PostgreSQL) when given, else the embedded
//! store's `events.db` in the data directory — so that they are backed up
//! and survive restarts with the log itself.

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

use crate::cli::StoreArgs;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("access database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a principal named {0:?} exists already (names are never reused: they identify records in the audit log)")]
    Exists(String),
    #[error("no principal named {0:?}")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Tables both dialects share, in creation order. `access_scram` holds each
/// token's SCRAM-SHA-256 salted password (RFC 5802), so that Postgres wire
/// clients can sign in without sending the token.
const PRINCIPALS: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS access_principals (
        name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT)",
    "CREATE TABLE IF NOT EXISTS access_grants (
        principal TEXT NOT NULL REFERENCES access_principals (name), role TEXT NOT NULL, program TEXT NOT NULL,
        PRIMARY KEY (principal, role, program))",
    "CREATE TABLE IF NOT EXISTS access_scram (
        principal TEXT PRIMARY KEY REFERENCES access_principals (name), salt TEXT NOT NULL, salted_password TEXT NOT NULL)",
];

/// The audit log in each dialect: it refuses updates and deletes in the
/// database itself, not only in utfall.
const SQLITE_AUDIT: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS access_audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, principal TEXT, roles TEXT,
        action TEXT NOT NULL, target TEXT NOT NULL, programs TEXT, detail TEXT, rows BIGINT, outcome TEXT NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS access_audit_no_update BEFORE UPDATE ON access_audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_no_delete BEFORE DELETE ON access_audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
];

const POSTGRES_AUDIT: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS access_audit (
        seq BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, principal TEXT, roles TEXT,
        action TEXT NOT NULL, target TEXT NOT NULL, programs TEXT, detail TEXT, rows BIGINT, outcome TEXT NOT NULL)",
    "CREATE OR REPLACE FUNCTION access_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    "DROP TRIGGER IF EXISTS access_audit_append_only ON access_audit",
    "CREATE TRIGGER access_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_audit
        FOR EACH STATEMENT EXECUTE FUNCTION access_audit_append_only()",
];

/// The access database of the deployment `store` names.
pub fn url(store: &StoreArgs) -> Result<String, AccessError> {
    Ok(match &store.database {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&store.data_dir).map_err(|source| AccessError::Io {
                what: format!("cannot create data directory {}", store.data_dir.display()),
                source,
            })?;
            format!("sqlite://{}?mode=rwc", store.data_dir.join("events.db").display())
        }
    })
}

/// Opens the access database at `url` and makes sure its tables exist.
pub async fn connect(url: &str) -> Result<AnyPool, AccessError> {
    install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(4).connect(url).await?;
    let mut tx = pool.begin().await?;
    let audit: &[&'static str] = if url.starts_with("postgres") {
        // Several processes may start at once; one sets the schema up.
        sqlx::query("SELECT pg_advisory_xact_lock(7244301)")
            .execute(&mut *tx)
            .await?;
        &POSTGRES_AUDIT
    } else {
        &SQLITE_AUDIT
    };
    for &statement in PRINCIPALS.iter().chain(audit) {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(pool)
}
