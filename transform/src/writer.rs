//! Turns one partition's batch into warehouse files: `events` by hour, the aggregate tables
//! and alerts by date, all named after the batch's offsets; then records it as done.

use arrow::array::{AsArray, RecordBatch};
use bytes::Bytes;
use tracing::debug;

use crate::alerts::{self, Alert, AlertState};
use crate::analytics::Analytics;
use crate::error::Result;
use crate::parquet_out::{aggregate_props, encode, events_props, split};
use crate::row::Row;
use crate::state::{self, batch_file, PartitionState};
use crate::warehouse::Warehouse;
use crate::{events, metrics as m};

/// A batch's offsets: `[first, last]` of `partition`, after `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    /// The partition's last completely written offset before this batch.
    pub done: i64,
}

/// Files ready to write, and the alerts they contain.
pub struct Prepared {
    pub span: Span,
    pub files: Vec<(String, &'static str, Bytes)>,
    pub alerts: Vec<Alert>,
}

pub struct BatchWriter {
    pub warehouse: Warehouse,
    pub topic: String,
    analytics: Analytics,
    alerts: AlertState,
}

impl BatchWriter {
    pub fn new(warehouse: Warehouse, topic: String, alerts: AlertState) -> Self {
        BatchWriter { warehouse, topic, analytics: Analytics::default(), alerts }
    }

    /// Encodes everything in memory; nothing is written yet, so a failed write can be retried.
    pub async fn prepare(&mut self, span: Span, mut rows: Vec<Row>) -> Result<Prepared> {
        let name = batch_file(&self.topic, span.partition, span.first, span.last);
        let mut files = Vec::new();
        if rows.is_empty() {
            return Ok(Prepared { span, files, alerts: Vec::new() });
        }
        rows.sort_unstable_by(|a, b| (&a.clientid, a.ts, a.kafka_offset).cmp(&(&b.clientid, b.ts, b.kafka_offset)));
        let batch = events::to_batch(&rows)?;
        drop(rows);
        for (part, batches) in split(std::slice::from_ref(&batch), "ts", false)? {
            let props = events_props(distinct_clients(&batches));
            files.push((format!("events/{part}/{name}"), "events", encode(&batches, props)?));
        }
        let computed = self.analytics.compute(batch).await?;
        for (table, batches) in &computed.tables {
            for (part, batches) in split(batches, "minute", false)? {
                files.push((format!("{table}/{part}/{name}"), *table, encode(&batches, aggregate_props())?));
            }
        }
        let region_failures =
            computed.tables.iter().find(|(t, _)| *t == "region_failures").map(|(_, b)| b.as_slice()).unwrap_or(&[]);
        let raised = self.alerts.update(region_failures, &computed.takeovers);
        if !raised.is_empty() {
            let batch = alerts::to_batch(&raised)?;
            for (part, batches) in split(std::slice::from_ref(&batch), "minute", false)? {
                files.push((format!("alerts/{part}/{name}"), "alerts", encode(&batches, aggregate_props())?));
            }
        }
        Ok(Prepared { span, files, alerts: raised })
    }

    /// Writes the files between a `pending` and a `done` state record. Safe to call again
    /// after a failure: every file gets the same name and content.
    pub async fn write(&self, p: &Prepared) -> Result<()> {
        let Span { partition, first, last, done } = p.span;
        let wh = &self.warehouse;
        if !p.files.is_empty() {
            state::save(wh, &self.topic, partition, PartitionState { done, pending: Some((first, last)) }).await?;
        }
        for (path, table, bytes) in &p.files {
            wh.put(path, bytes.clone()).await?;
            metrics::counter!(m::FILES, "table" => *table).increment(1);
            metrics::counter!(m::BYTES, "table" => *table).increment(bytes.len() as u64);
            debug!(path, bytes = bytes.len(), "Wrote a file.");
        }
        state::save(wh, &self.topic, partition, PartitionState { done: last, pending: None }).await
    }
}

/// Distinct client ids in batches sorted by client id, for the bloom filter's size.
fn distinct_clients(batches: &[RecordBatch]) -> u64 {
    let mut n = 0;
    let mut prev: Option<&str> = None;
    for b in batches {
        let ids = b.column(2).as_string::<i32>();
        for id in ids.iter().flatten() {
            if prev != Some(id) {
                n += 1;
                prev = Some(id);
            }
        }
    }
    n
}
