//! The `connaudit ingest` command line. Every flag also reads a `CONNAUDIT_*` variable; a flag
//! left out keeps the value from `--config` or the built-in default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use connaudit_kafka::KafkaFlags;
use connaudit_service::config::{self, set};

use crate::config::IngestConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Args)]
#[command(
    after_help = "Example:\n  connaudit ingest --mqtt-url mqtt://user:pass@emqx:1883 \\\n    --mqtt-topic '$share/connaudit/client_connack' --kafka-brokers kafka:9092"
)]
pub struct IngestArgs {
    /// TOML file with any of the settings below (see docs/ARCHITECTURE.md); flags win over it.
    #[arg(long, env = "CONNAUDIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// MQTT broker: mqtt://[user:pass@]host:port, or mqtts:// for TLS [default: mqtt://127.0.0.1:1883]
    #[arg(long, env = "CONNAUDIT_MQTT_URL", value_name = "URL", hide_env_values = true)]
    pub mqtt_url: Option<String>,
    /// Topic to subscribe to, repeatable; $share/GROUP/TOPIC splits load across replicas
    /// [default: client_connack, client_connected, client_disconnected]
    #[arg(long = "mqtt-topic", env = "CONNAUDIT_MQTT_TOPICS", value_delimiter = ',', value_name = "TOPIC")]
    pub mqtt_topics: Vec<String>,
    /// MQTT client id; give each replica its own [default: connaudit-ingest-$HOSTNAME]
    #[arg(long, env = "CONNAUDIT_MQTT_CLIENT_ID", value_name = "ID")]
    pub mqtt_client_id: Option<String>,
    /// MQTT connections, each its own session (ID, ID-1, ...) in the same shared
    /// subscriptions ($share/ topics only): n in-flight windows instead of one [default: 1]
    #[arg(long, env = "CONNAUDIT_MQTT_CONNECTIONS", value_name = "N")]
    pub mqtt_connections: Option<usize>,
    /// MQTT username (overrides the URL's)
    #[arg(long, env = "CONNAUDIT_MQTT_USERNAME", value_name = "NAME")]
    pub mqtt_username: Option<String>,
    /// MQTT password (overrides the URL's); prefer the environment variable
    #[arg(long, env = "CONNAUDIT_MQTT_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub mqtt_password: Option<String>,
    /// CA certificate (PEM) to verify an mqtts:// broker
    #[arg(long, env = "CONNAUDIT_MQTT_CA_FILE", value_name = "FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS
    #[arg(long, env = "CONNAUDIT_MQTT_CLIENT_CERT", value_name = "FILE", requires = "mqtt_client_key")]
    pub mqtt_client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS
    #[arg(long, env = "CONNAUDIT_MQTT_CLIENT_KEY", value_name = "FILE", requires = "mqtt_client_cert")]
    pub mqtt_client_key: Option<PathBuf>,
    /// MQTT keepalive in seconds [default: 30]
    #[arg(long, env = "CONNAUDIT_MQTT_KEEPALIVE_SECS", value_name = "SECS")]
    pub mqtt_keepalive_secs: Option<u64>,
    /// How long the broker keeps the session and queued events while ingest is away [default: 86400]
    #[arg(long, env = "CONNAUDIT_MQTT_SESSION_EXPIRY_SECS", value_name = "SECS")]
    pub mqtt_session_expiry_secs: Option<u32>,
    /// Largest MQTT packet taken, announced to the broker (MQTT 5 Maximum Packet Size); the
    /// broker drops larger events instead of sending them [default: 1048576]
    #[arg(long, env = "CONNAUDIT_MQTT_MAX_PACKET_SIZE", value_name = "BYTES")]
    pub mqtt_max_packet_size: Option<u32>,
    /// Map a topic to an event type for payloads without an `event` field, repeatable
    /// (e.g. acme/connack=client.connack)
    #[arg(long = "topic-event", env = "CONNAUDIT_TOPIC_EVENTS", value_delimiter = ',', value_name = "TOPIC=EVENT")]
    pub topic_events: Vec<String>,
    /// Which broker's events a topic filter carries, repeatable (e.g. '$events/#=tdmq'): sets
    /// the `broker` column where the payload cannot tell (TDMQ speaks EMQX's shape) and sends
    /// other shapes on those topics to the dead-letter topic
    #[arg(
        long = "source-format",
        env = "CONNAUDIT_SOURCE_FORMATS",
        value_delimiter = ',',
        value_name = "FILTER=FORMAT"
    )]
    pub source_formats: Vec<String>,

    #[command(flatten)]
    pub kafka: KafkaFlags,

    /// Address for /events, /healthz, /readyz and /metrics [default: 0.0.0.0:8080]
    #[arg(long, env = "CONNAUDIT_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Most events between broker and Kafka confirmation per MQTT connection; its receive
    /// maximum [default: 1000]
    #[arg(long, env = "CONNAUDIT_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Seconds POST /events waits for Kafka before answering 503 [default: 30]
    #[arg(long, env = "CONNAUDIT_HTTP_TIMEOUT_SECS", value_name = "SECS")]
    pub http_timeout_secs: Option<u64>,
    /// Seconds SIGTERM waits to confirm and acknowledge in-flight events [default: 30]
    #[arg(long, env = "CONNAUDIT_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Seconds events may wait with none confirmed by Kafka before /readyz fails [default: 60]
    #[arg(long, env = "CONNAUDIT_STALL_TIMEOUT_SECS", value_name = "SECS")]
    pub stall_timeout_secs: Option<u64>,
    /// Bearer token POST /events requires; prefer the environment variable (a Secret)
    #[arg(long, env = "CONNAUDIT_HTTP_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub http_token: Option<String>,
    /// Largest POST /events body in bytes; larger gets 413 [default: 10485760]
    #[arg(long, env = "CONNAUDIT_HTTP_MAX_BODY_BYTES", value_name = "BYTES")]
    pub http_max_body_bytes: Option<usize>,
    /// Most events in one POST /events body; more gets 413 [default: 10000]
    #[arg(long, env = "CONNAUDIT_HTTP_MAX_EVENTS", value_name = "N")]
    pub http_max_events: Option<usize>,
    /// Most POST /events requests served at once; more get 429 [default: 64]
    #[arg(long, env = "CONNAUDIT_HTTP_MAX_CONCURRENT", value_name = "N")]
    pub http_max_concurrent: Option<usize>,
    /// Seconds a client may take to send a POST /events body; slower gets 408 [default: 10]
    #[arg(long, env = "CONNAUDIT_HTTP_BODY_TIMEOUT_SECS", value_name = "SECS")]
    pub http_body_timeout_secs: Option<u64>,
    /// Bytes of POST /events bodies held at once; past it, 503 [default: 67108864]
    #[arg(long, env = "CONNAUDIT_HTTP_MAX_BODY_MEMORY", value_name = "BYTES")]
    pub http_max_body_memory: Option<usize>,
}

