//! The Kafka side: a consumer in a group that commits only what the warehouse holds, the
//! producer for dead letters and alerts, and the readiness probe.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use connaudit_kafka::RELIABLE_PRODUCER;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::KafkaConfig;
use crate::error::Result;
use crate::http::Health;
use crate::metrics as m;

pub type Consumer_ = StreamConsumer<GroupContext>;

/// Records which partitions a rebalance took away, for the service loop to drop their batches.
#[derive(Default, Clone)]
pub struct GroupContext {
    revoked: Arc<Mutex<Vec<i32>>>,
}

impl GroupContext {
    pub fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            info!(partitions = ?parts, "Partitions revoked; their open batches are dropped and re-read by the next owner.");
            self.revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(parts);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            info!(partitions = ?parts, "Partitions assigned.");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            metrics::counter!(m::COMMIT_ERRORS).increment(1);
            warn!(error = %e, "Offset commit failed; the warehouse state still prevents duplicates.");
        }
    }
}

pub fn consumer(cfg: &KafkaConfig) -> Result<Arc<Consumer_>> {
    let settings = [
        ("group.id", cfg.group.as_str()),
        // Offsets are committed by hand, after the warehouse has the batch.
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        // A fetch waits at most this long for data (librdkafka's default, 500 ms, is what a
        // broker that holds fetches to their deadline, such as tansu, returns one fetch per
        // partition in: 53,000 events/s in bench/run, 78,000 at 100 ms). Override with
        // --kafka-option fetch.wait.max.ms=...
        ("fetch.wait.max.ms", "100"),
        // What librdkafka fetches ahead of the loop, at most (its default, 64 MiB, was the
        // largest part of transform's heap at its peak: valgrind's massif, 46 of 70 MB).
        // 16 MiB is about five 10,000-event batches; in bench-memory's setup it took 20-33 MiB
        // off the peak RSS at the same speed. Override with
        // --kafka-option queued.max.messages.kbytes=...
        ("queued.max.messages.kbytes", "16384"),
    ];
    let c = connaudit_kafka::client(&cfg.brokers, "connaudit-transform", &settings, &cfg.options);
    let consumer: Consumer_ = c.create_with_context(GroupContext::default())?;
    consumer.subscribe(&[&cfg.topic])?;
    Ok(Arc::new(consumer))
}

pub fn producer(cfg: &KafkaConfig) -> Result<FutureProducer> {
    Ok(connaudit_kafka::client(&cfg.brokers, "connaudit-transform", RELIABLE_PRODUCER, &cfg.options).create()?)
}

/// Largest dead-letter payload sent again after Kafka refused the whole record.
pub const DEAD_LETTER_CUT: usize = 64 * 1024;

/// Why Kafka did not take a record.
#[derive(Debug)]
pub enum Refused {
    /// This record can never be written (too large, invalid): sending it again cannot pass.
    ForGood(String),
}

/// Sends one record and waits until Kafka has it, retrying with backoff. A record Kafka can
/// never take is returned, not retried (the caller cuts it or drops it and the partition moves
/// on); while any other failure lasts (a missing topic, a denied ACL, a broker down) it is
/// retried and `/readyz` reports the topic as not writable.
pub async fn deliver(
    producer: &FutureProducer,
    health: &Health,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
) -> Result<(), Refused> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let hs = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(*v) }));
        let record = FutureRecord::to(topic).key(key).payload(payload).headers(hs);
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => {
                health.set_producing(true);
                return Ok(());
            }
            Err((e, _)) if refused_for_good(&e) => {
                metrics::counter!(m::KAFKA_ERRORS, "op" => "produce_refused").increment(1);
                return Err(Refused::ForGood(e.to_string()));
            }
            Err((e, _)) => {
                health.set_producing(false);
                metrics::counter!(m::KAFKA_ERRORS, "op" => "produce").increment(1);
                warn!(topic, error = %e, retry_in = ?backoff, "Kafka delivery failed; sending again.");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

fn refused_for_good(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        e.rdkafka_error_code(),
        Some(MessageSizeTooLarge | MessageBatchTooLarge | InvalidMessageSize | InvalidRecord | InvalidMessage)
    )
}

/// The partition's end offset (its high watermark), or `None` when Kafka does not answer.
pub async fn end_offset(consumer: &Arc<Consumer_>, topic: &str, partition: i32) -> Option<i64> {
    let (c, topic) = (consumer.clone(), topic.to_string());
    let asked = tokio::task::spawn_blocking(move || c.fetch_watermarks(&topic, partition, Duration::from_secs(5)));
    match asked.await {
        Ok(Ok((_, high))) => Some(high),
        Ok(Err(e)) => {
            warn!(partition, error = %e, "Cannot read the partition's end offset.");
            None
        }
        Err(_) => None,
    }
}

/// Commits `last + 1` for a partition and waits for the answer.
pub async fn commit(consumer: &Arc<Consumer_>, topic: &str, partition: i32, last: i64) {
    let mut tpl = TopicPartitionList::new();
    let offset = rdkafka::Offset::Offset(last + 1);
    if tpl.add_partition_offset(topic, partition, offset).is_err() {
        return;
    }
    let c = consumer.clone();
    let res = tokio::task::spawn_blocking(move || c.commit(&tpl, rdkafka::consumer::CommitMode::Sync)).await;
    if let Ok(Err(e)) = res {
        metrics::counter!(m::COMMIT_ERRORS).increment(1);
        warn!(partition, error = %e, "Offset commit failed; the warehouse state still prevents duplicates.");
    }
}

/// Keeps the Kafka half of readiness current.
pub async fn watch(consumer: Arc<Consumer_>, topic: String, health: Health, stop: CancellationToken) {
    let t = topic.clone();
    let check = move || {
        consumer
            .fetch_metadata(Some(&t), Duration::from_secs(3))
            .is_ok_and(|md| md.topics().iter().any(|mt| mt.error().is_none() && !mt.partitions().is_empty()))
    };
    connaudit_service::watch_kafka(check, topic, |up| health.set_kafka(up), stop).await
}
