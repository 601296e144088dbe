//! What the fault tests count again from `events` and `sessions` to check the derived tables
//! after the faults: the alerts and the sessions online per hour.

/// `online_hours` summed per key against a recount from `sessions` (each under the hours it
/// began and ended in) and `events` (the connects no session names, open under their hour).
pub const ONLINE_AGAINST_RECOUNT: &str = "WITH recount AS ( \
    SELECT region, date_trunc('hour', coalesce(connected_at, ended_at)) AS f, \
           date_trunc('hour', coalesce(disconnected_at, ended_at)) AS u, count(*) AS n \
    FROM warehouse.sessions GROUP BY 1, 2, 3 \
    UNION ALL \
    SELECT c.region, date_trunc('hour', c.ts), CAST(NULL AS TIMESTAMP), count(*) FROM warehouse.events AS c \
    WHERE c.event = 'client.connected' AND NOT EXISTS (SELECT 1 FROM warehouse.sessions AS s \
      WHERE s.kafka_partition = c.kafka_partition AND s.connect_offset = c.kafka_offset) GROUP BY 1, 2, 3), \
  got AS (SELECT region, online_from AS f, online_until AS u, sum(sessions) AS n FROM warehouse.online_hours \
    GROUP BY 1, 2, 3 HAVING sum(sessions) <> 0) \
  SELECT count(*) AS mismatched, (SELECT CAST(sum(n) AS BIGINT) FROM recount) AS sessions FROM recount \
  FULL OUTER JOIN got ON recount.region = got.region AND recount.f = got.f AND recount.u IS NOT DISTINCT FROM got.u \
  WHERE recount.n IS DISTINCT FROM got.n";

/// The alerts a recount from `events` expects ({f} failures, {t} takeovers a minute), against
/// the `alerts` table: kind, minute, key and count.
pub const ALERTS_AGAINST_RECOUNT: &str = "WITH recount AS ( \
    SELECT 'connack_failures' AS kind, date_trunc('minute', ts) AS minute, region AS key, count(*) AS n \
    FROM warehouse.events WHERE event = 'client.connack' AND is_failure GROUP BY 1, 2, 3 HAVING count(*) > {f} \
    UNION ALL \
    SELECT 'takeover_loop', date_trunc('minute', ts), clientid, count(*) FROM warehouse.events \
    WHERE event = 'client.disconnected' AND category = 'session-conflict' GROUP BY 1, 2, 3 HAVING count(*) > {t}), \
  got AS (SELECT kind, minute, coalesce(clientid, region) AS key, count AS n FROM warehouse.alerts) \
  SELECT (SELECT count(*) FROM recount) AS expected, \
    (SELECT count(*) FROM recount FULL OUTER JOIN got ON recount.kind = got.kind AND recount.minute = got.minute \
      AND recount.key = got.key WHERE recount.n IS DISTINCT FROM got.n) AS mismatched";
