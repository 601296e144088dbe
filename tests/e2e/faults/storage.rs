//! Kafka down, object-store writes failing, compaction killed: the stores under the pipeline
//! fail while it runs.

use std::time::{Duration, Instant};

use anyhow::Result;
use connaudit_tests::{Connaudit, FaultyS3, Server};

use super::{Load, Rig, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_down_five_times_for_ten_seconds() -> Result<()> {
    let mut rig = Rig::start(Setup { mock: true, ..Setup::default() }).await?;
    let mut load = Load::start(&rig, 20_000, 300).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let base = rig.ingest.proc.rss_kib().unwrap_or(0);
    let mut peak = base;
    let mut recovery: f64 = 0.0;
    for _ in 0..5 {
        rig.mock().broker_down(1)?;
        let down = Instant::now();
        while down.elapsed() < Duration::from_secs(10) {
            peak = peak.max(rig.ingest.proc.rss_kib().unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        rig.mock().broker_up(1)?;
        recovery = recovery.max(rig.arrived_after(&load, Instant::now()).await?);
        peak = peak.max(rig.ingest.proc.rss_kib().unwrap_or(0));
    }
    load.done().await?;
    let drain = rig.complete(load.records.len() as u64).await?;
    anyhow::ensure!(rig.ingest.proc.running()?, "ingest must ride out the outages");
    let note = format!("publishing on meanwhile; ingest RSS {} MiB before, {} MiB at most", base / 1024, peak / 1024);
    rig.finish(&load, "Kafka down 5 times for 10 s", recovery, drain, note).await?;
    // Bounded: what waits during an outage waits in the broker, not in ingest.
    assert!(peak < base + 64 * 1024, "ingest grew from {base} KiB to {peak} KiB during the outages");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_object_store_write_in_ten_fails() -> Result<()> {
    let moto = Server::moto_s3()?;
    reqwest::Client::new().put(format!("http://127.0.0.1:{}/audit", moto.port)).send().await?.error_for_status()?;
    // One write in 20 refused, one in 20 carried out with its answer lost.
    let proxy = FaultyS3::start(moto.port, 20).await?;
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", proxy.port)),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let setup = Setup { warehouse: Some(("s3://audit/connaudit".into(), env)), ..Setup::default() };
    let rig = Rig::start(setup).await?;
    let mut load = Load::start(&rig, 8_000, 500).await?;
    let recovery = rig.arrived_after(&load, Instant::now()).await?;
    load.done().await?;
    let drain = rig.complete(load.records.len() as u64).await?;
    let f = &proxy.faults;
    let (writes, refused, lost) = (
        f.writes.load(std::sync::atomic::Ordering::Relaxed),
        f.refused.load(std::sync::atomic::Ordering::Relaxed),
        f.lost_answers.load(std::sync::atomic::Ordering::Relaxed),
    );
    let note = format!("moto behind a proxy: {writes} writes, {refused} refused (503), {lost} done but answered 500");
    rig.finish(&load, "10% of object-store writes failing", recovery, drain, note).await?;
    assert!(refused > 0 && lost > 0, "the proxy injected nothing: {writes} writes");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_killed_mid_way() -> Result<()> {
    let rig = Rig::start(Setup::default()).await?;
    let mut load = Load::start(&rig, 10_000, 800).await?;
    let compact = |rig: &Rig, i: &str| {
        #[rustfmt::skip]
        let args = ["compact", "--warehouse", &rig.warehouse, "--older-than-hours", "0", "--retain", "1h"];
        Connaudit::start(&args, &rig.dir.path().join(format!("compact-{i}.log")))
    };
    // Killed three times while merging (0, 60 and 120 ms after it began the first partition)
    // as transform writes, then a run to the end.
    let mut recovery: f64 = 0.0;
    let mut landed = Vec::new();
    while rig.events() < 1500 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (i, after) in [0u64, 60, 120].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let log = rig.dir.path().join(format!("compact-{i}.log"));
        let mut c = compact(&rig, &i.to_string())?;
        let begun = Instant::now();
        while !std::fs::read_to_string(&log)?.contains("Merging.") && begun.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(after)).await;
        let struck = Instant::now();
        if c.running()? {
            let merging = std::fs::read_to_string(&log)?.matches("Merging.").count();
            landed.push(format!("{after} ms into merging (partition {merging} of 4)"));
        }
        c.signal("-KILL")?;
        recovery = recovery.max(rig.arrived_after(&load, struck).await?);
    }
    load.done().await?;
    let drain = rig.complete(load.records.len() as u64).await?;
    let mut last = compact(&rig, "last")?;
    let started = Instant::now();
    anyhow::ensure!(last.wait(Duration::from_secs(120))?.success(), "the last compaction failed");
    let note = format!(
        "`connaudit compact` SIGKILLed {}; the next run took {:.1} s",
        landed.join(", "),
        started.elapsed().as_secs_f64()
    );
    rig.finish(&load, "compaction killed mid-way 3 times", recovery, drain, note).await?;
    assert_eq!(landed.len(), 3, "every kill must find the compaction running: {landed:?}");
    Ok(())
}
