//! What a record can do to the transformer, each as it was found to work before: a dead
//! letter Kafka refuses (retried forever while ready), a topic deleted and re-created (its
//! records skipped silently), an event dated 2000-01-01 that widened the sessions' read-back
//! to all history.

use std::time::Duration;

use anyhow::{bail, Result};
use connaudit_tests::fleet::Record;
use connaudit_tests::{create_topics, produce_all, read_topic, wait_ready, Server};
use connaudit_transform::TransformConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::harness::{count, Rig};

/// 2026-11-30T23:50:00Z
const T: i64 = 1_796_082_600_000;
const HOUR: i64 = 3_600_000;

fn connected(id: &str, ts: i64) -> Record {
    let payload = format!(
        r#"{{"event":"client.connected","clientid":"{id}","username":"u","peername":"10.1.0.9:4000","node":"emqx@n1","connected_at":{ts},"timestamp":{ts}}}"#
    );
    Record { key: id.into(), payload, with_headers: true, event: "client.connected" }
}

fn disconnected(id: &str, since: i64, ts: i64) -> Record {
    let payload = format!(
        r#"{{"event":"client.disconnected","clientid":"{id}","username":"u","peername":"10.1.0.9:4000","node":"emqx@n1","reason":"normal","connected_at":{since},"disconnected_at":{ts},"timestamp":{ts}}}"#
    );
    Record { key: id.into(), payload, with_headers: true, event: "client.disconnected" }
}

fn garbage(bytes: usize) -> Record {
    Record { key: "bad".into(), payload: "x".repeat(bytes), with_headers: true, event: "client.connack" }
}

struct Running {
    http: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<connaudit_transform::Result<()>>,
}

impl Running {
    async fn start(cfg: TransformConfig) -> Result<Running> {
        // The service's logs, shown by the test runner when a test fails.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        let http = cfg.http_listen.to_string();
        let stop = CancellationToken::new();
        let task = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
        wait_ready(&http, Duration::from_secs(20)).await?;
        Ok(Running { http, stop, task })
    }

    async fn metric(&self, name: &str) -> Result<f64> {
        let text = reqwest::get(format!("http://{}/metrics", self.http)).await?.text().await?;
        Ok(text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum())
    }

