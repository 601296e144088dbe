//! Running SQL text: split into statements, refuse anything that writes, plan, execute and
//! write each result, timing it on stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Error, Result};
use crate::guard::first_words;
use crate::output::Output;

/// Runs every statement of `sql` in order, stopping at the first error.
pub async fn run_sql(ctx: &SessionContext, sql: &str, out: &Output) -> Result<()> {
    let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {}).map_err(|e| explain(e, sql))?;
    if statements.is_empty() {
        return Err(Error::Usage("no SQL statement given; write one, e.g. SELECT count(*) FROM events".into()));
    }
    let read_only = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    for statement in statements {
        let text = statement.to_string();
        if !reads_only(&statement) {
            return Err(Error::ReadOnly(first_words(&text)));
        }
        let started = Instant::now();
        let spinner = spinner();
        let names = match &statement {
            Statement::Statement(s) => crate::shared::with_names(s),
            _ => Default::default(),
        };
        let plan = ctx.state().statement_to_plan(statement).await.map_err(|e| explain(e, sql))?;
        // A second guard: EXPLAIN ANALYZE of a write would run the write.
        read_only.verify_plan(&plan).map_err(|_| Error::ReadOnly(first_words(&text)))?;
        // Held until the statement's rows are written.
        let budget = crate::shared::budget(ctx);
        let (plan, _held) =
            crate::shared::compute_shared(ctx, &names, plan, budget).await.map_err(|e| explain(e, sql))?;
        let stream = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| explain(e, sql))?
            .execute_stream()
            .await
            .map_err(|e| explain(e, sql))?;
        spinner.finish_and_clear();
        let rows = match out.write(stream).await {
            Ok(rows) => rows,
            // `connaudit query ... | head`: the reader has all it wanted.
            Err(e) if e.is_broken_pipe() => return Ok(()),
            Err(Error::DataFusion(e)) => return Err(explain(e, sql)),
            Err(e) => return Err(e),
        };
        eprintln!("{rows} row{} in {:.3} s", if rows == 1 { "" } else { "s" }, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// A spinner on stderr while a statement plans and starts, when stderr is a terminal.
fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} running {elapsed}").unwrap_or(ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Queries, EXPLAIN, DESCRIBE and SHOW; nothing that defines, writes or sets.
fn reads_only(statement: &Statement) -> bool {
    match statement {
        Statement::Statement(s) => crate::guard::reads_only(s),
        Statement::Explain(_) => true,
        Statement::CreateExternalTable(_) | Statement::CopyTo(_) | Statement::Reset(_) => false,
    }
}

/// Turns a DataFusion error into one that says whose it is and what to do: bad SQL shows the
/// line and a caret at the position; a missing table lists the tables; running out of memory
/// names `--memory-limit`.
pub fn explain(e: DataFusionError, sql: &str) -> Error {
    let message = e.find_root().to_string();
    match e.find_root() {
        DataFusionError::SQL(parser, _) => Error::Sql(with_caret(&parser.to_string(), sql)),
        DataFusionError::Plan(m) if m.contains("not found") && m.starts_with("table") => {
            Error::Sql(format!("{message}\n  {}", crate::views::names()))
        }
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) | DataFusionError::NotImplemented(_) => {
            Error::Sql(with_caret(&message, sql))
        }
        DataFusionError::ResourcesExhausted(m) => Error::Memory(m.clone()),
        _ => Error::DataFusion(e),
    }
}

/// Appends the offending line with a caret when the message gives `Line: L, Column: C`.
fn with_caret(message: &str, sql: &str) -> String {
    let number = |key: &str| -> Option<usize> {
        let rest = &message[message.find(key)? + key.len()..];
        rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    match (number("Line:"), number("Column:")) {
        (Some(line), Some(column)) if line >= 1 && column >= 1 => match sql.lines().nth(line - 1) {
            Some(text) => format!("{message}\n  {text}\n  {}^", " ".repeat(column - 1)),
            None => message.to_string(),
        },
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_column() {
        let m = "sql parser error: Expected: end of statement, found: FROMM at Line: 1, Column: 10";
        let got = with_caret(m, "SELECT 1 FROMM events");
        assert!(got.ends_with("\n  SELECT 1 FROMM events\n           ^"), "{got}");
        assert_eq!(with_caret("no position here", "SELECT"), "no position here");
    }
}
