//! `connaudit audit ...`: each audit's output as a snapshot, and its numbers against DuckDB
//! asking the same question of the same files in its own SQL.

use anyhow::Result;
use connaudit_tests::duckdb;
use serde_json::{json, Value};

use crate::snapshot::assert_snapshot;
use crate::sql::table;
use connaudit_tests::fixture::{run, warehouse};

fn audit(args: &[&str], format: &str) -> Result<String> {
    let wh = warehouse()?;
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--warehouse", wh.to_str().unwrap(), "--format", format]);
    let (code, out, err) = run(&all)?;
    assert_eq!(code, 0, "{args:?}: {err}");
    Ok(out)
}

fn rows(args: &[&str]) -> Result<Vec<Value>> {
    Ok(serde_json::from_str(&audit(args, "json")?)?)
}

/// Picks `keys` from each row, for comparing with DuckDB's rows.
fn pick(rows: &[Value], keys: &[&str]) -> Vec<Value> {
    rows.iter().map(|r| Value::Object(keys.iter().map(|k| (k.to_string(), r[*k].clone())).collect())).collect()
}

#[test]
fn every_audit_prints_its_table() -> Result<()> {
    let cases: [(&str, &[&str]); 10] = [
        ("audit_client", &["client", "cam-7"]),
        ("audit_failures_region", &["failures"]),
        ("audit_failures_reason", &["failures", "--by", "reason"]),
        ("audit_failures_node", &["failures", "--by", "node"]),
        ("audit_failures_username", &["failures", "--by", "username", "--limit", "3"]),
        ("audit_reasons", &["reasons"]),
        ("audit_flapping", &["flapping", "--min", "10"]),
        ("audit_fights", &["fights"]),
        ("audit_storms", &["storms"]),
        ("audit_alerts", &["alerts"]),
    ];
    for (name, args) in cases {
        assert_snapshot(name, &audit(args, "table")?);
    }
    Ok(())
}

#[test]
fn client_timeline_flags_takeovers_and_a_second_device() -> Result<()> {
    let ours = rows(&["client", "cam-7"])?;
    let theirs = duckdb(&format!(
        "SELECT event, reason, peer_ip, node FROM {} WHERE clientid = 'cam-7' ORDER BY ts, \
         CASE event WHEN 'client.disconnected' THEN 0 WHEN 'client.connack' THEN 1 ELSE 2 END, kafka_partition, kafka_offset",
        table("events")?
    ))?;
    assert_eq!(pick(&ours, &["event", "reason", "peer_ip", "node"]), theirs);
    let flagged = |prefix: &str| ours.iter().filter(|r| r["flag"].as_str().unwrap_or("").starts_with(prefix)).count();
    assert_eq!(flagged("takeover"), 5);
    assert_eq!(flagged("peer changed"), 5, "every connect after the first came from the other device");
    assert_eq!(flagged("failure"), 2, "the wrong password and the keepalive timeout");
    let sessions: Vec<f64> = ours.iter().filter_map(|r| r["session_s"].as_f64()).collect();
    assert_eq!(sessions.len(), 6);
    assert_eq!(sessions[0], 55.0);
    Ok(())
}

#[test]
fn fights_find_the_shared_id_and_nothing_on_the_healthy_fleet() -> Result<()> {
    // cam-7's two devices took the id from each other five times in one minute; flap-1
    // reconnected twelve times from one address; the fleet's devices keep theirs.
    let ours = rows(&["fights"])?;
    let want = json!([{
        "clientid": "cam-7", "peers": 2, "peer_addresses": "10.1.0.7, 10.2.0.9", "switches": 5,
        "takeovers": 5, "connects": 6, "minutes": 1,
    }]);
    let keys = ["clientid", "peers", "peer_addresses", "switches", "takeovers", "connects", "minutes"];
    assert_eq!(Value::Array(pick(&ours, &keys)), want);
    // DuckDB counts the same switches from the same files.
    let theirs = duckdb(&format!(
        "SELECT clientid, count(*) AS switches FROM (SELECT clientid, peer_ip, \
           lag(peer_ip) OVER (PARTITION BY clientid ORDER BY ts, kafka_partition, kafka_offset) AS previous \
           FROM {} WHERE event = 'client.connected' AND peer_ip IS NOT NULL) \
         WHERE previous <> peer_ip GROUP BY clientid HAVING count(*) >= 1 ORDER BY switches DESC, clientid",
        table("events")?
    ))?;
    assert_eq!(pick(&rows(&["fights", "--min", "1"])?, &["clientid", "switches"]), theirs);
    Ok(())
}

