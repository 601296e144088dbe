//! The `sessions` table's side in Arrow: the open sessions replayed from rows read back from
//! `events`, and ended sessions as a record batch of the table.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, Int64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow::error::ArrowError;
use connaudit_model::EventType;
use connaudit_warehouse::{ts_type, LIFECYCLE, SESSIONS};

use super::{Session, Step, Tracker};
use crate::error::Result;

/// Replays rows read back from `events` (the columns of [`LIFECYCLE`]) into `tracker`. Each
/// column is cast to the type read here first: a table written otherwise is an error, not a
/// panic.
pub fn replay(tracker: &mut Tracker, batches: &[RecordBatch]) -> Result<()> {
    for b in batches {
        let col = |name: &str, to: &DataType| -> Result<ArrayRef> {
            let i = LIFECYCLE.iter().position(|c| *c == name).expect("a lifecycle column");
            let column = b.columns().get(i).ok_or_else(|| ArrowError::SchemaError(format!("no column {name}")))?;
            Ok(cast(column, to)?)
        };
        let text = |name: &str| -> Result<StringArray> { Ok(col(name, &DataType::Utf8)?.as_string::<i32>().clone()) };
        let (event, clientid, username, broker, node) =
            (text("event")?, text("clientid")?, text("username")?, text("broker")?, text("node")?);
        let (region, peer_ip, reason, category, initiator) =
            (text("region")?, text("peer_ip")?, text("reason")?, text("category")?, text("initiator")?);
        let (attributes, session_id) = (text("attributes")?, text("session_id")?);
        let peer_port = col("peer_port", &DataType::Int32)?.as_primitive::<Int32Type>().clone();
        let time = |name: &str| -> Result<TimestampMicrosecondArray> {
            Ok(col(name, &ts_type())?.as_primitive::<TimestampMicrosecondType>().clone())
        };
        let (ts, connected_at, disconnected_at) = (time("ts")?, time("connected_at")?, time("disconnected_at")?);
        let abnormal = col("is_failure", &DataType::Boolean)?.as_boolean().clone();
        let offset = col("kafka_offset", &DataType::Int64)?.as_primitive::<Int64Type>().clone();
        let ms = |a: &TimestampMicrosecondArray, i: usize| a.is_valid(i).then(|| a.value(i) / 1000);
        let mut ended = Vec::new();
        for i in 0..b.num_rows() {
            let step = Step {
                connect: event.value(i) == EventType::Connected.as_str(),
                clientid: clientid.value(i),
                username: opt(&username, i),
                broker: opt(&broker, i),
                node: opt(&node, i),
                region: region.value(i),
                peer_ip: opt(&peer_ip, i),
                peer_port: peer_port.is_valid(i).then(|| peer_port.value(i)),
                ts: ts.value(i) / 1000,
                connected_at: ms(&connected_at, i),
                disconnected_at: ms(&disconnected_at, i),
                reason: opt(&reason, i),
                category: opt(&category, i),
                abnormal: abnormal.value(i),
                initiator: opt(&initiator, i),
                offset: offset.value(i),
                attributes: opt(&attributes, i),
                session_id: opt(&session_id, i),
            };
            tracker.step(&step, &mut ended);
            ended.clear();
        }
    }
    tracker.sweep();
    Ok(())
}

fn opt(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

/// The `sessions` rows (without `date`), in the order given.
pub fn to_batch(sessions: &[Session<'_>]) -> Result<RecordBatch> {
    let n = sessions.len();
    let strings = |f: &dyn for<'s> Fn(&'s Session<'s>) -> Option<&'s str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        sessions.iter().for_each(|s| b.append_option(f(s)));
        Arc::new(b.finish())
    };
    let times = |f: &dyn Fn(&Session<'_>) -> Option<i64>| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_data_type(ts_type());
        sessions.iter().for_each(|s| b.append_option(f(s).map(|ms| ms * 1000)));
        Arc::new(b.finish())
    };
    let ints = |f: &dyn Fn(&Session<'_>) -> Option<i64>| -> ArrayRef {
        let mut b = Int64Builder::with_capacity(n);
        sessions.iter().for_each(|s| b.append_option(f(s)));
        Arc::new(b.finish())
    };
    let ints32 = |f: &dyn Fn(&Session<'_>) -> Option<i32>| -> ArrayRef {
        let mut b = Int32Builder::with_capacity(n);
        sessions.iter().for_each(|s| b.append_option(f(s)));
        Arc::new(b.finish())
    };
    let mut abnormal = BooleanBuilder::with_capacity(n);
    sessions.iter().for_each(|s| abnormal.append_option(s.abnormal));
    let columns: Vec<ArrayRef> = vec![
        strings(&|s| Some(&*s.clientid)),
        strings(&|s| s.username.as_deref()),
        strings(&|s| s.broker.as_deref()),
        strings(&|s| s.node.as_deref()),
        strings(&|s| Some(&*s.region)),
        strings(&|s| s.peer_ip.as_deref()),
        ints32(&|s| s.peer_port),
        times(&|s| s.connected_at),
        times(&|s| s.disconnected_at),
        times(&|s| Some(s.ended_at)),
        ints(&|s| s.session_ms),
        strings(&|s| Some(&*s.end_reason)),
        strings(&|s| s.end_category.as_deref()),
        Arc::new(abnormal.finish()),
        strings(&|s| s.ended_by.as_deref()),
        ints32(&|s| Some(s.kafka_partition)),
        ints(&|s| Some(s.kafka_offset)),
        ints(&|s| s.connect_offset),
        strings(&|s| s.attributes.as_deref()),
    ];
    Ok(RecordBatch::try_new(SESSIONS.file_schema(), columns)?)
}
