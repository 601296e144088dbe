//! Processes killed and restarted under a steady load: ingest, the MQTT broker, transform, and a
//! rolling restart of every service.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{Load, Rig, Setup};

/// `f` strikes `times` times, `every` apart, under the load; returns the longest time from a
/// strike until the first event published after it reached the warehouse.
pub async fn strike<F>(rig: &mut Rig, load: &Load, times: usize, every: Duration, mut f: F) -> Result<f64>
where
    F: FnMut(&mut Rig, usize) -> Result<()>,
{
    let mut recovery: f64 = 0.0;
    for i in 0..times {
        tokio::time::sleep(every).await;
        let struck = Instant::now();
        f(rig, i)?;
        recovery = recovery.max(rig.arrived_after(load, struck).await?);
    }
    Ok(recovery)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_sigkilled_three_times() -> Result<()> {
    let mut rig = Rig::start(Setup::default()).await?;
    let mut load = Load::start(&rig, 12_000, 800).await?;
    let recovery = strike(&mut rig, &load, 3, Duration::from_secs(3), |rig, _| {
        rig.ingest.kill()?;
        rig.ingest.restart()
    })
    .await?;
    load.done().await?;
    let drain = rig.complete(load.records.len() as u64).await?;
    rig.finish(&load, "ingest SIGKILLed 3 times mid-stream", recovery, drain, String::new()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_broker_restarted_three_times() -> Result<()> {
    let mut rig = Rig::start(Setup::default()).await?;
    let mut load = Load::start(&rig, 12_000, 800).await?;
    let recovery = strike(&mut rig, &load, 3, Duration::from_secs(3), |rig, _| rig.mqtt.restart()).await?;
    load.done().await?;
    let drain = rig.complete(load.records.len() as u64).await?;
    let note = "Mosquitto with persistence, SIGTERM and start".to_string();
    rig.finish(&load, "MQTT broker restarted 3 times", recovery, drain, note).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_sigkilled_ten_times() -> Result<()> {
    let mut rig = Rig::start(Setup { mock: true, transforms: 2, ..Setup::default() }).await?;
    let mut load = Load::start(&rig, 15_000, 700).await?;
    let recovery = strike(&mut rig, &load, 10, Duration::from_millis(1500), |rig, i| {
        let t = &mut rig.transforms[i % 2];
        t.kill()?;
        t.restart()
    })
    .await?;
    load.done().await?;
    let drain = rig.complete(load.records.len() as u64).await?;
    let note = "two replicas in one group, killed in turn".to_string();
    rig.finish(&load, "transform SIGKILLed 10 times", recovery, drain, note).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_every_service() -> Result<()> {
    let mut rig = Rig::start(Setup { mock: true, transforms: 2, ..Setup::default() }).await?;
    let pg = connaudit_tests::free_port();
    let serve_http = format!("127.0.0.1:{}", connaudit_tests::free_port());
    #[rustfmt::skip]
    let args = [
        "serve", "--warehouse", &rig.warehouse, "--pg-listen", &format!("127.0.0.1:{pg}"),
        "--http-listen", &serve_http, "--pg-allow-anonymous",
    ];
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut serve = super::Service::start(args, Vec::new(), serve_http, rig.dir.path().join("serve.log"))?;
    serve.ready().await?;
    let mut load = Load::start(&rig, 12_000, 600).await?;
    // One service at a time, the next once the restarted one is ready, like a Deployment rollout.
    let mut recovery: f64 = 0.0;
    for step in 0..4 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let service = match step {
            0 => &mut rig.ingest,
            1 => &mut rig.transforms[0],
            2 => &mut rig.transforms[1],
            _ => &mut serve,
        };
        let struck = Instant::now();
        service.term()?;
        service.restart()?;
        service.ready().await?;
        recovery = recovery.max(rig.arrived_after(&load, struck).await?);
    }
    load.done().await?;
    let n = load.records.len() as u64;
    let drain = rig.complete(n).await?;
    // What a BI tool sees through the restarted serve.
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.to_string(), "-U", "connaudit", "-d", "connaudit", "-tAc"])
        .arg("SELECT count(*) FROM warehouse.events")
        .output()?;
    let seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
    serve.term()?;
    assert_eq!(seen, n.to_string(), "psql through serve: {}", String::from_utf8_lossy(&out.stderr));
    let note = "SIGTERM then start: ingest, both transform replicas, serve (psql counts every event)".to_string();
    rig.finish(&load, "rolling restart of every service", recovery, drain, note).await?;
    Ok(())
}
