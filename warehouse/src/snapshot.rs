//! Reading the warehouse: every table at one Delta version, registered in a DataFusion
//! session, so a query never mixes two states. `--as-of` reads an older state.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use deltalake::{DeltaTable, DeltaTableBuilder};
use tracing::debug;

use crate::error::{Error, Result};
use crate::store::Warehouse;
use crate::tables::{Table, EVENTS, TABLES};

/// A past state of the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// A version of `events`; the other tables as of the time it was committed.
    Version(u64),
    /// Every table as it was at this time.
    Time(DateTime<Utc>),
}

impl FromStr for AsOf {
    type Err = Error;

    /// A version number, an RFC 3339 time, `YYYY-MM-DD HH:MM[:SS]` (UTC) or a date.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Ok(v) = s.parse::<u64>() {
            return Ok(AsOf::Version(v));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(AsOf::Time(t.with_timezone(&Utc)));
        }
        for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
                return Ok(AsOf::Time(t.and_utc()));
            }
        }
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => Ok(AsOf::Time(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())),
            Err(_) => Err(bad(s)),
        }
    }
}

fn bad(s: &str) -> Error {
    Error::Config(format!(
        "--as-of `{s}` is neither a version nor a time; give e.g. 42, 2026-11-21T09:00:00Z or '2026-11-21 09:00'"
    ))
}

/// A table as a snapshot registered it: its Delta version, None when it has no commit yet.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub table: &'static Table,
    pub version: Option<u64>,
}

/// Registers every table of `wh` as `<schema>.<name>` (the schema must exist), each at its
/// latest version or as of `as_of`. A table without commits answers with no rows.
pub async fn register(ctx: &SessionContext, wh: &Warehouse, schema: &str, as_of: Option<AsOf>) -> Result<Vec<Loaded>> {
    let mut loaded = Vec::with_capacity(TABLES.len());
    // With a version, `events` decides the time the other tables are read at.
    let mut at = match as_of {
        Some(AsOf::Time(t)) => Some(t),
        _ => None,
    };
    for table in TABLES {
        let version = match table_at(wh, table, as_of, at).await? {
            Some(delta) => {
                if let (Some(AsOf::Version(v)), true) = (as_of, *table == EVENTS) {
                    let ms = delta.snapshot().ok().and_then(|s| s.version_timestamp(v));
                    at = ms.and_then(DateTime::from_timestamp_millis);
                }
                delta.update_datafusion_session(&ctx.state()).map_err(Error::delta(table.name))?;
                let provider = delta.table_provider().await?;
                ctx.register_table(format!("{schema}.{}", table.name).as_str(), provider)?;
                delta.version()
            }
            None => {
                let empty = MemTable::try_new(table.schema(), vec![vec![]])?;
                ctx.register_table(format!("{schema}.{}", table.name).as_str(), Arc::new(empty))?;
                None
            }
        };
        debug!(table = table.name, ?version, "Registered a table.");
        loaded.push(Loaded { table, version });
    }
    if as_of.is_some() {
        refuse_before_erasure(wh, at).await?;
    }
    Ok(loaded)
}

/// A state read `--as-of` a time before an erasure (`connaudit forget`) would show the rows it
/// erased: refused, whether or not the vacuum has deleted their files yet.
async fn refuse_before_erasure(wh: &Warehouse, at: Option<DateTime<Utc>>) -> Result<()> {
    for table in TABLES.iter().copied().filter(|t| t.holds_clients()) {
        let Some(latest) = table_at(wh, table, None, None).await? else { continue };
        let erased = crate::retention::erasures(&latest).await.map_err(Error::delta(table.name))?;
        if let Some(newest) = erased.first().filter(|t| at.is_none_or(|at| at < **t)) {
            return Err(Error::Config(format!(
                "--as-of reads {} from before an erasure ({} at {}): the rows it erased are not read again; \
                 give a time after it",
                at.map_or("a version".to_string(), |t| t.to_rfc3339()),
                table.name,
                newest.to_rfc3339()
            )));
        }
    }
    Ok(())
}

/// `table` at the asked state; None when it did not exist then.
async fn table_at(
    wh: &Warehouse,
    table: &'static Table,
    as_of: Option<AsOf>,
    at: Option<DateTime<Utc>>,
) -> Result<Option<DeltaTable>> {
    let builder = DeltaTableBuilder::from_url(wh.table_url(table)).map_err(Error::delta(table.name))?;
    let exists = builder.build().map_err(Error::delta(table.name))?.verify_deltatable_existence().await;
    if !exists.map_err(Error::delta(table.name))? {
        return Ok(None);
    }
    let builder = DeltaTableBuilder::from_url(wh.table_url(table)).map_err(Error::delta(table.name))?;
    let is_events = *table == EVENTS;
    let (builder, what) = match (as_of, at) {
        (None, _) => (builder, String::new()),
        (Some(AsOf::Version(v)), _) if is_events => (builder.with_version(v), v.to_string()),
        (Some(_), Some(t)) => (builder.with_timestamp(t), format!("at {}", t.to_rfc3339())),
        (Some(_), None) => return Err(no_version(table, "then".into(), "the time of the events version is unknown")),
    };
    match builder.load().await {
        Ok(delta) => Ok(Some(delta)),
        Err(e) if as_of.is_some() && !is_events => {
            debug!(table = table.name, error = %e, "The table had no version then; read as empty.");
            Ok(None)
        }
        Err(e) if as_of.is_some() => Err(no_version(table, what, &e.to_string())),
        Err(e) => Err(Error::delta(table.name)(e)),
    }
}

fn no_version(table: &'static Table, what: String, message: &str) -> Error {
    Error::NoSuchVersion { table: table.name, what, message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_reads_versions_and_times() {
        let t = |s: &str| AsOf::Time(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        assert_eq!("42".parse::<AsOf>().unwrap(), AsOf::Version(42));
        assert_eq!("2026-11-21T09:00:00+01:00".parse::<AsOf>().unwrap(), t("2026-11-21T08:00:00Z"));
        assert_eq!("2026-11-21 09:00".parse::<AsOf>().unwrap(), t("2026-11-21T09:00:00Z"));
        assert_eq!("2026-11-21".parse::<AsOf>().unwrap(), t("2026-11-21T00:00:00Z"));
        for bad in ["-1", "yesterday", ""] {
            let e = bad.parse::<AsOf>().unwrap_err().to_string();
            assert!(e.contains("--as-of"), "{e}");
        }
    }
}
