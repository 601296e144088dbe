//! `connaudit ingest`: subscribes to a broker's client-event topics (and takes EMQX's HTTP
//! action on `POST /events`) and writes every event to Kafka, acknowledging nothing before
//! Kafka confirmed it.

mod args;
mod broker_url;
mod config;
mod error;
mod health;
mod http;
mod kafka;
pub mod metrics;
mod mqtt;
mod pipeline;
mod redelivery;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use connaudit_service::{Http, Supervisor};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use args::IngestArgs;
pub use config::{IngestConfig, KafkaConfig, MqttConfig};
pub use error::{Error, Result};
pub use health::Health;
pub use http::{router, split_events, AppState};

use crate::pipeline::{Pipeline, Sender};

/// Milliseconds since the Unix epoch (the model's clock).
pub use connaudit_model::now_ms;

/// Runs the service until `shutdown` fires, then drains: in-flight events are confirmed by
/// Kafka and acknowledged, the MQTT session is closed, and the HTTP server stops last. A task
/// that fails (a fatal Kafka error, a panic) stops the service the same way, and `run` returns
/// the failure.
pub async fn run(cfg: IngestConfig, shutdown: CancellationToken) -> Result<()> {
    // Only the ring provider is compiled in; make it the process default for MQTT over TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    cfg.validate()?;
    if cfg.http_token.is_none() && !cfg.http_listen.ip().is_loopback() {
        warn!("POST /events takes events from anyone who reaches it: set --http-token (CONNAUDIT_HTTP_TOKEN) to require a bearer token.");
    }
    let prometheus = metrics::install();
    let health = Health::default();
    let producer = cfg.kafka.producer()?;
    let listener = tokio::net::TcpListener::bind(cfg.http_listen)
        .await
        .map_err(|source| Error::Bind { addr: cfg.http_listen, source })?;
    let supervisor = Supervisor::new(shutdown.clone());

    let (mqtt_tx, mqtt_rx) = mpsc::unbounded_channel();
    let (http_tx, http_rx) = mpsc::channel(cfg.max_in_flight);
    let (mqtt, mqtt_loops) = mqtt::start(&cfg, mqtt_tx, health.clone(), shutdown.clone())?;
    let mut mqtt_tasks: Vec<_> = mqtt_loops
        .into_iter()
        .map(|run| {
            supervisor.spawn("mqtt", async move {
                run.await;
                Ok::<(), Infallible>(())
            })
        })
        .collect();
    let clients: Vec<_> = mqtt.connections.iter().map(|c| c.client.clone()).collect();
    let pipeline = Pipeline {
        sender: Arc::new(Sender {
            producer: producer.clone(),
            dlq_topic: cfg.kafka.dlq_topic.clone(),
            dlq_payload_limit: cfg.kafka.dlq_payload_limit(),
            health: health.clone(),
        }),
        topic: cfg.kafka.topic.clone(),
        topics: cfg.topic_map()?,
        formats: cfg.source_formats()?,
        max_in_flight: cfg.max_in_flight * cfg.mqtt.connections,
        mqtt: mqtt.connections,
        qos0_queued: mqtt.qos0_queued.clone(),
        stall_timeout: Duration::from_secs(cfg.stall_timeout_secs),
        redelivery: Default::default(),
    };
    let state = AppState {
        health: health.clone(),
        metrics: prometheus,
        events: http_tx,
        timeout: Duration::from_secs(cfg.http_timeout_secs),
        limits: http::Limits::new(&cfg),
    };
    let http = Http::spawn(&supervisor, listener, router(state)).map_err(Error::Http)?;
    let watcher = supervisor.spawn(
        "kafka watch",
        kafka::watch(
            producer.clone(),
            [cfg.kafka.topic.clone(), cfg.kafka.dlq_topic.clone()],
            health,
            shutdown.clone(),
        ),
    );
    let progress = supervisor.spawn("progress", log_progress(shutdown.clone()));
    let mut drain = supervisor.spawn("pipeline", pipeline.run(mqtt_rx, http_rx, shutdown.clone()));
    info!(http = %http.addr, mqtt = %mqtt::redact(&cfg.mqtt.url), connections = cfg.mqtt.connections,
        kafka = %cfg.kafka.brokers, topic = %cfg.kafka.topic, "Ingest is running.");

    shutdown.cancelled().await;
    info!("Shutting down.");
    let deadline = Duration::from_secs(cfg.shutdown_timeout_secs);
    if tokio::time::timeout(deadline, &mut drain).await.is_err() {
        warn!(?deadline, "Events still in flight at the deadline stay unacknowledged; the broker redelivers them.");
        drain.abort();
    }
    // The acks are queued ahead of the DISCONNECT, so the broker gets them first.
    for client in &clients {
        let _ = client.disconnect().await;
    }
    let closed = futures::future::join_all(mqtt_tasks.iter_mut());
    if tokio::time::timeout(Duration::from_secs(5), closed).await.is_err() {
        warn!("An MQTT connection did not close in time.");
        mqtt_tasks.iter().for_each(|task| task.abort());
    }
    http.stop().await;
    watcher.abort();
    progress.abort();
    let (received, produced, dead) = metrics::totals::snapshot();
    info!(received, produced, dead_lettered = dead, "Ingest stopped.");
    supervisor.failure().map_or(Ok(()), |why| Err(Error::Stopped(why)))
}

async fn log_progress(stop: CancellationToken) -> std::result::Result<(), Infallible> {
    let report = |last: (u64, u64, u64), now: (u64, u64, u64)| {
        let per_sec = (now.1 + now.2 - last.1 - last.2) / 10;
        info!(received = now.0, produced = now.1, dead_lettered = now.2, per_sec, "Progress.");
    };
    connaudit_service::every_10s_when_changed(metrics::totals::snapshot, report, stop).await;
    Ok(())
}
