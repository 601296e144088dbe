//! The pipeline under faults: real Mosquitto (persistent), a Kafka-protocol broker (tansu, or
//! librdkafka's mock cluster where a broker must go down or a consumer group must hand
//! partitions between processes: tansu 0.6 resumed a second member past the committed
//! offset), `connaudit ingest` and `connaudit transform` as processes, a fleet published over
//! MQTT at a steady rate while a fault strikes again and again. Every test then finds each
//! event exactly once in `events` and in the aggregates, the alerts equal a recount, and
//! prints its figures (and appends them to `$CONNAUDIT_RELIABILITY_OUT`, which
//! `scripts/reliability.sh` renders into docs/RELIABILITY.md).

mod processes;
pub(crate) mod recount;
mod storage;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use connaudit_tests::fleet::{fleet, Record, REGIONS_CSV};
use connaudit_tests::{connaudit_bin, create_topics, free_port, read_topic, unique, Connaudit, Server};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::Value;
use tempfile::TempDir;

use recount::{ALERTS_AGAINST_RECOUNT, ONLINE_AGAINST_RECOUNT};

/// 2024-06-01T00:00:00Z
const START: i64 = 1_717_200_000_000;

pub enum Kafka {
    #[allow(dead_code)]
    Tansu(Server),
    Mock(MockCluster<'static, DefaultProducerContext>),
}

/// A `connaudit` service a test kills and starts again with the same arguments and log.
pub struct Service {
    pub proc: Connaudit,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pub http: String,
    log: PathBuf,
}

impl Service {
    fn start(args: Vec<String>, env: Vec<(String, String)>, http: String, log: PathBuf) -> Result<Service> {
        let proc = spawn(&args, &env, &log)?;
        Ok(Service { proc, args, env, http, log })
    }

    pub fn kill(&mut self) -> Result<()> {
        self.proc.signal("-KILL")?;
        Ok(())
    }

    /// SIGTERM, which must end it cleanly.
    pub fn term(&mut self) -> Result<()> {
        let status = self.proc.signal("-TERM")?;
        anyhow::ensure!(status.success(), "exited with {status} after SIGTERM; see {}", self.log.display());
        Ok(())
    }

    pub fn restart(&mut self) -> Result<()> {
        self.proc = spawn(&self.args, &self.env, &self.log)?;
        Ok(())
    }

    pub async fn ready(&self) -> Result<()> {
        connaudit_tests::wait_ready(&self.http, Duration::from_secs(60)).await
    }
}

fn spawn(args: &[String], env: &[(String, String)], log: &std::path::Path) -> Result<Connaudit> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Connaudit::start_with(&args, &env, log)
}

/// How a rig is built.
pub struct Setup {
    pub mock: bool,
    pub partitions: i32,
    pub transforms: usize,
    /// A directory under the rig's (None) or an `s3://` location with its variables.
    pub warehouse: Option<(String, Vec<(String, String)>)>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup { mock: false, partitions: 4, transforms: 1, warehouse: None }
    }
}

pub struct Rig {
    pub dir: TempDir,
    pub mqtt: Server,
    pub kafka: Kafka,
    pub bootstrap: String,
    pub topic: String,
    pub warehouse: String,
    pub env: Vec<(String, String)>,
    pub ingest: Service,
    pub transforms: Vec<Service>,
}

