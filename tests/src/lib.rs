//! What connaudit's tests share: real brokers started on free loopback ports (Mosquitto,
//! tansu), a Kafka topic reader, an MQTT publisher, and sample events.

mod brokers;
mod events;
mod kafka;
mod mqtt;

pub use brokers::{connaudit_bin, free_port, Server};
pub use events::{event, seqs};
pub use kafka::{create_topics, read_topic, Read};
pub use mqtt::{publish_all, publisher};

/// A unique name for topics, groups and client ids, so tests never share state.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
