//! Keeping projections current: catch up from the checkpoint, then fold each
//! new event as the log delivers it. Errors (a database or log outage) are
//! logged and retried from the checkpoint, which the projection keeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use utfall_events::{EventLog, StoredEvent};

use crate::{Lake, ProjectionError, ReadModels};

/// Something the log is folded into, keeping its own checkpoint.
#[async_trait]
pub trait Projection: Send + Sync {
    fn name(&self) -> &'static str;
    /// The last log position folded in.
    async fn position(&self) -> Result<u64, ProjectionError>;
    /// Folds a page of events, exactly once each.
    async fn apply(&self, events: Vec<StoredEvent>) -> Result<(), ProjectionError>;
}

#[async_trait]
impl Projection for ReadModels {
    fn name(&self) -> &'static str {
        "read_models"
    }

    async fn position(&self) -> Result<u64, ProjectionError> {
        ReadModels::position(self).await
    }

    async fn apply(&self, events: Vec<StoredEvent>) -> Result<(), ProjectionError> {
        ReadModels::apply(self, &events).await
    }
}

#[async_trait]
impl Projection for Arc<Lake> {
    fn name(&self) -> &'static str {
        "lake"
    }

    async fn position(&self) -> Result<u64, ProjectionError> {
        Lake::position(self)
    }

    async fn apply(&self, events: Vec<StoredEvent>) -> Result<(), ProjectionError> {
        let lake = self.clone();
        tokio::task::spawn_blocking(move || lake.append(&events))
            .await
            .map_err(|e| ProjectionError::Lake(format!("writer task failed: {e}")))?
    }
}

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

/// Folds everything the log holds beyond the projection's position, `page`
/// events at a time; returns the new position.
pub async fn catch_up<P: Projection + ?Sized>(
    log: &dyn EventLog,
    projection: &P,
    page: usize,
) -> Result<u64, ProjectionError> {
    let mut position = projection.position().await?;
    loop {
        let events = log.read(position, page).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(position);
        };
        projection.apply(events).await?;
        position = last;
    }
}

/// Follows the log for ever, folding into `projection`.
pub async fn follow<P: Projection>(log: Arc<dyn EventLog>, projection: Arc<P>, status: Arc<ProjectorStatus>) {
    loop {
        if let Err(e) = follow_once(log.as_ref(), projection.as_ref(), &status).await {
            status.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(projection = projection.name(), error = %e, "projector stopped; starting again from its checkpoint");
            tokio::time::sleep(RETRY).await;
        }
    }
}

async fn follow_once<P: Projection>(
    log: &dyn EventLog,
    projection: &P,
    status: &ProjectorStatus,
) -> Result<(), ProjectionError> {
    let mut position = projection.position().await?;
    status.position.store(position, Ordering::Relaxed);
    let mut tail = log.tail(position).await?.ready_chunks(PAGE);
    while let Some(chunk) = tail.next().await {
        let started = Instant::now();
        let events = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
        let count = events.len() as u64;
        let last = events.last().map(|e| e.position);
        projection.apply(events).await?;
        if let Some(last) = last {
            position = last;
        }
        status.position.store(position, Ordering::Relaxed);
        status.applied.fetch_add(count, Ordering::Relaxed);
        tracing::debug!(projection = projection.name(), events = count, position, elapsed = ?started.elapsed(), "folded");
    }
    Err(ProjectionError::Log(utfall_events::LogError::Unavailable(
        "the log's tail ended".into(),
    )))
}
