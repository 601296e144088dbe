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
    /// Merge a day into one file in the table's order (events by type, client id and time) once
    /// it ended this many hours ago (late events are rare after); in the current day of events,
    /// the small files are merged on every run
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
    /// Remove whole days of events and sessions (rows of one client) once they ended this long
    /// ago (e.g. 30d), one commit per table; the files go at the vacuum after --retain.
    /// Default: kept forever
    #[arg(long, env = "CONNAUDIT_RETAIN_EVENTS", value_name = "DURATION", value_parser = at_least_a_day)]
    pub retain_events: Option<Duration>,
    /// Remove whole days of the aggregates and alerts (counts, no client's rows but the ids of
    /// fought-over clients in alerts) once they ended this long ago (e.g. 400d). Default: kept forever
    #[arg(long, env = "CONNAUDIT_RETAIN_AGGREGATES", value_name = "DURATION", value_parser = at_least_a_day)]
    pub retain_aggregates: Option<Duration>,
    /// Print what would be merged, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// A retention: a duration of at least a day (whole days are removed).
fn at_least_a_day(text: &str) -> std::result::Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{text}` is not a duration; write it like 30d or 400d"))?;
    if d < Duration::from_secs(86_400) {
        return Err(format!("`{text}` is shorter than a day; retention removes whole days"));
    }
    Ok(d)
}

/// `connaudit forget`: a privacy request's erasure.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  connaudit forget --clientid sensor-0042\n  connaudit forget --username alice --retain 0s\n\nErases the rows of the client id (or user name) from every table that holds one (events,\nsessions, alerts), one Delta commit per table, safe beside running transformers. The\naggregates hold no client id and stay as they are. Then the files no version needs are\ndeleted once older than --retain; until then, time travel could read them, so --as-of a time\nbefore an erasure is refused."
)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub warehouse: WarehouseFlag,
    /// The client id whose rows are erased
    #[arg(long, value_name = "ID", required_unless_present = "username")]
    pub clientid: Option<String>,
    /// The user name whose rows are erased
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    /// Delete the files no table version needs once they are this old (the erased rows' files
    /// among them once it has passed; `compact` deletes them on a later run otherwise)
    #[arg(long, env = "CONNAUDIT_COMPACT_RETAIN", value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retain: Duration,
}

impl ForgetArgs {
    /// Rows erased per table, and files deleted.
    pub async fn run(&self) -> Result<(Vec<crate::retention::Erased>, usize)> {
        for (flag, value) in [("--clientid", &self.clientid), ("--username", &self.username)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(Error::Config(format!("{flag} is empty; give the exact id or name to erase")));
            }
        }
        let wh = Warehouse::locate(self.warehouse.location()).await?;
        wh.refuse_old_layout().await?;
        let who = crate::retention::Erasure { clientid: self.clientid.clone(), username: self.username.clone() };
        let erased = crate::retention::forget(&wh, &who).await?;
        let deleted = crate::compact::vacuum_all(&wh, self.retain).await?;
        Ok((erased, deleted))
    }
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
            retention: crate::retention::Retention { events: self.retain_events, aggregates: self.retain_aggregates },
        };
        compact(&wh, &options).await
    }
}
