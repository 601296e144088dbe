//! `connaudit compact` swaps each closed day's files for one sorted file in a single Delta
//! commit, and the open day's small files on every run; a reader of the table sees the same
//! rows before, during and after; files no version needs go after `--retain`.

use std::collections::BTreeMap;
use std::time::Duration;

use connaudit_tests::fleet::fleet;
use connaudit_tests::{delta_files, produce_all};
use connaudit_warehouse::{CompactArgs, Warehouse};
use datafusion::prelude::SessionContext;
use tokio_util::sync::CancellationToken;

use crate::harness::{count, file_facts, Rig};

/// 2024-05-04T00:00:00Z
const START: i64 = 1_714_780_800_000;

/// Files the `events` log lists, per `date=` directory.
fn files_per_day(root: &std::path::Path) -> Vec<usize> {
    let mut days: BTreeMap<String, usize> = BTreeMap::new();
    for f in delta_files(&root.join("events")).unwrap() {
        let day = f.split('/').find(|p| p.starts_with("date=")).unwrap_or_default().to_string();
        *days.entry(day).or_default() += 1;
    }
    days.into_values().collect()
}

/// Data files on disk under `events/`, referenced or not (not the log's checkpoints).
fn files_on_disk(root: &std::path::Path) -> usize {
    let mut n = 0;
    let days = std::fs::read_dir(root.join("events")).unwrap().flatten();
    for day in days.filter(|d| d.file_name().to_string_lossy().starts_with("date=")) {
        n += std::fs::read_dir(day.path())
            .unwrap()
            .flatten()
            .filter(|f| f.path().extension().is_some_and(|e| e == "parquet"))
            .count();
    }
    n
}

pub fn args(warehouse: &str) -> CompactArgs {
    CompactArgs {
        warehouse: connaudit_warehouse::WarehouseFlag::new(warehouse),
        older_than_hours: 2,
        small_file: "64M".into(),
        retain: Duration::from_secs(3600),
        memory_limit: "64M".into(),
        dry_run: false,
        retain_events: None,
        retain_aggregates: None,
    }
}

/// Rows of `events` in the latest snapshot, read through delta-rs as the query CLI does.
pub async fn snapshot_rows(location: &str) -> anyhow::Result<u64> {
    let ctx = SessionContext::new();
    ctx.catalog("datafusion")
        .unwrap()
        .register_schema("w", std::sync::Arc::new(datafusion::catalog::MemorySchemaProvider::new()))?;
    let wh = Warehouse::locate(location).await?;
    connaudit_warehouse::register(&ctx, &wh, "w", None).await?;
    let batches = ctx.sql("SELECT count(*) FROM w.events").await?.collect().await?;
    Ok(arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batches[0].column(0)).value(0) as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_swaps_closed_days_in_one_commit_while_readers_see_the_same_rows() -> anyhow::Result<()> {
    let rig = Rig::new(2).await?;
    let (records, _) = fleet(4000, 400, START, 2 * 3_600_000, 0);
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let mut cfg = rig.config();
    cfg.batch.max_events = 300;
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
    rig.wait_for_events(4000, Duration::from_secs(60)).await?;
    stop.cancel();
    run.await??;
    let root = rig.warehouse();
    let location = root.display().to_string();
    assert!(files_per_day(&root).iter().all(|n| *n > 2), "{:?}", files_per_day(&root));
    let before = files_on_disk(&root);

    let reader = {
        let location = location.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..40 {
                seen.push(snapshot_rows(&location).await.map_err(|e| e.to_string()));
            }
            seen
        })
    };
    let merged = args(&location).run().await?;
    let seen = reader.await?;
    assert!(merged.failed.is_empty(), "{merged:?}");
    assert!(merged.partitions >= 2 && merged.files > merged.partitions, "{merged:?}");
    assert!(seen.iter().all(|n| n == &Ok(4000)), "a reader saw {seen:?}");
    assert_eq!(files_per_day(&root), vec![1]);
    // The merged-away files stay for readers of plain files until --retain has passed.
    assert_eq!(files_on_disk(&root), before + 1);

    let events = rig.table("events");
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, 4000);
    let distinct = format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {events})");
    assert_eq!(count(&distinct)?, 4000);
    let facts = file_facts(&root)?;
    assert_eq!(facts["unsorted"], 0, "{facts}");
    assert_eq!(facts["bloom"], facts["files"], "{facts}");
    assert_eq!((&facts["prefixed"], &facts["disagree"]), (&facts["files"], &serde_json::json!(0)), "{facts}");

    // Nothing left to merge; with no retention, the unreferenced files go.
    let again = CompactArgs { retain: Duration::ZERO, ..args(&location) }.run().await?;
    assert_eq!((again.partitions, again.failed.len()), (0, 0), "{again:?}");
    assert!(again.deleted > before, "the replaced files of every table: {again:?}");
    assert_eq!(files_on_disk(&root), 1);
    assert_eq!(snapshot_rows(&location).await?, 4000);
    assert!(root.join("events/_delta_log/_last_checkpoint").exists(), "compaction writes a checkpoint");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_day_small_files_are_merged_on_every_run() -> anyhow::Result<()> {
    let rig = Rig::new(2).await?;
    let now = chrono_now_ms();
    // Today, whatever the time: the half hour before midnight UTC or before now.
    let start = (now - 1_800_000).max(now - now % 86_400_000);
    let location = rig.warehouse().display().to_string();
    let mut cfg = rig.config();
    cfg.batch.max_events = 200;
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
    let (records, _) = fleet(2000, 200, start, (now - start).max(1), 0);
    produce_all(&rig.bootstrap, &rig.topic, &records[..1000]).await?;
    rig.wait_for_events(1000, Duration::from_secs(60)).await?;
    let root = rig.warehouse();
    assert_eq!(files_per_day(&root).len(), 1, "one day");
    assert!(files_per_day(&root)[0] > 4, "{:?}", files_per_day(&root));
    let first = args(&location).run().await?;
    assert_eq!(files_per_day(&root), vec![1], "{first:?}");
    // More events, while the transformer keeps committing: the next run merges them too.
    produce_all(&rig.bootstrap, &rig.topic, &records[1000..]).await?;
    rig.wait_for_events(2000, Duration::from_secs(60)).await?;
    let second = args(&location).run().await?;
    assert!(second.failed.is_empty(), "{second:?}");
    assert_eq!(files_per_day(&root), vec![1], "{second:?}");
    stop.cancel();
    run.await??;
    let events = rig.table("events");
    let distinct = format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {events})");
    assert_eq!(count(&distinct)?, 2000);
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, 2000);
    Ok(())
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
