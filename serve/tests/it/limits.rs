//! What keeps one client from hurting the others: a query over its memory limit or its time
//! fails alone, connections past the cap are refused the way PostgreSQL refuses them, TLS is
//! required when configured (and a broken TLS setup stops the start), SIGTERM drains.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use connaudit_tests::fixture::{run, warehouse};
use serde_json::json;

use crate::harness::{psql, psycopg, Serve, PASSWORD};

/// 3,000 events joined with themselves three times: far more than a second of work.
const FOREVER: &str = "SELECT count(*) FROM events a, events b, events c WHERE a.ts < b.ts AND b.ts < c.ts";

#[tokio::test]
async fn a_query_over_its_memory_or_time_fails_alone_and_the_server_keeps_serving() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &["--memory-limit", "2M", "--query-timeout", "3s"]).await?;
    let dsn = serve.dsn();
    // Nine million client ids in one array: the aggregate cannot spill.
    let big = "SELECT array_agg(a.clientid) FROM events a CROSS JOIN events b";
    let answers = psycopg(&dsn, &json!([{ "sql": big }, { "sql": "SELECT count(*) AS n FROM events" }]))?;
    let error = answers[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("Resources exhausted") || error.contains("memory"), "{}", answers[0]);
    assert!(answers[1]["rows"][0][0].as_u64() > Some(3000), "{}", answers[1]);

    let started = Instant::now();
    let (code, _, err) = psql(&dsn, FOREVER)?;
    assert_ne!(code, 0);
    assert!(err.contains("statement timeout"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    // A client's own statement_timeout can only shorten ours.
    let started = Instant::now();
    let answers = psycopg(&dsn, &json!([{ "sql": "SET statement_timeout = '500ms'" }, { "sql": FOREVER }]))?;
    assert_eq!(answers[1]["sqlstate"], "57014", "{}", answers[1]);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());

    let (code, out, err) = psql(&dsn, "SELECT count(*) AS n FROM events")?;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().nth(1).is_some_and(|n| n.parse::<u64>().unwrap_or(0) > 3000), "{out}");
    assert_eq!(serve.metric("connaudit_serve_queries_total{outcome=\"timeout\"}").await?, 2.0);
    assert!(serve.metric("connaudit_serve_queries_total{outcome=\"error\"}").await? >= 1.0);
    assert!(serve.metric("connaudit_serve_query_seconds_count").await? >= 5.0);
    Ok(())
}

#[tokio::test]
async fn a_cancel_request_stops_a_running_query_and_the_connection_goes_on() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    // psycopg sends PostgreSQL's CancelRequest (on its own connection) from another thread.
    let script = format!(
        r#"
import sys, threading, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
threading.Timer(1.5, conn.cancel).start()
started = time.time()
try:
    conn.execute("{FOREVER}").fetchall()
    print("finished")
except psycopg.errors.QueryCanceled:
    print("cancelled", time.time() - started, conn.execute("SELECT 1").fetchone()[0])
"#
    );
    let out = Command::new(connaudit_tests::python()).args(["-c", &script, &serve.dsn()]).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"cancelled"), "{text}");
    assert!(words[1].parse::<f64>()? < 10.0, "{text}");
    assert_eq!(words[2], "1", "{text}");
    assert_eq!(serve.metric("connaudit_serve_queries_total{outcome=\"cancelled\"}").await?, 1.0);
    Ok(())
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_like_postgresql_refuses_them() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &["--pg-max-connections", "2"]).await?;
    // Two clients hold their connections for three seconds.
    let script = r#"
import sys, time, psycopg
with psycopg.connect(sys.argv[1]) as c:
    c.execute("SELECT 1")
    time.sleep(3)
