//! Alerts: a region whose unsuccessful CONNACKs in a minute exceed a threshold, a client id
//! taken over again and again in a minute (a takeover fight: two devices sharing an id; the
//! alert names their addresses), and a reconnect storm (a region's connects in a minute far
//! above its average minute of the hour before, which it names). Decided by the committed
//! tables, not by what one process saw: after a batch is committed, the minutes and keys it
//! touched are counted again over `region_failures` (every partition, every replica) and
//! `events`, and the `alerts` table gets one row per alert with the count so far. So the
//! alerts are the same with one replica or ten, across restarts, each once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use arrow::error::ArrowError;
use chrono::DateTime;
use connaudit_warehouse::ts_type;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::config::AlertConfig;
use crate::error::Result;

pub const CONNACK_FAILURES: &str = "connack_failures";
pub const TAKEOVER_LOOP: &str = "takeover_loop";
pub const RECONNECT_STORM: &str = "reconnect_storm";

mod storms;

const MINUTE_US: i64 = 60_000_000;
const DAY_US: i64 = 86_400_000_000;
/// At most this many client ids (or days) go into a recount's `IN` list.
const MAX_CLIENT_LIST: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Start of the minute, ms since the epoch.
    pub minute: i64,
    pub kind: &'static str,
    pub region: String,
    pub clientid: Option<String>,
    pub count: i64,
    pub threshold: i64,
    /// The evidence: the peers of a takeover fight, the baseline of a storm.
    pub detail: Option<String>,
}

impl Alert {
    fn key(&self) -> (&'static str, i64, String) {
        (self.kind, self.minute, self.clientid.clone().unwrap_or_else(|| self.region.clone()))
    }
}

/// What a batch may have changed: minutes (µs) and regions with unsuccessful CONNACKs, minutes
/// and client ids with takeovers.
#[derive(Debug, Default, Clone)]
pub struct Touched {
    failures: BTreeSet<(i64, String)>,
    takeovers: BTreeSet<(i64, String)>,
    /// Minutes and regions with connects (a storm's candidates).
    connects: BTreeSet<(i64, String)>,
    /// CONNACKs and failed ones per region, for the Prometheus counters and gauge.
    regions: BTreeMap<String, RegionConnacks>,
}

/// A batch's CONNACKs of one region: in all, and in its newest minute.
#[derive(Debug, Default, Clone, Copy)]
struct RegionConnacks {
    connacks: i64,
    failed: i64,
    minute: i64,
    minute_connacks: i64,
    minute_failed: i64,
}

impl Touched {
    /// From a batch's `region_failures` rows and its takeover counts.
    pub fn new(region_failures: &[RecordBatch], takeovers: &[RecordBatch]) -> Result<Self> {
        let mut t = Touched::default();
        for b in region_failures {
            let (minutes, regions, failed) = (minutes(b)?, strings(b, "region")?, ints(b, "failed_connacks")?);
            let (connects, connacks) = (ints(b, "connects")?, ints(b, "connacks")?);
            for i in 0..b.num_rows() {
                let key = (minutes.value(i), regions.value(i).to_string());
                let r = t.regions.entry(key.1.clone()).or_default();
                r.connacks += connacks.value(i);
                r.failed += failed.value(i);
                if key.0 > r.minute {
                    (r.minute, r.minute_connacks, r.minute_failed) = (key.0, 0, 0);
                }
                if key.0 == r.minute {
                    r.minute_connacks += connacks.value(i);
                    r.minute_failed += failed.value(i);
                }
                if connects.value(i) > 0 {
                    t.connects.insert(key.clone());
                }
                if failed.value(i) > 0 {
                    t.failures.insert(key);
                }
            }
        }
        for b in takeovers {
            let (minutes, clients) = (minutes(b)?, strings(b, "clientid")?);
            for i in 0..b.num_rows() {
                t.takeovers.insert((minutes.value(i), clients.value(i).to_string()));
            }
        }
        Ok(t)
    }

