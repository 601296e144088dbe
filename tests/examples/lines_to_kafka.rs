//! The producer half of the pipe a user would script around `mosquitto_sub`: reads lines from
//! stdin and produces each to a Kafka topic with librdkafka (the same library and producer
//! settings as `connaudit ingest`: idempotent, acks=all, lz4, linger 5 ms), and exits once
//! Kafka confirmed every line. For `scripts/bench-ingest.sh`.
//!
//! mosquitto_sub -q 1 -t TOPIC | lines_to_kafka BOOTSTRAP KAFKA_TOPIC

use std::io::BufRead;
use std::time::Duration;

use anyhow::Context;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic] = args.as_slice() else { anyhow::bail!("usage: lines_to_kafka BOOTSTRAP KAFKA_TOPIC") };
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .context("a Kafka producer")?;
    let mut n = 0u64;
    for line in std::io::stdin().lock().lines() {
        let mut line = line?;
        loop {
            match producer.send(BaseRecord::<(), String>::to(topic).payload(&line)) {
                Ok(()) => break,
                // The local queue is full: let librdkafka deliver some, then try again.
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    line = r.payload.cloned().unwrap_or_default();
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => anyhow::bail!("producing: {e}"),
            }
        }
        n += 1;
    }
    producer.flush(Duration::from_secs(60)).context("Kafka did not confirm every line")?;
    eprintln!("{n} lines confirmed");
    Ok(())
}
