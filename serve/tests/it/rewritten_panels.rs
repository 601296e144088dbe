//! Panels that first pick their few clients from one event type (a run of each file), then
//! read the rest from those clients' rows only. Each gives what the one group-by over every
//! event of the range gave (its SQL before, below), on the fixture, over several ranges, as
//! they are and with the conditions widened until more than 20 clients qualify (so the cut at
//! 20 bites).

use anyhow::Result;
use connaudit_tests::fixture::warehouse;

use crate::dashboard::{expand, panel_sql};
use crate::harness::cli;

/// "Flapping clients" before: every event of the range grouped by client.
const FLAPPING: &str = "SELECT clientid,
       count(*) FILTER (WHERE event = 'client.connected') AS connects,
       count(*) FILTER (WHERE event = 'client.disconnected' AND is_failure) AS abnormal_disconnects,
       min(ts) AS first_seen, max(ts) AS last_seen
FROM events
WHERE $__timeFilter(ts) AND date BETWEEN CAST($__timeFrom() AS DATE) AND CAST($__timeTo() AS DATE)
GROUP BY clientid
HAVING count(*) FILTER (WHERE event = 'client.connected') >= 5
ORDER BY connects DESC, clientid
LIMIT 20";

/// "Client id fights" before: the connects and takeovers of the range grouped by client.
const FIGHTS: &str = "SELECT clientid,
       min(CASE WHEN event = 'client.connected' THEN peer_ip END) AS one_peer,
       max(CASE WHEN event = 'client.connected' THEN peer_ip END) AS other_peer,
       count(*) FILTER (WHERE event = 'client.disconnected') AS takeovers,
       count(*) FILTER (WHERE event = 'client.connected') AS connects,
       max(ts) AS last_seen
FROM events
WHERE $__timeFilter(ts) AND date BETWEEN CAST($__timeFrom() AS DATE) AND CAST($__timeTo() AS DATE)
  AND (event = 'client.connected' OR (event = 'client.disconnected' AND category = 'session-conflict'))
GROUP BY clientid
HAVING count(*) FILTER (WHERE event = 'client.disconnected') >= 3
   AND min(CASE WHEN event = 'client.connected' THEN peer_ip END)
       <> max(CASE WHEN event = 'client.connected' THEN peer_ip END)
ORDER BY takeovers DESC, clientid
LIMIT 20";

const RANGES: [(&str, &str); 3] = [
    ("2026-11-20T00:00:00Z", "2026-11-22T06:00:00Z"),
    ("2026-11-21T10:00:00Z", "2026-11-21T16:30:00Z"),
    ("2026-11-22T05:00:00Z", "2026-11-23T00:00:00Z"),
];

/// A variant of both statements: (text, replacement) pairs for the panel's SQL and for the
/// SQL before.
type Variant<'a> = (&'a [(&'a str, &'a str)], &'a [(&'a str, &'a str)]);

/// The panel `title`'s SQL against `before`, as they are and as each of `wider` variants
/// (thresholds lowered until more than 20 clients qualify, so the cut at 20 bites).
fn same_rows(title: &str, before: &str, wider: &[Variant<'_>]) -> Result<()> {
    let sql = panel_sql(title)?;
    assert!(sql.contains(" JOIN "), "{sql}");
    let wh = warehouse()?;
    let apply = |text: &str, pairs: &[(&str, &str)]| {
        pairs.iter().fold(text.to_string(), |t, (from, to)| {
            assert!(t.contains(from), "{title}: `{from}` is not in {t}");
            t.replace(from, to)
        })
    };
    let as_is: Variant<'_> = (&[], &[]);
    for (i, (to_new, to_old)) in std::iter::once(&as_is).chain(wider).enumerate() {
        let (new, old) = (apply(&sql, to_new), apply(before, to_old));
        for range in RANGES {
            let (got, want) = (cli(&wh, &expand(&new, range)?)?, cli(&wh, &expand(&old, range)?)?);
            if range == RANGES[0] {
                assert!(!want.is_empty(), "{title} variant {i} {range:?}: no client on the fixture");
                if i > 0 {
                    assert_eq!(want.len(), 20, "{title} variant {i}: the cut at 20 is not reached: {want:?}");
                }
            }
            assert_eq!(got, want, "{title} variant {i} {range:?}");
        }
    }
    Ok(())
}

#[test]
fn the_flapping_panel_gives_what_one_group_by_gave() -> Result<()> {
    same_rows(
        "Flapping clients",
        FLAPPING,
        &[(
            &[("HAVING count(*) >= 5", "HAVING count(*) >= 1")],
            &[("'client.connected') >= 5", "'client.connected') >= 1")],
        )],
    )
}

#[test]
fn the_fights_panel_gives_what_one_group_by_gave() -> Result<()> {
    // The fixture has one client taken over from two addresses; with one takeover and any
    // addresses (`<=`), most of its clients qualify.
    same_rows(
        "Client id fights",
        FIGHTS,
        &[(
            &[
                ("HAVING count(*) >= 3", "HAVING count(*) >= 1"),
                ("c.one_peer <> c.other_peer", "c.one_peer <= c.other_peer"),
            ],
            &[
                ("'client.disconnected') >= 3", "'client.disconnected') >= 1"),
                ("END)\n       <> max(", "END)\n       <= max("),
            ],
        )],
    )
}
