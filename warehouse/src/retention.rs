//! Retention and erasure: whole days past a table's retention removed (`compact --retain-*`),
//! and one client's rows erased from every table that holds a client id (`connaudit forget`).
//! Each is one Delta DELETE commit per table, retried when a transformer or a compaction
//! committed first (the retry reads the new state, so no row is lost or kept twice); the files
//! that held the rows are deleted by the vacuum once `--retain` has passed. An erasure commit
//! is marked, and `--as-of` a time before it is refused: the erased rows are not read again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::files::writer_properties;
use crate::store::Warehouse;
use crate::tables::{Kept, Table, PARTITION, TABLES};

/// The commit metadata key that marks an erasure (its value: the time; never the client id,
/// which the log would otherwise keep).
const ERASURE: &str = "connaudit.erasure";
/// Commits refused because another writer committed first, before giving up.
const ATTEMPTS: u32 = 20;

/// How long each kind of table keeps its rows; `None` keeps them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// `events` and `sessions`: rows of one client.
    pub events: Option<Duration>,
    /// The aggregates and `alerts`: counts per minute.
    pub aggregates: Option<Duration>,
}

impl Retention {
    pub fn of(&self, table: &Table) -> Option<Duration> {
        match table.kept {
            Kept::WithEvents => self.events,
            Kept::WithAggregates => self.aggregates,
        }
    }
}

/// Removes the days of `table` that ended more than `keep` ago, in one commit; the rows removed.
pub async fn expire(wh: &Warehouse, table: &'static Table, keep: Duration, now: DateTime<Utc>) -> Result<u64> {
    let keep = chrono::Duration::from_std(keep).map_err(|e| Error::Config(format!("retention: {e}")))?;
    // A day is kept while any of it is within `keep`: the first day kept is the one `now - keep` falls in.
    let first_kept = (now - keep).date_naive().format("%Y-%m-%d").to_string();
    let predicate = format!("{PARTITION} < '{first_kept}'");
    let Some(delta) = open(wh, table).await? else { return Ok(0) };
    let rows = rows_matching(&delta, table, &first_kept)?;
    if rows == 0 {
        return Ok(0);
    }
    let (deleted, attempts) = delete(wh, table, &predicate, CommitProperties::default()).await?;
    // Whole files go without being read: delta-rs may not count their rows, the log's statistics do.
    let rows = deleted.unwrap_or(rows);
    info!(table = table.name, before = first_kept, rows, attempts, "Removed the days past retention.");
    Ok(rows)
}

/// Rows in the files of days before `first_kept`, from the Delta log's statistics.
fn rows_matching(delta: &DeltaTable, table: &'static Table, first_kept: &str) -> Result<u64> {
    let state = delta.snapshot().map_err(Error::delta(table.name))?;
    let mut rows = 0;
    for file in state.log_data() {
        let day = file.partition_values_map().get(PARTITION).cloned().flatten();
        if day.is_some_and(|d| d.as_str() < first_kept) {
            rows += file.num_records().unwrap_or(0) as u64;
        }
    }
    Ok(rows)
}

/// Whose rows `forget` erases.
#[derive(Debug, Clone, Default)]
pub struct Erasure {
    pub clientid: Option<String>,
    pub username: Option<String>,
}

/// What `forget` did to one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Erased {
    pub table: &'static str,
    pub rows: u64,
    /// Commits tried: more than one when another writer committed first.
    pub attempts: u32,
}

/// Erases the rows of `who` from every table that holds a client id, one marked commit per
/// table. Tables of counts (no client id) are left as they are.
pub async fn forget(wh: &Warehouse, who: &Erasure) -> Result<Vec<Erased>> {
    let literal = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let mut out = Vec::new();
    for table in TABLES.iter().copied().filter(|t| t.holds_clients()) {
        let has_username = table.file_schema().field_with_name("username").is_ok();
        let mut terms = Vec::new();
        if let Some(id) = &who.clientid {
            terms.push(format!("clientid = {}", literal(id)));
        }
        match &who.username {
            Some(name) if has_username => terms.push(format!("username = {}", literal(name))),
            _ => {}
        }
        if terms.is_empty() {
            out.push(Erased { table: table.name, rows: 0, attempts: 0 });
            continue;
        }
        let marked = CommitProperties::default()
            .with_metadata([(ERASURE.to_string(), serde_json::Value::String(Utc::now().to_rfc3339()))]);
        let (rows, attempts) = delete(wh, table, &terms.join(" OR "), marked).await?;
        let rows = rows.unwrap_or(0);
        info!(table = table.name, rows, attempts, "Erased.");
        out.push(Erased { table: table.name, rows, attempts });
    }
    Ok(out)
}

/// The times of the erasure commits of `delta`, newest first.
pub async fn erasures(delta: &DeltaTable) -> Result<Vec<DateTime<Utc>>, DeltaTableError> {
    let infos: Vec<_> = delta.history(None).try_collect().await?;
    Ok(infos
        .iter()
        .filter(|c| c.info.contains_key(ERASURE))
        .filter_map(|c| c.timestamp.and_then(DateTime::from_timestamp_millis))
        .collect())
}

async fn open(wh: &Warehouse, table: &'static Table) -> Result<Option<DeltaTable>> {
    let builder = deltalake::DeltaTableBuilder::from_url(wh.table_url(table)).map_err(Error::delta(table.name))?;
    let exists = builder.build().map_err(Error::delta(table.name))?.verify_deltatable_existence().await;
    if !exists.map_err(Error::delta(table.name))? {
        return Ok(None);
    }
    Ok(Some(DeltaTable::try_from_url(wh.table_url(table)).await.map_err(Error::delta(table.name))?))
}

/// One DELETE commit of the rows matching `predicate`; rows deleted (None when delta-rs cannot
/// tell) and attempts. A commit another writer got in first is retried on the new state.
async fn delete(
    wh: &Warehouse,
    table: &'static Table,
    predicate: &str,
    props: CommitProperties,
) -> Result<(Option<u64>, u32)> {
    for attempt in 1.. {
        let Some(delta) = open(wh, table).await? else { return Ok((Some(0), attempt)) };
        let done = delta
            .delete()
            .with_predicate(predicate.to_string())
            .with_writer_properties(writer_properties(table, 0))
            .with_commit_properties(props.clone())
            .await;
        match done {
            Ok((_, metrics)) => return Ok((metrics.num_deleted_rows.map(|n| n as u64), attempt)),
            Err(e) if attempt < ATTEMPTS && conflict(&e) => {
                warn!(table = table.name, attempt, error = %e, "Another writer committed first; deleting again.");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(e) => return Err(Error::delta(table.name)(e)),
        }
    }
    unreachable!("the loop returns")
}

fn conflict(e: &DeltaTableError) -> bool {
    matches!(e, DeltaTableError::VersionAlreadyExists(_) | DeltaTableError::Transaction { .. })
}
