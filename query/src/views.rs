//! The views a session offers: each warehouse table under its own name (filtered by
//! `--since`/`--until`), and the derived views that make the common questions short.

use datafusion::prelude::SessionContext;

use crate::error::Result;
use connaudit_warehouse::TABLES;

use crate::tables::RAW_SCHEMA;
use crate::window::Window;

/// Derived views, by name, in dependency order. Rates are computed from summed counts.
pub const VIEWS: [(&str, &str); 4] = [
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
    (
        "sessions",
        "SELECT clientid, username, region, node, peer_ip, peer_port, connected_at, disconnected_at, \
                session_ms, reason AS end_reason, category AS end_category, is_failure AS abnormal, \
                initiator AS ended_by, broker, date, hour \
         FROM events WHERE event = 'client.disconnected'",
    ),
];

/// Registers `events`, `connack_reasons`, ... as views over `warehouse.<table>` within
/// `window`, then the derived views.
pub async fn register(ctx: &SessionContext, window: &Window) -> Result<()> {
    for table in TABLES {
        let filter = window.condition(table.time).map(|c| format!(" WHERE {c}")).unwrap_or_default();
        // Events keep their hour of the day as a column, as when it was a directory.
        let hour = if table.name == "events" { ", CAST(date_part('hour', ts) AS INT) AS hour" } else { "" };
        let sql = format!("CREATE VIEW {} AS SELECT *{hour} FROM {RAW_SCHEMA}.{}{filter}", table.name, table.name);
        ctx.sql(&sql).await?;
    }
    for (name, body) in VIEWS {
        ctx.sql(&format!("CREATE VIEW {name} AS {body}")).await?;
    }
    Ok(())
}

/// What `\d` and a "table not found" error list.
pub fn names() -> String {
    let tables: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    let views: Vec<&str> = VIEWS.iter().map(|(n, _)| *n).collect();
    format!(
        "tables: {}; views: {}, reason_catalog; unfiltered by --since: {RAW_SCHEMA}.<table>",
        tables.join(", "),
        views.join(", ")
    )
}
