//! Bearer JWTs from an organisation's OpenID Connect provider. A token is
//! accepted only when signed by a key of the configured JWKS with the
//! algorithm its header names (asymmetric ones only: no `none`, no HMAC,
//! so a public key can never be used as a shared secret), and when its
//! issuer, audience, expiry and not-before hold. The principal's name and
//! grants come from configurable claims; its grants are strings
//! `role:programme` (or `admin`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use tokio::sync::RwLock;
use utfall_events::ProgramName;

use super::{AccessError, Grant, Principal, Role};

/// Longest JWT looked at.
const MAX_JWT: usize = 16 << 10;
/// How often an unknown key id may make the JWKS be fetched again.
const REFRESH_AFTER: Duration = Duration::from_secs(60);

/// Names given to OIDC principals, so they never collide with token ones.
pub const NAME_PREFIX: &str = "oidc:";

#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    /// A JWKS file, or an `https://` URL to fetch it from.
    pub jwks: String,
    /// The claim naming the person (`sub`, `preferred_username`, `email`).
    pub name_claim: String,
    /// The claim listing their grants.
    pub grants_claim: String,
}

pub struct Oidc {
    config: OidcConfig,
    keys: RwLock<(JwkSet, Instant)>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("config", &self.config).finish()
    }
}

async fn fetch(source: &str) -> Result<JwkSet, AccessError> {
    let invalid = |e: String| AccessError::Invalid(format!("the JWKS at {source}: {e}"));
    let text = if source.starts_with("https://") || source.starts_with("http://") {
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map(|c| c.get(source))
            .map_err(|e| invalid(e.to_string()))?
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| invalid(e.to_string()))?;
        response.text().await.map_err(|e| invalid(e.to_string()))?
    } else {
        tokio::fs::read_to_string(PathBuf::from(source))
            .await
            .map_err(|e| invalid(e.to_string()))?
    };
    serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))
}

/// `role:programme` or `admin`.
fn grant(text: &str) -> Option<Grant> {
    match text.split_once(':') {
        None => (text == "admin").then_some(Grant {
            role: Role::Admin,
            program: None,
        }),
        Some((role, program)) => {
            let role = Role::parse(role).filter(|r| *r != Role::Admin)?;
            Some(Grant {
                role,
                program: Some(ProgramName::new(program).ok()?),
            })
        }
    }
}

impl Oidc {
    /// Reads the JWKS once: a server with a JWKS it cannot read does not start.
    pub async fn load(config: OidcConfig) -> Result<Self, AccessError> {
        let keys = fetch(&config.jwks).await?;
        Ok(Self {
            config,
            keys: RwLock::new((keys, Instant::now())),
        })
    }

    /// The key `kid` names, fetching the JWKS again (at most once a
    /// minute) when it is not known: providers rotate their keys.
    async fn key(&self, kid: Option<&str>) -> Option<jsonwebtoken::jwk::Jwk> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let stale = {
            let keys = self.keys.read().await;
            if let Some(key) = find(&keys.0) {
                return Some(key);
            }
            keys.1.elapsed() > REFRESH_AFTER
        };
        if !stale {
            return None;
        }
        match fetch(&self.config.jwks).await {
            Ok(fresh) => {
                let key = find(&fresh);
                *self.keys.write().await = (fresh, Instant::now());
                key
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the OIDC JWKS again");
                None
            }
        }
    }

    /// The principal a valid JWT stands for; `None` for any JWT that does
    /// not pass every check (why is logged at debug level, never the JWT).
    pub async fn authenticate(&self, jwt: &str) -> Option<Principal> {
        match self.check(jwt).await {
            Ok(principal) => Some(principal),
            Err(why) => {
                tracing::debug!(why, "OIDC token refused");
                None
            }
        }
    }

    async fn check(&self, jwt: &str) -> Result<Principal, &'static str> {
        if jwt.len() > MAX_JWT {
            return Err("too long");
        }
        let header = decode_header(jwt).map_err(|_| "malformed")?;
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err("a symmetric algorithm");
        }
        let jwk = self.key(header.kid.as_deref()).await.ok_or("unknown key")?;
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err("a symmetric key");
        }
        if jwk
            .common
            .key_algorithm
            .is_some_and(|a| a.to_string() != format!("{:?}", header.alg))
        {
            return Err("an algorithm the key is not for");
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| "an unusable key")?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let claims = decode::<Value>(jwt, &key, &validation)
            .map_err(|_| "signature, issuer, audience or time invalid")?
            .claims;
        let name = claims[&self.config.name_claim].as_str().ok_or("no name claim")?;
        let plain = |c: char| c.is_ascii_alphanumeric() || "_.-@".contains(c);
        if name.is_empty() || name.len() > 128 || !name.chars().all(plain) {
            return Err("an unusable name");
        }
        let grants = claims[&self.config.grants_claim]
            .as_array()
            .ok_or("no grants claim")?
            .iter()
            .map(|g| g.as_str().and_then(grant))
            .collect::<Option<Vec<Grant>>>()
            .ok_or("a malformed grant")?;
        let expires_at = claims["exp"]
            .as_i64()
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
        Ok(Principal {
            name: format!("{NAME_PREFIX}{name}"),
            grants,
            created_at: claims["iat"]
                .as_i64()
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
                .unwrap_or_default(),
            expires_at,
            revoked_at: None,
        })
    }
}
