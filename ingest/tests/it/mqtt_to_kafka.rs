//! Events published to the default topics arrive in Kafka once each, with key and headers.

use anyhow::Result;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_with_key_and_headers() -> Result<()> {
    let rig = Rig::start(3).await?;
    let cfg = rig.config(&["client_connack", "client_connected", "client_disconnected"]);
    let ingest = Ingest::start(cfg).await?;

    let events: Vec<_> = (0..600).map(|i| event(i, i)).collect();
    let (client, _loop) = publisher(rig.mqtt.port).await?;
    publish_all(&client, &events, None).await?;

    let reads = rig.read(&rig.topic, events.len(), 60).await?;
    assert_eq!(seqs(&reads), (0..600).collect::<Vec<u64>>(), "each event exactly once");
    for read in &reads {
        let seq = seqs(std::slice::from_ref(read))[0] as usize;
        let (mqtt_topic, payload) = &events[seq];
        assert_eq!(read.payload, payload.as_bytes(), "value is the original payload");
        let body: serde_json::Value = serde_json::from_str(payload)?;
        assert_eq!(read.key.as_deref(), body["clientid"].as_str(), "key is the clientid");
        assert_eq!(read.headers["mqtt_topic"], *mqtt_topic);
        assert_eq!(read.headers["event"], mqtt_topic.replace('_', "."));
        assert_eq!(read.headers["source"], "mqtt");
        let received: i64 = read.headers["received_at"].parse()?;
        assert!((connaudit_ingest::now_ms() - received).abs() < 120_000);
    }
    // One client's events share a partition, so their order is kept.
    let mut partition_of = std::collections::HashMap::new();
    for read in &reads {
        assert_eq!(*partition_of.entry(read.key.clone()).or_insert(read.partition), read.partition);
    }

    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    assert!(metrics.contains("connaudit_events_produced_total{event=\"client.connack\"}"), "{metrics}");
    assert!(metrics.contains("connaudit_kafka_delivery_seconds_bucket"), "{metrics}");
    assert_eq!(reqwest::get(format!("http://{}/healthz", ingest.http)).await?.status(), 200);
    ingest.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_with_qos1_reaches_kafka() -> Result<()> {
    let rig = Rig::start(1).await?;
    let cfg = rig.config(&["client_connack", "client_connected", "client_disconnected"]);
    let ingest = Ingest::start(cfg).await?;
    for i in 0..3 {
        let (mqtt_topic, payload) = event(i, 1000 + i);
        let status = std::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &rig.mqtt.port.to_string(), "-q", "1", "-t", &mqtt_topic, "-m", &payload])
            .status()?;
        assert!(status.success(), "mosquitto_pub failed");
    }
    let reads = rig.read(&rig.topic, 3, 30).await?;
    assert_eq!(seqs(&reads), vec![1000, 1001, 1002]);
    ingest.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_splits_events_across_replicas() -> Result<()> {
    let rig = Rig::start(2).await?;
    let shared = ["$share/connaudit/client_connack", "$share/connaudit/client_disconnected"];
    let a = Ingest::start(rig.config(&shared)).await?;
    let b = Ingest::start(rig.config(&shared)).await?;
    let events: Vec<_> = (0..200).map(|i| event(if i % 2 == 0 { 0 } else { 2 }, i)).collect();
    let (client, _loop) = publisher(rig.mqtt.port).await?;
    publish_all(&client, &events, None).await?;
    // Kafka has all 200 before the topic is read (see `until_produced`: CI once read 146).
    until_produced(a.http, events.len()).await?;
    a.stop().await?;
    b.stop().await?;
    let mut reads = rig.read(&rig.topic, events.len(), 60).await?;
    if reads.len() < events.len() {
        // A CI run still read fewer after all 200 were acknowledged, whole batches missing:
        // tansu can show a reader a partition's head before the batch under it is stored (see
        // `until_produced`). A second reader from the start shows what Kafka holds; the first
        // one's offsets say where it skipped.
        let offsets: Vec<(i32, i64)> = reads.iter().map(|r| (r.partition, r.offset)).collect();
        eprintln!("first read: {} of {} events at {offsets:?}; reading again", reads.len(), events.len());
        reads = rig.read(&rig.topic, events.len(), 30).await?;
    }
    assert_eq!(seqs(&reads), (0..200).collect::<Vec<u64>>(), "each event once across both replicas");
    Ok(())
}
