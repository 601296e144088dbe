//! Errors of the simulator and the demo.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag is wrong; the message says how to fix it.
    #[error("{0}")]
    Usage(String),
    /// The broker or endpoint cannot be reached or refuses the events.
    #[error("{0}")]
    Connect(String),
    #[error("cannot write {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("embedded broker: {0}")]
    Embedded(String),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("ingest: {0}")]
    Ingest(#[from] connaudit_ingest::Error),
    #[error("transform: {0}")]
    Transform(#[from] connaudit_transform::Error),
    #[error("query: {0}")]
    Query(#[from] connaudit_query::Error),
    #[error("serve: {0}")]
    Serve(#[from] connaudit_serve::Error),
    #[error("the pipeline wrote {written} of {sent} events within {waited:?}; see the log above")]
    Incomplete { written: u64, sent: u64, waited: std::time::Duration },
}

impl Error {
    /// True when the user can fix it (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Usage(_) | Error::File { .. } => true,
            Error::Query(e) => e.is_user_error(),
            Error::Serve(e) => e.is_user_error(),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
