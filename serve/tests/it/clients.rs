//! psql, psycopg and pgjdbc list the catalog, run the audits and the views, bind parameters,
//! and get the numbers `connaudit query` gets; wrong passwords and every kind of write are
//! refused.

use anyhow::Result;
use connaudit_tests::fixture::{run, warehouse};
use serde_json::{json, Value};

use crate::harness::{cli, csv, jdbc, psql, psycopg, same_numbers, Serve, PASSWORD};

#[tokio::test]
async fn psql_lists_tables_views_and_columns_and_counts_like_the_cli() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let dsn = serve.dsn();

    let (code, out, err) = psql(&dsn, r"\dt warehouse.*")?;
    assert_eq!(code, 0, "{err}");
    for table in ["events", "connack_reasons", "disconnect_reasons", "region_failures", "alerts"] {
        assert!(out.contains(&format!("warehouse,{table},table")), "{table} missing from \\dt:\n{out}");
    }
    // `public` holds the same tables (as tables: a BI tool looks there) and the views.
    let (code, out, err) = psql(&dsn, r"\dt")?;
    assert_eq!(code, 0, "{err}");
    for table in ["events", "sessions", "alerts", "reason_catalog"] {
        assert!(out.contains(&format!("public,{table},table")), "{table} missing from \\dt:\n{out}");
    }
    let (code, out, err) = psql(&dsn, r"\dv")?;
    assert_eq!(code, 0, "{err}");
    for view in ["region_failure_rates", "connack_reason_summary", "online_spans"] {
        assert!(out.contains(&format!("public,{view},view")), "{view} missing from \\dv:\n{out}");
    }
    let (code, out, err) = psql(&dsn, r"\d events")?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ts,timestamp with time zone"), "{out}");
    assert!(out.contains("date,date"), "{out}");

    let (code, out, err) = psql(&dsn, "SELECT count(*) AS n FROM events")?;
    assert_eq!(code, 0, "{err}");
    let want = cli(&wh, "SELECT count(*) AS n FROM events")?;
    assert_eq!(csv(&out)[1][0], want[0]["n"].to_string());
    assert_eq!(want[0]["n"].as_u64(), Some(connaudit_tests::fixture::records().len() as u64));

    let (code, out, err) =
        psql(&dsn, "SELECT version(), current_setting('server_version') AS v, current_database() AS db")?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PostgreSQL 16.6 (connaudit"), "{out}");
    assert!(out.contains(",16.6,connaudit"), "{out}");
    Ok(())
}

#[tokio::test]
async fn psycopg_runs_every_audit_and_view_with_the_cli_numbers_and_binds_parameters() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let w = wh.display().to_string();
    let mut requests = Vec::new();
    let mut wants = Vec::new();
    for audit in [
        vec!["client", "cam-7"],
        vec!["failures"],
        vec!["failures", "--by", "reason"],
        vec!["reasons"],
        vec!["flapping"],
        vec!["alerts"],
    ] {
        let mut args = vec!["audit"];
        args.extend(&audit);
        args.extend(["--warehouse", &w, "--show-sql"]);
        let (code, sql, err) = run(&args)?;
        assert_eq!(code, 0, "{err}");
        args.pop();
        args.extend(["--format", "json"]);
        let (code, out, err) = run(&args)?;
        assert_eq!(code, 0, "{err}");
        requests.push(json!({ "sql": sql.trim().trim_end_matches(';') }));
        wants.push((format!("audit {}", audit.join(" ")), serde_json::from_str::<Vec<Value>>(&out)?));
    }
    for sql in [
        "SELECT * FROM region_failure_rates ORDER BY minute, region",
        "SELECT * FROM connack_reason_summary ORDER BY count DESC, reason",
        "SELECT * FROM disconnect_reason_summary ORDER BY count DESC, reason",
        "SELECT clientid, connected_at, session_ms, end_reason, date FROM sessions ORDER BY clientid, disconnected_at LIMIT 200",
    ] {
        requests.push(json!({ "sql": sql }));
        wants.push((sql.to_string(), cli(&wh, sql)?));
    }
    let answers = psycopg(&serve.dsn(), &Value::Array(requests))?;
    for (answer, (what, want)) in answers.iter().zip(&wants) {
        assert!(answer.get("error").is_none(), "{what}: {answer}");
        assert!(!want.is_empty(), "{what}: the fixture gives no rows");
        same_numbers(answer, want).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    }

    // Parameters bound by the server (extended protocol), prepared and re-executed.
    let sql = "SELECT count(*) AS n, min(ts) AS first, min(date) AS day FROM events WHERE clientid = %s AND ts >= %s";
    let params = json!(["cam-7", "2026-11-21T00:00:00+00:00"]);
    let request = json!({ "sql": sql, "params": params, "prepare": true });
    let answers = psycopg(&serve.dsn(), &json!([request, request]))?;
    let want = cli(&wh, "SELECT count(*) AS n, min(ts) AS first, min(date) AS day FROM events WHERE clientid = 'cam-7' AND ts >= '2026-11-21T00:00:00Z'")?;
    for answer in &answers {
        assert!(answer.get("error").is_none(), "{answer}");
        same_numbers(answer, &want)?;
        // timestamptz (1184) with its zone, and the partition as a date (1082).
        assert_eq!(answer["types"][1], 1184, "{answer}");
        assert_eq!(answer["types"][2], 1082, "{answer}");
        assert_eq!(answer["rows"][0][1]["tz"], true, "{answer}");
    }
    assert!(want[0]["n"].as_u64() > Some(10));
    Ok(())
}

