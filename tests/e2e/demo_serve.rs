//! `connaudit demo --serve`: after its report the demo serves its warehouse on loopback with a
//! password made for the run, and psql and psycopg read it with the lines it printed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use connaudit_tests::*;

/// The printed value after `prefix` up to the next space or quote.
fn after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let start = text.find(prefix)? + prefix.len();
    text[start..].split([' ', '"', '\n']).next()
}

#[test]
fn the_demo_serves_its_warehouse_to_psql_and_psycopg_with_the_printed_settings() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, err) = (dir.path().join("demo.out"), dir.path().join("demo.err"));
    let demo_dir = dir.path().join("demo").display().to_string();
    let mut demo = Command::new(connaudit_bin()?)
        .args(["demo", "--duration", "8s", "--rate", "200", "--serve", "--dir", &demo_dir])
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&err)?)
        .stdin(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(240);
    let printed = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains("Metrics:") {
            break text;
        }
        if Instant::now() > deadline || demo.try_wait()?.is_some() {
            let _ = demo.kill();
            bail!("no serving lines: {text}\n{}", std::fs::read_to_string(&err).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let password = after(&printed, "PGPASSWORD=").context("no password printed")?;
    let port = after(&printed, " port=").context("no port printed")?;
    let uri = after(&printed, "URI:      ").context("no URI printed")?;
    assert!(uri.starts_with("postgresql://connaudit:") && uri.contains("@127.0.0.1:"), "{uri}");
    let sent: u64 = after(&std::fs::read_to_string(&err)?, "The fleet sent ")
        .and_then(|n| n.parse().ok())
        .context("the demo says how many events it sent")?;

    // psql with the printed line; psycopg with the printed URI.
    let psql = Command::new("psql")
        .args(["-X", "--csv", "-t", "-d", &format!("host=127.0.0.1 port={port} dbname=connaudit user=connaudit")])
        .args(["-c", "SELECT count(*) FROM events"])
        .env("PGPASSWORD", password)
        .output()?;
    assert!(psql.status.success(), "{}", String::from_utf8_lossy(&psql.stderr));
    assert_eq!(String::from_utf8(psql.stdout)?.trim().parse::<u64>()?, sent);
    let script = "import sys, psycopg\nwith psycopg.connect(sys.argv[1]) as c:\n    \
                  print(c.execute('SELECT count(*) FROM region_failure_rates').fetchone()[0] > 0)";
    let py = Command::new(python()).args(["-c", script, uri]).output()?;
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    assert_eq!(String::from_utf8(py.stdout)?.trim(), "True");
    // A wrong password is refused.
    let wrong = Command::new("psql")
        .args(["-X", "-d", &format!("host=127.0.0.1 port={port} dbname=connaudit user=connaudit"), "-c", "SELECT 1"])
        .env("PGPASSWORD", "guess")
        .output()?;
    assert!(!wrong.status.success());

    Command::new("kill").args(["-TERM", &demo.id().to_string()]).status()?;
    let status = demo.wait()?;
    assert!(status.success(), "the demo ends cleanly on SIGTERM: {status}");
    Ok(())
}
