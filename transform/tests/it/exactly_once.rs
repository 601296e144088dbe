//! 100,000 events and 2,000 redelivered copies, two transformer processes in one group,
//! SIGKILL (and some SIGTERM) at random points and a restart each time, and a broker down for
//! a while: every event lands exactly once (the copies dropped), and the aggregates equal a
//! recount.
//!
//! The broker is librdkafka's mock cluster (3 brokers, in the test process, on loopback
//! ports), with 12 partitions: tansu 0.6.0's consumer groups resumed a restarted member up to 559 offsets past
//! the committed one, or handed a partition's records twice, in this test (3 runs of 3).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use connaudit_tests::fleet::fleet;
use connaudit_tests::{connaudit_bin, duckdb, free_port, produce_all};

use crate::harness::{alerts_against_recount, count, sessions_against_recount, Rig};

/// 2024-05-02T00:00:00Z
const START: i64 = 1_714_608_000_000;
const EVENTS: usize = 100_000;

struct Proc {
    child: Child,
    args: Vec<String>,
    log: std::path::PathBuf,
}

impl Proc {
    fn start(args: Vec<String>, log: std::path::PathBuf) -> anyhow::Result<Proc> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let child = Command::new(connaudit_bin()?)
            .args(&args)
            .env("RUST_LOG", "info,connaudit_transform=debug,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()?;
        Ok(Proc { child, args, log })
    }

    fn signal(&mut self, sig: &str) -> anyhow::Result<std::process::ExitStatus> {
        Command::new("kill").args([sig, &self.child.id().to_string()]).status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().filter(|l| !l.contains("Wrote a file")).rev().take(80).collect();
            eprintln!("--- last lines of {} ---", self.log.display());
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
    }
}

