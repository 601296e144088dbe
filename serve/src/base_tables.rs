//! The warehouse tables in `public` as tables, not views: `connaudit query` registers each one
//! as a view over `warehouse.<table>` (filtered by its window, and `events` with its `hour`),
//! and serve, whose window is everything, lists them as what they are to a BI tool. A tool
//! that opens `public` (Superset, Metabase, Grafana, DBeaver default to it) sees every table
//! there as a table, the derived views as views; `warehouse.<table>` keeps working.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use connaudit_warehouse::TABLES;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

/// Registers each warehouse table's view in `public` again as a base table.
pub async fn register(ctx: &SessionContext) -> DfResult<()> {
    for table in TABLES {
        if let Some(view) = ctx.deregister_table(table.name)? {
            ctx.register_table(table.name, Arc::new(AsTable(view)))?;
        }
    }
    Ok(())
}

/// A view shown as a table: planned as the view is (its plan is inlined), listed as a table.
#[derive(Debug)]
struct AsTable(Arc<dyn TableProvider>);

#[async_trait]
impl TableProvider for AsTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    // `#[async_trait]`'s desugaring written out: the view's own future is returned, and no
    // future of this crate captures `&[Expr]` (see "Compile time" in lib.rs).
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
        self.0.scan(state, projection, filters, limit)
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }
}
