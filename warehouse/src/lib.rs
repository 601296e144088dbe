//! The warehouse contract that `connaudit transform` writes and `query`/`serve` read: one
//! Delta Lake table per entry of [`TABLES`] under a directory or `s3://bucket/prefix`,
//! partitioned by `date`; batches committed with their Kafka position as a Delta `txn`;
//! snapshots for DataFusion; compaction in single commits.

mod args;
mod commit;
mod compact;
mod error;
mod files;
pub mod fingerprint;
mod flag;
mod lineage;
mod live;
mod replace;
mod retention;
mod s3;
mod session;
mod size;
mod snapshot;
mod store;
mod tables;

pub use args::{CompactArgs, ForgetArgs};
pub use commit::{alerts_app_id, app_id, split_by_day, Appended, TableWriter};
pub use compact::{compact, CompactOptions, Report};
pub use error::{Error, Result};
pub use files::{distinct_values, properties, writer_properties, Layout};
pub use flag::{WarehouseFlag, DEFAULT_LOCATION};
pub use lineage::LIFECYCLE;
pub use live::Live;
pub use retention::{erasures, expire, forget, Erased, Erasure, Retention};
pub use session::{reader_config, spilling_runtime};
pub use size::parse_size;
pub use snapshot::{register, AsOf, Loaded};
pub use store::Warehouse;
pub use tables::{
    events_schema, table, ts_type, Column, Kept, Table, ALERTS, CONNACK_REASONS, DISCONNECT_REASONS, EVENTS,
    ONLINE_HOURS, PARTITION, REGION_FAILURES, SESSIONS, TABLES,
};
