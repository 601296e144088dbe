//! The shell every connaudit service shares: one Prometheus recorder for the whole process (so
//! services can run side by side in one program), the HTTP server of `/healthz`, `/readyz` and
//! `/metrics`, the SIGTERM token they drain on, the supervisor of a service's tasks, the
//! loop that keeps the Kafka half of `/readyz` current, and how settings are layered.

pub mod config;
mod http;
mod supervisor;

pub use config::ConfigError;
pub use http::{router, shutdown_on_signal, Http, Readiness};
pub use supervisor::Supervisor;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Buckets of every `*_seconds` histogram: from a millisecond (a Kafka delivery) to a minute
/// (a large batch written to object storage).
const SECONDS_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Installs the process-wide recorder once and returns its handle; later calls reuse it.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // An embedding program may have installed its own; ours then renders nothing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Asks Kafka for the topic's metadata every 5 s (every second while down) and reports
/// whether it answered with partitions. `check` blocks, so it runs on the blocking pool.
pub async fn watch_kafka<C, S>(check: C, topic: String, set: S, stop: CancellationToken)
where
    C: Fn() -> bool + Clone + Send + 'static,
    S: Fn(bool),
{
    let mut was_up = None;
    loop {
        let up = tokio::task::spawn_blocking(check.clone()).await.unwrap_or(false);
        set(up);
        if was_up != Some(up) {
            match up {
                true => info!(topic = %topic, "Kafka is reachable."),
                false => warn!(topic = %topic, "Kafka is not reachable or the topic does not exist."),
            }
            was_up = Some(up);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(if up { 5 } else { 1 })) => {}
        }
    }
}

/// Every 10 s, calls `report(before, now)` with two snapshots of `totals` when they differ,
/// until `stop`. Each stage logs its own fields.
pub async fn every_10s_when_changed<T, F, R>(totals: F, report: R, stop: CancellationToken)
where
    T: PartialEq + Copy,
    F: Fn() -> T,
    R: Fn(T, T),
{
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    let mut last = totals();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = totals();
        if now != last {
            report(last, now);
        }
        last = now;
    }
}
