//! `connaudit compact` merges each closed day into one sorted file and the open day's finished
//! batch files into one per run; readers see the same rows before, during and after; a batch
//! that may still be rewritten is left alone.

use std::time::Duration;

use connaudit_tests::fleet::fleet;
use connaudit_tests::produce_all;
use connaudit_transform::{compact, CompactArgs};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tokio_util::sync::CancellationToken;

use crate::harness::{count, file_facts, Rig};

/// 2024-05-04T00:00:00Z
const START: i64 = 1_714_780_800_000;

/// Parquet files in each `events/date=...` directory.
fn files_per_dir(root: &std::path::Path) -> Vec<usize> {
    let mut out = Vec::new();
    for day in std::fs::read_dir(root.join("events")).unwrap() {
        let n = std::fs::read_dir(day.unwrap().path())
            .unwrap()
            .filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().ends_with(".parquet"));
        out.push(n.count());
    }
    out
}

async fn datafusion_count(dir: &str) -> datafusion::error::Result<usize> {
    let ctx = SessionContext::new();
    ctx.register_parquet("events", dir, ParquetReadOptions::default()).await?;
    let batches = ctx.sql("SELECT * FROM events").await?.collect().await?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_closed_partitions_without_readers_seeing_a_change() -> anyhow::Result<()> {
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
    assert!(files_per_dir(&root).iter().all(|n| *n > 2), "{:?}", files_per_dir(&root));
    let args = CompactArgs { warehouse: root.display().to_string(), older_than_hours: 2, dry_run: false };

    // A batch recorded as pending (as after a crash) keeps its partitions as they are.
    let state = std::fs::read_dir(root.join("_state").join(&rig.topic))?
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap() == "0.json")
        .expect("partition 0 state");
    let saved = std::fs::read(&state)?;
    std::fs::write(&state, r#"{"done":-1,"pending":[0,299]}"#)?;
    let skipped = compact(&args).await?;
    assert_eq!(skipped.partitions, 0, "the day holds partition 0's files");
    std::fs::write(&state, saved)?;

    let dir = format!("{}/events/", root.display());
    let reader = {
        let dir = dir.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..200 {
                if let Ok(n) = datafusion_count(&dir).await {
                    seen.push(n);
                }
            }
            seen
        })
    };
    let merged = compact(&args).await?;
    let seen = reader.await?;
    assert!(merged.partitions >= 2 && merged.files > merged.partitions, "{merged:?}");
    assert!(!seen.is_empty() && seen.iter().all(|n| *n == 4000), "a reader saw {seen:?}");
    assert!(files_per_dir(&root).iter().all(|n| *n == 1), "{:?}", files_per_dir(&root));
    assert!(!root.join("_compact").join("events").read_dir().is_ok_and(|mut d| d.next().is_some()));

    let events = rig.table("events");
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, 4000);
    let distinct = format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {events})");
    assert_eq!(count(&distinct)?, 4000);
    let facts = file_facts(&root)?;
    assert_eq!(facts["unsorted"], 0, "{facts}");
    assert_eq!(facts["bloom"], facts["files"], "{facts}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_day_keeps_one_merged_file_per_run() -> anyhow::Result<()> {
    let rig = Rig::new(2).await?;
    let now = connaudit_transform::now_ms();
    // Today, whatever the time: the half hour before midnight UTC or before now.
    let start = (now - 1_800_000).max(now - now % 86_400_000);
    let args = CompactArgs { warehouse: rig.warehouse().display().to_string(), older_than_hours: 2, dry_run: false };
    let mut cfg = rig.config();
    cfg.batch.max_events = 200;
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
    let (records, _) = fleet(2000, 200, start, (now - start).max(1), 0);
    produce_all(&rig.bootstrap, &rig.topic, &records[..1000]).await?;
    rig.wait_for_events(1000, Duration::from_secs(60)).await?;
    // The batch state is marked done just after its files appear.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let root = rig.warehouse();
    assert_eq!(files_per_dir(&root).len(), 1, "one day");
    assert!(files_per_dir(&root)[0] > 4, "{:?}", files_per_dir(&root));
    let first = compact(&args).await?;
    assert_eq!(files_per_dir(&root), vec![1], "{first:?}");
    // More events: the next run merges the new batch files only, beside the first merge.
    produce_all(&rig.bootstrap, &rig.topic, &records[1000..]).await?;
    rig.wait_for_events(2000, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = compact(&args).await?;
    assert_eq!(files_per_dir(&root), vec![2], "{second:?}");
    stop.cancel();
    run.await??;
    let events = rig.table("events");
    let distinct = format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {events})");
    assert_eq!(count(&distinct)?, 2000);
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, 2000);
    Ok(())
}
