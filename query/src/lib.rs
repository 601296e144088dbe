//! `connaudit query` and `connaudit audit`: SQL and ready-made audits over the Parquet
//! warehouse that `connaudit transform` writes, with DataFusion.

mod args;
pub mod audits;
mod error;
pub mod explain;
mod functions;
pub mod guard;
mod output;
mod prompt;
mod run;
mod session;
pub mod shared;
mod tables;
mod views;
mod window;

pub use args::{parse_size, Audit, AuditArgs, AuditCommon, Common, FailuresBy, Format, QueryArgs};
pub use connaudit_warehouse::TABLES;
pub use error::{Error, Result};
pub use tables::{register_schema, RAW_SCHEMA};
pub use views::{register as register_views, VIEWS};
pub use window::Window;

pub use output::Output;
pub use run::run_sql;
pub use session::open;

/// Runs `connaudit query`: the SQL given, the statements of `-f FILE`, or the prompt.
pub async fn query(args: QueryArgs) -> Result<()> {
    let common = &args.common;
    let window = Window::parse(common.since.as_deref(), common.until.as_deref(), chrono::Utc::now())?;
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => Some(sql.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path).map_err(|source| Error::File { path: path.display().to_string(), source })?,
        ),
        (None, None) => None,
    };
    let out = Output::new(common.format, common.output.clone())?;
    let ctx = session::open(common, &window).await?;
    match sql {
        Some(sql) => run::run_sql(&ctx, &sql, &out).await,
        None => {
            // The prompt shows tables unless told otherwise, even when stdout is redirected.
            let out = Output::new(Some(common.format.unwrap_or(Format::Table)), common.output.clone())?;
            prompt::prompt(&ctx, &out).await
        }
    }
}

/// Runs one of `connaudit audit ...`, or prints its SQL with `--show-sql`.
pub async fn audit(args: AuditArgs) -> Result<()> {
    let opts = args.audit.opts();
    let common = &opts.common;
    let now = chrono::Utc::now();
    let window = Window::parse(common.since.as_deref(), common.until.as_deref(), now)?;
    let baseline = audits::baseline(&args.audit, now)?;
    let sql = audits::sql(&args.audit, &window, baseline.as_ref(), now);
    if opts.show_sql {
        println!("{sql};");
        return Ok(());
    }
    let out = Output::new(common.format, common.output.clone())?;
    let ctx = session::open(common, &window).await?;
    run::run_sql(&ctx, &sql, &out).await
}