impl Rig {
    pub async fn start(setup: Setup) -> Result<Rig> {
        let dir = tempfile::tempdir()?;
        let mqtt = Server::mosquitto_with(|d| {
            Ok(format!("persistence true\npersistence_location {}/\nautosave_interval 1\n", d.display()))
        })?;
        let topic = unique("events");
        let (dlq, alerts) = (format!("{topic}.dlq"), format!("{topic}.alerts"));
        let (kafka, bootstrap) = if setup.mock {
            let mock = MockCluster::new(1)?;
            mock.create_topic(&topic, setup.partitions, 1)?;
            mock.create_topic(&dlq, 1, 1)?;
            mock.create_topic(&alerts, 1, 1)?;
            let bootstrap = mock.bootstrap_servers();
            (Kafka::Mock(mock), bootstrap)
        } else {
            let tansu = Server::tansu()?;
            let bootstrap = tansu.bootstrap();
            create_topics(&bootstrap, &[&topic], setup.partitions).await?;
            create_topics(&bootstrap, &[&dlq, &alerts], 1).await?;
            (Kafka::Tansu(tansu), bootstrap)
        };
        let (warehouse, env) =
            setup.warehouse.unwrap_or_else(|| (dir.path().join("warehouse").display().to_string(), Vec::new()));
        let regions = dir.path().join("regions.csv");
        std::fs::write(&regions, REGIONS_CSV)?;

        let http = format!("127.0.0.1:{}", free_port());
        #[rustfmt::skip]
        let args = [
            "ingest", "--mqtt-url", &format!("mqtt://127.0.0.1:{}", mqtt.port), "--mqtt-client-id", &unique("ingest"),
            "--kafka-brokers", &bootstrap, "--kafka-topic", &topic, "--kafka-dlq-topic", &dlq, "--http-listen", &http,
        ];
        let ingest = Service::start(strings(&args), Vec::new(), http, dir.path().join("ingest.log"))?;
        let group = unique("group");
        let mut transforms = Vec::new();
        for i in 0..setup.transforms {
            let http = format!("127.0.0.1:{}", free_port());
            #[rustfmt::skip]
            let args = [
                "transform", "--kafka-brokers", &bootstrap, "--kafka-topic", &topic, "--group", &group,
                "--kafka-dlq-topic", &dlq, "--kafka-alerts-topic", &alerts, "--warehouse", &warehouse,
                "--regions", &regions.display().to_string(), "--http-listen", &http, "--batch-max-events", "2000",
                "--batch-idle-secs", "1", "--batch-max-age-secs", "2", "--kafka-option", "session.timeout.ms=6000",
            ];
            let log = dir.path().join(format!("transform-{i}.log"));
            transforms.push(Service::start(strings(&args), env.clone(), http, log)?);
        }
        ingest.ready().await.context("ingest")?;
        for t in &transforms {
            t.ready().await.context("transform")?;
        }
        Ok(Rig { dir, mqtt, kafka, bootstrap, topic, warehouse, env, ingest, transforms })
    }

