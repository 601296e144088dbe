//! What the transform tests share: a broker with the three topics, a warehouse directory, and
//! a configuration pointing the transformer at them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use connaudit_tests::{create_topics, delta_files, delta_table, duckdb, free_port, python_json, unique, Server};
use connaudit_transform::TransformConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tempfile::TempDir;

/// The Kafka-protocol broker of a test: tansu, or librdkafka's mock cluster (in this
/// process, on loopback ports, reachable from child processes too). Held only to keep it
/// running until the rig is dropped.
pub enum Broker {
    #[allow(dead_code)]
    Tansu(Server),
    Mock(MockCluster<'static, DefaultProducerContext>),
}

pub struct Rig {
    _broker: Broker,
    pub bootstrap: String,
    pub topic: String,
    pub dlq: String,
    pub alerts: String,
    pub dir: TempDir,
}

impl Rig {
    /// tansu with the three topics.
    pub async fn new(partitions: i32) -> Result<Rig> {
        let kafka = Server::tansu()?;
        let bootstrap = kafka.bootstrap();
        let topic = unique("events");
        let (dlq, alerts) = (format!("{topic}.dlq"), format!("{topic}.alerts"));
        create_topics(&bootstrap, &[&topic], partitions).await?;
        create_topics(&bootstrap, &[&dlq, &alerts], 1).await?;
        Rig::with(Broker::Tansu(kafka), bootstrap, topic)
    }

    /// librdkafka's mock cluster with the three topics.
    pub fn mock(partitions: i32) -> Result<Rig> {
        let mock = MockCluster::new(3)?;
        let topic = unique("events");
        mock.create_topic(&topic, partitions, 1)?;
        mock.create_topic(&format!("{topic}.dlq"), 1, 1)?;
        mock.create_topic(&format!("{topic}.alerts"), 1, 1)?;
        let bootstrap = mock.bootstrap_servers();
        Rig::with(Broker::Mock(mock), bootstrap, topic)
    }

    fn with(broker: Broker, bootstrap: String, topic: String) -> Result<Rig> {
        let (dlq, alerts) = (format!("{topic}.dlq"), format!("{topic}.alerts"));
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("regions.csv"), connaudit_tests::fleet::REGIONS_CSV)?;
        Ok(Rig { _broker: broker, bootstrap, topic, dlq, alerts, dir })
    }

    /// The mock cluster, for broker outages.
    pub fn mock_cluster(&self) -> Option<&MockCluster<'static, DefaultProducerContext>> {
        match &self._broker {
            Broker::Mock(m) => Some(m),
            Broker::Tansu(_) => None,
        }
    }

    pub fn warehouse(&self) -> PathBuf {
        self.dir.path().join("warehouse")
    }

    pub fn config(&self) -> TransformConfig {
        let mut c = TransformConfig::default();
        c.kafka.brokers = self.bootstrap.clone();
        c.kafka.topic = self.topic.clone();
        c.kafka.group = unique("transform");
        c.kafka.dlq_topic = self.dlq.clone();
        c.kafka.alerts_topic = self.alerts.clone();
        c.warehouse = self.warehouse().display().to_string();
        c.regions = Some(self.dir.path().join("regions.csv"));
        c.http_listen = ([127, 0, 0, 1], free_port()).into();
        c.batch.max_events = 500;
        c.batch.idle_secs = 1;
        c.batch.max_age_secs = 3;
        c
    }

    /// `connaudit transform` arguments for this rig: its topics and regions, `warehouse`,
    /// consumer group `group`, HTTP on `port`, small batches.
    pub fn cli_args(&self, warehouse: &str, group: &str, port: u16) -> Vec<String> {
        let regions = self.dir.path().join("regions.csv").display().to_string();
        #[rustfmt::skip]
        let args = [
            "transform", "--kafka-brokers", &self.bootstrap, "--kafka-topic", &self.topic, "--group", group,
            "--kafka-dlq-topic", &self.dlq, "--kafka-alerts-topic", &self.alerts, "--warehouse", warehouse,
            "--regions", &regions, "--http-listen", &format!("127.0.0.1:{port}"), "--batch-max-events", "300",
            "--batch-idle-secs", "1", "--batch-max-age-secs", "2",
        ];
        args.iter().map(|s| s.to_string()).collect()
    }

    /// DuckDB over exactly the files the table's Delta log lists (read without delta-rs).
    pub fn table(&self, name: &str) -> String {
        delta_table(&self.warehouse().join(name)).expect("the Delta log reads")
    }

    /// Waits until the `events` table holds `want` rows (by DuckDB's count).
    pub async fn wait_for_events(&self, want: u64, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = 0;
        while std::time::Instant::now() < deadline {
            if self.warehouse().join("events/_delta_log").exists() {
                seen = count(&format!("SELECT count(*) AS n FROM {}", self.table("events")))?;
                if seen >= want {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::bail!("the warehouse holds {seen} events, not {want}, after {timeout:?}")
    }
}

impl Drop for Rig {
    /// A failing test keeps its warehouse and logs for a look.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let keep = std::env::temp_dir().join(format!("connaudit-failed-{}", unique("rig")));
            let copied = std::process::Command::new("cp").arg("-r").arg(self.dir.path()).arg(&keep).status();
            if copied.is_ok_and(|s| s.success()) {
                eprintln!("the warehouse and logs are kept in {}", keep.display());
            }
        }
    }
}

