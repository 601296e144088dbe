//! QoS 0 events are outside the broker's flow control: during a Kafka outage ingest holds a
//! bounded number and drops the rest, counted, instead of growing without bound.

use std::time::Duration;

use anyhow::Result;
use rumqttc::QoS;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_is_bounded_during_an_outage() -> Result<()> {
    let (mqtt, kafka, topic) = mock_rig(1)?;
    let bootstrap = kafka.bootstrap_servers();
    let mut cfg = config(mqtt.port, &bootstrap, &topic, &["client_connack"]);
    cfg.max_in_flight = 20;
    let ingest = Ingest::start(cfg).await?;
    let (client, _loop) = publisher(mqtt.port).await?;

    kafka.broker_down(1)?;
    for i in 0..300 {
        let (t, p) = event(0, i);
        client.publish(t, QoS::AtMostOnce, false, p.into_bytes()).await?;
    }
    let metrics_url = format!("http://{}/metrics", ingest.http);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (received, dropped) = loop {
        let text = reqwest::get(&metrics_url).await?.text().await?;
        let received = metric(&text, "connaudit_events_received_total{source=\"mqtt\"}").unwrap_or(0.0);
        let dropped = metric(&text, "connaudit_events_dropped_total{reason=\"qos0_overflow\"}").unwrap_or(0.0);
        if received + dropped >= 300.0 {
            break (received, dropped);
        }
        assert!(tokio::time::Instant::now() < deadline, "received {received}, dropped {dropped}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(received <= 40.0, "at most max_in_flight in flight and as many queued: {received}");
    assert_eq!(received + dropped, 300.0);

    kafka.broker_up(1)?;
    let reads = read_topic(&bootstrap, &topic, received as usize, Duration::from_secs(60)).await?;
    assert_eq!(reads.len(), received as usize, "every event taken reaches Kafka");
    ingest.stop().await
}
