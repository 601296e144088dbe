//! The ready-made audits: each one SQL query over the session's tables and views, so
//! `--show-sql` prints exactly what runs and `connaudit query -f` can run an edited copy.

use chrono::{DateTime, Utc};

use crate::args::{Audit, FailuresBy, SessionsBy, StormsBy};
use crate::window::Window;

/// The SQL of an audit over `window` (`now` closes a window without `--until`).
/// `baseline` is `explain`'s, read by [`baseline`].
pub fn sql(audit: &Audit, window: &Window, baseline: Option<&Window>, now: DateTime<Utc>) -> String {
    match audit {
        Audit::Client { id, .. } => client(id),
        Audit::Failures { by: FailuresBy::Attr(name), limit, .. } => failures_by_attr(name, window, now, *limit),
        Audit::Failures { by, limit, .. } => failures(by, *limit),
        Audit::Reasons { .. } => REASONS.to_string(),
        Audit::Flapping { min, limit, .. } => flapping(*min, *limit),
        Audit::Fights { min, limit, .. } => fights(*min, *limit),
        Audit::Storms { by, min, factor, bucket, history, limit, .. } => {
            storms(*by, *min, *factor, *bucket, *history, *limit)
        }
        Audit::Online { by, every, .. } => online(*by, *every),
        Audit::Sessions { by, .. } => sessions(*by),
        Audit::Alerts { .. } => ALERTS.to_string(),
        Audit::Explain { metric, limit, .. } => {
            crate::explain::sql(*metric, &crate::explain::Periods::new(window, baseline, now), *limit)
        }
    }
}