#[tokio::test]
async fn pgjdbc_reads_the_catalog_and_runs_a_prepared_statement() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let lines = jdbc(serve.port, &["cam-7"])?;
    let values = |key: &str| lines.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert!(values("product")[0].starts_with("PostgreSQL 16.6"), "{lines:?}");
    for schema in ["public", "warehouse"] {
        assert!(values("schema").contains(&schema), "{lines:?}");
    }
    let tables = values("table");
    assert!(tables.iter().any(|t| t.starts_with("warehouse.events ")), "{tables:?}");
    assert!(tables.iter().any(|t| t.starts_with("public.region_failure_rates ")), "{tables:?}");
    let columns = values("column");
    assert!(columns.contains(&"ts timestamptz"), "{columns:?}");
    assert!(columns.contains(&"date date"), "{columns:?}");
    let want = cli(&wh, "SELECT count(*) AS n FROM events WHERE clientid = 'cam-7'")?;
    let counts = values("count");
    let n = want[0]["n"].to_string();
    assert_eq!(counts.len(), 6);
    assert!(counts.iter().all(|c| *c == n), "{counts:?} vs {want:?}");
    assert!(values("types").iter().all(|t| *t == "timestamptz date"), "{lines:?}");
    assert!(values("day").iter().all(|d| d.starts_with("2026-11-2")), "{lines:?}");
    assert_eq!(values("delete"), ["refused 25006"]);
    let keys = values("primary keys");
    assert!(keys.len() == 1 && keys[0].starts_with("0 ") && keys[0].contains("COLUMN_NAME KEY_SEQ"), "{keys:?}");
    assert_eq!(values("indexes"), ["0"]);
    Ok(())
}

#[tokio::test]
async fn writes_and_wrong_passwords_are_refused() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let dsn = serve.dsn();
    let writes = [
        "INSERT INTO events (clientid) VALUES ('x')",
        "UPDATE events SET clientid = 'x'",
        "DELETE FROM events",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/tmp/x'",
        "DROP VIEW events",
        "ALTER TABLE warehouse.events ADD COLUMN x INT",
        "TRUNCATE warehouse.events",
        "COPY events TO '/tmp/connaudit-serve-copy.csv'",
        "EXPLAIN ANALYZE INSERT INTO events (clientid) VALUES ('x')",
        "WITH d AS (DELETE FROM events RETURNING *) SELECT count(*) FROM d",
        "SET datafusion.execution.target_partitions = 1",
    ];
    for sql in writes {
        let (code, _, err) = psql(&dsn, sql)?;
        assert_ne!(code, 0, "psql: {sql} was not refused");
        assert!(err.contains("refused") || err.contains("the server's"), "psql: {sql}: {err}");
    }
    // The extended protocol is refused at Parse, with SQLSTATE 25006.
    let requests: Vec<Value> = writes.iter().map(|sql| json!({ "sql": sql, "params": [] })).collect();
    for (answer, sql) in psycopg(&dsn, &Value::Array(requests))?.iter().zip(writes) {
        assert_eq!(answer["sqlstate"], "25006", "psycopg: {sql}: {answer}");
    }
    assert!(!std::path::Path::new("/tmp/connaudit-serve-copy.csv").exists());
    // Sessions may set PostgreSQL's settings and use transactions.
    let (code, out, err) =
        psql(&dsn, "SET statement_timeout = '10s'; BEGIN; SELECT 1 AS one; COMMIT; SHOW statement_timeout")?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("10000ms"), "{out}");

    for (user, password) in [("connaudit", "wrong"), ("postgres", PASSWORD)] {
        let dsn = format!("host=127.0.0.1 port={} dbname=connaudit user={user} password='{password}'", serve.port);
        let (code, _, err) = psql(&dsn, "SELECT 1")?;
        assert_ne!(code, 0, "{user}/{password} got in");
        assert!(err.to_lowercase().contains("password authentication failed"), "{err}");
    }
    assert!(serve.metric("connaudit_serve_queries_total{outcome=\"refused\"}").await? >= writes.len() as f64 * 2.0);
    Ok(())
}
