//! The `connaudit compact` command line.

use std::time::Duration;

use clap::Args;

use crate::compact::{compact, CompactOptions, Report};
use crate::error::{Error, Result};
use crate::flag::WarehouseFlag;
use crate::size::parse_size;
use crate::store::Warehouse;

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Example:\n  connaudit compact --warehouse s3://audit/connaudit --older-than-hours 2\n\nRun it hourly (a Kubernetes CronJob); it is safe beside running transformers and readers:\neach partition is swapped in one Delta commit. Exits 1 when a partition could not be\nmerged (the others are); run it again."
)]
pub struct CompactArgs {
    #[command(flatten)]
    pub warehouse: WarehouseFlag,
    /// Merge a day into one file sorted by client id once it ended this many hours ago (late
    /// events are rare after); in the current day of events, the small files are merged on every run
    #[arg(long, env = "CONNAUDIT_COMPACT_OLDER_THAN_HOURS", value_name = "HOURS", default_value_t = 2)]
    pub older_than_hours: u64,
    /// In the current day, files under this size are merged
    #[arg(long, env = "CONNAUDIT_COMPACT_SMALL_FILE", value_name = "SIZE", default_value = "64M")]
    pub small_file: String,
    /// Delete files that no table version needs anymore once they are this old: longer than any
    /// reader of plain files (or time-travel query) takes, and longer than a transformer's write
    #[arg(long, env = "CONNAUDIT_COMPACT_RETAIN", value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retain: Duration,
    /// Memory for sorting a partition; beyond it, sorting spills to disk
    #[arg(long, env = "CONNAUDIT_MEMORY_LIMIT", value_name = "SIZE", default_value = "512M")]
    pub memory_limit: String,
    /// Print what would be merged, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

impl CompactArgs {
    pub async fn run(&self) -> Result<Report> {
        let wh = Warehouse::locate(self.warehouse.location()).await?;
        wh.refuse_old_layout().await?;
        let options = CompactOptions {
            older_than: Duration::from_secs(self.older_than_hours * 3600),
            small_file_bytes: parse_size(&self.small_file, "--small-file", 1).map_err(Error::Config)?,
            retain: self.retain,
            memory_limit: parse_size(&self.memory_limit, "--memory-limit", 1 << 20).map_err(Error::Config)? as usize,
            dry_run: self.dry_run,
        };
        compact(&wh, &options).await
    }
}
