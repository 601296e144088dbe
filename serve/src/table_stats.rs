//! `pg_stat_user_tables` with each warehouse table's live row count (`n_live_tup`), which
//! Metabase reads as a table's estimated size while it syncs (the catalog library's is empty).
//! The count is the one the Delta log records for the table's current files, read from the
//! scan plan's statistics when the view is queried: no data file is opened. Scans and vacuums
//! are not tracked here: their counters are 0, as after PostgreSQL's `pg_stat_reset()`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{new_null_array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};
use futures::future::BoxFuture;

/// One table listed: its oid, schema, name, and the provider whose files are counted.
pub type Listed = (i32, String, &'static str, Arc<dyn TableProvider>);

#[derive(Debug)]
pub struct TableStats {
    schema: SchemaRef,
    tables: Vec<Listed>,
}

impl TableStats {
    pub fn new(schema: SchemaRef, tables: Vec<Listed>) -> Self {
        TableStats { schema, tables }
    }

    async fn batch(&self, state: &dyn Session) -> DfResult<RecordBatch> {
        let mut live = Vec::with_capacity(self.tables.len());
        for (_, _, _, provider) in &self.tables {
            let plan = provider.scan(state, None, &[], None).await?;
            let stats = StatisticsContext::new().compute(plan.as_ref(), &StatisticsArgs::new())?;
            live.push(stats.num_rows.get_value().map(|n| *n as i64).unwrap_or(0));
        }
        let n = self.tables.len();
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match (f.name().as_str(), f.data_type()) {
                    ("relid", _) => Arc::new(self.tables.iter().map(|t| t.0).collect::<Int32Array>()),
                    ("schemaname", _) => {
                        Arc::new(self.tables.iter().map(|t| Some(t.1.as_str())).collect::<StringArray>())
                    }
                    ("relname", _) => Arc::new(self.tables.iter().map(|t| Some(t.2)).collect::<StringArray>()),
                    ("n_live_tup", _) => Arc::new(Int64Array::from(live.clone())),
                    (_, DataType::Int64) => Arc::new(Int64Array::from(vec![0; n])),
                    (_, DataType::Float64) => Arc::new(datafusion::arrow::array::Float64Array::from(vec![0.0; n])),
                    (_, t) => new_null_array(t, n),
                }
            })
            .collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[async_trait]
impl TableProvider for TableStats {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    // `#[async_trait]`'s desugaring written out, the future built by `scan` below (see
    // "Compile time" in lib.rs).
    fn scan<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        state: &'life1 dyn Session,
        projection: Option<&'life2 Vec<usize>>,
        filters: &'life3 [Expr],
        limit: Option<usize>,
    ) -> BoxFuture<'async_trait, DfResult<Arc<dyn ExecutionPlan>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        scan(self, state, projection, filters, limit)
    }
}

/// The statistics as a one-batch table, scanned.
fn scan<'a>(
    stats: &'a TableStats,
    state: &'a dyn Session,
    projection: Option<&'a Vec<usize>>,
    filters: &'a [Expr],
    limit: Option<usize>,
) -> BoxFuture<'a, DfResult<Arc<dyn ExecutionPlan>>> {
    Box::pin(async move {
        let table = MemTable::try_new(stats.schema.clone(), vec![vec![stats.batch(state).await?]])?;
        table.scan(state, projection, filters, limit).await
    })
}
