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
    /// What a row is: the table's comment in `serve`'s catalog.
    pub about: &'static str,
    /// Which retention keeps it: `connaudit compact --retain-events` or `--retain-aggregates`.
    pub kept: Kept,
    columns: fn() -> Vec<Column>,
}

/// The two retentions: rows of one client (events, sessions) and counts (aggregates, alerts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    WithEvents,
    WithAggregates,
}

/// A column of the contract: its Arrow field and what it holds (its comment in `serve`'s
/// catalog, which BI tools show beside the column).
#[derive(Debug)]
pub struct Column {
    pub field: Field,
    pub comment: &'static str,
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
        Arc::new(Schema::new((self.columns)().into_iter().map(|c| c.field).collect::<Vec<_>>()))
    }

    /// The columns of the Delta table: the file columns, then `date`.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.columns().into_iter().map(|c| c.field).collect::<Vec<_>>()))
    }

    /// Whether the table holds a client id (and then the rows `connaudit forget` erases).
    pub fn holds_clients(&self) -> bool {
        (self.columns)().iter().any(|c| c.field.name() == "clientid")
    }

    /// The columns of the Delta table with their comments, in [`Table::schema`]'s order.
    pub fn columns(&self) -> Vec<Column> {
        let mut columns = (self.columns)();
        let comment = "The UTC date of the row's time column: the partition the row is stored in.";
        columns.push(Column { field: Field::new(PARTITION, DataType::Date32, false), comment });
        columns
    }
}

pub static EVENTS: Table = Table {
    name: "events",
    time: "ts",
    // Event type first: most panels and audits read one or two types, which then lie in runs
    // the page index skips (on 2.3 million events over 7 days, DataFusion 55: CONNACKs counted
    // in 9-11 ms against 46-52 sorted by client first); a client's history is three runs, each
    // found through the page index and the bloom filter as before.
    sort: &["event", "clientid", "ts", "kafka_partition", "kafka_offset"],
    bloom: Some("clientid"),
    about: "One row per client lifecycle event a broker announced: CONNACK, connect, disconnect.",
    kept: Kept::WithEvents,
    columns: events,
};
/// One row per ended session, written when its end is known: a disconnect, or a later connect
/// of the client that proves the disconnect was lost (`end_reason = 'missing'`).
pub static SESSIONS: Table = Table {
    name: "sessions",
    time: "ended_at",
    sort: &["clientid", "ended_at", "kafka_partition", "kafka_offset"],
    bloom: Some("clientid"),
    about: "One row per ended session: a connect paired with the disconnect (or later connect) that ended it.",
    kept: Kept::WithEvents,
    columns: sessions,
};
/// Sessions counted by the hour they began and ended in, per region: what the devices online
/// per hour add up from, without reading `events`. A connect adds 1 under its hour with
/// `online_until` null (open); the session that ends it takes that 1 back and adds 1 under
/// its begin and end hours. Rows are changes: a reader sums them.
pub static ONLINE_HOURS: Table = Table {
    name: "online_hours",
    time: "hour",
    sort: &["hour", "region"],
    bloom: None,
    about:
        "Sessions per region and the hours they began and ended in (online_until null: still open); rows are summed.",
    kept: Kept::WithAggregates,
    columns: online_hours,
};
pub static CONNACK_REASONS: Table = Table {
    name: "connack_reasons",
    time: "minute",
    sort: &["minute", "region"],
    bloom: None,
    about: "CONNACKs per minute, region, protocol version and reason.",
    kept: Kept::WithAggregates,
    columns: connacks,
};
pub static DISCONNECT_REASONS: Table = Table {
    name: "disconnect_reasons",
    time: "minute",
    sort: &["minute", "region"],
    bloom: None,
    about: "Disconnects per minute, region, reason and initiator.",
    kept: Kept::WithAggregates,
    columns: disconnects,
};
pub static REGION_FAILURES: Table = Table {
    name: "region_failures",
    time: "minute",
    sort: &["minute", "region"],
    bloom: None,
    about: "Connection attempts and failures per minute and region.",
    kept: Kept::WithAggregates,
    columns: failures,
};
pub static ALERTS: Table = Table {
    name: "alerts",
    time: "minute",
    sort: &["minute", "kind"],
    bloom: None,
    about: "Alerts per minute: connack_failures, takeover_loop (a client id fought over), reconnect_storm.",
    kept: Kept::WithAggregates,
    columns: alerts,
};

/// Every table, in the order the transformer commits a batch to them.
pub static TABLES: [&Table; 7] =
    [&EVENTS, &SESSIONS, &ONLINE_HOURS, &CONNACK_REASONS, &DISCONNECT_REASONS, &REGION_FAILURES, &ALERTS];

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().copied().find(|t| t.name == name)
}

