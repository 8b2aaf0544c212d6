//! Keeping projections current: catch up from the checkpoint, then fold each
//! new event as the log delivers it. Errors (a database or log outage) are
//! logged and retried from the checkpoint, which the projection keeps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde::Serialize;
use utfall_events::{EventLog, LogError, StoredEvent};

use crate::read_models::checkpoint;
use crate::{Lake, ProjectionError, ReadModels};

/// Something the log is folded into, keeping its own checkpoint.
#[async_trait]
pub trait Projection: Send + Sync {
    fn name(&self) -> &'static str;
    /// The last log position folded in.
    async fn position(&self) -> Result<u64, ProjectionError>;
    /// Folds a page of events read from the log after position `after`,
    /// exactly once each.
    async fn apply(&self, after: u64, events: Vec<StoredEvent>) -> Result<(), ProjectionError>;
    /// Events folded per page while the log holds a backlog.
    fn backlog_page(&self) -> usize {
        PAGE
    }
}

#[async_trait]
impl Projection for ReadModels {
    fn name(&self) -> &'static str {
        "read_models"
    }

    async fn position(&self) -> Result<u64, ProjectionError> {
        ReadModels::position(self).await
    }

    async fn apply(&self, after: u64, events: Vec<StoredEvent>) -> Result<(), ProjectionError> {
        ReadModels::apply(self, after, &events).await
    }

    fn backlog_page(&self) -> usize {
        5 * PAGE
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

    async fn apply(&self, after: u64, events: Vec<StoredEvent>) -> Result<(), ProjectionError> {
        let lake = self.clone();
        tokio::task::spawn_blocking(move || lake.append(after, &events))
            .await
            .map_err(|e| ProjectionError::Lake(format!("writer task failed: {e}")))?
    }

    /// Every page is a commit of a file per table, so a backlog goes in
    /// large ones (a 10 M-event log in 1000-event pages took well over an
    /// hour; in pages of 50 000, minutes).
    fn backlog_page(&self) -> usize {
        50 * PAGE
    }
}

/// Events folded per transaction as the log's tail delivers them.
const PAGE: usize = 1000;
/// Pause before starting again after an error.
const RETRY: Duration = Duration::from_secs(1);

/// Pause before trying again when the log holds an unreadable event.
const STALLED_RETRY: Duration = Duration::from_secs(2);

/// Where a running projector stands, for `/v1/projections` and `/metrics`.
#[derive(Debug, Default)]
pub struct ProjectorStatus {
    position: AtomicU64,
    applied: AtomicU64,
    errors: AtomicU64,
    stalled: Mutex<Option<Stall>>,
    /// The projector runs in other processes; this status follows their
    /// checkpoints (see [`observe`]).
    elsewhere: bool,
    /// Where each programme with a projector of its own stands.
    programmes: Mutex<HashMap<String, u64>>,
}

/// Why a projector stands still: the log holds an event it cannot read.
/// It waits until an operator quarantines that position
/// (`utfall quarantine --position N --reason …`), then goes on past it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stall {
    pub position: u64,
    /// What is wrong with the stored payload (for the operator's log, not for clients).
    pub reason: String,
}

impl ProjectorStatus {
    /// The status of read models that other processes fold.
    pub fn elsewhere() -> Self {
        Self {
            elsewhere: true,
            ..Self::default()
        }
    }

    /// Whether the projector runs in other processes.
    pub fn is_elsewhere(&self) -> bool {
        self.elsewhere
    }

    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }

    /// Where `program`'s read models stand: its own projector's checkpoint
    /// when it has one, else [`Self::position`]. A programme's figures move
    /// on with its own projector, not with the slowest one.
    pub fn position_of(&self, program: &str) -> u64 {
        let own = self.programmes.lock().ok().and_then(|p| p.get(program).copied());
        own.unwrap_or_else(|| self.position())
    }

    /// Events folded since the process started.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The unreadable event the projector is stopped at, if any.
    pub fn stalled(&self) -> Option<Stall> {
        self.stalled.lock().ok().and_then(|s| s.clone())
    }

    /// Records a stall; true when it is new.
    fn stall(&self, stall: Stall) -> bool {
        self.stalled
            .lock()
            .map(|mut s| s.replace(stall.clone()) != Some(stall))
            .unwrap_or(false)
    }

    fn clear_stall(&self) {
        if let Ok(mut s) = self.stalled.lock() {
            *s = None;
        }
    }
}

