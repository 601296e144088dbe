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
pub fn to_batch<'a>(
    rows: impl IntoIterator<Item = &'a Row, IntoIter: ExactSizeIterator>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let rows = rows.into_iter();
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
    let (mut expiry, mut session_ms, mut offset) = (i64s(), i64s(), i64s());
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
        // Not stored: computed from the row's columns where the dedup window needs it
        // (`connaudit_warehouse::fingerprint`); the column stays for rows written before.
        arrow::array::new_null_array(&arrow::datatypes::DataType::Int64, n),
        Arc::new(broker.finish()),
        Arc::new(initiator.finish()),
        Arc::new(attributes.finish()),
        Arc::new(session_id.finish()),
    ];
    RecordBatch::try_new(schema(), columns)
}

#[cfg(test)]
mod tests {
    use arrow::array::Array;
    use connaudit_model::TopicMap;

    use super::*;
    use crate::regions::RegionMap;
    use crate::row::Origin;

    /// The fingerprint transform computes as it parses a record is the one computed from the
    /// row the table holds, which is what a window read back after a restart compares with.
    #[test]
    fn fingerprints_from_the_row_and_from_the_table_agree() {
        let payloads = [
            r#"{"event":"client.connack","clientid":"c1","reason_code":5,"proto_ver":4,"peername":"10.1.2.3:5555","timestamp":1700000000123,"node":"emqx@a"}"#,
            r#"{"clientid":"c2","reason":"keepalive_timeout","connected_at":1700000001000,"disconnected_at":1700000061000,"peername":"[2001:db8::1]:1883","client_attrs":{"region":"ap","fw":"1.2"}}"#,
            r#"{"event":"client.connected","clientid":"c3","username":"u","keepalive":30,"clean_start":true,"proto_ver":5,"proto_name":"MQTT","expiry_interval":7200,"connected_at":1700000002000}"#,
            r#"{"event":"client.connected","clientid":"c3","username":"u","keepalive":31,"clean_start":false,"proto_ver":5,"connected_at":1700000002000}"#,
        ];
        let rows: Vec<Row> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let origin = Origin { partition: 1, offset: i as i64, ..Default::default() };
                Row::parse(p.as_bytes(), &origin, &TopicMap::default(), &RegionMap::default()).unwrap()
            })
            .collect();
        let batch = to_batch(&rows).unwrap();
        let from_table = connaudit_warehouse::fingerprint::of_batch(&batch).unwrap();
        let from_rows: Vec<i64> = rows.iter().map(|r| r.fingerprint.expect("each has a time of its own")).collect();
        assert_eq!(from_table, from_rows);
        assert_eq!(from_rows.iter().collect::<std::collections::HashSet<_>>().len(), rows.len());
        assert_eq!(batch.column_by_name("fingerprint").unwrap().null_count(), rows.len(), "not stored");
    }
}
