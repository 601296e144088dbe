//! DuckDB (from PyPI, installed by scripts/install-deps.sh) as the second engine that reads
//! the warehouse back.

use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

const SCRIPT: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
rel = con.sql(sys.argv[1])
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
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = std::env::var("CONNAUDIT_CACHE").unwrap_or(format!("{home}/.cache/connaudit"));
    format!("{cache}/venv")
}

/// Runs one SQL statement in DuckDB; rows come back as JSON objects.
pub fn duckdb(sql: &str) -> Result<Vec<Value>> {
    let out = Command::new(python())
        .args(["-c", SCRIPT, sql])
        .output()
        .context("cannot run python with duckdb; scripts/install-deps.sh installs it")?;
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
