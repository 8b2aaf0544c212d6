//! A statement's rows, held to the deadline, a cancel request and the
//! row and byte limits while they stream to the client, and audited when
//! they end: the record holds the rows sent. A record that cannot be
//! written ends the statement with an error instead of its completion, so
//! the client's driver reports the query as failed.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::PgWireResult;
use datafusion_postgres::pgwire::messages::data::DataRow;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use utfall_queries::{Limits, QueryError};

use crate::access::AccessError;
use crate::access::audit::{AuditLog, AuditRecord};

use super::cancel::Cancelled;
use super::{error, timed_out, user_cancelled};

/// The audit record a statement's rows are counted into.
pub(super) struct Audited {
    pub log: AuditLog,
    pub record: AuditRecord,
}

impl Audited {
    fn write(mut self, rows: usize, outcome: &str) -> BoxFuture<'static, Result<(), AccessError>> {
        self.record.rows = i64::try_from(rows).ok();
        outcome.clone_into(&mut self.record.outcome);
        async move { self.log.append(&self.record).await }.boxed()
    }

    /// Writes the record in the background: for a statement already
    /// ending with an error, or dropped by a client that went away.
    fn write_later(self, rows: usize, outcome: &str) {
        let write = self.write(rows, outcome);
        tokio::spawn(async move {
            if let Err(e) = write.await {
                tracing::error!(error = %e, "cannot write an audit record of a Postgres wire statement");
            }
        });
    }
}

/// `response` with its rows (if it has any) bounded and audited.
pub(super) fn bound(
    response: Response,
    deadline: Instant,
    cancelled: Cancelled,
    limits: Limits,
    audited: Audited,
    room: Arc<OwnedSemaphorePermit>,
) -> Response {
    let Response::Query(mut query) = response else {
        return response;
    };
    let rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
    query.data_rows = Box::pin(Bounded {
        rows,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        cancelled,
        limits,
        count: 0,
        bytes: 0,
        done: false,
        audited: Some(audited),
        writing: None,
        _room: room,
    });
    Response::Query(query)
}

/// A row stream that ends with an error at the deadline, on a cancel
/// request, or past the row and byte limits.
struct Bounded {
    rows: Pin<Box<dyn Stream<Item = PgWireResult<DataRow>> + Send>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    cancelled: Cancelled,
    limits: Limits,
    count: usize,
    bytes: usize,
    done: bool,
    audited: Option<Audited>,
    /// The audit record being written after the last row.
    writing: Option<BoxFuture<'static, Result<(), AccessError>>>,
    /// The statement's place among those running at once, given back
    /// when its rows have been sent (or the client went away).
    _room: Arc<OwnedSemaphorePermit>,
}

impl Bounded {
    /// Ends the stream with `stop`, auditing it.
    fn stop(
        &mut self,
        stop: datafusion_postgres::pgwire::error::PgWireError,
        outcome: &str,
    ) -> Poll<Option<PgWireResult<DataRow>>> {
        self.done = true;
        if let Some(audited) = self.audited.take() {
            audited.write_later(self.count, outcome);
        }
        Poll::Ready(Some(Err(stop)))
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if let Some(audited) = self.audited.take() {
            audited.write_later(self.count, "client went away");
        }
    }
}

impl Stream for Bounded {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(writing) = self.writing.as_mut() {
            let written = std::task::ready!(writing.poll_unpin(cx));
            self.writing = None;
            self.done = true;
            return match written {
                Ok(()) => Poll::Ready(None),
                Err(e) => {
                    tracing::error!(error = %e, "cannot write an audit record of a Postgres wire statement");
                    // system_error: the statement fails rather than go unrecorded.
                    Poll::Ready(Some(Err(error(
                        "58000",
                        "the audit log cannot be written; the statement is withdrawn".into(),
                    ))))
                }
            };
        }
        if self.done {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return self.stop(timed_out(), "57014");
        }
        if self.cancelled.poll_unpin(cx).is_ready() {
            return self.stop(user_cancelled(), "57014");
        }
        let next = self.rows.poll_next_unpin(cx);
        match &next {
            Poll::Ready(None) => {
                let count = self.count;
                if let Some(audited) = self.audited.take() {
                    self.writing = Some(audited.write(count, "ok"));
                    return self.poll_next(cx);
                }
                self.done = true;
            }
            Poll::Ready(Some(Err(_))) => {
                self.done = true;
                if let Some(audited) = self.audited.take() {
                    audited.write_later(self.count, "error");
                }
            }
            _ => {}
        }
        if let Poll::Ready(Some(Ok(row))) = &next {
            self.count += 1;
            self.bytes += row.data.len();
            let too_large = if self.count > self.limits.max_rows {
                Some(format!("more than {} rows", self.limits.max_rows))
            } else if self.bytes > self.limits.max_bytes {
                Some(format!("more than {} MiB", self.limits.max_bytes >> 20))
            } else {
                None
            };
            if let Some(what) = too_large {
                let message = QueryError::TooLarge(what).to_string();
                // program_limit_exceeded
                return self.stop(error("54000", message), "54000");
            }
        }
        next
    }
}
