//! Produces a deterministic fleet of events into a Kafka topic (and the same payloads, one per
//! line, into a file), for `scripts/bench-transform.sh`.
//!
//! fleet_to_kafka BOOTSTRAP TOPIC EVENTS CLIENTS JSONL_OUT

use anyhow::Context;
use connaudit_tests::fleet::fleet;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, events, clients, out] = args.as_slice() else {
        anyhow::bail!("usage: fleet_to_kafka BOOTSTRAP TOPIC EVENTS CLIENTS JSONL_OUT");
    };
    let n: usize = events.parse().context("EVENTS")?;
    let clients: usize = clients.parse().context("CLIENTS")?;
    // One event per device per minute, ending now.
    let span = (n / clients.max(1)) as i64 * 60_000;
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64 - span;
    let (records, _) = fleet(n, clients, start, span.max(1), 0);
    let lines: Vec<&str> = records.iter().map(|r| r.payload.as_str()).collect();
    std::fs::write(out, lines.join("\n") + "\n")?;
    let started = std::time::Instant::now();
    connaudit_tests::produce_all(bootstrap, topic, &records).await?;
    eprintln!("produced {n} events in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
