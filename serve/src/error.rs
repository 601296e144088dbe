//! Errors that stop `connaudit serve` (a query's own errors go to its client).

use std::net::SocketAddr;

use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or variable is wrong; the message says what to change.
    #[error("{0}")]
    Config(String),
    #[error("cannot read {what} {path}: {message}")]
    Tls { what: &'static str, path: String, message: String },
    #[error("cannot listen on {addr}: {source} (pick another {flag})")]
    Bind { addr: SocketAddr, flag: &'static str, source: std::io::Error },
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    Warehouse(#[from] connaudit_warehouse::Error),
    #[error(transparent)]
    Query(#[from] connaudit_query::Error),
    #[error("DataFusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A task of the service failed and stopped it; the text names the task and why.
    #[error("serve stopped: {0}")]
    Stopped(String),
}

impl Error {
    /// True when the user can fix it by changing flags or files (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Config(_) | Error::Tls { .. } | Error::Bind { .. } => true,
            Error::Warehouse(e) => e.is_user_error(),
            Error::Query(e) => e.is_user_error(),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error a client is answered with, as PostgreSQL words it: its SQLSTATE `code` and message.
pub fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

/// An error that ends the connection (`FATAL`), as PostgreSQL words it.
pub fn fatal(code: &str, message: &str) -> ErrorInfo {
    ErrorInfo::new("FATAL".into(), code.into(), message.into())
}
