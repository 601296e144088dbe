//! The Kafka record contract between the stages, written once: ingest writes what transform
//! reads, and both take it from here. The topics and their defaults, the headers of a record
//! (one type, [`EventHeaders`], written by ingest and read by transform; the dead-letter ones
//! beside it), the Kafka flags every service that talks to Kafka shares ([`KafkaFlags`]), and
//! the client setup they build on ([`client`]). `serve` and `query` do not link this crate:
//! they meet the others through the warehouse.

mod flags;
mod headers;

pub use flags::{kafka_option, KafkaFlags};
pub use headers::{header, EventHeaders};

/// The topics, by their default names.
pub mod topic {
    /// Events ingest produces and transform consumes.
    pub const EVENTS: &str = "mqtt.client-events";
    /// Payloads that are not events, with the reason in their headers (`error`, `error_kind`).
    pub const DLQ: &str = "mqtt.client-events.dlq";
    /// The alerts transform also writes, one record per alert.
    pub const ALERTS: &str = "mqtt.client-events.alerts";
}

/// A client of `brokers` named `client_id`, with the extra librdkafka `options` (security,
/// tuning) over connaudit's settings.
pub fn client<'a>(
    brokers: &str,
    client_id: &str,
    settings: &[(&str, &str)],
    options: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", brokers).set("client.id", client_id);
    for (k, v) in settings {
        c.set(*k, *v);
    }
    for (k, v) in options {
        c.set(k, v);
    }
    c
}

/// What every connaudit producer sets: nothing lost or doubled by a retry, every replica's
/// acknowledgement, and no delivery deadline (a record waits for Kafka as long as it takes).
pub const RELIABLE_PRODUCER: &[(&str, &str)] =
    &[("enable.idempotence", "true"), ("acks", "all"), ("message.timeout.ms", "0")];
