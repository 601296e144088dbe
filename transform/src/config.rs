//! Transform configuration: defaults, then an optional TOML file, then `CONNAUDIT_*` environment
//! variables, then command-line flags (the same layering as ingest).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest `--dedup-window`: an assigned partition reads that many rows back to rebuild it.
pub const MAX_DEDUP_WINDOW: u64 = 1_000_000;

/// Everything the transform service needs. The TOML file has the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformConfig {
    pub kafka: KafkaConfig,
    /// Local directory or object-store URL (`s3://bucket/prefix`) of the warehouse.
    pub warehouse: String,
    /// CSV of `cidr,region` lines mapping peer addresses to regions.
    pub regions: Option<PathBuf>,
    /// CSV of `node,region` lines mapping broker nodes to regions.
    pub node_regions: Option<PathBuf>,
    pub batch: BatchConfig,
    /// How many offsets back in its partition a redelivered copy of a record is looked for
    /// (0: never); about 40 bytes of memory per offset and assigned partition.
    pub dedup_window: u64,
    /// How old a session may be and still pair with its disconnect; the open sessions of a
    /// newly assigned partition are read back from this many days of `events`.
    pub session_horizon_days: u64,
    /// Attributes derived from the username: name -> a regular expression whose first group
    /// (or whole match) is the value, e.g. `tenant = '^([a-z]+)-'`.
    pub derive_attributes: BTreeMap<String, String>,
    pub alerts: AlertConfig,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub http_listen: SocketAddr,
    /// How long a SIGTERM waits for the last batches to be written.
    pub shutdown_timeout_secs: u64,
}

impl Default for TransformConfig {
    fn default() -> Self {
        TransformConfig {
            kafka: KafkaConfig::default(),
            warehouse: connaudit_warehouse::DEFAULT_LOCATION.into(),
            regions: None,
            node_regions: None,
            batch: BatchConfig::default(),
            dedup_window: 100_000,
            session_horizon_days: 7,
            derive_attributes: BTreeMap::new(),
            alerts: AlertConfig::default(),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 8081)),
            shutdown_timeout_secs: 30,
        }
    }
}

/// The consumer group and the topics it reads and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub dlq_topic: String,
    pub alerts_topic: String,
    /// Extra librdkafka settings for the consumer and the producer (security, timeouts).
    pub options: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: connaudit_kafka::topic::EVENTS.into(),
            group: "connaudit-transform".into(),
            dlq_topic: connaudit_kafka::topic::DLQ.into(),
            alerts_topic: connaudit_kafka::topic::ALERTS.into(),
            options: BTreeMap::new(),
        }
    }
}

/// When a partition's batch becomes files. The defaults suit one event per device per minute
/// from 100,000 devices (about 1,700 events/s): a file per partition about every minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Roll when a partition's batch holds this many events.
    pub max_events: usize,
    /// Roll when the oldest event of a batch has waited this long.
    pub max_age_secs: u64,
    /// Roll when a partition has been quiet this long, so a slow partition never holds events.
    pub idle_secs: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { max_events: 100_000, max_age_secs: 60, idle_secs: 10 }
    }
}

/// Alert thresholds, per minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Alert when a region's unsuccessful CONNACKs in one minute exceed this.
    pub connack_failures_per_minute: u64,
    /// Alert when one client id is taken over more than this many times in one minute.
    pub takeovers_per_minute: u64,
    /// A reconnect storm: a region's connects in one minute reach this many ...
    pub storm_connects_per_minute: u64,
    /// ... and this many times its average minute of the hour before.
    pub storm_factor: f64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            connack_failures_per_minute: 5,
            takeovers_per_minute: 3,
            storm_connects_per_minute: 100,
            storm_factor: 5.0,
        }
    }
}

impl TransformConfig {
    /// Checks what can be checked before connecting anywhere.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if self.kafka.brokers.trim().is_empty() {
            return bad("--kafka-brokers is empty; give host:port[,host:port]");
        }
        if self.kafka.topic.is_empty() || self.kafka.group.is_empty() {
            return bad("--kafka-topic and --group must not be empty");
        }
        if self.warehouse.trim().is_empty() {
            return bad("--warehouse is empty; give a directory or s3://bucket/prefix");
        }
        if !(self.alerts.storm_factor.is_finite() && self.alerts.storm_factor >= 1.0) {
            return bad("--alert-storm-factor must be a number of at least 1 (5: five times the hour before)");
        }
        crate::derive::Derived::new(&self.derive_attributes)?;
        if self.dedup_window > MAX_DEDUP_WINDOW {
            let most = MAX_DEDUP_WINDOW;
            return Err(Error::Config(format!(
                "--dedup-window is at most {most}: an assigned partition reads that many rows back to rebuild its window"
            )));
        }
        if self.session_horizon_days == 0 {
            return bad("--session-horizon-days must be at least 1");
        }
        if self.batch.max_events == 0 || self.batch.max_age_secs == 0 || self.batch.idle_secs == 0 {
            return bad("--batch-max-events, --batch-max-age-secs and --batch-idle-secs must be at least 1");
        }
        Ok(())
    }
}
