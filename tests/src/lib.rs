//! What connaudit's tests share: real brokers started on free loopback ports (Mosquitto,
//! tansu), a Kafka topic reader, an MQTT publisher, and sample events.

mod brokers;
mod delta;
mod duck;
mod events;
mod faulty_s3;
pub mod fixture;
pub mod fleet;
mod imds;
mod kafka;
mod mqtt;
mod process;
mod tls;

pub use brokers::{connaudit_bin, free_port, Server, Stack};
pub use delta::{delta_files, delta_files_at, delta_table};
pub use duck::{duckdb, python, python_json, superset_venv, venv};
pub use events::{event, seqs};
pub use faulty_s3::{Faults, FaultyS3};
pub use imds::{FakeImds, ImdsCounts, IMDS_ACCESS_KEY};
pub use kafka::{create_topics, produce_all, read_topic, Read};
pub use mqtt::{publish_all, publisher};
pub use process::Connaudit;
pub use tls::certificate_for_loopback;

/// Waits until `GET http://ADDR/readyz` answers 200.
pub async fn wait_ready(addr: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://{addr}/readyz")).await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("{addr} was not ready within {timeout:?}")
}

/// A unique name for topics, groups and client ids, so tests never share state.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
