//! `connaudit query`: every output format, statement files, the time window, the views, and
//! pruning, on the fixture warehouse; numbers checked against DuckDB on the same files.

use anyhow::Result;
use connaudit_tests::{delta_table, duckdb, python_json};
use serde_json::Value;

use crate::snapshot::assert_snapshot;
use connaudit_tests::fixture::{run, warehouse};

const PER_REGION: &str = "SELECT region, sum(connacks) AS connacks, sum(failed_connacks) AS failed, \
     sum(disconnects) AS disconnects, sum(abnormal_disconnects) AS abnormal, \
     CAST(sum(failed_connacks) AS DOUBLE) / sum(connacks) AS failure_rate \
     FROM region_failure_rates GROUP BY region ORDER BY region";

/// DuckDB over exactly the files a fixture table's Delta log lists.
pub fn table(name: &str) -> Result<String> {
    delta_table(&warehouse()?.join(name))
}

fn query(args: &[&str]) -> Result<(i32, String, String)> {
    let wh = warehouse()?;
    let mut all = vec!["query", "--warehouse", wh.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all)
}

#[test]
fn every_format_prints_the_same_answer() -> Result<()> {
    for format in ["table", "csv", "json", "ndjson"] {
        let (code, out, err) = query(&["--format", format, PER_REGION])?;
        assert_eq!(code, 0, "{err}");
        assert!(err.starts_with("3 rows in "), "row count and time on stderr: {err}");
        assert_snapshot(&format!("query_{format}"), &out);
    }
    // Piped without --format: CSV.
    let (_, piped, _) = query(&[PER_REGION])?;
    let (_, csv, _) = query(&["--format", "csv", PER_REGION])?;
    assert_eq!(piped, csv);
    Ok(())
}

#[test]
fn per_region_counts_equal_duckdb_on_the_events() -> Result<()> {
    let (_, out, err) = query(&["--format", "json", PER_REGION])?;
    let ours: Vec<Value> = serde_json::from_str(&out).map_err(|e| anyhow::anyhow!("{e}: {out} {err}"))?;
    let theirs = duckdb(&format!(
        "SELECT region, count(*) FILTER (event = 'client.connack') AS connacks, \
                count(*) FILTER (event = 'client.connack' AND is_failure) AS failed, \
                count(*) FILTER (event = 'client.disconnected') AS disconnects, \
                count(*) FILTER (event = 'client.disconnected' AND is_failure) AS abnormal, \
                failed / connacks AS failure_rate \
         FROM {} GROUP BY region ORDER BY region",
        table("events")?
    ))?;
    assert_eq!(ours.len(), 3);
    assert_eq!(ours, theirs);
    Ok(())
}

#[test]
fn parquet_output_reads_back_in_pyarrow() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("regions.parquet");
    let (code, out, err) = query(&["--format", "parquet", "-o", file.to_str().unwrap(), PER_REGION])?;
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let read = python_json(
        "import sys, json, pyarrow.parquet as pq\n\
         t = pq.read_table(sys.argv[1])\n\
         print(json.dumps({'rows': t.to_pylist(), 'codec': pq.ParquetFile(sys.argv[1]).metadata.row_group(0).column(0).compression}))",
        &[file.to_str().unwrap()],
    )?;
    let (_, json, _) = query(&["--format", "json", PER_REGION])?;
    assert_eq!(read["rows"], serde_json::from_str::<Value>(&json)?);
    assert_eq!(read["codec"], "ZSTD");
    Ok(())
}

#[test]
fn a_file_runs_every_statement_in_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit.sql");
    std::fs::write(
        &file,
        "-- two questions\nSELECT count(*) AS events FROM events;\n\n\
         SELECT kind, count(*) AS reasons FROM reason_catalog GROUP BY kind ORDER BY kind;\n",
    )?;
    let (code, out, err) = query(&["--format", "csv", "-f", file.to_str().unwrap()])?;
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.lines().count(), 2, "one timing line per statement: {err}");
    let connacks = connaudit_model::Reason::all().iter().filter(|r| r.kind == connaudit_model::ReasonKind::Connack);
    let total = connaudit_model::Reason::all().len();
    let connacks = connacks.count();
    let events = connaudit_tests::fixture::records().len();
    assert_eq!(out, format!("events\n{events}\nkind,reasons\nconnack,{connacks}\ndisconnect,{}\n", total - connacks));
    Ok(())
}

#[test]
fn since_and_until_filter_every_table_like_duckdb() -> Result<()> {
    let window = ["--since", "2026-11-21T06:30:00Z", "--until", "2026-11-21T10:02:00Z", "--format", "json"];
    let mut args = window.to_vec();
    let sql = "SELECT (SELECT count(*) FROM events) AS events, \
                      (SELECT sum(connacks) FROM region_failures) AS connacks, \
                      (SELECT count(*) FROM sessions) AS sessions, \
                      (SELECT count(*) FROM alerts) AS alerts";
    args.push(sql);
    let (code, out, err) = query(&args)?;
    assert_eq!(code, 0, "{err}");
    let ours: Vec<Value> = serde_json::from_str(&out)?;
    let cond = |col: &str| {
        format!("{col} >= TIMESTAMPTZ '2026-11-21 06:30:00+00' AND {col} < TIMESTAMPTZ '2026-11-21 10:02:00+00'")
    };
    let theirs = duckdb(&format!(
        "SELECT (SELECT count(*) FROM {ev} WHERE {c1}) AS events, \
                (SELECT sum(connacks) FROM {rf} WHERE {c2}) AS connacks, \
                (SELECT count(*) FROM {ev} WHERE {c1} AND event = 'client.disconnected') AS sessions, \
                (SELECT count(*) FROM {al} WHERE {c2}) AS alerts",
        ev = table("events")?,
        rf = table("region_failures")?,
        al = table("alerts")?,
        c1 = cond("ts"),
        c2 = cond("minute"),
    ))?;
    assert_eq!(ours, theirs);
    // The window is not empty and not everything: the scripted stories at 10:00 are in it.
    let events = ours[0]["events"].as_u64().unwrap_or(0);
    assert!(events > 100 && events < 3000, "{events}");
    assert_eq!(ours[0]["alerts"], 1, "the takeover alert of 10:01; the failure alert at 10:02 is outside");
    Ok(())
}

