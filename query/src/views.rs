//! The views a session offers: each warehouse table under its own name (filtered by
//! `--since`/`--until`), and the derived views that make the common questions short.

use datafusion::prelude::SessionContext;

use crate::error::Result;
use connaudit_warehouse::TABLES;

use crate::tables::RAW_SCHEMA;
use crate::window::Window;

/// Derived views, by name, in dependency order. Rates are computed from summed counts.
pub const VIEWS: [(&str, &str); 3] = [
    (
        "region_failure_rates",
        "SELECT minute, region, sum(connacks) AS connacks, sum(failed_connacks) AS failed_connacks, \
                sum(connects) AS connects, sum(disconnects) AS disconnects, \
                sum(abnormal_disconnects) AS abnormal_disconnects, \
                CAST(sum(failed_connacks) AS DOUBLE) / nullif(sum(connacks), 0) AS failure_rate, \
                CAST(sum(abnormal_disconnects) AS DOUBLE) / nullif(sum(disconnects), 0) AS abnormal_rate, \
                date \
         FROM region_failures GROUP BY date, minute, region",
    ),
    // One row per outcome: a reason's MQTT 3.1.1 and 5.0 codes (0 and 0x00, 3 and 0x88) are one
    // name in the catalog, listed in `codes`.
    (
        "connack_reason_summary",
        "SELECT reason, codes, category, is_failure, count, \
                CAST(count AS DOUBLE) / sum(count) OVER () AS share \
         FROM (SELECT reason, array_to_string(array_sort(array_agg(DISTINCT reason_code)), ', ') AS codes, \
                      category, is_failure, sum(count) AS count \
               FROM connack_reasons GROUP BY reason, category, is_failure)",
    ),
    (
        "disconnect_reason_summary",
        "SELECT reason, codes, category, abnormal, count, \
                CAST(count AS DOUBLE) / sum(count) OVER () AS share \
         FROM (SELECT reason, array_to_string(array_sort(array_agg(DISTINCT reason_code)), ', ') AS codes, \
                      category, abnormal, sum(count) AS count \
               FROM disconnect_reasons GROUP BY reason, category, abnormal)",
    ),
];

/// Registers `events`, `connack_reasons`, ... as views over `warehouse.<table>` within
/// `window`, then the derived views.
pub async fn register(ctx: &SessionContext, window: &Window) -> Result<()> {
    crate::functions::register(ctx);
    for table in TABLES {
        let filter = window.condition(table.time).map(|c| format!(" WHERE {c}")).unwrap_or_default();
        // Events keep their hour of the day as a column, as when it was a directory.
        let hour = if table.name == "events" { ", CAST(date_part('hour', ts) AS INT) AS hour" } else { "" };
        let columns = columns(ctx, table).await?;
        let sql =
            format!("CREATE VIEW {} AS SELECT {columns}{hour} FROM {RAW_SCHEMA}.{}{filter}", table.name, table.name);
        ctx.sql(&sql).await?;
    }
    for (name, body) in VIEWS {
        ctx.sql(&format!("CREATE VIEW {name} AS {body}")).await?;
    }
    for (name, body) in online(window) {
        ctx.sql(&format!("CREATE VIEW {name} AS {body}")).await?;
    }
    Ok(())
}

/// How far back an open session's connect is looked for: transform's default
/// `--session-horizon-days`, beyond which it no longer pairs a session either.
const HORIZON: &str = "INTERVAL '7 days'";

/// `query_window` (the window's ends: `--since`, else a day before `--until`, else now) and
/// `online_spans` (when each device was online in it: the sessions that overlap it and the
/// connects still open at its end, from the unfiltered tables).
fn online(window: &Window) -> [(&'static str, String); 2] {
    let at = |t: chrono::DateTime<chrono::Utc>| {
        format!("arrow_cast('{}', 'Timestamp(Microsecond, Some(\"UTC\"))')", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    };
    let until =
        window.until.map(at).unwrap_or_else(|| "arrow_cast(now(), 'Timestamp(Microsecond, Some(\"UTC\"))')".into());
    let since = window.since.map(at).unwrap_or_else(|| format!("({until} - INTERVAL '1 day')"));
    let bounds = format!("SELECT {since} AS since, {until} AS until");
    let spans = format!(
        "SELECT clientid, region, node, coalesce(connected_at, ended_at) AS online_from, \
                coalesce(disconnected_at, ended_at) AS online_until \
         FROM {RAW_SCHEMA}.sessions \
         WHERE ended_at >= {since} AND date >= CAST({since} AS DATE) AND coalesce(connected_at, ended_at) < {until} \
         UNION ALL \
         SELECT c.clientid, c.region, c.node, c.ts, CAST(NULL AS TIMESTAMP) \
         FROM {RAW_SCHEMA}.events AS c \
         WHERE c.event = 'client.connected' AND c.ts < {until} AND c.ts >= {until} - {HORIZON} \
           AND c.date >= CAST({until} - {HORIZON} AS DATE) \
           AND NOT EXISTS (SELECT 1 FROM {RAW_SCHEMA}.sessions AS s \
                           WHERE s.kafka_partition = c.kafka_partition AND s.connect_offset = c.kafka_offset \
                             AND s.ended_at >= {until} - {HORIZON} AND s.date >= CAST({until} - {HORIZON} AS DATE))"
    );
    [("query_window", bounds), ("online_spans", spans)]
}

/// The contract's columns of `table`; one a table written by an earlier version lacks (a
/// column added since, nullable) reads as null until transform adds it.
async fn columns(ctx: &SessionContext, table: &connaudit_warehouse::Table) -> Result<String> {
    let provider = ctx.table_provider(format!("{RAW_SCHEMA}.{}", table.name).as_str()).await?;
    let have = provider.schema();
    let list: Vec<String> = table
        .schema()
        .fields()
        .iter()
        .map(|f| match have.field_with_name(f.name()) {
            Ok(_) => format!("\"{}\"", f.name()),
            Err(_) => format!("CAST(NULL AS {}) AS \"{}\"", sql_type(f.data_type()), f.name()),
        })
        .collect();
    Ok(list.join(", "))
}

fn sql_type(t: &arrow::datatypes::DataType) -> &'static str {
    use arrow::datatypes::DataType::*;
    match t {
        Int32 => "INT",
        Int64 => "BIGINT",
        Boolean => "BOOLEAN",
        Float64 => "DOUBLE",
        Timestamp(..) => "TIMESTAMP",
        _ => "VARCHAR",
    }
}

/// What `\d` and a "table not found" error list.
pub fn names() -> String {
    let tables: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    let mut views: Vec<&str> = VIEWS.iter().map(|(n, _)| *n).collect();
    views.extend(["query_window", "online_spans"]);
    format!(
        "tables: {}; views: {}, reason_catalog; unfiltered by --since: {RAW_SCHEMA}.<table>",
        tables.join(", "),
        views.join(", ")
    )
}
