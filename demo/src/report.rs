//! What the demo prints at the end: the warehouse's answers (read back with DataFusion through
//! `connaudit-query`), next to the simulator's ground truth.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::DataType;
use connaudit_query::{audits, Common, Format, Output, Window};
use datafusion::datasource::MemTable;

use crate::error::{Error, Result};
use crate::truth::Truth;

/// The warehouse's answers per region, each next to what the simulator sent.
const REGIONS: &str = "SELECT coalesce(w.region, t.region) AS region, \
        w.connacks, t.connacks AS sent_connacks, w.failed, t.failed AS sent_failed, \
        w.failure_rate, t.failure_rate AS sent_failure_rate, \
        CASE WHEN w.connacks = t.connacks AND w.failed = t.failed AND w.failure_rate IS NOT DISTINCT FROM t.failure_rate \
             THEN 'yes' ELSE 'NO' END AS same \
    FROM (SELECT region, sum(connacks) AS connacks, sum(failed_connacks) AS failed, \
                 CAST(sum(failed_connacks) AS DOUBLE) / sum(connacks) AS failure_rate \
          FROM region_failures GROUP BY region HAVING sum(connacks) > 0) AS w \
    FULL JOIN (SELECT * FROM truth WHERE connacks > 0) AS t ON w.region = t.region \
    ORDER BY region";

/// The failure rate per firmware (the `fw` attribute of the CONNACKs), next to the truth.
const FIRMWARE: &str = "SELECT coalesce(w.fw, t.fw) AS fw, w.connacks, t.connacks AS sent_connacks, \
        w.failed, t.failed AS sent_failed, CAST(w.failed AS DOUBLE) / w.connacks AS failure_rate, \
        CASE WHEN w.connacks = t.connacks AND w.failed = t.failed THEN 'yes' ELSE 'NO' END AS same \
    FROM (SELECT coalesce(attr(attributes, 'fw'), '-') AS fw, count(*) AS connacks, \
                 count(*) FILTER (WHERE is_failure) AS failed \
          FROM events WHERE event = 'client.connack' GROUP BY 1) AS w \
    FULL JOIN firmware AS t ON w.fw = t.fw ORDER BY fw";

/// Sessions the warehouse ended as `missing`, per region, next to the disconnects the
/// simulator never sent (a lost one shows once the device's next session proves it).
const LOST: &str = "SELECT coalesce(w.region, t.region) AS region, coalesce(w.missing, 0) AS missing_sessions, \
        coalesce(t.lost, 0) AS lost_disconnects_sent \
    FROM (SELECT region, count(*) AS missing FROM sessions WHERE end_reason = 'missing' GROUP BY region) AS w \
    FULL JOIN lost AS t ON w.region = t.region ORDER BY region";

pub async fn print(warehouse: &Path, truth: &Truth) -> Result<()> {
    let ctx =
        connaudit_query::open(&Common::for_warehouse(&warehouse.display().to_string()), &Window::default()).await?;
    ctx.register_table("truth", Arc::new(truth_table(truth)?)).map_err(connaudit_query::Error::from)?;
    ctx.register_table("lost", Arc::new(lost_table(truth)?)).map_err(connaudit_query::Error::from)?;
    ctx.register_table("firmware", Arc::new(firmware_table(truth)?)).map_err(connaudit_query::Error::from)?;
    let table = Output::new(Some(Format::Table), None)?;
    println!("Reason codes in the warehouse (connaudit audit reasons):");
    connaudit_query::run_sql(&ctx, audits::REASONS, &table).await?;
    println!("\nConnect failure rate per region: the warehouse next to what the simulator sent:");
    connaudit_query::run_sql(&ctx, REGIONS, &table).await?;
    println!("\nA firmware rollout halfway through: CONNACK failure rate per firmware (the fw attribute) next to what was sent:");
    connaudit_query::run_sql(&ctx, FIRMWARE, &table).await?;
    rollout(&ctx, &table).await?;
    println!("\nLost disconnects: sessions ended 'missing' next to the disconnects the simulator dropped:");
    connaudit_query::run_sql(&ctx, LOST, &table).await?;
    println!("\nAlerts the transformer raised (connaudit audit alerts):");
    connaudit_query::run_sql(&ctx, audits::ALERTS, &table).await?;
    Ok(())
}

