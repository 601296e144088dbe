//! Apache Superset (from PyPI, its own virtualenv) charts the warehouse without hand-written
//! SQL: a real Superset server, driven through its REST API as its web UI is (`superset.py`),
//! adds serve as a database, lists its schemas and tables, reads a table's columns with their
//! comments, creates datasets on `events` and `region_failure_rates`, asks two charts' data
//! over a time range and runs a query in SQL Lab; every number is `connaudit query`'s.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use connaudit_tests::fixture::warehouse;
use connaudit_tests::{free_port, superset_venv};
use connaudit_warehouse::EVENTS;
use serde_json::Value;

use crate::harness::{cli, Serve, PASSWORD};

/// A Superset server on a free loopback port, with its metadata in a temporary directory.
struct Superset {
    child: Child,
    url: String,
    _home: tempfile::TempDir,
}

impl Drop for Superset {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Superset {
    async fn start() -> Result<Superset> {
        let home = tempfile::tempdir()?;
        let config = home.path().join("superset_config.py");
        std::fs::write(
            &config,
            format!(
                "SECRET_KEY = 'connaudit-test-only-key-{}'\nSQLALCHEMY_DATABASE_URI = 'sqlite:///{}/superset.db'\n\
                 WTF_CSRF_ENABLED = False\n",
                std::process::id(),
                home.path().display()
            ),
        )?;
        let superset = format!("{}/bin/superset", superset_venv());
        let env = |c: &mut Command| {
            c.env("SUPERSET_CONFIG_PATH", &config).env("SUPERSET_HOME", home.path()).env("FLASK_APP", "superset");
        };
        let admin = ["fab", "create-admin", "--username", "admin", "--firstname", "a", "--lastname", "b"];
        let admin_rest = ["--email", "admin@example.com", "--password", "admin"];
        let steps: [Vec<&str>; 3] = [vec!["db", "upgrade"], [&admin[..], &admin_rest[..]].concat(), vec!["init"]];
        for step in steps {
            let mut command = Command::new(&superset);
            env(&mut command);
            let out = command.args(&step).output().context("no Superset: scripts/install-deps.sh installs it")?;
            if !out.status.success() {
                bail!("superset {step:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let port = free_port();
        let mut command = Command::new(&superset);
        env(&mut command);
        let child = command
            .args(["run", "-h", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let url = format!("http://127.0.0.1:{port}");
        let superset = Superset { child, url, _home: home };
        let started = Instant::now();
        while !reqwest::get(format!("{}/health", superset.url)).await.is_ok_and(|r| r.status().is_success()) {
            if started.elapsed() > Duration::from_secs(120) {
                bail!("Superset did not answer /health in 120 s");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(superset)
    }
}

/// The rows of a chart-data answer.
fn chart_rows(answer: &Value) -> Result<&Vec<Value>> {
    answer["body"]["result"][0]["data"].as_array().with_context(|| format!("no chart data: {answer}"))
}

#[tokio::test]
async fn superset_charts_the_warehouse_without_hand_written_sql() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let superset = Superset::start().await?;
    let uri = format!("postgresql://connaudit:{}@127.0.0.1:{}/connaudit", PASSWORD.replace(' ', "%20"), serve.port);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/superset.py");
    let range = "2026-11-20T00:00:00 : 2026-11-23T00:00:00";
    let out = Command::new(format!("{}/bin/python", superset_venv()))
        .arg(script)
        .args([superset.url.as_str(), uri.as_str(), range])
        .output()?;
    if !out.status.success() {
        bail!("superset.py failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let answers: Value = serde_json::from_slice(&out.stdout)?;
    let status = |key: &str| answers[key]["status"].as_u64().unwrap_or(0);
    assert_eq!(status("test_connection"), 200, "{}", answers["test_connection"]);
    let mut schemas: Vec<&str> = answers["schemas"]["body"]["result"]
        .as_array()
        .context("no schemas")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    schemas.sort();
    assert_eq!(schemas, ["public", "warehouse"]);
    let tables = answers["tables"]["body"]["result"].as_array().context("no tables")?;
    let kind = |name: &str| tables.iter().find(|t| t["value"] == name).map(|t| t["type"].clone());
    assert_eq!(kind("events"), Some("table".into()), "{tables:?}");
    assert_eq!(kind("region_failure_rates"), Some("view".into()), "{tables:?}");
    // A table's columns, with the contract's comments (what failed before: pg_type_is_visible).
    let columns = answers["table_metadata"]["body"]["columns"].as_array().context("no columns")?;
    for column in EVENTS.columns() {
        let found = columns.iter().find(|c| c["name"] == column.field.name().as_str()).context("a column")?;
        assert_eq!(found["comment"], column.comment, "{}", column.field.name());
    }
    // Datasets (what failed before: "could not be found"), their time columns known.
    for table in ["events", "region_failure_rates"] {
        assert_eq!(status(&format!("dataset_{table}")), 201, "{}", answers[format!("dataset_{table}")]);
    }
    let dataset = &answers["dataset_region_failure_rates_columns"]["body"]["result"]["columns"];
    let minute = dataset.as_array().context("dataset columns")?.iter().find(|c| c["column_name"] == "minute");
    assert_eq!(minute.map(|c| c["is_dttm"].clone()), Some(Value::Bool(true)), "{dataset}");
    // The charts' numbers are the CLI's for the same range.
    let rates = cli(
        &wh,
        "SELECT region, sum(failed_connacks) AS failed, sum(connacks) AS connacks FROM region_failure_rates \
         WHERE minute >= '2026-11-20T00:00:00Z' AND minute < '2026-11-23T00:00:00Z' GROUP BY region ORDER BY region",
    )?;
    assert!(!rates.is_empty());
    assert_eq!(chart_rows(&answers["chart_data"])?, &rates, "SUM(failed_connacks) by region");
    let events = cli(
        &wh,
        "SELECT event, count(*) AS count FROM events \
         WHERE ts >= '2026-11-20T00:00:00Z' AND ts < '2026-11-23T00:00:00Z' GROUP BY event ORDER BY event",
    )?;
    assert_eq!(chart_rows(&answers["events_chart_data"])?, &events, "COUNT(*) by event");
    let sqllab =
        cli(&wh, "SELECT region, sum(failed_connacks) AS failed FROM region_failures GROUP BY region ORDER BY region")?;
    assert_eq!(answers["sqllab"]["body"]["data"].as_array().context("no SQL Lab data")?, &sqllab);
    Ok(())
}
