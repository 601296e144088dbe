//! Redelivered copies (the same payload again, later in the partition) are dropped, also after
//! a restart, where the window is read back from the warehouse; events that merely look alike
//! are kept; a copy older than the window is kept.

use std::time::Duration;

use connaudit_tests::fleet::{fleet, Record};
use connaudit_tests::{produce_all, wait_ready};
use connaudit_transform::metrics::totals;
use tokio_util::sync::CancellationToken;

use crate::harness::{count, Rig};

/// 2024-05-03T00:00:00Z
const START: i64 = 1_714_694_400_000;

/// Same client, same time, one more field: a different event.
fn lookalike(r: &Record) -> Record {
    let mut v: serde_json::Value = serde_json::from_str(&r.payload).expect("fleet payloads are JSON");
    v["keepalive"] = 7777.into();
    Record { payload: v.to_string(), ..r.clone() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_dropped_across_a_restart_and_lookalikes_kept() -> anyhow::Result<()> {
    let rig = Rig::new(1).await?;
    let (originals, _) = fleet(1600, 200, START, 3_600_000, 0);
    let (first, second) = originals.split_at(1000);
    let mut cfg = rig.config();
    cfg.dedup_window = 500;
    cfg.batch.max_events = 97;

    // Run 1: offsets 0..1000, one copy after every 10th record, right behind it or 37 later.
    let mut records = Vec::new();
    let mut copies = 0;
    for (i, r) in first.iter().enumerate() {
        records.push(r.clone());
        if i % 10 == 0 && i >= 37 && i % 20 == 0 {
            records.push(first[i - 37].clone());
            copies += 1;
        } else if i % 10 == 0 {
            records.push(r.clone());
            copies += 1;
        }
    }
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let run = |cfg: connaudit_transform::TransformConfig| async move {
        let (http, stop) = (cfg.http_listen.to_string(), CancellationToken::new());
        let task = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
        wait_ready(&http, Duration::from_secs(20)).await?;
        anyhow::Ok((task, stop))
    };
    let (task, stop) = run(cfg.clone()).await?;
    rig.wait_for_events(1000, Duration::from_secs(60)).await?;
    wait_for_duplicates(copies).await?;
    stop.cancel();
    task.await??;
    let events = rig.table("events");
    let newest = count(&format!("SELECT max(kafka_offset) AS n FROM {events}"))?;
    let same = "SELECT count(*) - count(DISTINCT (event, clientid, ts, keepalive)) AS n FROM";
    assert_eq!(count(&format!("{same} {events}"))?, 0);
    // Fingerprints are not stored: run 2 computes its window from the rows.
    assert_eq!(count(&format!("SELECT count(fingerprint) AS n FROM {events}"))?, 0);

    // Compaction of the closed day (the rows run 2 reads its window from, rewritten).
    let wh = connaudit_warehouse::Warehouse::locate(&rig.warehouse().display().to_string()).await?;
    let options = connaudit_warehouse::CompactOptions {
        older_than: Duration::ZERO,
        small_file_bytes: 1 << 26,
        retain: Duration::from_secs(3600),
        memory_limit: 64 << 20,
        dry_run: false,
        retention: Default::default(),
    };
    let merged = connaudit_warehouse::compact(&wh, &options).await?;
    assert!(merged.failed.is_empty() && merged.partitions > 0, "{merged:?}");
    let old = format!("SELECT count(*) AS n FROM {} WHERE kafka_offset <= {}", rig.table("events"), newest - 500);
    assert!(count(&old)? > 0, "records older than the window");

    // Run 2, a new process state: copies of the last 100 records of run 1 (within 500
    // offsets of them), copies of the first 10 (beyond the window: kept), lookalikes of 20, and
    // 600 new records with copies of their own.
    let offsets = records.len();
    let mut more: Vec<Record> = records[offsets - 100..].to_vec();
    copies += 100;
    more.extend(first[..10].iter().cloned());
    more.extend(first[500..520].iter().map(lookalike));
    for (i, r) in second.iter().enumerate() {
        more.push(r.clone());
        if i % 25 == 0 {
            more.push(r.clone());
            copies += 1;
        }
    }
    produce_all(&rig.bootstrap, &rig.topic, &more).await?;
    let mut cfg2 = cfg.clone();
    cfg2.http_listen = ([127, 0, 0, 1], connaudit_tests::free_port()).into();
    let (task, stop) = run(cfg2).await?;
    let want = 1000 + 10 + 20 + 600;
    rig.wait_for_events(want, Duration::from_secs(60)).await?;
    wait_for_duplicates(copies).await?;
    stop.cancel();
    task.await??;

    let events = rig.table("events");
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, want);
    // Each event once, but for the 10 copies older than the window.
    let distinct = format!("SELECT count(DISTINCT (event, clientid, ts, keepalive)) AS n FROM {events}");
    assert_eq!(count(&distinct)?, want - 10);
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events} WHERE keepalive = 7777"))?, 20);
    assert_eq!(totals::snapshot().3, copies);
    // The aggregates count what events holds.
    let rf = rig.table("region_failures");
    let summed = count(&format!("SELECT (sum(connacks) + sum(connects) + sum(disconnects))::BIGINT AS n FROM {rf}"))?;
    assert_eq!(summed, want);
    Ok(())
}

async fn wait_for_duplicates(want: u64) -> anyhow::Result<()> {
    for _ in 0..100 {
        if totals::snapshot().3 >= want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{} duplicates dropped, expected {want}", totals::snapshot().3)
}
