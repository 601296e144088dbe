//! The warehouse the query and serve tests read: known events (a fleet plus a few scripted
//! stories) produced into tansu and written by the real `connaudit transform`. Built once per
//! build of the binary and shared by the test processes under a file lock.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fleet::{fleet, Record, REGIONS_CSV};
use crate::{connaudit_bin, create_topics, free_port, produce_all, Connaudit, Server};
use anyhow::{bail, Context, Result};

/// 2026-11-20T00:00:00Z: the fleet's first event.
pub const START_MS: i64 = 1_795_132_800_000;
const HOUR: i64 = 3_600_000;

/// The warehouse directory, built when missing or older than the binary.
pub fn warehouse() -> Result<PathBuf> {
    // Cargo's target/tmp, beside the binary's directory (target/debug).
    let bin = connaudit_bin()?;
    let target = bin.parent().and_then(|d| d.parent()).context("the binary has no target directory")?;
    let base = target.join("tmp").join("query-fixture");
    std::fs::create_dir_all(&base)?;
    let lock = File::create(base.join("lock"))?;
    lock.lock()?;
    let meta = std::fs::metadata(&bin)?;
    let records = records();
    // A new binary or other events rebuild the warehouse.
    let mut hash = std::hash::DefaultHasher::new();
    records.iter().for_each(|r| std::hash::Hash::hash(&r.payload, &mut hash));
    let key = format!("{:x} {:?} {}", std::hash::Hasher::finish(&hash), meta.modified()?, meta.len());
    let dir = base.join("warehouse");
    let ready = base.join("ready");
    if std::fs::read_to_string(&ready).ok().as_deref() == Some(key.as_str()) {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&ready);
    // On a thread of its own: async tests call this from inside their runtime.
    std::thread::scope(|scope| {
        scope.spawn(|| tokio::runtime::Runtime::new()?.block_on(build(&records, &dir, &base))).join()
    })
    .map_err(|_| anyhow::anyhow!("building the fixture panicked"))??;
    std::fs::write(&ready, key)?;
    Ok(dir)
}

