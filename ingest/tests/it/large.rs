//! Oversized events never stall ingest: the MQTT maximum packet size is announced to the broker,
//! events up to it pass, and what Kafka refuses is dead-lettered, cut to size, with its reason.

use std::process::Command;

use anyhow::{ensure, Result};

use crate::harness::*;

/// An EMQX-shaped CONNACK whose username pads it to about `bytes`.
fn big_event(seq: usize, bytes: usize) -> String {
    let pad = "u".repeat(bytes);
    format!(
        r#"{{"event":"client.connack","clientid":"big-{seq}","username":"{pad}","reason_code":0,"timestamp":1700000000000,"seq":{seq}}}"#
    )
}

fn mosquitto_pub(port: u16, topic: &str, payload: &str) -> Result<()> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), payload)?;
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-f"])
        .arg(file.path())
        .output()?;
    ensure!(out.status.success(), "mosquitto_pub: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_pass_and_what_kafka_refuses_is_dead_lettered() -> Result<()> {
    let rig = Rig::start(1).await?;
    let mut cfg = rig.config(&["client_connack"]);
    cfg.kafka.options.insert("message.max.bytes".into(), "200000".into());
    cfg.mqtt.max_packet_size = 1024 * 1024;
    let ingest = Ingest::start(cfg).await?;

    let port = rig.mqtt.port;
    mosquitto_pub(port, "client_connack", &event(0, 1).1)?;
    // 50 KB: five times rumqttc's default limit, which used to stall ingest on redelivery.
    mosquitto_pub(port, "client_connack", &big_event(2, 50_000))?;
    // 300 KB: under the MQTT limit, over Kafka's message.max.bytes.
    let refused = big_event(3, 300_000);
    mosquitto_pub(port, "client_connack", &refused)?;
    // 2 MB: over the announced packet size, so the broker must not send it at all.
    mosquitto_pub(port, "client_connack", &big_event(4, 2_000_000))?;
    mosquitto_pub(port, "client_connack", &event(0, 5).1)?;

    let reads = rig.read(&rig.topic, 3, 30).await?;
    assert_eq!(seqs(&reads), vec![1, 2, 5], "small, large and the event behind them, each once");
    let dead = rig.read(&rig.dlq(), 1, 10).await?;
    assert_eq!(dead.len(), 1, "the refused event, once");
    let d = &dead[0];
    assert_eq!(d.headers["error_kind"], "kafka_refused");
    assert!(d.headers["error"].contains("Kafka refused"), "{}", d.headers["error"]);
    assert_eq!(d.headers["truncated_from"], refused.len().to_string());
    assert_eq!(d.payload, refused.as_bytes()[..65_536].to_vec(), "the payload's head");

    // POST /events: the same limits, and the request is answered.
    let http = reqwest::Client::new();
    let body = format!("[{},{}]", event(0, 6).1, big_event(7, 300_000));
    let answer = http.post(format!("http://{}/events", ingest.http)).body(body).send().await?;
    assert_eq!(answer.status(), 200);
    let counts: serde_json::Value = answer.json().await?;
    assert_eq!((counts["accepted"].as_u64(), counts["dead_lettered"].as_u64()), (Some(1), Some(1)), "{counts}");
    assert_eq!(rig.read(&rig.dlq(), 2, 10).await?.len(), 2);

    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    assert!(metrics.contains("connaudit_kafka_refused_total 2"), "{metrics}");
    ingest.stop().await
}
