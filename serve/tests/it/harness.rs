//! A `connaudit serve` on free loopback ports, and the clients that talk to it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use connaudit_tests::{free_port, python, wait_ready, Connaudit};
use serde_json::Value;
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct Serve {
    pub process: Connaudit,
    pub port: u16,
    pub http: String,
    pub dir: TempDir,
}

impl Serve {
    /// Serves `warehouse` with the test password and `extra` flags, and waits for `/readyz`.
    pub async fn start(warehouse: &Path, extra: &[&str]) -> Result<Serve> {
        Self::start_with(warehouse, extra, &[("CONNAUDIT_PG_PASSWORD", PASSWORD)]).await
    }

    pub async fn start_with(warehouse: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Serve> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let http = format!("127.0.0.1:{}", free_port());
        let pg = format!("127.0.0.1:{port}");
        let wh = warehouse.display().to_string();
        let mut args = vec!["serve", "--warehouse", &wh, "--pg-listen", &pg, "--http-listen", &http];
        args.extend_from_slice(extra);
        let process = Connaudit::start_with(&args, env, &dir.path().join("serve.log"))?;
        wait_ready(&http, Duration::from_secs(30)).await?;
        Ok(Serve { process, port, http, dir })
    }

    /// A libpq connection string with the test user and password.
    pub fn dsn(&self) -> String {
        format!("host=127.0.0.1 port={} dbname=connaudit user=connaudit password='{PASSWORD}'", self.port)
    }

