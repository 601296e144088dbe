//! `connaudit transform`: reads the events topic in a consumer group and commits to the
//! warehouse's Delta tables (events, sessions, reason-code aggregates, per-region failure counts,
//! alerts) exactly once, each batch with its Kafka position.

mod alerts;
mod analytics;
mod args;
mod background;
mod config;
mod dedup;
mod derive;
mod error;
pub mod events;
mod http;
mod kafka;
pub mod metrics;
mod regions;
mod row;
mod service;
mod sessions;
mod writer;

use std::convert::Infallible;
use std::time::Duration;

use connaudit_service::{Http, Supervisor};
use connaudit_warehouse::Warehouse;
use rdkafka::consumer::Consumer;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use analytics::AGGREGATES;
pub use args::TransformArgs;
pub use config::{AlertConfig, BatchConfig, KafkaConfig, TransformConfig};
pub use error::{Error, Result};
pub use regions::RegionMap;
pub use row::{Origin, Row};

/// Milliseconds since the Unix epoch (the model's clock).
pub use connaudit_model::now_ms;

/// Runs the service until `shutdown` fires, then writes the open batches and commits them.
pub async fn run(cfg: TransformConfig, shutdown: CancellationToken) -> Result<()> {
    cfg.validate()?;
    let regions = RegionMap::load(cfg.regions.as_deref(), cfg.node_regions.as_deref())?;
    let warehouse = Warehouse::open(&cfg.warehouse)?;
    if let Err(e @ connaudit_warehouse::Error::Config(_)) = warehouse.refuse_old_layout().await {
        return Err(e.into());
    }
    let prometheus = metrics::install();
    let health = http::Health::default();
    let listener = tokio::net::TcpListener::bind(cfg.http_listen)
        .await
        .map_err(|source| Error::Bind { addr: cfg.http_listen, source })?;
    let consumer = kafka::consumer(&cfg.kafka)?;
    let context = consumer.context().as_ref().clone();
    let producer = kafka::producer(&cfg.kafka)?;
    let mut writer = writer::BatchWriter::new(
        warehouse.clone(),
        cfg.kafka.group.clone(),
        cfg.kafka.topic.clone(),
        cfg.alerts.clone(),
    )
    .with_session_horizon_days(cfg.session_horizon_days);
    // Creates the missing tables now; an unreachable warehouse is retried with every batch.
    match writer.open().await {
        Ok(()) => health.set_warehouse(true),
        Err(e) => warn!(error = %e, "The warehouse is not writable yet; batches will retry."),
    }
    let give_up = CancellationToken::new();
    let parts = service::Parts {
        consumer: consumer.clone(),
        context,
        producer,
        writer,
        regions,
        health: health.clone(),
        give_up: give_up.clone(),
    };
    let service = service::Service::new(&cfg, parts)?;

    let supervisor = Supervisor::new(shutdown.clone());
    let http = Http::spawn(&supervisor, listener, connaudit_service::router(health.clone(), prometheus))
        .map_err(Error::Http)?;
    let watcher = supervisor.spawn("kafka watch", {
        let watch = kafka::watch(consumer.clone(), cfg.kafka.topic.clone(), health, shutdown.clone());
        async move {
            watch.await;
            Ok::<(), Infallible>(())
        }
    });
    let progress = supervisor.spawn("progress", log_progress(shutdown.clone()));
    let work = supervisor.spawn("consumer", service.run(shutdown.clone()));
    info!(http = %http.addr, kafka = %cfg.kafka.brokers, topic = %cfg.kafka.topic, group = %cfg.kafka.group,
        warehouse = %warehouse.url(), "Transform is running.");

    shutdown.cancelled().await;
    info!("Shutting down; writing the open batches.");
    let deadline = Duration::from_secs(cfg.shutdown_timeout_secs);
    tokio::spawn({
        let give_up = give_up.clone();
        async move {
            tokio::time::sleep(deadline).await;
            give_up.cancel();
        }
    });
    let _ = work.await;
    http.stop().await;
    watcher.abort();
    progress.abort();
    // Leave the group now, so the partitions move to another replica without waiting.
    drop(consumer);
    let (written, dead, skipped, duplicate) = metrics::totals::snapshot();
    info!(written, dead_lettered = dead, skipped, duplicate, "Transform stopped.");
    supervisor.failure().map_or(Ok(()), |why| Err(Error::Stopped(why)))
}

async fn log_progress(stop: CancellationToken) -> std::result::Result<(), Infallible> {
    let report = |last: (u64, u64, u64, u64), now: (u64, u64, u64, u64)| {
        let per_sec = (now.0 + now.1 + now.3 - last.0 - last.1 - last.3) / 10;
        info!(written = now.0, dead_lettered = now.1, skipped = now.2, duplicate = now.3, per_sec, "Progress.");
    };
    connaudit_service::every_10s_when_changed(metrics::totals::snapshot, report, stop).await;
    Ok(())
}
