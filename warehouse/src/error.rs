//! Errors of the warehouse: opening it, committing to a table, reading a snapshot, compacting.

/// What can go wrong between a stage and its Delta tables.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The location or a flag is wrong; the message says what to change.
    #[error("{0}")]
    Config(String),
    /// Nothing at the location looks like a connaudit warehouse.
    #[error("no warehouse at {0}: point --warehouse (or CONNAUDIT_WAREHOUSE) at the directory or s3:// prefix that `connaudit transform` writes")]
    Missing(String),
    /// `--as-of` names a version or time the table does not have.
    #[error("{table} has no version {what}: {message}")]
    NoSuchVersion { table: &'static str, what: String, message: String },
    #[error("Delta table {table}: {source}")]
    Delta { table: &'static str, source: deltalake::DeltaTableError },
    #[error("warehouse storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("DataFusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("Arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

impl Error {
    /// True when the user can fix it by changing flags (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Config(_) | Error::Missing(_) | Error::NoSuchVersion { .. })
    }

    /// The Delta error of `table`, named.
    pub fn delta(table: &'static str) -> impl FnOnce(deltalake::DeltaTableError) -> Error {
        move |source| Error::Delta { table, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
