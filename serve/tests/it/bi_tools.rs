//! What a BI tool does before it charts: it reflects the schema. SQLAlchemy's inspector (the
//! one Superset uses), through psycopg2 (the simple protocol) and psycopg 3 (the extended one,
//! with its savepoint and `to_regtype` on connect), sees the schemas, every table and view, and
//! each one's columns with the contract's names, types and nullability, and no keys, indexes
//! or constraints (a Delta table has none), and a view's definition.

use anyhow::{bail, Result};
use connaudit_tests::fixture::warehouse;
use connaudit_tests::python;
use connaudit_warehouse::TABLES;
use datafusion::arrow::datatypes::DataType;
use serde_json::{json, Value};

use crate::harness::{Serve, PASSWORD};

/// How SQLAlchemy's PostgreSQL dialect names the type serve gives an Arrow type.
fn sqlalchemy_type(t: &DataType) -> &'static str {
    match t {
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

fn inspect(url: &str, tables: &[&str]) -> Result<Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sa_inspect.py");
    let out = std::process::Command::new(python()).arg(script).arg(url).args(tables).output()?;
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

#[tokio::test]
async fn sqlalchemy_reflects_every_table_and_view_with_the_contracts_columns() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let password = PASSWORD.replace(' ', "%20");
    let mut names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    names.extend(["region_failure_rates", "reason_catalog"]);
    for driver in ["psycopg2", "psycopg"] {
        let url = format!("postgresql+{driver}://connaudit:{password}@127.0.0.1:{}/connaudit", serve.port);
        let out = inspect(&url, &names)?;
        assert_eq!(sorted(&out["schemas"]), ["public", "warehouse"], "{driver}");
        assert_eq!(sorted(&out["tables"]), ["reason_catalog"], "{driver}");
        let mut contract: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        contract.sort();
        assert_eq!(sorted(&out["warehouse_tables"]), contract, "{driver}");
        let views = sorted(&out["views"]);
        for view in TABLES.iter().map(|t| t.name).chain(["region_failure_rates", "connack_reason_summary"]) {
            assert!(views.iter().any(|v| v == view), "{driver}: {view} missing from the views {views:?}");
        }
        for table in TABLES {
            let mut want: Vec<Value> = table
                .schema()
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": sqlalchemy_type(f.data_type()), "nullable": f.is_nullable()}))
                .collect();
            if table.name == "events" {
                want.push(json!({"name": "hour", "type": "INTEGER", "nullable": false}));
            }
            assert_eq!(out["columns"][table.name], Value::Array(want), "{driver}: the columns of {}", table.name);
            // Delta tables have no keys, indexes or constraints: each call answers so.
            assert_eq!(out["pk_constraint"][table.name], json!({"name": null, "constrained_columns": []}), "{driver}");
            assert_eq!(out["indexes"][table.name], json!([]), "{driver}");
            assert_eq!(out["unique_constraints"][table.name], json!([]), "{driver}");
            assert_eq!(out["foreign_keys"][table.name], json!([]), "{driver}");
            assert_eq!(out["check_constraints"][table.name], json!([]), "{driver}");
            assert_eq!(out["table_comment"][table.name], json!({"text": null}), "{driver}");
        }
        let definition =
            out["view_definition"].as_str().unwrap_or_else(|| panic!("{driver}: {}", out["view_definition"]));
        let want = connaudit_query::VIEWS.iter().find(|(n, _)| *n == "region_failure_rates").expect("the view").1;
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(words(definition), words(want), "{driver}: the view's definition");
        let rates = out["columns"]["region_failure_rates"].as_array().expect("columns of region_failure_rates");
        let rate = rates.iter().find(|c| c["name"] == "failure_rate").expect("failure_rate");
        assert_eq!(rate["type"], "DOUBLE PRECISION", "{driver}");
        let catalog = out["columns"]["reason_catalog"].as_array().expect("columns of reason_catalog");
        assert!(catalog.iter().any(|c| c["name"] == "is_failure" && c["type"] == "BOOLEAN"), "{driver}: {catalog:?}");
    }
    Ok(())
}