#[test]
fn a_client_filter_prunes_with_statistics_and_bloom_filters() -> Result<()> {
    let (code, out, err) =
        query(&["--format", "csv", "EXPLAIN ANALYZE SELECT count(*) FROM events WHERE clientid = 'cam-7'"])?;
    assert_eq!(code, 0, "{err}");
    let metric = |name: &str| -> Option<(u64, u64)> {
        let at = out.find(&format!("{name}="))? + name.len() + 1;
        let text = &out[at..];
        let total: u64 = text.split(' ').next()?.parse().ok()?;
        let matched: u64 = text.split("→ ").nth(1)?.split(' ').next()?.parse().ok()?;
        Some((total, matched))
    };
    // Two days in two Kafka partitions: four files. cam-7's events are on one day only, and
    // in one partition's file (its key's): the log's statistics leave two files to open.
    assert_eq!(connaudit_tests::delta_files(&warehouse()?.join("events"))?.len(), 4);
    assert!(out.contains("count_files_scanned=2"), "the Delta log's min/max skip the other day: {out}");
    let (groups, groups_left) = metric("row_groups_pruned_bloom_filter").expect("bloom filter pruning");
    assert_eq!((groups, groups_left), (2, 1), "the bloom filter skips the other partition's file");
    Ok(())
}

#[test]
fn views_and_tables_are_all_there() -> Result<()> {
    let (code, out, err) = query(&[
        "--format",
        "csv",
        "SELECT table_schema, table_name, table_type FROM information_schema.tables \
         WHERE table_schema <> 'information_schema' ORDER BY table_schema, table_name",
    ])?;
    assert_eq!(code, 0, "{err}");
    assert_snapshot("tables", &out);
    // Every table answers, and events has its partition columns.
    let (_, out, _) =
        query(&["--format", "csv", "SELECT count(DISTINCT date) AS days, count(DISTINCT hour) AS hours FROM events"])?;
    assert_eq!(out, "days,hours\n2,24\n");
    Ok(())
}

#[test]
fn the_prompt_runs_statements_and_backslash_commands() -> Result<()> {
    use std::io::Write;
    let wh = warehouse()?;
    let home = tempfile::tempdir()?;
    let mut child = std::process::Command::new(connaudit_tests::connaudit_bin()?)
        .args(["query", "--warehouse", wh.to_str().unwrap()])
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"SELECT count(*)\n  AS events FROM events;\nSELECT nope;\n\\d sessions\n\\q\n")?;
    drop(stdin);
    let out = child.wait_with_output()?;
    let (stdout, stderr) = (String::from_utf8(out.stdout)?, String::from_utf8(out.stderr)?);
    assert!(out.status.success(), "{stderr}");
    let events = connaudit_tests::fixture::records().len();
    assert!(stdout.contains(&format!("| {events} ")), "a statement over two lines ran as a table: {stdout}");
    assert!(stderr.contains("error: Schema error: No field named nope"), "an error does not end the prompt: {stderr}");
    assert!(stdout.contains("end_reason"), "\\d sessions describes the view: {stdout}");
    assert!(home.path().join(".connaudit_history").exists(), "history is kept");
    Ok(())
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() -> Result<()> {
    use std::io::BufRead;
    let wh = warehouse()?;
    let mut child = std::process::Command::new(connaudit_tests::connaudit_bin()?)
        .args(["query", "--warehouse", wh.to_str().unwrap(), "--format", "csv"])
        .arg("SELECT a.clientid FROM events AS a CROSS JOIN (SELECT * FROM generate_series(1, 100)) AS b")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first)?;
    assert_eq!(first, "clientid\n");
    // stdout is closed now, as `| head -1` would.
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8(out.stderr)?;
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    Ok(())
}

#[test]
fn as_of_reads_the_warehouse_as_it_was() -> Result<()> {
    let count = |as_of: &str| -> Result<(i32, String, String)> {
        query(&["--format", "csv", "--as-of", as_of, "SELECT count(*) AS n FROM warehouse.events"])
    };
    let (_, now, _) = query(&["--format", "csv", "SELECT count(*) AS n FROM warehouse.events"])?;
    let total: u64 = now.trim_start_matches("n\n").trim().parse()?;
    // Version 0 created the table; version 1 is the first batch of one partition.
    assert_eq!(count("0")?.1, "n\n0\n");
    let (code, first, err) = count("1")?;
    assert_eq!(code, 0, "{err}");
    let first: u64 = first.trim_start_matches("n\n").trim().parse()?;
    assert!(first > 0 && first < total, "{first} of {total}");
    assert_eq!(count("2999-01-01")?.1, now, "a time after the last commit reads the latest");
    assert_eq!(count("2000-01-01")?.1, "n\n0\n", "before the first commit, nothing");
    let (code, _, err) = count("999999")?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("events has no version 999999"), "{err}");
    let (code, _, err) = count("yesterday")?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--as-of `yesterday`"), "{err}");
    Ok(())
}
