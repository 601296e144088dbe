//! The Java BI tools through pgjdbc: Metabase's sync and a question, replayed verbatim as
//! Metabase v0.62 sends them (`replay/metabase.sql`), and the `DatabaseMetaData` calls DBeaver
//! makes on connect and on opening a table. Each answers without an error and truly: the
//! warehouse tables as tables in `public` with the contract's comments, PostgreSQL's type
//! names, no keys, and the numbers `connaudit query` gives.

use anyhow::{Context, Result};
use connaudit_tests::fixture::warehouse;
use connaudit_warehouse::{EVENTS, TABLES};

use crate::harness::{cli, java, Serve};

/// The answers of `Replay.java`: per statement, its rows (tab-separated fields) or its error.
fn replay(port: u16, script: &str) -> Result<Vec<std::result::Result<Vec<Vec<String>>, String>>> {
    let out = java("Replay.java", port, &[], script)?;
    let mut answers = Vec::new();
    for line in out.lines() {
        let fields: Vec<String> = line.split('\t').map(str::to_string).collect();
        match fields[0].as_str() {
            "rows" | "done" => answers.push(Ok(Vec::new())),
            "row" => answers
                .last_mut()
                .context("a row before its statement")?
                .as_mut()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .push(fields[1..].to_vec()),
            "error" => answers.push(Err(line.to_string())),
            other => anyhow::bail!("unexpected line {other}"),
        }
    }
    Ok(answers)
}

#[tokio::test]
async fn metabases_sync_and_question_answer_truly() -> Result<()> {
    let wh = warehouse()?;
    let serve = Serve::start(&wh, &[]).await?;
    let script =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/replay/metabase.sql"))?;
    let answers = replay(serve.port, &script)?;
    assert_eq!(answers.len(), script.matches("\nEND").count(), "one answer per statement");
    for (i, answer) in answers.iter().enumerate() {
        assert!(answer.is_ok(), "statement {} failed: {:?}", i + 1, answer);
    }
    let rows = |i: usize| answers[i].as_ref().unwrap();
    assert_eq!(rows(2), &[vec!["connaudit".to_string()]], "current_catalog");
    let schemas: Vec<&str> = rows(3).iter().map(|r| r[0].as_str()).collect();
    assert_eq!(schemas, ["pg_catalog", "public", "warehouse"]);
    // The privileges: every table and view may be read (its `select` column).
    assert!(rows(4).iter().any(|r| r[1] == "public" && r[2] == "events" && r[4] == "t"), "{:?}", rows(4));
    // Tables with their types and the contract's comments.
    for table in TABLES {
        let row = rows(5).iter().find(|r| r[1] == table.name).with_context(|| format!("{} not listed", table.name))?;
        assert_eq!((row[0].as_str(), row[2].as_str(), row[3].as_str()), ("public", "TABLE", table.about));
    }
    assert!(rows(5).iter().any(|r| r[1] == "region_failure_rates" && r[2] == "VIEW"));
    // Each table's estimated row count is its count (from the Delta log's statistics).
    let count = &cli(&wh, "SELECT count(*) AS n FROM events")?[0]["n"];
    let events = rows(5).iter().find(|r| r[1] == "events").context("events")?;
    assert_eq!(events[4], count.to_string(), "events' estimated_row_count");
    assert_eq!(rows(6), &[vec!["UTC".to_string()]], "show timezone");
    assert!(rows(7).is_empty(), "no enum types");
    // describe-fields: each column of events with PostgreSQL's type name and its comment.
    let events: Vec<&Vec<String>> = rows(8).iter().filter(|r| r[3] == "public" && r[4] == "events").collect();
    for (position, column) in EVENTS.columns().iter().enumerate() {
        let row = events.iter().find(|r| r[0] == *column.field.name()).with_context(|| column.field.name().clone())?;
        assert_eq!(row[2], position.to_string(), "{}", column.field.name());
        assert_eq!(row[5], "f", "no primary key");
        assert_eq!(row[6], column.comment, "{}", column.field.name());
    }
    let ts = events.iter().find(|r| r[0] == "ts").context("ts")?;
    assert_eq!(ts[1], "timestamptz");
    // pgjdbc's getColumns: the comments in its `description`.
    let described = rows(9).iter().find(|r| r[3] == "clientid").context("clientid in getColumns")?;
    assert_eq!(described[13], "The MQTT client id.");
    assert!(rows(10).is_empty() && rows(11).is_empty(), "no primary or foreign keys");
    assert_eq!(
        rows(12).len(),
        10000.min(cli(&wh, "SELECT count(*) AS n FROM events")?[0]["n"].as_u64().unwrap_or(0) as usize)
    );
    assert_eq!(rows(13), &[vec![count.to_string()]], "the question's count");
    Ok(())
}

#[tokio::test]
async fn dbeavers_database_metadata_calls_answer_truly() -> Result<()> {
    let serve = Serve::start(&warehouse()?, &[]).await?;
    let out = java("Metadata.java", serve.port, &[], "")?;
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    for line in &lines {
        assert_ne!(line[1], "error", "{}", line.join(" "));
    }
    let rows = |method: &str| -> Vec<Vec<&str>> {
        lines.iter().filter(|l| l[0] == method && l[1] == "row").map(|l| l[2..].to_vec()).collect()
    };
    let count = |method: &str| -> usize {
        lines.iter().find(|l| l[0] == method && l[1] == "count").and_then(|l| l[2].parse().ok()).unwrap_or(usize::MAX)
    };
    // The types serve sends, by the names pgjdbc reports them with.
    let types: Vec<&str> = rows("getTypeInfo").iter().map(|r| r[0]).collect();
    for t in ["text", "int4", "int8", "float8", "bool", "date", "timestamptz"] {
        assert!(types.contains(&t), "{t} not in getTypeInfo");
    }
    for table in TABLES {
        let row = rows("getTables").into_iter().find(|r| r[0] == table.name).with_context(|| table.name)?;
        assert_eq!((row[1], row[2]), ("TABLE", table.about));
    }
    let columns = rows("getColumns");
    assert_eq!(columns.len(), EVENTS.schema().fields().len() + 1, "events' columns and its hour");
    for column in EVENTS.columns() {
        let row = columns.iter().find(|r| r[0] == column.field.name()).with_context(|| column.field.name().clone())?;
        assert_eq!(row[3], column.comment);
        assert_eq!(row[2], if column.field.is_nullable() { "YES" } else { "NO" });
    }
    for method in ["getPrimaryKeys", "getImportedKeys", "getExportedKeys", "getCrossReference", "getIndexInfo"] {
        assert_eq!(count(method), 0, "{method}: a Delta table has no keys or indexes");
    }
    for method in ["getProcedures", "getFunctions", "getUDTs"] {
        assert_eq!(count(method), 0, "{method}: nothing of the kind in public");
    }
    // DBeaver's own query for a schema's tables, with the schema's oid bound.
    let namespace = replay(serve.port, "SQL\nSELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'public'\nEND\n")?;
    let oid = namespace[0].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?[0][0].clone();
    let script =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/replay/dbeaver.sql"))?;
    let answers = replay(serve.port, &script.replace("NAMESPACE", &oid))?;
    let tables = answers[0].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    for table in TABLES {
        let row = tables.iter().find(|r| r[2] == table.name).with_context(|| format!("{} not listed", table.name))?;
        assert!(row.iter().any(|v| v == table.about), "{}'s comment: {row:?}", table.name);
    }
    Ok(())
}
