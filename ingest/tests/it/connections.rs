//! Several MQTT connections in one process (`--mqtt-connections`), each its own persistent
//! session in the same shared subscription: the queue the broker kept while ingest was away
//! drains over every connection into Kafka, nothing lost, and everything is acknowledged on the
//! connection it came on (a later start gets nothing redelivered).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;

use crate::harness::*;

const EVENTS: usize = 3000;
const CONNECTIONS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_connections_drain_a_shared_queue_and_acknowledge_each_event_on_its_own() -> Result<()> {
    let rig = Rig::start(2).await?;
    let mut cfg = rig.config(&["$share/connaudit/client_connack"]);
    cfg.mqtt.connections = CONNECTIONS;
    cfg.max_in_flight = 50;
    // The sessions and their subscriptions, then ingest is away while the events queue.
    Ingest::start(cfg.clone()).await?.stop().await?;
    let (client, _loop) = publisher(rig.mqtt.port).await?;
    let events: Vec<_> = (0..EVENTS).map(|i| event(0, i)).collect();
    publish_all(&client, &events, None).await?;

    let ingest = Ingest::start(cfg.clone()).await?;
    until_produced(ingest.http, EVENTS).await?;
    let page = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    let per_connection: Vec<f64> = (0..CONNECTIONS)
        .map(|i| metric(&page, &format!("connaudit_mqtt_events_received_total{{connection=\"{i}\"}}")).unwrap_or(0.0))
        .collect();
    // Each session got its share of the queue (Mosquitto deals a shared subscription's events
    // round-robin over its sessions, offline or not).
    assert!(per_connection.iter().all(|&n| n > 0.0), "events per connection: {per_connection:?}");
    assert_eq!(per_connection.iter().sum::<f64>(), EVENTS as f64, "events per connection: {per_connection:?}");
    ingest.stop().await?;

    let reads = rig.read(&rig.topic, EVENTS, 60).await?;
    let got: BTreeSet<u64> = seqs(&reads).into_iter().collect();
    assert_eq!(got.len(), EVENTS, "lost {}", EVENTS - got.len());
    assert_eq!(reads.len(), EVENTS, "{} duplicates", reads.len() - EVENTS);

    // Every PUBACK reached the broker on its connection: nothing comes back.
    let again = Ingest::start(cfg).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = reqwest::get(format!("http://{}/metrics", again.http)).await?.text().await?;
    let received = metric(&page, "connaudit_events_received_total{source=\"mqtt\"}").unwrap_or(0.0);
    assert_eq!(received, EVENTS as f64, "the broker redelivered {} events", received - EVENTS as f64);
    again.stop().await?;
    eprintln!("{CONNECTIONS} connections drained {EVENTS} events ({per_connection:?} each), 0 lost, 0 duplicated");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_with_every_connection_up() -> Result<()> {
    let rig = Rig::start(1).await?;
    let mut cfg = rig.config(&["$share/connaudit/client_connack"]);
    cfg.mqtt.connections = 2;
    let ingest = Ingest::start(cfg).await?;
    let body = readyz_until(ingest.http, "both connections up", |status, body| {
        status == 200 && body.contains("\"mqtt_connections_up\":2")
    })
    .await?;
    assert!(body.contains("\"mqtt\":true"), "{body}");
    ingest.stop().await?;
    Ok(())
}
