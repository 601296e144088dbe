//! The benchmark's floor for transform: read a JSON-lines file and parse every line into a
//! `serde_json::Value`, nothing else (no Kafka, no columns, no files). Prints events and seconds.
//! With `--model`, also times `ParsedEvent::parse` (EMQX's shape without a JSON tree) and
//! `ParsedEvent::parse_in_full` on the same lines, for the note on what parsing costs.
//!
//! Usage: parse_loop EVENTS.jsonl [--model]

use std::time::Instant;

use connaudit_model::{ParsedEvent, TopicMap};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse_loop EVENTS.jsonl [--model]")?;
    let text = std::fs::read(&path)?;
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let started = Instant::now();
    let (mut events, mut fields) = (0u64, 0usize);
    for line in &lines {
        let value: serde_json::Value = serde_json::from_slice(line)?;
        fields += value.as_object().map_or(0, |o| o.len());
        events += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{events} {secs:.3} {fields}");
    if std::env::args().nth(2).as_deref() == Some("--model") {
        let topics = TopicMap::default();
        let time = |name: &str, parse: &dyn Fn(&[u8]) -> bool| {
            let started = Instant::now();
            let ok = lines.iter().filter(|l| parse(l)).count();
            let secs = started.elapsed().as_secs_f64();
            eprintln!("{name}: {ok} events in {secs:.3} s, {:.0} ns/event", secs * 1e9 / lines.len() as f64);
        };
        time("ParsedEvent::parse", &|l| ParsedEvent::parse(l, None, &topics).is_ok());
        time("ParsedEvent::parse_in_full", &|l| ParsedEvent::parse_in_full(l, None, None, &topics).is_ok());
        time("serde_json::Value", &|l| serde_json::from_slice::<serde_json::Value>(l).is_ok());
    }
    Ok(())
}