/// The single number a `SELECT count(*) AS n ...` returns.
pub fn count(sql: &str) -> Result<u64> {
    let rows = duckdb(sql)?;
    Ok(rows.first().and_then(|r| r["n"].as_u64()).unwrap_or(0))
}

/// The alerts a recount from `events` expects with these thresholds, the alerts the table
/// holds, and how many of either have no match of the same kind, minute, key and count.
pub fn alerts_against_recount(rig: &Rig, failures: u64, takeovers: u64) -> Result<(u64, u64, u64)> {
    let (events, alerts) = (rig.table("events"), rig.table("alerts"));
    let rows = duckdb(&format!(
        "WITH recount AS ( \
            SELECT 'connack_failures' AS kind, date_trunc('minute', ts) AS minute, region AS key, count(*) AS n \
            FROM {events} WHERE event = 'client.connack' AND is_failure GROUP BY 1, 2, 3 HAVING count(*) > {failures} \
            UNION ALL \
            SELECT 'takeover_loop', date_trunc('minute', ts), clientid, count(*) FROM {events} \
            WHERE event = 'client.disconnected' AND category = 'session-conflict' GROUP BY 1, 2, 3 \
            HAVING count(*) > {takeovers}), \
         got AS (SELECT kind, minute, coalesce(clientid, region) AS key, count AS n FROM {alerts}) \
         SELECT (SELECT count(*) FROM recount) AS expected, (SELECT count(*) FROM got) AS got, \
            (SELECT count(*) FROM recount FULL OUTER JOIN got USING (kind, minute, key) \
             WHERE recount.n IS DISTINCT FROM got.n) AS mismatched"
    ))?;
    let n = |k: &str| rows.first().and_then(|r| r[k].as_u64()).unwrap_or(u64::MAX);
    Ok((n("expected"), n("got"), n("mismatched")))
}

/// Rows of `sql` as (text key, number) pairs, from columns `k` and `n`.
pub fn pairs(sql: &str) -> Result<Vec<(String, u64)>> {
    Ok(duckdb(sql)?
        .iter()
        .map(|r| (r["k"].as_str().unwrap_or_default().to_string(), r["n"].as_u64().unwrap_or(u64::MAX)))
        .collect())
}

