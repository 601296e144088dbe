//! The one list of warehouse tables: name, columns, time column, sort order. The transformer
//! writes them, the query CLI and serve read them, compaction rewrites them; adding a table
//! means one entry here.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Every table is partitioned by this column, the UTC date of its time column.
pub const PARTITION: &str = "date";

/// Delta's `timestamp`: microseconds in UTC, read as such by Spark, Trino, Athena and DuckDB.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// The timestamp that decides the row's `date` partition and the query window.
    pub time: &'static str,
    /// The order compaction writes a closed day in (and the transformer a batch of events).
    pub sort: &'static [&'static str],
    /// A column with a bloom filter in every file, for lookups of one value.
    pub bloom: Option<&'static str>,
    columns: fn() -> Vec<Field>,
}

impl PartialEq for Table {
    /// Tables are the statics below; one name, one table.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Table {
    /// The columns of the table's data files (without `date`, which lives in the Delta log).
    pub fn file_schema(&self) -> SchemaRef {
        Arc::new(Schema::new((self.columns)()))
    }

    /// The columns of the Delta table: the file columns, then `date`.
    pub fn schema(&self) -> SchemaRef {
        let mut fields = (self.columns)();
        fields.push(Field::new(PARTITION, DataType::Date32, false));
        Arc::new(Schema::new(fields))
    }
}

pub static EVENTS: Table = Table {
    name: "events",
    time: "ts",
    sort: &["clientid", "ts", "kafka_partition", "kafka_offset"],
    bloom: Some("clientid"),
    columns: events,
};
/// One row per ended session, written when its end is known: a disconnect, or a later connect
/// of the client that proves the disconnect was lost (`end_reason = 'missing'`).
pub static SESSIONS: Table = Table {
    name: "sessions",
    time: "ended_at",
    sort: &["clientid", "ended_at", "kafka_partition", "kafka_offset"],
    bloom: Some("clientid"),
    columns: sessions,
};
pub static CONNACK_REASONS: Table =
    Table { name: "connack_reasons", time: "minute", sort: &["minute", "region"], bloom: None, columns: connacks };
pub static DISCONNECT_REASONS: Table = Table {
    name: "disconnect_reasons",
    time: "minute",
    sort: &["minute", "region"],
    bloom: None,
    columns: disconnects,
};
pub static REGION_FAILURES: Table =
    Table { name: "region_failures", time: "minute", sort: &["minute", "region"], bloom: None, columns: failures };
pub static ALERTS: Table =
    Table { name: "alerts", time: "minute", sort: &["minute", "kind"], bloom: None, columns: alerts };

/// Every table, in the order the transformer commits a batch to them.
pub static TABLES: [&Table; 6] = [&EVENTS, &SESSIONS, &CONNACK_REASONS, &DISCONNECT_REASONS, &REGION_FAILURES, &ALERTS];

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().copied().find(|t| t.name == name)
}

/// The schema of `events` files, shared by the writer's builders.
pub fn events_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| EVENTS.file_schema());
    SCHEMA.clone()
}

fn f(name: &str, t: DataType, nullable: bool) -> Field {
    Field::new(name, t, nullable)
}

fn events() -> Vec<Field> {
    vec![
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
        // Null in rows written before they existed (a table upgraded in place).
        f("fingerprint", DataType::Int64, true),
        f("broker", DataType::Utf8, true),
        f("initiator", DataType::Utf8, true),
        // A JSON object of strings: client_attrs, User-Properties, AWS's principal.
        f("attributes", DataType::Utf8, true),
        // The broker's name for the connection (AWS's sessionIdentifier), pairing its events.
        f("session_id", DataType::Utf8, true),
    ]
}

fn sessions() -> Vec<Field> {
    vec![
        f("clientid", DataType::Utf8, false),
        f("username", DataType::Utf8, true),
        f("broker", DataType::Utf8, true),
        f("node", DataType::Utf8, true),
        f("region", DataType::Utf8, false),
        f("peer_ip", DataType::Utf8, true),
        f("peer_port", DataType::Int32, true),
        // Null when neither event said (a disconnect whose connect was never seen).
        f("connected_at", ts_type(), true),
        // Null when the end is unknown (`missing`).
        f("disconnected_at", ts_type(), true),
        // The time of the event that ended the session or proved it over: never null.
        f("ended_at", ts_type(), false),
        f("session_ms", DataType::Int64, true),
        f("end_reason", DataType::Utf8, false),
        f("end_category", DataType::Utf8, true),
        f("abnormal", DataType::Boolean, true),
        f("ended_by", DataType::Utf8, true),
        // The record that ended it, and the connect that began it (null when not seen).
        f("kafka_partition", DataType::Int32, false),
        f("kafka_offset", DataType::Int64, false),
        f("connect_offset", DataType::Int64, true),
        f("attributes", DataType::Utf8, true),
    ]
}

fn connacks() -> Vec<Field> {
    vec![
        f("minute", ts_type(), true),
        f("region", DataType::Utf8, true),
        f("proto_ver", DataType::Int32, true),
        f("reason", DataType::Utf8, true),
        f("reason_code", DataType::Int32, true),
        f("category", DataType::Utf8, true),
        f("is_failure", DataType::Boolean, true),
        f("count", DataType::Int64, true),
    ]
}

fn disconnects() -> Vec<Field> {
    vec![
        f("minute", ts_type(), true),
        f("region", DataType::Utf8, true),
        f("reason", DataType::Utf8, true),
        f("reason_code", DataType::Int32, true),
        f("category", DataType::Utf8, true),
        f("abnormal", DataType::Boolean, true),
        f("count", DataType::Int64, true),
        // Who ended the connections (null in rows written before it existed).
        f("initiator", DataType::Utf8, true),
    ]
}

fn failures() -> Vec<Field> {
    vec![
        f("minute", ts_type(), true),
        f("region", DataType::Utf8, true),
        f("connacks", DataType::Int64, true),
        f("failed_connacks", DataType::Int64, true),
        f("connects", DataType::Int64, true),
        f("disconnects", DataType::Int64, true),
        f("abnormal_disconnects", DataType::Int64, true),
    ]
}

fn alerts() -> Vec<Field> {
    vec![
        f("minute", ts_type(), false),
        f("kind", DataType::Utf8, false),
        f("region", DataType::Utf8, false),
        f("clientid", DataType::Utf8, true),
        f("count", DataType::Int64, false),
        f("threshold", DataType::Int64, false),
        // The evidence: a takeover fight's peer addresses, a storm's baseline (null in rows
        // written before it existed).
        f("detail", DataType::Utf8, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_time_and_sort_columns_and_a_date() {
        for t in TABLES {
            let s = t.schema();
            assert!(s.field_with_name(t.time).is_ok(), "{}", t.name);
            assert!(t.sort.iter().all(|c| s.field_with_name(c).is_ok()), "{}", t.name);
            assert_eq!(s.fields().last().unwrap().name(), PARTITION);
            assert!(t.file_schema().field_with_name(PARTITION).is_err());
        }
        assert_eq!(table("alerts").map(|t| t.name), Some("alerts"));
    }
}
