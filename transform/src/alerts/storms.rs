//! The reconnect storm alert: a region's connects in a minute far above its average minute of
//! the hour before, read back from `region_failures`.

use datafusion::prelude::SessionContext;

use super::{date, ints, minutes, span, strings, time, Alert, Touched, DAY_US, MINUTE_US, RECONNECT_STORM};
use crate::config::AlertConfig;
use crate::error::Result;

/// Reconnect storms among the touched minutes and regions: connects in the minute at least
/// `storm_connects_per_minute` and `storm_factor` times the region's average minute of the
/// hour before. A minute is judged only when the region has connects an hour or more before it
/// (read back two hours): no history, no baseline, no storm.
pub(super) async fn storms(ctx: &SessionContext, limits: &AlertConfig, touched: &Touched) -> Result<Vec<Alert>> {
    let Some((from, to)) = span(&touched.connects) else { return Ok(Vec::new()) };
    let first = touched.connects.iter().map(|(m, _)| *m).min().unwrap_or_default();
    let last = touched.connects.iter().map(|(m, _)| *m).max().unwrap_or_default();
    // Two hours back: the hour a baseline needs, and an hour to tell that the region had one.
    let back = first - 120 * MINUTE_US;
    let lookback = time(back);
    let (day0, day1) = (date(back.div_euclid(DAY_US) as i32), date(last.div_euclid(DAY_US) as i32));
    let (min, factor) = (limits.storm_connects_per_minute, limits.storm_factor);
    let sql = format!(
        "WITH per AS ( \
            SELECT minute, region, CAST(sum(connects) AS BIGINT) AS connects FROM region_failures \
            WHERE date BETWEEN DATE '{day0}' AND DATE '{day1}' AND minute >= '{lookback}' AND minute < '{to}' \
            GROUP BY minute, region), \
         judged AS ( \
            SELECT minute, region, connects, \
                   coalesce(sum(connects) OVER (PARTITION BY region ORDER BY minute \
                       RANGE BETWEEN INTERVAL '60 minutes' PRECEDING AND INTERVAL '1 minute' PRECEDING), 0) AS hour_before, \
                   min(minute) OVER (PARTITION BY region) AS first_minute \
            FROM per) \
         SELECT minute, region, connects AS count, CAST(hour_before AS BIGINT) AS hour_before FROM judged \
         WHERE minute >= '{from}' AND first_minute <= minute - INTERVAL '60 minutes' \
           AND connects >= {min} AND connects >= {factor} * hour_before / 60.0"
    );
    let mut out = Vec::new();
    for b in ctx.sql(&sql).await?.collect().await? {
        let (minutes, regions, counts, before) =
            (minutes(&b)?, strings(&b, "region")?, ints(&b, "count")?, ints(&b, "hour_before")?);
        for i in 0..b.num_rows() {
            if !touched.connects.contains(&(minutes.value(i), regions.value(i).to_string())) {
                continue;
            }
            let baseline = before.value(i) as f64 / 60.0;
            out.push(Alert {
                minute: minutes.value(i) / 1000,
                kind: RECONNECT_STORM,
                region: regions.value(i).to_string(),
                clientid: None,
                count: counts.value(i),
                threshold: (min as f64).max((factor * baseline).ceil()) as i64,
                detail: Some(format!("{baseline:.2} connects a minute in the hour before")),
            });
        }
    }
    Ok(out)
}