/// How often [`observe`] reads the checkpoints.
const OBSERVE: Duration = Duration::from_millis(200);

/// Follows, into `status`, the read models that `utfall project --programs`
/// processes fold, so that the server knows how fresh they are: the lowest
/// of the programmes' own checkpoints (the every-programme projector's when
/// there are none). Programmes no such process folds do not hold it back.
pub async fn observe(models: Arc<ReadModels>, status: Arc<ProjectorStatus>) {
    loop {
        match models.checkpoints().await {
            Ok(checkpoints) => {
                let programmes: HashMap<String, u64> = checkpoints
                    .iter()
                    .filter_map(|(name, position)| Some((checkpoint::programme(name)?.to_string(), *position)))
                    .collect();
                let lowest = programmes
                    .values()
                    .min()
                    .or_else(|| checkpoints.iter().map(|(_, position)| position).min());
                status.position.store(lowest.copied().unwrap_or(0), Ordering::Relaxed);
                if let Ok(mut held) = status.programmes.lock() {
                    *held = programmes;
                }
            }
            Err(e) => {
                status.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot read the read models' checkpoints");
            }
        }
        tokio::time::sleep(OBSERVE).await;
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
        projection.apply(position, events).await?;
        position = last;
    }
}

/// Follows the log for ever, folding into `projection`. An unreadable
/// event stops it, visibly (see [`Stall`]), until it is quarantined.
pub async fn follow<P: Projection>(log: Arc<dyn EventLog>, projection: Arc<P>, status: Arc<ProjectorStatus>) {
    let name = projection.name();
    loop {
        match follow_once(log.as_ref(), projection.as_ref(), &status).await {
            Err(ProjectionError::Log(LogError::Unreadable { position, reason })) => {
                if status.stall(Stall {
                    position,
                    reason: reason.clone(),
                }) {
                    tracing::error!(
                        projection = name,
                        position,
                        %reason,
                        "the log holds an unreadable event; the projector waits until an operator \
                         quarantines it (utfall quarantine --position {position} --reason …)"
                    );
                }
                tokio::time::sleep(STALLED_RETRY).await;
            }
            Err(e) => {
                status.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(projection = name, error = %e, "projector stopped; starting again from its checkpoint");
                tokio::time::sleep(RETRY).await;
            }
            Ok(()) => {}
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
    if let Some(stall) = status.stalled()
        && log.quarantined().await?.iter().any(|q| q.position == stall.position)
    {
        tracing::info!(
            projection = projection.name(),
            position = stall.position,
            "going on past the quarantined event"
        );
        status.clear_stall();
    }
    let backlog_page = projection.backlog_page();
    loop {
        let events = log.read(position, backlog_page).await?;
        let more = events.len() == backlog_page;
        position = fold(projection, status, position, events).await?;
        if !more {
            break;
        }
    }
    let mut tail = log.tail(position).await?.ready_chunks(PAGE);
    while let Some(chunk) = tail.next().await {
        let events = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
        position = fold(projection, status, position, events).await?;
    }
    Err(ProjectionError::Log(utfall_events::LogError::Unavailable(
        "the log's tail ended".into(),
    )))
}

/// Folds `events`, read after `position`, and says so in `status`; returns
/// the new position.
async fn fold<P: Projection>(
    projection: &P,
    status: &ProjectorStatus,
    position: u64,
    events: Vec<StoredEvent>,
) -> Result<u64, ProjectionError> {
    let started = Instant::now();
    let count = events.len() as u64;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(position);
    };
    projection.apply(position, events).await?;
    status.position.store(last, Ordering::Relaxed);
    status.applied.fetch_add(count, Ordering::Relaxed);
    status.clear_stall();
    tracing::debug!(projection = projection.name(), events = count, position = last, elapsed = ?started.elapsed(), "folded");
    Ok(last)
}

/// Whether an event at `next`, read after position `after`, cannot follow
/// `checkpoint`. Positions are contiguous but for quarantined ones, which
/// readers skip: a jump is fine when the page was read from the checkpoint.
/// Otherwise the checkpoint moved under the projector (a rebuild swapped
/// the tables in), and the caller must read again from it.
pub(crate) fn is_gap(checkpoint: u64, after: u64, next: u64) -> bool {
    next != checkpoint + 1 && after != checkpoint
}