/// `audit failures --by attr.fw` over the run's second half (the rollout) against its first.
async fn rollout(ctx: &datafusion::prelude::SessionContext, table: &Output) -> Result<()> {
    let sql = "SELECT CAST(min(ts) AS BIGINT) AS first, CAST(max(ts) AS BIGINT) AS last FROM events";
    let batches = ctx
        .sql(sql)
        .await
        .map_err(connaudit_query::Error::from)?
        .collect()
        .await
        .map_err(connaudit_query::Error::from)?;
    let Some(b) = batches.first().filter(|b| b.num_rows() == 1 && b.column(0).is_valid(0)) else { return Ok(()) };
    let us = |i: usize| {
        let v = arrow::compute::cast(b.column(i), &DataType::Int64).ok()?;
        chrono::DateTime::from_timestamp_micros(v.as_any().downcast_ref::<arrow::array::Int64Array>()?.value(0))
    };
    let (Some(first), Some(last)) = (us(0), us(1)) else { return Ok(()) };
    let (since, until) = (first + (last - first) / 2, last + chrono::Duration::seconds(1));
    let window = Window { since: Some(since), until: Some(until) };
    println!(
        "\nThe rollout by attribute (connaudit audit failures --by attr.fw --since {} --until {}):",
        since.format("%Y-%m-%dT%H:%M:%SZ"),
        until.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let sql = audits::failures_by_attr("fw", &window, until, 0);
    connaudit_query::run_sql(ctx, &sql, table).await?;
    Ok(())
}

/// The commands to keep exploring.
pub fn explore(warehouse: &Path) {
    let w = warehouse.display();
    println!(
        "\nExplore the warehouse:\n  \
         export CONNAUDIT_WAREHOUSE={w}\n  \
         cargo run --release -- audit failures --by node\n  \
         cargo run --release -- audit client shared-000      # a client id two devices share\n  \
         cargo run --release -- audit flapping --min 5\n  \
         cargo run --release -- audit failures --by attr.fw   # a cohort; --since/--until as above\n  \
         cargo run --release -- audit sessions --by node      # lengths, abnormal ends, lost disconnects\n  \
         cargo run --release -- audit online --every 10m      # devices online per region\n  \
         cargo run --release -- query \"SELECT * FROM region_failure_rates ORDER BY minute, region\"\n  \
         cargo run --release -- query                         # an interactive prompt\n\
         or read its Delta tables ({w}/events, ...) with DuckDB (delta_scan), Python (deltalake) or Spark."
    );
}

fn truth_table(truth: &Truth) -> Result<MemTable> {
    let regions = &truth.regions;
    mem_table(vec![
        ("region", Arc::new(StringArray::from_iter_values(regions.keys()))),
        ("connacks", Arc::new(UInt64Array::from_iter_values(regions.values().map(|r| r.connacks)))),
        ("failed", Arc::new(UInt64Array::from_iter_values(regions.values().map(|r| r.failed_connacks)))),
        ("failure_rate", Arc::new(Float64Array::from_iter(regions.values().map(|r| r.failure_rate())))),
    ])
}

fn lost_table(truth: &Truth) -> Result<MemTable> {
    mem_table(vec![
        ("region", Arc::new(StringArray::from_iter_values(truth.lost.keys()))),
        ("lost", Arc::new(UInt64Array::from_iter_values(truth.lost.values().copied()))),
    ])
}

fn firmware_table(truth: &Truth) -> Result<MemTable> {
    let fw = &truth.firmware;
    mem_table(vec![
        ("fw", Arc::new(StringArray::from_iter_values(fw.keys()))),
        ("connacks", Arc::new(UInt64Array::from_iter_values(fw.values().map(|n| n[0])))),
        ("failed", Arc::new(UInt64Array::from_iter_values(fw.values().map(|n| n[1])))),
    ])
}

/// One in-memory table of the named columns.
fn mem_table(columns: Vec<(&str, ArrayRef)>) -> Result<MemTable> {
    let batch = RecordBatch::try_from_iter(columns).map_err(|e| Error::Query(connaudit_query::Error::Arrow(e)))?;
    MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| Error::Query(e.into()))
}
