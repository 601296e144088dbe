//! `compact --retain-*` and `connaudit forget` while the transformer writes: the days past
//! retention go from events and sessions (their aggregates stay), the erased client's rows go
//! from every table that holds a client id, every other row stays exactly once, as DuckDB
//! reads the tables through their Delta logs; `--as-of` before the erasure is refused, and
//! after the vacuum no file on disk holds the erased rows.

use std::time::Duration;

use connaudit_tests::fleet::{fleet, Record};
use connaudit_tests::produce_all;
use connaudit_warehouse::{AsOf, CompactArgs, ForgetArgs, Warehouse, WarehouseFlag};
use datafusion::prelude::SessionContext;
use tokio_util::sync::CancellationToken;

use crate::compact::args;
use crate::harness::{count, Rig};

const DAY: i64 = 86_400_000;
const VICTIM: &str = "dev-00007";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_erasure_while_the_transformer_writes_lose_and_double_nothing() -> anyhow::Result<()> {
    let rig = Rig::new(2).await?;
    let now = chrono::Utc::now().timestamp_millis();
    // Two days that ended two months ago, and the last hour in two parts: the first holds the
    // client to erase, the second (written while retention and erasure run) does not.
    let (old, old_truth) = fleet(3000, 300, now - now % DAY - 60 * DAY, 2 * DAY, 0);
    let (mut first, _) = fleet(6000, 300, now - 3_600_000, 3_000_000, 0);
    let second = first.split_off(3000);
    let second: Vec<Record> = second.into_iter().filter(|r| r.key != VICTIM).collect();
    let victims = first.iter().filter(|r| r.key == VICTIM).count() as u64;
    assert!(victims > 0);
    produce_all(&rig.bootstrap, &rig.topic, &old).await?;
    produce_all(&rig.bootstrap, &rig.topic, &first).await?;
    let location = rig.warehouse().display().to_string();
    let mut cfg = rig.config();
    cfg.batch.max_events = 200;
    let stop = CancellationToken::new();
    let run = tokio::spawn(connaudit_transform::run(cfg, stop.clone()));
    rig.wait_for_events(6000, Duration::from_secs(90)).await?;
    let events = || rig.table("events");
    assert!(count(&format!("SELECT count(*) AS n FROM {} WHERE clientid = '{VICTIM}'", events()))? > victims);
    let before_erasure = chrono::Utc::now();

    // The second part arrives a slice at a time while retention and erasure commit.
    let producing = {
        let (bootstrap, topic) = (rig.bootstrap.clone(), rig.topic.clone());
        tokio::spawn(async move {
            for slice in second.chunks(300) {
                produce_all(&bootstrap, &topic, slice).await?;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            anyhow::Ok(second.len() as u64)
        })
    };
    let compacting = CompactArgs {
        retain_events: Some(Duration::from_secs(30 * 86_400)),
        retain_aggregates: Some(Duration::from_secs(400 * 86_400)),
        ..args(&location)
    };
    let forget = ForgetArgs {
        warehouse: WarehouseFlag::new(&location),
        clientid: Some(VICTIM.into()),
        username: None,
        retain: Duration::from_secs(3600),
    };
    let (compacted, forgotten) = tokio::join!(compacting.run(), forget.run());
    let (compacted, (erased, _)) = (compacted?, forgotten?);
    assert!(compacted.failed.is_empty(), "{compacted:?}");
    let expired: u64 = compacted.expired.iter().filter(|(t, _)| *t == "events").map(|(_, n)| n).sum();
    assert_eq!(expired, 3000, "{compacted:?}");
    assert!(erased.iter().any(|e| e.table == "events" && e.rows == victims), "{erased:?}");
    assert!(erased.iter().any(|e| e.table == "sessions" && e.rows > 0), "{erased:?}");
    let second = producing.await??;
    eprintln!("erasure commits tried per table, beside the transformer: {erased:?}");

    // Everything of the last hour but the erased client's rows, each once.
    let want = 3000 - victims + second;
    rig.wait_for_events(want, Duration::from_secs(90)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    run.await??;
    assert_eq!(count(&format!("SELECT count(*) AS n FROM {}", events()))?, want);
    let distinct =
        format!("SELECT count(*) AS n FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM {})", events());
    assert_eq!(count(&distinct)?, want);
    let cutoff =
        format!("DATE '{}'", chrono::DateTime::from_timestamp_millis(now - 30 * DAY).unwrap().format("%Y-%m-%d"));
    for table in ["events", "sessions"] {
        let old_rows = format!("SELECT count(*) AS n FROM {} WHERE date < {cutoff}", rig.table(table));
        assert_eq!(count(&old_rows)?, 0, "{table} keeps no day past retention");
    }
    for table in ["events", "sessions", "alerts"] {
        let left = format!("SELECT count(*) AS n FROM {} WHERE clientid = '{VICTIM}'", rig.table(table));
        assert_eq!(count(&left)?, 0, "{table} keeps none of the erased client's rows");
    }
    // The aggregates of the old days stay, whole.
    let old_connacks = format!(
        "SELECT CAST(sum(connacks) AS BIGINT) AS n FROM {} WHERE date < {cutoff}",
        rig.table("region_failures")
    );
    assert_eq!(count(&old_connacks)?, old_truth.regions.values().map(|r| r[0]).sum::<u64>());

    // A state from before the erasure is not read again.
    let ctx = SessionContext::new();
    let schema = std::sync::Arc::new(datafusion::catalog::MemorySchemaProvider::new());
    ctx.catalog("datafusion").unwrap().register_schema("w", schema)?;
    let wh = Warehouse::locate(&location).await?;
    let refused = connaudit_warehouse::register(&ctx, &wh, "w", Some(AsOf::Time(before_erasure))).await;
    assert!(refused.as_ref().is_err_and(|e| e.to_string().contains("erasure")), "{:?}", refused.map(|_| ()));

    // After the vacuum no file on disk holds an erased or expired row.
    CompactArgs { retain: Duration::ZERO, ..args(&location) }.run().await?;
    for table in ["events", "sessions"] {
        let on_disk = format!("read_parquet('{location}/{table}/date=*/*.parquet', hive_partitioning = true)");
        let sql = format!("SELECT count(*) AS n FROM {on_disk} WHERE clientid = '{VICTIM}' OR date < {cutoff}");
        assert_eq!(count(&sql)?, 0, "{table}'s files on disk");
    }
    Ok(())
}
