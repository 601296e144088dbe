//! Errors of the query CLI. Each says what went wrong and what to do about it.

/// What can stop a query or an audit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or its value is wrong; the message names the fix.
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    File { path: String, source: std::io::Error },
    /// The statement changes something; the CLI only reads.
    #[error("{0} is refused: connaudit query only reads the warehouse (SELECT, WITH, EXPLAIN, DESCRIBE, SHOW)")]
    ReadOnly(String),
    /// Bad SQL, a missing table or column: the user's to fix.
    #[error("{0}")]
    Sql(String),
    #[error("{0}")]
    Warehouse(#[from] connaudit_warehouse::Error),
    #[error(
        "out of memory: {0}\n  raise --memory-limit (or CONNAUDIT_MEMORY_LIMIT), or narrow the query with --since"
    )]
    Memory(String),
    #[error("query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("cannot write the result: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("cannot write the Parquet result: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("cannot write the result: {0}")]
    Output(std::io::Error),
    #[error("prompt: {0}")]
    Prompt(String),
}

impl Error {
    /// True when stdout was closed by its reader.
    pub fn is_broken_pipe(&self) -> bool {
        let io = match self {
            Error::Output(e) => Some(e),
            Error::Arrow(arrow::error::ArrowError::IoError(_, e)) => Some(e),
            _ => None,
        };
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// True when the user can fix it (exit code 2); otherwise it is a failure (exit code 1).
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Usage(_) | Error::File { .. } | Error::ReadOnly(_) | Error::Sql(_))
            || matches!(self, Error::Warehouse(e) if e.is_user_error())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
