//! serve on a warehouse in S3 (moto's server on loopback), configured the way the s3 overlay
//! does it: `s3://bucket/prefix` and the AWS_* variables; the answers equal the local copy's.

use anyhow::Result;
use connaudit_tests::fixture::warehouse;
use connaudit_tests::{python_json, Server};
use serde_json::json;

use crate::harness::{cli, psycopg, same_numbers, Serve, PASSWORD};

const UPLOAD: &str = r#"
import json, os, sys
import boto3
root, endpoint = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
s3.create_bucket(Bucket="audit")
n = 0
for dirpath, _, files in os.walk(root):
    for f in files:
        path = os.path.join(dirpath, f)
        s3.upload_file(path, "audit", "connaudit/" + os.path.relpath(path, root))
        n += 1
print(json.dumps(n))
"#;

#[tokio::test]
async fn a_warehouse_in_s3_answers_like_its_local_copy() -> Result<()> {
    let local = warehouse()?;
    let s3 = Server::moto_s3()?;
    let endpoint = format!("http://127.0.0.1:{}", s3.port);
    let uploaded = python_json(UPLOAD, &[&local.display().to_string(), &endpoint])?;
    assert!(uploaded.as_u64() > Some(10), "{uploaded}");
    let env = [
        ("CONNAUDIT_PG_PASSWORD", PASSWORD),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let serve = Serve::start_with(std::path::Path::new("s3://audit/connaudit"), &[], &env).await?;
    let sql = "SELECT region, count(*) AS n, min(ts) AS first FROM events \
               WHERE event = 'client.connack' AND is_failure GROUP BY region ORDER BY region";
    let answer = &psycopg(&serve.dsn(), &json!([{ "sql": sql }]))?[0];
    assert!(answer.get("error").is_none(), "{answer}");
    let want = cli(&local, sql)?;
    assert!(!want.is_empty());
    same_numbers(answer, &want)?;
    Ok(())
}
