//! Who may do what. DESIGN's roles are granted per programme (admin is
//! deployment-wide); a principal is a named credential holding one role
//! over a set of programmes. This module keeps the principals and their API
//! tokens; enforcement on every way in comes with the rest of issue 11.

pub mod tokens;

use serde::Serialize;

/// DESIGN's roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
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
        [
            Role::Admin,
            Role::Registrar,
            Role::Viewer,
            Role::Evaluator,
            Role::Funder,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// `utfall token …`.
pub async fn run(args: crate::cli::TokenArgs) -> anyhow::Result<()> {
    use crate::cli::TokenAction;
    let open = tokens::TokenStore::open;
    match args.action {
        TokenAction::Create {
            store,
            name,
            role,
            programs,
            expires,
        } => {
            let expires_at = expires.map(|d| chrono::Utc::now() + d);
            let token = open(&store).await?.create(&name, role, &programs, expires_at).await?;
            println!("{token}");
            eprintln!("token for {name} ({}): shown once, keep it safe", role.as_str());
        }
        TokenAction::List { store } => {
            for p in open(&store).await?.list().await? {
                let programs: Vec<&str> = p.programs.iter().map(|p| p.as_str()).collect();
                let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or("-".into(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                };
                println!(
                    "{}\t{}\t{}\texpires {}\trevoked {}",
                    p.name,
                    p.role.as_str(),
                    if programs.is_empty() {
                        "*".into()
                    } else {
                        programs.join(",")
                    },
                    when(p.expires_at),
                    when(p.revoked_at)
                );
            }
        }
        TokenAction::Revoke { store, name } => {
            open(&store).await?.revoke(&name).await?;
            println!("revoked {name}");
        }
    }
    Ok(())
}
