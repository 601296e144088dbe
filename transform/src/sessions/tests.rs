use arrow::array::{Array, AsArray, RecordBatch};
use connaudit_model::TopicMap;
use connaudit_warehouse::{LIFECYCLE, SESSIONS};

use super::*;
use crate::regions::RegionMap;
use crate::row::Origin;

const T: i64 = 1_795_132_800_000;
const DAY: i64 = 86_400_000;

/// EMQX-shaped events of one client: `c@t` a connect at `T + t` seconds, `d@t/since/reason` a
/// disconnect naming the session begun at `since` (`-` for none).
fn rows(script: &str) -> Vec<Row> {
    script
        .split_whitespace()
        .enumerate()
        .map(|(offset, step)| {
            let (kind, rest) = step.split_once('@').unwrap();
            let mut parts = rest.split('/');
            let at = |s: &str| T + s.parse::<i64>().unwrap() * 1000;
            let ts = at(parts.next().unwrap());
            let json = if kind.ends_with('c') {
                let id = kind.trim_end_matches('c');
                format!(
                    r#"{{"event":"client.connected","clientid":"dev{id}","username":"u","peername":"10.0.0.{offset}:1","node":"n1","connected_at":{ts},"timestamp":{ts}}}"#
                )
            } else {
                let id = kind.trim_end_matches('d');
                let since = match parts.next().unwrap() {
                    "-" => String::new(),
                    s => format!(r#""connected_at":{},"#, at(s)),
                };
                let reason = parts.next().unwrap_or("normal");
                format!(
                    r#"{{"event":"client.disconnected","clientid":"dev{id}","reason":"{reason}",{since}"node":"n1","timestamp":{ts}}}"#
                )
            };
            let origin = Origin { partition: 3, offset: offset as i64, ..Default::default() };
            Row::parse(json.as_bytes(), &origin, &TopicMap::default(), &RegionMap::default()).unwrap()
        })
        .collect()
}

fn run<'a>(tracker: &mut Tracker, rows: &'a [Row]) -> Vec<Session<'a>> {
    let mut out = Vec::new();
    rows.iter().filter_map(Step::of).for_each(|s| tracker.step(&s, &mut out));
    out
}

/// (end reason, connected_at - T in s, ended_at - T in s, connect offset) of each session.
fn ends(script: &str) -> Vec<(String, Option<i64>, i64, Option<i64>)> {
    summary(&run(&mut Tracker::new(3, 7 * DAY), &rows(script)))
}

