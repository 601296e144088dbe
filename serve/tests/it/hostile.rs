//! `connaudit serve` against an attacker, each attack as it was found to work before: a
//! statement after a failed login, the engine's settings behind a quoted name, functions that
//! build gigabytes outside the memory pool, a cursor that outlives its timeout, a statement
//! whose plan doubles with each CTE, idle sockets that lock users out, oversized messages.

use std::time::{Duration, Instant};

use anyhow::Result;
use connaudit_tests::fixture::warehouse;
use serde_json::json;

use crate::harness::{psql, psql_each, psycopg, Serve};
use crate::wire::{self, read_all, send};

/// Tags the server sent that answer a statement: a row description, a row, a command's end.
fn answered_a_statement(messages: &[(u8, Vec<u8>)]) -> bool {
    messages.iter().any(|(tag, _)| matches!(tag, b'T' | b'D' | b'C' | b'1' | b'2'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_runs_before_a_login_and_a_failed_login_closes_the_connection() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let attempts: Vec<(&str, Vec<u8>)> = vec![
        ("a SASL mechanism that does not exist, then a query", {
            [wire::login(), wire::sasl_initial("BOGUS", b"x"), wire::query("SELECT 42")].concat()
        }),
        ("a query pipelined after the startup message", [wire::login(), wire::query("SELECT 42")].concat()),
        ("the extended protocol before any login", [wire::login(), wire::extended("SELECT 42")].concat()),
        ("a query instead of a startup message", wire::query("SELECT 42")),
        ("a SCRAM first message that is not SCRAM, then a query", {
            [wire::login(), wire::sasl_initial("SCRAM-SHA-256", b"garbage"), wire::query("SELECT 42")].concat()
        }),
    ];
    for (what, bytes) in attempts {
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", serve.port)).await?;
        send(&mut socket, &bytes).await;
        // And once more after the server's answer, as the attack did.
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&mut socket, &wire::query("SELECT 43")).await;
        let (messages, closed) = read_all(&mut socket, Duration::from_secs(5)).await;
        assert!(closed, "{what}: the connection stays open");
        assert!(!answered_a_statement(&messages), "{what}: a statement was answered: {messages:?}");
        let fatal = messages.iter().filter(|(t, _)| *t == b'E').map(|(_, b)| wire::error_fields(b)).next();
        assert!(fatal.as_ref().is_some_and(|(severity, _, _)| severity == "FATAL"), "{what}: {messages:?}");
    }
    assert_eq!(serve.metric("connaudit_serve_queries_total").await?, 0.0, "no statement counted");
    let failed = serve.metric("connaudit_serve_connections_total{outcome=\"login_failed\"}").await?
        + serve.metric("connaudit_serve_connections_total{outcome=\"protocol_violation\"}").await?;
    assert_eq!(failed, 5.0);
    let (code, out, err) = psql(&serve.dsn(), "SELECT 42 AS answer")?;
    assert_eq!((code, out.as_str()), (0, "answer\n42\n"), "{err}");
    Ok(())
}

#[tokio::test]
async fn the_engines_settings_are_refused_however_they_are_quoted() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    for set in [
        r#"SET "datafusion".execution.batch_size = 7"#,
        r#"SET "DataFusion"."Execution"."batch_size" = 7"#,
        r#"SET datafusion.execution.batch_size = 7"#,
        r#"SET LOCAL "datafusion".runtime.memory_limit = '100G'"#,
        r#"SET SESSION "datafusion.sql_parser.dialect" = 'mysql'"#,
    ] {
        let (code, out, err) = psql(&serve.dsn(), &format!("{set}; SHOW datafusion.execution.batch_size"))?;
        assert_ne!(code, 0, "{set} passed: {out}");
        assert!(err.contains("the engine's settings are the server's"), "{set}: {err}");
    }
    // What BI tools set on connect still passes, however they spell it.
    let sets = [r#"SET "DateStyle" = 'ISO'"#, "SET extra_float_digits = 3", "SET application_name = 'Superset'"];
    let answers = psycopg(
        &serve.dsn(),
        &json!(sets
            .iter()
            .map(|s| json!({ "sql": s }))
            .chain([json!({ "sql": "SELECT 1 AS one" })])
            .collect::<Vec<_>>()),
    )?;
    assert!(answers.iter().all(|a| a.get("error").is_none()), "{answers:?}");
    Ok(())
}

#[tokio::test]
async fn functions_that_build_gigabytes_fail_within_the_memory_limit_and_the_next_query_is_answered() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &["--memory-limit", "256M", "--query-timeout", "10s"]).await?;
    let before = serve.peak_mib();
    let bombs = [
        "SELECT cardinality(range(0, 400000000))",
        "SELECT cardinality(generate_series(1, 400000000))",
        "SELECT cardinality(range(DATE '0001-01-01', DATE '9999-12-31', INTERVAL '1 minute'))",
        "SELECT length(repeat('x', 2000000000))",
        "SELECT length(repeat(repeat('x', 60000), 60000))",
        "SELECT length(lpad('x', 1000000000))",
        "SELECT cardinality(array_repeat(1, 400000000))",
        "SELECT length(replace(repeat('x', 30000000), 'x', repeat('y', 100)))",
        "SELECT length(regexp_replace(repeat('x', 30000000), '', repeat('y', 100), 'g'))",
        "SELECT length(concat(repeat('x', 60000000), repeat('x', 60000000), repeat('x', 60000000)))",
    ];
    for bomb in bombs {
        let started = Instant::now();
        let (code, out, err) = psql(&serve.dsn(), bomb)?;
        assert_ne!(code, 0, "{bomb} answered: {out}");
        assert!(err.contains("query-memory-limit") || err.contains("Resources exhausted"), "{bomb}: {err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{bomb}: {:?}", started.elapsed());
    }
    let peak = serve.peak_mib();
    eprintln!("serve's peak RSS: {before} MiB before, {peak} MiB after the allocations (--memory-limit 256M)");
    assert!(peak < before + 256 + 64, "peak RSS {peak} MiB, was {before} MiB");
    let (code, out, err) = psql(&serve.dsn(), "SELECT count(*) > 3000 AS many FROM events")?;
    assert_eq!((code, out.as_str()), (0, "many\nt\n"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_obeys_the_timeout_and_streams_its_rows() -> Result<()> {
    let wh = warehouse()?;
    let args = ["--pg-allow-anonymous", "--memory-limit", "256M", "--query-timeout", "3s"];
    let serve = Serve::start_with(&wh, &args, &[]).await?;
    let dsn = format!("host=127.0.0.1 port={} dbname=connaudit user=anyone", serve.port);
    let before = serve.peak_mib();
    // The attack as found: it ran 159 s past a 10 s timeout, every row collected first.
    let started = Instant::now();
    let declare = "DECLARE c CURSOR WITH HOLD FOR SELECT repeat('x', 10000) AS s FROM range(0, 200000)";
    let (code, _, err) = psql_each(&dsn, &["BEGIN", declare, "FETCH ALL FROM c"])?;
    assert_ne!(code, 0);
    assert!(err.contains("statement timeout") || err.contains("query-memory-limit"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());

    // A cursor over far more rows than fit anywhere: FETCH ALL sends rows while it reads them
    // and stops at the deadline (a client that reads the rows and keeps none).
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", serve.port)).await?;
    send(&mut socket, &wire::login()).await;
    assert!(wire::drain_until_ready(&mut socket, Duration::from_secs(5)).await.2, "logged in");
    let declare = "DECLARE big CURSOR WITH HOLD FOR SELECT repeat('x', 1000) AS s FROM range(0, 1000000000)";
    send(&mut socket, &wire::query(declare)).await;
    let (_, errors, ready) = wire::drain_until_ready(&mut socket, Duration::from_secs(5)).await;
    assert!(ready && errors.is_empty(), "{errors:?}");
    let started = Instant::now();
    send(&mut socket, &wire::query("FETCH ALL FROM big")).await;
    let (rows, errors, ready) = wire::drain_until_ready(&mut socket, Duration::from_secs(30)).await;
    let took = started.elapsed();
    let peak = serve.peak_mib();
    eprintln!("FETCH ALL: {rows} rows streamed, cut after {took:?}; peak RSS {before} -> {peak} MiB");
    assert!(ready, "the connection goes on after the timeout");
    assert!(errors.iter().any(|(_, code, _)| code == "57014"), "{errors:?}");
    assert!(rows > 1000, "rows were sent while the cursor read them: {rows}");
    assert!(took < Duration::from_secs(10), "took {took:?} with a 3 s timeout");
    assert!(peak < before + 256 + 64, "peak RSS {peak} MiB, was {before} MiB");

    // Fetched in pieces, a cursor gives every row once (Tableau reads this way).
    let (code, out, err) = psql_each(
        &dsn,
        &[
            "BEGIN",
            "DECLARE d CURSOR WITH HOLD FOR SELECT value FROM range(0, 10) ORDER BY value",
            "FETCH FORWARD 4 FROM d",
            "FETCH FORWARD 4 FROM d",
            "FETCH FORWARD 4 FROM d",
            "CLOSE d",
        ],
    )?;
    assert_eq!(code, 0, "{err}");
    let values: Vec<&str> = out.lines().filter(|l| l.parse::<i64>().is_ok()).collect();
    assert_eq!(values, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], "{out}");

    // Each open cursor holds a running query: sixteen at once per connection.
    let declares: Vec<String> =
        (0..17).map(|i| format!("DECLARE c{i} CURSOR WITH HOLD FOR SELECT value FROM range(0, 10)")).collect();
    let mut statements = vec!["BEGIN"];
    statements.extend(declares.iter().map(String::as_str));
    let (code, _, err) = psql_each(&dsn, &statements)?;
    assert_ne!(code, 0);
    assert!(err.contains("at most 16 open cursors"), "{err}");
    let mut statements = vec!["BEGIN"];
    statements.extend(declares[..16].iter().map(String::as_str));
    statements.extend(["CLOSE c0", declares[16].as_str(), "FETCH 2 FROM c16"]);
    let (code, out, err) = psql_each(&dsn, &statements)?;
    assert_eq!(code, 0, "a closed cursor gives its place back: {err}");
    assert!(out.ends_with("value\n0\n1\n"), "{out}");
    Ok(())
}

/// `k` CTEs, each the cross join of the one before with itself: 2^k scans once inlined.
fn cte_chain(k: usize) -> String {
    let mut ctes = vec!["a0 AS (SELECT 1 AS x)".to_string()];
    ctes.extend((1..=k).map(|i| format!("a{i} AS (SELECT l.x FROM a{p} l, a{p} r)", p = i - 1)));
    format!("WITH {} SELECT count(*) AS n FROM a{k}", ctes.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_doubles_with_each_cte_is_refused_before_planning_while_others_are_answered() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &["--query-timeout", "2s"]).await?;
    let (code, out, err) = psql(&serve.dsn(), &cte_chain(5))?;
    assert_eq!((code, out.as_str()), (0, "n\n1\n"), "a small chain plans: {err}");
    let dsn = serve.dsn();
    let attack = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        (psql(&dsn, &cte_chain(40)), started.elapsed())
    });
    let (code, out, err) = psql(&serve.dsn(), "SELECT count(*) > 3000 AS many FROM events")?;
    assert_eq!((code, out.as_str()), (0, "many\nt\n"), "{err}");
    let (answer, took) = attack.await?;
    let (code, _, err) = answer?;
    assert_ne!(code, 0);
    assert!(err.contains("statement too complex"), "{err}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    Ok(())
}

/// `n` correlated subqueries in a `WHERE`: 300 overflowed a worker's stack and aborted the
/// server before the subquery budget.
fn correlated_subqueries(n: usize) -> String {
    let conditions: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "a.atttypid = (SELECT max(t.oid) FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid AND t.typlen = {i})"
            )
        })
        .collect();
    format!("SELECT count(*) AS n FROM pg_catalog.pg_attribute a WHERE {}", conditions.join(" AND "))
}

