//! Produces a deterministic fleet of events into a Kafka topic (and the same payloads, one per
//! line, into a file unless it is `-`), for `scripts/bench-transform.sh` and
//! `scripts/bench-query.sh`.
//!
//! fleet_to_kafka BOOTSTRAP TOPIC EVENTS CLIENTS JSONL_OUT|- [SPAN_HOURS]
//!
//! The events end now; without SPAN_HOURS they span one event per device per minute.

use anyhow::Context;
use connaudit_tests::fleet::fleet_part;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bootstrap, topic, events, clients, out, span_hours) = match args.as_slice() {
        [b, t, e, c, o] => (b, t, e, c, o, None),
        [b, t, e, c, o, h] => (b, t, e, c, o, Some(h.parse::<i64>().context("SPAN_HOURS")?)),
        _ => anyhow::bail!("usage: fleet_to_kafka BOOTSTRAP TOPIC EVENTS CLIENTS JSONL_OUT|- [SPAN_HOURS]"),
    };
    let n: usize = events.parse().context("EVENTS")?;
    let clients: usize = clients.parse().context("CLIENTS")?;
    let span = span_hours.map_or((n / clients.max(1)) as i64 * 60_000, |h| h * 3_600_000);
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64 - span;
    let started = std::time::Instant::now();
    // In chunks, so ten million events never sit in memory at once.
    let chunk = 1_000_000;
    let mut jsonl = (out != "-").then(|| std::fs::File::create(out)).transpose()?.map(std::io::BufWriter::new);
    for first in (0..n).step_by(chunk) {
        let (records, _) = fleet_part(n, clients, start, span.max(1), 0, first..(first + chunk).min(n));
        if let Some(w) = jsonl.as_mut() {
            for r in &records {
                std::io::Write::write_all(w, r.payload.as_bytes())?;
                std::io::Write::write_all(w, b"\n")?;
            }
        }
        connaudit_tests::produce_all(bootstrap, topic, &records).await?;
        eprintln!("produced {} of {n} events in {:.1} s", first + records.len(), started.elapsed().as_secs_f64());
    }
    Ok(())
}
