//! Errors of the ingest service.

use std::net::SocketAddr;

/// What can stop the ingest service. Per-event problems are never errors: they go to the DLQ.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's configuration is wrong; the message says what to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    ConfigFile(#[from] connaudit_service::ConfigError),
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot read {what} {path}: {source}")]
    Tls { what: &'static str, path: String, source: std::io::Error },
    #[error("cannot listen on {addr}: {source} (pick another --http-listen)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    /// A task of the service failed and stopped it; the text names the task and why.
    #[error("ingest stopped: {0}")]
    Stopped(String),
}

impl Error {
    /// True when the user can fix it by changing flags or files (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Config(_) | Error::ConfigFile(_) | Error::Tls { .. } | Error::Bind { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
