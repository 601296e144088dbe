//! Appending a batch of one Kafka partition to a table, exactly once: the batch's rows and an
//! application transaction (`txn`: app id naming the partition, version = the batch's last
//! offset) in one Delta commit, checked against the version the writer read. A commit whose
//! app transaction moved meanwhile (another replica took the partition) fails instead of
//! adding rows twice.

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use delta_kernel::expressions::Scalar;
use deltalake::kernel::transaction::{CommitBuilder, CommitConflictError, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::{DeltaOperation, OutputMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use deltalake::{DeltaTable, DeltaTableError};
use indexmap::IndexMap;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::tables::{Table, PARTITION};

const DAY_US: i64 = 86_400_000_000;

/// The app id of a Kafka partition's transactions: group, topic and partition.
pub fn app_id(group: &str, topic: &str, partition: i32) -> String {
    format!("connaudit:{group}:{topic}:{partition}")
}

/// The app id every commit to `alerts` by the group carries, one version more each time: two
/// writers rewriting the alerts from the same state conflict.
pub fn alerts_app_id(group: &str, topic: &str) -> String {
    format!("connaudit:{group}:{topic}:alerts")
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Committed as this table version, with this many files and bytes.
    Committed { version: u64, files: usize, bytes: u64 },
    /// Another writer committed for the same app id since it was read: nothing was added;
    /// read the committed version again and decide anew.
    Moved,
}

/// One table, as a writer holds it between batches.
pub struct TableWriter {
    pub table: &'static Table,
    pub(crate) delta: DeltaTable,
}

impl TableWriter {
    pub fn new(table: &'static Table, delta: DeltaTable) -> Self {
        TableWriter { table, delta }
    }

    /// Reads the latest table version and returns the app's committed version (-1 for none).
    /// The next `append` commits against exactly this version of the table.
    pub async fn committed(&mut self, app_id: &str) -> Result<i64> {
        let name = self.table.name;
        self.delta.update_incremental(None).await.map_err(Error::delta(name))?;
        let state = self.delta.snapshot().map_err(Error::delta(name))?;
        let version = state.transaction_version(self.delta.log_store().as_ref(), app_id).await;
        Ok(version.map_err(Error::delta(name))?.unwrap_or(-1))
    }

    /// Writes `batches` (the table's file columns, any order of dates) and commits them with
    /// the transaction `(app_id, version)`, on top of the version `committed` read.
    pub async fn append(
        &mut self,
        batches: &[RecordBatch],
        app_id: &str,
        version: i64,
        props: WriterProperties,
    ) -> Result<Appended> {
        let name = self.table.name;
        let mut writer = RecordBatchWriter::for_table(&self.delta).map_err(Error::delta(name))?;
        writer = writer.with_writer_properties(props);
        for (day, batch) in split_by_day(batches, self.table.time)? {
            let partition = IndexMap::from([(PARTITION.to_string(), Scalar::Date(day))]);
            writer.write_partition(batch, &partition, WriteMode::Default).await.map_err(Error::delta(name))?;
        }
        let adds = writer.flush().await.map_err(Error::delta(name))?;
        let (files, bytes) = (adds.len(), adds.iter().map(|a| a.size.max(0) as u64).sum());
        let actions = adds.into_iter().map(Action::Add).collect();
        let properties = CommitProperties::default().with_application_transaction(Transaction::new(app_id, version));
        let operation = DeltaOperation::StreamingUpdate {
            output_mode: OutputMode::Append,
            query_id: app_id.to_string(),
            epoch_id: version,
        };
        let state = self.delta.snapshot().map_err(Error::delta(name))?;
        let commit =
            CommitBuilder::from(properties).with_actions(actions).build(Some(state), self.delta.log_store(), operation);
        match commit.await {
            Ok(done) => Ok(Appended::Committed { version: done.version(), files, bytes }),
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
            }) => Ok(Appended::Moved),
            Err(e) => Err(Error::delta(name)(e)),
        }
    }
}

/// Splits batches by the UTC day of a microsecond timestamp column, keeping row order.
pub fn split_by_day(batches: &[RecordBatch], column: &str) -> Result<Vec<(i32, RecordBatch)>> {
    let mut out: Vec<(i32, Vec<RecordBatch>)> = Vec::new();
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        let ts = b
            .column_by_name(column)
            .ok_or_else(|| Error::Config(format!("the batch has no column {column}")))?
            .as_primitive::<TimestampMicrosecondType>();
        let days: Vec<i32> = ts.values().iter().map(|v| v.div_euclid(DAY_US) as i32).collect();
        let mut distinct = days.clone();
        distinct.sort_unstable();
        distinct.dedup();
        for day in distinct {
            let part = if distinct_is_one(&days) {
                b.clone()
            } else {
                filter_record_batch(b, &BooleanArray::from(days.iter().map(|d| *d == day).collect::<Vec<_>>()))?
            };
            match out.iter_mut().find(|(d, _)| *d == day) {
                Some((_, v)) => v.push(part),
                None => out.push((day, vec![part])),
            }
        }
    }
    out.into_iter()
        .map(|(day, parts)| {
            let schema = parts[0].schema();
            Ok((day, arrow::compute::concat_batches(&schema, &parts)?))
        })
        .collect()
}

