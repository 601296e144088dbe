//! `connaudit demo`: embedded brokers, ingest and transform in this process, a minute of a
//! simulated fleet, then the warehouse's answers next to the simulator's ground truth.

use std::path::Path;
use std::time::{Duration, Instant};

use connaudit_ingest::IngestConfig;
use connaudit_transform::TransformConfig;
use indicatif::ProgressBar;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::args::{DemoArgs, FleetArgs};
use crate::embedded;
use crate::error::{Error, Result};
use crate::fleet::{node_regions_csv, regions, regions_csv, Format};
use crate::report;
use crate::serving;
use crate::simulate;
use crate::sink::Sink;

const TOPIC: &str = connaudit_kafka::topic::EVENTS;

pub async fn demo(mut args: DemoArgs, stop: CancellationToken) -> Result<()> {
    // Every broker's events in one warehouse, unless asked otherwise.
    args.fleet.format.get_or_insert(Format::Mixed);
    let warehouse = args.dir.join("warehouse");
    prepare(&args.dir)?;
    let regions_file = args.dir.join("regions.csv");
    let node_regions_file = args.dir.join("node-regions.csv");
    for (file, text) in [(&regions_file, regions_csv(&regions())), (&node_regions_file, node_regions_csv(&regions()))] {
        std::fs::write(file, text).map_err(|source| Error::File { path: file.display().to_string(), source })?;
    }

    let (mqtt_v4, mqtt_v5) = embedded::mqtt()?;
    let kafka = embedded::kafka(TOPIC)?;
    let bootstrap = kafka.bootstrap_servers();
    eprintln!("Embedded brokers: MQTT (rumqttd) on {mqtt_v4} and {mqtt_v5}, Kafka (librdkafka mock) on {bootstrap}.");

    let pipeline = CancellationToken::new();
    let ingest_http = embedded::free_addr()?;
    let mut ingest = IngestConfig::default();
    ingest.mqtt.url = format!("mqtt://{mqtt_v5}");
    ingest.mqtt.client_id = Some("connaudit-demo-ingest".into());
    // VerneMQ's webhook bodies, republished by hook name; a HiveMQ extension's listener calls.
    ingest.mqtt.topics.push("vernemq/+".into());
    ingest.mqtt.topics.push("hivemq/+".into());
    ingest.kafka.brokers = bootstrap.clone();
    ingest.http_listen = ingest_http;
    let mut transform = TransformConfig::default();
    transform.kafka.brokers = bootstrap.clone();
    transform.kafka.group = "connaudit-demo".into();
    transform.warehouse = warehouse.display().to_string();
    transform.regions = Some(regions_file.clone());
    transform.node_regions = Some(node_regions_file.clone());
    transform.batch.idle_secs = 2;
    // VerneMQ's "more than 5 failed CONNACKs a minute" suits one broker's few clients; for a
    // fleet this size, alert when a region's failures pass 5% of its usual attempts.
    let per_region_minute = args.fleet.rate as f64 * 60.0 * 0.4 / regions().len() as f64;
    transform.alerts.connack_failures_per_minute = ((per_region_minute * 0.05) as u64).max(5);
    transform.http_listen = embedded::free_addr()?;
    let transform_http = transform.http_listen;
    let connack_limit = transform.alerts.connack_failures_per_minute;
    let ingest_task: JoinHandle<Result<()>> = tokio::spawn(run_ingest(ingest, pipeline.child_token()));
    let transform_task: JoinHandle<Result<()>> = tokio::spawn(run_transform(transform, pipeline.child_token()));
    embedded::wait_ready(&format!("http://{ingest_http}/readyz"), Duration::from_secs(30)).await?;
    eprintln!(
        "connaudit ingest (http://{ingest_http}/metrics) and transform (http://{transform_http}/metrics) are running; \
         the warehouse is {}; a region alerts above {} failed connects a minute.",
        warehouse.display(),
        connack_limit
    );

    let mut sink = Sink::mqtt(&format!("mqtt://{mqtt_v4}"), "connaudit-demo-fleet").await?;
    let bar = simulate::progress(simulate::planned(&args.fleet)?);
    let started = Instant::now();
    let truth = simulate::run(&args.fleet, &mut sink, &bar, stop.clone()).await?;
    bar.finish_and_clear();
    let sent_secs = started.elapsed().as_secs_f64();
    let total = truth.total();
    eprintln!("The fleet sent {total} events in {sent_secs:.1} s ({:.0} events/s).", total as f64 / sent_secs);

    let waited = Instant::now();
    wait_written(total, Duration::from_secs(120)).await?;
    eprintln!(
        "The warehouse held all {total} events {:.1} s after the last was sent ({:.1} s after the first).\n",
        waited.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if args.keep_running {
        report::print(&warehouse, &truth).await?;
        report::explore(&warehouse);
        let serving = match args.serve {
            true => Some(tokio::spawn(serving::serve(warehouse.clone(), args.pg_listen, stop.clone()))),
            false => None,
        };
        eprintln!("\nStill running (the fleet keeps talking); Ctrl-C stops everything.");
        let forever =
            FleetArgs { duration: Duration::from_secs(365 * 86_400), seed: args.fleet.seed + 1, ..args.fleet };
        let mut sink = Sink::mqtt(&format!("mqtt://{mqtt_v4}"), "connaudit-demo-fleet-2").await?;
        simulate::run(&forever, &mut sink, &ProgressBar::hidden(), stop.clone()).await?;
        pipeline.cancel();
        finish(ingest_task, transform_task).await?;
        if let Some(serving) = serving {
            serving.await.map_err(|e| Error::Embedded(format!("serve: {e}")))??;
        }
    } else {
        pipeline.cancel();
        finish(ingest_task, transform_task).await?;
        report::print(&warehouse, &truth).await?;
        report::explore(&warehouse);
        if args.serve {
            serving::serve(warehouse.clone(), args.pg_listen, stop.clone()).await?;
        }
    }
    drop(kafka);
    Ok(())
}

/// Empties the demo directory: a new mock Kafka starts its offsets at 0 again, and the
/// transformer would take an old warehouse's state for the new events.
fn prepare(dir: &Path) -> Result<()> {
    let io = |source| Error::File { path: dir.display().to_string(), source };
    if dir.exists() {
        let known = ["warehouse", "regions.csv", "node-regions.csv"];
        for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
            let name = entry.file_name();
            if !known.iter().any(|k| name == *k) {
                return Err(Error::Usage(format!(
                    "{} holds {:?}, which the demo did not write; pick an empty --dir",
                    dir.display(),
                    name
                )));
            }
        }
        eprintln!("Removing the previous demo in {}.", dir.display());
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    std::fs::create_dir_all(dir).map_err(io)
}

async fn run_ingest(cfg: IngestConfig, stop: CancellationToken) -> Result<()> {
    Ok(connaudit_ingest::run(cfg, stop).await?)
}

async fn run_transform(cfg: TransformConfig, stop: CancellationToken) -> Result<()> {
    Ok(connaudit_transform::run(cfg, stop).await?)
}

async fn finish(ingest: JoinHandle<Result<()>>, transform: JoinHandle<Result<()>>) -> Result<()> {
    for task in [ingest, transform] {
        task.await.map_err(|e| Error::Embedded(format!("a pipeline task panicked: {e}")))??;
    }
    Ok(())
}

/// Waits until the transformer has written `sent` events, with a spinner.
async fn wait_written(sent: u64, timeout: Duration) -> Result<()> {
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    loop {
        let (written, ..) = connaudit_transform::metrics::totals::snapshot();
        spinner.set_message(format!("waiting for the warehouse: {written} of {sent} events written"));
        if written >= sent {
            spinner.finish_and_clear();
            return Ok(());
        }
        if started.elapsed() > timeout {
            spinner.finish_and_clear();
            return Err(Error::Incomplete { written, sent, waited: timeout });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
