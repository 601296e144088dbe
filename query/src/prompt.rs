//! The interactive prompt of `connaudit query`: statements end with `;`, history is kept in
//! `~/.connaudit_history`, `\d` lists the tables, `\d NAME` describes one, `\q` quits.

use std::path::PathBuf;

use datafusion::prelude::SessionContext;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use crate::error::{Error, Result};
use crate::output::Output;
use crate::run::run_sql;

const HELP: &str = "End each statement with `;`. \\d lists tables and views, \\d NAME shows a table's columns, \
\\q quits.\nTry: SELECT * FROM region_failure_rates ORDER BY minute DESC LIMIT 10;";

pub async fn prompt(ctx: &SessionContext, out: &Output) -> Result<()> {
    let mut editor = DefaultEditor::new().map_err(|e| Error::Prompt(e.to_string()))?;
    let history = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".connaudit_history"));
    if let Some(path) = &history {
        // A first run has no history yet.
        let _ = editor.load_history(path);
    }
    eprintln!("connaudit query: SQL over the warehouse. {HELP}");
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "connaudit> " } else { "       ... " };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::Prompt(e.to_string())),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            match command(trimmed) {
                Command::Run(sql) => report(run_sql(ctx, &sql, out).await),
                Command::Help => eprintln!("{HELP}"),
                Command::Quit => break,
            }
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if trimmed.ends_with(';') {
            let sql = std::mem::take(&mut buffer);
            let _ = editor.add_history_entry(sql.trim());
            report(run_sql(ctx, &sql, out).await);
        }
    }
    if let Some(path) = &history {
        if let Err(e) = editor.save_history(path) {
            eprintln!("warning: cannot save the history to {}: {e}", path.display());
        }
    }
    Ok(())
}

enum Command {
    Run(String),
    Help,
    Quit,
}

fn command(text: &str) -> Command {
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some("\\q"), _) => Command::Quit,
        (Some("\\d"), None) => Command::Run(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables \
             WHERE table_schema <> 'information_schema' ORDER BY table_schema DESC, table_name"
                .into(),
        ),
        (Some("\\d"), Some(name)) => Command::Run(format!("DESCRIBE {name}")),
        _ => Command::Help,
    }
}

fn report(result: Result<()>) {
    if let Err(e) = result {
        eprintln!("error: {e}");
    }
}