    pub fn mock(&self) -> &MockCluster<'static, DefaultProducerContext> {
        match &self.kafka {
            Kafka::Mock(m) => m,
            Kafka::Tansu(_) => panic!("this rig runs tansu"),
        }
    }

    /// `connaudit query` over the warehouse, rows as JSON.
    pub fn query(&self, sql: &str) -> Result<Vec<Value>> {
        let out = Command::new(connaudit_bin()?)
            .args(["query", "--warehouse", &self.warehouse, "--format", "json", sql])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()?;
        if !out.status.success() {
            bail!("query failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Rows in `events` now (0 before the first commit).
    pub fn events(&self) -> u64 {
        let rows = self.query("SELECT count(*) AS n FROM warehouse.events");
        rows.ok().and_then(|r| r.first().and_then(|r| r["n"].as_u64())).unwrap_or(0)
    }

    /// Seconds from `since` until the load's first event published after it is in `events`:
    /// the time an event takes end to end right after a fault (0 when the load had ended).
    pub async fn arrived_after(&self, load: &Load, since: Instant) -> Result<f64> {
        let Some(r) = load.first_after(since) else { return Ok(0.0) };
        let v: Value = serde_json::from_str(&r.payload)?;
        let ms =
            ["timestamp", "disconnected_at", "connected_at"].iter().find_map(|k| v[*k].as_i64()).context("a time")?;
        let sql = format!(
            "SELECT count(*) AS n FROM warehouse.events WHERE clientid = '{}' AND CAST(ts AS BIGINT) = {}",
            r.key,
            ms * 1000
        );
        while since.elapsed() < Duration::from_secs(180) {
            let n = self.query(&sql).ok().and_then(|rows| rows.first().and_then(|r| r["n"].as_u64()));
            if n.unwrap_or(0) > 0 {
                return Ok(since.elapsed().as_secs_f64());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("an event published after the fault never reached the warehouse; logs in {}", self.dir.path().display())
    }

    /// Waits until `events` holds `n` rows; the seconds it took.
    pub async fn complete(&self, n: u64) -> Result<f64> {
        let started = Instant::now();
        loop {
            let got = self.events();
            if got >= n {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > Duration::from_secs(240) {
                bail!("the warehouse holds {got} of {n} events; logs in {}", self.dir.path().display());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Stops every service with SIGTERM (each must exit 0), then checks the warehouse against
    /// what was published and returns the figures.
    pub async fn finish(
        mut self,
        load: &Load,
        fault: &str,
        recovery: f64,
        drain: f64,
        note: String,
    ) -> Result<Figures> {
        // What the running ingest counted (since its last start).
        let metrics = reqwest::get(format!("http://{}/metrics", self.ingest.http)).await?.text().await?;
        let metric = |name: &str| -> u64 {
            metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
        };
        let (stale, skipped) =
            (metric("connaudit_mqtt_stale_acks_skipped_total"), metric("connaudit_mqtt_redeliveries_skipped_total"));
        eprintln!("ingest since its last start: {stale} acknowledgements lost with their connection, {skipped} redeliveries not produced again");
        let mut note = note;
        if skipped > 0 {
            let sep = if note.is_empty() { "" } else { "; " };
            note = format!("{note}{sep}ingest acknowledged {skipped} redeliveries (DUP) without producing them again");
        }
        self.ingest.term().context("ingest")?;
        for t in &mut self.transforms {
            t.term().context("transform")?;
        }
        let n = load.records.len() as u64;
        let row = |sql: &str| -> Result<Value> { Ok(self.query(sql)?.into_iter().next().unwrap_or(Value::Null)) };
        let got = row(
            "SELECT sum(n) AS rows, count(*) AS distinct_events FROM (SELECT count(*) AS n FROM warehouse.events \
             GROUP BY event, clientid, ts, reason, keepalive, peer_port)",
        )?;
        let (rows, distinct) = (got["rows"].as_u64().unwrap_or(0), got["distinct_events"].as_u64().unwrap_or(0));
        let aggregated = row(
            "SELECT CAST(sum(connacks) + sum(connects) + sum(disconnects) AS BIGINT) AS n FROM warehouse.region_failures",
        )?;
        let alerts = row(&ALERTS_AGAINST_RECOUNT.replace("{f}", "5").replace("{t}", "3"))?;
        let online = row(ONLINE_AGAINST_RECOUNT)?;
        let in_kafka =
            read_topic(&self.bootstrap, &self.topic, n as usize, Duration::from_secs(60)).await?.len() as u64;
        let figures = Figures {
            fault: fault.to_string(),
            events: n,
            rate: load.rate,
            in_kafka,
            lost: n.saturating_sub(distinct),
            duplicated: rows - distinct,
            dropped: in_kafka.saturating_sub(rows),
            recovery_s: recovery,
            drain_s: drain,
            note,
        };
        figures.report();
        assert_eq!((rows, distinct), (n, n), "every event once in events; logs in {}", self.dir.path().display());
        assert_eq!(aggregated["n"].as_u64(), Some(n), "every event once in region_failures");
        if alerts["mismatched"].as_u64() != Some(0) {
            let detail = ALERTS_AGAINST_RECOUNT.replace("{f}", "5").replace("{t}", "3");
            let detail = detail.split("SELECT (SELECT count(*) FROM recount)").next().unwrap_or_default().to_string()
                + "SELECT recount.kind, CAST(recount.minute AS VARCHAR) AS minute, recount.key, recount.n, got.kind AS got_kind, \
                   CAST(got.minute AS VARCHAR) AS got_minute, got.key AS got_key, got.n AS got_n FROM recount FULL OUTER JOIN got \
                   ON recount.kind = got.kind AND recount.minute = got.minute AND recount.key = got.key \
                   WHERE recount.n IS DISTINCT FROM got.n ORDER BY 2, 3 LIMIT 30";
            eprintln!("alerts unlike the recount: {:#?}", self.query(&detail));
        }
        assert_eq!(alerts["mismatched"].as_u64(), Some(0), "alerts equal a recount: {alerts}");
        assert_eq!(online["mismatched"].as_u64(), Some(0), "online_hours equal a recount: {online}");
        assert!(in_kafka >= n);
        Ok(figures)
    }
}

/// A fleet published over MQTT (QoS 1, persistent session) at a steady rate, the way a broker's
/// republish rule would: unacknowledged messages are sent again after a reconnect.
pub struct Load {
    pub records: Vec<Record>,
    pub rate: u64,
    started: Instant,
    task: tokio::task::JoinHandle<Result<()>>,
    _events: tokio::task::JoinHandle<()>,
}

impl Load {
    /// `n` events over `n / rate` seconds.
    pub async fn start(rig: &Rig, n: usize, rate: u64) -> Result<Load> {
        let (records, _) = fleet(n, (n / 10).max(10), START, 3 * 3_600_000, 0);
        let mut options = MqttOptions::new(unique("fleet"), "127.0.0.1", rig.mqtt.port);
        options.set_clean_session(false).set_max_packet_size(1 << 20, 1 << 20).set_inflight(200);
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        let events = tokio::spawn(async move {
            loop {
                if eventloop.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        let out = records.clone();
        let started = Instant::now();
        let task = tokio::spawn(publish(client, out, rate, started));
        Ok(Load { records, rate, started, task, _events: events })
    }

    /// The first record published after `t`, if the load goes on that long.
    pub fn first_after(&self, t: Instant) -> Option<&Record> {
        let i = (t.saturating_duration_since(self.started).as_secs_f64() * self.rate as f64).ceil() as usize + 1;
        self.records.get(i)
    }

    /// Waits until every event was handed to the publisher.
    pub async fn done(&mut self) -> Result<()> {
        (&mut self.task).await?
    }
}

async fn publish(client: AsyncClient, records: Vec<Record>, rate: u64, started: Instant) -> Result<()> {
    for (i, r) in records.into_iter().enumerate() {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let topic = r.event.replace('.', "_");
        client.publish(topic, QoS::AtLeastOnce, false, r.payload.into_bytes()).await?;
    }
    Ok(())
}

/// One row of docs/RELIABILITY.md.
#[derive(Debug)]
pub struct Figures {
    pub fault: String,
    pub events: u64,
    pub rate: u64,
    /// Records in the Kafka topic: the events and the copies ingest produced.
    pub in_kafka: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Copies transform dropped.
    pub dropped: u64,
    /// The longest time, over the faults, from a fault's end until the first event published
    /// after it was in the warehouse (end-to-end latency included: batches roll after 1-2 s).
    pub recovery_s: f64,
    /// From the end of the load until every event was in the warehouse.
    pub drain_s: f64,
    pub note: String,
}

impl Figures {
    fn report(&self) {
        let line = serde_json::json!({
            "fault": self.fault, "events": self.events, "rate": self.rate, "in_kafka": self.in_kafka,
            "lost": self.lost, "duplicated": self.duplicated, "dropped": self.dropped,
            "recovery_s": (self.recovery_s * 10.0).round() / 10.0, "drain_s": (self.drain_s * 10.0).round() / 10.0,
            "note": self.note,
        })
        .to_string();
        eprintln!("reliability: {line}");
        if let Ok(path) = std::env::var("CONNAUDIT_RELIABILITY_OUT") {
            use std::io::Write;
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
            if let Ok(mut f) = file {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}
