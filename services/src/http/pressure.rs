//! Back-pressure: at most so many event batches are being appended, and
//! so many SQL queries run, at once. One more is answered 503 with
//! `Retry-After` at once, rather than queued where it would hold memory
//! and a connection while the server falls further behind; clients retry
//! (a batch with the same event ids is stored once).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

#[derive(Clone, Debug)]
pub struct Pressure {
    ingest: Arc<Semaphore>,
    queries: Arc<Semaphore>,
}

impl Pressure {
    pub fn new(ingest_batches: usize, queries: usize) -> Self {
        Self {
            ingest: Arc::new(Semaphore::new(ingest_batches)),
            queries: Arc::new(Semaphore::new(queries)),
        }
    }

    /// Room for one more batch to append, held until it is stored.
    pub fn ingest(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.ingest
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy("too many event batches are being stored at once; retry shortly".into()))
    }

    /// Room for one more SQL query, held until it has answered.
    pub fn query(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.queries
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy("too many SQL queries are running at once; retry shortly".into()))
    }
}
