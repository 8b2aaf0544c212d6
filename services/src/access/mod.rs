//! Who may do what. DESIGN's roles are granted per programme (admin is
//! deployment-wide); a principal is a named credential holding one or more
//! grants. Every way in (HTTP, Postgres wire) resolves the caller to a
//! [`Principal`] and asks it whether a [`Need`] is met; reads of personal
//! data and every write are recorded in the [`audit`] log.

pub mod audit;
mod cli;
mod database;
pub mod oidc;
pub mod secrets;
pub mod tokens;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utfall_events::ProgramName;

pub use cli::{run, run_audit, whoami};
pub use database::AccessError;

/// DESIGN's roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, in every programme; manages principals, reads the audit log.
    Admin,
    /// Records events and reads participant rows of their programmes.
    Registrar,
    /// Aggregates and outcome reports of their programmes.
    Viewer,
    /// SQL over their programmes' rows, pseudonymised.
    Evaluator,
    /// Their programmes' extracts only.
    Funder,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Registrar,
        Role::Viewer,
        Role::Evaluator,
        Role::Funder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Registrar => "registrar",
            Role::Viewer => "viewer",
            Role::Evaluator => "evaluator",
            Role::Funder => "funder",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A role over a programme; admin's is over all of them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    pub role: Role,
    pub program: Option<ProgramName>,
}

/// A principal as the server knows it: never its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub grants: Vec<Grant>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// Whether the credential may be used at `now`.
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }

    pub fn is_admin(&self) -> bool {
        self.grants.iter().any(|g| g.role == Role::Admin)
    }

    /// Whether the principal holds one of `roles` for `program` (admin
    /// holds every role everywhere).
    pub fn holds(&self, roles: &[Role], program: &str) -> bool {
        self.is_admin()
            || self
                .grants
                .iter()
                .any(|g| roles.contains(&g.role) && g.program.as_ref().is_some_and(|p| p.as_str() == program))
    }

    /// The programmes where the principal holds one of `roles`; `None`
    /// means all of them (admin).
    pub fn programs(&self, roles: &[Role]) -> Option<Vec<ProgramName>> {
        if self.is_admin() {
            return None;
        }
        let mut programs: Vec<ProgramName> = self
            .grants
            .iter()
            .filter(|g| roles.contains(&g.role))
            .filter_map(|g| g.program.clone())
            .collect();
        programs.sort();
        programs.dedup();
        Some(programs)
    }

    /// The programmes where the principal holds one of `roles`, for the
    /// audit log: `optimist,sja-meg`, or `*` for all of them.
    pub fn programs_label(&self, roles: &[Role]) -> String {
        self.programs(roles).map_or("*".into(), |p| {
            p.iter().map(ProgramName::as_str).collect::<Vec<_>>().join(",")
        })
    }

    /// The roles held, for the audit log: `evaluator,viewer`.
    pub fn roles(&self) -> String {
        let mut roles: Vec<&str> = self.grants.iter().map(|g| g.role.as_str()).collect();
        roles.sort_unstable();
        roles.dedup();
        roles.join(",")
    }
}

/// What a way in needs of its caller. Every HTTP route declares one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: the answer holds no personal data (health, metrics, the
    /// dashboard's page itself).
    Open,
    /// Any principal; the handler narrows the answer to their programmes.
    SignedIn,
    /// One of these roles for the programme named in the request.
    InProgram(&'static [Role]),
    /// One of these roles for some programme; the handler narrows the
    /// request to those programmes.
    InSomeProgram(&'static [Role]),
    Admin,
}

impl Need {
    /// Whether `principal` meets the need, `program` being the programme
    /// the request names (if any).
    pub fn allows(self, principal: &Principal, program: Option<&str>) -> bool {
        match self {
            Need::Open | Need::SignedIn => true,
            Need::Admin => principal.is_admin(),
            Need::InProgram(roles) => program.is_some_and(|p| principal.holds(roles, p)),
            Need::InSomeProgram(roles) => principal.programs(roles).is_none_or(|p| !p.is_empty()),
        }
    }
}

/// The principals and the audit log of one deployment, over one pool,
/// and the identity provider whose JWTs it accepts, if any.
#[derive(Clone)]
pub struct Access {
    pub tokens: tokens::TokenStore,
    pub audit: audit::AuditLog,
    pub oidc: Option<std::sync::Arc<oidc::Oidc>>,
}

impl Access {
    /// The access database of the deployment `store` names.
    pub async fn open(store: &crate::cli::StoreArgs) -> Result<Self, AccessError> {
        Self::connect(&database::url(store)?).await
    }

    /// The access database at `url` (SQLite or PostgreSQL).
    pub async fn connect(url: &str) -> Result<Self, AccessError> {
        let pool = database::connect(url).await?;
        Ok(Self {
            tokens: tokens::TokenStore::new(pool.clone()),
            audit: audit::AuditLog::new(pool),
            oidc: None,
        })
    }

    /// Also accepts the JWTs of this identity provider.
    pub fn with_oidc(mut self, oidc: oidc::Oidc) -> Self {
        self.oidc = Some(std::sync::Arc::new(oidc));
        self
    }

    /// The principal a credential (an API token or an OIDC JWT) stands
    /// for, if it may be used now.
    pub async fn authenticate(&self, credential: &str) -> Result<Option<Principal>, AccessError> {
        if credential.starts_with(tokens::PREFIX) {
            return self.tokens.authenticate(credential).await;
        }
        Ok(match &self.oidc {
            Some(oidc) => oidc.authenticate(credential).await,
            None => None,
        })
    }

    /// `principal` as it stands now: a token's principal is looked up
    /// again (revocation holds at once); an OIDC one holds until its JWT
    /// expires.
    pub async fn current(&self, principal: &Principal) -> Result<Option<Principal>, AccessError> {
        let now = Utc::now();
        if principal.name.starts_with(oidc::NAME_PREFIX) {
            return Ok(Some(principal.clone()).filter(|p| p.valid_at(now)));
        }
        Ok(self.tokens.find(&principal.name).await?.filter(|p| p.valid_at(now)))
    }
}
