//! Running a simulation: pace the story at `--rate` for `--duration`, publish every event,
//! show progress, and hand back the ground truth.

use std::time::{Duration, Instant};

use connaudit_model::now_ms;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::args::{FleetArgs, SimulateArgs};
use crate::error::{Error, Result};
use crate::fleet::{devices, node_regions_csv, regions, regions_csv, Format};
use crate::sink::Sink;
use crate::story::Story;
use crate::truth::Truth;

/// `connaudit simulate`.
pub async fn simulate(args: SimulateArgs, stop: CancellationToken) -> Result<Truth> {
    if let Some(path) = &args.regions_out {
        write(path, &regions_csv(&regions()))?;
    }
    if let Some(path) = &args.node_regions_out {
        write(path, &node_regions_csv(&regions()))?;
    }
    let mut sink = match &args.http_url {
        Some(url) => Sink::http(url)?,
        None => Sink::mqtt(&args.mqtt_url, &format!("connaudit-simulate-{}", std::process::id())).await?,
    };
    let bar = progress(planned(&args.fleet)?);
    let truth = run(&args.fleet, &mut sink, &bar, stop).await?;
    bar.finish_and_clear();
    eprint!("{}", truth.report());
    if let Some(path) = &args.truth_out {
        let json = serde_json::to_string_pretty(&truth).unwrap_or_default();
        write(path, &json)?;
    }
    Ok(truth)
}

/// Events the run will send.
pub fn planned(fleet: &FleetArgs) -> Result<u64> {
    if fleet.devices == 0 || fleet.rate == 0 {
        return Err(Error::Usage("--devices and --rate must be at least 1".into()));
    }
    Ok((fleet.rate as f64 * fleet.duration.as_secs_f64()).round().max(1.0) as u64)
}

/// A bar on stderr: sent events, confirmed ones, rate, time left.
pub fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style =
        ProgressStyle::with_template("{spinner} fleet [{bar:30}] {pos}/{len} events, {msg} {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Sends the fleet's events at the configured rate until the planned count or `stop`.
pub async fn run(fleet: &FleetArgs, sink: &mut Sink, bar: &ProgressBar, stop: CancellationToken) -> Result<Truth> {
    let total = planned(fleet)?;
    let regions = regions();
    let (devices, twins) = devices(fleet.devices, &regions, fleet.format.unwrap_or(Format::Emqx));
    let mut story = Story::new(regions, devices, twins, fleet.seed, total);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while story.truth.total() < total && !stop.is_cancelled() {
        tick.tick().await;
        // Catch up with the schedule: `rate` events per second since the start.
        let due = ((started.elapsed().as_secs_f64() * fleet.rate as f64) as u64).min(total);
        while story.truth.total() < due {
            for event in story.step(now_ms()) {
                sink.send(event).await?;
            }
        }
        bar.set_position(story.truth.total());
        bar.set_message(format!("{} confirmed,", sink.confirmed()));
    }
    sink.finish(Duration::from_secs(60)).await?;
    Ok(story.truth)
}

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::File { path: path.display().to_string(), source })
}
