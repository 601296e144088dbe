//! The `connaudit transform` command line. Every flag also reads a `CONNAUDIT_*` variable; a
//! flag left out keeps the value from `--config` or the built-in default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use connaudit_kafka::KafkaFlags;
use connaudit_service::config::{self, set};
use connaudit_warehouse::WarehouseFlag;

use crate::config::TransformConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Args)]
#[command(
    after_help = "Example:\n  connaudit transform --kafka-brokers kafka:9092 --warehouse s3://audit/connaudit \\\n    --regions regions.csv\n\nS3 credentials and region come from the usual AWS_* variables; AWS_ENDPOINT_URL (and\nAWS_ALLOW_HTTP=true for plain http) point it at an S3-compatible store."
)]
pub struct TransformArgs {
    /// TOML file with any of the settings below (see docs/ARCHITECTURE.md); flags win over it.
    #[arg(long, env = "CONNAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub kafka: KafkaFlags,
    /// Consumer group; replicas in one group share the topic's partitions [default: connaudit-transform]
    #[arg(long, env = "CONNAUDIT_KAFKA_GROUP", value_name = "GROUP")]
    pub group: Option<String>,
    /// Topic the alerts are also written to [default: mqtt.client-events.alerts]
    #[arg(long, env = "CONNAUDIT_KAFKA_ALERTS_TOPIC", value_name = "TOPIC")]
    pub kafka_alerts_topic: Option<String>,

    #[command(flatten)]
    pub warehouse: WarehouseFlag,
    /// CSV of `cidr,region` lines (IPv4 and IPv6; longest prefix wins) for peer addresses
    #[arg(long, env = "CONNAUDIT_REGIONS", value_name = "FILE")]
    pub regions: Option<PathBuf>,
    /// CSV of `node,region` lines for events whose peer address matches no range
    #[arg(long, env = "CONNAUDIT_NODE_REGIONS", value_name = "FILE")]
    pub node_regions: Option<PathBuf>,

    /// Write a partition's batch when it holds this many events [default: 100000]
    #[arg(long, env = "CONNAUDIT_BATCH_MAX_EVENTS", value_name = "N")]
    pub batch_max_events: Option<usize>,
    /// Write a batch when its oldest event has waited this long [default: 60]
    #[arg(long, env = "CONNAUDIT_BATCH_MAX_AGE_SECS", value_name = "SECS")]
    pub batch_max_age_secs: Option<u64>,
    /// Write a batch when its partition has been quiet this long [default: 10]
    #[arg(long, env = "CONNAUDIT_BATCH_IDLE_SECS", value_name = "SECS")]
    pub batch_idle_secs: Option<u64>,

    /// Drop a record whose fingerprint (a hash of the columns its payload decides) was kept at
    /// one of the N offsets before it in its partition: a copy a broker redelivered or a sender retried;
    /// 0 keeps every copy; at most 1000000 [default: 100000]
    #[arg(long, env = "CONNAUDIT_DEDUP_WINDOW", value_name = "N")]
    pub dedup_window: Option<u64>,
    /// Pair a disconnect with a connect at most this many days older; a newly assigned
    /// partition reads its open sessions back from this many days of events [default: 7]
    #[arg(long, env = "CONNAUDIT_SESSION_HORIZON_DAYS", value_name = "DAYS")]
    pub session_horizon_days: Option<u64>,
    /// Derive an attribute from the username: NAME=REGEX, the first group (or the whole
    /// match) becoming the value, e.g. tenant='^([a-z]+)-'; repeat for more
    #[arg(
        long = "derive-attribute",
        env = "CONNAUDIT_DERIVE_ATTRIBUTES",
        value_delimiter = ';',
        value_name = "NAME=REGEX"
    )]
    pub derive_attributes: Vec<String>,

    /// Alert when a region has more unsuccessful CONNACKs than this in a minute [default: 5]
    #[arg(long, env = "CONNAUDIT_ALERT_CONNACK_FAILURES", value_name = "N")]
    pub alert_connack_failures: Option<u64>,
    /// Alert when one client id is taken over more than this many times in a minute [default: 3]
    #[arg(long, env = "CONNAUDIT_ALERT_TAKEOVERS", value_name = "N")]
    pub alert_takeovers: Option<u64>,
    /// Alert a reconnect storm when a region's connects in a minute reach this many ...
    /// [default: 100]
    #[arg(long, env = "CONNAUDIT_ALERT_STORM_CONNECTS", value_name = "N")]
    pub alert_storm_connects: Option<u64>,
    /// ... and this many times its average minute of the hour before [default: 5]
    #[arg(long, env = "CONNAUDIT_ALERT_STORM_FACTOR", value_name = "X")]
    pub alert_storm_factor: Option<f64>,

    /// Address for /healthz, /readyz and /metrics [default: 0.0.0.0:8081]
    #[arg(long, env = "CONNAUDIT_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Seconds SIGTERM waits for the open batches to be written [default: 30]
    #[arg(long, env = "CONNAUDIT_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS")]
    pub shutdown_timeout_secs: Option<u64>,
}

