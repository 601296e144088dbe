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
/// symptom, given per row as `top_reason`. A prefix is the id without its trailing digits
/// (`rtrim`, as `regexp_replace(.., '[0-9]+$', '')` would give, without a regex per event).
fn dimensions(metric: Metric) -> Vec<(&'static str, &'static str)> {
    let mut dims = vec![
        ("region", "region"),
        ("node", "node"),
        ("broker", "broker"),
        ("proto_ver", "CAST(proto_ver AS VARCHAR)"),
        ("peer_net", "net_prefix(peer_ip)"),
        ("clientid_prefix", "rtrim(clientid, '0123456789')"),
        ("username_prefix", "rtrim(username, '0123456789')"),
    ];
    if metric == Metric::Disconnects {
        dims.push(("initiator", "initiator"));
    }
    dims
}

/// A dimension's place in [`dimensions`] (attributes after them all): of two values that hold
/// the same events, the one named first is shown (a region, not its one node).
fn level(metric: Metric) -> String {
    let whens: Vec<String> =
        dimensions(metric).iter().enumerate().map(|(i, (name, _))| format!("WHEN '{name}' THEN {i}")).collect();
    format!("CASE split_part(name, '=', 1) {} ELSE {} END", whens.join(" "), whens.len())
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The SQL of the audit, at most `limit` rows (0: all).
pub fn sql(metric: Metric, periods: &Periods, limit: u64) -> String {
    let Periods { since, until, baseline_since, baseline_until } = *periods;
    let instant = |t: DateTime<Utc>| format!("TIMESTAMP '{}'", ts(t));
    let day = |t: DateTime<Utc>| format!("'{}'", t.format("%Y-%m-%d"));
    let bounds = Bounds {
        since: instant(since),
        until: instant(until),
        baseline_since: instant(baseline_since),
        baseline_until: instant(baseline_until),
        days: [day(since), day(until), day(baseline_since), day(baseline_until)],
    };
    let header = format!(
        "from {} to {} (now), against {} to {} (before)",
        ts(since),
        ts(until),
        ts(baseline_since),
        ts(baseline_until)
    );
    query(metric, &bounds, &header, limit)
}

/// The SQL of the Grafana panel: the dashboard's time range against as long just before it,
/// with Grafana's macros (`$__timeFrom()`, `$__timeTo()`).
pub fn grafana(metric: Metric, limit: u64) -> String {
    let (from, to) = ("CAST($__timeFrom() AS TIMESTAMP)", "CAST($__timeTo() AS TIMESTAMP)");
    let before = format!("({from} - ({to} - {from}))");
    let day = |t: &str| format!("CAST({t} AS DATE)");
    let bounds = Bounds {
        since: from.into(),
        until: to.into(),
        baseline_since: before.clone(),
        baseline_until: from.into(),
        days: [day(from), day(to), day(&before), day(from)],
    };
    query(metric, &bounds, "over the dashboard's time range, against as long just before it", limit)
}

/// The window and the baseline as SQL expressions: their instants, then the days of
/// `since`, `until`, `baseline_since` and `baseline_until`.
struct Bounds {
    since: String,
    until: String,
    baseline_since: String,
    baseline_until: String,
    days: [String; 4],
}

fn query(metric: Metric, bounds: &Bounds, header: &str, limit: u64) -> String {
    let (event, what) = match metric {
        Metric::Connects => ("client.connack", "connect failure rate (failed CONNACKs / all CONNACKs)"),
        Metric::Disconnects => ("client.disconnected", "abnormal disconnect rate (abnormal / all disconnects)"),
    };
    let Bounds { since, until, baseline_since, baseline_until, days } = bounds;
    let [since_day, until_day, baseline_since_day, baseline_until_day] = days;
    let entries: Vec<String> = dimensions(metric).iter().map(|(name, expr)| format!("'{name}=' || {expr}")).collect();
    let entries = entries.join(",\n           ");
    let limit = if limit == 0 { String::new() } else { format!("\nLIMIT {limit}") };
    // Each CTE is planned again wherever it is named: the events are read by `dims` a dozen
    // times in all, and everything after `m` is one chain of windows over a few hundred rows.
    // No CTE is named like a column (serve's plan budget counts every mention of a CTE's name),
    // nor like a keyword PostgreSQL and DuckDB reserve (`leading`): the panel runs on both.
    format!(
        "-- What changed in the {what}
-- {header}.
-- excess: failures now above what the value's own rate before predicts for its traffic now.
-- The values are chosen greedily: first the one of most excess (of those within a fifth of it,
-- the broadest), then the one that adds most beyond it (explained: its excess outside the
-- rows above), then the rest by what they add beyond both. share: explained / the rise (the
-- positive excess of one dimension, summed). covers: values whose excess lies mostly within
-- the row. Then the pairs that fail more often than both their values and hold a tenth of the rise.
WITH ev AS (
  SELECT kafka_partition AS p, kafka_offset AS o,
         CASE WHEN ts >= {since} THEN 1 ELSE 0 END AS now,
         CASE WHEN is_failure THEN 1 ELSE 0 END AS failed, reason,
         array_concat(make_array(
           {entries}), attr_entries(attributes, 'attr.')) AS entries
  FROM {raw}.events
  WHERE event = '{event}'
    AND ((ts >= {since} AND ts < {until} AND date >= {since_day} AND date <= {until_day})
      OR (ts >= {baseline_since} AND ts < {baseline_until}
          AND date >= {baseline_since_day} AND date <= {baseline_until_day}))
), dims AS (
  -- One row per event and value it holds, named dimension=value.
  SELECT p, o, now, failed, reason, entry AS name, split_part(entry, '=', 1) AS dimension
  FROM (SELECT p, o, now, failed, reason, unnest(entries) AS entry FROM ev) AS u
  WHERE entry IS NOT NULL AND entry NOT LIKE '%='
), scored AS (
  SELECT s.*, coalesce(CAST(s.f_before AS DOUBLE) / nullif(s.n_before, 0), s.base) AS rate_before,
         s.f_now - s.n_now * coalesce(CAST(s.f_before AS DOUBLE) / nullif(s.n_before, 0), s.base) AS excess
  FROM (
    -- Every event has a region: the regions' sums are the totals.
    SELECT c.*, CAST(sum(CASE WHEN dimension = 'region' THEN f_before END) OVER () AS DOUBLE)
                / nullif(sum(CASE WHEN dimension = 'region' THEN n_before END) OVER (), 0) AS base,
           sum(CASE WHEN dimension = 'region' THEN n_now END) OVER () AS total_now
    FROM (SELECT name, dimension, sum(now) AS n_now, sum(1 - now) AS n_before,
                 sum(now * failed) AS f_now, sum((1 - now) * failed) AS f_before
          FROM dims GROUP BY name, dimension) AS c
  ) AS s
), rises AS (
  SELECT max(positive) AS rise
  FROM (SELECT dimension, sum(CASE WHEN excess > 0 THEN excess ELSE 0 END) AS positive FROM scored GROUP BY dimension) AS d
), leaders AS (
  -- CAST: DataFusion 55 takes a row_number() for a key and, after m's GROUP BY of the pairs, takes
  -- either rank of a pair for the pair's key: GROUP BY a (valued) then grouped by pair, covers empty.
  SELECT name, n_now, n_before, {level} AS level, f_now, rate_before, excess, base,
         CAST(row_number() OVER (ORDER BY excess DESC, name) AS BIGINT) AS rank
  FROM scored WHERE excess > 0 AND n_now < {everything} * total_now
  ORDER BY excess DESC, name LIMIT {paired}
), holdings AS (
  -- The leading values each event holds, events alike counted together: a few thousand rows
  -- however many events (a join of the events with themselves held them all in memory).
  SELECT array_intersect(ev.entries, z.names) AS held, ev.now, ev.failed, ev.reason, count(*) AS n
  FROM ev CROSS JOIN (SELECT array_agg(name) AS names FROM leaders) AS z
  GROUP BY 1, 2, 3, 4
), m AS (
  -- Every pair of leading values, each with itself too (the diagonal): the events holding both.
  SELECT la.rank AS a, lb.rank AS b, la.name AS name_a, lb.name AS name_b, la.excess AS excess_a, lb.excess AS excess_b,
         la.n_now AS n_a, lb.n_now AS n_b, la.n_before AS before_a, lb.n_before AS before_b, la.level AS level_a,
         lb.level AS level_b, la.f_now AS f_a, lb.f_now AS f_b, lb.rate_before AS rate_b, la.base,
         sum(h.n * h.now) AS n_now, sum(h.n * (1 - h.now)) AS n_before, sum(h.n * h.now * h.failed) AS f_now,
         sum(h.n * (1 - h.now) * h.failed) AS f_before
  FROM (SELECT name_a, unnest(held) AS name_b, now, failed, n
        FROM (SELECT unnest(held) AS name_a, held, now, failed, n FROM holdings) AS u) AS h
  JOIN leaders AS la ON h.name_a = la.name
  JOIN leaders AS lb ON h.name_b = lb.name
  GROUP BY la.rank, lb.rank, la.name, lb.name, la.excess, lb.excess, la.n_now, lb.n_now, la.n_before, lb.n_before,
           la.level, lb.level, la.f_now, lb.f_now, lb.rate_before, la.base
), picked1 AS (
  -- b's excess within a; the first value: of those within a fifth of the most excess, the broadest
  -- (most events now, then before; of values holding the same events, a region before its node).
  SELECT *, first_value(a) OVER (ORDER BY near_a, n_a DESC, before_a DESC, level_a, a ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS first
  FROM (SELECT *, f_now - n_now * rate_b AS within,
               CASE WHEN excess_a >= 0.8 * max(excess_a) OVER () THEN 0 ELSE 1 END AS near_a
        FROM m) AS w
), picked2 AS (
  -- What each value adds beyond the first; the second: the most of it (the broadest within a fifth).
  SELECT *, first_value(b) OVER (ORDER BY candidate, near_b, n_b DESC, before_b DESC, level_b, b ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS second
  FROM (SELECT *, CASE WHEN b <> first AND adds > 0 THEN 0 ELSE 1 END AS candidate,
               CASE WHEN adds >= 0.8 * max(CASE WHEN b <> first THEN adds END) OVER () THEN 0 ELSE 1 END AS near_b
        FROM (SELECT *, excess_b - coalesce(max(CASE WHEN a = first THEN within END) OVER (PARTITION BY b), 0) AS adds
              FROM picked1) AS f) AS c
), chosen AS (
  SELECT *, CASE WHEN b = first THEN 1 WHEN b = second AND candidate = 0 THEN 2 ELSE 3 END AS step,
         CASE WHEN b = first THEN excess_b
              WHEN b = second AND candidate = 0 THEN adds
              ELSE adds - coalesce(max(CASE WHEN a = second THEN within END) OVER (PARTITION BY b), 0) END AS explained
  FROM picked2
), valued AS (
  SELECT max(CASE WHEN a = b THEN name_b END) AS name, max(CASE WHEN a = b THEN step END) AS step,
         max(CASE WHEN a = b THEN explained END) AS explained, max(CASE WHEN a = b THEN excess_b END) AS excess,
         max(CASE WHEN a = b THEN n_now END) AS n_now, max(CASE WHEN a = b THEN f_now END) AS f_now,
         max(CASE WHEN a = b THEN n_before END) AS n_before, max(CASE WHEN a = b THEN f_before END) AS f_before,
         string_agg(CASE WHEN a <> b AND explained <= 0 AND within >= 0.8 * excess_b AND excess_b >= 0.1 * excess_a
                         THEN name_b END, ', ' ORDER BY b) AS covers
  FROM chosen GROUP BY a
), reasons AS (
  -- From the held values too: the events are not read again for them.
  SELECT x.name, x.reason, sum(x.n) AS n, row_number() OVER (PARTITION BY x.name ORDER BY sum(x.n) DESC, x.reason) AS r
  FROM (SELECT unnest(held) AS name, reason, n FROM holdings WHERE now = 1 AND failed = 1) AS x
  GROUP BY x.name, x.reason
), rows AS (
  SELECT v.step, 'value' AS kind, v.name AS explanation, v.explained, v.excess, v.f_now, v.n_now, v.f_before, v.n_before,
         x.reason AS top_reason, x.n AS top_n, v.covers
  FROM valued AS v LEFT JOIN reasons AS x ON x.name = v.name AND x.r = 1
  WHERE v.explained > 0
  UNION ALL
  SELECT 4 AS step, 'pair' AS kind, p.name_a || ' & ' || p.name_b AS explanation, p.excess AS explained, p.excess,
         p.f_now, p.n_now, p.f_before, p.n_before, CAST(NULL AS VARCHAR) AS top_reason, CAST(NULL AS BIGINT) AS top_n,
         CAST(NULL AS VARCHAR) AS covers
  FROM (SELECT *, f_now - n_now * coalesce(CAST(f_before AS DOUBLE) / nullif(n_before, 0), base) AS excess
        FROM chosen WHERE a < b AND n_now > 0) AS p
  CROSS JOIN rises AS z
  WHERE CAST(p.f_now AS DOUBLE) / p.n_now > 1.25 * greatest(CAST(p.f_a AS DOUBLE) / p.n_a, CAST(p.f_b AS DOUBLE) / p.n_b)
    AND p.excess >= 0.1 * z.rise
)
SELECT row_number() OVER (ORDER BY r.step, r.explained DESC, r.explanation) AS rank,
       r.kind, r.explanation, r.explained / z.rise AS share, round(r.explained, 1) AS explained,
       round(r.excess, 1) AS excess,
       r.f_now AS failures, r.n_now AS total, CAST(r.f_now AS DOUBLE) / nullif(r.n_now, 0) AS now_rate,
       CAST(r.f_before AS DOUBLE) / nullif(r.n_before, 0) AS before_rate, r.n_before AS total_before,
       r.top_reason, CAST(r.top_n AS DOUBLE) / nullif(r.f_now, 0) AS top_reason_share, r.covers
FROM rows AS r CROSS JOIN rises AS z
ORDER BY rank{limit}",
        raw = crate::tables::RAW_SCHEMA,
        paired = PAIRED,
        everything = EVERYTHING,
        level = level(metric),
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
        assert!(sql.contains("'initiator=' || initiator") && sql.ends_with("LIMIT 3"), "{sql}");
    }

    /// Connacks at `minute` past 09:00 (the baseline) or 10:00 (the window) on 2026-12-04:
    /// `n` in `region` on `node` (none: an AWS IoT event, which names no node), `failed` of them refused.
    fn connacks(out: &mut Vec<String>, now: bool, region: &str, node: Option<&str>, n: usize, failed: usize) {
        let hour = if now { 10 } else { 9 };
        let node = node.map_or("NULL".to_string(), |n| format!("'{n}'"));
        for i in 0..n {
            let (fails, o) = (i < failed, out.len());
            let reason = if fails { "server_unavailable" } else { "success" };
            out.push(format!(
                "(0, {o}, TIMESTAMP '2026-12-04T{hour:02}:{:02}:00Z', DATE '2026-12-04', 'client.connack', {fails}, \
                 '{reason}', '{region}', {node}, 'emqx', 5, '10.0.0.{}', 'dev-{i}', 'user-{i}', NULL)",
                i % 60,
                i % 250
            ));
        }
    }

    /// The first value explained, on these events, over 10:00 to 11:00 against 09:00 to 10:00.
    async fn first(rows: &[String]) -> String {
        let ctx = datafusion::prelude::SessionContext::new();
        crate::functions::register(&ctx);
        crate::tables::register_schema(&ctx).unwrap();
        let columns = "kafka_partition, kafka_offset, ts, date, event, is_failure, reason, region, node, broker, \
                       proto_ver, peer_ip, clientid, username, attributes";
        let create = format!(
            "CREATE TABLE {}.events AS SELECT * FROM (VALUES {}) AS t({columns})",
            crate::tables::RAW_SCHEMA,
            rows.join(", ")
        );
        ctx.sql(&create).await.unwrap().collect().await.unwrap();
        let window = Window { since: Some(t("2026-12-04T10:00:00Z")), until: Some(t("2026-12-04T11:00:00Z")) };
        let periods = Periods::new(&window, None, t("2026-12-05T00:00:00Z"));
        let batches = ctx.sql(&sql(Metric::Connects, &periods, 1)).await.unwrap().collect().await.unwrap();
        let names = batches[0].column_by_name("explanation").unwrap();
        arrow::util::display::array_value_to_string(names, 0).unwrap()
    }

    /// A region served by one node fails: the region is named, not its node, though its
    /// baseline held one more event (a refusal its node did not report) and its node, holding
    /// the same events now, has a little more excess (the demo's outage, once in five runs).
    #[tokio::test]
    async fn a_region_is_named_before_its_one_node() {
        let mut rows = Vec::new();
        for now in [false, true] {
            connacks(&mut rows, now, "eu-west", Some("emqx@eu-west-1"), 100, 2);
            connacks(&mut rows, now, "sa-east", Some("emqx@sa-east-1"), 100, if now { 50 } else { 2 });
        }
        assert_eq!(first(&rows).await, "region=sa-east", "the same events");
        connacks(&mut rows, false, "sa-east", None, 1, 1);
        assert_eq!(first(&rows).await, "region=sa-east", "one more refusal before");
    }
}