#[tokio::test]
async fn a_statement_of_hundreds_of_subqueries_is_refused_and_the_server_stays_up() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let (code, _, err) = psql(&serve.dsn(), &correlated_subqueries(20))?;
    assert_eq!(code, 0, "a few subqueries plan: {err}");
    let (code, _, err) = psql(&serve.dsn(), &correlated_subqueries(300))?;
    assert_ne!(code, 0);
    assert!(err.contains("statement too complex: 300 subqueries"), "{err}");
    let (code, out, err) = psql(&serve.dsn(), "SELECT 1 AS one")?;
    assert_eq!((code, out.as_str()), (0, "one\n1\n"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_cannot_lock_users_out_and_are_closed_at_the_login_deadline() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &["--pg-login-timeout", "2s", "--pg-max-connections", "4"]).await?;
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(wire::connect_from("127.0.0.2", serve.port).await?);
    }
    // A user gets in at once, from its own address, though 64 sockets were opened before it.
    let (code, _, err) = psql(&serve.dsn(), "SELECT 1")?;
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(serve.metric("connaudit_serve_connections_total{outcome=\"pending_full\"}").await? >= 56.0);
    // Every idle socket is closed by the deadline.
    for socket in &mut idle {
        let (_, closed) = read_all(socket, Duration::from_secs(5)).await;
        assert!(closed, "an idle socket is still open after {:?}", started.elapsed());
    }
    assert!(serve.metric("connaudit_serve_connections_total{outcome=\"login_timeout\"}").await? >= 8.0);
    let (code, _, err) = psql(&serve.dsn(), "SELECT 1")?;
    assert_eq!(code, 0, "{err}");
    Ok(())
}

