//! How fast librdkafka alone reads a topic from its start, with transform's consumer settings
//! and nothing done per record: the Kafka side of `scripts/bench-transform.sh`'s rate.
//!
//! drain_kafka BOOTSTRAP TOPIC EVENTS [KEY=VALUE...]   (DRAIN_STREAM=1: rdkafka's
//! StreamConsumer on tokio, as transform reads, instead of a polling BaseConsumer; with it,
//! DRAIN_SPIN_NS=N busy-waits N ns per record, standing in for a consumer's own work)

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::ClientConfig;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, events, options @ ..] = args.as_slice() else {
        anyhow::bail!("usage: drain_kafka BOOTSTRAP TOPIC EVENTS [KEY=VALUE...]")
    };
    let events: u64 = events.parse().context("EVENTS")?;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "drain-kafka")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100");
    for kv in options {
        let (k, v) = kv.split_once('=').context("KEY=VALUE")?;
        config.set(k, v);
    }
    let (mut n, mut bytes, mut first) = (0u64, 0usize, None);
    if std::env::var("DRAIN_STREAM").is_ok_and(|v| v == "1") {
        let runtime = tokio::runtime::Runtime::new()?;
        let _entered = runtime.enter();
        let consumer: StreamConsumer = config.create().context("a Kafka consumer")?;
        consumer.subscribe(&[topic.as_str()])?;
        runtime.block_on(async {
            let spin = std::env::var("DRAIN_SPIN_NS").ok().and_then(|v| v.parse().ok()).unwrap_or(0u64);
            while n < events {
                let m = consumer.recv().await?;
                let t = Instant::now();
                while (t.elapsed().as_nanos() as u64) < spin {}
                first.get_or_insert_with(Instant::now);
                bytes += rdkafka::Message::payload(&m).map_or(0, <[u8]>::len);
                n += 1;
            }
            anyhow::Ok(())
        })?;
    } else {
        let consumer: BaseConsumer = config.create().context("a Kafka consumer")?;
        consumer.subscribe(&[topic.as_str()])?;
        while n < events {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    first.get_or_insert_with(Instant::now);
                    bytes += rdkafka::Message::payload(&m).map_or(0, <[u8]>::len);
                    n += 1;
                }
                Some(Err(e)) => eprintln!("{e}"),
                None => {}
            }
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    println!("{n} records ({bytes} bytes) in {secs:.2} s from the first: {:.0} records/s", n as f64 / secs);
    Ok(())
}
