//! What a BI tool does before it charts: it reflects the schema. SQLAlchemy's inspector (the
//! one Superset uses), 2.x through psycopg2 (the simple protocol) and psycopg 3 (the extended
//! one, with its savepoint and `to_regtype` on connect) and 1.4 (Superset's own) through
//! psycopg2, sees the schemas, every table (in `public`, where the tools look) and view, each
//! one's columns with the contract's names, types, nullability and comments, each table's
//! comment, no keys, indexes or constraints (a Delta table has none), and a view's definition.

use anyhow::{bail, Result};
use connaudit_tests::fixture::warehouse;
use connaudit_tests::{python, superset_venv};
use connaudit_warehouse::TABLES;
use datafusion::arrow::datatypes::DataType;
use serde_json::{json, Value};

use crate::harness::{psql_each, Serve, PASSWORD};

/// How SQLAlchemy's PostgreSQL dialect names the type serve gives an Arrow type (1.4 spells
/// one type with an underscore).
fn sqlalchemy_type(t: &DataType, version: &str) -> &'static str {
    match t {
        DataType::Float64 if version == "SQLAlchemy 1.4" => "DOUBLE_PRECISION",
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "TEXT",
        DataType::Int32 => "INTEGER",
        DataType::Int64 => "BIGINT",
        DataType::Boolean => "BOOLEAN",
        DataType::Float64 => "DOUBLE PRECISION",
        DataType::Date32 => "DATE",
        DataType::Timestamp(_, _) => "TIMESTAMP",
        other => panic!("no SQLAlchemy name for {other}"),
    }
}

fn inspect(python: &str, url: &str, tables: &[&str]) -> Result<Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sa_inspect.py");
    let out = std::process::Command::new(python).arg(script).arg(url).args(tables).output()?;
    if !out.status.success() {
        bail!("SQLAlchemy's inspector failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn sorted(v: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|n| n.as_str().unwrap().into()).collect();
    names.sort();
    names
}

/// SQLAlchemy 2 (psycopg2 and psycopg 3) and SQLAlchemy 1.4 (Superset's, psycopg2).
fn inspectors() -> Vec<(String, &'static str, &'static str)> {
    vec![
        (python(), "psycopg2", "SQLAlchemy 2"),
        (python(), "psycopg", "SQLAlchemy 2"),
        (format!("{}/bin/python", superset_venv()), "psycopg2", "SQLAlchemy 1.4"),
    ]
}

#[tokio::test]
async fn sqlalchemy_reflects_every_table_and_view_with_the_contracts_columns_and_comments() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let password = PASSWORD.replace(' ', "%20");
    let mut names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    names.extend(["region_failure_rates", "reason_catalog"]);
    for (python, driver, version) in inspectors() {
        let who = format!("{version} with {driver}");
        let url = format!("postgresql+{driver}://connaudit:{password}@127.0.0.1:{}/connaudit", serve.port);
        let out = inspect(&python, &url, &names)?;
        assert_eq!(sorted(&out["schemas"]), ["public", "warehouse"], "{who}");
        // The warehouse tables are tables in `public`, where the tools look, and in `warehouse`.
        let mut contract: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        contract.sort();
        assert_eq!(sorted(&out["warehouse_tables"]), contract, "{who}");
        contract.push("reason_catalog".into());
        contract.sort();
        assert_eq!(sorted(&out["tables"]), contract, "{who}");
        let views = sorted(&out["views"]);
        assert_eq!(
            views,
            [
                "connack_reason_summary",
                "disconnect_reason_summary",
                "online_spans",
                "query_window",
                "region_failure_rates"
            ],
            "{who}"
        );
        for table in TABLES {
            let mut want: Vec<Value> = table
                .columns()
                .iter()
                .map(|c| {
                    let f = &c.field;
                    json!({"name": f.name(), "type": sqlalchemy_type(f.data_type(), version), "nullable": f.is_nullable(),
                           "comment": c.comment})
                })
                .collect();
            if table.name == "events" {
                want.push(json!({"name": "hour", "type": "INTEGER", "nullable": false, "comment": null}));
            }
            assert_eq!(out["columns"][table.name], Value::Array(want), "{who}: the columns of {}", table.name);
            // Delta tables have no keys, indexes or constraints: each call answers so.
            let pk = &out["pk_constraint"][table.name];
            assert_eq!((&pk["name"], &pk["constrained_columns"]), (&json!(null), &json!([])), "{who}");
            assert_eq!(out["indexes"][table.name], json!([]), "{who}");
            assert_eq!(out["unique_constraints"][table.name], json!([]), "{who}");
            assert_eq!(out["foreign_keys"][table.name], json!([]), "{who}");
            assert_eq!(out["check_constraints"][table.name], json!([]), "{who}");
            assert_eq!(out["table_comment"][table.name], json!({"text": table.about}), "{who}");
        }
        let definition = out["view_definition"].as_str().unwrap_or_else(|| panic!("{who}: {}", out["view_definition"]));
        let want = connaudit_query::VIEWS.iter().find(|(n, _)| *n == "region_failure_rates").expect("the view").1;
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(words(definition), words(want), "{who}: the view's definition");
        let rates = out["columns"]["region_failure_rates"].as_array().expect("columns of region_failure_rates");
        let rate = rates.iter().find(|c| c["name"] == "failure_rate").expect("failure_rate");
        assert_eq!(rate["type"], sqlalchemy_type(&DataType::Float64, version), "{who}");
        let catalog = out["columns"]["reason_catalog"].as_array().expect("columns of reason_catalog");
        assert!(catalog.iter().any(|c| c["name"] == "is_failure" && c["type"] == "BOOLEAN"), "{who}: {catalog:?}");
    }
    Ok(())
}

