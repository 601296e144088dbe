//! What the demo prints at the end: the warehouse's answers (read back with DataFusion through
//! `connaudit-query`), next to the simulator's ground truth.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::DataType;
use connaudit_query::explain::{self, Metric, Periods};
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
    ctx.register_table("changes", Arc::new(changes_table(truth)?)).map_err(connaudit_query::Error::from)?;
    rollout(&ctx, &table, truth).await?;
    println!("\nLost disconnects: sessions ended 'missing' next to the disconnects the simulator dropped:");
    connaudit_query::run_sql(&ctx, LOST, &table).await?;
    println!("\nAlerts the transformer raised (connaudit audit alerts):");
    connaudit_query::run_sql(&ctx, audits::ALERTS, &table).await?;
    Ok(())
}

/// `audit failures --by attr.fw` over the run's second half (the rollout) against its first,
/// then `audit explain` of the second half.
async fn rollout(ctx: &datafusion::prelude::SessionContext, table: &Output, truth: &Truth) -> Result<()> {
    let n = match collect(ctx, "SELECT count(*) FROM events").await?.first() {
        Some(b) if b.num_rows() == 1 => {
            b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().map_or(0, |a| a.value(0))
        }
        _ => 0,
    };
    // The times of the first, the middle, a fiftieth past the middle and the last event: the
    // simulator's troubles and its rollout are placed by the events sent, not by the clock.
    let (Some(first), Some(half), Some(past_half), Some(last)) =
        (nth_ts(ctx, 0).await?, nth_ts(ctx, n / 2).await?, nth_ts(ctx, n * 52 / 100).await?, nth_ts(ctx, n - 1).await?)
    else {
        return Ok(());
    };
    let until = last + chrono::Duration::seconds(1);
    let window = Window { since: Some(first + (last - first) / 2), until: Some(until) };
    println!(
        "\nThe rollout by attribute (connaudit audit failures --by attr.fw --since {} --until {}):",
        instant(first + (last - first) / 2),
        instant(until)
    );
    let sql = audits::failures_by_attr("fw", &window, until, 0);
    connaudit_query::run_sql(ctx, &sql, table).await?;
    let periods = Periods { since: past_half, until, baseline_since: first, baseline_until: half };
    explain(ctx, table, &periods, truth).await
}

fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The time of the `k`th event in time order.
async fn nth_ts(ctx: &datafusion::prelude::SessionContext, k: i64) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    if k < 0 {
        return Ok(None);
    }
    let sql = format!("SELECT CAST(ts AS BIGINT) AS us FROM events ORDER BY us LIMIT 1 OFFSET {k}");
    let batches = collect(ctx, &sql).await?;
    let Some(b) = batches.iter().find(|b| b.num_rows() == 1) else { return Ok(None) };
    let us = b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().map(|a| a.value(0));
    Ok(us.and_then(chrono::DateTime::from_timestamp_micros))
}

/// `audit explain` of the run's second half against its first half, its leading values next
/// to what the simulator changed there.
async fn explain(
    ctx: &datafusion::prelude::SessionContext,
    table: &Output,
    periods: &Periods,
    truth: &Truth,
) -> Result<()> {
    println!(
        "\nWhat changed in the second half (connaudit audit explain --since {} --until {} --baseline {}..{}):",
        instant(periods.since),
        instant(periods.until),
        instant(periods.baseline_since),
        instant(periods.baseline_until)
    );
    let explained = explain::sql(Metric::Connects, periods, 5);
    let shown = format!(
        "SELECT e.rank, e.kind, e.explanation, e.share, e.failures, e.now_rate, e.before_rate, e.top_reason, \
                CASE WHEN c.change IS NULL THEN 'no' ELSE 'yes' END AS simulated_change \
         FROM ({explained}) AS e LEFT JOIN changes AS c ON c.change = e.explanation ORDER BY e.rank"
    );
    connaudit_query::run_sql(ctx, &shown, table).await?;
    let leading = format!(
        "SELECT explanation FROM ({explained}) AS e WHERE kind = 'value' ORDER BY rank LIMIT {}",
        truth.changes.len()
    );
    let mut got: Vec<String> = Vec::new();
    for b in collect(ctx, &leading).await? {
        let names = arrow::compute::cast(b.column(0), &DataType::Utf8).map_err(connaudit_query::Error::from)?;
        let names = names.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
        got.extend((0..b.num_rows()).map(|i| names.value(i).to_string()));
    }
    let mut want = truth.changes.clone();
    want.sort();
    got.sort();
    println!(
        "The leading {} are what the simulator changed ({}): {}",
        want.len(),
        truth.changes.join(", "),
        if want == got { "yes" } else { "NO" }
    );
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

async fn collect(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let frame = ctx.sql(sql).await.map_err(connaudit_query::Error::from)?;
    Ok(frame.collect().await.map_err(connaudit_query::Error::from)?)
}

/// What the simulator changed in the second half, one `change` per row.
fn changes_table(truth: &Truth) -> Result<MemTable> {
    mem_table(vec![("change", Arc::new(StringArray::from(truth.changes.clone())) as ArrayRef)])
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
