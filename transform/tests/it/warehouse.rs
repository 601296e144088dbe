//! Known events in, and DuckDB reading the warehouse gives exactly the expected rows, counts
//! and failure rates; bad records go to the DLQ; alerts reach the table and the topic.

use std::time::Duration;

use connaudit_tests::fleet::{fleet, REGIONS};
use connaudit_tests::{duckdb, produce_all, read_topic, wait_ready};
use tokio_util::sync::CancellationToken;

use crate::harness::{alerts_against_recount, count, file_facts, pairs, Rig};

/// 2024-05-01T10:00:00Z
const START: i64 = 1_714_557_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouse_holds_every_event_once_with_the_expected_answers() -> anyhow::Result<()> {
    let rig = Rig::new(3).await?;
    let (records, truth) = fleet(3000, 300, START, 3 * 3_600_000, 500);
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let mut cfg = rig.config();
    cfg.alerts.connack_failures_per_minute = 1;
    cfg.alerts.takeovers_per_minute = 0;
    let http = cfg.http_listen.to_string();
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
    wait_ready(&http, Duration::from_secs(20)).await?;
    let good = 3000 - truth.malformed;
    rig.wait_for_events(good, Duration::from_secs(60)).await?;
    // The counter moves after a batch is committed, a moment after its files are visible.
    let want = "connaudit_transform_records_total{outcome=\"written\"} 2994";
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = reqwest_get(&format!("http://{http}/metrics")).await?;
        if metrics.contains(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(metrics.contains(want), "{metrics}");
    stop.cancel();
    run.await??;

    let events = rig.table("events");
    // Every record once, by its Kafka coordinates.
    let sql = format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {events})");
    assert_eq!(count(&sql)?, good);
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, good);
    let by_type = pairs(&format!("SELECT event AS k, count(*) AS n FROM {events} GROUP BY 1 ORDER BY 1"))?;
    let want: Vec<(String, u64)> = truth.events.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(by_type, want);
    // Partition directories agree with the timestamps, in UTC.
    let misplaced = format!(
        "SELECT count(*) AS n FROM {events} WHERE CAST(date AS VARCHAR) <> strftime(timezone('UTC', ts), '%Y-%m-%d')"
    );
    assert_eq!(count(&misplaced)?, 0);
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events} WHERE region = 'unknown'"))?, 0);

    // Per-region counts and failure rates from the aggregate files.
    let rf = rig.table("region_failures");
    let rows = duckdb(&format!(
        "SELECT region, sum(connacks)::BIGINT AS c, sum(failed_connacks)::BIGINT AS f, sum(disconnects)::BIGINT AS d, \
         sum(abnormal_disconnects)::BIGINT AS a, sum(failed_connacks) / sum(connacks) AS rate FROM {rf} GROUP BY 1 ORDER BY 1"
    ))?;
    assert_eq!(rows.len(), REGIONS.len());
    for row in rows {
        let region = row["region"].as_str().unwrap();
        let t = truth.regions[region];
        let got = [&row["c"], &row["f"], &row["d"], &row["a"]].map(|v| v.as_u64().unwrap());
        assert_eq!(got, t, "{region}");
        assert_eq!(row["rate"].as_f64().unwrap(), t[1] as f64 / t[0] as f64, "{region}");
    }
    let reasons = pairs(&format!(
        "SELECT 'connack:' || reason AS k, sum(count)::BIGINT AS n FROM {} GROUP BY 1 UNION ALL \
         SELECT 'disconnect:' || reason AS k, sum(count)::BIGINT AS n FROM {} GROUP BY 1 ORDER BY 1",
        rig.table("connack_reasons"),
        rig.table("disconnect_reasons")
    ))?;
    let want: Vec<(String, u64)> = truth.reasons.iter().map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(reasons, want);

    // Alerts: one per minute and region above the threshold, as a recount from events says.
    let expected = count(&format!(
        "SELECT count(*) AS n FROM (SELECT date_trunc('minute', ts), region FROM {events} \
         WHERE event = 'client.connack' AND is_failure GROUP BY 1, 2 HAVING count(*) > 1)"
    ))?;
    let raised = count(&format!("SELECT count(*) AS n FROM {} WHERE kind = 'connack_failures'", rig.table("alerts")))?;
    assert!(expected > 0);
    assert_eq!(raised, expected);
    // Each alert once, with the minute's whole count.
    let (recounted, got, mismatched) = alerts_against_recount(&rig, 1, 0)?;
    assert_eq!((got, mismatched), (recounted, 0));
    let takeovers = count(&format!(
        "SELECT count(*) AS n FROM (SELECT DISTINCT date_trunc('minute', ts), clientid FROM {events} WHERE reason = 'takenover')"
    ))?;
    let alerts_total = expected + takeovers;
    // Prometheus has the same: the alerts by kind and region, and every region's CONNACKs by
    // outcome (what deploy/k8s/monitoring's rules divide), equal to what was sent.
    let sample = |name: &str, labels: &[(&str, &str)]| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(sample("connaudit_alerts_total", &[("kind", "connack_failures")]) as u64, expected, "{metrics}");
    for region in REGIONS {
        let [connacks, failed, ..] = truth.regions[region];
        assert_eq!(sample("connaudit_connacks_total", &[("region", region), ("outcome", "failed")]) as u64, failed);
        let accepted = sample("connaudit_connacks_total", &[("region", region), ("outcome", "accepted")]) as u64;
        assert_eq!(accepted, connacks - failed, "{region}");
        let rate = sample("connaudit_region_failure_rate", &[("region", region)]);
        assert!((0.0..=1.0).contains(&rate), "{region}: {rate}");
    }
    let on_topic = read_topic(&rig.bootstrap, &rig.alerts, alerts_total as usize, Duration::from_secs(20)).await?;
    assert_eq!(on_topic.len() as u64, alerts_total);

    // Bad records went to the DLQ with the reason.
    let dead = read_topic(&rig.bootstrap, &rig.dlq, truth.malformed as usize, Duration::from_secs(20)).await?;
    assert_eq!(dead.len() as u64, truth.malformed);
    assert!(dead.iter().all(|r| r.headers["error_kind"] == "not_json" && r.headers["source"] == "transform"));
    assert!(dead.iter().all(|r| String::from_utf8_lossy(&r.payload).starts_with("garbage")));

    let got = file_facts(&rig.warehouse())?;
    assert!(got["files"].as_u64().unwrap() > 3, "{got}");
    assert_eq!(got["unsorted"], 0, "{got}");
    assert_eq!(got["types"], serde_json::json!(["timestamp[us, tz=UTC]"]));
    assert_eq!(got["codecs"], serde_json::json!(["ZSTD"]));
    assert_eq!(got["bloom"], got["files"], "{got}");
    assert_eq!((&got["prefixed"], &got["disagree"]), (&got["files"], &serde_json::json!(0)), "{got}");
    Ok(())
}

async fn reqwest_get(url: &str) -> anyhow::Result<String> {
    Ok(reqwest::get(url).await?.text().await?)
}