fn distinct_is_one(days: &[i32]) -> bool {
    days.windows(2).all(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::tables::ts_type;

    #[test]
    fn batches_split_by_utc_day_in_row_order() {
        let schema =
            Arc::new(Schema::new(vec![Field::new("ts", ts_type(), false), Field::new("n", DataType::Int32, false)]));
        let ts = TimestampMicrosecondArray::from(vec![-1, 0, DAY_US, 5, DAY_US + 1]).with_timezone("UTC");
        let b =
            RecordBatch::try_new(schema, vec![Arc::new(ts), Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5]))]).unwrap();
        let parts = split_by_day(&[b], "ts").unwrap();
        let got: Vec<(i32, Vec<i32>)> = parts
            .iter()
            .map(|(d, b)| (*d, b.column(1).as_primitive::<arrow::datatypes::Int32Type>().values().to_vec()))
            .collect();
        assert_eq!(got, vec![(-1, vec![1]), (0, vec![2, 4]), (1, vec![3, 5])]);
    }
}

#[cfg(test)]
pub(crate) mod table_tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};

    use super::*;
    use crate::files::writer_properties;
    use crate::store::Warehouse;
    use crate::tables::{events_schema, EVENTS};

    /// `n` events of one day, offsets `first..first+n`.
    pub(crate) fn events(first: i64, n: usize) -> RecordBatch {
        let schema = events_schema();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                let nulls = f.is_nullable();
                match (f.name().as_str(), f.data_type()) {
                    ("kafka_offset", _) => Arc::new(Int64Array::from_iter_values(first..first + n as i64)),
                    (_, arrow::datatypes::DataType::Utf8) => {
                        Arc::new(StringArray::from_iter((0..n).map(|i| (!nulls).then(|| format!("c{i}")))))
                    }
                    (_, arrow::datatypes::DataType::Timestamp(..)) => Arc::new(
                        TimestampMicrosecondArray::from_iter(
                            (0..n).map(|i| (!nulls).then_some(1_700_000_000_000_000 + i as i64)),
                        )
                        .with_timezone("UTC"),
                    ),
                    (_, arrow::datatypes::DataType::Int32) => {
                        Arc::new(Int32Array::from_iter((0..n).map(|_| (!nulls).then_some(0))))
                    }
                    (_, arrow::datatypes::DataType::Int64) => {
                        Arc::new(Int64Array::from_iter((0..n).map(|_| (!nulls).then_some(0))))
                    }
                    (_, arrow::datatypes::DataType::Boolean) => {
                        Arc::new(BooleanArray::from_iter((0..n).map(|_| (!nulls).then_some(false))))
                    }
                    (name, t) => panic!("{name}: {t}"),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[tokio::test]
    async fn a_commit_holds_its_rows_and_a_moved_transaction_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        let mut a = TableWriter::new(&EVENTS, wh.writable(&EVENTS).await.unwrap());
        let mut zombie = TableWriter::new(&EVENTS, wh.writable(&EVENTS).await.unwrap());
        let app = app_id("g", "t", 3);
        assert_eq!(a.committed(&app).await.unwrap(), -1);
        assert_eq!(zombie.committed(&app).await.unwrap(), -1);
        let props = || writer_properties(&EVENTS, 10);
        let done = a.append(&[events(0, 10)], &app, 9, props()).await.unwrap();
        assert!(matches!(done, Appended::Committed { version: 1, files: 1, .. }), "{done:?}");
        // The zombie read before that commit: its own commit for the same app id is refused.
        assert_eq!(zombie.append(&[events(0, 10)], &app, 9, props()).await.unwrap(), Appended::Moved);
        assert_eq!(zombie.committed(&app).await.unwrap(), 9);
        // Another partition's app id is not in the way.
        let other = app_id("g", "t", 4);
        assert_eq!(zombie.committed(&other).await.unwrap(), -1);
        let done = zombie.append(&[events(0, 5)], &other, 4, props()).await.unwrap();
        assert!(matches!(done, Appended::Committed { version: 2, .. }), "{done:?}");
        // An empty batch still moves the position.
        assert_eq!(a.committed(&app).await.unwrap(), 9);
        assert!(matches!(a.append(&[], &app, 12, props()).await.unwrap(), Appended::Committed { files: 0, .. }));
        assert_eq!(a.committed(&app).await.unwrap(), 12);
    }
}
