//! `connaudit audit explain`: what changed. For the connect failure rate (or the abnormal
//! disconnect rate), every value of every dimension the events carry is given its share of
//! the change: its failures in the window above what its own rate in the baseline predicts for
//! its traffic in the window. The values that explain most of the change come first, then the
//! pairs of the leading ones, each with its rate now and before and its top reason. One SQL
//! query, so `--show-sql` prints what runs and a Grafana panel can run the same.

use chrono::{DateTime, Utc};

use crate::window::Window;

/// Which rate is explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    /// Failed CONNACKs among all CONNACKs.
    Connects,
    /// Abnormal disconnects among all disconnects.
    Disconnects,
}

/// The window explained and the baseline it is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Periods {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub baseline_since: DateTime<Utc>,
    pub baseline_until: DateTime<Utc>,
}

impl Periods {
    /// The window (without `--since`, the hour before its end) and the baseline: the one given,
    /// else the same length just before the window.
    pub fn new(window: &Window, baseline: Option<&Window>, now: DateTime<Utc>) -> Periods {
        let until = window.until.unwrap_or(now);
        let since = window.since.unwrap_or(until - chrono::Duration::hours(1));
        let length = until - since;
        let baseline_until = baseline.and_then(|b| b.until).unwrap_or(since);
        let baseline_since = baseline.and_then(|b| b.since).unwrap_or(baseline_until - length);
        Periods { since, until, baseline_since, baseline_until }
    }
}

/// How many leading values are paired with each other.
const PAIRED: u32 = 12;
/// A value that holds this share of the window's traffic or more explains nothing.
const EVERYTHING: f64 = 0.8;