#[test]
fn storms_find_the_node_restart_and_nothing_on_the_healthy_fleet() -> Result<()> {
    // 40 devices on emqx@node2 lost their sessions at 12:00:00 (server shutting down, the
    // catalog's go_away) and reconnected by 12:00:50; the fleet connects about once a minute
    // per node. One storm, whether counted by node or by region (us-east).
    let keys = ["minute", "connects", "clients", "disconnects_before", "ended_by"];
    let want = json!({"minute": "2026-11-21T12:00:00Z", "connects": 41, "clients": 41,
                      "disconnects_before": 40, "ended_by": "go_away by server 40"});
    for (by, key, value) in [("node", "node", "emqx@node2"), ("region", "region", "us-east")] {
        let ours = rows(&["storms", "--by", by])?;
        assert_eq!(ours.len(), 1, "--by {by}: {ours:?}");
        assert_eq!(ours[0][key], value, "--by {by}");
        assert_eq!(pick(&ours, &keys)[0], want, "--by {by}");
        assert!(ours[0]["baseline_per_minute"].as_f64().unwrap() < 1.0, "{ours:?}");
    }
    // In 10-second buckets against the 10 minutes before: the reconnects from 12:00:30 to
    // 12:00:50, bucket by bucket.
    let fine = rows(&["storms", "--bucket", "10s", "--history", "10m", "--min", "10"])?;
    let buckets: Vec<(&str, u64)> =
        fine.iter().map(|r| (r["bucket"].as_str().unwrap(), r["connects"].as_u64().unwrap())).collect();
    assert_eq!(buckets, [("2026-11-21T12:00:30Z", 20), ("2026-11-21T12:00:40Z", 20)], "{fine:?}");
    assert!(fine.iter().all(|r| r.get("baseline_per_bucket").is_some()), "{fine:?}");
    // A window that starts half an hour before the storm holds no hour of history to judge by.
    assert_eq!(rows(&["storms", "--since", "2026-11-21T11:30:00Z"])?, Vec::<Value>::new());
    // DuckDB counts the same connects in that minute, and the same disconnects before it.
    let theirs = duckdb(&format!(
        "SELECT count(*) FILTER (event = 'client.connected' AND ts >= TIMESTAMPTZ '2026-11-21 12:00:00+00') AS connects, \
                count(*) FILTER (event = 'client.disconnected') AS disconnects_before \
         FROM {} WHERE node = 'emqx@node2' AND ts >= TIMESTAMPTZ '2026-11-21 11:59:00+00' \
           AND ts < TIMESTAMPTZ '2026-11-21 12:01:00+00'",
        table("events")?
    ))?;
    assert_eq!(Value::Array(theirs), json!([{"connects": 41, "disconnects_before": 40}]));
    Ok(())
}