/// `explain --baseline FROM..TO`, each end as `--since` takes it; `None` for other audits.
pub fn baseline(audit: &Audit, now: DateTime<Utc>) -> crate::Result<Option<Window>> {
    let Audit::Explain { baseline: Some(text), .. } = audit else { return Ok(None) };
    let Some((from, to)) = text.split_once("..") else {
        return Err(crate::Error::Usage(format!(
            "--baseline `{text}` is not FROM..TO; write it like 2026-11-13T08:00Z..2026-11-13T09:00Z or 25h..24h"
        )));
    };
    Ok(Some(Window::parse(Some(from), Some(to), now)?))
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn limit_clause(limit: u64) -> String {
    if limit == 0 {
        String::new()
    } else {
        format!("\nLIMIT {limit}")
    }
}

/// One client's events in order. A takeover is a disconnect in the session-conflict category;
/// a peer address that differs from the previous connect's means two devices may share the id.
pub fn client(id: &str) -> String {
    format!(
        "-- The timeline of client {}: connect attempts (client.connack), connects, disconnects.
SELECT ts, event, reason, category, initiator AS ended_by,
       CASE WHEN event = 'client.disconnected' THEN session_ms / 1000.0 END AS session_s,
       peer_ip, peer_port, node, username, proto_ver,
       CASE
         WHEN category = 'session-conflict' THEN 'takeover: another connection took this client id'
         WHEN event = 'client.connected' AND previous_peer IS NOT NULL AND previous_peer <> peer_ip
           THEN 'peer changed from ' || previous_peer || ': two devices may share this id'
         WHEN is_failure THEN 'failure'
         ELSE ''
       END AS flag
FROM (
  SELECT *, lag(peer_ip) OVER (PARTITION BY event ORDER BY ts, kafka_partition, kafka_offset) AS previous_peer
  FROM events
  WHERE clientid = {}
) AS timeline
-- Within one millisecond: a session ends, then the next attempt, then its connect.
ORDER BY ts, CASE event WHEN 'client.disconnected' THEN 0 WHEN 'client.connack' THEN 1 ELSE 2 END,
         kafka_partition, kafka_offset",
        id.replace(['\n', '\r'], " "),
        literal(id)
    )
}

/// Connect failure rates per key, highest first, with each key's failure reasons and counts.
/// Regions and reasons come from the `connack_reasons` aggregate; nodes and usernames from
/// the events.
pub fn failures(by: &FailuresBy, limit: u64) -> String {
    if let FailuresBy::Attr(name) = by {
        return failures_by_attr(name, &Window::default(), Utc::now(), limit);
    }
    let limit = limit_clause(limit);
    let (key, source) = match by {
        FailuresBy::Region => ("region", "connack_reasons"),
        FailuresBy::Node => ("node", "events"),
        FailuresBy::Username => ("username", "events"),
        FailuresBy::Attr(_) => unreachable!("answered above"),
        FailuresBy::Reason => {
            return format!(
                "-- Each failure reason's share of all connect attempts, with the regions it hit.
WITH attempts AS (
  SELECT region, reason, category, is_failure, sum(count) AS n
  FROM connack_reasons GROUP BY region, reason, category, is_failure
), total AS (
  SELECT sum(n) AS attempts FROM attempts
), failed AS (
  SELECT reason, category, sum(n) AS failed,
         string_agg(region || ' ' || CAST(n AS VARCHAR), ', ' ORDER BY n DESC, region) AS regions
  FROM attempts WHERE is_failure GROUP BY reason, category
)
SELECT f.reason, f.category, t.attempts, f.failed,
       CAST(f.failed AS DOUBLE) / t.attempts AS failure_rate, f.regions
FROM failed AS f CROSS JOIN total AS t
ORDER BY failure_rate DESC, f.reason{limit}"
            );
        }
    };
    let counted = if source == "events" {
        format!(
            "SELECT {key}, reason, is_failure, count(*) AS n
  FROM events WHERE event = 'client.connack' GROUP BY {key}, reason, is_failure"
        )
    } else {
        format!("SELECT {key}, reason, is_failure, sum(count) AS n\n  FROM {source} GROUP BY {key}, reason, is_failure")
    };
    format!(
        "-- Connect failure rate per {key} (failed CONNACKs / all CONNACKs), with the failure reasons.
WITH attempts AS (
  {counted}
), rates AS (
  SELECT {key}, sum(n) AS attempts, coalesce(sum(CASE WHEN is_failure THEN n END), 0) AS failed
  FROM attempts GROUP BY {key}
), mix AS (
  SELECT {key}, string_agg(reason || ' ' || CAST(n AS VARCHAR), ', ' ORDER BY n DESC, reason) AS failure_reasons
  FROM attempts WHERE is_failure GROUP BY {key}
)
SELECT r.{key}, r.attempts, r.failed, CAST(r.failed AS DOUBLE) / r.attempts AS failure_rate, m.failure_reasons
FROM rates AS r LEFT JOIN mix AS m ON r.{key} IS NOT DISTINCT FROM m.{key}
ORDER BY failure_rate DESC, r.failed DESC, r.{key}{limit}"
    )
}

pub const REASONS: &str = "-- Every reason seen, its share among the CONNACKs or disconnects, and what to do about it.
-- One row per outcome: its MQTT 3.1.1 and 5.0 codes are listed together.
-- Disconnects are split by who ended them (client, server, network, admin).
WITH seen AS (
  SELECT 'connack' AS kind, reason, array_to_string(array_sort(array_agg(DISTINCT reason_code)), ', ') AS codes,
         category, is_failure, CAST(NULL AS VARCHAR) AS ended_by, sum(count) AS count
  FROM connack_reasons GROUP BY reason, category, is_failure
  UNION ALL
  SELECT 'disconnect' AS kind, reason, array_to_string(array_sort(array_agg(DISTINCT reason_code)), ', ') AS codes,
         category, abnormal AS is_failure, initiator AS ended_by, sum(count) AS count
  FROM disconnect_reasons GROUP BY reason, category, abnormal, initiator
),
actions AS (SELECT kind, name, min(action) AS action FROM reason_catalog GROUP BY kind, name)
SELECT s.kind, s.reason, s.codes, s.ended_by, s.count,
       CAST(s.count AS DOUBLE) / sum(s.count) OVER (PARTITION BY s.kind) AS share,
       s.category, s.is_failure,
       CASE WHEN s.reason IS NULL THEN 'The broker gave no reason (VerneMQ''s webhooks carry none).'
            ELSE coalesce(c.action, 'Not in the catalog: look the reason up in the broker''s documentation.')
       END AS action
FROM seen AS s
LEFT JOIN actions AS c ON c.kind = s.kind AND c.name = s.reason
ORDER BY s.kind, s.count DESC, s.reason";

/// Clients with at least `min` connects, most first, with their most frequent disconnect reason.
pub fn flapping(min: u64, limit: u64) -> String {
    let limit = limit_clause(limit);
    format!(
        "-- Clients that connected at least {min} times, with their most frequent disconnect reason.
WITH per_client AS (
  SELECT clientid,
         count(*) FILTER (WHERE event = 'client.connected') AS connects,
         count(*) FILTER (WHERE event = 'client.disconnected') AS disconnects,
         count(*) FILTER (WHERE event = 'client.disconnected' AND is_failure) AS abnormal_disconnects,
         count(*) FILTER (WHERE event = 'client.connack' AND is_failure) AS failed_attempts,
         min(ts) AS first_seen, max(ts) AS last_seen
  FROM events GROUP BY clientid
), reasons AS (
  SELECT clientid, reason, n,
         row_number() OVER (PARTITION BY clientid ORDER BY n DESC, reason) AS rank
  FROM (SELECT clientid, reason, count(*) AS n FROM events
        WHERE event = 'client.disconnected' GROUP BY clientid, reason) AS counted
)
SELECT p.clientid, p.connects, p.disconnects, p.abnormal_disconnects, p.failed_attempts,
       r.reason AS top_disconnect_reason, r.n AS top_reason_count, p.first_seen, p.last_seen
FROM per_client AS p LEFT JOIN reasons AS r ON r.clientid = p.clientid AND r.rank = 1
WHERE p.connects >= {min}
ORDER BY p.connects DESC, p.clientid{limit}"
    )
}

/// Connect failure rate per value of attribute `name` in the window (without `--since`, the
/// day before its end), next to the same length of time before it: a firmware rollout, a
/// carrier or a tenant that fails more since. Read from `warehouse.events` with both windows'
/// bounds, as the view holds only the first.
pub fn failures_by_attr(name: &str, window: &Window, now: DateTime<Utc>, limit: u64) -> String {
    let until = window.until.unwrap_or(now);
    let since = window.since.unwrap_or(until - chrono::Duration::days(1));
    let before = Window { since: Some(since - (until - since)), until: Some(since) };
    let now = Window { since: Some(since), until: Some(until) };
    let (cond, before_cond) = (now.condition("ts").unwrap_or_default(), before.condition("ts").unwrap_or_default());
    let (value, column) =
        (format!("attr(attributes, {})", literal(name)), format!("\"attr.{}\"", name.replace('"', "\"\"")));
    let limit = limit_clause(limit);
    format!(
        "-- Connect failure rate per value of attribute {name} (failed CONNACKs / all CONNACKs) from
-- {since} to {until}, next to the same length of time before it.
WITH attempts AS (
  SELECT {value} AS value, reason, is_failure, count(*) AS n
  FROM {raw}.events WHERE event = 'client.connack' AND {cond}
  GROUP BY {value}, reason, is_failure
), rates AS (
  SELECT value, sum(n) AS attempts, coalesce(sum(CASE WHEN is_failure THEN n END), 0) AS failed
  FROM attempts GROUP BY value
), mix AS (
  SELECT value, string_agg(reason || ' ' || CAST(n AS VARCHAR), ', ' ORDER BY n DESC, reason) AS failure_reasons
  FROM attempts WHERE is_failure GROUP BY value
), before AS (
  SELECT {value} AS value, count(*) AS attempts, count(*) FILTER (WHERE is_failure) AS failed
  FROM {raw}.events WHERE event = 'client.connack' AND {before_cond}
  GROUP BY {value}
)
SELECT r.value AS {column}, r.attempts, r.failed, CAST(r.failed AS DOUBLE) / r.attempts AS failure_rate,
       b.attempts AS attempts_before, CAST(b.failed AS DOUBLE) / b.attempts AS before_rate,
       CAST(r.failed AS DOUBLE) / r.attempts - CAST(b.failed AS DOUBLE) / b.attempts AS change_in_rate,
       m.failure_reasons
FROM rates AS r
LEFT JOIN before AS b ON b.value IS NOT DISTINCT FROM r.value
LEFT JOIN mix AS m ON m.value IS NOT DISTINCT FROM r.value
ORDER BY failure_rate DESC, r.failed DESC, r.value{limit}",
        since = since.to_rfc3339(),
        until = until.to_rfc3339(),
        raw = crate::tables::RAW_SCHEMA,
    )
}

/// Client ids whose connects alternate between peer addresses at least `min` times: devices
/// sharing an id (or a device and a stale copy of it) taking the session from each other.
/// The evidence: the addresses, the switches, the takeovers the broker reported, the minutes.
pub fn fights(min: u64, limit: u64) -> String {
    let limit = limit_clause(limit);
    format!(
        "-- Client ids fought over: at least {min} connects from another address than the client's previous
-- connect, with the addresses, the takeovers the broker reported and when it happened.
WITH connects AS (
  SELECT clientid, ts, peer_ip,
         lag(peer_ip) OVER (PARTITION BY clientid ORDER BY ts, kafka_partition, kafka_offset) <> peer_ip AS switched
  FROM events
  WHERE event = 'client.connected' AND peer_ip IS NOT NULL
), per_client AS (
  SELECT clientid, count(*) AS connects,
         count(*) FILTER (WHERE switched) AS switches,
         count(DISTINCT peer_ip) AS peers,
         array_to_string(array_sort(array_agg(DISTINCT peer_ip)), ', ') AS peer_addresses,
         count(DISTINCT CASE WHEN switched THEN date_trunc('minute', ts) END) AS minutes,
         min(CASE WHEN switched THEN ts END) AS first_switch,
         max(CASE WHEN switched THEN ts END) AS last_switch
  FROM connects GROUP BY clientid
), takeovers AS (
  SELECT clientid, count(*) AS takeovers FROM events
  WHERE event = 'client.disconnected' AND category = 'session-conflict'
  GROUP BY clientid
)
SELECT p.clientid, p.peers, p.peer_addresses, p.switches, coalesce(t.takeovers, 0) AS takeovers,
       p.connects, p.minutes, p.first_switch, p.last_switch
FROM per_client AS p LEFT JOIN takeovers AS t ON t.clientid = p.clientid
WHERE p.switches >= {min}
ORDER BY p.switches DESC, p.clientid{limit}"
    )
}

/// Buckets (minutes by default) when a node's (or region's) connects were at least `min` and
/// `factor` times its average bucket of the `history` before (an hour by default): a
/// reconnect storm. A bucket without the whole history of the key before it (in the window)
/// is not judged: no baseline, no storm. The evidence: the counts, the baseline, and the
/// disconnects of that bucket and the one before (reason, who ended them).
pub fn storms(by: StormsBy, min: u64, factor: f64, bucket_secs: u64, history_secs: u64, limit: u64) -> String {
    let key = match by {
        StormsBy::Node => "node",
        StormsBy::Region => "region",
    };
    let limit = limit_clause(limit);
    let (bucket, history) = (format!("INTERVAL '{bucket_secs} seconds'"), format!("INTERVAL '{history_secs} seconds'"));
    let per_history = history_secs as f64 / bucket_secs.max(1) as f64;
    // A minute's columns keep their names; other buckets say so.
    let (at, baseline) =
        if bucket_secs == 60 { ("minute", "baseline_per_minute") } else { ("bucket", "baseline_per_bucket") };
    format!(
        "-- Reconnect storms: {bucket_secs} s buckets when a {key}'s connects were at least {min} and {factor} times
-- its average bucket of the {history_secs} s before, with the disconnects of that bucket and the one before.
WITH per_bucket AS (
  SELECT {key}, date_bin({bucket}, ts, TIMESTAMP '1970-01-01T00:00:00Z') AS bucket, count(*) AS connects,
         count(DISTINCT clientid) AS clients
  FROM events WHERE event = 'client.connected'
  GROUP BY {key}, date_bin({bucket}, ts, TIMESTAMP '1970-01-01T00:00:00Z')
), baselined AS (
  SELECT *, coalesce(sum(connects) OVER (
           PARTITION BY {key} ORDER BY bucket
           RANGE BETWEEN {history} PRECEDING AND {bucket} PRECEDING), 0) / {per_history:.1} AS baseline,
         min(bucket) OVER (PARTITION BY {key}) AS first_bucket
  FROM per_bucket
), storms AS (
  -- Only buckets with the whole history of the {key} before them (in the window) are judged.
  SELECT * FROM baselined
  WHERE connects >= {min} AND connects >= {factor} * baseline AND bucket >= first_bucket + {history}
), ended AS (
  SELECT s.{key}, s.bucket, coalesce(e.reason, '(none)') || ' by ' || e.initiator AS cause, count(*) AS n
  FROM storms AS s JOIN events AS e
    ON (e.{key} IS NOT DISTINCT FROM s.{key}) AND e.event = 'client.disconnected'
   AND e.ts >= s.bucket - {bucket} AND e.ts < s.bucket + {bucket}
  GROUP BY s.{key}, s.bucket, coalesce(e.reason, '(none)') || ' by ' || e.initiator
), causes AS (
  SELECT {key}, bucket, sum(n) AS disconnects,
         string_agg(cause || ' ' || CAST(n AS VARCHAR), ', ' ORDER BY n DESC, cause) AS ended_by
  FROM ended GROUP BY {key}, bucket
)
SELECT s.{key}, s.bucket AS {at}, s.connects, s.clients, round(s.baseline, 2) AS {baseline},
       coalesce(c.disconnects, 0) AS disconnects_before, c.ended_by
FROM storms AS s LEFT JOIN causes AS c ON (c.{key} IS NOT DISTINCT FROM s.{key}) AND c.bucket = s.bucket
ORDER BY s.bucket, s.connects DESC, s.{key}{limit}"
    )
}

fn sessions_key(by: SessionsBy) -> &'static str {
    match by {
        SessionsBy::Region => "region",
        SessionsBy::Node => "node",
    }
}

