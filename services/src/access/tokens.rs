//! API tokens: a principal's secret, shown once when it is created and
//! stored only as its SHA-256 (a token is 256 random bits, so a fast hash
//! is enough; no password-style stretching is needed). Principals live in
//! the log's database: `events.db` for the embedded store, the `--database`
//! PostgreSQL beside JetStream. Revocation takes effect at the next lookup.

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use utfall_events::ProgramName;

use super::Role;
use crate::cli::StoreArgs;

/// Every token starts with this, so a leaked one is recognisable (secret
/// scanners, logs).
const PREFIX: &str = "utfall_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("principal store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a JetStream deployment keeps its principals in PostgreSQL: give --database")]
    NoDatabase,
    #[error("a principal named {0:?} exists already (names are never reused: they identify records in the audit log)")]
    Exists(String),
    #[error("no principal named {0:?}")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
}

/// A principal as listed: never its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The programmes the role applies to (none for admin: all of them).
    pub programs: Vec<ProgramName>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// Whether the token may be used at `now`.
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

pub struct TokenStore {
    pool: AnyPool,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS principals (
    name         TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    programs     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT
)";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn time(text: Option<String>) -> Result<Option<DateTime<Utc>>, TokenError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|t| t.to_utc())
            .map_err(|e| TokenError::Invalid(format!("stored time {t:?}: {e}")))
    })
    .transpose()
}

impl TokenStore {
    pub async fn open(store: &StoreArgs) -> Result<Self, TokenError> {
        let url = match (&store.nats, &store.database) {
            (_, Some(url)) if store.nats.is_some() => url.clone(),
            (Some(_), _) => return Err(TokenError::NoDatabase),
            (None, _) => {
                std::fs::create_dir_all(&store.data_dir).map_err(|e| {
                    TokenError::Invalid(format!(
                        "cannot create data directory {}: {e}",
                        store.data_dir.display()
                    ))
                })?;
                format!("sqlite://{}?mode=rwc", store.data_dir.join("events.db").display())
            }
        };
        install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(2).connect(&url).await?;
        sqlx::query(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    /// Creates a principal and returns its token, which is not kept.
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        programs: &[ProgramName],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<String, TokenError> {
        let plain = |c: char| c.is_ascii_alphanumeric() || "_.-@".contains(c);
        if name.is_empty() || name.len() > 64 || !name.chars().all(plain) {
            return Err(TokenError::Invalid(
                "a name is 1 to 64 letters, digits or _ . - @".into(),
            ));
        }
        match (role, programs.is_empty()) {
            (Role::Admin, false) => {
                return Err(TokenError::Invalid(
                    "admin holds every programme: give no --program".into(),
                ));
            }
            (Role::Admin, true) | (_, false) => {}
            (_, true) => {
                return Err(TokenError::Invalid(format!(
                    "a {} needs at least one --program",
                    role.as_str()
                )));
            }
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = format!("{PREFIX}{}", hex(&secret));
        let programs: Vec<&str> = programs.iter().map(ProgramName::as_str).collect();
        let inserted = sqlx::query(
            "INSERT INTO principals (name, token_sha256, role, programs, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(sha256_hex(&token))
        .bind(role.as_str())
        .bind(programs.join(","))
        .bind(Utc::now().to_rfc3339())
        .bind(expires_at.map(|t| t.to_rfc3339()))
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(TokenError::Exists(name.into()));
        }
        Ok(token)
    }

    pub async fn list(&self) -> Result<Vec<Principal>, TokenError> {
        let rows = sqlx::query(
            "SELECT name, role, programs, created_at, expires_at, revoked_at FROM principals ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(principal).collect()
    }

    /// Revokes `name`'s token at once.
    pub async fn revoke(&self, name: &str) -> Result<(), TokenError> {
        let revoked = sqlx::query("UPDATE principals SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(Utc::now().to_rfc3339())
            .bind(name)
            .execute(&self.pool)
            .await?;
        if revoked.rows_affected() == 0 && !self.list().await?.iter().any(|p| p.name == name) {
            return Err(TokenError::Unknown(name.into()));
        }
        Ok(())
    }

    /// The principal `token` belongs to, if it may be used now.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, TokenError> {
        if !token.starts_with(PREFIX) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT name, role, programs, created_at, expires_at, revoked_at FROM principals WHERE token_sha256 = $1",
        )
        .bind(sha256_hex(token))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| principal(&r))
            .transpose()?
            .filter(|p| p.valid_at(Utc::now())))
    }
}

fn principal(row: &sqlx::any::AnyRow) -> Result<Principal, TokenError> {
    let role: String = row.try_get(1)?;
    let programs: String = row.try_get(2)?;
    Ok(Principal {
        name: row.try_get(0)?,
        role: Role::parse(&role).ok_or_else(|| TokenError::Invalid(format!("stored role {role:?}")))?,
        programs: programs
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| ProgramName::new(p).map_err(|e| TokenError::Invalid(format!("stored programme {p:?}: {e}"))))
            .collect::<Result<_, _>>()?,
        created_at: time(Some(row.try_get(3)?))?.unwrap_or_default(),
        expires_at: time(row.try_get(4)?)?,
        revoked_at: time(row.try_get(5)?)?,
    })
}
