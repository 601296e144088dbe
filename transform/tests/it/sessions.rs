//! The `sessions` table through the real transformer: sessions whose connect and disconnect
//! fall into different batches, different days and different runs (the open sessions read
//! back from `events` on restart), and a lost disconnect, each as played.

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
                epoch_ms(disconnected_at) AS d, session_ms, CAST(date AS VARCHAR) AS date, connect_offset, kafka_offset \
         FROM {} ORDER BY clientid, e, end_reason",
        rig.table("sessions")
    ))?;
    let got: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    let row = |id: &str, reason: &str, c: i64, e: i64, d: Option<i64>, date: &str, co: i64, o: i64| {
        serde_json::json!({"clientid": id, "end_reason": reason, "c": c, "e": e, "d": d,
            "session_ms": d.map(|d| d - c), "date": date, "connect_offset": co, "kafka_offset": o})
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
