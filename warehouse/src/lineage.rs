//! Reading back what a writer committed for one Kafka partition, by the lineage columns of
//! `events`: the transformer rebuilds its window of recent fingerprints from it.

use std::sync::Arc;

use arrow::array::AsArray;
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
}