#[test]
fn sessions_count_lost_disconnects_per_node_as_played() -> Result<()> {
    // The fixture lost three disconnects, all on emqx@node3; every other session ended with
    // its disconnect, so a node's sessions are its disconnects (DuckDB's count) plus those.
    let ours = rows(&["sessions", "--by", "node"])?;
    let theirs = duckdb(&format!(
        "SELECT node, count(*) AS sessions, count(*) FILTER (is_failure) AS abnormal, \
                CASE WHEN node = 'emqx@node3' THEN 3 ELSE 0 END AS missing \
         FROM {} WHERE event = 'client.disconnected' GROUP BY node",
        table("events")?
    ))?;
    let mut want: Vec<Value> = theirs
        .into_iter()
        .map(|mut r| {
            let missing = r["missing"].as_u64().unwrap();
            r["sessions"] = json!(r["sessions"].as_u64().unwrap() + missing);
            r
        })
        .collect();
    want.sort_by_key(|r| (std::cmp::Reverse(r["missing"].as_u64()), std::cmp::Reverse(r["sessions"].as_u64())));
    assert_eq!(pick(&ours, &["node", "sessions", "abnormal", "missing"]), want);
    assert_eq!(ours[0]["node"], "emqx@node3");
    // The table holds them with the connect that began them and the event that proved them over.
    let lost = duckdb(&format!(
        "SELECT clientid, epoch_ms(connected_at) - epoch_ms(TIMESTAMPTZ '2026-11-21 10:00:00+00') AS began, \
                epoch_ms(ended_at) - epoch_ms(TIMESTAMPTZ '2026-11-21 10:00:00+00') AS proved, disconnected_at \
         FROM {} WHERE end_reason = 'missing' ORDER BY clientid",
        table("sessions")?
    ))?;
    let want: Vec<Value> = (0..3)
        .map(|i| json!({"clientid": format!("lost-{i}"), "began": 1_200_000 + i * 1_000, "proved": 2_400_000 + i * 1_000, "disconnected_at": null}))
        .collect();
    assert_eq!(lost, want);
    Ok(())
}

#[test]
fn online_devices_equal_duckdb_pairing_the_events_itself() -> Result<()> {
    // Two hours around the node restart, per node: a device counts in an hour when one of
    // its sessions overlaps it (DuckDB pairs a connect with the disconnect naming its
    // `connected_at`; the three lost sessions end where the next event proved them over).
    let window = ["--since", "2026-11-21T10:00:00Z", "--until", "2026-11-21T13:00:00Z"];
    let ours = rows(&[&["online", "--by", "node"][..], &window[..]].concat())?;
    let theirs = duckdb(&format!(
        "WITH steps AS (SELECT unnest(generate_series(TIMESTAMPTZ '2026-11-21 10:00:00+00', \
                                                      TIMESTAMPTZ '2026-11-21 12:00:00+00', INTERVAL 1 HOUR)) AS step), \
         spans AS ( \
            SELECT c.clientid, c.node, c.ts AS from_ts, \
                   coalesce(d.ts, CASE WHEN c.clientid LIKE 'lost-%' AND c.ts < TIMESTAMPTZ '2026-11-21 10:25:00+00' \
                                       THEN TIMESTAMPTZ '2026-11-21 10:40:00+00' + (c.ts - TIMESTAMPTZ '2026-11-21 10:20:00+00') END) AS to_ts \
            FROM {e} AS c LEFT JOIN {e} AS d ON d.clientid = c.clientid AND d.event = 'client.disconnected' \
                 AND d.connected_at = c.connected_at \
            WHERE c.event = 'client.connected' AND c.ts >= TIMESTAMPTZ '2026-11-14 13:00:00+00') \
         SELECT strftime(step, '%Y-%m-%dT%H:%M:%SZ') AS step, node, count(DISTINCT clientid) AS online \
         FROM steps JOIN spans ON from_ts < step + INTERVAL 1 HOUR AND (to_ts IS NULL OR to_ts >= step) \
         WHERE from_ts < TIMESTAMPTZ '2026-11-21 13:00:00+00' \
         GROUP BY ALL ORDER BY step, node",
        e = table("events")?
    ))?;
    assert_eq!(pick(&ours, &["step", "node", "online"]), theirs);
    // The restarted node's 40 devices were all online in the restart's hour, and still are.
    let node2 =
        |step: &str| ours.iter().find(|r| r["step"] == step && r["node"] == "emqx@node2").map(|r| r["online"].clone());
    assert!(node2("2026-11-21T12:00:00Z").unwrap().as_u64().unwrap() >= 40, "{ours:?}");
    Ok(())
}

