//! Turns one partition's batch into Delta commits: for each table, the rows after that
//! table's committed position, with the batch's last offset as the partition's `txn`
//! version, in one commit. A replayed batch adds only what a table is missing, so a crash
//! between two tables' commits is completed on replay, and a zombie replica adds nothing.

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int64Type;
use connaudit_model::EventType;
use foldhash::HashMap;

use connaudit_warehouse::{
    alerts_app_id, app_id, distinct_values, writer_properties, Appended, Table, TableWriter, Warehouse, ALERTS, EVENTS,
    ONLINE_HOURS, REGION_FAILURES, SESSIONS, TABLES,
};
use futures::StreamExt;
use tracing::{debug, warn};

use crate::alerts::{self, Alert, Touched};
use crate::analytics::Analytics;
use crate::config::AlertConfig;
use crate::error::Result;
use crate::row::Row;
use crate::sessions::{self, Step, Tracker};
use crate::{events, metrics as m};

/// A batch's offsets: `[first, last]` of `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

/// A batch ready to commit: its events sorted by type, client and time, the sessions they ended,
/// their changes to the sessions online, and the alert keys it touched.
pub struct Prepared {
    pub span: Span,
    events: RecordBatch,
    sessions: RecordBatch,
    online: RecordBatch,
    /// `region_failures` over the whole batch: the alert keys come from it, and it is the
    /// table's rows unless an earlier attempt committed part of the batch.
    failures: Vec<RecordBatch>,
    touched: Touched,
}

/// What committing a batch did.
#[derive(Debug, Default)]
pub struct Committed {
    pub files: usize,
    /// Alerts this commit raised (not an earlier attempt, not another replica): publish them.
    pub alerts: Vec<Alert>,
}

pub struct BatchWriter {
    warehouse: Warehouse,
    group: String,
    topic: String,
    analytics: Analytics,
    limits: AlertConfig,
    tables: Vec<TableWriter>,
    /// Each partition's open sessions after its last prepared batch; rebuilt from `events`
    /// when missing (a partition's position read again forgets them).
    trackers: HashMap<i32, Tracker>,
    session_horizon_ms: i64,
}

impl BatchWriter {
    pub fn new(warehouse: Warehouse, group: String, topic: String, limits: AlertConfig) -> Self {
        let (analytics, tables, trackers) = (Analytics::default(), Vec::new(), HashMap::default());
        let session_horizon_ms = 7 * 86_400_000;
        BatchWriter { warehouse, group, topic, analytics, limits, tables, trackers, session_horizon_ms }
    }

    /// How old an open session may be and still pair with its end (see `sessions`).
    pub fn with_session_horizon_days(mut self, days: u64) -> Self {
        self.session_horizon_ms = (days as i64).saturating_mul(86_400_000);
        self
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
        // Another writer may have had the partition since: its sessions are read again.
        self.forget(partition);
        let app = self.app_id(partition);
        let mut lowest = i64::MAX;
        for t in &mut self.tables {
            lowest = lowest.min(t.committed(&app).await?);
        }
        Ok(lowest)
    }

    /// Drops a partition's open sessions (revoked, or to be read again).
    pub fn forget(&mut self, partition: i32) {
        if let Some(t) = self.trackers.remove(&partition) {
            metrics::gauge!(m::OPEN_SESSIONS).decrement(t.open() as f64);
        }
    }

    /// The kept fingerprints of `partition` at offsets `[from, through]`, from the `events`
    /// table as [`BatchWriter::position`] last read it.
    pub async fn fingerprints(&mut self, partition: i32, from: i64, through: i64) -> Result<Vec<(i64, i64)>> {
        self.open().await?;
        let events = self.tables.iter().find(|t| *t.table == EVENTS).expect("events is a table");
        Ok(events.fingerprints(partition, from, through).await?)
    }

