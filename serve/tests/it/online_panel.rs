//! The "Connections online per region" panel sums `online_hours`, which transform keeps as it
//! pairs sessions. Over ranges that begin on the hour it gives what the panel gave when it
//! counted from `sessions` and `events` themselves (its SQL before the table, below).

use anyhow::Result;
use connaudit_tests::fixture::warehouse;

use crate::dashboard::{expand, panel_sql};
use crate::harness::cli;

/// "Now" for both: the open connects are those of the 7 days before it no session ended.
const NOW: &str = "2026-11-22T06:00:00Z";

/// The panel's SQL before `online_hours`: sessions overlapping the range from `sessions`, and
/// the connects still open (a 7-day anti-join of `events` and `sessions`).
fn from_raw_tables() -> String {
    format!(
        "WITH spans AS (
  SELECT region, coalesce(connected_at, ended_at) AS online_from, coalesce(disconnected_at, ended_at) AS online_until
  FROM sessions
  WHERE ended_at >= $__timeFrom() AND date >= CAST($__timeFrom() AS DATE)
    AND coalesce(connected_at, ended_at) < $__timeTo()
  UNION ALL
  SELECT c.region, c.ts, CAST(NULL AS TIMESTAMP) FROM warehouse.events AS c
  WHERE c.event = 'client.connected' AND c.ts < '{NOW}' AND c.ts >= CAST('{NOW}' AS TIMESTAMP) - INTERVAL '7 days'
    AND NOT EXISTS (SELECT 1 FROM warehouse.sessions AS s
                    WHERE s.kafka_partition = c.kafka_partition AND s.connect_offset = c.kafka_offset)
), changes AS (
  SELECT region, date_trunc('hour', online_from) AS step, 1 AS d FROM spans
  UNION ALL
  SELECT region, date_trunc('hour', online_until) + INTERVAL '1 hour', -1
  FROM spans WHERE online_until IS NOT NULL
), per_step AS (
  SELECT region, step, sum(d) AS d FROM changes GROUP BY region, step
), running AS (
  SELECT region, step, sum(d) OVER (PARTITION BY region ORDER BY step ROWS UNBOUNDED PRECEDING) AS online FROM per_step
)
SELECT arrow_cast(step, 'Timestamp(Microsecond, Some(\"UTC\"))') AS \"time\", region AS metric, online
FROM running
WHERE step >= date_trunc('hour', CAST($__timeFrom() AS TIMESTAMP)) AND step < $__timeTo()
ORDER BY 1, 2"
    )
}

#[test]
fn the_online_panel_counts_what_sessions_and_events_give() -> Result<()> {
    let sql = panel_sql("Connections online per region")?;
    assert!(sql.contains("FROM online_hours") && sql.contains("now()"), "{sql}");
    let sql = sql.replace("now()", &format!("CAST('{NOW}' AS TIMESTAMP)"));
    let wh = warehouse()?;
    // Connects still open at NOW exist, and sessions that ended in the ranges.
    let open = cli(
        &wh,
        &format!(
            "SELECT CAST(sum(sessions) AS BIGINT) AS n FROM online_hours \
             WHERE online_until IS NULL AND online_from < '{NOW}'"
        ),
    )?;
    assert!(open[0]["n"].as_i64().unwrap_or(0) > 0, "no open connect in the fixture: {open:?}");
    for range in [("2026-11-20T00:00:00Z", NOW), ("2026-11-21T10:00:00Z", "2026-11-21T16:00:00Z")] {
        let (got, want) = (cli(&wh, &expand(&sql, range)?)?, cli(&wh, &expand(&from_raw_tables(), range)?)?);
        assert!(want.len() > 4, "{range:?}: {want:?}");
        assert_eq!(got, want, "{range:?}");
    }
    Ok(())
}
