//! The rows of a statement on their way to the client: stopped at the statement's deadline or
//! the client's cancel request (dropping the stream stops DataFusion's work), and counted with
//! their outcome and latency when the last row is sent, an error ends them, or the client goes
//! away.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion_postgres::pgwire::api::results::SendableRowStream;
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::data::DataRow;
use futures::{FutureExt, Stream, StreamExt};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::metrics as m;

/// Counts one statement with its latency.
pub fn record(started: Instant, outcome: &'static str) {
    ::metrics::counter!(m::QUERIES, "outcome" => outcome).increment(1);
    ::metrics::histogram!(m::QUERY_SECONDS).record(started.elapsed().as_secs_f64());
}

fn cancel_error() -> PgWireError {
    crate::error::user_error("57014", "canceling statement due to user request".into())
}

pub fn timeout_error() -> PgWireError {
    crate::error::user_error(
        "57014",
        "canceling statement due to statement timeout (connaudit serve --query-timeout, or the session's \
         statement_timeout); narrow the time range or raise the limit"
            .into(),
    )
}

/// Statements being answered now, their rows included; a drain waits for it to reach 0.
#[derive(Debug, Clone, Default)]
pub struct Running(Arc<AtomicUsize>);

impl Running {
    pub fn enter(&self) -> Entered {
        self.0.fetch_add(1, Ordering::SeqCst);
        Entered(self.0.clone())
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Entered(Arc<AtomicUsize>);

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Tracked {
    inner: SendableRowStream,
    started: Instant,
    deadline_at: Instant,
    deadline: Pin<Box<Sleep>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    outcome: Option<&'static str>,
    _running: Entered,
}

impl Tracked {
    pub fn new(
        inner: SendableRowStream,
        started: Instant,
        deadline: Instant,
        cancelled: CancellationToken,
        running: Entered,
    ) -> Self {
        Tracked {
            inner,
            started,
            deadline_at: deadline,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            cancelled: Box::pin(cancelled.cancelled_owned()),
            outcome: None,
            _running: running,
        }
    }

    fn finish(&mut self, outcome: &'static str) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
            record(self.started, outcome);
            // Stops the query's work now rather than when the response is dropped.
            self.inner = Box::pin(futures::stream::empty());
        }
    }
}

impl Stream for Tracked {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.outcome.is_some() {
            return Poll::Ready(None);
        }
        // The clock, not only the timer: a stream whose rows are always ready never lets the
        // timer driver run on this thread.
        if Instant::now() >= self.deadline_at {
            self.finish("timeout");
            return Poll::Ready(Some(Err(timeout_error())));
        }
        if self.cancelled.poll_unpin(cx).is_ready() {
            self.finish("cancelled");
            return Poll::Ready(Some(Err(cancel_error())));
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(row))) => Poll::Ready(Some(Ok(row))),
            Poll::Ready(Some(Err(e))) => {
                self.finish("error");
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.finish("ok");
                Poll::Ready(None)
            }
            Poll::Pending => match self.deadline.poll_unpin(cx) {
                Poll::Ready(()) => {
                    self.finish("timeout");
                    Poll::Ready(Some(Err(timeout_error())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // The client went away, or a statement before this one failed.
        self.finish("dropped");
    }
}
