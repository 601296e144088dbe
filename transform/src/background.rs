//! The batches being written while the consumer loop reads on. One write at a time, in the
//! order the batches were cut (so every table sees a partition's batches in order), the others
//! queued, at most one per partition; meanwhile the loop receives and parses the next records
//! on the other core. What a finished write did (its alerts, the offsets to commit to Kafka)
//! is handed back to the loop.
//!
//! Writes run on a runtime of their own: encoding Parquet and DataFusion's aggregate queries
//! hold a worker for long stretches, and on the loop's runtime they left the loop no worker
//! to receive on (tokio has no priorities). On their own threads the OS shares the cores.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::error::{Error, Result};
use crate::http::Health;
use crate::metrics as m;
use crate::row::Row;
use crate::writer::{BatchWriter, Committed, Prepared, Span};

/// A batch the warehouse now holds, and what writing it did.
pub struct Written {
    pub span: Span,
    pub rows: usize,
    pub trigger: &'static str,
    pub started: Instant,
    pub committed: Committed,
}

/// A batch cut and waiting for its write.
struct Job {
    span: Span,
    rows: Vec<Row>,
    trigger: &'static str,
}

pub struct Background {
    /// The writes' own runtime (see the module's doc).
    runtime: Option<tokio::runtime::Runtime>,
    /// None while a batch is being written (the task owns it).
    writer: Option<BatchWriter>,
    writing: Option<JoinHandle<(BatchWriter, Result<Written>)>>,
    queued: VecDeque<Job>,
    /// Revoked partitions whose open sessions the writer may forget at its next write.
    revoked: Vec<i32>,
    health: Health,
    give_up: CancellationToken,
}

impl Background {
    pub fn new(writer: BatchWriter, health: Health, give_up: CancellationToken) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("connaudit-write")
            .enable_all()
            .build()
            .map_err(|e| Error::Stopped(format!("starting the writers' runtime: {e}")))?;
        let queued = VecDeque::new();
        let (writer, writing, revoked) = (Some(writer), None, Vec::new());
        Ok(Background { runtime: Some(runtime), writer, writing, queued, revoked, health, give_up })
    }

    /// A batch is being written or waits for its turn.
    pub fn busy(&self) -> bool {
        self.writing.is_some() || !self.queued.is_empty()
    }

    /// Whether `partition` has a batch waiting for its turn.
    pub fn has_queued(&self, partition: i32) -> bool {
        self.queued.iter().any(|j| j.span.partition == partition)
    }

    /// Queues a batch; it is written after the ones before it.
    pub fn push(&mut self, span: Span, rows: Vec<Row>, trigger: &'static str) {
        self.queued.push_back(Job { span, rows, trigger });
    }

    /// Forgets the waiting batches of a revoked partition (its next owner reads them again).
    pub fn drop_queued(&mut self, partition: i32) {
        self.queued.retain(|j| j.span.partition != partition);
        self.revoked.push(partition);
    }

    /// Collects the write in flight when it is done (or, with `wait`, once it is), then starts
    /// the next queued batch if none is in flight. What the collected write did, if any.
    pub async fn advance(&mut self, wait: bool) -> Result<Option<Written>> {
        let finished = self.writing.as_ref().is_some_and(|w| wait || w.is_finished());
        let written = if finished { self.settle().await? } else { None };
        if self.writing.is_none() {
            if let Some(Job { span, rows, trigger }) = self.queued.pop_front() {
                self.start(span, rows, trigger);
            }
        }
        Ok(written)
    }

    /// Waits for the batch being written, if any, and says what it did; starts nothing.
    pub async fn settle(&mut self) -> Result<Option<Written>> {
        let Some(task) = self.writing.take() else { return Ok(None) };
        let (writer, written) = task.await.map_err(|e| Error::Stopped(format!("writing a batch: {e}")))?;
        self.writer = Some(writer);
        written.map(Some)
    }

    /// The writer, between writes.
    pub fn writer(&mut self) -> &mut BatchWriter {
        self.writer.as_mut().expect("settle() before using the writer")
    }

    /// Starts writing a batch in the background; nothing may be in flight.
    fn start(&mut self, span: Span, rows: Vec<Row>, trigger: &'static str) {
        let mut writer = self.writer.take().expect("settle() before starting a write");
        // Read back again if the partition returns: forgetting is always safe.
        for p in self.revoked.drain(..) {
            writer.forget(p);
        }
        let (health, give_up) = (self.health.clone(), self.give_up.clone());
        let started = Instant::now();
        let count = rows.len();
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        self.writing = Some(runtime.spawn(async move {
            let written = async {
                let mut backoff = Duration::from_millis(200);
                while let Err(e) = writer.read_sessions(span, &rows).await {
                    pause("read a partition's open sessions", e, &mut backoff, &health, &give_up).await?;
                }
                let prepared = writer.prepare(span, rows).await?;
                let committed = commit(&mut writer, &prepared, &health, &give_up).await?;
                Ok(Written { span, rows: count, trigger, started, committed })
            }
            .await;
            (writer, written)
        }));
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which an async context may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Commits a batch, retrying with backoff and reporting not-ready meanwhile, until it works or
/// the shutdown deadline passes. Each attempt re-reads every table's position.
async fn commit(
    writer: &mut BatchWriter,
    p: &Prepared,
    health: &Health,
    give_up: &CancellationToken,
) -> Result<Committed> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match writer.commit(p).await {
            Ok(done) => {
                health.set_warehouse(true);
                return Ok(done);
            }
            Err(e) => pause("commit a batch", e, &mut backoff, health, give_up).await?,
        }
    }
}

/// Reports a failed warehouse operation and waits before the next attempt; gives up at the
/// shutdown deadline.
pub async fn pause(
    what: &str,
    e: Error,
    backoff: &mut Duration,
    health: &Health,
    give_up: &CancellationToken,
) -> Result<()> {
    health.set_warehouse(false);
    metrics::counter!(m::WAREHOUSE_ERRORS).increment(1);
    warn!(error = %e, retry_in = ?backoff, "Cannot {what}; retrying. Nothing is committed meanwhile.");
    tokio::select! {
        _ = give_up.cancelled() => return Err(Error::GaveUp(e.to_string())),
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(30));
    Ok(())
}
