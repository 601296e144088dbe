//! The aggregate tables, defined in SQL and computed by DataFusion over each batch's events.
//! Every count is additive: a reader sums the files of a period, and a rate is
//! `sum(failed) / sum(total)`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::Result;
use connaudit_warehouse::ts_type;

/// Table name and the SQL that computes it from the batch (registered as `batch`).
pub const AGGREGATES: [(&str, &str); 3] = [
    // Connect attempts: CONNACKs, and the connects of brokers that announce no successful
    // CONNACK (AWS IoT Core, Azure Event Grid, HiveMQ, VerneMQ), each a successful attempt.
    (
        "connack_reasons",
        "SELECT minute, region, proto_ver, reason, reason_code, category, is_failure, count(*) AS count \
         FROM (SELECT date_trunc('minute', ts) AS minute, region, proto_ver, \
                      CASE WHEN event = 'client.connack' THEN reason ELSE 'success' END AS reason, \
                      CASE WHEN event = 'client.connack' THEN reason_code END AS reason_code, \
                      CASE WHEN event = 'client.connack' THEN category ELSE 'success' END AS category, \
                      CASE WHEN event = 'client.connack' THEN is_failure ELSE false END AS is_failure \
               FROM batch WHERE event = 'client.connack' OR (event = 'client.connected' \
                     AND broker IN ('aws-iot', 'azure-eventgrid', 'hivemq', 'vernemq'))) \
         GROUP BY minute, region, proto_ver, reason, reason_code, category, is_failure \
         ORDER BY minute, region, count DESC",
    ),
    (
        "disconnect_reasons",
        "SELECT date_trunc('minute', ts) AS minute, region, reason, reason_code, category, \
                is_failure AS abnormal, count(*) AS count, initiator \
         FROM batch WHERE event = 'client.disconnected' \
         GROUP BY date_trunc('minute', ts), region, reason, reason_code, category, is_failure, initiator \
         ORDER BY minute, region, count DESC",
    ),
    (
        "region_failures",
        "SELECT date_trunc('minute', ts) AS minute, region, \
                count(*) FILTER (WHERE event = 'client.connack' OR (event = 'client.connected' \
                    AND broker IN ('aws-iot', 'azure-eventgrid', 'hivemq', 'vernemq'))) AS connacks, \
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
    /// The rows of aggregate table `table` over `events`.
    pub async fn table(&self, table: &str, events: &RecordBatch) -> Result<Vec<RecordBatch>> {
        let Some((_, sql)) = AGGREGATES.iter().find(|(name, _)| *name == table) else {
            // A table the contract lists and nothing computes is a bug, not an empty commit.
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "no SQL computes the table {table}; add it to AGGREGATES"
            ))
            .into());
        };
        self.over(events, sql).await
    }

    /// Takeovers per minute and client in `events`.
    pub async fn takeovers(&self, events: &RecordBatch) -> Result<Vec<RecordBatch>> {
        self.over(events, TAKEOVERS).await
    }

    async fn over(&self, events: &RecordBatch, sql: &str) -> Result<Vec<RecordBatch>> {
        if events.num_rows() == 0 {
            return Ok(Vec::new());
        }
        self.ctx.deregister_table("batch")?;
        self.ctx.register_batch("batch", events.clone())?;
        let batches = self.ctx.sql(sql).await?.collect().await;
        self.ctx.deregister_table("batch")?;
        batches?.into_iter().filter(|b| b.num_rows() > 0).map(micros).collect()
    }
}

/// Casts every timestamp column to the tables' microseconds in UTC, whatever a function returned.
pub fn micros(batch: RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| matches!(f.data_type(), DataType::Timestamp(..)) && *f.data_type() != ts_type())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_the_contract_is_made_from_something() {
        use connaudit_warehouse::{table, ALERTS, EVENTS, ONLINE_HOURS, SESSIONS, TABLES};
        // Events and sessions are written from the batch itself, online hours from the
        // sessions (`sessions/online.rs`), alerts from the committed tables (`alerts.rs`);
        // every other table by its SQL here.
        for t in TABLES {
            let made = [EVENTS.name, SESSIONS.name, ONLINE_HOURS.name, ALERTS.name].contains(&t.name)
                || AGGREGATES.iter().filter(|(name, _)| *name == t.name).count() == 1;
            assert!(made, "nothing computes the table {}", t.name);
        }
        for (name, _) in AGGREGATES {
            assert!(table(name).is_some(), "{name} is not a table of the contract");
        }
    }
}