    /// Counts the batch's CONNACKs per region for Prometheus, once its rows are committed:
    /// `connaudit_connacks_total{region,outcome}` (the rate any window wants is their ratio,
    /// summed over the replicas) and `connaudit_region_failure_rate{region}`, the rate of the
    /// newest minute this replica counted.
    pub fn record_regions(&self) {
        for (region, r) in &self.regions {
            let region = region.clone();
            metrics::counter!(crate::metrics::CONNACKS, "region" => region.clone(), "outcome" => "failed")
                .increment(r.failed as u64);
            metrics::counter!(crate::metrics::CONNACKS, "region" => region.clone(), "outcome" => "accepted")
                .increment((r.connacks - r.failed) as u64);
            if r.minute_connacks > 0 {
                metrics::gauge!(crate::metrics::REGION_FAILURE_RATE, "region" => region)
                    .set(r.minute_failed as f64 / r.minute_connacks as f64);
            }
        }
    }

    pub fn has_failures(&self) -> bool {
        !self.failures.is_empty()
    }

    pub fn has_takeovers(&self) -> bool {
        !self.takeovers.is_empty()
    }

    pub fn has_connects(&self) -> bool {
        !self.connects.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty() && self.takeovers.is_empty() && self.connects.is_empty()
    }

    /// The UTC days (since the epoch) of the touched minutes: the `alerts` partitions to rewrite.
    pub fn days(&self) -> Vec<i32> {
        let all = self.failures.iter().chain(&self.takeovers).chain(&self.connects);
        let days: BTreeSet<i32> = all.map(|(m, _)| m.div_euclid(DAY_US) as i32).collect();
        days.into_iter().collect()
    }
}