/// Facts about each `events` file the Delta log lists that an outside engine relies on, read
/// by pyarrow and DuckDB: the `ts` type, codecs, a clientid bloom filter, rows sorted by type,
/// client and time (the table's order), and the client id and user name prefix-coded
/// (`DELTA_BYTE_ARRAY`) and read alike by both.
pub fn file_facts(warehouse: &std::path::Path) -> Result<serde_json::Value> {
    let files = serde_json::to_string(&delta_files(&warehouse.join("events"))?)?;
    let script = r#"
import json, sys
import pyarrow.parquet as pq
import duckdb
out = {"files": 0, "unsorted": 0, "types": set(), "codecs": set(), "bloom": 0, "prefixed": 0, "disagree": 0}
for path in json.loads(sys.argv[1]):
    out["files"] += 1
    t = pq.read_table(path)
    out["types"].add(str(t.schema.field("ts").type))
    keys = list(zip(t.column("event").to_pylist(), t.column("clientid").to_pylist(), t.column("ts").to_pylist()))
    out["unsorted"] += keys != sorted(keys)
    md = pq.ParquetFile(path).metadata
    out["codecs"].update(md.row_group(0).column(i).compression for i in range(md.num_columns))
    names = [md.row_group(0).column(i).path_in_schema for i in range(md.num_columns)]
    out["prefixed"] += all("DELTA_BYTE_ARRAY" in md.row_group(0).column(names.index(c)).encodings for c in ("clientid", "username"))
    # DuckDB's decoder reads the prefix-coded strings as pyarrow's does.
    duck = duckdb.sql(f"SELECT clientid, username FROM read_parquet('{path}')").fetchall()
    out["disagree"] += sorted(duck, key=str) != sorted(zip(t.column("clientid").to_pylist(), t.column("username").to_pylist()), key=str)
    rows = duckdb.sql(f"SELECT bloom_filter_length FROM parquet_metadata('{path}') WHERE path_in_schema = 'clientid'").fetchall()
    out["bloom"] += all(r[0] and r[0] > 0 for r in rows)
print(json.dumps({k: sorted(v) if isinstance(v, set) else v for k, v in out.items()}))
"#;
    python_json(script, &[&files])
}

/// Checks `sessions` against a pairing DuckDB does from `events` on its own: a session per
/// disconnect (begun by the connect before it, if that is a connect) and a `missing` one per
/// connect followed by another connect, ended by the event after that; each exactly once.
pub fn sessions_against_recount(rig: &Rig, lost: u64) -> Result<()> {
    let (events, sessions) = (rig.table("events"), rig.table("sessions"));
    let rows = duckdb(&format!(
        "WITH l AS (SELECT event, reason, kafka_partition AS p, kafka_offset AS o, \
                lag(event) OVER w AS prev_event, lag(kafka_offset) OVER w AS prev_o, \
                lead(event) OVER w AS next_event, lead(kafka_offset, 2) OVER w AS next2_o \
            FROM {events} WHERE event IN ('client.connected', 'client.disconnected') \
            WINDOW w AS (PARTITION BY clientid ORDER BY kafka_partition, kafka_offset)), \
         expected AS ( \
            SELECT p, o, CASE WHEN prev_event = 'client.connected' THEN prev_o END AS c, reason AS r \
            FROM l WHERE event = 'client.disconnected' \
            UNION ALL \
            SELECT p, next2_o, o, 'missing' FROM l \
            WHERE event = 'client.connected' AND next_event = 'client.connected' AND next2_o IS NOT NULL), \
         got AS (SELECT kafka_partition AS p, kafka_offset AS o, connect_offset AS c, end_reason AS r FROM {sessions}) \
         SELECT (SELECT count(*) FROM expected) AS expected, (SELECT count(*) FROM got) AS got, \
            (SELECT count(*) FROM got WHERE r = 'missing') AS missing, \
            (SELECT count(*) FROM (SELECT DISTINCT p, o, c, r FROM got)) AS distinct_rows, \
            (SELECT count(*) FROM expected FULL OUTER JOIN got ON expected.p = got.p AND expected.o = got.o \
                AND expected.c IS NOT DISTINCT FROM got.c AND expected.r = got.r \
             WHERE expected.p IS NULL OR got.p IS NULL) AS mismatched"
    ))?;
    let n = |k: &str| rows.first().and_then(|r| r[k].as_u64()).unwrap_or(u64::MAX);
    eprintln!(
        "sessions: {} of {} expected, {} missing ({lost} disconnects lost), {} mismatched",
        n("got"),
        n("expected"),
        n("missing"),
        n("mismatched")
    );
    anyhow::ensure!(n("expected") > 0 && n("missing") > 0, "the recount found sessions and lost disconnects");
    anyhow::ensure!(n("missing") <= lost, "no more missing sessions than disconnects lost");
    anyhow::ensure!(
        (n("got"), n("distinct_rows"), n("mismatched")) == (n("expected"), n("expected"), 0),
        "sessions differ from the recount"
    );
    Ok(())
}
