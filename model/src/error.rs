//! Why a payload could not become an event.

/// A payload that cannot be turned into a client event; it belongs in the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("payload is not valid JSON: {0}")]
    NotJson(String),
    #[error("payload is JSON but not an object (found {0})")]
    NotObject(&'static str),
    #[error("payload has no string `clientid`")]
    MissingClientId,
    #[error("event type cannot be resolved: {0}")]
    UnknownEventType(String),
    #[error("implausible timestamp: {0}")]
    BadTimestamp(String),
    #[error("not the expected source format: {0}")]
    WrongFormat(String),
}

impl Error {
    /// A short, fixed label for metrics and the dead-letter `error_kind` header.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotJson(_) => "not_json",
            Error::NotObject(_) => "not_object",
            Error::MissingClientId => "missing_clientid",
            Error::UnknownEventType(_) => "unknown_event_type",
            Error::BadTimestamp(_) => "bad_timestamp",
            Error::WrongFormat(_) => "wrong_format",
        }
    }

    /// Every kind label, so metrics can be registered before the first error.
    pub const KINDS: [&'static str; 6] =
        ["not_json", "not_object", "missing_clientid", "unknown_event_type", "bad_timestamp", "wrong_format"];
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