fn summary(sessions: &[Session<'_>]) -> Vec<(String, Option<i64>, i64, Option<i64>)> {
    let s = |ms: i64| (ms - T) / 1000;
    sessions
        .iter()
        .map(|x| (x.end_reason.to_string(), x.connected_at.map(s), s(x.ended_at), x.connect_offset))
        .collect()
}

fn e(reason: &str, from: Option<i64>, to: i64, connect: Option<i64>) -> (String, Option<i64>, i64, Option<i64>) {
    (reason.to_string(), from, to, connect)
}

#[test]
fn a_connect_and_its_disconnect_are_one_session() {
    let rows = rows("c@0 d@60/0/keepalive_timeout");
    let out = run(&mut Tracker::new(3, 7 * DAY), &rows);
    assert_eq!(out.len(), 1);
    let s = &out[0];
    assert_eq!((s.session_ms, &*s.end_reason, s.abnormal), (Some(60_000), "keepalive_timeout", Some(true)));
    assert_eq!(
        (s.peer_ip.as_deref(), s.username.as_deref(), s.connect_offset, s.kafka_offset),
        (Some("10.0.0.0"), Some("u"), Some(0), 1)
    );
}

#[test]
fn takeovers_in_either_order_lose_nothing() {
    // The old connection's disconnect before the new connect (as the fixture plays it) ...
    assert_eq!(
        ends("c@0 d@10/0/takenover c@10 d@20/10/takenover c@20 d@30/20"),
        [
            e("takenover", Some(0), 10, Some(0)),
            e("takenover", Some(10), 20, Some(2)),
            e("normal", Some(20), 30, Some(4))
        ]
    );
    // ... or after it, naming its session.
    assert_eq!(
        ends("c@0 c@10 d@10/0/takenover c@20 d@20/10/takenover d@30/20"),
        [
            e("takenover", Some(0), 10, Some(0)),
            e("takenover", Some(10), 20, Some(1)),
            e("normal", Some(20), 30, Some(3))
        ]
    );
}

#[test]
fn lost_disconnects_end_as_missing_when_the_next_events_prove_it() {
    // A connect, its disconnect lost, a new session that ends.
    assert_eq!(
        ends("c@0 c@100 d@160/100"),
        [e("missing", Some(0), 160, Some(0)), e("normal", Some(100), 160, Some(1))]
    );
    // Three connects: the first is proved lost by the third, the second by the end of the third.
    assert_eq!(
        ends("c@0 c@100 c@200 d@260/200"),
        [
            e("missing", Some(0), 200, Some(0)),
            e("missing", Some(100), 260, Some(1)),
            e("normal", Some(200), 260, Some(2))
        ]
    );
}

#[test]
fn brokers_without_connected_at_pair_by_order_and_takeover() {
    // No `connected_at` on the disconnect: a takeover ends the superseded session, the next
    // disconnect the latest.
    assert_eq!(
        ends("c@0 c@10 d@10/-/takenover d@50/-"),
        [e("takenover", Some(0), 10, Some(0)), e("normal", Some(10), 50, Some(1))]
    );
    assert_eq!(ends("c@0 c@10 d@50/-"), [e("missing", Some(0), 50, Some(0)), e("normal", Some(10), 50, Some(1))]);
}

#[test]
fn a_disconnect_whose_connect_was_lost_is_a_session_of_its_own() {
    // The open session began before the one the disconnect names: that one is over too.
    assert_eq!(ends("c@0 d@100/50"), [e("missing", Some(0), 100, Some(0)), e("normal", Some(50), 100, None)]);
    // No connect at all.
    assert_eq!(ends("d@100/50"), [e("normal", Some(50), 100, None)]);
}

#[test]
fn clients_are_paired_separately() {
    assert_eq!(
        ends("1c@0 2c@5 1d@10/0 2d@20/5"),
        [e("normal", Some(0), 10, Some(0)), e("normal", Some(5), 20, Some(1))]
    );
}

#[test]
fn sessions_older_than_the_horizon_are_forgotten() {
    let late = 8 * DAY / 1000;
    assert_eq!(ends(&format!("c@0 d@{late}/0")), [e("normal", Some(0), late, None)]);
    assert_eq!(ends(&format!("c@0 c@{late} d@{}/{late}", late + 1)), [e("normal", Some(late), late + 1, Some(1))]);
    let mut t = Tracker::new(3, 7 * DAY);
    run(&mut t, &rows(&format!("1c@0 2c@{late}")));
    t.sweep();
    assert_eq!(t.open(), 1);
}

/// Cutting the events anywhere, and rebuilding the state from the events table's rows before
/// the cut (as a newly assigned partition does), pairs exactly as one pass over them.
#[test]
fn state_rebuilt_from_events_pairs_as_one_pass() {
    let script =
        "1c@0 2c@1 1d@10/0/takenover 1c@10 2c@20 3d@25/3 1c@30 1d@30/10/takenover 2d@40/20 1d@50/30 3c@60 2c@70";
    let all = rows(script);
    let whole = run(&mut Tracker::new(3, 7 * DAY), &all);
    assert!(whole.iter().any(|s| s.end_reason == MISSING));
    let columns: Vec<usize> =
        LIFECYCLE.iter().map(|c| connaudit_warehouse::events_schema().index_of(c).unwrap()).collect();
    for cut in 0..=all.len() {
        let before = crate::events::to_batch(&all[..cut]).unwrap().project(&columns).unwrap();
        let mut rebuilt = Tracker::new(3, 7 * DAY);
        replay(&mut rebuilt, &[before]).unwrap();
        let after = run(&mut rebuilt, &all[cut..]);
        let mut joined = run(&mut Tracker::new(3, 7 * DAY), &all[..cut]);
        joined.extend(after);
        assert_eq!(joined, whole, "cut at {cut}");
    }
}

#[test]
fn rows_become_the_sessions_table() {
    let rows = rows("c@0 c@100 d@160/100");
    let out = run(&mut Tracker::new(3, 7 * DAY), &rows);
    let batch = to_batch(&out).unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.schema(), SESSIONS.file_schema());
    let reasons = batch.column_by_name("end_reason").unwrap().as_string::<i32>();
    assert_eq!((reasons.value(0), reasons.value(1)), ("missing", "normal"));
    assert!(batch.column_by_name("disconnected_at").unwrap().is_null(0));
}

