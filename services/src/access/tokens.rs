//! API tokens: a principal's secret, shown once when it is created and
//! stored only as its SHA-256 (a token is 256 random bits, so a fast hash
//! is enough; no password-style stretching is needed), and as the salted
//! password SCRAM-SHA-256 checks a Postgres wire client's proof against.
//! Revocation and expiry hold at the next lookup, which every request makes.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};
use utfall_events::ProgramName;

use datafusion_postgres::pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, gen_salted_password};

use super::{AccessError, Grant, Principal, Role};

/// Every token starts with this, so a leaked one is recognisable (secret
/// scanners, logs).
pub const PREFIX: &str = "utfall_";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn time(text: Option<String>) -> Result<Option<DateTime<Utc>>, AccessError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|t| t.to_utc())
            .map_err(|e| AccessError::Invalid(format!("stored time {t:?}: {e}")))
    })
    .transpose()
}

/// A fresh token: the prefix and 256 random bits in hex.
pub fn new_token() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("{PREFIX}{}", hex(&secret))
}

#[derive(Clone)]
pub struct TokenStore {
    pool: AnyPool,
}

/// Principals with their grants, one row per grant (none for a principal
/// without any), in name order: one query per lookup.
macro_rules! select_principals {
    ($where:literal) => {
        concat!(
            "SELECT p.name, p.created_at, p.expires_at, p.revoked_at, g.role, g.program ",
            "FROM access_principals p LEFT JOIN access_grants g ON g.principal = p.name ",
            $where,
            " ORDER BY p.name, g.role, g.program"
        )
    };
}

impl TokenStore {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Creates a principal with `role` over `programs` and returns its
    /// token, which is not kept.
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        programs: &[ProgramName],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<String, AccessError> {
        let plain = |c: char| c.is_ascii_alphanumeric() || "_.-@".contains(c);
        if name.is_empty() || name.len() > 64 || !name.chars().all(plain) {
            return Err(AccessError::Invalid(
                "a name is 1 to 64 letters, digits or _ . - @".into(),
            ));
        }
        let grants = grants(role, programs)?;
        let token = new_token();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO access_principals (name, token_sha256, created_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(sha256_hex(&token))
        .bind(Utc::now().to_rfc3339())
        .bind(expires_at.map(|t| t.to_rfc3339()))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(AccessError::Exists(name.into()));
        }
        insert_grants(&mut tx, name, &grants).await?;
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salted = gen_salted_password(&token, &salt, SCRAM_ITERATIONS);
        sqlx::query("INSERT INTO access_scram (principal, salt, salted_password) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(hex(&salt))
            .bind(hex(&salted))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The SCRAM-SHA-256 salt and salted password of `name`'s token.
    pub async fn scram_verifier(&self, name: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>, AccessError> {
        let row = sqlx::query("SELECT salt, salted_password FROM access_scram WHERE principal = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let unhex = |text: String| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(text.get(i..i + 2).unwrap_or(""), 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| AccessError::Invalid(format!("stored SCRAM verifier of {name:?}")))
        };
        Ok(Some((unhex(row.try_get(0)?)?, unhex(row.try_get(1)?)?)))
    }

    /// Adds `role` over `programs` to an existing principal.
    pub async fn grant(&self, name: &str, role: Role, programs: &[ProgramName]) -> Result<(), AccessError> {
        let grants = grants(role, programs)?;
        self.find(name)
            .await?
            .ok_or_else(|| AccessError::Unknown(name.into()))?;
        let mut tx = self.pool.begin().await?;
        insert_grants(&mut tx, name, &grants).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<Principal>, AccessError> {
        let rows = sqlx::query(select_principals!("")).fetch_all(&self.pool).await?;
        principals(&rows)
    }

    /// Whether any principal exists (a fresh deployment has none).
    pub async fn is_empty(&self) -> Result<bool, AccessError> {
        let row = sqlx::query("SELECT count(*) FROM access_principals")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? == 0)
    }

    /// Revokes `name`'s token at once.
    pub async fn revoke(&self, name: &str) -> Result<(), AccessError> {
        let revoked =
            sqlx::query("UPDATE access_principals SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
                .bind(Utc::now().to_rfc3339())
                .bind(name)
                .execute(&self.pool)
                .await?;
        if revoked.rows_affected() == 0 && self.find(name).await?.is_none() {
            return Err(AccessError::Unknown(name.into()));
        }
        Ok(())
    }

    /// The principal named `name`, valid or not.
    pub async fn find(&self, name: &str) -> Result<Option<Principal>, AccessError> {
        let rows = sqlx::query(select_principals!("WHERE p.name = $1"))
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        Ok(principals(&rows)?.pop())
    }

    /// The principal `token` belongs to, if it may be used now.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, AccessError> {
        if !token.starts_with(PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let rows = sqlx::query(select_principals!("WHERE p.token_sha256 = $1"))
            .bind(sha256_hex(token))
            .fetch_all(&self.pool)
            .await?;
        Ok(principals(&rows)?.pop().filter(|p| p.valid_at(Utc::now())))
    }
}

/// The principals of rows from `select_principals!`.
fn principals(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Principal>, AccessError> {
    let mut principals: Vec<Principal> = Vec::new();
    for row in rows {
        let name: String = row.try_get(0)?;
        if principals.last().is_none_or(|p| p.name != name) {
            principals.push(Principal {
                name,
                grants: Vec::new(),
                created_at: time(Some(row.try_get(1)?))?.unwrap_or_default(),
                expires_at: time(row.try_get(2)?)?,
                revoked_at: time(row.try_get(3)?)?,
            });
        }
        let (Some(role), Some(program)) = (
            row.try_get::<Option<String>, _>(4)?,
            row.try_get::<Option<String>, _>(5)?,
        ) else {
            continue;
        };
        let grant = Grant {
            role: Role::parse(&role).ok_or_else(|| AccessError::Invalid(format!("stored role {role:?}")))?,
            program: match program.as_str() {
                "" => None,
                p => Some(
                    ProgramName::new(p).map_err(|e| AccessError::Invalid(format!("stored programme {p:?}: {e}")))?,
                ),
            },
        };
        if let Some(principal) = principals.last_mut() {
            principal.grants.push(grant);
        }
    }
    Ok(principals)
}

/// The grants `role` over `programs` makes; admin takes no programme,
/// every other role at least one.
fn grants(role: Role, programs: &[ProgramName]) -> Result<Vec<Grant>, AccessError> {
    match (role, programs.is_empty()) {
        (Role::Admin, true) => Ok(vec![Grant { role, program: None }]),
        (Role::Admin, false) => Err(AccessError::Invalid(
            "admin holds every programme: give no --program".into(),
        )),
        (_, true) => Err(AccessError::Invalid(format!(
            "a {} needs at least one --program",
            role.as_str()
        ))),
        (_, false) => Ok(programs
            .iter()
            .map(|p| Grant {
                role,
                program: Some(p.clone()),
            })
            .collect()),
    }
}

async fn insert_grants(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    grants: &[Grant],
) -> Result<(), AccessError> {
    for grant in grants {
        sqlx::query("INSERT INTO access_grants (principal, role, program) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(grant.role.as_str())
            .bind(grant.program.as_ref().map_or("", |p| p.as_str()))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
