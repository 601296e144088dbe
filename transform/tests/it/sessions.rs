//! Sessions and what follows from them, through the real transformer: sessions whose connect
//! and disconnect fall into different batches, different days and different runs (the open
//! sessions read back from `events` on restart), a lost disconnect, and a reconnect storm
//! alert, each as played.

use std::time::Duration;

use connaudit_tests::fleet::Record;
use connaudit_tests::{duckdb, produce_all, wait_ready};
use tokio_util::sync::CancellationToken;

use crate::harness::{count, Rig};

/// 2026-11-30T23:50:00Z
const T: i64 = 1_796_082_600_000;
const MIN: i64 = 60_000;

fn connected(id: &str, ts: i64) -> Record {
    let payload = format!(
        r#"{{"event":"client.connected","clientid":"{id}","username":"u-{id}","peername":"10.1.0.9:4000","node":"emqx@n1","connected_at":{ts},"timestamp":{ts}}}"#
    );
    Record { key: id.into(), payload, with_headers: true, event: "client.connected" }
}

fn disconnected(id: &str, since: i64, ts: i64, reason: &str) -> Record {
    let payload = format!(
        r#"{{"event":"client.disconnected","clientid":"{id}","username":"u-{id}","peername":"10.1.0.9:4000","node":"emqx@n1","reason":"{reason}","connected_at":{since},"disconnected_at":{ts},"timestamp":{ts}}}"#
    );
    Record { key: id.into(), payload, with_headers: true, event: "client.disconnected" }
}

/// Runs the transformer until `events` holds `want` rows, then stops it (SIGTERM's path).
async fn transform_until(rig: &Rig, group: &str, want: u64) -> anyhow::Result<()> {
    let mut cfg = rig.config();
    cfg.kafka.group = group.to_string();
    cfg.batch.max_events = 1;
    // The username `u-<id>` gives each session an attribute too.
    cfg.derive_attributes.insert("who".into(), "^u-(.+)$".into());
    let http = cfg.http_listen.to_string();
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
    wait_ready(&http, Duration::from_secs(20)).await?;
    let waited = rig.wait_for_events(want, Duration::from_secs(30)).await;
    stop.cancel();
    // The transformer's own error, if it failed, says more than the count.
    run.await??;
    waited
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_span_batches_days_and_restarts_and_lost_disconnects_show() -> anyhow::Result<()> {
    let rig = Rig::new(1).await?;
    // Before midnight (the first run): three connects.
    let first = [connected("across", T + 9 * MIN), connected("lost", T + 8 * MIN), connected("open", T)];
    // After midnight (a second run, which reads the open sessions back from `events`).
    let second = [
        disconnected("across", T + 9 * MIN, T + 11 * MIN, "keepalive_timeout"),
        connected("lost", T + 12 * MIN),
        disconnected("lost", T + 12 * MIN, T + 13 * MIN, "normal"),
    ];
    produce_all(&rig.bootstrap, &rig.topic, &first).await?;
    transform_until(&rig, "g", 3).await?;
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {}", rig.table("sessions")))?, 0);
    produce_all(&rig.bootstrap, &rig.topic, &second).await?;
    transform_until(&rig, "g", 6).await?;

    let rows = duckdb(&format!(
        "SELECT clientid, end_reason, epoch_ms(connected_at) AS c, epoch_ms(ended_at) AS e, \
                epoch_ms(disconnected_at) AS d, session_ms, CAST(date AS VARCHAR) AS date, connect_offset, kafka_offset, \
                attributes \
         FROM {} ORDER BY clientid, e, end_reason",
        rig.table("sessions")
    ))?;
    let got: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    let row = |id: &str, reason: &str, c: i64, e: i64, d: Option<i64>, date: &str, co: i64, o: i64| {
        serde_json::json!({"clientid": id, "end_reason": reason, "c": c, "e": e, "d": d,
            "session_ms": d.map(|d| d - c), "date": date, "connect_offset": co, "kafka_offset": o,
            "attributes": format!(r#"{{"who":"{id}"}}"#)})
        .to_string()
    };
    let want = [
        // Connected before midnight, in another batch and another run: one session, filed
        // under the day it ended.
        row("across", "keepalive_timeout", T + 9 * MIN, T + 11 * MIN, Some(T + 11 * MIN), "2026-12-01", 0, 3),
        // The first session's disconnect never came: the next connect and the disconnect of the
        // session it began prove it over.
        row("lost", "missing", T + 8 * MIN, T + 13 * MIN, None, "2026-12-01", 1, 5),
        row("lost", "normal", T + 12 * MIN, T + 13 * MIN, Some(T + 13 * MIN), "2026-12-01", 4, 5),
    ];
    assert_eq!(got, want);
    Ok(())
}

/// A node restart after a quiet hour and a half: eu-west's devices connect three a minute,
/// then 150 reconnect in one minute after the server shut their sessions down. One
/// `reconnect_storm` alert for that minute and region, counted over every batch that holds
/// part of it, naming the baseline; none for the quiet minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_is_alerted_once_with_its_baseline() -> anyhow::Result<()> {
    let rig = Rig::new(1).await?;
    let mut records = Vec::new();
    for m in 0..90 {
        for k in 0..3 {
            let id = format!("quiet-{m:02}-{k}");
            records.push(connected(&id, T + m * MIN + k * 1_000));
        }
    }
    let storm = T + 90 * MIN;
    for i in 0..150 {
        let id = format!("dev-{i:03}");
        records.push(disconnected(&id, T, storm - 5_000 + i, "server_shutting_down"));
        records.push(connected(&id, storm + 10_000 + i * 100));
    }
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let mut cfg = rig.config();
    cfg.batch.max_events = 100;
    let http = cfg.http_listen.to_string();
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
    wait_ready(&http, Duration::from_secs(20)).await?;
    let waited = rig.wait_for_events(records.len() as u64, Duration::from_secs(60)).await;
    stop.cancel();
    run.await??;
    waited?;
    let alerts = duckdb(&format!(
        "SELECT kind, epoch_ms(minute) AS minute, region, count, threshold, detail FROM {} ORDER BY minute, kind",
        rig.table("alerts")
    ))?;
    let want = serde_json::json!([{"kind": "reconnect_storm", "minute": storm, "region": "eu-west", "count": 150,
        "threshold": 100, "detail": "3.00 connects a minute in the hour before"}]);
    assert_eq!(serde_json::Value::Array(alerts), want);
    Ok(())
}
