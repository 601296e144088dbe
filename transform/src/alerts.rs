//! Alerts: a region whose unsuccessful CONNACKs in a minute exceed a threshold, and a client id
//! taken over again and again in a minute (two devices sharing an id). Counts run across the
//! batches this process has written, per minute, so a minute split over batches still counts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use serde::Serialize;

use crate::config::AlertConfig;

pub const CONNACK_FAILURES: &str = "connack_failures";
pub const TAKEOVER_LOOP: &str = "takeover_loop";

/// How long a minute's counts are kept after they last changed. By wall clock, not event
/// time: partitions are read at different speeds (a backfill), so event time is no guide.
const KEEP: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Start of the minute, ms since the epoch.
    pub minute: i64,
    pub kind: &'static str,
    pub region: String,
    pub clientid: Option<String>,
    pub count: i64,
    pub threshold: i64,
}

#[derive(Debug, Default)]
pub struct AlertState {
    limits: AlertConfig,
    failures: Counts,
    takeovers: Counts,
}

/// Count per (minute, key), and when it last changed.
type Counts = HashMap<(i64, String), (i64, Instant)>;

impl AlertState {
    pub fn new(limits: AlertConfig) -> Self {
        AlertState { limits, ..Default::default() }
    }

    /// Adds a batch's `region_failures` and takeover counts; returns the alerts whose count
    /// crossed its threshold with this batch (each alert fires once per minute and key).
    pub fn update(&mut self, region_failures: &[RecordBatch], takeovers: &[RecordBatch]) -> Vec<Alert> {
        let mut out = Vec::new();
        let limit = self.limits.connack_failures_per_minute as i64;
        for b in region_failures {
            let (minutes, regions) = (minutes(b), strings(b, "region"));
            let failed = b.column_by_name("failed_connacks").map(|c| c.as_primitive::<Int64Type>().clone());
            let Some(failed) = failed else { continue };
            for i in 0..b.num_rows() {
                let key = (minutes.value(i), regions.value(i).to_string());
                if let Some(count) = bump(&mut self.failures, key, failed.value(i), limit) {
                    let region = regions.value(i).to_string();
                    out.push(Alert {
                        minute: minutes.value(i) / 1000,
                        kind: CONNACK_FAILURES,
                        region,
                        clientid: None,
                        count,
                        threshold: limit,
                    });
                }
            }
        }
        let limit = self.limits.takeovers_per_minute as i64;
        for b in takeovers {
            let (minutes, clients, regions) = (minutes(b), strings(b, "clientid"), strings(b, "region"));
            let counts: &Int64Array = b.column_by_name("count").map(|c| c.as_primitive::<Int64Type>()).expect("count");
            for i in 0..b.num_rows() {
                let key = (minutes.value(i), clients.value(i).to_string());
                if let Some(count) = bump(&mut self.takeovers, key, counts.value(i), limit) {
                    out.push(Alert {
                        minute: minutes.value(i) / 1000,
                        kind: TAKEOVER_LOOP,
                        region: regions.value(i).to_string(),
                        clientid: Some(clients.value(i).to_string()),
                        count,
                        threshold: limit,
                    });
                }
            }
        }
        self.failures.retain(|_, (_, touched)| touched.elapsed() < KEEP);
        self.takeovers.retain(|_, (_, touched)| touched.elapsed() < KEEP);
        out
    }
}

/// Adds `n` to a key's count; returns the new count when it just went above `limit`.
fn bump(counts: &mut Counts, key: (i64, String), n: i64, limit: i64) -> Option<i64> {
    let (count, touched) = counts.entry(key).or_insert((0, Instant::now()));
    let before = *count;
    *count += n;
    *touched = Instant::now();
    (before <= limit && *count > limit).then_some(*count)
}

fn minutes(b: &RecordBatch) -> TimestampMicrosecondArray {
    b.column_by_name("minute").expect("minute column").as_primitive::<TimestampMicrosecondType>().clone()
}

fn strings(b: &RecordBatch, name: &str) -> StringArray {
    b.column_by_name(name).expect("string column").as_string::<i32>().clone()
}

/// The alerts as a record batch of the `alerts` table.
pub fn to_batch(alerts: &[Alert]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let minute = TimestampMicrosecondArray::from(alerts.iter().map(|a| a.minute * 1000).collect::<Vec<_>>())
        .with_timezone("UTC");
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(minute),
        Arc::new(StringArray::from_iter_values(alerts.iter().map(|a| a.kind))),
        Arc::new(StringArray::from_iter_values(alerts.iter().map(|a| a.region.as_str()))),
        Arc::new(StringArray::from_iter(alerts.iter().map(|a| a.clientid.as_deref()))),
        Arc::new(Int64Array::from_iter_values(alerts.iter().map(|a| a.count))),
        Arc::new(Int64Array::from_iter_values(alerts.iter().map(|a| a.threshold))),
    ];
    RecordBatch::try_new(connaudit_warehouse::ALERTS.file_schema(), columns)
}