print("done")
"#;
    let holders: Vec<_> = (0..2)
        .map(|_| Command::new(connaudit_tests::python()).args(["-c", script, &serve.dsn()]).spawn())
        .collect::<Result<_, _>>()?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(serve.metric("connaudit_serve_connections ").await?, 2.0);
    let (code, _, err) = psql(&serve.dsn(), "SELECT 1")?;
    assert_ne!(code, 0);
    assert!(err.contains("too many clients"), "{err}");
    for mut h in holders {
        assert!(h.wait()?.success());
    }
    let (code, _, err) = psql(&serve.dsn(), "SELECT 1")?;
    assert_eq!(code, 0, "{err}");
    assert_eq!(serve.metric("connaudit_serve_connections_total{outcome=\"refused\"}").await?, 1.0);
    Ok(())
}

#[tokio::test]
async fn tls_is_required_when_configured_and_a_broken_setup_stops_the_start() -> Result<()> {
    let wh = warehouse()?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()?;
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let serve = Serve::start(&wh, &["--pg-tls-cert", &c, "--pg-tls-key", &k]).await?;
    let (code, out, err) =
        psql(&format!("{} sslmode=verify-full sslrootcert={c}", serve.dsn()), "SELECT ssl FROM (SELECT true AS ssl)")?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("t"), "{out}");
    let (code, _, err) = psql(&format!("{} sslmode=disable", serve.dsn()), "SELECT 1")?;
    assert_ne!(code, 0);
    assert!(err.contains("requires TLS"), "{err}");

    // A key that is not a key: no start, and the message names the file.
    std::fs::write(&key, "not a key")?;
    let w = wh.display().to_string();
    let (code, _, err) = run_with_password(&[
        "serve",
        "--warehouse",
        &w,
        "--pg-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--pg-tls-cert",
        &c,
        "--pg-tls-key",
        &k,
    ])?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--pg-tls-key") && err.contains(&k), "{err}");
    Ok(())
}

#[tokio::test]
async fn no_password_means_no_start_unless_anonymous_is_asked_for() -> Result<()> {
    let wh = warehouse()?;
    let w = wh.display().to_string();
    let (code, _, err) =
        run(&["serve", "--warehouse", &w, "--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CONNAUDIT_PG_PASSWORD") && err.contains("--pg-allow-anonymous"), "{err}");
    let serve = Serve::start_with(&wh, &["--pg-allow-anonymous"], &[]).await?;
    let (code, _, err) = psql(&format!("host=127.0.0.1 port={} dbname=connaudit user=anyone", serve.port), "SELECT 1")?;
    assert_eq!(code, 0, "{err}");
    Ok(())
}

#[tokio::test]
async fn sigterm_lets_a_running_query_finish_and_closes_idle_connections() -> Result<()> {
    let wh = warehouse()?;
    let mut serve = Serve::start(&wh, &["--shutdown-timeout-secs", "20"]).await?;
    let script = r#"
import sys, psycopg
idle = psycopg.connect(sys.argv[1])
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    n = c.execute("SELECT count(*) FROM events a, events b, (SELECT ts FROM events LIMIT 30) c "
                  "WHERE a.ts < b.ts AND a.clientid <> CAST(c.ts AS TEXT)").fetchone()[0]
print(n)
"#;
    let dsn = serve.dsn();
    let python = connaudit_tests::python();
    let query = tokio::task::spawn_blocking(move || Command::new(python).args(["-c", script, &dsn]).output());
    // The query takes seconds; SIGTERM comes while it runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = serve.process.signal("-TERM")?;
    let out = query.await??;
    assert!(status.success(), "{status}");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let n: u64 = String::from_utf8(out.stdout)?.trim().parse()?;
    let pairs = crate::harness::cli(&wh, "SELECT count(*) AS n FROM events a, events b WHERE a.ts < b.ts")?;
    assert_eq!(Some(n), pairs[0]["n"].as_u64().map(|p| p * 30));
    assert!(serve.log().contains("running=1"), "{}", serve.log());
    Ok(())
}

fn run_with_password(args: &[&str]) -> Result<(i32, String, String)> {
    let out =
        Command::new(connaudit_tests::connaudit_bin()?).args(args).env("CONNAUDIT_PG_PASSWORD", PASSWORD).output()?;
    Ok((out.status.code().unwrap_or(-1), String::from_utf8(out.stdout)?, String::from_utf8(out.stderr)?))
}
