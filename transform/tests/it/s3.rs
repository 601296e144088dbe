//! The warehouse on an S3-compatible store (moto's server on loopback), configured the way a
//! user does it: `s3://bucket/prefix` and the AWS_* variables; read back by pyarrow's S3.

use std::time::Duration;

use connaudit_tests::fleet::fleet;
use connaudit_tests::{produce_all, python_json, Server};
use tokio_util::sync::CancellationToken;

use crate::harness::Rig;

/// 2024-05-05T00:00:00Z
const START: i64 = 1_714_867_200_000;

const READ: &str = r#"
import json, sys
import pyarrow.dataset as ds, pyarrow.fs as fs, pyarrow.compute as pc
s3 = fs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1",
                     endpoint_override=sys.argv[1], scheme="http")
try:
    t = ds.dataset("audit/connaudit/events", filesystem=s3, format="parquet", partitioning="hive").to_table()
except Exception as e:
    print(json.dumps({"rows": 0, "error": str(e)})); sys.exit(0)
keys = set(zip(t.column("kafka_partition").to_pylist(), t.column("kafka_offset").to_pylist()))
print(json.dumps({"rows": t.num_rows, "distinct": len(keys), "days": len(set(str(d) for d in t.column("date").to_pylist()))}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouse_on_an_s3_compatible_store() -> anyhow::Result<()> {
    let s3 = Server::moto_s3()?;
    let endpoint = format!("127.0.0.1:{}", s3.port);
    reqwest::Client::new().put(format!("http://{endpoint}/audit")).send().await?.error_for_status()?;
    // This test runs in its own process (nextest), so the variables reach only it.
    for (k, v) in [
        ("AWS_ENDPOINT_URL", format!("http://{endpoint}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ] {
        std::env::set_var(k, v);
    }
    let rig = Rig::new(2).await?;
    let (records, _) = fleet(1500, 150, START, 2 * 3_600_000, 0);
    produce_all(&rig.bootstrap, &rig.topic, &records).await?;
    let mut cfg = rig.config();
    cfg.warehouse = "s3://audit/connaudit".into();
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = python_json(READ, &[&endpoint])?;
        if got["rows"].as_u64() >= Some(1500) || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.cancel();
    run.await??;
    assert_eq!(got["rows"], 1500, "{got}");
    assert_eq!(got["distinct"], 1500, "{got}");
    assert_eq!(got["days"], 1, "{got}");
    Ok(())
}
