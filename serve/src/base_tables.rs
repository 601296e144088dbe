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

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }
}
