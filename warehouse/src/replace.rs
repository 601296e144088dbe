//! Rewriting whole `date` partitions of a small table in one commit: the table's files of those
//! days removed, the new content added, with the caller's `txn` actions, against the version
//! `committed` last read. The transformer keeps `alerts` this way: one row per alert, its
//! count updated as more of the minute is committed.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use delta_kernel::expressions::Scalar;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use deltalake::DeltaTableError;
use indexmap::IndexMap;
use parquet::file::properties::WriterProperties;

use crate::commit::{split_by_day, Appended, TableWriter};
use crate::error::{Error, Result};
use crate::tables::PARTITION;

const DAY_MS: i64 = 86_400_000;

impl TableWriter {
    /// The versions of several app ids, from one fresh read of the log (-1 for none).
    pub async fn committed_all(&mut self, apps: &[&str]) -> Result<Vec<i64>> {
        let name = self.table.name;
        self.delta.update_incremental(None).await.map_err(Error::delta(name))?;
        let state = self.delta.snapshot().map_err(Error::delta(name))?;
        let mut out = Vec::with_capacity(apps.len());
        for app in apps {
            let v = state.transaction_version(self.delta.log_store().as_ref(), app).await;
            out.push(v.map_err(Error::delta(name))?.unwrap_or(-1));
        }
        Ok(out)
    }

    /// The table as DataFusion reads it, at the version last read (strings as `Utf8`).
    pub async fn provider(&self) -> Result<Arc<dyn TableProvider>> {
        if self.delta.version().is_none() {
            let empty = datafusion::datasource::MemTable::try_new(self.table.schema(), vec![vec![]])?;
            return Ok(Arc::new(empty));
        }
        Ok(self.delta.table_provider().with_session(Arc::new(crate::live::plain_strings())).await?)
    }

    /// Replaces the content of the `days` partitions (days since the epoch) with `batches`
    /// (whose rows must all fall in those days) and records `txns`, in one commit against the
    /// version last read. Any conflicting commit meanwhile (another writer's `txn` of one of
    /// these app ids, or files of these days removed) gives `Moved`: read and decide again.
    pub async fn replace_days(
        &mut self,
        days: &[i32],
        batches: &[RecordBatch],
        txns: &[(&str, i64)],
        props: WriterProperties,
    ) -> Result<Appended> {
        let name = self.table.name;
        let state = self.delta.snapshot().map_err(Error::delta(name))?;
        let dates: Vec<String> = days.iter().map(|d| date(*d)).collect();
        let mut actions: Vec<Action> = Vec::new();
        for file in state.log_data() {
            let value = file.partition_values_map().get(PARTITION).cloned().flatten();
            if value.is_some_and(|v| dates.contains(&v)) {
                actions.push(Action::Remove(file.remove_action(true)));
            }
        }
        let mut writer = RecordBatchWriter::for_table(&self.delta).map_err(Error::delta(name))?;
        writer = writer.with_writer_properties(props);
        for (day, batch) in split_by_day(batches, self.table.time)? {
            if !days.contains(&day) {
                return Err(Error::Config(format!("{name}: a row of day {} is outside the days replaced", date(day))));
            }
            let partition = IndexMap::from([(PARTITION.to_string(), Scalar::Date(day))]);
            writer.write_partition(batch, &partition, WriteMode::Default).await.map_err(Error::delta(name))?;
        }
        let adds = writer.flush().await.map_err(Error::delta(name))?;
        let (files, bytes) = (adds.len(), adds.iter().map(|a| a.size.max(0) as u64).sum());
        actions.extend(adds.into_iter().map(Action::Add));
        let txns: Vec<Transaction> = txns.iter().map(|(app, v)| Transaction::new(*app, *v)).collect();
        let properties = CommitProperties::default().with_application_transactions(txns);
        let predicate =
            format!("{PARTITION} IN ({})", dates.iter().map(|d| format!("'{d}'")).collect::<Vec<_>>().join(", "));
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(vec![PARTITION.to_string()]),
            predicate: Some(predicate),
        };
        let commit =
            CommitBuilder::from(properties).with_actions(actions).build(Some(state), self.delta.log_store(), operation);
        match commit.await {
            Ok(done) => Ok(Appended::Committed { version: done.version(), files, bytes }),
            Err(DeltaTableError::Transaction { source: TransactionError::CommitConflict(_) }) => Ok(Appended::Moved),
            Err(e) => Err(Error::delta(name)(e)),
        }
    }
}

fn date(day: i32) -> String {
    chrono::DateTime::from_timestamp_millis(i64::from(day) * DAY_MS).unwrap_or_default().format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};

    use super::*;
    use crate::commit::alerts_app_id;
    use crate::files::writer_properties;
    use crate::store::Warehouse;
    use crate::tables::ALERTS;

    fn alerts(count: i64) -> RecordBatch {
        let minute = TimestampMicrosecondArray::from(vec![1_717_200_000_000_000]).with_timezone("UTC");
        RecordBatch::try_new(
            ALERTS.file_schema(),
            vec![
                Arc::new(minute),
                Arc::new(StringArray::from(vec!["connack_failures"])),
                Arc::new(StringArray::from(vec!["eu"])),
                Arc::new(StringArray::from(vec![None::<&str>])),
                Arc::new(Int64Array::from(vec![count])),
                Arc::new(Int64Array::from(vec![5])),
                Arc::new(StringArray::from(vec![None::<&str>])),
            ],
        )
        .unwrap()
    }

    /// Two writers rewrite the same day from the same state: the second is refused, and after
    /// reading again it rewrites on top of the first.
    #[tokio::test]
    async fn two_rewrites_from_one_state_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        let mut a = TableWriter::new(&ALERTS, wh.writable(&ALERTS).await.unwrap());
        let mut b = TableWriter::new(&ALERTS, wh.writable(&ALERTS).await.unwrap());
        let serial = alerts_app_id("g", "t");
        let day = [(1_717_200_000_000_i64 / DAY_MS) as i32];
        for (p, w) in [("p1", &mut a), ("p2", &mut b)] {
            assert_eq!(w.committed_all(&[p, &serial]).await.unwrap(), vec![-1, -1]);
        }
        let props = || writer_properties(&ALERTS, 0);
        let first = a.replace_days(&day, &[alerts(7)], &[("p1", 10), (&serial, 0)], props()).await.unwrap();
        assert!(matches!(first, Appended::Committed { .. }), "{first:?}");
        let second = b.replace_days(&day, &[alerts(6)], &[("p2", 20), (&serial, 0)], props()).await.unwrap();
        assert_eq!(second, Appended::Moved, "a rewrite from a state another writer replaced");
        assert_eq!(b.committed_all(&["p2", &serial]).await.unwrap(), vec![-1, 0]);
        let third = b.replace_days(&day, &[alerts(9)], &[("p2", 20), (&serial, 1)], props()).await.unwrap();
        assert!(matches!(third, Appended::Committed { .. }), "{third:?}");
        // One file for the day, the last rewrite's.
        let state = b.delta.snapshot().unwrap();
        assert_eq!(state.log_data().into_iter().count(), 1);
    }
}