/// The schema of `events` files, shared by the writer's builders.
pub fn events_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| EVENTS.file_schema());
    SCHEMA.clone()
}

fn f(name: &str, t: DataType, nullable: bool, comment: &'static str) -> Column {
    Column { field: Field::new(name, t, nullable), comment }
}

fn events() -> Vec<Column> {
    vec![
        f("event", DataType::Utf8, false, "What happened: connack, connected or disconnected."),
        f("ts", ts_type(), false, "When the broker says it happened (UTC)."),
        f("clientid", DataType::Utf8, false, "The MQTT client id."),
        f("username", DataType::Utf8, true, "The user name the client logged in with."),
        f("peer_ip", DataType::Utf8, true, "The client's address as the broker saw it."),
        f("peer_port", DataType::Int32, true, "The client's port as the broker saw it."),
        f("node", DataType::Utf8, true, "The broker node the client reached."),
        f(
            "region",
            DataType::Utf8,
            false,
            "The region: the broker's, else by peer address (--regions), else by node, else 'unknown'.",
        ),
        f("proto_name", DataType::Utf8, true, "The protocol name the client sent (MQTT, MQIsdp)."),
        f("proto_ver", DataType::Int32, true, "The MQTT protocol version: 3, 4 (3.1.1) or 5."),
        f("reason", DataType::Utf8, true, "The CONNACK or disconnect reason, by its name in reason_catalog."),
        f("reason_code", DataType::Int32, true, "The reason's code as the protocol version numbers it."),
        f("category", DataType::Utf8, true, "The reason's category in reason_catalog (auth, network, ...)."),
        f("is_failure", DataType::Boolean, false, "A CONNACK that refused the client, or an abnormal disconnect."),
        f("keepalive", DataType::Int32, true, "The keep-alive interval the client asked for, in seconds."),
        f("clean_start", DataType::Boolean, true, "Whether the client asked for a clean start (clean session)."),
        f("expiry_interval", DataType::Int64, true, "The session expiry interval the client asked for, in seconds."),
        f("connected_at", ts_type(), true, "When the connection began, as the broker says (UTC)."),
        f("disconnected_at", ts_type(), true, "When the connection ended, as the broker says (UTC)."),
        f("session_ms", DataType::Int64, true, "How long the connection lasted, in milliseconds (disconnects)."),
        f("kafka_partition", DataType::Int32, false, "The Kafka partition the event was read from."),
        f("kafka_offset", DataType::Int64, false, "The Kafka offset of the event: with the partition, its identity."),
        // Null in rows written before they existed (a table upgraded in place).
        f(
            "fingerprint",
            DataType::Int64,
            true,
            "Null: no longer stored (transform computes an event's fingerprint from its columns); rows of earlier versions hold a hash of their payload until compaction.",
        ),
        f("broker", DataType::Utf8, true, "Whose format the event came in: emqx, aws-iot, azure, hivemq, vernemq."),
        f("initiator", DataType::Utf8, true, "Who ended the connection: client, server, network, admin, unknown."),
        // A JSON object of strings: client_attrs, User-Properties, AWS's principal.
        f("attributes", DataType::Utf8, true, "Further attributes the broker sent, as a JSON object of strings."),
        // The broker's name for the connection (AWS's sessionIdentifier), pairing its events.
        f("session_id", DataType::Utf8, true, "The broker's name for the connection, pairing its events."),
    ]
}

fn sessions() -> Vec<Column> {
    vec![
        f("clientid", DataType::Utf8, false, "The MQTT client id."),
        f("username", DataType::Utf8, true, "The user name the client logged in with."),
        f("broker", DataType::Utf8, true, "Whose format the events came in."),
        f("node", DataType::Utf8, true, "The broker node the client was connected to."),
        f("region", DataType::Utf8, false, "The region of the session's client, as in events."),
        f("peer_ip", DataType::Utf8, true, "The client's address."),
        f("peer_port", DataType::Int32, true, "The client's port."),
        // Null when neither event said (a disconnect whose connect was never seen).
        f("connected_at", ts_type(), true, "When the session began (null when its connect was never seen)."),
        // Null when the end is unknown (`missing`).
        f("disconnected_at", ts_type(), true, "When the session ended (null when the end is unknown: 'missing')."),
        // The time of the event that ended the session or proved it over: never null.
        f("ended_at", ts_type(), false, "The time of the event that ended the session or proved it over."),
        f("session_ms", DataType::Int64, true, "How long the session lasted, in milliseconds."),
        f(
            "end_reason",
            DataType::Utf8,
            false,
            "The disconnect reason, or 'missing' when a later connect proved it over.",
        ),
        f("end_category", DataType::Utf8, true, "The end reason's category in reason_catalog."),
        f("abnormal", DataType::Boolean, true, "Whether the session ended abnormally."),
        f("ended_by", DataType::Utf8, true, "Who ended it: client, server, network, admin, unknown."),
        // The record that ended it, and the connect that began it (null when not seen).
        f("kafka_partition", DataType::Int32, false, "The Kafka partition of the record that ended the session."),
        f("kafka_offset", DataType::Int64, false, "The Kafka offset of the record that ended the session."),
        f(
            "connect_offset",
            DataType::Int64,
            true,
            "The Kafka offset of the connect that began it (null when not seen).",
        ),
        f("attributes", DataType::Utf8, true, "Further attributes the broker sent, as a JSON object of strings."),
    ]
}

