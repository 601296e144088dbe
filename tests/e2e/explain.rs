//! `connaudit audit explain` on the demo's warehouse: the simulator changes two things in the
//! run's second half (a firmware rollout failing with bad credentials, and sa-east's outage),
//! and the two leading values of the audit are those, in the demo's report and from the CLI
//! with the window the report printed.

use std::process::Command;

use anyhow::{bail, Context, Result};
use connaudit_tests::*;
use serde_json::Value;

fn connaudit(args: &[&str]) -> Result<std::process::Output> {
    Ok(Command::new(connaudit_bin()?).args(args).output()?)
}

/// The value printed after `flag ` in `line`.
fn after<'a>(line: &'a str, flag: &str) -> Option<&'a str> {
    let start = line.find(flag)? + flag.len() + 1;
    line[start..].split([' ', ')']).next()
}

#[test]
fn explain_names_the_rollout_and_the_outage_the_simulator_made() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let demo_dir = dir.path().join("demo").display().to_string();
    let demo = connaudit(&["demo", "--duration", "20s", "--dir", &demo_dir])?;
    let report = String::from_utf8(demo.stdout)?;
    if !demo.status.success() {
        bail!("the demo failed: {report}\n{}", String::from_utf8_lossy(&demo.stderr));
    }
    let verdict = report.lines().find(|l| l.starts_with("The leading ")).context("no explain verdict")?;
    assert!(verdict.ends_with(": yes"), "{verdict}\n{report}");
    assert!(verdict.contains("region=sa-east") && verdict.contains("attr.fw=2.4.1"), "{verdict}");

    // The CLI with the window the report printed gives the same two, with their reasons.
    let line = report.lines().find(|l| l.starts_with("What changed in the second half")).context("no window")?;
    let warehouse = format!("{demo_dir}/warehouse");
    let window = ["--since", "--until", "--baseline"].map(|f| after(line, f).unwrap_or_default().to_string());
    #[rustfmt::skip]
    let args = [
        "audit", "explain", "--warehouse", &warehouse, "--since", &window[0], "--until", &window[1],
        "--baseline", &window[2], "--format", "json",
    ];
    let out = connaudit(&args)?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout)?;
    let values: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "value").collect();
    let leading: Vec<(&str, &str)> = values
        .iter()
        .take(2)
        .map(|r| (r["explanation"].as_str().unwrap_or_default(), r["top_reason"].as_str().unwrap_or_default()))
        .collect();
    let mut names: Vec<&str> = leading.iter().map(|(n, _)| *n).collect();
    names.sort();
    assert_eq!(names, ["attr.fw=2.4.1", "region=sa-east"], "{rows:#?}");
    assert!(leading.contains(&("attr.fw=2.4.1", "bad_username_or_password")), "{leading:?}");
    assert!(leading.contains(&("region=sa-east", "server_unavailable")), "{leading:?}");
    for r in &values {
        let share = r["share"].as_f64().unwrap_or(-1.0);
        assert!(share > 0.0 && share <= 1.0, "{r}");
    }

    // The same over abnormal disconnects, and a baseline that is not FROM..TO.
    let out =
        connaudit(&["audit", "explain", "--warehouse", &warehouse, "--metric", "disconnects", "--since", &window[0]])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = connaudit(&["audit", "explain", "--warehouse", &warehouse, "--baseline", "yesterday"])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FROM..TO"), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}