/// Tableau (and Power BI) reach PostgreSQL through psqlODBC, which on connect asks the
/// version, sets the date style and float digits, looks for large objects and the client
/// encoding, then reads each result through a cursor `WITH HOLD` in pieces. Each answers as
/// PostgreSQL would, and the pieces together are `connaudit query`'s rows.
#[tokio::test]
async fn tableaus_odbc_session_connects_and_reads_a_cursor_in_pieces() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let (code, out, err) = psql_each(
        &serve.dsn(),
        &[
            "select version()",
            "set DateStyle to 'ISO'",
            "set extra_float_digits to 2",
            "select oid, typbasetype from pg_type where typname = 'lo'",
            "select pg_client_encoding()",
            "SHOW max_identifier_length",
            "BEGIN",
            "declare \"SQL_CUR0x7f3a\" cursor with hold for SELECT region, count(*) AS n FROM events GROUP BY region ORDER BY region",
            "fetch 2 in \"SQL_CUR0x7f3a\"",
            "fetch 2 in \"SQL_CUR0x7f3a\"",
            "fetch 2 in \"SQL_CUR0x7f3a\"",
            "fetch 2 in \"SQL_CUR0x7f3a\"",
            "close \"SQL_CUR0x7f3a\"",
            "COMMIT",
        ],
    )?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PostgreSQL 16.6"), "{out}");
    assert!(out.contains("oid,typbasetype\n"), "no large-object type, no rows: {out}");
    assert!(out.contains("\nUTF8\n"), "the client encoding: {out}");
    assert!(out.contains("max_identifier_length\n63\n"), "{out}");
    let want = region_counts(&wh)?;
    let got: Vec<String> =
        out.lines().filter(|l| want.iter().any(|w| l.starts_with(&format!("{},", w.0)))).map(str::to_string).collect();
    let want: Vec<String> = want.iter().map(|(region, n)| format!("{region},{n}")).collect();
    assert_eq!(got, want, "every row once, in order, across the fetches");
    Ok(())
}

fn region_counts(wh: &std::path::Path) -> Result<Vec<(String, u64)>> {
    let rows = crate::harness::cli(wh, "SELECT region, count(*) AS n FROM events GROUP BY region ORDER BY region")?;
    Ok(rows
        .iter()
        .map(|r| (r["region"].as_str().unwrap_or_default().to_string(), r["n"].as_u64().unwrap_or(0)))
        .collect())
}
