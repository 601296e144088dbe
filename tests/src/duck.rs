//! DuckDB (from PyPI, installed by scripts/install-deps.sh) as the second engine that reads
//! the warehouse back.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

const SCRIPT: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
rel = con.sql(sys.stdin.read())
cols = rel.columns
print(json.dumps([dict(zip(cols, r)) for r in rel.fetchall()], default=str))
"#;

/// The Python that has duckdb and pyarrow: `$CONNAUDIT_PYTHON`, else the cache's virtualenv.
pub fn python() -> String {
    if let Ok(p) = std::env::var("CONNAUDIT_PYTHON") {
        return p;
    }
    format!("{}/bin/python", venv())
}

/// The virtualenv scripts/install-deps.sh fills with duckdb, pyarrow and moto.
pub fn venv() -> String {
    format!("{}/venv", cache())
}

/// The virtualenv of Apache Superset (and its SQLAlchemy 1.4), its own as Superset pins its
/// dependencies.
pub fn superset_venv() -> String {
    format!("{}/superset", cache())
}

fn cache() -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    std::env::var("CONNAUDIT_CACHE").unwrap_or(format!("{home}/.cache/connaudit"))
}

/// Runs one SQL statement in DuckDB; rows come back as JSON objects.
pub fn duckdb(sql: &str) -> Result<Vec<Value>> {
    // The statement goes through stdin: a table listed file by file outgrows an argument.
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run python with duckdb; scripts/install-deps.sh installs it")?;
    child.stdin.take().expect("piped stdin").write_all(sql.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("DuckDB failed on `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Runs a Python snippet (with pyarrow and duckdb importable) and parses its JSON output.
pub fn python_json(script: &str, args: &[&str]) -> Result<Value> {
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().context("cannot run python")?;
    if !out.status.success() {
        bail!("python failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}
