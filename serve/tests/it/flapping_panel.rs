//! The "Flapping clients" panel picks its top clients from the connects alone, then reads the
//! rest of their columns from their own rows. It gives what the one group-by over every event
//! in the range gave (its SQL before, below), the cut at 20 included.

use std::path::Path;

use anyhow::{Context, Result};
use connaudit_tests::fixture::warehouse;
use serde_json::Value;

use crate::dashboard::{expand, variables};
use crate::harness::cli;

/// The panel's SQL before: every event of the range grouped by client.
const ONE_GROUP_BY: &str = "SELECT clientid,
       count(*) FILTER (WHERE event = 'client.connected') AS connects,
       count(*) FILTER (WHERE event = 'client.disconnected' AND is_failure) AS abnormal_disconnects,
       min(ts) AS first_seen, max(ts) AS last_seen
FROM events
WHERE $__timeFilter(ts) AND date BETWEEN CAST($__timeFrom() AS DATE) AND CAST($__timeTo() AS DATE)
GROUP BY clientid
HAVING count(*) FILTER (WHERE event = 'client.connected') >= 5
ORDER BY connects DESC, clientid
LIMIT 20";

#[test]
fn the_flapping_panel_gives_what_one_group_by_gave() -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/connaudit.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let panel = dashboard["panels"]
        .as_array()
        .context("no panels")?
        .iter()
        .find(|p| p["title"] == "Flapping clients")
        .context("no flapping panel")?;
    let sql = variables(&dashboard, panel["targets"][0]["rawSql"].as_str().context("no rawSql")?);
    let threshold = "HAVING count(*) >= 5";
    assert!(sql.contains(threshold) && sql.contains("JOIN top"), "{sql}");
    let wh = warehouse()?;
    let ranges = [
        ("2026-11-20T00:00:00Z", "2026-11-22T06:00:00Z"),
        ("2026-11-21T10:00:00Z", "2026-11-21T16:30:00Z"),
        ("2026-11-22T05:00:00Z", "2026-11-23T00:00:00Z"),
    ];
    // At the panel's threshold, and at 1: then more than 20 clients qualify and the cut bites.
    for min in [5, 1] {
        let (new, old) = (
            sql.replace(threshold, &format!("HAVING count(*) >= {min}")),
            ONE_GROUP_BY.replace(">= 5", &format!(">= {min}")),
        );
        for range in ranges {
            let (got, want) = (cli(&wh, &expand(&new, range)?)?, cli(&wh, &expand(&old, range)?)?);
            if range == ranges[0] {
                assert!(!want.is_empty(), "{min} {range:?}: no client on the fixture");
            }
            if min == 1 && range == ranges[0] {
                assert_eq!(want.len(), 20, "the cut at 20 is not reached: {want:?}");
            }
            assert_eq!(got, want, "{min} {range:?}");
        }
    }
    Ok(())
}
