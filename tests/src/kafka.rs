//! Kafka helpers: create topics, read a topic back from the beginning.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;

pub async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().context("admin client")?;
    let new: Vec<_> = topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await? {
        if let Err((topic, code)) = result {
            bail!("cannot create topic {topic}: {code}");
        }
    }
    Ok(())
}

/// A record as read back from Kafka.
#[derive(Debug, Clone)]
pub struct Read {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

/// Reads `topic` from the beginning until `want` records arrived, then one more second to
/// catch duplicates, or until `timeout`. Never trusts high watermarks (tansu reports the base
/// offset of the last batch there).
pub async fn read_topic(bootstrap: &str, topic: &str, want: usize, timeout: Duration) -> Result<Vec<Read>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique("test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut settle: Option<tokio::time::Instant> = None;
    loop {
        let until = settle.unwrap_or(deadline).min(deadline);
        let msg = match tokio::time::timeout_at(until, consumer.recv()).await {
            Err(_) => break,
            Ok(msg) => msg?,
        };
        let headers = msg
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Read {
            key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: msg.payload().unwrap_or_default().to_vec(),
            headers,
            partition: msg.partition(),
            offset: msg.offset(),
        });
        if out.len() >= want && settle.is_none() {
            settle = Some(tokio::time::Instant::now() + Duration::from_secs(1));
        }
    }
    Ok(out)
}

/// Produces the fleet's records with the key and, where asked, ingest's headers; waits until
/// Kafka has all of them.
pub async fn produce_all(bootstrap: &str, topic: &str, records: &[crate::fleet::Record]) -> Result<()> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000")
        .create()?;
    let mut pending = futures::stream::FuturesUnordered::new();
    for r in records {
        let mut rec = FutureRecord::to(topic).key(&r.key).payload(&r.payload);
        if r.with_headers {
            let h = OwnedHeaders::new()
                .insert(Header { key: "event", value: Some(r.event) })
                .insert(Header { key: "mqtt_topic", value: Some(r.event.replace('.', "_").as_str()) });
            rec = rec.headers(h);
        }
        loop {
            match producer.send_result(rec) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((_, back)) => {
                    rec = back;
                    use futures::StreamExt;
                    if let Some(done) = pending.next().await {
                        done?.map_err(|(e, _)| e)?;
                    }
                }
            }
        }
        if pending.len() >= 50_000 {
            use futures::StreamExt;
            while let Some(done) = pending.next().await {
                done?.map_err(|(e, _)| e)?;
            }
        }
    }
    use futures::StreamExt;
    while let Some(done) = pending.next().await {
        done?.map_err(|(e, _)| e)?;
    }
    Ok(())
}
