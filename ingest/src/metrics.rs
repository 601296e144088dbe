//! Metric names and the Prometheus recorder behind `/metrics`.

pub const RECEIVED: &str = "connaudit_events_received_total";
pub const PRODUCED: &str = "connaudit_events_produced_total";
pub const DEAD_LETTERED: &str = "connaudit_events_dead_lettered_total";
pub const ACKED: &str = "connaudit_mqtt_acks_total";
pub const STALE_ACKS: &str = "connaudit_mqtt_stale_acks_skipped_total";
/// Redeliveries (DUP) of events Kafka already had from this process: acknowledged, not produced.
pub const REDELIVERED: &str = "connaudit_mqtt_redeliveries_skipped_total";
pub const IN_FLIGHT: &str = "connaudit_events_in_flight";
pub const QUEUED: &str = "connaudit_events_queued";
pub const DELIVERY_SECONDS: &str = "connaudit_kafka_delivery_seconds";
pub const DELIVERY_RETRIES: &str = "connaudit_kafka_delivery_retries_total";
/// Events each MQTT connection received, by `connection` (0, 1, ... of `--mqtt-connections`).
pub const MQTT_RECEIVED: &str = "connaudit_mqtt_events_received_total";
pub const MQTT_SESSIONS: &str = "connaudit_mqtt_sessions_total";
pub const MQTT_CONNECTION_ERRORS: &str = "connaudit_mqtt_connection_errors_total";
/// Records Kafka refused for good (too large, invalid); each is dead-lettered instead.
pub const KAFKA_REFUSED: &str = "connaudit_kafka_refused_total";
/// Events given up on, by `reason`: `qos0_overflow` (QoS 0 beyond the queue bound, which the
/// broker cannot redeliver), `refused_by_kafka` (not even the dead-letter topic took it).
pub const DROPPED: &str = "connaudit_events_dropped_total";
/// 1 while events wait for Kafka and none was confirmed for `--stall-timeout-secs`.
pub const STALLED: &str = "connaudit_pipeline_stalled";
/// MQTT subscriptions the broker refused, by `topic`.
pub const SUBSCRIBE_REFUSED: &str = "connaudit_mqtt_subscriptions_refused_total";
/// HTTP requests refused, by `status` (401 no token, 408 slow body, 413 too large, 429 too
/// many at once, 503 bodies over --http-max-body-memory).
pub const HTTP_REFUSED: &str = "connaudit_http_requests_refused_total";

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
