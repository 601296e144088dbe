//! The `events` table: how rows become a record batch of its columns (declared in
//! `connaudit-warehouse`).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use connaudit_warehouse::events_schema as schema;

use crate::row::Row;

/// Milliseconds (what events carry) to the table's microseconds.
fn us(ms: i64) -> i64 {
    ms.saturating_mul(1000)
}

/// Builds one record batch from rows, in the order given.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = rows.len();
    let strings = || StringBuilder::with_capacity(n, n * 16);
    let (mut event, mut clientid, mut username, mut peer_ip, mut node) =
        (strings(), strings(), strings(), strings(), strings());
    let (mut region, mut proto_name, mut reason, mut category) = (strings(), strings(), strings(), strings());
    let (mut broker, mut initiator, mut attributes, mut session_id) = (strings(), strings(), strings(), strings());
    let ts_col = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut ts, mut connected_at, mut disconnected_at) = (ts_col(), ts_col(), ts_col());
    let i32s = || Int32Builder::with_capacity(n);
    let (mut peer_port, mut proto_ver, mut reason_code, mut keepalive, mut partition) =
        (i32s(), i32s(), i32s(), i32s(), i32s());
    let i64s = || Int64Builder::with_capacity(n);
    let (mut expiry, mut session_ms, mut offset, mut fingerprint) = (i64s(), i64s(), i64s(), i64s());
    let (mut is_failure, mut clean_start) = (BooleanBuilder::with_capacity(n), BooleanBuilder::with_capacity(n));
    for r in rows {
        event.append_value(r.event.as_str());
        ts.append_value(us(r.ts));
        clientid.append_value(&r.clientid);
        username.append_option(r.username.as_deref());
        peer_ip.append_option(r.peer_ip.as_deref());
        peer_port.append_option(r.peer_port);
        node.append_option(r.node.as_deref());
        region.append_value(&r.region);
        proto_name.append_option(r.proto_name.as_deref());
        proto_ver.append_option(r.proto_ver);
        reason.append_option(r.reason.as_deref());
        reason_code.append_option(r.reason_code);
        category.append_option(r.category);
        is_failure.append_value(r.is_failure);
        keepalive.append_option(r.keepalive);
        clean_start.append_option(r.clean_start);
        expiry.append_option(r.expiry_interval);
        connected_at.append_option(r.connected_at.map(us));
        disconnected_at.append_option(r.disconnected_at.map(us));
        session_ms.append_option(r.session_ms);
        partition.append_value(r.kafka_partition);
        offset.append_value(r.kafka_offset);
        fingerprint.append_option(r.fingerprint);
        broker.append_value(r.broker);
        initiator.append_option(r.initiator);
        attributes.append_option(r.attributes.as_deref());
        session_id.append_option(r.session_id.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(event.finish()),
        Arc::new(ts.finish()),
        Arc::new(clientid.finish()),
        Arc::new(username.finish()),
        Arc::new(peer_ip.finish()),
        Arc::new(peer_port.finish()),
        Arc::new(node.finish()),
        Arc::new(region.finish()),
        Arc::new(proto_name.finish()),
        Arc::new(proto_ver.finish()),
        Arc::new(reason.finish()),
        Arc::new(reason_code.finish()),
        Arc::new(category.finish()),
        Arc::new(is_failure.finish()),
        Arc::new(keepalive.finish()),
        Arc::new(clean_start.finish()),
        Arc::new(expiry.finish()),
        Arc::new(connected_at.finish()),
        Arc::new(disconnected_at.finish()),
        Arc::new(session_ms.finish()),
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        Arc::new(fingerprint.finish()),
        Arc::new(broker.finish()),
        Arc::new(initiator.finish()),
        Arc::new(attributes.finish()),
        Arc::new(session_id.finish()),
    ];
    RecordBatch::try_new(schema(), columns)
}
