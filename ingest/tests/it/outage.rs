//! A Kafka outage mid-stream: acknowledgements stop, the broker keeps the events, the webhook
//! answers 503, and when Kafka returns every event arrives.

use std::time::Duration;

use anyhow::Result;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_outage_loses_nothing() -> Result<()> {
    let (mqtt, kafka, topic) = mock_rig(2)?;
    let bootstrap = kafka.bootstrap_servers();
    let mut cfg = config(mqtt.port, &bootstrap, &topic, &["client_connack", "client_disconnected"]);
    cfg.max_in_flight = 50;
    cfg.http_timeout_secs = 2;
    let ingest = Ingest::start(cfg).await?;
    let (client, _loop) = publisher(mqtt.port).await?;

    let before: Vec<_> = (0..100).map(|i| event(0, i)).collect();
    publish_all(&client, &before, None).await?;
    assert_eq!(read_topic(&bootstrap, &topic, 100, Duration::from_secs(30)).await?.len(), 100);

    kafka.broker_down(1)?;
    let during: Vec<_> = (100..400).map(|i| event(2, i)).collect();
    publish_all(&client, &during, None).await?;
    // Readiness notices the outage.
    let ready = format!("http://{}/readyz", ingest.http);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reqwest::get(&ready).await?.status() == 200 {
        assert!(tokio::time::Instant::now() < deadline, "readyz stayed 200 while Kafka was down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Ingest holds at most max_in_flight events (the receive maximum the broker honours); the
    // broker keeps the other 250 unacknowledged.
    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    let in_flight = metric(&metrics, "connaudit_events_in_flight").unwrap_or(0.0);
    let queued = metric(&metrics, "connaudit_events_queued").unwrap_or(0.0);
    assert!(in_flight <= 50.0 && in_flight + queued <= 50.0, "in flight {in_flight}, queued {queued}");
    // The webhook answers 503 within its deadline, even when its queue is full (80 events,
    // room for 50), and does not store the events behind the sender's back: it retries them.
    let batch = format!("[{}]", (9000..9080).map(|i| event(0, i).1).collect::<Vec<_>>().join(","));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let answer = http.post(format!("http://{}/events", ingest.http)).body(batch).send().await?;
    assert_eq!(answer.status(), 503);

    kafka.broker_up(1)?;
    let after: Vec<_> = (400..450).map(|i| event(0, i)).collect();
    publish_all(&client, &after, None).await?;
    let reads = read_topic(&bootstrap, &topic, 450, Duration::from_secs(90)).await?;
    assert_eq!(seqs(&reads), (0..450).collect::<Vec<u64>>(), "every event once after the outage");
    ingest.stop().await
}