/// The dimensions, as (name, SQL over `events`). `reason` is not among them: it is the
/// symptom, given per row as `top_reason`.
fn dimensions(metric: Metric) -> Vec<(&'static str, &'static str)> {
    let mut dims = vec![
        ("region", "region"),
        ("node", "node"),
        ("broker", "broker"),
        ("proto_ver", "CAST(proto_ver AS VARCHAR)"),
        ("peer_net", "net_prefix(peer_ip)"),
        ("clientid_prefix", "regexp_replace(clientid, '[0-9]+$', '')"),
        ("username_prefix", "regexp_replace(username, '[0-9]+$', '')"),
    ];
    if metric == Metric::Disconnects {
        dims.push(("initiator", "initiator"));
    }
    dims
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The SQL of the audit, at most `limit` rows (0: all).
pub fn sql(metric: Metric, periods: &Periods, limit: u64) -> String {
    let (event, what) = match metric {
        Metric::Connects => ("client.connack", "connect failure rate (failed CONNACKs / all CONNACKs)"),
        Metric::Disconnects => ("client.disconnected", "abnormal disconnect rate (abnormal / all disconnects)"),
    };
    let Periods { since, until, baseline_since, baseline_until } = *periods;
    let dims = dimensions(metric);
    let columns: String = dims.iter().map(|(name, expr)| format!(",\n         {expr} AS {name}")).collect();
    let unpivot: String = dims
        .iter()
        .map(|(name, _)| {
            format!("  SELECT p, o, now, failed, reason, '{name}' AS dimension, {name} AS value FROM ev\n  UNION ALL\n")
        })
        .collect();
    let limit = if limit == 0 { String::new() } else { format!("\nLIMIT {limit}") };
    let (since, until, baseline_since, baseline_until) = (ts(since), ts(until), ts(baseline_since), ts(baseline_until));
    format!(
        "-- What changed in the {what}
-- from {since} to {until} (now), against {baseline_since} to {baseline_until} (before).
-- excess: failures now above what the value's own rate before predicts for its traffic now.
-- The values are chosen greedily: first the one of most excess (of those within a fifth of it,
-- the broadest), then the one that adds most beyond it (explained: its excess outside the rows above), then the rest by what they add
-- beyond both. share: explained / the rise (the positive excess of one dimension, summed).
-- covers: values whose excess lies mostly within the row. Then the pairs that fail more often
-- than both their values and hold a tenth of the rise.
WITH ev AS (
  SELECT kafka_partition AS p, kafka_offset AS o,
         CASE WHEN ts >= TIMESTAMP '{since}' THEN 1 ELSE 0 END AS now,
         CASE WHEN is_failure THEN 1 ELSE 0 END AS failed, reason, attributes{columns}
  FROM {raw}.events
  WHERE event = '{event}'
    AND ((ts >= TIMESTAMP '{since}' AND ts < TIMESTAMP '{until}' AND date >= '{since_day}' AND date <= '{until_day}')
      OR (ts >= TIMESTAMP '{baseline_since}' AND ts < TIMESTAMP '{baseline_until}'
          AND date >= '{baseline_since_day}' AND date <= '{baseline_until_day}'))
), dims AS (
{unpivot}  SELECT p, o, now, failed, reason, 'attr.' || split_part(entry, '=', 1) AS dimension,
         substr(entry, strpos(entry, '=') + 1) AS value
  FROM (SELECT p, o, now, failed, reason, unnest(attr_entries(attributes)) AS entry FROM ev) AS attrs
), total AS (
  SELECT sum(now) AS n_now, CAST(sum((1 - now) * failed) AS DOUBLE) / nullif(sum(1 - now), 0) AS rate
  FROM ev
), scored AS (
  SELECT c.*, c.f_now - c.n_now * coalesce(CAST(c.f_before AS DOUBLE) / nullif(c.n_before, 0), t.rate) AS excess,
         coalesce(CAST(c.f_before AS DOUBLE) / nullif(c.n_before, 0), t.rate) AS rate
  FROM (SELECT dimension, value, sum(now) AS n_now, sum(1 - now) AS n_before,
               sum(now * failed) AS f_now, sum((1 - now) * failed) AS f_before
        FROM dims WHERE value IS NOT NULL AND value <> '' GROUP BY dimension, value) AS c
  CROSS JOIN total AS t
), rise AS (
  SELECT max(positive) AS rise
  FROM (SELECT dimension, sum(CASE WHEN excess > 0 THEN excess ELSE 0 END) AS positive FROM scored GROUP BY dimension) AS d
), leading AS (
  SELECT s.*, s.dimension || '=' || s.value AS name,
         row_number() OVER (ORDER BY s.excess DESC, s.dimension, s.value) AS rank
  FROM scored AS s CROSS JOIN total AS t
  WHERE s.excess > 0 AND s.n_now < {everything} * t.n_now
  ORDER BY s.excess DESC, s.dimension, s.value LIMIT {paired}
), reasons AS (
  SELECT l.rank, d.reason, count(*) AS n, row_number() OVER (PARTITION BY l.rank ORDER BY count(*) DESC, d.reason) AS r
  FROM dims AS d JOIN leading AS l ON d.dimension = l.dimension AND d.value = l.value
  WHERE d.now = 1 AND d.failed = 1 GROUP BY l.rank, d.reason
), pair_rows AS (
  SELECT la.rank AS a, lb.rank AS b, x.now, x.failed, x.reason
  FROM dims AS x
  JOIN leading AS la ON x.dimension = la.dimension AND x.value = la.value
  JOIN dims AS y ON x.p = y.p AND x.o = y.o
  JOIN leading AS lb ON y.dimension = lb.dimension AND y.value = lb.value AND la.rank <> lb.rank
), pairs AS (
  SELECT a, b, sum(now) AS n_now, sum(1 - now) AS n_before, sum(now * failed) AS f_now, sum((1 - now) * failed) AS f_before
  FROM pair_rows GROUP BY a, b
), within AS (
  -- The part of b's excess that lies within a, at b's own rate before.
  SELECT p.a, p.b, p.f_now - p.n_now * lb.rate AS excess FROM pairs AS p JOIN leading AS lb ON lb.rank = p.b
), first AS (
  -- Of the values within a fifth of the most excess, the broadest: a region before its node.
  SELECT rank FROM (SELECT rank, n_now, CASE WHEN excess >= 0.8 * max(excess) OVER () THEN 0 ELSE 1 END AS near
                    FROM leading) AS l
  ORDER BY near, n_now DESC, rank LIMIT 1
), step2 AS (
  SELECT l.rank, l.n_now, l.excess - coalesce(w.excess, 0) AS explained
  FROM leading AS l CROSS JOIN first AS w1 LEFT JOIN within AS w ON w.a = w1.rank AND w.b = l.rank
  WHERE l.rank <> w1.rank
), second AS (
  SELECT rank FROM (SELECT rank, n_now, CASE WHEN explained >= 0.8 * max(explained) OVER () THEN 0 ELSE 1 END AS near
                    FROM step2 WHERE explained > 0) AS s
  ORDER BY near, n_now DESC, rank LIMIT 1
), step3 AS (
  SELECT s.rank, s.explained - coalesce(w.excess, 0) AS explained
  FROM step2 AS s CROSS JOIN second AS w2 LEFT JOIN within AS w ON w.a = w2.rank AND w.b = s.rank
  WHERE s.rank <> w2.rank
), chosen AS (
  SELECT 1 AS step, l.rank, l.excess AS explained FROM leading AS l JOIN first AS w1 ON l.rank = w1.rank
  UNION ALL SELECT 2 AS step, s.rank, s.explained FROM step2 AS s JOIN second AS w2 ON s.rank = w2.rank
  UNION ALL SELECT 3 AS step, rank, explained FROM step3
), covers AS (
  SELECT w.a AS rank, string_agg(lb.name, ', ' ORDER BY lb.rank) AS covers
  FROM within AS w JOIN leading AS lb ON lb.rank = w.b JOIN chosen AS c ON c.rank = w.b
  JOIN leading AS la ON la.rank = w.a
  WHERE c.explained <= 0 AND w.excess >= 0.8 * lb.excess AND lb.excess >= 0.1 * la.excess GROUP BY w.a
), sharper AS (
  SELECT la.name || ' & ' || lb.name AS name, p.*, z.rise,
         p.f_now - p.n_now * coalesce(CAST(p.f_before AS DOUBLE) / nullif(p.n_before, 0), t.rate) AS excess
  FROM pairs AS p JOIN leading AS la ON la.rank = p.a JOIN leading AS lb ON lb.rank = p.b CROSS JOIN total AS t
  CROSS JOIN rise AS z
  WHERE p.a < p.b AND p.n_now > 0
    AND CAST(p.f_now AS DOUBLE) / p.n_now > 1.25 * greatest(CAST(la.f_now AS DOUBLE) / la.n_now, CAST(lb.f_now AS DOUBLE) / lb.n_now)
), rows AS (
  SELECT c.step, 'value' AS kind, l.name AS explanation, c.explained, l.excess, l.f_now, l.n_now, l.f_before, l.n_before,
         x.reason AS top_reason, x.n AS top_n, v.covers
  FROM chosen AS c JOIN leading AS l ON l.rank = c.rank
  LEFT JOIN reasons AS x ON x.rank = l.rank AND x.r = 1
  LEFT JOIN covers AS v ON v.rank = l.rank
  WHERE c.explained > 0
  UNION ALL
  SELECT 4 AS step, 'pair' AS kind, name, excess AS explained, excess, f_now, n_now, f_before, n_before,
         CAST(NULL AS VARCHAR) AS top_reason, CAST(NULL AS BIGINT) AS top_n, CAST(NULL AS VARCHAR) AS covers
  FROM sharper WHERE excess >= 0.1 * rise
)
SELECT row_number() OVER (ORDER BY r.step, r.explained DESC, r.explanation) AS rank,
       r.kind, r.explanation, r.explained / z.rise AS share, r.explained, r.excess,
       r.f_now AS failures, r.n_now AS total, CAST(r.f_now AS DOUBLE) / nullif(r.n_now, 0) AS rate_now,
       CAST(r.f_before AS DOUBLE) / nullif(r.n_before, 0) AS rate_before, r.n_before AS total_before,
       r.top_reason, CAST(r.top_n AS DOUBLE) / nullif(r.f_now, 0) AS top_reason_share, r.covers
FROM rows AS r CROSS JOIN rise AS z
ORDER BY r.step, r.explained DESC, r.explanation{limit}",
        raw = crate::tables::RAW_SCHEMA,
        paired = PAIRED,
        everything = EVERYTHING,
        since_day = &since[..10],
        until_day = &until[..10],
        baseline_since_day = &baseline_since[..10],
        baseline_until_day = &baseline_until[..10],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_baseline_is_as_long_just_before_unless_given() {
        let now = t("2026-12-04T12:00:00Z");
        let p = Periods::new(&Window::default(), None, now);
        assert_eq!((p.since, p.until), (t("2026-12-04T11:00:00Z"), now));
        assert_eq!((p.baseline_since, p.baseline_until), (t("2026-12-04T10:00:00Z"), t("2026-12-04T11:00:00Z")));
        let window = Window { since: Some(t("2026-12-04T08:00:00Z")), until: None };
        let baseline = Window { since: Some(t("2026-11-27T08:00:00Z")), until: Some(t("2026-11-27T12:00:00Z")) };
        let p = Periods::new(&window, Some(&baseline), now);
        assert_eq!(
            (p.since, p.baseline_since, p.baseline_until),
            (window.since.unwrap(), baseline.since.unwrap(), baseline.until.unwrap())
        );
        // Both windows' days are read, and only the event explained.
        let sql = sql(Metric::Disconnects, &p, 3);
        assert!(sql.contains("date >= '2026-11-27'") && sql.contains("event = 'client.disconnected'"), "{sql}");
        assert!(sql.contains("'initiator' AS dimension") && sql.ends_with("LIMIT 3"), "{sql}");
    }
}