fn online_hours() -> Vec<Column> {
    vec![
        f(
            "region",
            DataType::Utf8,
            false,
            "The region of the sessions, as in sessions (open ones: as in their connect).",
        ),
        f("online_from", ts_type(), false, "The hour (UTC) the sessions began in: their connect, else their end."),
        f(
            "online_until",
            ts_type(),
            true,
            "The hour (UTC) the sessions ended in; null for connects not known to be ended yet.",
        ),
        f("hour", ts_type(), false, "The row's hour: online_until, else online_from; it decides the date partition."),
        f("sessions", DataType::Int64, false, "How many sessions this row adds (negative: ended connects taken back)."),
    ]
}

fn connacks() -> Vec<Column> {
    vec![
        f("minute", ts_type(), true, "The minute (UTC) the CONNACKs fell in."),
        f("region", DataType::Utf8, true, "The region of the clients, as in events."),
        f("proto_ver", DataType::Int32, true, "The MQTT protocol version."),
        f("reason", DataType::Utf8, true, "The CONNACK reason, by its name in reason_catalog."),
        f("reason_code", DataType::Int32, true, "The reason's code in the protocol version."),
        f("category", DataType::Utf8, true, "The reason's category."),
        f("is_failure", DataType::Boolean, true, "Whether the CONNACK refused the client."),
        f("count", DataType::Int64, true, "CONNACKs of this minute, region, version and reason."),
    ]
}

fn disconnects() -> Vec<Column> {
    vec![
        f("minute", ts_type(), true, "The minute (UTC) the disconnects fell in."),
        f("region", DataType::Utf8, true, "The region of the clients, as in events."),
        f("reason", DataType::Utf8, true, "The disconnect reason, by its name in reason_catalog."),
        f("reason_code", DataType::Int32, true, "The reason's code."),
        f("category", DataType::Utf8, true, "The reason's category."),
        f("abnormal", DataType::Boolean, true, "Whether the reason is an abnormal end."),
        f("count", DataType::Int64, true, "Disconnects of this minute, region, reason and initiator."),
        // Who ended the connections (null in rows written before it existed).
        f("initiator", DataType::Utf8, true, "Who ended the connections: client, server, network, admin, unknown."),
    ]
}

fn failures() -> Vec<Column> {
    vec![
        f("minute", ts_type(), true, "The minute (UTC)."),
        f("region", DataType::Utf8, true, "The region."),
        f("connacks", DataType::Int64, true, "CONNACKs sent in the minute."),
        f("failed_connacks", DataType::Int64, true, "CONNACKs that refused the client."),
        f("connects", DataType::Int64, true, "Clients connected."),
        f("disconnects", DataType::Int64, true, "Clients disconnected."),
        f("abnormal_disconnects", DataType::Int64, true, "Disconnects with an abnormal reason."),
    ]
}

fn alerts() -> Vec<Column> {
    vec![
        f("minute", ts_type(), false, "The minute (UTC) the alert is about."),
        f("kind", DataType::Utf8, false, "connack_failures, takeover_loop or reconnect_storm."),
        f("region", DataType::Utf8, false, "The region the alert is about."),
        f("clientid", DataType::Utf8, true, "The client id fought over (takeover_loop), else null."),
        f("count", DataType::Int64, false, "What was counted in the minute: failed CONNACKs, takeovers, connects."),
        f("threshold", DataType::Int64, false, "The threshold the count passed."),
        // The evidence: a takeover fight's peer addresses, a storm's baseline (null in rows
        // written before it existed).
        f("detail", DataType::Utf8, true, "The evidence: a takeover fight's peer addresses, a storm's baseline."),
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
            assert!(t.columns().iter().all(|c| !c.comment.is_empty()), "{}", t.name);
        }
        assert_eq!(table("alerts").map(|t| t.name), Some("alerts"));
    }
}
