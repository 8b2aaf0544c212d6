//! A statement's rows, held to the deadline, a cancel request and the
//! row and byte limits while they stream to the client.

use std::pin::Pin;
use std::task::{Context, Poll};

use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::PgWireResult;
use datafusion_postgres::pgwire::messages::data::DataRow;
use futures::{FutureExt, Stream, StreamExt};
use tokio::time::Instant;
use utfall_queries::{Limits, QueryError};

use super::cancel::Cancelled;
use super::{error, timed_out, user_cancelled};

/// `response` with its rows (if it has any) bounded.
pub(super) fn bound(response: Response, deadline: Instant, cancelled: Cancelled, limits: Limits) -> Response {
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
}

impl Stream for Bounded {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let stop = if self.deadline.as_mut().poll(cx).is_ready() {
            Some(timed_out())
        } else if self.cancelled.poll_unpin(cx).is_ready() {
            Some(user_cancelled())
        } else {
            None
        };
        if let Some(stop) = stop {
            self.done = true;
            return Poll::Ready(Some(Err(stop)));
        }
        let next = self.rows.poll_next_unpin(cx);
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
                self.done = true;
                let message = QueryError::TooLarge(what).to_string();
                // program_limit_exceeded
                return Poll::Ready(Some(Err(error("54000", message))));
            }
        }
        next
    }
}
