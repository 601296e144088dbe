//! Ingest configuration: defaults, then an optional TOML file, then `CONNAUDIT_*` environment
//! variables, then command-line flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use connaudit_model::{EventType, SourceFormats, TopicMap};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most MQTT connections one process opens (`--mqtt-connections`).
pub const MAX_CONNECTIONS: usize = 16;

/// Everything the ingest service needs. The TOML file has the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub mqtt: MqttConfig,
    pub kafka: KafkaConfig,
    /// Address of the HTTP server: `/events`, `/healthz`, `/readyz`, `/metrics`.
    pub http_listen: SocketAddr,
    /// Most events held between the broker and a Kafka confirmation per MQTT connection; also
    /// each connection's receive maximum, so the broker keeps the rest while Kafka is slow or
    /// down.
    pub max_in_flight: usize,
    /// Extra `TOPIC=EVENT` mappings for payloads without an `event` field.
    pub topic_events: Vec<String>,
    /// `FILTER=FORMAT` entries: which broker's events a topic carries.
    pub source_formats: Vec<String>,
    /// How long `POST /events` waits for Kafka before answering 503.
    pub http_timeout_secs: u64,
    /// How long a SIGTERM waits for in-flight events to be confirmed and acknowledged.
    pub shutdown_timeout_secs: u64,
    /// Events waiting and none confirmed by Kafka for this long: not ready (stalled).
    pub stall_timeout_secs: u64,
    /// Bearer token `POST /events` requires; none lets anyone post (a warning at start).
    pub http_token: Option<String>,
    /// Largest `POST /events` body; a larger one gets 413.
    pub http_max_body_bytes: usize,
    /// Most events in one `POST /events` body; more get 413.
    pub http_max_events: usize,
    /// Most `POST /events` requests at once; more get 429.
    pub http_max_concurrent: usize,
    /// Longest a client may take to send a `POST /events` body; slower gets 408.
    pub http_body_timeout_secs: u64,
    /// Bytes of request bodies held at once (each request reserves its Content-Length, or
    /// --http-max-body-bytes when it sends none); past it, 503.
    pub http_max_body_memory: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            mqtt: MqttConfig::default(),
            kafka: KafkaConfig::default(),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            max_in_flight: 1000,
            topic_events: Vec::new(),
            source_formats: Vec::new(),
            http_timeout_secs: 30,
            shutdown_timeout_secs: 30,
            stall_timeout_secs: 60,
            http_token: None,
            http_max_body_bytes: 10 * 1024 * 1024,
            http_max_events: 10_000,
            http_max_concurrent: 64,
            http_body_timeout_secs: 10,
            http_max_body_memory: 64 * 1024 * 1024,
        }
    }
}

/// The MQTT subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://[user:pass@]host:port` or `mqtts://...`.
    pub url: String,
    /// Topics to subscribe to; `$share/GROUP/TOPIC` splits them across replicas.
    pub topics: Vec<String>,
    /// Client id; must differ per replica. Defaults to `connaudit-ingest-$HOSTNAME`.
    pub client_id: Option<String>,
    /// MQTT connections of this process, each its own persistent session (`ID`, `ID-1`, ...)
    /// in the same shared subscriptions: the broker's in-flight window is per session, so n
    /// connections keep n windows of events on their way to Kafka. More than 1 needs every
    /// topic to be `$share/GROUP/TOPIC`.
    pub connections: usize,
    /// Username; overrides the one in the URL.
    pub username: Option<String>,
    /// Password; overrides the one in the URL. Prefer `CONNAUDIT_MQTT_PASSWORD`.
    pub password: Option<String>,
    /// CA certificate (PEM) for `mqtts://`; the system roots are not used.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    pub client_key: Option<PathBuf>,
    /// MQTT keepalive in seconds.
    pub keepalive_secs: u64,
    /// How long the broker keeps the session (and undelivered events) while ingest is away.
    pub session_expiry_secs: u32,
    /// Largest MQTT packet ingest takes, announced to the broker in CONNECT (MQTT 5): the
    /// broker never sends a larger one.
    pub max_packet_size: u32,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            topics: EventType::ALL.iter().map(|t| t.default_topic().to_string()).collect(),
            client_id: None,
            connections: 1,
            username: None,
            password: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            keepalive_secs: 30,
            session_expiry_secs: 86_400,
            max_packet_size: 1024 * 1024,
        }
    }
}

