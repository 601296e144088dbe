//! `connaudit compact`: merges the files of each closed day into one sorted file, and, in the
//! open day of `events`, the finished batch files into one per run (so a day never holds more
//! than a run's worth of small files). Locally the partition directory is swapped in one
//! `renameat2(RENAME_EXCHANGE)`, so a reader sees the old files or the merged one, never both
//! or neither. Object stores have no such swap: there the merged file is put first and
//! the small ones deleted after, so a reader listing in between can see rows twice (documented).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use clap::Args;
use datafusion::prelude::{col, ParquetReadOptions, SessionContext};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use tracing::info;

use crate::error::{Error, Result};
use crate::parquet_out::{aggregate_props, events_props};
use crate::state::{self, parse_batch_file};
use crate::warehouse::Warehouse;

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Example:\n  connaudit compact --warehouse s3://audit/connaudit --older-than-hours 2\n\nRun it hourly (a Kubernetes CronJob); it is safe beside a running transformer."
)]
pub struct CompactArgs {
    /// Warehouse: a directory or s3://bucket/prefix
    #[arg(long, env = "CONNAUDIT_WAREHOUSE", value_name = "DIR|URL", default_value = "./warehouse")]
    pub warehouse: String,
    /// Merge a day into one file once it ended this many hours ago (late events are rare after);
    /// the current day's finished batch files are merged on every run
    #[arg(long, env = "CONNAUDIT_COMPACT_OLDER_THAN_HOURS", value_name = "HOURS", default_value_t = 2)]
    pub older_than_hours: u64,
    /// Print what would be merged, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// What a run merged: partitions and files before.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    pub partitions: usize,
    pub files: usize,
}

pub async fn compact(args: &CompactArgs) -> Result<Compacted> {
    let wh = Warehouse::open(&args.warehouse)?;
    let cutoff = crate::now_ms() - Duration::from_secs(args.older_than_hours * 3600).as_millis() as i64;
    let ctx = SessionContext::new();
    if wh.local_dir().is_none() {
        // Local paths resolve through DataFusion's own file system store.
        ctx.register_object_store(wh.url(), wh.store());
    }
    let mut done: HashMap<(String, i32), i64> = HashMap::new();
    let mut summary = Compacted::default();
    for table in crate::TABLES {
        let mut parts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in wh.list(table).await? {
            if let Some((dir, _)) = f.path.rsplit_once('/') {
                parts.entry(dir.to_string()).or_default().push(f.path);
            }
        }
        for (dir, files) in parts {
            let closed = partition_end(&dir).is_some_and(|end| end <= cutoff);
            let files = if closed {
                if files.len() > 1 && !all_done(&wh, &files, &mut done).await? {
                    info!(partition = dir, "Skipped: a batch in it may still be rewritten after a crash.");
                    continue;
                }
                files
            } else if table == "events" {
                // The open day: its finished batch files, not earlier merges.
                let mut finished = Vec::new();
                for f in files {
                    if is_batch(&f) && is_done(&wh, &f, &mut done).await? {
                        finished.push(f);
                    }
                }
                finished
            } else {
                continue;
            };
            if files.len() < 2 {
                continue;
            }
            info!(partition = dir, files = files.len(), dry_run = args.dry_run, "Merging.");
            if !args.dry_run {
                merge(&ctx, &wh, table, &dir, &files).await?;
            }
            summary.partitions += 1;
            summary.files += files.len();
        }
    }
    Ok(summary)
}

/// End of a `table/date=YYYY-MM-DD[/hour=HH]` partition, in ms since the epoch (warehouses
/// written before events lost their hour directories still have them).
fn partition_end(dir: &str) -> Option<i64> {
    let date = dir.split('/').find_map(|p| p.strip_prefix("date="))?;
    let day =
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    match dir.split('/').find_map(|p| p.strip_prefix("hour=")) {
        Some(h) => Some(day + (h.parse::<i64>().ok()? + 1) * 3_600_000),
        None => Some(day + 86_400_000),
    }
}