#[test]
fn failures_by_an_attribute_find_the_rollout_and_compare_with_the_window_before() -> Result<()> {
    // The fixture's rollout: fw 2.4.1 fails 12 of 30 from 10:00 (none seen before), 2.4.0
    // 0 of 20 (1 of 40 in the two hours before); the fleet's CONNACKs carry no `fw`.
    let window = ["--since", "2026-11-21T10:00:00Z", "--until", "2026-11-21T12:00:00Z"];
    let ours = rows(&[&["failures", "--by", "attr.fw", "--limit", "0"][..], &window[..]].concat())?;
    let keys = ["attr.fw", "attempts", "failed", "attempts_before", "failure_rate", "before_rate"];
    assert_eq!(
        pick(&ours[..1], &keys),
        [json!({"attr.fw": "2.4.1", "attempts": 30, "failed": 12,
        "attempts_before": null, "failure_rate": 0.4, "before_rate": null})]
    );
    assert_eq!(ours[0]["failure_reasons"], "bad_username_or_password 12");
    let v240 = ours.iter().find(|r| r["attr.fw"] == "2.4.0").expect("2.4.0");
    assert_eq!(
        pick(std::slice::from_ref(v240), &keys),
        [json!({"attr.fw": "2.4.0", "attempts": 20, "failed": 0,
        "attempts_before": 40, "failure_rate": 0.0, "before_rate": 0.025})]
    );
    assert_eq!(v240["change_in_rate"], json!(-0.025));
    // DuckDB reads the same attribute out of the JSON, for both windows, every value.
    let count = |from: &str, to: &str| -> Result<Vec<Value>> {
        duckdb(&format!(
            "SELECT json_extract_string(attributes, '$.fw') AS fw, count(*) AS attempts, \
                    count(*) FILTER (is_failure) AS failed \
             FROM {} WHERE event = 'client.connack' AND ts >= TIMESTAMPTZ '{from}' AND ts < TIMESTAMPTZ '{to}' \
             GROUP BY 1 ORDER BY 1 NULLS FIRST",
            table("events")?
        ))
    };
    let mut now: Vec<Value> =
        ours.iter().map(|r| json!({"fw": r["attr.fw"], "attempts": r["attempts"], "failed": r["failed"]})).collect();
    now.sort_by_key(|r| r["fw"].as_str().map(str::to_string));
    assert_eq!(now, count("2026-11-21 10:00:00+00", "2026-11-21 12:00:00+00")?);
    let before: Vec<Value> = count("2026-11-21 08:00:00+00", "2026-11-21 10:00:00+00")?;
    for r in &before {
        let mine = ours.iter().find(|o| o["attr.fw"] == r["fw"]).expect("each value seen before is seen now");
        assert_eq!(mine["attempts_before"], r["attempts"], "{r}");
    }
    Ok(())
}

#[test]
fn failure_rates_equal_duckdb_for_every_grouping() -> Result<()> {
    for key in ["region", "node", "username"] {
        let ours = rows(&["failures", "--by", key, "--limit", "0"])?;
        let theirs = duckdb(&format!(
            "SELECT {key}, count(*) AS attempts, count(*) FILTER (is_failure) AS failed, failed / attempts AS failure_rate \
             FROM {} WHERE event = 'client.connack' GROUP BY {key} ORDER BY failure_rate DESC, failed DESC, {key}",
            table("events")?
        ))?;
        assert_eq!(pick(&ours, &[key, "attempts", "failed", "failure_rate"]), theirs, "--by {key}");
    }
    // The mix of the worst region, reason by reason.
    let ours = rows(&["failures"])?;
    let mix = duckdb(&format!(
        "SELECT string_agg(reason || ' ' || n, ', ' ORDER BY n DESC, reason) AS mix FROM \
         (SELECT reason, count(*) AS n FROM {} WHERE event = 'client.connack' AND is_failure AND region = 'us-east' GROUP BY reason)",
        table("events")?
    ))?;
    assert_eq!(ours[0]["region"], "us-east");
    assert_eq!(ours[0]["failure_reasons"], mix[0]["mix"]);
    let by_reason = rows(&["failures", "--by", "reason"])?;
    let theirs = duckdb(&format!(
        "SELECT reason, count(*) AS failed, count(*) / (SELECT count(*) FROM {t} WHERE event = 'client.connack') AS failure_rate \
         FROM {t} WHERE event = 'client.connack' AND is_failure GROUP BY reason ORDER BY failure_rate DESC, reason",
        t = table("events")?
    ))?;
    assert_eq!(pick(&by_reason, &["reason", "failed", "failure_rate"]), theirs);
    Ok(())
}

