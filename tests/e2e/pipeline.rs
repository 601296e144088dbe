//! The whole pipeline through real brokers: `connaudit simulate` publishes a fleet speaking
//! every broker's shape (EMQX, AWS IoT Core, Azure Event Grid, VerneMQ) to Mosquitto (and posts
//! more to ingest's `/events`), `connaudit ingest` bridges it into tansu,
//! `connaudit transform` writes the warehouse, and `connaudit query`/`audit` must report
//! exactly the simulator's ground truth.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use connaudit_tests::*;
use serde_json::Value;

fn connaudit(args: &[&str]) -> Result<String> {
    let out = Command::new(connaudit_bin()?).args(args).output()?;
    if !out.status.success() {
        bail!("connaudit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A JSON object of counts as a map.
fn counts(v: &Value) -> Result<BTreeMap<String, u64>> {
    Ok(v.as_object()
        .context("an object of counts")?
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
        .collect())
}

fn json_rows(args: &[&str]) -> Result<Vec<Value>> {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--format", "json"]);
    Ok(serde_json::from_str(&connaudit(&all)?)?)
}

/// Adds the second truth's counts into the first.
fn add(total: &mut Value, more: &Value) {
    match (total, more) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                add(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a @ Value::Null, b) => *a = b.clone(),
        (a, b) => *a = Value::from(a.as_u64().unwrap_or(0) + b.as_u64().unwrap_or(0)),
    }
}

#[test]
fn the_warehouse_reports_exactly_what_the_simulator_sent() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = |name: &str| dir.path().join(name).display().to_string();
    let Stack { mqtt, kafka, topic, dlq, alerts } = Stack::start(3)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (mqtt_url, bootstrap) = (format!("mqtt://127.0.0.1:{}", mqtt.port), kafka.bootstrap());
    let ingest_http = format!("127.0.0.1:{}", free_port());
    let client_id = unique("ingest");
    #[rustfmt::skip]
    let ingest = [
        "ingest", "--mqtt-url", &mqtt_url, "--mqtt-client-id", &client_id, "--kafka-brokers", &bootstrap,
        "--mqtt-topic", "client_connack", "--mqtt-topic", "client_connected", "--mqtt-topic", "client_disconnected",
        "--mqtt-topic", "vernemq/+", "--mqtt-topic", "hivemq/+",
        "--kafka-topic", &topic, "--kafka-dlq-topic", &dlq, "--http-listen", &ingest_http,
    ];
    let ingest = Connaudit::start(&ingest, &dir.path().join("ingest.log"))?;
    runtime.block_on(wait_ready(&ingest_http, Duration::from_secs(30)))?;

    // A fleet of every broker's shapes over MQTT, then a second one posted to ingest's webhook.
    let (regions, mqtt_truth, http_truth) = (path("regions.csv"), path("mqtt.json"), path("http.json"));
    let node_regions = path("node-regions.csv");
    let fleet = ["--devices", "600", "--rate", "2000", "--duration", "5s", "--format", "mixed"];
    let http_url = format!("http://{ingest_http}/events");
    #[rustfmt::skip]
    connaudit(&[&["simulate", "--mqtt-url", &mqtt_url, "--seed", "7", "--regions-out", &regions,
                  "--node-regions-out", &node_regions, "--truth-out", &mqtt_truth][..], &fleet[..]].concat())?;
    connaudit(
        &[&["simulate", "--http-url", &http_url, "--seed", "8", "--truth-out", &http_truth][..], &fleet[..]].concat(),
    )?;
    let mut truth: Value = serde_json::from_str(&std::fs::read_to_string(&mqtt_truth)?)?;
    add(&mut truth, &serde_json::from_str(&std::fs::read_to_string(&http_truth)?)?);
    let sent: u64 = counts(&truth["events"])?.values().sum();
    assert!(sent >= 20_000, "{sent}");

    let warehouse = path("warehouse");
    let transform_http = format!("127.0.0.1:{}", free_port());
    let group = unique("g");
    #[rustfmt::skip]
    let transform = [
        "transform", "--kafka-brokers", &bootstrap, "--kafka-topic", &topic, "--group", &group,
        "--kafka-dlq-topic", &dlq, "--kafka-alerts-topic", &alerts, "--warehouse", &warehouse,
        "--regions", &regions, "--node-regions", &node_regions, "--batch-idle-secs", "1",
        "--http-listen", &transform_http,
    ];
    let transform = Connaudit::start(&transform, &dir.path().join("transform.log"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = json_rows(&["query", "--warehouse", &warehouse, "SELECT count(*) AS n FROM events"]);
        let n = rows.ok().and_then(|r| r.first().and_then(|r| r["n"].as_u64())).unwrap_or(0);
        if n >= sent {
            break;
        }
        if Instant::now() > deadline {
            bail!("the warehouse has {n} of {sent} events; logs in {}", dir.path().display());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    transform.stop().context("transform")?;
    ingest.stop().context("ingest")?;

    // Events by type: exactly.
    let rows =
        json_rows(&["query", "--warehouse", &warehouse, "SELECT event, count(*) AS n FROM events GROUP BY event"])?;
    let got: BTreeMap<String, u64> =
        rows.iter().map(|r| (r["event"].as_str().unwrap_or("").to_string(), r["n"].as_u64().unwrap_or(0))).collect();
    assert_eq!(got, counts(&truth["events"])?);

    // Per region: counts exactly, failure rates to the last digit.
    let rows = json_rows(&["audit", "failures", "--warehouse", &warehouse])?;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let rates = json_rows(&[
        "query",
        "--warehouse",
        &warehouse,
        "SELECT region, sum(connects) AS connects, sum(disconnects) AS disconnects, \
                sum(abnormal_disconnects) AS abnormal FROM region_failure_rates GROUP BY region",
    ])?;
    // The rates as printed (CSV), read with Rust's exact parser: serde_json's default float
    // parsing can be one unit in the last place off.
    let csv = connaudit(&["audit", "failures", "--warehouse", &warehouse, "--format", "csv"])?;
    let printed: BTreeMap<String, f64> = csv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            Some((fields.first()?.to_string(), fields.get(3)?.parse().ok()?))
        })
        .collect();
    for row in &rows {
        let region = row["region"].as_str().context("region")?;
        let t = &truth["regions"][region];
        assert_eq!(row["attempts"], t["connacks"], "{region}");
        assert_eq!(row["failed"], t["failed_connacks"], "{region}");
        let rate = t["failed_connacks"].as_f64().context("failed")? / t["connacks"].as_f64().context("connacks")?;
        assert_eq!(printed.get(region), Some(&rate), "{region}: the rate to the last digit");
        let r = rates.iter().find(|r| r["region"] == region).context("region in region_failure_rates")?;
        assert_eq!(
            (&r["connects"], &r["disconnects"], &r["abnormal"]),
            (&t["connects"], &t["disconnects"], &t["abnormal_disconnects"])
        );
    }

    // Every reason, named as the catalog names it, with its count.
    let rows = json_rows(&["audit", "reasons", "--warehouse", &warehouse])?;
    let got: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                format!("{}:{}", r["kind"].as_str().unwrap_or(""), r["reason"].as_str().unwrap_or("")),
                r["count"].as_u64().unwrap_or(0),
            )
        })
        .fold(BTreeMap::new(), |mut m, (k, v)| {
            *m.entry(k).or_default() += v;
            m
        });
    assert_eq!(got, counts(&truth["reasons"])?);
    Ok(())
}
