//! The aggregate tables, defined in SQL and computed by DataFusion over each batch's events.
//! Every count is additive: a reader sums the files of a period, and a rate is
//! `sum(failed) / sum(total)`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::Result;
use crate::events::ts_type;

/// Table name and the SQL that computes it from the batch (registered as `batch`).
pub const AGGREGATES: [(&str, &str); 3] = [
    (
        "connack_reasons",
        "SELECT date_trunc('minute', ts) AS minute, region, proto_ver, reason, reason_code, category, \
                is_failure, count(*) AS count \
         FROM batch WHERE event = 'client.connack' \
         GROUP BY date_trunc('minute', ts), region, proto_ver, reason, reason_code, category, is_failure \
         ORDER BY minute, region, count DESC",
    ),
    (
        "disconnect_reasons",
        "SELECT date_trunc('minute', ts) AS minute, region, reason, reason_code, category, \
                is_failure AS abnormal, count(*) AS count \
         FROM batch WHERE event = 'client.disconnected' \
         GROUP BY date_trunc('minute', ts), region, reason, reason_code, category, is_failure \
         ORDER BY minute, region, count DESC",
    ),
    (
        "region_failures",
        "SELECT date_trunc('minute', ts) AS minute, region, \
                count(*) FILTER (WHERE event = 'client.connack') AS connacks, \
                count(*) FILTER (WHERE event = 'client.connack' AND is_failure) AS failed_connacks, \
                count(*) FILTER (WHERE event = 'client.connected') AS connects, \
                count(*) FILTER (WHERE event = 'client.disconnected') AS disconnects, \
                count(*) FILTER (WHERE event = 'client.disconnected' AND is_failure) AS abnormal_disconnects \
         FROM batch GROUP BY date_trunc('minute', ts), region ORDER BY minute, region",
    ),
];

/// Takeovers per minute and client, the input of the client-id conflict alert.
pub const TAKEOVERS: &str = "SELECT date_trunc('minute', ts) AS minute, clientid, region, count(*) AS count \
     FROM batch WHERE event = 'client.disconnected' AND category = 'session-conflict' \
     GROUP BY date_trunc('minute', ts), clientid, region";

/// A batch's aggregate tables, by name, plus the takeover counts.
pub struct Computed {
    pub tables: Vec<(&'static str, Vec<RecordBatch>)>,
    pub takeovers: Vec<RecordBatch>,
}

pub struct Analytics {
    ctx: SessionContext,
}

impl Default for Analytics {
    fn default() -> Self {
        // Batches are small and already in memory: one partition avoids repartitioning work.
        let config = SessionConfig::new().with_target_partitions(1).with_information_schema(false);
        Analytics { ctx: SessionContext::new_with_config(config) }
    }
}

impl Analytics {
    pub async fn compute(&self, events: RecordBatch) -> Result<Computed> {
        self.ctx.deregister_table("batch")?;
        self.ctx.register_batch("batch", events)?;
        let mut tables = Vec::with_capacity(AGGREGATES.len());
        for (name, sql) in AGGREGATES {
            tables.push((name, self.run(sql).await?));
        }
        let takeovers = self.run(TAKEOVERS).await?;
        self.ctx.deregister_table("batch")?;
        Ok(Computed { tables, takeovers })
    }

    async fn run(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let batches = self.ctx.sql(sql).await?.collect().await?;
        batches.into_iter().filter(|b| b.num_rows() > 0).map(millis).collect()
    }
}

/// Casts every timestamp column to milliseconds in UTC, whatever unit a function returned.
pub fn millis(batch: RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Timestamp(u, _) if *u != TimeUnit::Millisecond))
    {
        return Ok(batch);
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if let DataType::Timestamp(..) = field.data_type() {
            columns.push(cast(column, &ts_type())?);
            fields.push(Field::new(field.name(), ts_type(), field.is_nullable()));
        } else {
            columns.push(column.clone());
            fields.push(field.as_ref().clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}