    /// Sorts and encodes the rows and finds the alert keys they touch, once: committing may
    /// then be retried as often as needed.
    pub async fn prepare(&mut self, span: Span, rows: Vec<Row>) -> Result<Prepared> {
        let (sessions, online) = self.sessions(span, &rows).await?;
        // In `EVENTS.sort`'s order (type, client, time, offset), as keys with the row's index,
        // then read in that order: a row is some 400 bytes, and sorting the rows themselves
        // moved each one about log2(n) times.
        let mut keys: Vec<(EventType, &str, i64, i64, u32)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.event, r.clientid.as_str(), r.ts, r.kafka_offset, i as u32))
            .collect();
        keys.sort_unstable();
        let events = events::to_batch(keys.iter().map(|k| &rows[k.4 as usize]))?;
        drop(keys);
        drop(rows);
        let failures = self.analytics.table("region_failures", &events).await?;
        let takeovers = self.analytics.takeovers(&events).await?;
        let touched = Touched::new(&failures, &takeovers)?;
        Ok(Prepared { span, events, sessions, online, failures, touched })
    }

    /// The sessions the batch's rows (in offset order) end, from the partition's open ones, and
    /// the changes to `online_hours` they and the batch's connects make.
    async fn sessions(&mut self, span: Span, rows: &[Row]) -> Result<(RecordBatch, RecordBatch)> {
        self.read_sessions(span, rows).await?;
        let mut tracker = self.trackers.remove(&span.partition).expect("read just now");
        let before = tracker.open();
        let mut ended = Vec::new();
        rows.iter().filter_map(Step::of).for_each(|s| tracker.step(&s, &mut ended));
        tracker.sweep();
        metrics::gauge!(m::OPEN_SESSIONS).increment(tracker.open() as f64 - before as f64);
        let missing = ended.iter().filter(|s| s.end_reason == sessions::MISSING).count() as u64;
        metrics::counter!(m::SESSIONS, "end" => "missing").increment(missing);
        metrics::counter!(m::SESSIONS, "end" => "disconnect").increment(ended.len() as u64 - missing);
        self.trackers.insert(span.partition, tracker);
        let online = sessions::online::changes(rows, &ended)?;
        ended.sort_unstable_by(|a, b| {
            (&a.clientid, a.ended_at, a.kafka_offset).cmp(&(&b.clientid, b.ended_at, b.kafka_offset))
        });
        Ok((sessions::to_batch(&ended)?, online))
    }

    /// Makes sure the partition's open sessions are known before its batch `rows` (reading
    /// them back from `events` if not): the one step of `prepare` that reads the warehouse,
    /// retried on its own.
    pub async fn read_sessions(&mut self, span: Span, rows: &[Row]) -> Result<()> {
        if !self.trackers.contains_key(&span.partition) {
            let tracker = self.rebuild(span, rows).await?;
            self.trackers.insert(span.partition, tracker);
        }
        Ok(())
    }

    /// A partition's open sessions before the batch, from the connects and disconnects
    /// `events` holds before its first offset, within the horizon before the partition's
    /// newest committed event (not the batch's own times: one event dated years back must not
    /// widen the read to all history). Streamed: memory holds the open sessions, not the rows.
    async fn rebuild(&mut self, span: Span, rows: &[Row]) -> Result<Tracker> {
        self.open().await?;
        let mut tracker = Tracker::new(span.partition, self.session_horizon_ms);
        if rows.is_empty() {
            return Ok(tracker);
        }
        let events = self.tables.iter().find(|t| *t.table == EVENTS).expect("events is a table");
        let Some(newest) = events.newest_ms(span.partition, span.first).await? else { return Ok(tracker) };
        let since = newest.saturating_sub(self.session_horizon_ms);
        let started = std::time::Instant::now();
        let mut read = events.lifecycle(span.partition, span.first, since).await?;
        let mut rows = 0;
        while let Some(batch) = read.next().await {
            let batch = batch?;
            rows += batch.num_rows();
            sessions::replay(&mut tracker, std::slice::from_ref(&batch))?;
        }
        metrics::gauge!(m::OPEN_SESSIONS).increment(tracker.open() as f64);
        metrics::counter!(m::SESSIONS_READ_BACK).increment(rows as u64);
        debug!(
            partition = span.partition,
            rows,
            open = tracker.open(),
            ms = started.elapsed().as_millis() as u64,
            "Open sessions read back."
        );
        Ok(tracker)
    }

    /// Commits the batch to every table that does not hold it yet.
    pub async fn commit(&mut self, p: &Prepared) -> Result<Committed> {
        self.open().await?;
        let app = self.app_id(p.span.partition);
        let mut done = Committed::default();
        for i in 0..self.tables.len() {
            if *self.tables[i].table == ALERTS {
                done.alerts = self.commit_alerts(i, p, &app).await?;
                continue;
            }
            loop {
                let committed = self.tables[i].committed(&app).await?;
                if committed >= p.span.last {
                    break;
                }
                let table = self.tables[i].table;
                let batches = self.rows_for(table, p, committed).await?;
                let distinct = table.bloom.map_or(0, |c| distinct_values(&batches, c));
                let props = writer_properties(table, distinct);
                match self.tables[i].append(&batches, &app, p.span.last, props).await? {
                    Appended::Committed { version, files, bytes } => {
                        if *table == REGION_FAILURES {
                            p.touched.record_regions();
                        }
                        metrics::counter!(m::FILES, "table" => table.name).increment(files as u64);
                        metrics::counter!(m::BYTES, "table" => table.name).increment(bytes);
                        debug!(table = table.name, version, files, bytes, "Committed a batch.");
                        done.files += files;
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

    /// Counts the batch's alert keys again over the committed tables and rewrites the days of
    /// `alerts` they fall in, with the partition's `txn` and a `txn` every alerts commit of
    /// the group carries (`...:alerts`, one version more each time), so two replicas never
    /// rewrite the same state: the second one's commit conflicts, and it counts again. The
    /// alerts table is read before the tables counted, so a count never goes back.
    async fn commit_alerts(&mut self, i: usize, p: &Prepared, app: &str) -> Result<Vec<Alert>> {
        let serial = alerts_app_id(&self.group, &self.topic);
        loop {
            let [committed, version] = self.tables[i].committed_all(&[app, &serial]).await?[..] else {
                unreachable!("two app ids asked")
            };
            if committed >= p.span.last {
                return Ok(Vec::new());
            }
            let evaluated = if p.touched.is_empty() { None } else { self.count_alerts(i, p).await? };
            let appended = match &evaluated {
                None => self.tables[i].append(&[], app, p.span.last, writer_properties(&ALERTS, 0)).await?,
                Some((rows, _)) => {
                    let batch = alerts::to_batch(rows)?;
                    let txns = [(app, p.span.last), (serial.as_str(), version + 1)];
                    let days = p.touched.days();
                    self.tables[i].replace_days(&days, &[batch], &txns, writer_properties(&ALERTS, 0)).await?
                }
            };
            match appended {
                Appended::Committed { files, bytes, .. } => {
                    metrics::counter!(m::FILES, "table" => ALERTS.name).increment(files as u64);
                    metrics::counter!(m::BYTES, "table" => ALERTS.name).increment(bytes);
                    return Ok(evaluated.map(|(_, new)| new).unwrap_or_default());
                }
                Appended::Moved => {
                    metrics::counter!(m::COMMIT_CONFLICTS, "table" => ALERTS.name).increment(1);
                    debug!(
                        partition = p.span.partition,
                        "Another writer changed the alerts meanwhile; counting again."
                    );
                }
            }
        }
    }

    /// The alert rows after counting the batch's keys over the newest committed tables: only
    /// those the count reads (`alerts` as `commit_alerts` read it, `region_failures` when
    /// there are failures, `events` when there are takeovers), each read once more for other replicas' commits.
    async fn count_alerts(&mut self, i: usize, p: &Prepared) -> Result<Option<(Vec<Alert>, Vec<Alert>)>> {
        let ctx = datafusion::prelude::SessionContext::new();
        for t in 0..self.tables.len() {
            let table = self.tables[t].table;
            let needed = t == i
                || (*table == REGION_FAILURES && (p.touched.has_failures() || p.touched.has_connects()))
                || (*table == EVENTS && p.touched.has_takeovers());
            if !needed {
                continue;
            }
            if t != i {
                self.tables[t].committed_all(&[]).await?;
            }
            let provider = self.tables[t].provider().await?;
            ctx.register_table(table.name, provider)?;
        }
        alerts::evaluate(&ctx, &self.limits, &p.touched).await
    }

    /// The rows `table` gets from the batch when it already holds offsets up to `committed`.
    async fn rows_for(&self, table: &Table, p: &Prepared, committed: i64) -> Result<Vec<RecordBatch>> {
        if *table == SESSIONS {
            return Ok(vec![after(&p.sessions, committed)?]);
        }
        if *table == ONLINE_HOURS {
            return Ok(vec![sessions::online::summed(&after(&p.online, committed)?)?]);
        }
        let events = after(&p.events, committed)?;
        if *table == EVENTS {
            return Ok(vec![events]);
        }
        if *table == REGION_FAILURES && events.num_rows() == p.events.num_rows() {
            return Ok(p.failures.clone());
        }
        self.analytics.table(table.name, &events).await
    }
}

/// The rows (of `events`, `sessions` or the online changes) after offset `committed`.
fn after(events: &RecordBatch, committed: i64) -> Result<RecordBatch> {
    let offsets = events.column_by_name("kafka_offset").expect("the table has offsets").as_primitive::<Int64Type>();
    if offsets.values().iter().all(|o| *o > committed) {
        return Ok(events.clone());
    }
    let keep = BooleanArray::from(offsets.values().iter().map(|o| *o > committed).collect::<Vec<_>>());
    Ok(filter_record_batch(events, &keep)?)
}

#[cfg(test)]
mod tests {
    use connaudit_model::TopicMap;

    use super::*;
    use crate::regions::RegionMap;
    use crate::row::Origin;

    /// A batch in which 5,000 clients are each taken over 5 times in one minute, committed to
    /// real Delta tables: the alerts recount over `events` touches 5,000 keys (an `IN` list of
    /// that length once overflowed a tokio worker's stack in Delta's predicate conversion).
    #[test]
    fn a_batch_touching_thousands_of_clients_commits_its_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        let (clients, each) = (5_000, 5);
        let minute_ms = 1_733_130_000_000_i64;
        let rows: Vec<Row> = (0..clients * each)
            .map(|i| {
                let payload = format!(
                    r#"{{"event":"client.disconnected","clientid":"dev-{:05}","reason":"takenover","timestamp":{}}}"#,
                    i % clients,
                    minute_ms + i as i64
                );
                let origin = Origin { partition: 0, offset: i as i64, ..Default::default() };
                Row::parse(payload.as_bytes(), &origin, &TopicMap::default(), &RegionMap::default()).unwrap()
            })
            .collect();
        let limits = AlertConfig { connack_failures_per_minute: 5, takeovers_per_minute: 3, ..Default::default() };
        let span = Span { partition: 0, first: 0, last: (clients * each - 1) as i64 };
        // A tokio worker's stack: where transform commits.
        let done = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    let mut w = BatchWriter::new(wh, "g".into(), "t".into(), limits);
                    let prepared = w.prepare(span, rows).await.unwrap();
                    w.commit(&prepared).await.unwrap()
                })
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(done.alerts.len(), clients);
        assert!(done.alerts.iter().all(|a| a.count == each as i64 && a.kind == alerts::TAKEOVER_LOOP));
    }
}