/// True when every batch file's offsets are recorded as done (a pending batch's files may
/// be rewritten by the transformer and must stay where it expects them).
async fn all_done(wh: &Warehouse, files: &[String], done: &mut HashMap<(String, i32), i64>) -> Result<bool> {
    for f in files {
        if !is_done(wh, f, done).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn is_batch(file: &str) -> bool {
    parse_batch_file(file.rsplit('/').next().unwrap_or(file)).is_some()
}

/// True for a merged file, or a batch file whose offsets are recorded as done.
async fn is_done(wh: &Warehouse, file: &str, done: &mut HashMap<(String, i32), i64>) -> Result<bool> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let Some((topic, partition, _, last)) = parse_batch_file(name) else { return Ok(true) };
    let key = (topic, partition);
    if !done.contains_key(&key) {
        let st = state::load(wh, &key.0, key.1).await?;
        done.insert(key.clone(), st.done);
    }
    Ok(done[&key] >= last)
}

async fn merge(ctx: &SessionContext, wh: &Warehouse, table: &str, dir: &str, files: &[String]) -> Result<()> {
    let urls: Vec<String> = files
        .iter()
        .map(|f| wh.url().join(f).map(|u| u.to_string()))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Config(e.to_string()))?;
    let df = ctx.read_parquet(urls, ParquetReadOptions::default()).await?;
    let (order, props) = if table == "events" {
        let distinct = df
            .clone()
            .aggregate(vec![], vec![datafusion::functions_aggregate::count::count_distinct(col("clientid"))])?;
        let n = distinct.collect().await?.first().and_then(|b| {
            arrow::array::AsArray::as_primitive_opt::<arrow::datatypes::Int64Type>(b.column(0)).map(|a| a.value(0))
        });
        (vec!["clientid", "ts", "kafka_partition", "kafka_offset"], events_props(n.unwrap_or(1) as u64))
    } else {
        let first = if table == "alerts" { vec!["minute", "kind"] } else { vec!["minute", "region"] };
        (first, aggregate_props())
    };
    let sorted = df.sort(order.iter().map(|c| col(*c).sort(true, false)).collect())?;
    let schema = sorted.schema().inner().clone();
    let mut stream = sorted.execute_stream().await?;
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    while let Some(batch) = stream.next().await {
        writer.write(&batch?)?;
    }
    writer.close()?;
    let merged = format!("compacted-{}.parquet", crate::now_ms());
    match wh.local_dir() {
        Some(root) => swap_local(root, dir, &merged, &out, files),
        None => {
            wh.put(&format!("{dir}/{merged}"), out.into()).await?;
            for f in files {
                wh.delete(f).await?;
            }
            Ok(())
        }
    }
}

/// Builds the merged partition in `_compact/`, exchanges it with the live directory in one
/// step, then moves in any file written meanwhile and removes the old files.
fn swap_local(root: &Path, dir: &str, merged: &str, data: &[u8], inputs: &[String]) -> Result<()> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    let live = root.join(dir);
    let staging = root.join("_compact").join(dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let file = staging.join(merged);
    std::fs::write(&file, data).map_err(io(&file))?;
    std::fs::File::open(&file).and_then(|f| f.sync_all()).map_err(io(&file))?;
    // Files of the partition that are not merged (earlier merges, pending batches) stay
    // visible across the exchange: the new directory gets a link to each.
    let merged_inputs: Vec<&str> = inputs.iter().filter_map(|f| f.rsplit('/').next()).collect();
    for entry in std::fs::read_dir(&live).map_err(io(&live))? {
        let entry = entry.map_err(io(&live))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".parquet") && !name.starts_with('.') && !merged_inputs.contains(&name.as_str()) {
            std::fs::hard_link(entry.path(), staging.join(&name)).map_err(io(&entry.path()))?;
        }
    }
    rustix::fs::renameat_with(rustix::fs::CWD, &staging, rustix::fs::CWD, &live, rustix::fs::RenameFlags::EXCHANGE)
        .map_err(|e| Error::Io { path: live.display().to_string(), source: e.into() })?;
    // `staging` now holds the old files; one not merged and not linked arrived meanwhile.
    for entry in std::fs::read_dir(&staging).map_err(io(&staging))? {
        let entry = entry.map_err(io(&staging))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let moved = live.join(&name);
        if name.ends_with(".parquet")
            && !name.starts_with('.')
            && !merged_inputs.contains(&name.as_str())
            && !moved.exists()
        {
            std::fs::rename(entry.path(), moved).map_err(io(&entry.path()))?;
        }
    }
    std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    // Empty parents of the staging directory go too (a failure only leaves empty directories).
    let top = root.join("_compact");
    let mut parent = staging.parent();
    while let Some(dir) = parent.filter(|d| d.starts_with(&top)) {
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
        parent = dir.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ends() {
        assert_eq!(partition_end("events/date=1970-01-01/hour=00"), Some(3_600_000));
        assert_eq!(partition_end("alerts/date=1970-01-02"), Some(2 * 86_400_000));
        assert_eq!(partition_end("events/whatever"), None);
    }
}
