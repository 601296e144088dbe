//! The warehouse on an S3-compatible store (moto's server on loopback), configured the way a
//! user does it: `s3://bucket/prefix` and the AWS_* variables. Two transformers and
//! compactions run at once, a compaction is killed mid-way and run again; pyarrow and DuckDB,
//! reading the Delta log themselves, find every event once and aggregates equal to a recount.

use std::time::{Duration, Instant};

use connaudit_tests::fleet::fleet;
use connaudit_tests::{delta_files_at, free_port, produce_all, python_json, unique, Connaudit, Server};

use crate::harness::Rig;

/// 2024-05-05T00:00:00Z
const START: i64 = 1_714_867_200_000;
const EVENTS: usize = 6000;
const WAREHOUSE: &str = "s3://audit/connaudit";

/// Events and region_failures from exactly the files the logs list, counted by DuckDB.
const CHECK: &str = r#"
import json, os, sys
import duckdb, pyarrow as pa, pyarrow.fs as pafs, pyarrow.parquet as pq
endpoint = os.environ["AWS_ENDPOINT_URL"]
s3 = pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1", scheme="http",
                       endpoint_override=endpoint.split("://")[1])
def table(files):
    parts = [pq.read_table(f, filesystem=s3) for f in files]
    return pa.concat_tables(parts, promote_options="default") if parts else None
events = table(json.loads(sys.argv[1]))
failures = table(json.loads(sys.argv[2]))
con = duckdb.connect()
con.register("events", events)
con.register("failures", failures)
rows, distinct = con.sql("SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM events").fetchone()
mismatched = con.sql("""
  WITH recount AS (SELECT date_trunc('minute', ts) AS minute, region,
         count(*) FILTER (WHERE event = 'client.connack') AS connacks,
         count(*) FILTER (WHERE event = 'client.connack' AND is_failure) AS failed,
         count(*) FILTER (WHERE event = 'client.disconnected') AS disconnects
       FROM events GROUP BY 1, 2),
   summed AS (SELECT minute, region, sum(connacks) AS connacks, sum(failed_connacks) AS failed,
         sum(disconnects) AS disconnects FROM failures GROUP BY 1, 2)
  SELECT count(*) FROM recount FULL OUTER JOIN summed USING (minute, region)
  WHERE recount.connacks IS DISTINCT FROM summed.connacks OR recount.failed IS DISTINCT FROM summed.failed
     OR recount.disconnects IS DISTINCT FROM summed.disconnects""").fetchone()[0]
print(json.dumps({"rows": rows, "distinct": distinct, "mismatched": mismatched, "files": len(json.loads(sys.argv[1]))}))
"#;

fn check() -> anyhow::Result<serde_json::Value> {
    let events = serde_json::to_string(&delta_files_at(&format!("{WAREHOUSE}/events"))?)?;
    let failures = serde_json::to_string(&delta_files_at(&format!("{WAREHOUSE}/region_failures"))?)?;
    python_json(CHECK, &[&events, &failures])
}

/// A compaction whose cleanup keeps replaced files 30 s: longer than `check` reads them, and
/// than a transformer takes from writing a file to committing it.
fn compact(log: &std::path::Path) -> anyhow::Result<Connaudit> {
    Connaudit::start(&["compact", "--warehouse", WAREHOUSE, "--retain", "30s", "--memory-limit", "32M"], log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_and_compactions_at_once_on_s3_keep_every_event_once() -> anyhow::Result<()> {
    let s3 = Server::moto_s3()?;
    let endpoint = format!("127.0.0.1:{}", s3.port);
    reqwest::Client::new().put(format!("http://{endpoint}/audit")).send().await?.error_for_status()?;
    // This test runs in its own process (nextest), so the variables reach only it and its children.
    for (k, v) in [
        ("AWS_ENDPOINT_URL", format!("http://{endpoint}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ] {
        std::env::set_var(k, v);
    }
    // librdkafka's mock cluster: tansu 0.6.0 hands a partition to the second member past the
    // first one's committed offset (see exactly_once.rs), which would lose records here.
    let rig = Rig::mock(4)?;
    // Two days, both closed: every compaction run has work while the transformers write.
    let (records, _) = fleet(EVENTS, 300, START, 40 * 3_600_000, 0);
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let group = unique("s3");
    let logs = rig.dir.path();
    let replicas: Vec<Connaudit> = (0..2)
        .map(|i| {
            let args = rig.cli_args(WAREHOUSE, &group, free_port());
            Connaudit::start(
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
                &logs.join(format!("transform-{i}.log")),
            )
        })
        .collect::<anyhow::Result<_>>()?;

    // Compactions beside the writers, one after another, until every event is in (from the
    // writers' first commits on: before, there is no warehouse to compact).
    let deadline = Instant::now() + Duration::from_secs(180);
    while check().map_or(true, |got| got["rows"].as_u64() < Some(300)) {
        anyhow::ensure!(Instant::now() < deadline, "the transformers wrote nothing");
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut runs = 0;
    let got = loop {
        let mut c = compact(&logs.join(format!("compact-{runs}.log")))?;
        let status = c.wait(Duration::from_secs(120))?;
        assert!(status.success(), "compaction beside the writers failed: {status}; see compact-{runs}.log");
        runs += 1;
        let got = check()?;
        if got["rows"].as_u64() >= Some(EVENTS as u64) || Instant::now() > deadline {
            break got;
        }
    };
    assert_eq!(got["rows"], EVENTS, "{got}");
    for r in replicas {
        r.stop()?;
    }

    // A compaction killed mid-way leaves nothing half done; the next run finishes the work.
    std::thread::sleep(Duration::from_millis(1500));
    let mut killed = compact(&logs.join("compact-killed.log"))?;
    std::thread::sleep(Duration::from_millis(400 + (START as u64 % 7) * 100));
    killed.signal("-KILL")?;
    let mid = check()?;
    assert_eq!((mid["rows"].as_u64(), mid["distinct"].as_u64()), (Some(EVENTS as u64), Some(EVENTS as u64)), "{mid}");
    let mut last = compact(&logs.join("compact-last.log"))?;
    assert!(last.wait(Duration::from_secs(120))?.success());
    let end = check()?;
    eprintln!("{runs} compactions beside the writers; at the end {end}");
    assert_eq!(end["rows"], EVENTS, "{end}");
    assert_eq!(end["distinct"], EVENTS, "{end}");
    assert_eq!(end["mismatched"], 0, "{end}");
    assert_eq!(end["files"], 2, "one file per closed day: {end}");
    Ok(())
}
