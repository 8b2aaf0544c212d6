//! Keeping read models current: catch up from the checkpoint, then fold each
//! new event as the log delivers it. Errors (a database or log outage) are
//! logged and retried from the checkpoint, which the database keeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use utfall_events::EventLog;

use crate::{ProjectionError, ReadModels};

/// Events folded per transaction when the log has many waiting.
const PAGE: usize = 1000;
/// Pause before starting again after an error.
const RETRY: Duration = Duration::from_secs(1);

/// Where a running projector stands, for `/v1/projections` and `/metrics`.
#[derive(Debug, Default)]
pub struct ProjectorStatus {
    position: AtomicU64,
    applied: AtomicU64,
    errors: AtomicU64,
}

impl ProjectorStatus {
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }

    /// Events folded since the process started.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// Follows the log for ever, folding into `models`.
pub async fn follow(log: Arc<dyn EventLog>, models: Arc<ReadModels>, status: Arc<ProjectorStatus>) {
    loop {
        if let Err(e) = follow_once(log.as_ref(), &models, &status).await {
            status.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "read-model projector stopped; starting again from its checkpoint");
            tokio::time::sleep(RETRY).await;
        }
    }
}

async fn follow_once(log: &dyn EventLog, models: &ReadModels, status: &ProjectorStatus) -> Result<(), ProjectionError> {
    let mut position = models.position().await?;
    status.position.store(position, Ordering::Relaxed);
    let mut tail = log.tail(position).await?.ready_chunks(PAGE);
    while let Some(chunk) = tail.next().await {
        let started = Instant::now();
        let events = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
        models.apply(&events).await?;
        if let Some(last) = events.last() {
            position = last.position;
        }
        status.position.store(position, Ordering::Relaxed);
        status.applied.fetch_add(events.len() as u64, Ordering::Relaxed);
        tracing::debug!(events = events.len(), position, elapsed = ?started.elapsed(), "folded");
    }
    Err(ProjectionError::Log(utfall_events::LogError::Unavailable(
        "the log's tail ended".into(),
    )))
}
