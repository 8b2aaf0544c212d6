//! Retention: a programme's rule (`retention_set`) makes each participant
//! due for erasure a set number of months after their exit (see
//! `utfall_projections::read_models::retention`). `utfall erase --due`
//! erases those due now; `utfall serve` does so once a day. Each sweep
//! works out again who is due from the read models, so a restart (or a
//! crash part-way, whose erasures the next start finishes) loses nothing.

use std::sync::Arc;
use std::time::Duration;

use utfall_events::names::Code;
use utfall_events::{EventLog, ProgramName, Pseudonym};
use utfall_projections::ReadModels;

use crate::access::Access;
use crate::erasure::{Erasure, erase_audited};

/// The audit log's name for the server's daily sweep.
const SWEEPER: &str = "utfall:retention";

/// Erases everyone due today (of `program`, or of every programme), as
/// `principal`; returns the erasures.
pub async fn erase_due(
    log: &dyn EventLog,
    models: &ReadModels,
    access: &Access,
    principal: &str,
    program: Option<&str>,
) -> anyhow::Result<Vec<Erasure>> {
    let today = chrono::Utc::now().date_naive();
    let reason = Code::new("retention").map_err(anyhow::Error::msg)?;
    let mut erased = Vec::new();
    for due in models.due_for_erasure(today, program).await? {
        let (Ok(program), Ok(participant)) = (ProgramName::new(due.program), Pseudonym::new(due.participant)) else {
            continue;
        };
        erased.push(erase_audited(log, access, principal, program, participant, reason.clone()).await?);
    }
    Ok(erased)
}

/// The server's sweep: once the read models hold what the log held at
/// start, then every `interval`. A failed sweep is logged and tried again
/// at the next.
pub async fn sweep(log: Arc<dyn EventLog>, models: Arc<ReadModels>, access: Access, interval: Duration) {
    if let Ok(head) = log.head().await {
        while models.position().await.is_ok_and(|p| p < head) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    loop {
        match erase_due(log.as_ref(), &models, &access, SWEEPER, None).await {
            Ok(erased) if !erased.is_empty() => tracing::info!(erased = erased.len(), "retention: erased those due"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "retention sweep failed; trying again at the next"),
        }
        tokio::time::sleep(interval).await;
    }
}
