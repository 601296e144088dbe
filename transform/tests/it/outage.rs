//! A warehouse that cannot be written: the transformer reports not ready, commits nothing,
//! and once the warehouse is back writes every event exactly once.

use std::time::Duration;

use connaudit_tests::fleet::fleet;
use connaudit_tests::{produce_all, wait_ready};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::harness::{count, Rig};

/// 2024-05-03T00:00:00Z
const START: i64 = 1_714_694_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_warehouse_means_not_ready_and_nothing_committed() -> anyhow::Result<()> {
    let rig = Rig::new(2).await?;
    // A file where the `events` directory should be: every events write fails.
    std::fs::create_dir_all(rig.warehouse())?;
    std::fs::write(rig.warehouse().join("events"), "in the way")?;
    let (records, _) = fleet(1000, 100, START, 3_600_000, 0);
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let cfg = rig.config();
    let (http, group) = (cfg.http_listen.to_string(), cfg.kafka.group.clone());
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let r = reqwest::get(format!("http://{http}/readyz")).await;
        if let Ok(r) = r {
            let body: serde_json::Value = r.json().await?;
            if body["warehouse"] == false && body["kafka"] == true {
                break body;
            }
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "never reported the warehouse as down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ready["warehouse"], false);
    let status = reqwest::get(format!("http://{http}/readyz")).await?.status();
    assert_eq!(status, 503);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(committed(&rig, &group, 2)?, vec![Offset::Invalid, Offset::Invalid]);

    std::fs::remove_file(rig.warehouse().join("events"))?;
    rig.wait_for_events(1000, Duration::from_secs(60)).await?;
    // Ready again once a write worked (a moment after the files are visible).
    wait_ready(&http, Duration::from_secs(10)).await?;
    stop.cancel();
    run.await??;
    let events = rig.table("events");
    let distinct = format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {events})");
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, 1000);
    assert_eq!(count(&distinct)?, 1000);
    let total: i64 = committed(&rig, &group, 2)?.iter().map(|o| o.to_raw().unwrap_or(0)).sum();
    assert_eq!(total, 1000, "after the outage every offset is committed");
    Ok(())
}

/// The group's committed offsets, read without joining the group.
fn committed(rig: &Rig, group: &str, partitions: i32) -> anyhow::Result<Vec<Offset>> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &rig.bootstrap).set("group.id", group).create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(&rig.topic, p);
    }
    let got = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(got.elements().iter().map(|e| e.offset()).collect())
}