#[tokio::test]
async fn oversized_messages_are_cut_off_before_they_are_held() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start_with(&wh, &["--pg-allow-anonymous", "--pg-max-message-bytes", "1M"], &[]).await?;
    // Before the login: a startup packet over 10,000 bytes.
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", serve.port)).await?;
    send(&mut socket, &wire::startup(&[("user", "x"), ("options", &"y".repeat(20_000))])).await;
    let (messages, closed) = read_all(&mut socket, Duration::from_secs(5)).await;
    assert!(closed && !answered_a_statement(&messages), "{messages:?}");
    // After it: a query announcing 2 GB is refused from its header, with 54000.
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", serve.port)).await?;
    send(&mut socket, &wire::login()).await;
    let mut header = vec![b'Q'];
    header.extend_from_slice(&2_000_000_000u32.to_be_bytes());
    header.extend_from_slice(b"SELECT ");
    send(&mut socket, &header).await;
    let (messages, closed) = read_all(&mut socket, Duration::from_secs(5)).await;
    assert!(closed, "{messages:?}");
    let errors: Vec<_> = messages.iter().filter(|(t, _)| *t == b'E').map(|(_, b)| wire::error_fields(b)).collect();
    assert!(errors.iter().any(|(s, c, _)| s == "FATAL" && c == "54000"), "{errors:?}");
    // A query under the cap passes.
    let (code, _, err) = psql(&format!("host=127.0.0.1 port={} dbname=connaudit user=anyone", serve.port), "SELECT 1")?;
    assert_eq!(code, 0, "{err}");
    Ok(())
}