/// The Kafka producer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Topic for valid events.
    pub topic: String,
    /// Topic for payloads that are not valid events.
    pub dlq_topic: String,
    /// Extra librdkafka settings (SASL, TLS, tuning); they override connaudit's defaults.
    pub options: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: connaudit_kafka::topic::EVENTS.into(),
            dlq_topic: connaudit_kafka::topic::DLQ.into(),
            options: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The producer, with the settings connaudit relies on; `--kafka-option` entries override
    /// them: reliable (`RELIABLE_PRODUCER`: never give up on an event; an outage holds it, and
    /// the MQTT ack, until Kafka is back), and batched for throughput.
    pub fn producer(&self) -> Result<rdkafka::producer::FutureProducer> {
        let batching = [
            ("compression.type", "lz4"),
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("batch.size", "1000000"),
        ];
        let settings: Vec<(&str, &str)> = connaudit_kafka::RELIABLE_PRODUCER.iter().copied().chain(batching).collect();
        Ok(connaudit_kafka::client(&self.brokers, "connaudit-ingest", &settings, &self.options).create()?)
    }

    /// How much of a payload Kafka refused is kept in its dead letter: 64 KiB, or half the
    /// producer's `message.max.bytes` where that is smaller.
    pub fn dlq_payload_limit(&self) -> usize {
        let max = self.options.get("message.max.bytes").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1_000_000);
        (64 * 1024).min(max / 2)
    }
}

impl IngestConfig {
    /// The topic-to-event map: the user's entries first, then the defaults.
    pub fn topic_map(&self) -> Result<TopicMap> {
        let entries = self
            .topic_events
            .iter()
            .map(|s| TopicMap::parse_entry(s).map_err(Error::Config))
            .collect::<Result<Vec<_>>>()?;
        Ok(TopicMap::with_defaults(entries))
    }

    /// The `--source-format` entries.
    pub fn source_formats(&self) -> Result<SourceFormats> {
        SourceFormats::parse(&self.source_formats).map_err(Error::Config)
    }

    /// Checks what can be checked before connecting anywhere.
    pub fn validate(&self) -> Result<()> {
        if self.mqtt.topics.is_empty() {
            return Err(Error::Config("no MQTT topic to subscribe to: give --mqtt-topic".into()));
        }
        if self.max_in_flight == 0 || self.max_in_flight > u16::MAX as usize {
            return Err(Error::Config(format!("--max-in-flight must be 1..=65535, not {}", self.max_in_flight)));
        }
        self.check_connections()?;
        if self.mqtt.max_packet_size < 1024 {
            return Err(Error::Config(format!(
                "--mqtt-max-packet-size must be at least 1024 bytes, not {}",
                self.mqtt.max_packet_size
            )));
        }
        for (flag, v) in [
            ("--http-max-body-bytes", self.http_max_body_bytes),
            ("--http-max-events", self.http_max_events),
            ("--http-max-concurrent", self.http_max_concurrent),
            ("--http-body-timeout-secs", self.http_body_timeout_secs as usize),
            ("--http-max-body-memory", self.http_max_body_memory),
            ("--stall-timeout-secs", self.stall_timeout_secs as usize),
        ] {
            if v == 0 {
                return Err(Error::Config(format!("{flag} must be at least 1")));
            }
        }
        if self.http_max_body_memory < self.http_max_body_bytes {
            return Err(Error::Config(format!(
                "--http-max-body-memory {} is less than --http-max-body-bytes {}: one largest body must fit",
                self.http_max_body_memory, self.http_max_body_bytes
            )));
        }
        if self.http_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(Error::Config("--http-token is empty: give a token or leave it out".into()));
        }
        if self.kafka.topic == self.kafka.dlq_topic {
            return Err(Error::Config("--kafka-topic and --kafka-dlq-topic must differ".into()));
        }
        crate::broker_url::parse_url(&self.mqtt.url)?;
        self.topic_map()?;
        self.source_formats()?;
        Ok(())
    }

    /// Several connections only in shared subscriptions: in a plain one each connection would
    /// get every event.
    fn check_connections(&self) -> Result<()> {
        let n = self.mqtt.connections;
        if n == 0 || n > MAX_CONNECTIONS {
            return Err(Error::Config(format!("--mqtt-connections must be 1..={MAX_CONNECTIONS}, not {n}")));
        }
        match self.mqtt.topics.iter().find(|t| !t.starts_with("$share/")) {
            Some(topic) if n > 1 => Err(Error::Config(format!(
                "--mqtt-connections {n} needs shared subscriptions, or each connection gets every event of \
                 '{topic}': subscribe to '$share/connaudit/{topic}' (every --mqtt-topic), or use 1 connection"
            ))),
            _ => Ok(()),
        }
    }

    /// The client id of connection `index` (0 is the configured id; the others add `-index`).
    pub fn connection_client_id(&self, index: usize) -> String {
        match index {
            0 => self.client_id(),
            i => format!("{}-{i}", self.client_id()),
        }
    }

    /// The client id to use when none is configured: unique per pod in Kubernetes.
    pub fn client_id(&self) -> String {
        self.mqtt.client_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| std::process::id().to_string());
            format!("connaudit-ingest-{host}")
        })
    }
}
