//! Bad input at scale through the real pipeline: the model's corpus of real-world bad payloads
//! (`model/tests/corpus`), each 20 times, mixed into a fleet's valid traffic over MQTT. Every
//! bad one lands in the dead-letter topic with its kind, every good one in the warehouse, and
//! ingest and transform stop cleanly afterwards.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use connaudit_tests::fleet::fleet;
use connaudit_tests::*;

const REPEATS: usize = 20;
/// 2026-11-20T00:00:00Z, the corpus's day.
const START_MS: i64 = 1_795_132_800_000;

/// (payload, expected outcome) from the corpus's EXPECTED.
fn corpus() -> Result<Vec<(Vec<u8>, String)>> {
    let dir = PathBuf::from(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
        .join("../model/tests/corpus");
    let expected = std::fs::read_to_string(dir.join("EXPECTED"))?;
    let mut out = Vec::new();
    for line in expected.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let (file, outcome) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        out.push((std::fs::read(dir.join(file))?, outcome.to_string()));
    }
    Ok(out)
}

#[test]
fn bad_payloads_mixed_into_a_fleet_are_dead_lettered_by_kind_and_the_rest_is_written() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let Stack { mqtt, kafka, topic, dlq, alerts } = Stack::start(2)?;
    let (runtime, bootstrap) = (tokio::runtime::Runtime::new()?, kafka.bootstrap());

    // After every fifth fleet event one from the corpus, on a topic that names no event type
    // (so the outcomes are the corpus's own); its valid ones made distinct by their port.
    let (records, _) = fleet(3000, 300, START_MS, 3_600_000, 0);
    let mut corpus = corpus()?.into_iter().cycle().take(corpus()?.len() * REPEATS);
    let (mut messages, mut want_dead, mut want_written) = (Vec::new(), BTreeMap::<String, u64>::new(), 0u64);
    for (i, record) in records.iter().enumerate() {
        messages.push(("client_connack".to_string(), record.payload.clone().into_bytes()));
        want_written += 1;
        if i % 5 == 0 {
            if let Some((payload, outcome)) = corpus.next() {
                if outcome.starts_with("ok:") {
                    // A port of their own: an event is what its row holds, so the same
                    // payload again, whatever field no column keeps differs, is a copy.
                    let mut p: serde_json::Value = serde_json::from_slice(&payload)?;
                    p["peername"] = format!("10.1.0.42:{}", 10_000 + i).into();
                    messages.push(("misc/unmapped".to_string(), serde_json::to_vec(&p)?));
                    want_written += 1;
                } else {
                    messages.push(("misc/unmapped".to_string(), payload));
                    *want_dead.entry(outcome).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(corpus.next(), None, "every corpus entry went out {REPEATS} times");
    let dead: u64 = want_dead.values().sum();

    let ingest_http = format!("127.0.0.1:{}", free_port());
    let (mqtt_url, client_id) = (format!("mqtt://127.0.0.1:{}", mqtt.port), unique("ingest"));
    #[rustfmt::skip]
    let ingest = Connaudit::start(&[
        "ingest", "--mqtt-url", &mqtt_url, "--mqtt-client-id", &client_id, "--kafka-brokers", &bootstrap,
        "--mqtt-topic", "client_connack", "--mqtt-topic", "misc/unmapped",
        "--kafka-topic", &topic, "--kafka-dlq-topic", &dlq, "--http-listen", &ingest_http,
    ], &dir.path().join("ingest.log"))?;
    let warehouse = dir.path().join("warehouse").display().to_string();
    let transform_http = format!("127.0.0.1:{}", free_port());
    let regions = dir.path().join("regions.csv");
    std::fs::write(&regions, fleet::REGIONS_CSV)?;
    let (group, regions) = (unique("g"), regions.display().to_string());
    #[rustfmt::skip]
    let transform = Connaudit::start(&[
        "transform", "--kafka-brokers", &bootstrap, "--kafka-topic", &topic, "--group", &group,
        "--kafka-dlq-topic", &dlq, "--kafka-alerts-topic", &alerts, "--warehouse", &warehouse,
        "--regions", &regions, "--batch-idle-secs", "1", "--http-listen", &transform_http,
    ], &dir.path().join("transform.log"))?;
    runtime.block_on(async {
        wait_ready(&ingest_http, Duration::from_secs(30)).await?;
        let (client, _loop) = publisher(mqtt.port).await?;
        publish_all(&client, &messages, None).await
    })?;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, out, _) = connaudit_tests::fixture::run(&[
            "query",
            "--warehouse",
            &warehouse,
            "--format",
            "csv",
            "SELECT count(*) FROM events",
        ])?;
        let n: u64 = if code == 0 { out.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0) } else { 0 };
        if n == want_written {
            break;
        }
        if n > want_written || Instant::now() > deadline {
            bail!("the warehouse has {n} events, {want_written} were valid; logs in {}", dir.path().display());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // One more than expected, so a stray letter would show; the wait ends after 5 s.
    let read = runtime.block_on(read_topic(&bootstrap, &dlq, dead as usize + 1, Duration::from_secs(5)))?;
    let mut got = BTreeMap::<String, u64>::new();
    for r in &read {
        assert_eq!(r.headers["source"], "mqtt", "dead-lettered by ingest, before Kafka's events topic");
        assert!(!r.headers["error"].is_empty());
        *got.entry(r.headers["error_kind"].clone()).or_default() += 1;
    }
    assert_eq!(got, want_dead, "dead letters by kind");
    transform.stop()?;
    ingest.stop()?;
    Ok(())
}
