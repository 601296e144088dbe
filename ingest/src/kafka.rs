//! The Kafka side: an idempotent producer, the record contract (key, headers), delivery with
//! retry until Kafka confirms, and the readiness probe of the cluster.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::error::Result;
use crate::health::Health;
use crate::metrics as m;

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

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Confirmed,
    /// Kafka will never take this record (too large, invalid); the reason.
    Refused(String),
}

/// The producer cannot go on (an idempotent producer's fatal error); the process must restart.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the Kafka producer hit a fatal error: {0}")]
pub struct Fatal(pub String);

/// What a failed delivery means for the record and the service.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Retrying passes once the cluster recovers.
    Transient,
    /// Retrying cannot pass until an operator acts (a missing topic, a denied ACL): retried,
    /// but reported and failing readiness.
    Blocked,
    /// This record can never be written.
    Refused,
}

fn classify(code: Option<RDKafkaErrorCode>) -> Failure {
    use RDKafkaErrorCode::*;
    match code {
        Some(MessageSizeTooLarge | MessageBatchTooLarge | InvalidMessageSize | InvalidRecord | InvalidMessage) => {
            Failure::Refused
        }
        Some(
            UnknownTopicOrPartition
            | UnknownTopic
            | TopicAuthorizationFailed
            | ClusterAuthorizationFailed
            | SaslAuthenticationFailed
            | Authentication
            | InvalidTopic
            | PolicyViolation
            | SSL,
        ) => Failure::Blocked,
        _ => Failure::Transient,
    }
}

/// Sends until Kafka confirms or refuses the record for good. A full local queue waits and
/// retries; a transient failure is logged, counted and sent again, so the caller's
/// acknowledgement waits with it; a blocking one (missing topic, denied ACL) is retried too but
/// fails readiness until it clears; a fatal producer error ends the delivery with `Fatal`.
pub async fn deliver(producer: &FutureProducer, record: &Record, health: &Health) -> Result<Delivered, Fatal> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut fr = FutureRecord::to(&record.topic).payload(record.payload.as_ref()).headers(record.owned_headers());
        if let Some(key) = &record.key {
            fr = fr.key(key.as_str());
        }
        let (code, failure) = match producer.send_result(fr) {
            Ok(delivery) => match delivery.await {
                Ok(Ok(_)) => {
                    metrics::histogram!(m::DELIVERY_SECONDS).record(started.elapsed().as_secs_f64());
                    if backoff > Duration::from_millis(100) {
                        health.set_problem(&problem_key(&record.topic), None);
                    }
                    return Ok(Delivered::Confirmed);
                }
                Ok(Err((e, _))) => (e.rdkafka_error_code(), e.to_string()),
                Err(_) => (None, "the delivery report was cancelled".to_string()),
            },
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err((e, _)) => (e.rdkafka_error_code(), e.to_string()),
        };
        if let Some((_, reason)) = producer.client().fatal_error() {
            return Err(Fatal(reason));
        }
        match classify(code) {
            Failure::Refused => {
                metrics::counter!(m::KAFKA_REFUSED).increment(1);
                return Ok(Delivered::Refused(failure));
            }
            Failure::Blocked => {
                metrics::counter!(m::DELIVERY_RETRIES, "kind" => "blocked").increment(1);
                error!(topic = %record.topic, error = %failure, retry_in = ?backoff,
                    "Kafka refuses this topic; retrying, not ready until it accepts (create the topic or grant the ACL).");
                health.set_problem(&problem_key(&record.topic), Some(failure));
            }
            Failure::Transient => {
                metrics::counter!(m::DELIVERY_RETRIES, "kind" => "transient").increment(1);
                warn!(topic = %record.topic, error = %failure, retry_in = ?backoff, "Kafka delivery failed; sending again.");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// The readiness problem of a topic Kafka refuses.
fn problem_key(topic: &str) -> String {
    format!("kafka topic {topic}")
}

/// Keeps the Kafka half of readiness current: the cluster answers and has both the events
/// topic and the dead-letter topic (a missing one is named in `/readyz`). Ends with `Fatal`
/// when the producer hit a fatal error (checked every second), which stops the service.
pub async fn watch(
    producer: FutureProducer,
    topics: [String; 2],
    health: Health,
    stop: CancellationToken,
) -> Result<(), Fatal> {
    let (p, h, names) = (producer.clone(), health.clone(), topics.clone());
    let check = move || {
        let mut missing = Vec::new();
        for topic in &names {
            let Ok(md) = p.client().fetch_metadata(Some(topic), Duration::from_secs(3)) else {
                return false;
            };
            if !md.topics().iter().any(|mt| mt.error().is_none() && !mt.partitions().is_empty()) {
                missing.push(topic.as_str());
            }
        }
        let problem = (!missing.is_empty())
            .then(|| format!("Kafka has no topic {}: create it (ingest does not)", missing.join(" and ")));
        h.set_problem("kafka topics", problem);
        missing.is_empty()
    };
    let fatal = async {
        loop {
            if let Some((_, reason)) = producer.client().fatal_error() {
                return Fatal(reason);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let [topic, dlq] = topics;
    tokio::select! {
        _ = connaudit_service::watch_kafka(check, format!("{topic}, {dlq}"), |up| health.set_kafka(up), stop) => Ok(()),
        fatal = fatal => Err(fatal),
    }
}