impl IngestArgs {
    /// Layers the flags (and their variables) over the config file or the defaults.
    pub fn into_config(self) -> Result<IngestConfig> {
        let mut c: IngestConfig = config::load(self.config.as_deref())?;
        set(&mut c.mqtt.url, self.mqtt_url);
        if !self.mqtt_topics.is_empty() {
            c.mqtt.topics = self.mqtt_topics;
        }
        set(&mut c.mqtt.client_id, self.mqtt_client_id.map(Some));
        set(&mut c.mqtt.connections, self.mqtt_connections);
        set(&mut c.mqtt.username, self.mqtt_username.map(Some));
        set(&mut c.mqtt.password, self.mqtt_password.map(Some));
        set(&mut c.mqtt.ca_file, self.mqtt_ca_file.map(Some));
        set(&mut c.mqtt.client_cert, self.mqtt_client_cert.map(Some));
        set(&mut c.mqtt.client_key, self.mqtt_client_key.map(Some));
        set(&mut c.mqtt.keepalive_secs, self.mqtt_keepalive_secs);
        set(&mut c.mqtt.session_expiry_secs, self.mqtt_session_expiry_secs);
        set(&mut c.mqtt.max_packet_size, self.mqtt_max_packet_size);
        c.topic_events.extend(self.topic_events);
        c.source_formats.extend(self.source_formats);
        let k = &mut c.kafka;
        self.kafka.apply(&mut k.brokers, &mut k.topic, &mut k.dlq_topic, &mut k.options).map_err(Error::Config)?;
        set(&mut c.http_listen, self.http_listen);
        set(&mut c.max_in_flight, self.max_in_flight);
        set(&mut c.http_timeout_secs, self.http_timeout_secs);
        set(&mut c.shutdown_timeout_secs, self.shutdown_timeout_secs);
        set(&mut c.stall_timeout_secs, self.stall_timeout_secs);
        set(&mut c.http_token, self.http_token.map(Some));
        set(&mut c.http_max_body_bytes, self.http_max_body_bytes);
        set(&mut c.http_max_events, self.http_max_events);
        set(&mut c.http_max_concurrent, self.http_max_concurrent);
        set(&mut c.http_body_timeout_secs, self.http_body_timeout_secs);
        set(&mut c.http_max_body_memory, self.http_max_body_memory);
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
        let path = dir.path().join("ingest.toml");
        std::fs::write(
            &path,
            "max_in_flight = 50\n[mqtt]\nurl = \"mqtt://file:1883\"\n[kafka]\ntopic = \"from-file\"\noptions = { \"linger.ms\" = \"1\" }\n",
        )
        .unwrap();
        let args = IngestArgs {
            config: Some(path),
            kafka: KafkaFlags {
                kafka_topic: Some("from-flag".into()),
                kafka_options: vec!["security.protocol=SASL_SSL".into(), "bootstrap.servers=a:1,b:2".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let c = args.into_config().unwrap();
        assert_eq!(c.mqtt.url, "mqtt://file:1883");
        assert_eq!(c.kafka.topic, "from-flag");
        assert_eq!(c.max_in_flight, 50);
        assert_eq!(c.kafka.dlq_topic, "mqtt.client-events.dlq");
        assert_eq!(c.kafka.options.len(), 3);
        assert_eq!(c.kafka.options["bootstrap.servers"], "a:1,b:2");
        assert_eq!(c.mqtt.topics.len(), 3);
    }

    #[test]
    fn kafka_option_values_keep_their_commas() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            ingest: IngestArgs,
        }
        let argv = ["connaudit", "--kafka-option", "bootstrap.servers=a:1,b:2", "--mqtt-topic", "x,y"];
        let cli = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
        assert_eq!(cli.ingest.kafka.kafka_options, vec!["bootstrap.servers=a:1,b:2"]);
        assert_eq!(cli.ingest.mqtt_topics, vec!["x", "y"]);
    }

    #[test]
    fn bad_settings_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[mqtt]\nurll = \"x\"\n").unwrap();
        let cases: Vec<(IngestArgs, &str)> = vec![
            (IngestArgs { config: Some(path), ..Default::default() }, "unknown field `urll`"),
            (
                IngestArgs {
                    kafka: KafkaFlags { kafka_options: vec!["nokey".into()], ..Default::default() },
                    ..Default::default()
                },
                "not KEY=VALUE",
            ),
            (IngestArgs { mqtt_url: Some("http://x".into()), ..Default::default() }, "mqtt://"),
            (IngestArgs { max_in_flight: Some(0), ..Default::default() }, "--max-in-flight"),
            (IngestArgs { mqtt_connections: Some(17), ..Default::default() }, "--mqtt-connections must be 1..=16"),
            (
                IngestArgs {
                    mqtt_connections: Some(4),
                    mqtt_topics: vec!["$share/g/a".into(), "b".into()],
                    ..Default::default()
                },
                "subscribe to '$share/connaudit/b'",
            ),
            (IngestArgs { topic_events: vec!["a=b".into()], ..Default::default() }, "unknown event type"),
            (
                IngestArgs { source_formats: vec!["a/#=mosquitto".into()], ..Default::default() },
                "unknown source format",
            ),
            (IngestArgs { source_formats: vec!["tdmq".into()], ..Default::default() }, "TOPIC_FILTER=FORMAT"),
        ];
        for (args, want) in cases {
            let err = args.into_config().unwrap_err();
            assert!(err.is_user_error(), "{err}");
            assert!(err.to_string().contains(want), "{err} should mention {want}");
        }
    }
}