/// The `alerts` rows of the touched days after counting the touched keys again over the
/// committed tables registered in `ctx` (`alerts`, `region_failures`, `events`), and the
/// alerts among them that are new. None when nothing changed.
pub async fn evaluate(
    ctx: &SessionContext,
    limits: &AlertConfig,
    touched: &Touched,
) -> Result<Option<(Vec<Alert>, Vec<Alert>)>> {
    let days = touched.days();
    // The touched days; a replay spanning more than a list should hold reads their range.
    let dates = match (days.first(), days.last()) {
        (Some(first), Some(last)) if days.len() > MAX_CLIENT_LIST => {
            format!("date BETWEEN DATE '{}' AND DATE '{}'", date(*first), date(*last))
        }
        _ => {
            format!("date IN ({})", days.iter().map(|d| format!("DATE '{}'", date(*d))).collect::<Vec<_>>().join(", "))
        }
    };
    let mut rows: BTreeMap<(&'static str, i64, String), Alert> = BTreeMap::new();
    let sql = format!("SELECT minute, kind, region, clientid, count, threshold, detail FROM alerts WHERE {dates}");
    for b in ctx.sql(&sql).await?.collect().await? {
        for a in from_batch(&b)? {
            rows.insert(a.key(), a);
        }
    }
    let mut counted = Vec::new();
    if let Some((from, to)) = span(&touched.failures) {
        let limit = limits.connack_failures_per_minute as i64;
        let sql = format!(
            "SELECT minute, region, CAST(sum(failed_connacks) AS BIGINT) AS count FROM region_failures \
             WHERE {dates} AND minute >= '{from}' AND minute < '{to}' GROUP BY minute, region \
             HAVING sum(failed_connacks) > {limit}"
        );
        for b in ctx.sql(&sql).await?.collect().await? {
            let (minutes, regions, counts) = (minutes(&b)?, strings(&b, "region")?, ints(&b, "count")?);
            for i in 0..b.num_rows() {
                if touched.failures.contains(&(minutes.value(i), regions.value(i).to_string())) {
                    counted.push(Alert {
                        minute: minutes.value(i) / 1000,
                        kind: CONNACK_FAILURES,
                        region: regions.value(i).to_string(),
                        clientid: None,
                        count: counts.value(i),
                        threshold: limit,
                        detail: None,
                    });
                }
            }
        }
    }
    counted.extend(storms::storms(ctx, limits, touched).await?);
    if let Some((from, to)) = span(&touched.takeovers) {
        let limit = limits.takeovers_per_minute as i64;
        let clients: BTreeSet<&str> = touched.takeovers.iter().map(|(_, c)| c.as_str()).collect();
        // A few clients: their bloom filters skip the files without them. Many: every file has
        // some of them, and an `IN` list that long becomes an expression as deep as the list
        // in Delta's predicate conversion (5,000 overflowed a worker's stack): count every
        // client of the span and keep the touched ones below.
        let by_client = if clients.len() <= MAX_CLIENT_LIST {
            let list = clients.iter().map(|c| format!("'{}'", c.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
            format!("AND clientid IN ({list})")
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT date_trunc('minute', ts) AS minute, clientid, max(region) AS region, count(*) AS count \
             FROM events WHERE {dates} AND ts >= '{from}' AND ts < '{to}' \
             {by_client} AND event = 'client.disconnected' AND category = 'session-conflict' \
             GROUP BY date_trunc('minute', ts), clientid HAVING count(*) > {limit}"
        );
        for b in ctx.sql(&sql).await?.collect().await? {
            let (minutes, clients, regions, counts) =
                (minutes(&b)?, strings(&b, "clientid")?, strings(&b, "region")?, ints(&b, "count")?);
            for i in 0..b.num_rows() {
                if touched.takeovers.contains(&(minutes.value(i), clients.value(i).to_string())) {
                    counted.push(Alert {
                        minute: minutes.value(i) / 1000,
                        kind: TAKEOVER_LOOP,
                        region: regions.value(i).to_string(),
                        clientid: Some(clients.value(i).to_string()),
                        count: counts.value(i),
                        threshold: limit,
                        detail: None,
                    });
                }
            }
        }
        name_peers(ctx, &dates, &from, &to, &mut counted).await?;
    }
    let mut new = Vec::new();
    let mut changed = false;
    for a in counted {
        match rows.get_mut(&a.key()) {
            // Counts only grow: this count was read after the one the row holds.
            Some(row) if row.count < a.count || (row.count == a.count && row.detail != a.detail) => {
                row.count = a.count;
                row.detail = a.detail;
                changed = true;
            }
            Some(_) => {}
            None => {
                new.push(a.clone());
                rows.insert(a.key(), a);
                changed = true;
            }
        }
    }
    Ok(changed.then(|| (rows.into_values().collect(), new)))
}

/// Names the peer addresses of each takeover alert's connects in its minute (the evidence of
/// a fight), read for the alerting clients only, a list at a time.
async fn name_peers(ctx: &SessionContext, dates: &str, from: &str, to: &str, alerts: &mut [Alert]) -> Result<()> {
    let clients: BTreeSet<String> =
        alerts.iter().filter(|a| a.kind == TAKEOVER_LOOP).filter_map(|a| a.clientid.clone()).collect();
    let clients: Vec<String> = clients.into_iter().collect();
    let mut peers: BTreeMap<(i64, String), String> = BTreeMap::new();
    for chunk in clients.chunks(MAX_CLIENT_LIST) {
        let list = chunk.iter().map(|c| format!("'{}'", c.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT date_trunc('minute', ts) AS minute, clientid, \
                    array_to_string(array_sort(array_agg(DISTINCT peer_ip)), ', ') AS peers \
             FROM events WHERE {dates} AND ts >= '{from}' AND ts < '{to}' AND clientid IN ({list}) \
               AND event = 'client.connected' AND peer_ip IS NOT NULL \
             GROUP BY date_trunc('minute', ts), clientid"
        );
        for b in ctx.sql(&sql).await?.collect().await? {
            let (minutes, ids, found) = (minutes(&b)?, strings(&b, "clientid")?, strings(&b, "peers")?);
            for i in 0..b.num_rows() {
                peers.insert((minutes.value(i) / 1000, ids.value(i).to_string()), found.value(i).to_string());
            }
        }
    }
    for a in alerts.iter_mut().filter(|a| a.kind == TAKEOVER_LOOP) {
        let key = (a.minute, a.clientid.clone().unwrap_or_default());
        a.detail = peers.get(&key).filter(|p| !p.is_empty()).map(|p| format!("peers {p}"));
    }
    Ok(())
}

fn time(us: i64) -> String {
    DateTime::from_timestamp_micros(us).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// From the start of the first minute of a set of keys to the end of the last, as RFC 3339.
fn span(keys: &BTreeSet<(i64, String)>) -> Option<(String, String)> {
    let from = keys.iter().map(|(m, _)| *m).min()?;
    let to = keys.iter().map(|(m, _)| *m).max()? + MINUTE_US;
    Some((time(from), time(to)))
}

fn date(day: i32) -> String {
    DateTime::from_timestamp_micros(i64::from(day) * DAY_US).unwrap_or_default().format("%Y-%m-%d").to_string()
}

/// A column of `b` cast to `to`; an error (never a panic) when the table lacks it.
fn column(b: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let column = b.column_by_name(name).ok_or_else(|| ArrowError::SchemaError(format!("no column {name}")))?;
    arrow::compute::cast(column, to)
}

/// `minute` in microseconds, whatever unit a table or a function returned it in.
fn minutes(b: &RecordBatch) -> Result<TimestampMicrosecondArray, ArrowError> {
    Ok(column(b, "minute", &ts_type())?.as_primitive::<TimestampMicrosecondType>().clone())
}

fn strings(b: &RecordBatch, name: &str) -> Result<StringArray, ArrowError> {
    Ok(column(b, name, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn ints(b: &RecordBatch, name: &str) -> Result<Int64Array, ArrowError> {
    Ok(column(b, name, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

fn from_batch(b: &RecordBatch) -> Result<Vec<Alert>, ArrowError> {
    let (minutes, kinds, regions, clients) =
        (minutes(b)?, strings(b, "kind")?, strings(b, "region")?, strings(b, "clientid")?);
    let (counts, thresholds) = (ints(b, "count")?, ints(b, "threshold")?);
    // Rows written before the column existed read it as null.
    let details = match b.column_by_name("detail") {
        Some(_) => strings(b, "detail")?,
        None => StringArray::new_null(b.num_rows()),
    };
    Ok((0..b.num_rows())
        .map(|i| Alert {
            minute: minutes.value(i) / 1000,
            kind: [TAKEOVER_LOOP, RECONNECT_STORM]
                .into_iter()
                .find(|k| *k == kinds.value(i))
                .unwrap_or(CONNACK_FAILURES),
            detail: details.is_valid(i).then(|| details.value(i).to_string()),
            region: regions.value(i).to_string(),
            clientid: clients.is_valid(i).then(|| clients.value(i).to_string()),
            count: counts.value(i),
            threshold: thresholds.value(i),
        })
        .collect())
}

/// The alerts as a record batch of the `alerts` table.
pub fn to_batch(alerts: &[Alert]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let minute = TimestampMicrosecondArray::from(alerts.iter().map(|a| a.minute * 1000).collect::<Vec<_>>())
        .with_timezone("UTC");
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(minute),
        Arc::new(StringArray::from_iter_values(alerts.iter().map(|a| a.kind))),
        Arc::new(StringArray::from_iter_values(alerts.iter().map(|a| a.region.as_str()))),
        Arc::new(StringArray::from_iter(alerts.iter().map(|a| a.clientid.as_deref()))),
        Arc::new(Int64Array::from_iter_values(alerts.iter().map(|a| a.count))),
        Arc::new(Int64Array::from_iter_values(alerts.iter().map(|a| a.threshold))),
        Arc::new(StringArray::from_iter(alerts.iter().map(|a| a.detail.as_deref()))),
    ];
    RecordBatch::try_new(connaudit_warehouse::ALERTS.file_schema(), columns)
}

#[cfg(test)]
mod tests;
