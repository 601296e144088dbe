//! Errors of the transform service.

use std::net::SocketAddr;

/// What can stop the transform service. Bad records are never errors: they go to the DLQ.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's configuration is wrong; the message says what to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    ConfigFile(#[from] connaudit_service::ConfigError),
    #[error("cannot read the regions file {path}: {message}")]
    Regions { path: String, message: String },
    #[error("cannot listen on {addr}: {source} (pick another --http-listen)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("warehouse: {0}")]
    Warehouse(#[from] connaudit_warehouse::Error),
    #[error("analytics: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("Arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("gave up at the shutdown deadline; nothing was committed for the last batch: {0}")]
    GaveUp(String),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    /// A task of the service failed and stopped it; the text names the task and why.
    #[error("transform stopped: {0}")]
    Stopped(String),
}

impl Error {
    /// True when the user can fix it by changing flags or files (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Config(_) | Error::ConfigFile(_) | Error::Regions { .. } | Error::Bind { .. })
            || matches!(self, Error::Warehouse(e) if e.is_user_error())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
