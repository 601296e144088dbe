use arrow::array::Date32Array;
use arrow::datatypes::{Field, Schema};
use datafusion::datasource::MemTable;

use super::*;

/// 5,000 clients taken over 5 times in one minute: more than an `IN` list holds, so every
/// client of the span is counted and the touched ones kept (`writer.rs` runs the same on
/// Delta tables, where the list overflowed a worker's stack).
#[tokio::test]
async fn thousands_of_touched_clients_are_counted() {
    let n = 5_000;
    let minute = 1_733_130_000_000_000_i64 / MINUTE_US * MINUTE_US;
    let clients: Vec<String> = (0..n).map(|i| format!("dev-{i:05}")).collect();
    let rows = n * 5;
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", ts_type(), false),
        Field::new("date", DataType::Date32, false),
        Field::new("clientid", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("event", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("peer_ip", DataType::Utf8, true),
    ]));
    let ts: Vec<i64> = (0..rows).map(|i| minute + i as i64).collect();
    let events = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(Date32Array::from(vec![(minute / DAY_US) as i32; rows])),
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| clients[i % n].as_str()))),
            Arc::new(StringArray::from(vec!["eu-west"; rows])),
            Arc::new(StringArray::from(vec!["client.disconnected"; rows])),
            Arc::new(StringArray::from(vec!["session-conflict"; rows])),
            Arc::new(StringArray::new_null(rows)),
        ],
    )
    .unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("events", Arc::new(MemTable::try_new(schema, vec![vec![events]]).unwrap())).unwrap();
    let alerts = MemTable::try_new(connaudit_warehouse::ALERTS.schema(), vec![vec![]]).unwrap();
    ctx.register_table("alerts", Arc::new(alerts)).unwrap();
    let mut touched = Touched::default();
    touched.takeovers.extend(clients.iter().map(|c| (minute, c.clone())));
    let limits = AlertConfig { connack_failures_per_minute: 5, takeovers_per_minute: 3, ..Default::default() };
    // On a thread with a tokio worker's stack (2 MiB), where transform evaluates alerts.
    let (rows, new) = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(evaluate(&ctx, &limits, &touched)).unwrap().expect("alerts")
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!((rows.len(), new.len()), (n, n));
    assert!(rows.iter().all(|a| a.count == 5 && a.kind == TAKEOVER_LOOP));
}

fn region_failures(rows: &[(i64, &str, i64)]) -> MemTable {
    let schema = connaudit_warehouse::REGION_FAILURES.schema();
    let n = rows.len();
    let minutes = TimestampMicrosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()).with_timezone("UTC");
    let zeros = || Arc::new(Int64Array::from(vec![0; n])) as ArrayRef;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(minutes),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            zeros(),
            zeros(),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            zeros(),
            zeros(),
            Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.0.div_euclid(DAY_US) as i32))),
        ],
    )
    .unwrap();
    MemTable::try_new(schema, vec![vec![batch]]).unwrap()
}

/// eu-west has two connects a minute for 90 minutes, then 150 in one: a storm (baseline
/// 2/min). us-east has 40 a minute, then 150: not five times its baseline. ap-south has
/// 150 in its first minute: no hour of history, not judged.
#[tokio::test]
async fn a_storm_is_far_above_the_regions_own_hour_before() {
    let start = 1_733_130_000_000_000_i64 / MINUTE_US * MINUTE_US;
    let storm = start + 90 * MINUTE_US;
    let mut rows: Vec<(i64, &str, i64)> = Vec::new();
    for m in 0..90 {
        rows.push((start + m * MINUTE_US, "eu-west", 2));
        rows.push((start + m * MINUTE_US, "us-east", 40));
    }
    rows.extend([(storm, "eu-west", 150), (storm, "us-east", 150), (storm, "ap-south", 150)]);
    let ctx = SessionContext::new();
    ctx.register_table("region_failures", Arc::new(region_failures(&rows))).unwrap();
    let alerts = MemTable::try_new(connaudit_warehouse::ALERTS.schema(), vec![vec![]]).unwrap();
    ctx.register_table("alerts", Arc::new(alerts)).unwrap();
    let mut touched = Touched::default();
    touched.connects.extend(["eu-west", "us-east", "ap-south"].map(|r| (storm, r.to_string())));
    let (_, new) = evaluate(&ctx, &AlertConfig::default(), &touched).await.unwrap().expect("an alert");
    assert_eq!(
        new,
        [Alert {
            minute: storm / 1000,
            kind: RECONNECT_STORM,
            region: "eu-west".into(),
            clientid: None,
            count: 150,
            threshold: 100,
            detail: Some("2.00 connects a minute in the hour before".into()),
        }]
    );
}
