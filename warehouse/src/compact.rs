//! `connaudit compact`: rewrites the small files of each date partition as one sorted file in
//! a single Delta commit (the inputs removed with `dataChange=false`, the merged file added),
//! so a reader sees the old files or the new one, never both, on local disk and S3 alike.
//! Each partition is merged on its own; a failure is reported and the others go on. Then a
//! checkpoint, and files no version references anymore are deleted after `retain`.

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::logical_expr::Expr;
use datafusion::prelude::{col, lit, ParquetReadOptions, SessionContext};
use datafusion::scalar::ScalarValue;
use delta_kernel::expressions::Scalar;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, LogicalFileView};
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::StreamExt;
use indexmap::IndexMap;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::files::{properties, Layout};
use crate::store::Warehouse;
use crate::tables::{Table, EVENTS, PARTITION, TABLES};

const DAY_MS: i64 = 86_400_000;

/// What a run should do.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// A day is closed (merged whole, sorted) once it ended this long ago.
    pub older_than: Duration,
    /// In the open day of `events`, files under this size are merged.
    pub small_file_bytes: u64,
    /// Files no version needs anymore are deleted once this old.
    pub retain: Duration,
    /// Memory for sorting before spilling to disk.
    pub memory_limit: usize,
    pub dry_run: bool,
    /// Whole days past these are removed first (one commit per table).
    pub retention: crate::retention::Retention,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// Partitions merged (or, in a dry run, to merge) and their files before.
    pub partitions: usize,
    pub files: usize,
    /// Files deleted by the retention cleanup.
    pub deleted: usize,
    /// Partitions (`table/date=...`) that failed, and why.
    pub failed: Vec<(String, String)>,
    /// Rows removed as past retention, per table.
    pub expired: Vec<(&'static str, u64)>,
}

pub async fn compact(wh: &Warehouse, opts: &CompactOptions) -> Result<Report> {
    let runtime = crate::session::spilling_runtime(opts.memory_limit, None).map_err(Error::Config)?;
    let mut config = crate::session::reader_config().map_err(Error::Config)?.with_target_partitions(2);
    // Read strings as the tables declare them (Utf8), not as views the writer would refuse.
    config.options_mut().execution.parquet.schema_force_view_types = false;
    let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
    let cutoff = chrono::Utc::now().timestamp_millis() - opts.older_than.as_millis() as i64;
    let mut report = Report::default();
    for table in TABLES {
        let builder = DeltaTableBuilder::from_url(wh.table_url(table)).map_err(Error::delta(table.name))?;
        let exists = builder.build().map_err(Error::delta(table.name))?.verify_deltatable_existence().await;
        if !exists.map_err(Error::delta(table.name))? {
            continue;
        }
        if let (Some(keep), false) = (opts.retention.of(table), opts.dry_run) {
            let rows = crate::retention::expire(wh, table, keep, chrono::Utc::now()).await?;
            report.expired.push((table.name, rows));
        }
        let mut delta = DeltaTable::try_from_url(wh.table_url(table)).await.map_err(Error::delta(table.name))?;
        delta.update_datafusion_session(&ctx.state()).map_err(Error::delta(table.name))?;
        for (day, files) in candidates(&delta, table, cutoff, opts.small_file_bytes)? {
            let name = format!("{}/{PARTITION}={}", table.name, date(day));
            info!(partition = name, files = files.len(), dry_run = opts.dry_run, "Merging.");
            if !opts.dry_run {
                if let Err(e) = merge(&ctx, &mut delta, table, day, &files).await {
                    warn!(partition = name, error = %e, "Cannot merge this partition; going on with the others.");
                    report.failed.push((name, e.to_string()));
                    continue;
                }
            }
            report.partitions += 1;
            report.files += files.len();
        }
        if !opts.dry_run {
            report.deleted += tidy(delta, table, opts.retain).await?;
        }
    }
    Ok(report)
}

/// The partitions to merge: a closed day with more than one file; in the open day of `events`,
/// its small files when there are several.
fn candidates(delta: &DeltaTable, table: &Table, cutoff: i64, small: u64) -> Result<Vec<(i32, Vec<LogicalFileView>)>> {
    let state = delta.snapshot().map_err(Error::delta(table.name))?;
    let mut days: BTreeMap<i32, Vec<LogicalFileView>> = BTreeMap::new();
    for file in state.log_data() {
        let value = file.partition_values_map().get(PARTITION).cloned().flatten();
        let Some(day) = value.and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()) else { continue };
        let day = (day.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis() / DAY_MS) as i32;
        days.entry(day).or_default().push(file);
    }
    let mut out = Vec::new();
    for (day, files) in days {
        let closed = (i64::from(day) + 1) * DAY_MS <= cutoff;
        let files: Vec<_> = if closed {
            files
        } else if *table == EVENTS {
            files.into_iter().filter(|f| (f.size().max(0) as u64) < small).collect()
        } else {
            continue;
        };
        if files.len() > 1 {
            out.push((day, files));
        }
    }
    Ok(out)
}

