//! What a user sees when something is wrong: the message names the problem and the fix, and
//! the exit code is 2 for the user's mistakes.

use anyhow::Result;

use crate::snapshot::assert_snapshot;
use connaudit_tests::fixture::{run, warehouse};

#[test]
fn user_errors_exit_2_and_say_what_to_do() -> Result<()> {
    let wh = warehouse()?;
    let wh = wh.to_str().unwrap();
    let empty = tempfile::tempdir()?;
    let empty = empty.path().to_str().unwrap();
    let cases: [(&str, Vec<&str>); 11] = [
        ("no_warehouse", vec!["query", "--warehouse", "/nonexistent/wh", "SELECT 1"]),
        ("empty_dir", vec!["query", "--warehouse", empty, "SELECT 1"]),
        ("unknown_table", vec!["query", "--warehouse", wh, "SELECT * FROM event"]),
        ("bad_sql", vec!["query", "--warehouse", wh, "SELECT count(*)\nFROMM events"]),
        ("unknown_column", vec!["query", "--warehouse", wh, "SELECT clientidd FROM events"]),
        ("insert", vec!["query", "--warehouse", wh, "INSERT INTO events SELECT * FROM events"]),
        ("create", vec!["query", "--warehouse", wh, "CREATE TABLE t AS SELECT 1"]),
        ("copy", vec!["query", "--warehouse", wh, "COPY (SELECT 1) TO '/tmp/x.csv'"]),
        ("set", vec!["query", "--warehouse", wh, "SET datafusion.execution.batch_size = 1"]),
        ("bad_since", vec!["audit", "reasons", "--warehouse", wh, "--since", "yesterday"]),
        ("parquet_needs_file", vec!["query", "--warehouse", wh, "--format", "parquet", "SELECT 1"]),
    ];
    let mut all = String::new();
    for (name, args) in cases {
        let (code, out, err) = run(&args)?;
        assert_eq!(code, 2, "{name}: {err}");
        assert_eq!(out, "", "{name}");
        let err = err.replace(empty, "EMPTY");
        all.push_str(&format!("== {name}\n{err}"));
    }
    assert_snapshot("errors", &all);
    Ok(())
}

#[test]
fn a_statement_may_begin_with_a_comment() -> Result<()> {
    let wh = warehouse()?;
    let wh = wh.to_str().unwrap();
    for args in [
        vec!["query", "--warehouse", wh, "--format", "csv", "-- the count\nSELECT count(*) AS n FROM events"],
        vec!["query", "--warehouse", wh, "-- the count\nSELECT count(*) AS n FROM events", "--format", "csv"],
    ] {
        let (code, out, err) = run(&args)?;
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.starts_with("n\n") && out.len() > 3, "{args:?}: {out}");
    }
    // An audit's SQL, which begins with a comment, runs as given.
    let (code, sql, err) = run(&["audit", "flapping", "--warehouse", wh, "--min", "1", "--show-sql"])?;
    assert!(code == 0 && sql.starts_with("-- "), "{err}{sql}");
    let (code, out, err) = run(&["query", "--warehouse", wh, "--format", "csv", &sql])?;
    assert!(code == 0 && out.starts_with("clientid,connects"), "{err}{out}");
    // A misspelt flag is still refused as one, not run as SQL.
    let (code, _, err) = run(&["query", "--warehouse", wh, "--formatt", "csv", "SELECT 1"])?;
    assert!(code == 2 && err.contains("'--formatt'"), "{err}");
    Ok(())
}

#[test]
fn a_broken_file_is_a_failure_exit_1() -> Result<()> {
    // A copy of the fixture whose first events file (as the Delta log lists it) is garbage.
    let dir = tempfile::tempdir()?;
    let copied = std::process::Command::new("cp").arg("-r").arg(warehouse()?).arg(dir.path()).status()?;
    assert!(copied.success());
    let wh = dir.path().join("warehouse");
    let file = connaudit_tests::delta_files(&wh.join("events"))?.into_iter().next().expect("an events file");
    std::fs::write(&file, b"this is not parquet")?;
    let (code, out, err) =
        run(&["query", "--warehouse", wh.to_str().unwrap(), "SELECT max(username || node) FROM warehouse.events"])?;
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.starts_with("error: query failed: "), "{err}");
    Ok(())
}

#[test]
fn every_subcommand_help_has_an_example() -> Result<()> {
    let subcommands: [&[&str]; 7] = [
        &["query"],
        &["audit"],
        &["audit", "client"],
        &["audit", "failures"],
        &["audit", "reasons"],
        &["audit", "flapping"],
        &["audit", "alerts"],
    ];
    for sub in subcommands {
        let mut args = sub.to_vec();
        args.push("--help");
        let (code, out, _) = run(&args)?;
        assert_eq!(code, 0, "{sub:?}");
        assert!(out.contains("Example"), "{sub:?} --help has an example:\n{out}");
        if sub != ["audit"] {
            for flag in ["--warehouse", "CONNAUDIT_WAREHOUSE", "--format", "--since", "--until", "--as-of"] {
                assert!(out.contains(flag), "{sub:?} --help lacks {flag}");
            }
        }
    }
    Ok(())
}

#[test]
fn a_small_memory_limit_spills_instead_of_failing() -> Result<()> {
    let wh = warehouse()?;
    let spill = tempfile::tempdir()?;
    // Sorting 2 million rows needs more than 16 MB: the sort must spill to finish.
    let sql = "SELECT sum(value * rn) AS checksum FROM \
         (SELECT value, row_number() OVER (ORDER BY value DESC) AS rn FROM generate_series(1, 2000000))";
    let run_with = |sql: &str| {
        run(&[
            "query",
            "--warehouse",
            wh.to_str().unwrap(),
            "--memory-limit",
            "16M",
            "--spill-dir",
            spill.path().to_str().unwrap(),
            "--format",
            "csv",
            sql,
        ])
    };
    let (code, out, err) = run_with(sql)?;
    assert_eq!(code, 0, "{err}");
    // The sum over i = 1..n of i * (n + 1 - i).
    let n: i128 = 2_000_000;
    let want = (n + 1) * n * (n + 1) / 2 - n * (n + 1) * (2 * n + 1) / 6;
    assert_eq!(out, format!("checksum\n{want}\n"));
    let (_, plan, _) = run_with(&format!("EXPLAIN ANALYZE {sql}"))?;
    let spilled: u64 = plan
        .split("spilled_rows=")
        .skip(1)
        .filter_map(|t| t.split(|c: char| !c.is_ascii_digit() && c != '.').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum();
    assert!(spilled > 0, "the sort spilled: {plan}");
    Ok(())
}
