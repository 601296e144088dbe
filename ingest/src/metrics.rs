//! Metric names and the Prometheus recorder behind `/metrics`.

pub const RECEIVED: &str = "connaudit_events_received_total";
pub const PRODUCED: &str = "connaudit_events_produced_total";
pub const DEAD_LETTERED: &str = "connaudit_events_dead_lettered_total";
pub const ACKED: &str = "connaudit_mqtt_acks_total";
pub const STALE_ACKS: &str = "connaudit_mqtt_stale_acks_skipped_total";
pub const IN_FLIGHT: &str = "connaudit_events_in_flight";
pub const QUEUED: &str = "connaudit_events_queued";
pub const DELIVERY_SECONDS: &str = "connaudit_kafka_delivery_seconds";
pub const DELIVERY_RETRIES: &str = "connaudit_kafka_delivery_retries_total";
pub const MQTT_SESSIONS: &str = "connaudit_mqtt_sessions_total";
pub const MQTT_CONNECTION_ERRORS: &str = "connaudit_mqtt_connection_errors_total";

/// The process-wide Prometheus recorder (shared with the other stages).
pub fn install() -> metrics_exporter_prometheus::PrometheusHandle {
    connaudit_service::prometheus()
}

/// Totals for the periodic progress line; the same events the counters above count.
pub mod totals {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    pub static RECEIVED: AtomicU64 = AtomicU64::new(0);
    pub static PRODUCED: AtomicU64 = AtomicU64::new(0);
    pub static DEAD_LETTERED: AtomicU64 = AtomicU64::new(0);

    pub fn received(source: &'static str) {
        RECEIVED.fetch_add(1, Relaxed);
        metrics::counter!(super::RECEIVED, "source" => source).increment(1);
    }

    pub fn produced(event: &'static str) {
        PRODUCED.fetch_add(1, Relaxed);
        metrics::counter!(super::PRODUCED, "event" => event).increment(1);
    }

    pub fn dead_lettered(error: &'static str) {
        DEAD_LETTERED.fetch_add(1, Relaxed);
        metrics::counter!(super::DEAD_LETTERED, "error" => error).increment(1);
    }

    /// (received, produced, dead-lettered) so far.
    pub fn snapshot() -> (u64, u64, u64) {
        (RECEIVED.load(Relaxed), PRODUCED.load(Relaxed), DEAD_LETTERED.load(Relaxed))
    }
}
