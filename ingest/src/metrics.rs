//! Metric names and the Prometheus recorder behind `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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

const DELIVERY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the process-wide recorder once and returns its handle; later calls reuse it.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(DELIVERY_SECONDS.into()), DELIVERY_BUCKETS)
                .expect("the bucket list is not empty");
            // Another recorder may already be installed (an embedding program); then ours
            // still renders, it just sees nothing.
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
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
