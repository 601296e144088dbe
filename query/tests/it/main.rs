//! Integration tests of `connaudit query` and `connaudit audit`: the built binary on a
//! warehouse written by the real transformer, checked against DuckDB on the same files.

mod audits;
mod errors;
mod snapshot;
mod sql;
