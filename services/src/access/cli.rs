//! `utfall token …` and `utfall audit`: operator commands on the access
//! database of a deployment whose files the operator already holds.

use chrono::{DateTime, SecondsFormat, Utc};

use super::audit::{AuditQuery, AuditRecord};
use super::{Access, Principal};
use crate::cli::{AuditArgs, TokenAction, TokenArgs};

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `admin`, `evaluator:optimist,sja-meg`: a principal's grants on one line.
fn grants(p: &Principal) -> String {
    let mut by_role: Vec<(String, Vec<&str>)> = Vec::new();
    for g in &p.grants {
        let program = g.program.as_ref().map_or("*", |p| p.as_str());
        match by_role.iter_mut().find(|(r, _)| r == g.role.as_str()) {
            Some((_, programs)) => programs.push(program),
            None => by_role.push((g.role.as_str().into(), vec![program])),
        }
    }
    by_role
        .iter()
        .map(|(role, programs)| format!("{role}:{}", programs.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Records a grant change made from the command line.
async fn audited(access: &Access, action: &str, name: &str, detail: String) -> anyhow::Result<()> {
    let mut record = AuditRecord::new(None, action, name, "ok");
    record.principal = Some(format!("operator:{}", whoami()));
    record.detail = Some(detail);
    access.audit.append(&record).await?;
    Ok(())
}

/// The operator running a command, for the audit log.
pub fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    match args.action {
        TokenAction::Create {
            store,
            name,
            role,
            programs,
            expires,
        } => {
            let access = Access::open(&store).await?;
            let expires_at = expires.map(|d| Utc::now() + d);
            let token = access.tokens.create(&name, role, &programs, expires_at).await?;
            let shown: Vec<&str> = programs.iter().map(|p| p.as_str()).collect();
            audited(
                &access,
                "token_create",
                &name,
                format!("{} {}", role.as_str(), shown.join(",")),
            )
            .await?;
            println!("{token}");
            eprintln!("token for {name} ({}): shown once, keep it safe", role.as_str());
        }
        TokenAction::Grant {
            store,
            name,
            role,
            programs,
        } => {
            let access = Access::open(&store).await?;
            access.tokens.grant(&name, role, &programs).await?;
            let shown: Vec<&str> = programs.iter().map(|p| p.as_str()).collect();
            audited(
                &access,
                "grant",
                &name,
                format!("{} {}", role.as_str(), shown.join(",")),
            )
            .await?;
            println!("granted {name} {} {}", role.as_str(), shown.join(","));
        }
        TokenAction::List { store } => {
            for p in Access::open(&store).await?.tokens.list().await? {
                println!(
                    "{}\t{}\texpires {}\trevoked {}",
                    p.name,
                    grants(&p),
                    when(p.expires_at),
                    when(p.revoked_at)
                );
            }
        }
        TokenAction::Revoke { store, name } => {
            let access = Access::open(&store).await?;
            access.tokens.revoke(&name).await?;
            audited(&access, "token_revoke", &name, String::new()).await?;
            println!("revoked {name}");
        }
    }
    Ok(())
}

/// `utfall audit`: the audit log as tab-separated lines or JSON.
pub async fn run_audit(args: AuditArgs) -> anyhow::Result<()> {
    let access = Access::open(&args.store).await?;
    let query = AuditQuery {
        since: args.since,
        principal: args.principal,
        limit: args.limit,
    };
    let records = access.audit.read(&query).await?;
    if args.json {
        for record in &records {
            println!("{}", serde_json::to_string(record)?);
        }
        return Ok(());
    }
    for r in &records {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\trows {}\t{}",
            r.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            r.principal.as_deref().unwrap_or("-"),
            r.action,
            r.target,
            r.programs.as_deref().unwrap_or("-"),
            r.outcome,
            r.rows.map_or("-".into(), |n| n.to_string()),
            r.detail.as_deref().unwrap_or("").replace(['\n', '\t'], " "),
        );
    }
    Ok(())
}