/// Devices online at any moment of each step of the window, per key: the sessions that
/// overlap the step, and the connects still open (`online_spans`, over `query_window`).
pub fn online(by: SessionsBy, every_secs: u64) -> String {
    let key = sessions_key(by);
    let step = format!("INTERVAL '{every_secs} seconds'");
    format!(
        "-- Devices online (connected at any moment of the step) per {key}, every {every_secs} s of the window.
WITH steps AS (
  SELECT unnest(generate_series(date_bin({step}, since, TIMESTAMP '1970-01-01T00:00:00Z'), until, {step})) AS step,
         until
  FROM query_window
)
SELECT t.step, s.{key}, count(DISTINCT s.clientid) AS online
FROM steps AS t JOIN online_spans AS s
  ON s.online_from < t.step + {step} AND (s.online_until IS NULL OR s.online_until >= t.step)
WHERE t.step < t.until
GROUP BY t.step, s.{key}
ORDER BY t.step, s.{key}"
    )
}

/// Sessions that ended in the window, per key: how many, how long (median and 95th
/// percentile), abnormal ends, and lost disconnects (`missing`: the end is unknown).
pub fn sessions(by: SessionsBy) -> String {
    let key = sessions_key(by);
    format!(
        "-- Sessions ended in the window per {key}: count, length, abnormal ends, lost disconnects.
SELECT {key}, count(*) AS sessions,
       round(approx_percentile_cont(session_ms, 0.5) / 1000.0, 1) AS median_s,
       round(approx_percentile_cont(session_ms, 0.95) / 1000.0, 1) AS p95_s,
       count(*) FILTER (WHERE abnormal) AS abnormal,
       count(*) FILTER (WHERE end_reason = 'missing') AS missing,
       round(100.0 * count(*) FILTER (WHERE end_reason = 'missing') / count(*), 2) AS missing_pct,
       count(DISTINCT clientid) AS clients
FROM sessions
GROUP BY {key}
ORDER BY missing DESC, sessions DESC, {key}"
    )
}

pub const ALERTS: &str = "-- The alerts connaudit transform raised, oldest first.
SELECT minute, kind, region, clientid, count, threshold, detail
FROM alerts
ORDER BY minute, kind, region, clientid";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_is_a_quoted_literal() {
        let sql = client("it's");
        assert!(sql.contains("WHERE clientid = 'it''s'"), "{sql}");
    }

    #[test]
    fn limit_zero_means_all() {
        assert!(!failures(&FailuresBy::Node, 0).contains("LIMIT"));
        assert!(flapping(3, 7).ends_with("LIMIT 7"));
    }
}
