//! A zombie replica: a transformer frozen with SIGSTOP (in the middle of its work: it has a
//! backlog) for longer than the group's session and poll timeouts, its partitions taken over
//! by a second replica, then resumed with SIGCONT while still holding its batch. Its commits
//! are fenced by the partitions' Delta transactions: no row is lost or written twice.

use std::time::Duration;

use connaudit_tests::fleet::fleet;
use connaudit_tests::{free_port, produce_all, unique, Connaudit};

use crate::harness::{count, Rig};

/// 2024-05-06T00:00:00Z
const START: i64 = 1_714_953_600_000;
const EVENTS: usize = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_zombie_adds_no_rows() -> anyhow::Result<()> {
    let rig = Rig::mock(4)?;
    let (records, _) = fleet(EVENTS, 2000, START, 6 * 3_600_000, 0);
    let group = unique("zombie");
    let logs = rig.dir.path();
    let wh = rig.warehouse().display().to_string();
    let start = |name: &str| -> anyhow::Result<Connaudit> {
        let mut args = rig.cli_args(&wh, &group, free_port());
        // Short timeouts, so a frozen member leaves the group within seconds.
        for option in ["session.timeout.ms=6000", "heartbeat.interval.ms=1000", "max.poll.interval.ms=7000"] {
            args.extend(["--kafka-option".to_string(), option.to_string()]);
        }
        Connaudit::start(&args.iter().map(String::as_str).collect::<Vec<_>>(), &logs.join(format!("{name}.log")))
    };
    let mut zombie = start("zombie")?;
    produce_all(&rig.bootstrap, &rig.topic, &records[..EVENTS / 2]).await?;
    rig.wait_for_events(300, Duration::from_secs(60)).await?;
    // Frozen with a backlog, so mid-batch; the second replica takes every partition.
    zombie.signal_only("-STOP")?;
    let heir = start("heir")?;
    produce_all(&rig.bootstrap, &rig.topic, &records[EVENTS / 2..]).await?;
    rig.wait_for_events(EVENTS as u64 / 2 + 300, Duration::from_secs(90)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    zombie.signal_only("-CONT")?;
    rig.wait_for_events(EVENTS as u64, Duration::from_secs(120)).await?;
    // Whatever the zombie still held has had time to reach a commit (and be refused).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let zombie_log = std::fs::read_to_string(logs.join("zombie.log"))?;
    let fenced = zombie_log.matches("Another writer committed this partition meanwhile").count();
    eprintln!("the zombie's commits refused: {fenced}");
    zombie.stop()?;
    heir.stop()?;

    let events = rig.table("events");
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {events}"))?, EVENTS as u64);
    let distinct = format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {events})");
    assert_eq!(count(&distinct)?, EVENTS as u64);
    let summed = format!(
        "SELECT CAST(sum(connacks + connects + disconnects) AS BIGINT) AS n FROM {}",
        rig.table("region_failures")
    );
    let recount = format!("SELECT count(*) AS n FROM {events} WHERE event IN ('client.connack', 'client.connected', 'client.disconnected')");
    assert_eq!(count(&summed)?, count(&recount)?, "aggregates equal a recount");
    Ok(())
}
