//! Metric names of the transform service and the Prometheus recorder behind `/metrics`.

pub const RECORDS: &str = "connaudit_transform_records_total";
pub const BATCHES: &str = "connaudit_transform_batches_total";
pub const BATCH_SECONDS: &str = "connaudit_transform_batch_seconds";
pub const BUFFERED: &str = "connaudit_transform_buffered_events";
pub const FILES: &str = "connaudit_transform_files_written_total";
pub const BYTES: &str = "connaudit_transform_bytes_written_total";
pub const WAREHOUSE_ERRORS: &str = "connaudit_transform_warehouse_errors_total";
pub const COMMIT_ERRORS: &str = "connaudit_transform_commit_errors_total";
/// Commits refused because another writer committed the same partition first (a zombie).
pub const COMMIT_CONFLICTS: &str = "connaudit_transform_commit_conflicts_total";
/// Offsets Kafka skipped past the warehouse's position on assignment (should stay 0).
pub const POSITION_GAPS: &str = "connaudit_transform_position_gap_records_total";
pub const KAFKA_ERRORS: &str = "connaudit_transform_kafka_errors_total";
/// Dead letters Kafka refused for good, by `outcome`: `truncated` (sent again cut to 64 KiB)
/// or `dropped` (refused cut too; logged with the record's partition and offset).
pub const DEAD_LETTERS_REFUSED: &str = "connaudit_transform_dead_letters_refused_total";
/// Records skipped because the partition's offsets went back below the warehouse's position
/// (the topic was deleted and re-created, or truncated); readiness fails while it lasts.
pub const OFFSETS_WENT_BACK: &str = "connaudit_transform_offsets_went_back_records_total";
/// Sessions open in the assigned partitions (their connect seen, their end not yet).
pub const OPEN_SESSIONS: &str = "connaudit_transform_open_sessions";
/// Sessions prepared for `sessions`, by `end` = disconnect or missing (a lost disconnect).
pub const SESSIONS: &str = "connaudit_transform_sessions_total";
/// Connects and disconnects read back from `events` to rebuild a partition's open sessions.
pub const SESSIONS_READ_BACK: &str = "connaudit_transform_sessions_read_back_rows_total";
/// Alerts raised, by `kind` and `region` (a takeover loop's region is its client's).
pub const ALERTS: &str = "connaudit_alerts_total";
/// CONNACKs committed to the warehouse, by `region` and `outcome` (`accepted`, `failed`).
pub const CONNACKS: &str = "connaudit_connacks_total";
/// The connect failure rate of the newest minute this replica committed, by `region`.
pub const REGION_FAILURE_RATE: &str = "connaudit_region_failure_rate";
/// Timestamps written in seconds, microseconds or nanoseconds, converted to milliseconds.
pub const TIMESTAMPS_CONVERTED: &str = "connaudit_transform_timestamps_converted_total";

/// The process-wide Prometheus recorder (shared with the other stages).
pub fn install() -> metrics_exporter_prometheus::PrometheusHandle {
    connaudit_service::prometheus()
}

/// Totals for the periodic progress line; the same records the counters above count.
pub mod totals {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    pub static WRITTEN: AtomicU64 = AtomicU64::new(0);
    pub static DEAD_LETTERED: AtomicU64 = AtomicU64::new(0);
    pub static SKIPPED: AtomicU64 = AtomicU64::new(0);
    pub static DUPLICATE: AtomicU64 = AtomicU64::new(0);

    /// Counts records by outcome: written, dead_lettered, skipped (already in the warehouse)
    /// or duplicate (a redelivered copy, dropped).
    pub fn add(outcome: &'static str, n: u64) {
        let total = match outcome {
            "written" => &WRITTEN,
            "dead_lettered" => &DEAD_LETTERED,
            "duplicate" => &DUPLICATE,
            _ => &SKIPPED,
        };
        total.fetch_add(n, Relaxed);
        metrics::counter!(super::RECORDS, "outcome" => outcome).increment(n);
    }

    /// (written, dead-lettered, skipped, duplicate) so far.
    pub fn snapshot() -> (u64, u64, u64, u64) {
        (WRITTEN.load(Relaxed), DEAD_LETTERED.load(Relaxed), SKIPPED.load(Relaxed), DUPLICATE.load(Relaxed))
    }
}
