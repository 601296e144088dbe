//! Command-line options of `connaudit query` and `connaudit audit`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use connaudit_warehouse::WarehouseFlag;

use crate::error::{Error, Result};

/// Where the result goes and in which shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table (the default on a terminal).
    Table,
    /// CSV with a header (the default when piped).
    Csv,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A Parquet file; needs -o FILE.
    Parquet,
}

/// Options every query and audit takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    #[command(flatten)]
    pub warehouse: WarehouseFlag,
    /// Output format [default: table on a terminal, csv otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the result to FILE instead of stdout (required for parquet)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only rows from this time on: 24h, 7d (back from now), 2026-11-20, 2026-11-20T08:00:00Z
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only rows before this time (same forms as --since)
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Memory for query execution; sorts and aggregations beyond it spill to disk
    #[arg(long, env = "CONNAUDIT_MEMORY_LIMIT", value_name = "SIZE", default_value = "1G")]
    pub memory_limit: String,
    /// Directory for spill files [default: the system temporary directory]
    #[arg(long, env = "CONNAUDIT_SPILL_DIR", value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Read the warehouse as it was: a version of `events` (the other tables as of its commit
    /// time), or a time: 2026-11-21T09:00:00Z, '2026-11-21 09:00' (UTC), 2026-11-21
    #[arg(long, value_name = "VERSION|TIME")]
    pub as_of: Option<String>,
}

impl Common {
    /// The defaults, for `warehouse`: what a program embedding the queries starts from.
    pub fn for_warehouse(warehouse: &str) -> Self {
        Common {
            warehouse: WarehouseFlag::new(warehouse),
            format: None,
            output: None,
            since: None,
            until: None,
            memory_limit: "1G".into(),
            spill_dir: None,
            as_of: None,
        }
    }
}

const QUERY_EXAMPLES: &str = "\
Examples:
  connaudit query --warehouse ./warehouse \"SELECT * FROM region_failure_rates ORDER BY failure_rate DESC LIMIT 10\"
  connaudit query --since 24h \"SELECT reason, count, share FROM connack_reason_summary ORDER BY count DESC\"
  connaudit query -f audit.sql --format csv > out.csv
  connaudit query --since 7d --format parquet -o week.parquet \"SELECT * FROM events WHERE region = 'eu-west'\"
  connaudit query                       (an interactive prompt; \\d lists the tables, \\q quits)

Tables: events, connack_reasons, disconnect_reasons, region_failures, alerts (Delta tables,
read at one version; `date` is their partition, events also have `hour`); views: region_failure_rates,
connack_reason_summary, disconnect_reason_summary, sessions, reason_catalog.";

/// `connaudit query`: SQL over the warehouse.
#[derive(Debug, Clone, Args)]
#[command(after_help = QUERY_EXAMPLES)]
pub struct QueryArgs {
    #[command(flatten)]
    pub common: Common,
    /// Read statements from FILE (several, separated by `;`)
    #[arg(short = 'f', long, value_name = "FILE", conflicts_with = "sql")]
    pub file: Option<PathBuf>,
    /// The SQL to run; without it and without -f, an interactive prompt starts
    pub sql: Option<String>,
}

/// Options of every audit.
#[derive(Debug, Clone, Args)]
pub struct AuditCommon {
    #[command(flatten)]
    pub common: Common,
    /// Print the audit's SQL (to edit and run with `connaudit query -f`) instead of running it
    #[arg(long)]
    pub show_sql: bool,
}

const AUDIT_EXAMPLES: &str = "\
Examples:
  connaudit audit client sensor-0042 --since 24h
  connaudit audit failures --by region --since 1h
  connaudit audit reasons --since 7d --format csv > reasons.csv
  connaudit audit flapping --since 1h --min 10 --show-sql > flapping.sql
  connaudit audit fights --since 24h
  connaudit audit storms --by region --since 24h
  connaudit audit online --by region --since 24h
  connaudit audit sessions --by node --since 7d
  connaudit audit explain --since 1h";

