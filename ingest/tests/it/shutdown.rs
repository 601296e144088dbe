//! A graceful stop mid-stream loses nothing: what was not acknowledged is redelivered to the
//! next run with the same client id.

use std::time::Duration;

use anyhow::Result;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_then_resume_loses_nothing() -> Result<()> {
    let rig = Rig::start(1).await?;
    let cfg = rig.config(&["client_connack"]);
    let first = Ingest::start(cfg.clone()).await?;

    let events: Vec<_> = (0..2000).map(|i| event(0, i)).collect();
    let (client, _loop) = publisher(rig.mqtt.port).await?;
    let publish = tokio::spawn({
        let client = client.clone();
        let events = events.clone();
        // About two seconds of events, so the stop lands in the middle of the stream.
        async move { publish_all(&client, &events, Some(Duration::from_millis(1))).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.stop().await?;
    let before_restart = rig.read(&rig.topic, events.len(), 2).await?.len();
    assert!(before_restart > 0 && before_restart < events.len(), "stopped mid-stream, after {before_restart}");
    publish.await??;

    // Same client id: the broker resumes the session and sends what was not acknowledged.
    let mut again = cfg;
    again.http_listen.set_port(free_port());
    let second = Ingest::start(again).await?;
    let reads = rig.read(&rig.topic, events.len(), 90).await?;
    let mut got = seqs(&reads);
    let total = got.len();
    got.dedup();
    assert_eq!(got, (0..2000).collect::<Vec<u64>>(), "no event lost across the restart");
    // Acks go out before the DISCONNECT, so the restart itself redelivers nothing; only a
    // dropped connection (acks of the old connection are then skipped) may.
    let metrics = reqwest::get(format!("http://{}/metrics", second.http)).await?.text().await?;
    let reconnected = metrics.contains("connaudit_mqtt_connection_errors_total");
    assert!(total == 2000 || reconnected, "{} duplicates without a reconnect", total - 2000);
    second.stop().await
}
