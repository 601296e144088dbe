//! A broker restart: ingest reconnects with backoff, resumes its session, and loses nothing.

use std::time::Duration;

use anyhow::Result;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_resumes_the_session() -> Result<()> {
    let mqtt =
        Server::mosquitto_with(|dir| Ok(format!("persistence true\npersistence_location {}/\n", dir.display())))?;
    let mut rig = Rig::with_mqtt(mqtt, 1).await?;
    let ingest = Ingest::start(rig.config(&["client_disconnected"])).await?;

    let (client, publisher_loop) = publisher(rig.mqtt.port).await?;
    publish_all(&client, &(0..100).map(|i| event(2, i)).collect::<Vec<_>>(), None).await?;
    assert_eq!(rig.read(&rig.topic, 100, 30).await?.len(), 100);

    rig.mqtt.restart()?;
    publisher_loop.abort();
    // The subscription lives in the resumed session: nothing re-subscribes it.
    ingest.wait_ready(Duration::from_secs(40)).await?;
    let (client, _loop) = publisher(rig.mqtt.port).await?;
    publish_all(&client, &(100..200).map(|i| event(2, i)).collect::<Vec<_>>(), None).await?;
    let reads = rig.read(&rig.topic, 200, 60).await?;
    assert_eq!(seqs(&reads), (0..200).collect::<Vec<u64>>());

    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    assert!(metrics.contains("connaudit_mqtt_connection_errors_total"), "the outage was counted");
    assert!(metrics.contains("connaudit_mqtt_sessions_total{session_present=\"true\"}"), "the session was resumed");
    ingest.stop().await
}
