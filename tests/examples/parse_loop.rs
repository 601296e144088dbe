//! The benchmark's floor for transform: read a JSON-lines file and parse every line into a
//! `serde_json::Value`, nothing else (no Kafka, no columns, no files). Prints events and seconds.
//!
//! Usage: parse_loop EVENTS.jsonl

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse_loop EVENTS.jsonl")?;
    let text = std::fs::read(&path)?;
    let started = Instant::now();
    let (mut events, mut fields) = (0u64, 0usize);
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let value: serde_json::Value = serde_json::from_slice(line)?;
        fields += value.as_object().map_or(0, |o| o.len());
        events += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{events} {secs:.3} {fields}");
    Ok(())
}