async fn build(records: &[Record], dir: &std::path::Path, base: &std::path::Path) -> Result<()> {
    let kafka = Server::tansu()?;
    let bootstrap = kafka.bootstrap();
    let topic = "fixture.events";
    create_topics(&bootstrap, &[topic], 2).await?;
    create_topics(&bootstrap, &["fixture.dlq", "fixture.alerts"], 1).await?;
    produce_all(&bootstrap, topic, records).await?;
    let regions = base.join("regions.csv");
    std::fs::write(&regions, REGIONS_CSV)?;
    let http = format!("127.0.0.1:{}", free_port());
    let log = base.join("transform.log");
    let (wh, regions) = (dir.display().to_string(), regions.display().to_string());
    #[rustfmt::skip]
    let args = [
        "transform", "--kafka-brokers", &bootstrap, "--kafka-topic", topic, "--group", "fixture",
        "--kafka-dlq-topic", "fixture.dlq", "--kafka-alerts-topic", "fixture.alerts",
        "--warehouse", &wh, "--regions", &regions, "--batch-idle-secs", "1", "--http-listen", &http,
    ];
    let mut transform = Connaudit::start(&args, &log)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while written(&http).await < records.len() as u64 {
        if Instant::now() > deadline || !transform.running()? {
            bail!("transform did not write {} events; see {}", records.len(), log.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    transform.stop()?;
    Ok(())
}

async fn written(http: &str) -> u64 {
    let Ok(resp) = reqwest::get(format!("http://{http}/metrics")).await else { return 0 };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("connaudit_transform_records_total{outcome=\"written\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// 3000 fleet events over two days, then scripted stories on 2026-11-21 at 10:00 UTC.
pub fn records() -> Vec<Record> {
    let (mut out, _) = fleet(3000, 300, START_MS, 48 * HOUR, 0);
    let at = START_MS + 34 * HOUR;
    let mut push = |key: &str, event: &'static str, json: String| {
        out.push(Record { key: key.to_string(), payload: json, with_headers: true, event });
    };
    let connack = |id: &str, peer: &str, reason: &str, ts: i64| {
        format!(
            r#"{{"event":"client.connack","clientid":"{id}","username":"{id}","peername":"{peer}:5000","proto_ver":5,"reason_code":"{reason}","node":"emqx@node1","timestamp":{ts}}}"#
        )
    };
    let connected = |id: &str, peer: &str, ts: i64| {
        format!(
            r#"{{"event":"client.connected","clientid":"{id}","username":"{id}","peername":"{peer}:5000","proto_ver":5,"keepalive":30,"connected_at":{ts},"node":"emqx@node1","timestamp":{ts}}}"#
        )
    };
    let disconnected = |id: &str, peer: &str, reason: &str, since: i64, ts: i64| {
        format!(
            r#"{{"event":"client.disconnected","clientid":"{id}","username":"{id}","peername":"{peer}:5000","reason":"{reason}","connected_at":{since},"disconnected_at":{ts},"node":"emqx@node1","timestamp":{ts}}}"#
        )
    };
    // cam-7: a wrong password, then a session; from 10:01 two devices share the id and take
    // it over from each other five times in one minute; at last the network drops.
    push("cam-7", "client.connack", connack("cam-7", "10.1.0.7", "bad_username_or_password", at));
    push("cam-7", "client.connack", connack("cam-7", "10.1.0.7", "success", at + 5_000));
    push("cam-7", "client.connected", connected("cam-7", "10.1.0.7", at + 5_000));
    let mut since = at + 5_000;
    for i in 0..5 {
        let t = at + 60_000 + i * 10_000;
        let peer = if i % 2 == 0 { "10.2.0.9" } else { "10.1.0.7" };
        let previous = if i % 2 == 0 { "10.1.0.7" } else { "10.2.0.9" };
        push("cam-7", "client.disconnected", disconnected("cam-7", previous, "takenover", since, t));
        push("cam-7", "client.connected", connected("cam-7", peer, t + 1));
        since = t + 1;
    }
    push("cam-7", "client.disconnected", disconnected("cam-7", "10.2.0.9", "keepalive_timeout", since, at + 300_000));
    // flap-1: twelve short sessions, one a minute, each cut by the network.
    for i in 0..12 {
        let t = at + i * 60_000;
        push("flap-1", "client.connack", connack("flap-1", "10.2.0.50", "success", t));
        push("flap-1", "client.connected", connected("flap-1", "10.2.0.50", t));
        push("flap-1", "client.disconnected", disconnected("flap-1", "10.2.0.50", "tcp_closed", t, t + 20_000));
    }
    // A node restart: 40 devices on emqx@node2, connected one a minute from 10:10, lose their
    // sessions at 12:00:00 (MQTT 5 server shutting down) and all reconnect by 12:00:50: a
    // reconnect storm of that node (and us-east) in the 12:00 minute, the only one.
    for i in 0..40 {
        let id = format!("storm-{i:02}");
        let peer = format!("10.2.2.{i}");
        let (first, down, back) =
            (at + 600_000 + i * 60_000, at + 2 * 3_600_000 + i * 100, at + 2 * 3_600_000 + 30_000 + i * 500);
        let on_node2 = |json: String| json.replace("emqx@node1", "emqx@node2");
        push(&id, "client.connack", on_node2(connack(&id, &peer, "success", first)));
        push(&id, "client.connected", on_node2(connected(&id, &peer, first)));
        push(&id, "client.disconnected", on_node2(disconnected(&id, &peer, "server_shutting_down", first, down)));
        push(&id, "client.connack", on_node2(connack(&id, &peer, "success", back)));
        push(&id, "client.connected", on_node2(connected(&id, &peer, back)));
    }
    // Lost disconnects on emqx@node3: three devices connect at 10:20, connect again at 10:30
    // without a disconnect between (it never reached Kafka) and disconnect at 10:40: each a
    // session ended `missing` and one ended normally.
    for i in 0..3 {
        let id = format!("lost-{i}");
        let peer = format!("10.1.3.{i}");
        let on_node3 = |json: String| json.replace("emqx@node1", "emqx@node3");
        let (first, again, end) = (at + 1_200_000 + i * 1_000, at + 1_800_000 + i * 1_000, at + 2_400_000 + i * 1_000);
        push(&id, "client.connected", on_node3(connected(&id, &peer, first)));
        push(&id, "client.connected", on_node3(connected(&id, &peer, again)));
        push(&id, "client.disconnected", on_node3(disconnected(&id, &peer, "normal", again, end)));
    }
    // A firmware rollout: 20 devices on 2.4.0 connect twice each between 08:00 and 10:00 (one
    // refusal); from 10:00 devices 0-9 run 2.4.1 and try three times each, devices 0-5 refused
    // twice (bad credentials), while 10-19 stay on 2.4.0 and connect twice. By attribute `fw`
    // (an MQTT 5 User-Property): 2.4.1 fails 12 of 30 (none before), 2.4.0 0 of 20 (1 of 40 before).
    let with_fw = |json: String, fw: &str| {
        json.replacen(
            "\"proto_ver\":5,",
            &format!("\"proto_ver\":5,\"conn_props\":{{\"User-Property\":{{\"fw\":\"{fw}\"}}}},"),
            1,
        )
    };
    for i in 0..20_i64 {
        let id = format!("rollout-{i:02}");
        let peer = format!("10.1.4.{i}");
        for k in 0..2 {
            let reason = if i == 0 && k == 0 { "not_authorized" } else { "success" };
            let t = at - 7_200_000 + i * 60_000 + k * 1_800_000;
            push(&id, "client.connack", with_fw(connack(&id, &peer, reason, t), "2.4.0"));
        }
        let (fw, tries) = if i < 10 { ("2.4.1", 3) } else { ("2.4.0", 2) };
        for k in 0..tries {
            let reason = if i < 6 && k < 2 { "bad_username_or_password" } else { "success" };
            let t = at + 600_000 + i * 60_000 + k * 1_800_000;
            push(&id, "client.connack", with_fw(connack(&id, &peer, reason, t), fw));
        }
    }
    // Eight devices told the server is busy in one minute in us-east: a failure alert.
    for i in 0..8 {
        let id = format!("busy-{i}");
        push(&id, "client.connack", connack(&id, &format!("10.2.1.{i}"), "server_busy", at + 120_000 + i * 1_000));
    }
    out
}

/// Runs the binary; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> Result<(i32, String, String)> {
    let out = Command::new(connaudit_bin()?).args(args).env_remove("CONNAUDIT_WAREHOUSE").output()?;
    let code = out.status.code().context("killed by a signal")?;
    Ok((code, String::from_utf8(out.stdout)?, String::from_utf8(out.stderr)?))
}
