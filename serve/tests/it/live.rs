//! New commits appear without a restart: a serve started before the warehouse exists answers
//! with empty tables, then, once the tables are there, with their rows; a statement prepared
//! before reads the newest version when it runs again.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use connaudit_tests::fixture::warehouse;

use crate::harness::Serve;

const SCRIPT: &str = r#"
import os, sys, time, psycopg
dsn, flag = sys.argv[1], sys.argv[2]
with psycopg.connect(dsn, autocommit=True) as c:
    q = "SELECT count(*) FROM events WHERE event = %s"
    before = c.execute(q, ["client.connack"], prepare=True).fetchone()[0]
    open(flag + ".asked", "w").close()
    while not os.path.exists(flag):
        time.sleep(0.05)
    after = c.execute(q, ["client.connack"], prepare=True).fetchone()[0]
    total = c.execute("SELECT count(*) FROM events").fetchone()[0]
print(before, after, total)
"#;

#[tokio::test]
async fn tables_that_appear_later_are_read_without_a_restart() -> Result<()> {
    let fixture = warehouse()?;
    let dir = tempfile::tempdir()?;
    let wh = dir.path().join("warehouse");
    let serve = Serve::start(&wh, &[]).await?;
    let flag = dir.path().join("go");
    let (dsn, f, python) = (serve.dsn(), flag.display().to_string(), connaudit_tests::python());
    let client = tokio::task::spawn_blocking(move || Command::new(python).args(["-c", SCRIPT, &dsn, &f]).output());
    let asked = dir.path().join("go.asked");
    for _ in 0..200 {
        if asked.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(asked.exists(), "the client never asked: {}", serve.log());
    // Each table moved in whole, as a writer's first commit makes it appear.
    std::fs::create_dir_all(&wh)?;
    for table in ["events", "connack_reasons", "disconnect_reasons", "region_failures", "alerts"] {
        let staged = dir.path().join(format!("staged-{table}"));
        copy_dir(&fixture.join(table), &staged)?;
        std::fs::rename(&staged, wh.join(table))?;
    }
    std::fs::write(&flag, "")?;
    let out = client.await??;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    let numbers: Vec<u64> = text.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
    assert_eq!(numbers[0], 0, "{text}");
    assert!(numbers[1] > 100, "{text}");
    assert_eq!(numbers[2], connaudit_tests::fixture::records().len() as u64, "{text}");
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| from.display().to_string())? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