/// AWS IoT Core names the connection (`sessionIdentifier`) in both events: a disconnect
/// ends the session it names, whatever came between.
#[test]
fn aws_sessions_pair_by_their_session_identifier() {
    let aws = |offset: i64, kind: &str, session: &str, at: i64| {
        let end = if kind == "disconnected" {
            r#","clientInitiatedDisconnect":true,"disconnectReason":"CLIENT_INITIATED_DISCONNECT""#
        } else {
            r#","ipAddress":"10.0.0.1""#
        };
        let json = format!(
            r#"{{"clientId":"a","timestamp":{},"eventType":"{kind}","sessionIdentifier":"{session}","principalIdentifier":"p","versionNumber":0{end}}}"#,
            T + at * 1000
        );
        let origin = Origin { partition: 3, offset, ..Default::default() };
        Row::parse(json.as_bytes(), &origin, &TopicMap::default(), &RegionMap::default()).unwrap()
    };
    // Two connects, then the first one's disconnect (not a takeover): by order it would end
    // the second and call the first lost; by name it ends the first, the second stays open.
    let rows = [aws(0, "connected", "s1", 0), aws(1, "connected", "s2", 10), aws(2, "disconnected", "s1", 20)];
    let mut t = Tracker::new(3, 7 * DAY);
    assert_eq!(summary(&run(&mut t, &rows)), [e("normal", Some(0), 20, Some(0))]);
    assert_eq!(t.open(), 1);
    let last = [aws(3, "disconnected", "s2", 30)];
    let out = run(&mut t, &last);
    assert_eq!(summary(&out), [e("normal", Some(10), 30, Some(1))]);
}

/// `online_hours` from a batch: connects open under their hour, each session under the hours it
/// began and ended in with its connect taken back; a replayed tail (offsets after 2) sums to
/// what the first attempt had not committed.
#[test]
fn online_hours_count_connects_open_until_a_session_ends_them() {
    use arrow::compute::filter_record_batch;
    use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
    // dev2's first connect is superseded and ends as missing when its second one ends.
    let rows = rows("1c@0 2c@100 1d@3700/0 3d@7300/- 2c@7400 2d@7500/7400");
    let ended = run(&mut Tracker::new(3, 7 * DAY), &rows);
    let changes = online::changes(&rows, &ended).unwrap();
    let table = |b: &RecordBatch| -> Vec<(i64, Option<i64>, i64, i64)> {
        let h = |a: &dyn Array, i: usize| {
            let a = a.as_primitive::<TimestampMicrosecondType>();
            a.is_valid(i).then(|| (a.value(i) / 1000 - T) / 3_600_000)
        };
        let n = b.column(4).as_primitive::<Int64Type>();
        (0..b.num_rows())
            .map(|i| (h(b.column(1), i).unwrap(), h(b.column(2), i), h(b.column(3), i).unwrap(), n.value(i)))
            .collect()
    };
    let all = online::summed(&changes).unwrap();
    assert_eq!(all.schema(), connaudit_warehouse::ONLINE_HOURS.file_schema());
    // (from hour, until hour, the row's hour, sessions): the open connects all ended.
    assert_eq!(table(&all), [(0, Some(1), 1, 1), (0, Some(2), 2, 1), (2, Some(2), 2, 2)]);
    let offsets = changes.column(5).as_primitive::<Int64Type>();
    let tail = arrow::array::BooleanArray::from(offsets.values().iter().map(|o| *o > 2).collect::<Vec<_>>());
    let tail = online::summed(&filter_record_batch(&changes, &tail).unwrap()).unwrap();
    assert_eq!(table(&tail), [(0, None, 0, -1), (0, Some(2), 2, 1), (2, Some(2), 2, 2)]);
}
