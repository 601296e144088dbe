//! `POST /events` answers only after Kafka confirmed, for single events and arrays.

use anyhow::Result;
use serde_json::{json, Value};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_reach_kafka_before_the_answer() -> Result<()> {
    let rig = Rig::start(1).await?;
    let ingest = Ingest::start(rig.config(&["client_connack"])).await?;
    let url = format!("http://{}/events", ingest.http);
    let http = reqwest::Client::new();

    let single = event(0, 1).1;
    let answer: Value = http.post(&url).body(single.clone()).send().await?.json().await?;
    assert_eq!(answer, json!({"accepted": 1, "dead_lettered": 0}));
    // Confirmed means readable right away.
    let reads = rig.read(&rig.topic, 1, 10).await?;
    assert_eq!(reads[0].payload, single.as_bytes());
    assert_eq!(reads[0].headers["source"], "http");

    let batch = format!("[{}, {}, \"oops\"]", event(1, 2).1, event(2, 3).1);
    let answer: Value = http.post(&url).body(batch).send().await?.json().await?;
    assert_eq!(answer, json!({"accepted": 2, "dead_lettered": 1}));
    let reads = rig.read(&rig.topic, 3, 10).await?;
    assert_eq!(seqs(&reads), vec![1, 2, 3]);
    assert_eq!(
        reads.iter().find(|r| seqs(std::slice::from_ref(r)) == [2]).unwrap().headers["event"],
        "client.connected"
    );

    let garbage = http.post(&url).body("<xml/>").send().await?;
    assert_eq!(garbage.status(), 200);
    assert_eq!(garbage.json::<Value>().await?, json!({"accepted": 0, "dead_lettered": 1}));
    ingest.stop().await
}