#[test]
fn reasons_equal_duckdb_and_carry_the_catalog_action() -> Result<()> {
    let ours = rows(&["reasons"])?;
    let theirs = duckdb(&format!(
        "SELECT CASE event WHEN 'client.connack' THEN 'connack' ELSE 'disconnect' END AS kind, reason, count(*) AS count, \
                count(*) / sum(count(*)) OVER (PARTITION BY event) AS share \
         FROM {} WHERE event <> 'client.connected' GROUP BY event, reason ORDER BY kind, count DESC, reason",
        table("events")?
    ))?;
    assert_eq!(pick(&ours, &["kind", "reason", "count", "share"]), theirs);
    let takenover = ours.iter().find(|r| r["reason"] == "takenover").expect("takenover");
    let catalog = connaudit_model::Reason::all().iter().find(|r| r.name == "takenover").expect("catalog");
    assert_eq!(takenover["action"], catalog.action);
    assert_eq!(takenover["category"], "session-conflict");
    Ok(())
}

#[test]
fn flapping_and_alerts_equal_duckdb() -> Result<()> {
    let ours = rows(&["flapping", "--min", "4"])?;
    let theirs = duckdb(&format!(
        "SELECT clientid, count(*) FILTER (event = 'client.connected') AS connects FROM {} \
         GROUP BY clientid HAVING connects >= 4 ORDER BY connects DESC, clientid LIMIT 50",
        table("events")?
    ))?;
    assert!(theirs.len() > 1, "the fleet has clients with 4 connects too");
    assert_eq!(pick(&ours, &["clientid", "connects"]), theirs);
    assert_eq!(ours[0]["clientid"], "flap-1");
    assert_eq!(ours[0]["top_disconnect_reason"], "tcp_closed");

    let ours = rows(&["alerts"])?;
    let theirs =
        duckdb(&format!("SELECT kind, region, clientid, count FROM {} ORDER BY minute, kind", table("alerts")?))?;
    assert_eq!(pick(&ours, &["kind", "region", "clientid", "count"]), theirs);
    assert_eq!(
        pick(&ours, &["kind", "count"]),
        vec![json!({"kind": "takeover_loop", "count": 5}), json!({"kind": "connack_failures", "count": 8})]
    );
    Ok(())
}

#[test]
fn show_sql_prints_what_query_can_run() -> Result<()> {
    let (code, sql, _) = run(&["audit", "failures", "--by", "node", "--show-sql"])?;
    assert_eq!(code, 0);
    assert_snapshot("audit_failures_node_sql", &sql);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("failures.sql");
    std::fs::write(&file, &sql)?;
    let wh = warehouse()?;
    let (code, out, err) =
        run(&["query", "--warehouse", wh.to_str().unwrap(), "--format", "csv", "-f", file.to_str().unwrap()])?;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, audit(&["failures", "--by", "node"], "csv")?);
    Ok(())
}

#[test]
fn explain_lists_the_values_a_leading_value_covers() -> Result<()> {
    // The fixture's busy clients are the only `busy-` client ids and user names: whatever one
    // explains, the other lies within it. DataFusion 55 once grouped the explain's `covers` per
    // pair of values instead of per value (a row_number() taken for a key): every one empty.
    let rows = rows(&["explain", "--since", "2026-11-21T00:00:00Z", "--until", "2026-11-22T00:00:00Z"])?;
    let covers = |name: &str| -> Vec<String> {
        let row = rows.iter().find(|r| r["explanation"] == name).unwrap_or_else(|| panic!("no {name}: {rows:#?}"));
        row["covers"].as_str().unwrap_or_default().split(", ").map(str::to_string).collect()
    };
    assert!(covers("clientid_prefix=busy-").contains(&"username_prefix=busy-".to_string()), "{rows:#?}");
    assert!(covers("attr.fw=2.4.1").contains(&"node=emqx@node1".to_string()), "{rows:#?}");
    assert!(
        rows.iter().all(|r| r["explanation"] != "username_prefix=busy-"),
        "a covered value is not a row: {rows:#?}"
    );
    Ok(())
}
