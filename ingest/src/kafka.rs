//! The Kafka side: an idempotent producer, the record contract (key, headers), delivery with
//! retry until Kafka confirms, and the readiness probe of the cluster.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::KafkaConfig;
use crate::error::Result;
use crate::health::Health;
use crate::metrics as m;

/// The producer settings connaudit relies on; `--kafka-option` entries override them.
pub fn producer(cfg: &KafkaConfig) -> Result<FutureProducer> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &cfg.brokers)
        .set("client.id", "connaudit-ingest")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        // Never give up on an event: an outage holds it (and the MQTT ack) until Kafka is back.
        .set("message.timeout.ms", "0");
    for (k, v) in &cfg.options {
        client.set(k, v);
    }
    Ok(client.create()?)
}

/// One Kafka record, owned so it can be sent again after a failed delivery.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub key: Option<String>,
    pub payload: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

impl Record {
    fn owned_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(OwnedHeaders::new_with_capacity(self.headers.len()), |h, (k, v)| {
            h.insert(Header { key: k, value: Some(v.as_bytes()) })
        })
    }
}

/// Sends until Kafka confirms. A full local queue waits and retries; a failed delivery is
/// logged, counted and sent again, so the caller's acknowledgement waits with it.
pub async fn deliver(producer: &FutureProducer, record: &Record) {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut fr = FutureRecord::to(&record.topic).payload(record.payload.as_ref()).headers(record.owned_headers());
        if let Some(key) = &record.key {
            fr = fr.key(key.as_str());
        }
        let failure = match producer.send_result(fr) {
            Ok(delivery) => match delivery.await {
                Ok(Ok(_)) => {
                    metrics::histogram!(m::DELIVERY_SECONDS).record(started.elapsed().as_secs_f64());
                    return;
                }
                Ok(Err((e, _))) => e.to_string(),
                Err(_) => "the delivery report was cancelled".to_string(),
            },
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err((e, _)) => e.to_string(),
        };
        warn!(topic = %record.topic, error = %failure, retry_in = ?backoff, "Kafka delivery failed; sending again.");
        metrics::counter!(m::DELIVERY_RETRIES).increment(1);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Keeps the Kafka half of readiness current.
pub async fn watch(producer: FutureProducer, topic: String, health: Health, stop: CancellationToken) {
    let t = topic.clone();
    let check = move || {
        producer
            .client()
            .fetch_metadata(Some(&t), Duration::from_secs(3))
            .is_ok_and(|md| md.topics().iter().any(|mt| mt.error().is_none() && !mt.partitions().is_empty()))
    };
    connaudit_service::watch_kafka(check, topic, |up| health.set_kafka(up), stop).await
}
