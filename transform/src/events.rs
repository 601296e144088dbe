//! The `events` table: its Arrow schema and how rows become a record batch.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::row::Row;

/// Millisecond timestamps in UTC: Spark, Athena and Trino read them; nanoseconds they do not.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The schema of every file under `events/`. The Hive partition columns `date` and `hour`
/// live in the directory names, not in the files.
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
        Arc::new(Schema::new(vec![
            f("event", DataType::Utf8, false),
            f("ts", ts_type(), false),
            f("clientid", DataType::Utf8, false),
            f("username", DataType::Utf8, true),
            f("peer_ip", DataType::Utf8, true),
            f("peer_port", DataType::Int32, true),
            f("node", DataType::Utf8, true),
            f("region", DataType::Utf8, false),
            f("proto_name", DataType::Utf8, true),
            f("proto_ver", DataType::Int32, true),
            f("reason", DataType::Utf8, true),
            f("reason_code", DataType::Int32, true),
            f("category", DataType::Utf8, true),
            f("is_failure", DataType::Boolean, false),
            f("keepalive", DataType::Int32, true),
            f("clean_start", DataType::Boolean, true),
            f("expiry_interval", DataType::Int64, true),
            f("connected_at", ts_type(), true),
            f("disconnected_at", ts_type(), true),
            f("session_ms", DataType::Int64, true),
            f("kafka_partition", DataType::Int32, false),
            f("kafka_offset", DataType::Int64, false),
        ]))
    });
    SCHEMA.clone()
}

/// Builds one record batch from rows, in the order given.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = rows.len();
    let strings = || StringBuilder::with_capacity(n, n * 16);
    let (mut event, mut clientid, mut username, mut peer_ip, mut node) =
        (strings(), strings(), strings(), strings(), strings());
    let (mut region, mut proto_name, mut reason, mut category) = (strings(), strings(), strings(), strings());
    let ts_col = || TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut ts, mut connected_at, mut disconnected_at) = (ts_col(), ts_col(), ts_col());
    let i32s = || Int32Builder::with_capacity(n);
    let (mut peer_port, mut proto_ver, mut reason_code, mut keepalive, mut partition) =
        (i32s(), i32s(), i32s(), i32s(), i32s());
    let i64s = || Int64Builder::with_capacity(n);
    let (mut expiry, mut session_ms, mut offset) = (i64s(), i64s(), i64s());
    let (mut is_failure, mut clean_start) = (BooleanBuilder::with_capacity(n), BooleanBuilder::with_capacity(n));
    for r in rows {
        event.append_value(r.event.as_str());
        ts.append_value(r.ts);
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
        connected_at.append_option(r.connected_at);
        disconnected_at.append_option(r.disconnected_at);
        session_ms.append_option(r.session_ms);
        partition.append_value(r.kafka_partition);
        offset.append_value(r.kafka_offset);
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
    ];
    RecordBatch::try_new(schema(), columns)
}
