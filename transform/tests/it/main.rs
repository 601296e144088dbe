//! Transform integration tests: a real Kafka-protocol broker (tansu), the real transformer,
//! and the warehouse read back by DuckDB.

mod compact;
mod duplicates;
mod exactly_once;
mod harness;
mod hostile;
mod outage;
mod retention;
mod s3;
mod sessions;
mod warehouse;
mod zombie;
