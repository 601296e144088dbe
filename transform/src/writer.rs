//! Turns one partition's batch into Delta commits: for each table, the rows after that
//! table's committed position, with the batch's last offset as the partition's `txn`
//! version, in one commit. A replayed batch adds only what a table is missing, so a crash
//! between two tables' commits is completed on replay, and a zombie replica adds nothing.

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int64Type;
use connaudit_warehouse::{
    app_id, distinct_sorted, writer_properties, Appended, Table, TableWriter, Warehouse, ALERTS, EVENTS, TABLES,
};
use tracing::{debug, warn};

use crate::alerts::{self, Alert, AlertState};
use crate::analytics::Analytics;
use crate::error::Result;
use crate::row::Row;
use crate::{events, metrics as m};

/// A batch's offsets: `[first, last]` of `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

/// A batch ready to commit: its events sorted by client and time, and the alerts it raised.
pub struct Prepared {
    pub span: Span,
    events: RecordBatch,
    pub alerts: Vec<Alert>,
}

/// What committing a batch did.
#[derive(Debug, Default)]
pub struct Committed {
    pub files: usize,
    /// The batch's alerts were committed now (not by an earlier attempt): publish them.
    pub alerts_new: bool,
}

pub struct BatchWriter {
    warehouse: Warehouse,
    group: String,
    topic: String,
    analytics: Analytics,
    alerts: AlertState,
    tables: Vec<TableWriter>,
}

impl BatchWriter {
    pub fn new(warehouse: Warehouse, group: String, topic: String, alerts: AlertState) -> Self {
        BatchWriter { warehouse, group, topic, analytics: Analytics::default(), alerts, tables: Vec::new() }
    }

    /// Opens every table, creating the missing ones. Safe to call again after a failure.
    pub async fn open(&mut self) -> Result<()> {
        if self.tables.len() == TABLES.len() {
            return Ok(());
        }
        let mut tables = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            tables.push(TableWriter::new(table, self.warehouse.writable(table).await?));
        }
        self.tables = tables;
        Ok(())
    }

    fn app_id(&self, partition: i32) -> String {
        app_id(&self.group, &self.topic, partition)
    }

    /// The last offset of `partition` every table holds (-1 for none): the records after it
    /// are what a restart must read.
    pub async fn position(&mut self, partition: i32) -> Result<i64> {
        self.open().await?;
        let app = self.app_id(partition);
        let mut lowest = i64::MAX;
        for t in &mut self.tables {
            lowest = lowest.min(t.committed(&app).await?);
        }
        Ok(lowest)
    }

    /// The kept fingerprints of `partition` at offsets `[from, through]`, from the `events`
    /// table as [`BatchWriter::position`] last read it.
    pub async fn fingerprints(&mut self, partition: i32, from: i64, through: i64) -> Result<Vec<(i64, i64)>> {
        self.open().await?;
        let events = self.tables.iter().find(|t| *t.table == EVENTS).expect("events is a table");
        Ok(events.fingerprints(partition, from, through).await?)
    }

    /// Sorts and encodes the rows and counts the batch into the alerts, once: committing may
    /// then be retried as often as needed.
    pub async fn prepare(&mut self, span: Span, mut rows: Vec<Row>) -> Result<Prepared> {
        rows.sort_unstable_by(|a, b| (&a.clientid, a.ts, a.kafka_offset).cmp(&(&b.clientid, b.ts, b.kafka_offset)));
        let events = events::to_batch(&rows)?;
        drop(rows);
        let failures = self.analytics.table("region_failures", &events).await?;
        let takeovers = self.analytics.takeovers(&events).await?;
        let alerts = self.alerts.update(&failures, &takeovers);
        Ok(Prepared { span, events, alerts })
    }

    /// Commits the batch to every table that does not hold it yet.
    pub async fn commit(&mut self, p: &Prepared) -> Result<Committed> {
        self.open().await?;
        let app = self.app_id(p.span.partition);
        let mut done = Committed::default();
        for i in 0..self.tables.len() {
            loop {
                let committed = self.tables[i].committed(&app).await?;
                if committed >= p.span.last {
                    break;
                }
                let table = self.tables[i].table;
                let batches = self.rows_for(table, p, committed).await?;
                let distinct = table.bloom.map_or(0, |c| distinct_sorted(&batches, c));
                let props = writer_properties(table, distinct);
                match self.tables[i].append(&batches, &app, p.span.last, props).await? {
                    Appended::Committed { version, files, bytes } => {
                        metrics::counter!(m::FILES, "table" => table.name).increment(files as u64);
                        metrics::counter!(m::BYTES, "table" => table.name).increment(bytes);
                        debug!(table = table.name, version, files, bytes, "Committed a batch.");
                        done.files += files;
                        done.alerts_new |= *table == ALERTS && !p.alerts.is_empty();
                        break;
                    }
                    Appended::Moved => {
                        metrics::counter!(m::COMMIT_CONFLICTS, "table" => table.name).increment(1);
                        warn!(
                            table = table.name,
                            partition = p.span.partition,
                            "Another writer committed this partition meanwhile; reading its position again."
                        );
                    }
                }
            }
        }
        Ok(done)
    }

    /// The rows `table` gets from the batch when it already holds offsets up to `committed`.
    async fn rows_for(&self, table: &Table, p: &Prepared, committed: i64) -> Result<Vec<RecordBatch>> {
        if *table == ALERTS {
            // Alerts carry no offsets: all of the batch's or none.
            return Ok(if p.alerts.is_empty() { Vec::new() } else { vec![alerts::to_batch(&p.alerts)?] });
        }
        let events = after(&p.events, committed)?;
        if *table == EVENTS {
            return Ok(vec![events]);
        }
        self.analytics.table(table.name, &events).await
    }
}

/// The events after offset `committed`.
fn after(events: &RecordBatch, committed: i64) -> Result<RecordBatch> {
    let offsets = events.column_by_name("kafka_offset").expect("events have offsets").as_primitive::<Int64Type>();
    if offsets.values().iter().all(|o| *o > committed) {
        return Ok(events.clone());
    }
    let keep = BooleanArray::from(offsets.values().iter().map(|o| *o > committed).collect::<Vec<_>>());
    Ok(filter_record_batch(events, &keep)?)
}
