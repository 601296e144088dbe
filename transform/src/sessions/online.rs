//! A batch's changes to `online_hours`: each connect counted open under its hour, each ended
//! session counted under the hours it began and ended in, and its connect's open count taken
//! back. Each change keeps the offset of the record it came from, so a replayed batch adds
//! only what the table is missing; the writer sums them per key.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimestampMicrosecondType};
use connaudit_model::EventType;
use connaudit_warehouse::{ts_type, ONLINE_HOURS};

use super::Session;
use crate::error::Result;
use crate::row::Row;

const HOUR_MS: i64 = 3_600_000;

/// One change: `sessions` more (or fewer) under `(region, from, until)`, from the record at
/// `offset`; times in milliseconds, already hours.
struct Change<'a> {
    region: &'a str,
    from: i64,
    until: Option<i64>,
    sessions: i64,
    offset: i64,
}

/// The changes of a batch's `rows` (connects) and the `ended` sessions they ended: columns
/// `region, online_from, online_until, hour, sessions, kafka_offset`.
pub fn changes(rows: &[Row], ended: &[Session<'_>]) -> Result<RecordBatch> {
    let mut out = Vec::with_capacity(ended.len() * 2 + rows.len() / 3);
    for r in rows.iter().filter(|r| r.event == EventType::Connected) {
        out.push(Change { region: &r.region, from: hour(r.ts), until: None, sessions: 1, offset: r.kafka_offset });
    }
    for s in ended {
        if let Some((ts, region)) = &s.connect {
            out.push(Change { region, from: hour(*ts), until: None, sessions: -1, offset: s.kafka_offset });
        }
        // The span `online_spans` gives it: from its beginning, else its end, to its end.
        let from = hour(s.connected_at.unwrap_or(s.ended_at));
        let until = hour(s.disconnected_at.unwrap_or(s.ended_at));
        out.push(Change { region: &s.region, from, until: Some(until), sessions: 1, offset: s.kafka_offset });
    }
    to_batch(&out)
}

/// The rows of `online_hours` from `changes` (as [`changes`] made them, maybe fewer): summed
/// per key, the keys that sum to nothing left out, in the table's order (hour, region).
pub fn summed(changes: &RecordBatch) -> Result<RecordBatch> {
    let column = |i: usize| changes.column(i);
    let region = column(0).as_string::<i32>();
    let (from, until, hour) = (
        column(1).as_primitive::<TimestampMicrosecondType>(),
        column(2).as_primitive::<TimestampMicrosecondType>(),
        column(3).as_primitive::<TimestampMicrosecondType>(),
    );
    let sessions = column(4).as_primitive::<Int64Type>();
    let mut sums: BTreeMap<(i64, &str, i64, Option<i64>), i64> = BTreeMap::new();
    for i in 0..changes.num_rows() {
        let until = until.is_valid(i).then(|| until.value(i));
        *sums.entry((hour.value(i), region.value(i), from.value(i), until)).or_default() += sessions.value(i);
    }
    sums.retain(|_, n| *n != 0);
    let rows = sums.into_iter().map(|((_, region, from, until), n)| (region, from, until, n));
    Ok(RecordBatch::try_new(ONLINE_HOURS.file_schema(), columns(rows))?)
}

fn hour(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// The changes with the table's columns and each one's `kafka_offset`.
fn to_batch(changes: &[Change<'_>]) -> Result<RecordBatch> {
    let rows = changes.iter().map(|c| (c.region, c.from * 1000, c.until.map(|u| u * 1000), c.sessions));
    let mut columns = columns(rows);
    columns.push(Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.offset))));
    let mut fields: Vec<Field> = ONLINE_HOURS.file_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("kafka_offset", DataType::Int64, false));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// The table's columns of rows `(region, from, until, sessions)`, times in microseconds; a
/// row's `hour` is its `until`, else its `from`.
fn columns<'a>(rows: impl ExactSizeIterator<Item = (&'a str, i64, Option<i64>, i64)>) -> Vec<ArrayRef> {
    let n = rows.len();
    let mut region = StringBuilder::with_capacity(n, n * 8);
    let time = || TimestampMicrosecondBuilder::with_capacity(n).with_data_type(ts_type());
    let (mut from, mut until, mut hour) = (time(), time(), time());
    let mut sessions = Int64Builder::with_capacity(n);
    for (r, f, u, s) in rows {
        region.append_value(r);
        from.append_value(f);
        until.append_option(u);
        hour.append_value(u.unwrap_or(f));
        sessions.append_value(s);
    }
    vec![
        Arc::new(region.finish()),
        Arc::new(from.finish()),
        Arc::new(until.finish()),
        Arc::new(hour.finish()),
        Arc::new(sessions.finish()),
    ]
}