/// `connaudit audit ...`: the everyday questions, answered without writing SQL.
#[derive(Debug, Clone, Args)]
#[command(after_help = AUDIT_EXAMPLES)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub audit: Audit,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Audit {
    /// One client's timeline: attempts, connects, disconnects, sessions, takeovers, peer changes
    #[command(after_help = "Example:\n  connaudit audit client sensor-0042 --since 24h")]
    Client {
        /// The MQTT client id
        id: String,
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// Connection failure rates ranked by region, reason, node, username or an attribute
    /// (`--by attr.fw`: with the window before for comparison), with their reasons
    #[command(
        after_help = "Examples:\n  connaudit audit failures --since 24h\n  connaudit audit failures --by node --since 1h\n  connaudit audit failures --by attr.fw --since 7d"
    )]
    Failures {
        /// What to rank: region, reason, node, username, or attr.NAME (an attribute the
        /// payloads carry: client_attrs, MQTT 5 User-Properties, AWS's principal)
        #[arg(long, default_value = "region", value_parser = parse_failures_by)]
        by: FailuresBy,
        /// Show at most this many rows (0: all)
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// Every CONNACK and disconnect reason seen: counts, share, category and what to do
    #[command(after_help = "Example:\n  connaudit audit reasons --since 7d")]
    Reasons {
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// Clients that reconnect too often, with their most common disconnect reason
    #[command(after_help = "Example:\n  connaudit audit flapping --since 1h --min 10")]
    Flapping {
        /// Connects in the window that make a client flapping
        #[arg(long, default_value_t = 10)]
        min: u64,
        /// Show at most this many clients (0: all)
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// Client ids two or more devices fight over: connects alternating between peer addresses
    #[command(after_help = "Example:\n  connaudit audit fights --since 24h --min 3")]
    Fights {
        /// Connects from another address than the client's previous connect that make a fight
        #[arg(long, default_value_t = 3)]
        min: u64,
        /// Show at most this many clients (0: all)
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// Reconnect storms: minutes when a node's (or region's) connects were far above its own
    /// last hour, with what ended the sessions before them
    #[command(
        after_help = "Examples:\n  connaudit audit storms --since 24h\n  connaudit audit storms --by region --factor 10"
    )]
    Storms {
        /// Whose connects to count
        #[arg(long, value_enum, default_value = "node")]
        by: StormsBy,
        /// Connects in a bucket below which it is never a storm
        #[arg(long, default_value_t = 20)]
        min: u64,
        /// How many times the node's average bucket of the history before makes a storm
        #[arg(long, default_value_t = 5.0)]
        factor: f64,
        /// The length of a bucket (1m; 10s for a finer look)
        #[arg(long, default_value = "1m", value_parser = parse_seconds)]
        bucket: u64,
        /// How far back the baseline reaches (1h)
        #[arg(long, default_value = "1h", value_parser = parse_seconds)]
        history: u64,
        /// Show at most this many minutes (0: all)
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// Devices online in each hour (or `--every`) of the window, per region or node, from the
    /// sessions table (without --since: the last 24 hours)
    #[command(
        after_help = "Examples:\n  connaudit audit online --since 24h\n  connaudit audit online --by node --every 10m --since 6h"
    )]
    Online {
        /// Whose devices to count
        #[arg(long, value_enum, default_value = "region")]
        by: SessionsBy,
        /// The length of each step (10m, 1h, 1d)
        #[arg(long, default_value = "1h", value_parser = parse_step)]
        every: u64,
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// Sessions ended in the window per node (or region): how long they lasted, how many ended
    /// abnormally and how many disconnects were lost (`missing`)
    #[command(after_help = "Example:\n  connaudit audit sessions --by node --since 7d")]
    Sessions {
        /// What to group by
        #[arg(long, value_enum, default_value = "node")]
        by: SessionsBy,
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// The alerts `connaudit transform` raised
    #[command(after_help = "Example:\n  connaudit audit alerts --since 24h")]
    Alerts {
        #[command(flatten)]
        opts: AuditCommon,
    },
    /// What changed: the values (region, node, broker, protocol, attribute, peer network,
    /// client-id or username prefix) and pairs that explain most of a rise in the failure rate
    /// since the baseline (without --since: the last hour; the baseline: as long, just before)
    #[command(
        after_help = "Examples:\n  connaudit audit explain --since 1h\n  connaudit audit explain --metric disconnects --since 30m\n  connaudit audit explain --since 2026-11-20T08:00Z --baseline 2026-11-13T08:00Z..2026-11-13T09:00Z"
    )]
    Explain {
        /// Which rate: connect failures (failed CONNACKs) or abnormal disconnects
        #[arg(long, value_enum, default_value = "connects")]
        metric: crate::explain::Metric,
        /// The baseline, FROM..TO (each a time as --since takes it); default: as long as the
        /// window, just before it
        #[arg(long)]
        baseline: Option<String>,
        /// Show at most this many rows (0: all)
        #[arg(long, default_value_t = 10)]
        limit: u64,
        #[command(flatten)]
        opts: AuditCommon,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StormsBy {
    Node,
    Region,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionsBy {
    Region,
    Node,
}

/// `--bucket`, `--history`: a duration of at least a second, in whole seconds.
fn parse_seconds(text: &str) -> std::result::Result<u64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{text}` is not a duration; write it like 10s, 1m or 1h"))?;
    if d.as_secs() == 0 {
        return Err(format!("`{text}` is shorter than a second"));
    }
    Ok(d.as_secs())
}

/// `--every`: a step of at least a minute, in whole seconds.
fn parse_step(text: &str) -> std::result::Result<u64, String> {
    let step = humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{text}` is not a duration; write it like 10m, 1h or 1d"))?;
    if step.as_secs() < 60 {
        return Err(format!("`{text}` is shorter than a minute; the sessions are counted per minute at most"));
    }
    Ok(step.as_secs())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailuresBy {
    Region,
    Reason,
    Node,
    Username,
    /// An attribute of the events, by name.
    Attr(String),
}

fn parse_failures_by(text: &str) -> std::result::Result<FailuresBy, String> {
    Ok(match text {
        "region" => FailuresBy::Region,
        "reason" => FailuresBy::Reason,
        "node" => FailuresBy::Node,
        "username" => FailuresBy::Username,
        other => match other.strip_prefix("attr.") {
            Some(name) if !name.is_empty() => FailuresBy::Attr(name.to_string()),
            _ => {
                return Err(format!(
                    "`{other}` is not a grouping: give region, reason, node, username or attr.NAME (e.g. attr.fw)"
                ))
            }
        },
    })
}

impl Audit {
    pub fn opts(&self) -> &AuditCommon {
        match self {
            Audit::Client { opts, .. }
            | Audit::Failures { opts, .. }
            | Audit::Reasons { opts }
            | Audit::Flapping { opts, .. }
            | Audit::Fights { opts, .. }
            | Audit::Storms { opts, .. }
            | Audit::Online { opts, .. }
            | Audit::Sessions { opts, .. }
            | Audit::Alerts { opts }
            | Audit::Explain { opts, .. } => opts,
        }
    }
}

/// `--memory-limit` of `query` and `audit`: at least 1M.
pub fn parse_size(text: &str) -> Result<usize> {
    Ok(connaudit_warehouse::parse_size(text, "--memory-limit", 1 << 20).map_err(Error::Usage)? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases = [("1G", 1 << 30), ("512M", 512 << 20), ("1.5GiB", 3 << 29), ("2048K", 2 << 20), ("2gb", 2 << 30)];
        for (text, want) in cases {
            assert_eq!(parse_size(text).unwrap(), want, "{text}");
        }
        for bad in ["", "G", "1X", "10", "-1G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