/// A small deterministic generator, seeded from the clock and printed, so a failure can be
/// replayed with CONNAUDIT_TEST_SEED.
fn rng() -> impl FnMut(u64) -> u64 {
    let seed = std::env::var("CONNAUDIT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("kill schedule seed: CONNAUDIT_TEST_SEED={seed}");
    let mut state = seed | 1;
    move |below| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    // The mock keeps at most 5 MB per partition (older records are dropped): 12 partitions
    // hold the 100,000 events (about 3 MB each).
    let rig = Rig::mock(12)?;
    let (originals, truth) = fleet(EVENTS, 5000, START, 6 * 3_600_000, 0);
    // Lost disconnects: every 41st of them never reaches Kafka (the sessions it ended must
    // come out `missing`).
    let mut lost = 0;
    let (originals, truth) = {
        let mut truth = truth;
        let mut disconnects = 0;
        let kept: Vec<_> = originals
            .into_iter()
            .filter(|r| {
                if r.event != "client.disconnected" {
                    return true;
                }
                disconnects += 1;
                let drop = disconnects % 41 == 0;
                lost += u64::from(drop);
                !drop
            })
            .collect();
        *truth.events.get_mut("client.disconnected").unwrap() -= lost;
        (kept, truth)
    };
    let events_total = originals.len();
    // Redelivered copies: after every 50th record, a copy of one up to 18 records back.
    let mut records = Vec::with_capacity(EVENTS + EVENTS / 50);
    for (i, r) in originals.iter().enumerate() {
        records.push(r.clone());
        if i % 50 == 49 {
            records.push(originals[i - (i % 7) * 3].clone());
        }
    }
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let cfg = rig.config();
    let args = |port: u16| -> Vec<String> {
        [
            "transform",
            "--kafka-brokers",
            &cfg.kafka.brokers,
            "--kafka-topic",
            &cfg.kafka.topic,
            "--group",
            &cfg.kafka.group,
            "--kafka-dlq-topic",
            &cfg.kafka.dlq_topic,
            "--kafka-alerts-topic",
            &cfg.kafka.alerts_topic,
            "--warehouse",
            &cfg.warehouse,
            "--regions",
            &rig.dir.path().join("regions.csv").display().to_string(),
            "--http-listen",
            &format!("127.0.0.1:{port}"),
            "--batch-max-events",
            "2000",
            "--batch-idle-secs",
            "1",
            "--batch-max-age-secs",
            "2",
            "--kafka-option",
            "session.timeout.ms=6000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let logs = rig.dir.path();
    let mut procs = vec![
        Proc::start(args(free_port()), logs.join("transform-0.log"))?,
        Proc::start(args(free_port()), logs.join("transform-1.log"))?,
    ];
    let mut next = rng();
    let mock = rig.mock_cluster().expect("a mock cluster");
    for round in 0..8 {
        tokio::time::sleep(Duration::from_millis(800 + next(2500))).await;
        match round {
            2 => mock.broker_down(2)?,
            5 => mock.broker_up(2)?,
            _ => {}
        }
        let victim = next(2) as usize;
        if next(4) == 0 {
            let status = procs[victim].signal("-TERM")?;
            eprintln!("round {round}: stopped transformer {victim} with SIGTERM: {status}");
            assert!(status.success(), "SIGTERM mid-stream should end the transformer cleanly, got {status}");
        } else {
            procs[victim].signal("-KILL")?;
            eprintln!("round {round}: killed transformer {victim}");
        }
        let args = procs[victim].args.clone();
        let log = procs[victim].log.clone();
        procs[victim] = Proc::start(args, log)?;
    }
    // A panic (not an error) so the transformers' logs are printed.
    rig.wait_for_events(events_total as u64, Duration::from_secs(240)).await.expect("every event in the warehouse");
    for p in &mut procs {
        let status = p.signal("-TERM")?;
        assert!(status.success(), "SIGTERM should end the transformer cleanly, got {status}");
    }

    let events = rig.table("events");
    let total = events_total as u64;
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, total);
    let distinct = format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {events})");
    assert_eq!(count(&distinct)?, total);
    let contents = format!(
        "SELECT count(*) AS n FROM (SELECT DISTINCT event, clientid, ts, reason, keepalive, peer_port FROM {events})"
    );
    assert_eq!(count(&contents)?, total, "every copy dropped, whatever the kills");
    sessions_against_recount(&rig, lost)?;

    // The aggregates equal a recount from events, minute by minute, and the generator's truth.
    let mismatched = format!(
        "WITH recount AS (SELECT date_trunc('minute', ts) AS minute, region, \
            count(*) FILTER (WHERE event = 'client.connack') AS connacks, \
            count(*) FILTER (WHERE event = 'client.connack' AND is_failure) AS failed_connacks, \
            count(*) FILTER (WHERE event = 'client.connected') AS connects, \
            count(*) FILTER (WHERE event = 'client.disconnected') AS disconnects, \
            count(*) FILTER (WHERE event = 'client.disconnected' AND is_failure) AS abnormal_disconnects \
          FROM {events} GROUP BY 1, 2), \
         summed AS (SELECT minute, region, sum(connacks) AS connacks, sum(failed_connacks) AS failed_connacks, \
            sum(connects) AS connects, sum(disconnects) AS disconnects, sum(abnormal_disconnects) AS abnormal_disconnects \
          FROM {} GROUP BY 1, 2) \
         SELECT count(*) AS n FROM recount FULL OUTER JOIN summed USING (minute, region) \
         WHERE recount.connacks IS DISTINCT FROM summed.connacks \
            OR recount.failed_connacks IS DISTINCT FROM summed.failed_connacks \
            OR recount.connects IS DISTINCT FROM summed.connects \
            OR recount.disconnects IS DISTINCT FROM summed.disconnects \
            OR recount.abnormal_disconnects IS DISTINCT FROM summed.abnormal_disconnects",
        rig.table("region_failures")
    );
    assert_eq!(count(&mismatched)?, 0);
    let reasons = duckdb(&format!(
        "SELECT (SELECT sum(count) FROM {}) AS connack, (SELECT sum(count) FROM {}) AS disconnect",
        rig.table("connack_reasons"),
        rig.table("disconnect_reasons")
    ))?;
    // The alerts of two replicas killed again and again: what the data says, each once, with
    // the minute's whole count (the defaults: more than 5 failures, more than 3 takeovers).
    let (expected, got, mismatched) = alerts_against_recount(&rig, 5, 3)?;
    eprintln!("alerts: {got} of {expected} expected, {mismatched} mismatched");
    assert!(expected > 0);
    assert_eq!((got, mismatched), (expected, 0));
    assert_eq!(reasons[0]["connack"].as_u64(), Some(truth.events["client.connack"]));
    assert_eq!(reasons[0]["disconnect"].as_u64(), Some(truth.events["client.disconnected"]));
    Ok(())
}
