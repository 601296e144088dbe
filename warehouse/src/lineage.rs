//! Reading back what a writer committed for one Kafka partition, by the lineage columns of
//! `events`: the transformer rebuilds its window of recent fingerprints, and the sessions
//! still open, from it.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, Schema};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::EmptyRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::commit::TableWriter;
use crate::error::{Error, Result};
use crate::tables::EVENTS;

impl TableWriter {
    /// `(kafka_offset, fingerprint)` of the rows of `partition` with offsets in
    /// `[from, through]`, in offset order, at the version `committed` last read: each row's
    /// fingerprint computed from its columns ([`crate::fingerprint`]; the table does not store
    /// it). Files are pruned by their partition and offset statistics in the Delta log, so this
    /// reads the recent files only; the rows come as a stream and only the pairs are kept.
    pub async fn fingerprints(&self, partition: i32, from: i64, through: i64) -> Result<Vec<(i64, i64)>> {
        if *self.table != EVENTS {
            return Err(Error::Config(format!("{} has no fingerprints", self.table.name)));
        }
        if from > through || through < 0 || self.delta.version().is_none() {
            return Ok(Vec::new());
        }
        let ctx = self.lineage_context().await?;
        let sql = format!(
            "SELECT kafka_offset, {} FROM events WHERE kafka_partition = {partition} \
             AND kafka_offset BETWEEN {from} AND {through}",
            crate::fingerprint::COLUMNS.join(", ")
        );
        let mut rows = ctx.sql(&sql).await?.execute_stream().await?;
        let mut out = Vec::new();
        while let Some(b) = rows.next().await {
            let b = b?;
            let offsets = b.column(0).as_primitive::<Int64Type>();
            out.extend(offsets.values().iter().copied().zip(crate::fingerprint::of_batch(&b)?));
        }
        out.sort_unstable_by_key(|&(offset, _)| offset);
        Ok(out)
    }

    /// The newest event time (ms) among the last rows of `partition` before offset `before`
    /// (its last [`NEWEST_WITHIN`] offsets, pruned by their statistics): where the partition
    /// stood in time when it was last committed, whatever the next batch's events claim.
    pub async fn newest_ms(&self, partition: i32, before: i64) -> Result<Option<i64>> {
        if *self.table != EVENTS {
            return Err(Error::Config(format!("{} has no lifecycle", self.table.name)));
        }
        if before <= 0 || self.delta.version().is_none() {
            return Ok(None);
        }
        let ctx = self.lineage_context().await?;
        let sql = format!(
            "SELECT CAST(max(ts) AS BIGINT) FROM events WHERE kafka_partition = {partition} \
             AND kafka_offset < {before} AND kafka_offset >= {}",
            before.saturating_sub(NEWEST_WITHIN)
        );
        let batches = ctx.sql(&sql).await?.collect().await?;
        let newest = batches.first().filter(|b| b.num_rows() > 0).and_then(|b| {
            let micros = b.column(0).as_primitive::<Int64Type>();
            micros.is_valid(0).then(|| micros.value(0) / 1000)
        });
        Ok(newest)
    }

    /// The connects and disconnects of `partition` before offset `before` whose time is at or
    /// after `since_ms`, in offset order, with the columns [`LIFECYCLE`] names: what a
    /// partition's open sessions are rebuilt from. Files are pruned by `date` and offsets; the
    /// rows come as a stream, sorted within [`LINEAGE_MEMORY`] (spilling to disk past it).
    pub async fn lifecycle(&self, partition: i32, before: i64, since_ms: i64) -> Result<SendableRecordBatchStream> {
        if *self.table != EVENTS {
            return Err(Error::Config(format!("{} has no lifecycle", self.table.name)));
        }
        if before <= 0 || self.delta.version().is_none() {
            return Ok(Box::pin(EmptyRecordBatchStream::new(Arc::new(Schema::empty()))));
        }
        let ctx = self.lineage_context().await?;
        let since = since_ms.div_euclid(1000);
        let sql = format!(
            "SELECT {} FROM events WHERE kafka_partition = {partition} AND kafka_offset < {before} \
             AND event IN ('client.connected', 'client.disconnected') \
             AND date >= CAST(to_timestamp({since}) AS DATE) AND ts >= to_timestamp({since}) \
             ORDER BY kafka_offset",
            LIFECYCLE.join(", ")
        );
        Ok(ctx.sql(&sql).await?.execute_stream().await?)
    }

    /// A session over `events` with DataFusion's functions, strings read as `Utf8`, and a
    /// bounded memory pool.
    async fn lineage_context(&self) -> Result<SessionContext> {
        let mut config = datafusion::prelude::SessionConfig::new();
        config.options_mut().execution.parquet.schema_force_view_types = false;
        let runtime = RuntimeEnvBuilder::new().with_memory_limit(LINEAGE_MEMORY, 1.0).build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let provider = self.delta.table_provider().with_session(Arc::new(crate::live::plain_strings())).await?;
        ctx.register_table("events", provider)?;
        Ok(ctx)
    }
}

/// How far back (in offsets) [`TableWriter::newest_ms`] looks for the partition's last rows.
pub const NEWEST_WITHIN: i64 = 100_000;

/// Memory the read-back may hold; its sort spills to disk past it.
pub const LINEAGE_MEMORY: usize = 128 * 1024 * 1024;

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
