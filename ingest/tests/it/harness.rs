//! An in-process ingest service for the tests, on top of the shared test kit.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use connaudit_ingest::IngestConfig;
pub use connaudit_tests::*;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running in-process ingest service.
pub struct Ingest {
    pub http: SocketAddr,
    pub stop: CancellationToken,
    pub task: JoinHandle<connaudit_ingest::Result<()>>,
}

impl Ingest {
    pub async fn start(cfg: IngestConfig) -> Result<Ingest> {
        // The service's logs, shown by the test runner when a test fails.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        let http = cfg.http_listen;
        let stop = CancellationToken::new();
        let task = tokio::spawn(connaudit_ingest::run(cfg, stop.clone()));
        let ingest = Ingest { http, stop, task };
        ingest.wait_ready(Duration::from_secs(30)).await?;
        Ok(ingest)
    }

    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        wait_ready(&self.http.to_string(), timeout).await
    }

    /// Stops as SIGTERM does and waits for the drain.
    pub async fn stop(self) -> Result<()> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(40), self.task).await??.context("ingest run")?;
        Ok(())
    }
}

/// Mosquitto, tansu, and a fresh topic with its dead-letter topic.
pub struct Rig {
    pub mqtt: Server,
    pub kafka: Server,
    pub topic: String,
}

impl Rig {
    pub async fn start(partitions: i32) -> Result<Rig> {
        Rig::with_mqtt(Server::mosquitto()?, partitions).await
    }

    /// With a Mosquitto configured by the test (TLS, persistence).
    pub async fn with_mqtt(mqtt: Server, partitions: i32) -> Result<Rig> {
        let kafka = Server::tansu()?;
        let topic = unique("events");
        create_topics(&kafka.bootstrap(), &[&topic, &format!("{topic}.dlq")], partitions).await?;
        Ok(Rig { mqtt, kafka, topic })
    }

    pub fn dlq(&self) -> String {
        format!("{}.dlq", self.topic)
    }

    /// Reads a topic of this rig's Kafka; see `read_topic`.
    pub async fn read(&self, topic: &str, want: usize, timeout_secs: u64) -> Result<Vec<Read>> {
        read_topic(&self.kafka.bootstrap(), topic, want, Duration::from_secs(timeout_secs)).await
    }

    /// An ingest config for this rig, with its own client id and HTTP port.
    pub fn config(&self, mqtt_topics: &[&str]) -> IngestConfig {
        config(self.mqtt.port, &self.kafka.bootstrap(), &self.topic, mqtt_topics)
    }
}

/// A config for the given brokers with its own client id and HTTP port.
pub fn config(mqtt_port: u16, bootstrap: &str, topic: &str, mqtt_topics: &[&str]) -> IngestConfig {
    let mut cfg = IngestConfig::default();
    cfg.mqtt.url = format!("mqtt://127.0.0.1:{mqtt_port}");
    cfg.mqtt.topics = mqtt_topics.iter().map(|t| t.to_string()).collect();
    cfg.mqtt.client_id = Some(unique("ingest"));
    cfg.kafka.brokers = bootstrap.to_string();
    cfg.kafka.topic = topic.to_string();
    cfg.kafka.dlq_topic = format!("{topic}.dlq");
    cfg.http_listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    cfg.shutdown_timeout_secs = 20;
    cfg
}

pub type Mock = MockCluster<'static, DefaultProducerContext>;

/// Mosquitto, librdkafka's mock cluster (outages and injected errors), and a fresh topic of
/// `partitions` with its dead-letter topic.
pub fn mock_rig(partitions: i32) -> Result<(Server, Mock, String)> {
    let mqtt = Server::mosquitto()?;
    let kafka = MockCluster::new(1)?;
    let topic = unique("events");
    kafka.create_topic(&topic, partitions, 1)?;
    kafka.create_topic(&format!("{topic}.dlq"), 1, 1)?;
    Ok((mqtt, kafka, topic))
}

/// Waits until Kafka acknowledged `want` events, counted on `http`'s page (the recorder is the
/// process's, so every replica of a test counts there). A test that reads a partition two
/// producers write waits for this first: tansu raises the high watermark before it stores the
/// batch, so a reader at the head of the partition can skip a batch for good.
pub async fn until_produced(http: SocketAddr, want: usize) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = reqwest::get(format!("http://{http}/metrics")).await?.text().await?;
        let produced: f64 = page
            .lines()
            .filter(|l| l.starts_with("connaudit_events_produced_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if produced >= want as f64 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("Kafka acknowledged {produced} of {want} events in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the first sample of `name` (with its labels) in a Prometheus text page.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name) && !l.starts_with('#'))?.rsplit(' ').next()?.parse().ok()
}

/// Polls `/readyz` until `want(status, body)`; returns the body. `what` names it in the error.
pub async fn readyz_until(http: SocketAddr, what: &str, want: impl Fn(u16, &str) -> bool) -> Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("http://{http}/readyz")).await {
            let status = r.status().as_u16();
            let body = r.text().await?;
            if want(status, &body) {
                return Ok(body);
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("readyz never showed {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
