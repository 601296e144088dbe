//! Reading back what a writer committed for one Kafka partition, by the lineage columns of
//! `events`: the transformer rebuilds its window of recent fingerprints, and the sessions
//! still open, from it.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;

use crate::commit::TableWriter;
use crate::error::{Error, Result};
use crate::tables::EVENTS;

impl TableWriter {
    /// `(kafka_offset, fingerprint)` of the rows of `partition` with offsets in
    /// `[from, through]`, in offset order, at the version `committed` last read (rows without a
    /// fingerprint, written before it existed, are left out). Files are pruned by their
    /// partition and offset statistics in the Delta log, so this reads the recent files only.
    pub async fn fingerprints(&self, partition: i32, from: i64, through: i64) -> Result<Vec<(i64, i64)>> {
        if *self.table != EVENTS {
            return Err(Error::Config(format!("{} has no fingerprints", self.table.name)));
        }
        if from > through || through < 0 || self.delta.version().is_none() {
            return Ok(Vec::new());
        }
        let ctx = SessionContext::new_with_state(crate::live::plain_strings());
        let provider = self.delta.table_provider().with_session(Arc::new(crate::live::plain_strings())).await?;
        ctx.register_table("events", provider)?;
        let sql = format!(
            "SELECT kafka_offset, fingerprint FROM events WHERE kafka_partition = {partition} \
             AND kafka_offset BETWEEN {from} AND {through} AND fingerprint IS NOT NULL ORDER BY kafka_offset"
        );
        let batches = ctx.sql(&sql).await?.collect().await?;
        let mut out = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
        for b in &batches {
            let offsets = b.column(0).as_primitive::<Int64Type>();
            let fps = b.column(1).as_primitive::<Int64Type>();
            out.extend(offsets.values().iter().copied().zip(fps.values().iter().copied()));
        }
        Ok(out)
    }

    /// The connects and disconnects of `partition` before offset `before` whose time is at or
    /// after `since_ms`, in offset order, with the columns [`LIFECYCLE`] names: what a
    /// partition's open sessions are rebuilt from. Files are pruned by `date` and offsets.
    pub async fn lifecycle(&self, partition: i32, before: i64, since_ms: i64) -> Result<Vec<RecordBatch>> {
        if *self.table != EVENTS {
            return Err(Error::Config(format!("{} has no lifecycle", self.table.name)));
        }
        if before <= 0 || self.delta.version().is_none() {
            return Ok(Vec::new());
        }
        // With DataFusion's functions (the plain session has none), strings read as `Utf8`.
        let mut config = datafusion::prelude::SessionConfig::new();
        config.options_mut().execution.parquet.schema_force_view_types = false;
        let ctx = SessionContext::new_with_config(config);
        let provider = self.delta.table_provider().with_session(Arc::new(crate::live::plain_strings())).await?;
        ctx.register_table("events", provider)?;
        let since = since_ms.div_euclid(1000);
        let sql = format!(
            "SELECT {} FROM events WHERE kafka_partition = {partition} AND kafka_offset < {before} \
             AND event IN ('client.connected', 'client.disconnected') \
             AND date >= CAST(to_timestamp({since}) AS DATE) AND ts >= to_timestamp({since}) \
             ORDER BY kafka_offset",
            LIFECYCLE.join(", ")
        );
        Ok(ctx.sql(&sql).await?.collect().await?)
    }
}

/// The `events` columns [`TableWriter::lifecycle`] returns, in this order.
pub const LIFECYCLE: [&str; 18] = [
    "event",
    "clientid",
    "username",
    "broker",
    "node",
    "region",
    "peer_ip",
    "peer_port",
    "ts",
    "connected_at",
    "disconnected_at",
    "reason",
    "category",
    "is_failure",
    "initiator",
    "kafka_offset",
    "attributes",
    "session_id",
];