    async fn stop(self) -> Result<()> {
        self.stop.cancel();
        self.task.await??;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_kafka_refuses_is_cut_or_dropped_and_the_partition_moves_on() -> Result<()> {
    let rig = Rig::mock(1)?;
    // Kafka takes at most 100 kB from transform: a 200 kB dead letter is refused, then sent
    // cut to 64 KiB; one whose 90 kB key leaves no room even for the cut is dropped.
    let mut cfg = rig.config();
    cfg.kafka.options.insert("message.max.bytes".into(), "100000".into());
    let mut keyed = garbage(200_000);
    keyed.key = "k".repeat(90_000);
    let records = [connected("a", T), garbage(200_000), connected("b", T + 1), keyed, connected("c", T + 2)];
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let run = Running::start(cfg).await?;
    rig.wait_for_events(3, Duration::from_secs(30)).await?;
    assert_eq!(run.metric("connaudit_transform_dead_letters_refused_total{outcome=\"truncated\"}").await?, 1.0);
    assert_eq!(run.metric("connaudit_transform_dead_letters_refused_total{outcome=\"dropped\"}").await?, 1.0);
    let ready = reqwest::get(format!("http://{}/readyz", run.http)).await?;
    assert_eq!(ready.status().as_u16(), 200, "{}", ready.text().await?);
    run.stop().await?;
    let dead = read_topic(&rig.bootstrap, &rig.dlq, 1, Duration::from_secs(20)).await?;
    assert_eq!(dead.len(), 1, "the cut letter; the dropped one is not there");
    assert_eq!(dead[0].payload.len(), 64 * 1024);
    assert_eq!(dead[0].headers.get("truncated_from").map(String::as_str), Some("200000"));
    assert_eq!(dead[0].headers.get("error_kind").map(String::as_str), Some("not_json"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_and_recreated_is_refused_loudly() -> Result<()> {
    // tansu: its end offsets lag (the base offset of the last batch), so only the records
    // themselves can tell a redelivery from a new log.
    let rig = Rig::new(1).await?;
    let cfg = rig.config();
    let records: Vec<Record> = (0..20).map(|i| connected(&format!("d{i}"), T + i)).collect();
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let run = Running::start(cfg.clone()).await?;
    rig.wait_for_events(20, Duration::from_secs(30)).await?;
    run.stop().await?;

    // Kafka forgetting the group's position is no alarm: the same records come again, each
    // the one the warehouse holds at its offset.
    let rewind: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &rig.bootstrap)
        .set("group.id", &cfg.kafka.group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut from_zero = TopicPartitionList::new();
    from_zero.add_partition_offset(&rig.topic, 0, Offset::Offset(0))?;
    rewind.assign(&from_zero)?;
    // The group is empty once the last member's leave went through.
    let mut tries = 0;
    while let Err(e) = rewind.commit(&from_zero, CommitMode::Sync) {
        tries += 1;
        anyhow::ensure!(tries < 40, "cannot rewind the group: {e}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(rewind);
    let run = Running::start(cfg.clone()).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ready = reqwest::get(format!("http://{}/readyz", run.http)).await?;
    assert_eq!(ready.status().as_u16(), 200, "{}", ready.text().await?);
    assert_eq!(run.metric("connaudit_transform_records_total{outcome=\"skipped\"}").await?, 20.0);
    assert_eq!(run.metric("connaudit_transform_offsets_went_back_records_total").await?, 0.0);
    run.stop().await?;

    // The same topic name on a new cluster: its offsets begin at 0 again.
    let fresh = Server::tansu()?;
    create_topics(&fresh.bootstrap(), &[&rig.topic, &rig.dlq, &rig.alerts], 1).await?;
    let records: Vec<Record> = (0..5).map(|i| connected(&format!("new{i}"), T + 100 + i)).collect();
    produce_all(&fresh.bootstrap(), &rig.topic, &records).await?;
    let mut again = cfg;
    again.kafka.brokers = fresh.bootstrap();
    let run = Running::start(again).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = reqwest::get(format!("http://{}/readyz", run.http)).await?;
        let (status, body) = (ready.status().as_u16(), ready.text().await?);
        if status == 503 && body.contains("\"offsets_went_back\":[0]") {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("readyz never reported the partition: {status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(run.metric("connaudit_transform_offsets_went_back_records_total").await?, 5.0);
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {}", rig.table("events")))?, 20);
    run.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_dated_2000_does_not_widen_the_sessions_read_back() -> Result<()> {
    let rig = Rig::mock(1)?;
    // Twenty days of history, a connect an hour, then the client whose session is open.
    let mut history: Vec<Record> =
        (0..20 * 24).map(|h| connected(&format!("old{h}"), T - (20 * 24 - h) * HOUR)).collect();
    history.push(connected("open", T));
    produce_all(&rig.bootstrap, &rig.topic, &history).await?;
    let mut cfg = rig.config();
    cfg.batch.max_events = 5000;
    // The second run's consumer joins at once rather than after the first one's session.
    cfg.kafka.options.insert("session.timeout.ms".into(), "6000".into());
    let run = Running::start(cfg.clone()).await?;
    rig.wait_for_events(history.len() as u64, Duration::from_secs(60)).await?;
    run.stop().await?;

    // A new run (the sessions are read back): an event dated 2000-01-01 01:00, then the
    // disconnect.
    produce_all(&rig.bootstrap, &rig.topic, &[connected("poison", 946_688_400_000), disconnected("open", T, T + HOUR)])
        .await?;
    let run = Running::start(cfg).await?;
    rig.wait_for_events(history.len() as u64 + 2, Duration::from_secs(60)).await?;
    let read_back = run.metric("connaudit_transform_sessions_read_back_rows_total").await?;
    run.stop().await?;
    // Seven days of connects before the newest committed one, not twenty (nor all history).
    assert_eq!(read_back, (7 * 24 + 1) as f64);
    let rows = count(&format!(
        "SELECT count(*) AS n FROM {} WHERE clientid = 'open' AND end_reason = 'normal' AND connect_offset = {}",
        rig.table("sessions"),
        history.len() - 1
    ))?;
    assert_eq!(rows, 1, "the open session is paired with its disconnect");
    Ok(())
}
