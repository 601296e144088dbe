//! Metric names of the transform service and the Prometheus recorder behind `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const RECORDS: &str = "connaudit_transform_records_total";
pub const BATCHES: &str = "connaudit_transform_batches_total";
pub const BATCH_SECONDS: &str = "connaudit_transform_batch_seconds";
pub const BUFFERED: &str = "connaudit_transform_buffered_events";
pub const FILES: &str = "connaudit_transform_files_written_total";
pub const BYTES: &str = "connaudit_transform_bytes_written_total";
pub const WAREHOUSE_ERRORS: &str = "connaudit_transform_warehouse_errors_total";
pub const COMMIT_ERRORS: &str = "connaudit_transform_commit_errors_total";
pub const KAFKA_ERRORS: &str = "connaudit_transform_kafka_errors_total";
pub const ALERTS: &str = "connaudit_alerts_total";

const BATCH_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Installs the process-wide recorder once and returns its handle; later calls reuse it.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(BATCH_SECONDS.into()), BATCH_BUCKETS)
                .expect("the bucket list is not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program); then ours
            // still renders, it just sees nothing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Totals for the periodic progress line; the same records the counters above count.
pub mod totals {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    pub static WRITTEN: AtomicU64 = AtomicU64::new(0);
    pub static DEAD_LETTERED: AtomicU64 = AtomicU64::new(0);
    pub static SKIPPED: AtomicU64 = AtomicU64::new(0);

    pub fn add(outcome: &'static str, n: u64) {
        let total = match outcome {
            "written" => &WRITTEN,
            "dead_lettered" => &DEAD_LETTERED,
            _ => &SKIPPED,
        };
        total.fetch_add(n, Relaxed);
        metrics::counter!(super::RECORDS, "outcome" => outcome).increment(n);
    }

    /// (written, dead-lettered, skipped) so far.
    pub fn snapshot() -> (u64, u64, u64) {
        (WRITTEN.load(Relaxed), DEAD_LETTERED.load(Relaxed), SKIPPED.load(Relaxed))
    }
}