    /// The process's peak resident memory so far (VmHWM), in MiB.
    pub fn peak_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id())).unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or_default();
        line.split_whitespace().nth(1).and_then(|k| k.parse::<u64>().ok()).unwrap_or(0) / 1024
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The value of a Prometheus sample, summed over the lines that start with `prefix`.
    pub async fn metric(&self, prefix: &str) -> Result<f64> {
        let text = reqwest::get(format!("http://{}/metrics", self.http)).await?.text().await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

/// psql with `dsn` runs `sql` (psql's own commands too) and prints CSV; (exit code, stdout, stderr).
pub fn psql(dsn: &str, sql: &str) -> Result<(i32, String, String)> {
    let out = Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "--csv", "-d", dsn, "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .context("cannot run psql; scripts/install-deps.sh installs postgresql-client")?;
    Ok((out.status.code().unwrap_or(-1), String::from_utf8(out.stdout)?, String::from_utf8(out.stderr)?))
}

/// psql running each statement as its own simple query on one connection (as psqlODBC sends
/// them); CSV out.
pub fn psql_each(dsn: &str, statements: &[&str]) -> Result<(i32, String, String)> {
    let mut command = Command::new("psql");
    command.args(["-X", "-v", "ON_ERROR_STOP=1", "--csv", "-d", dsn]);
    for statement in statements {
        command.args(["-c", statement]);
    }
    let out = command.output()?;
    Ok((out.status.code().unwrap_or(-1), String::from_utf8(out.stdout)?, String::from_utf8(out.stderr)?))
}

/// psql's CSV as rows of fields (header first).
pub fn csv(text: &str) -> Vec<Vec<String>> {
    text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
}

const PSYCOPG: &str = r#"
import datetime, decimal, json, sys
import psycopg

def value(v):
    if isinstance(v, datetime.datetime):
        return {"timestamp": v.timestamp(), "tz": v.tzinfo is not None}
    if isinstance(v, datetime.date):
        return {"date": v.isoformat()}
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v

dsn, requests = sys.argv[1], json.loads(sys.argv[2])
out = []
with psycopg.connect(dsn, autocommit=True) as conn:
    for r in requests:
        try:
            cur = conn.execute(r["sql"], r.get("params"), prepare=r.get("prepare"))
            cols = [d.name for d in cur.description] if cur.description else []
            types = [d.type_code for d in cur.description] if cur.description else []
            rows = [[value(v) for v in row] for row in cur.fetchall()] if cur.description else []
            out.append({"columns": cols, "types": types, "rows": rows})
        except psycopg.Error as e:
            out.append({"error": str(e).strip(), "sqlstate": e.sqlstate})
print(json.dumps(out))
"#;

/// Runs each request (`{"sql", "params", "prepare"}`) on one psycopg connection (the
/// extended protocol, parameters bound by the server); each answer is
/// `{"columns", "types" (OIDs), "rows"}` or `{"error", "sqlstate"}`.
pub fn psycopg(dsn: &str, requests: &Value) -> Result<Vec<Value>> {
    let out = Command::new(python()).args(["-c", PSYCOPG, dsn, &requests.to_string()]).output()?;
    if !out.status.success() {
        bail!("psycopg failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// pgjdbc: runs `Probe.java` (DatabaseMetaData and a prepared statement) with Java's source
/// launcher; its output is `key<TAB>value` lines.
pub fn jdbc(port: u16, args: &[&str]) -> Result<Vec<(String, String)>> {
    let out = java("Probe.java", port, args, "")?;
    Ok(out.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// Runs `program` (a Java source file beside this one) with pgjdbc on the classpath, the URL of
/// serve at `port`, the test user and password, then `args`; `input` on its standard input.
pub fn java(program: &str, port: u16, args: &[&str], input: &str) -> Result<String> {
    use std::io::Write;
    let jar = ["/usr/share/java/postgresql.jar"].into_iter().map(PathBuf::from).find(|p| p.exists());
    let jar = jar.context("no pgjdbc: scripts/install-deps.sh installs libpostgresql-jdbc-java")?;
    let source = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
        .join("tests/it")
        .join(program);
    let url = format!("jdbc:postgresql://127.0.0.1:{port}/connaudit");
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(&jar)
        .arg(&source)
        .args([url.as_str(), "connaudit", PASSWORD])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run java; scripts/install-deps.sh installs a JRE")?;
    child.stdin.take().context("no stdin")?.write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{program} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `connaudit query --format json` on `warehouse`.
pub fn cli(warehouse: &Path, sql: &str) -> Result<Vec<Value>> {
    let (code, out, err) = connaudit_tests::fixture::run(&[
        "query",
        "--warehouse",
        &warehouse.display().to_string(),
        "--format",
        "json",
        // A statement may begin with a `--` comment, which clap would read as a flag.
        "--",
        sql,
    ])?;
    if code != 0 {
        bail!("connaudit query failed ({code}): {err}");
    }
    Ok(serde_json::from_str(&out)?)
}

/// Compares psycopg's answer with the CLI's rows, column by column: timestamps as instants,
/// numbers within 1e-9, the rest exactly.
pub fn same_numbers(pg: &Value, cli: &[Value]) -> Result<()> {
    let columns: Vec<&str> = pg["columns"].as_array().context("no columns")?.iter().filter_map(Value::as_str).collect();
    let rows = pg["rows"].as_array().context("no rows")?;
    if rows.len() != cli.len() {
        bail!("{} rows over PostgreSQL, {} in connaudit query", rows.len(), cli.len());
    }
    for (i, (row, want)) in rows.iter().zip(cli).enumerate() {
        for (j, name) in columns.iter().enumerate() {
            let (got, want) = (&row[j], &want[*name]);
            if !same(got, want) {
                bail!("row {i}, column {name}: {got} over PostgreSQL, {want} in connaudit query");
            }
        }
    }
    Ok(())
}

fn same(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(o), Value::String(s)) if o.contains_key("timestamp") => {
            instant(s).is_some_and(|t| (t - o["timestamp"].as_f64().unwrap_or(f64::NAN)).abs() < 1e-6)
        }
        (Value::Object(o), Value::String(s)) if o.contains_key("date") => o["date"].as_str() == Some(s),
        (Value::Number(a), Value::Number(b)) => {
            (a.as_f64().unwrap_or(f64::NAN) - b.as_f64().unwrap_or(0.0)).abs() < 1e-9
        }
        _ => got == want,
    }
}

/// Seconds since the epoch of an RFC 3339 time as the CLI prints it (`...T10:00:05.5Z`).
fn instant(s: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
}