impl TransformArgs {
    /// Layers the flags (and their variables) over the config file or the defaults.
    pub fn into_config(self) -> Result<TransformConfig> {
        let mut c: TransformConfig = config::load(self.config.as_deref())?;
        let k = &mut c.kafka;
        self.kafka.apply(&mut k.brokers, &mut k.topic, &mut k.dlq_topic, &mut k.options).map_err(Error::Config)?;
        set(&mut c.kafka.group, self.group);
        set(&mut c.kafka.alerts_topic, self.kafka_alerts_topic);
        set(&mut c.warehouse, self.warehouse.given);
        set(&mut c.regions, self.regions.map(Some));
        set(&mut c.node_regions, self.node_regions.map(Some));
        set(&mut c.batch.max_events, self.batch_max_events);
        set(&mut c.batch.max_age_secs, self.batch_max_age_secs);
        set(&mut c.batch.idle_secs, self.batch_idle_secs);
        set(&mut c.dedup_window, self.dedup_window);
        set(&mut c.session_horizon_days, self.session_horizon_days);
        for kv in self.derive_attributes {
            let Some((name, pattern)) = kv.split_once('=') else {
                return Err(Error::Config(format!(
                    "--derive-attribute `{kv}` is not NAME=REGEX; write it like tenant='^([a-z]+)-'"
                )));
            };
            c.derive_attributes.insert(name.trim().to_string(), pattern.to_string());
        }
        set(&mut c.alerts.connack_failures_per_minute, self.alert_connack_failures);
        set(&mut c.alerts.takeovers_per_minute, self.alert_takeovers);
        set(&mut c.alerts.storm_connects_per_minute, self.alert_storm_connects);
        set(&mut c.alerts.storm_factor, self.alert_storm_factor);
        set(&mut c.http_listen, self.http_listen);
        set(&mut c.shutdown_timeout_secs, self.shutdown_timeout_secs);
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transform.toml");
        std::fs::write(&path, "warehouse = \"s3://b/p\"\n[batch]\nmax_events = 7\n[kafka]\ngroup = \"g-file\"\n")
            .unwrap();
        let args = TransformArgs { config: Some(path), group: Some("g-flag".into()), ..Default::default() };
        let c = args.into_config().unwrap();
        assert_eq!(c.warehouse, "s3://b/p");
        assert_eq!(c.batch.max_events, 7);
        assert_eq!(c.batch.max_age_secs, 60);
        assert_eq!(c.kafka.group, "g-flag");
        assert_eq!(c.alerts.connack_failures_per_minute, 5);
    }

    #[test]
    fn bad_settings_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[batch]\nmax_event = 1\n").unwrap();
        let cases: Vec<(TransformArgs, &str)> = vec![
            (TransformArgs { config: Some(path), ..Default::default() }, "unknown field `max_event`"),
            (
                TransformArgs {
                    kafka: KafkaFlags { kafka_options: vec!["nokey".into()], ..Default::default() },
                    ..Default::default()
                },
                "not KEY=VALUE",
            ),
            (TransformArgs { batch_max_events: Some(0), ..Default::default() }, "--batch-max-events"),
            (TransformArgs { warehouse: WarehouseFlag::new(" "), ..Default::default() }, "--warehouse"),
            (TransformArgs { derive_attributes: vec!["tenant".into()], ..Default::default() }, "not NAME=REGEX"),
            (
                TransformArgs { derive_attributes: vec!["tenant=([a-z".into()], ..Default::default() },
                "--derive-attribute tenant",
            ),
        ];
        for (args, want) in cases {
            let err = args.into_config().unwrap_err();
            assert!(err.is_user_error(), "{err}");
            assert!(err.to_string().contains(want), "{err} should mention {want}");
        }
    }
}