/// Reads exactly `files`, sorts them in bounded memory, streams one file out and swaps it for
/// them in one commit. Appends committed meanwhile do not conflict (compaction changes no
/// data); another compaction of the same files does, and this one then fails.
async fn merge(
    ctx: &SessionContext,
    delta: &mut DeltaTable,
    table: &'static Table,
    day: i32,
    files: &[LogicalFileView],
) -> Result<()> {
    let root = delta.table_url().clone();
    let urls: Vec<String> = files
        .iter()
        .map(|f| root.join(&f.path()).map(|u| u.to_string()))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Config(format!("a file of {} has a bad path: {e}", table.name)))?;
    let columns: Vec<Expr> = table
        .file_schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            // Stored by versions before fingerprints were computed from the row; nothing
            // reads them now (8 incompressible bytes per event).
            "fingerprint" if *table == EVENTS => lit(ScalarValue::Int64(None)).alias("fingerprint"),
            name => col(name),
        })
        .collect();
    let df = ctx.read_parquet(urls, ParquetReadOptions::default()).await?;
    let df = df.select(columns)?;
    let sorted = df.sort(table.sort.iter().map(|c| col(*c).sort(true, false)).collect())?;
    let distinct = match table.bloom {
        Some(column) => {
            let n = sorted.clone().select_columns(&[column])?.distinct()?.count().await?;
            n as u64
        }
        None => 0,
    };
    let mut writer = RecordBatchWriter::for_table(delta)
        .map_err(Error::delta(table.name))?
        .with_writer_properties(properties(table, distinct, Layout::Compacted));
    let partition = IndexMap::from([(PARTITION.to_string(), Scalar::Date(day))]);
    let mut stream = sorted.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        writer.write_partition(batch?, &partition, WriteMode::Default).await.map_err(Error::delta(table.name))?;
    }
    let adds = writer.flush().await.map_err(Error::delta(table.name))?;
    let mut actions: Vec<Action> = files.iter().map(|f| Action::Remove(f.remove_action(false))).collect();
    actions.extend(adds.into_iter().map(|mut a| {
        a.data_change = false;
        Action::Add(a)
    }));
    let operation =
        DeltaOperation::Optimize { predicate: Some(format!("{PARTITION} = '{}'", date(day))), target_size: 0 };
    let state = delta.snapshot().map_err(Error::delta(table.name))?;
    CommitBuilder::from(CommitProperties::default())
        .with_actions(actions)
        .build(Some(state), delta.log_store(), operation)
        .await
        .map_err(Error::delta(table.name))?;
    delta.update_incremental(None).await.map_err(Error::delta(table.name))?;
    Ok(())
}

/// The vacuum of every table: files no version within `retain` needs are deleted.
pub async fn vacuum_all(wh: &Warehouse, retain: Duration) -> Result<usize> {
    let mut deleted = 0;
    for table in TABLES {
        let builder = DeltaTableBuilder::from_url(wh.table_url(table)).map_err(Error::delta(table.name))?;
        let exists = builder.build().map_err(Error::delta(table.name))?.verify_deltatable_existence().await;
        if exists.map_err(Error::delta(table.name))? {
            let delta = DeltaTable::try_from_url(wh.table_url(table)).await.map_err(Error::delta(table.name))?;
            deleted += tidy(delta, table, retain).await?;
        }
    }
    Ok(deleted)
}

/// A checkpoint of the latest version, then the files no version within `retain` needs.
async fn tidy(mut delta: DeltaTable, table: &'static Table, retain: Duration) -> Result<usize> {
    delta.update_incremental(None).await.map_err(Error::delta(table.name))?;
    deltalake::checkpoints::create_checkpoint(&delta, None).await.map_err(Error::delta(table.name))?;
    let retain = chrono::Duration::from_std(retain).map_err(|e| Error::Config(format!("--retain: {e}")))?;
    let (_, metrics) = delta
        .vacuum()
        .with_retention_period(retain)
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .await
        .map_err(Error::delta(table.name))?;
    Ok(metrics.files_deleted.len())
}

fn date(day: i32) -> String {
    chrono::DateTime::from_timestamp_millis(i64::from(day) * DAY_MS).unwrap_or_default().format("%Y-%m-%d").to_string()
}
