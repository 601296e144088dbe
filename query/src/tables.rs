//! The warehouse tables as DataFusion sees them: each Delta table at one snapshot, registered
//! unfiltered as `warehouse.<table>`; and the reason catalog from `model` as `reason_catalog`.

use std::sync::Arc;

use arrow::array::{BooleanArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use connaudit_model::{Reason, ReasonKind};
use connaudit_warehouse::{AsOf, Loaded, Warehouse};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::error::Result;

/// The schema that holds the unfiltered tables; `public` holds views over them.
pub const RAW_SCHEMA: &str = "warehouse";

/// Registers every table of the warehouse as `warehouse.<name>`, all read at one state (the
/// latest versions, or `as_of`), and the reason catalog as `reason_catalog`.
pub async fn register(ctx: &SessionContext, wh: &Warehouse, as_of: Option<AsOf>) -> Result<Vec<Loaded>> {
    register_schema(ctx)?;
    Ok(connaudit_warehouse::register(ctx, wh, RAW_SCHEMA, as_of).await?)
}

/// Creates the (empty) schema of the unfiltered tables and registers the reason catalog.
pub fn register_schema(ctx: &SessionContext) -> Result<()> {
    let name = ctx.state().config().options().catalog.default_catalog.clone();
    let catalog = ctx
        .catalog(&name)
        .ok_or_else(|| datafusion::error::DataFusionError::Internal("the default catalog is missing".into()))?;
    catalog.register_schema(RAW_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
    ctx.register_table("reason_catalog", Arc::new(reason_catalog()?))?;
    Ok(())
}

/// The reason catalog of `model`: what each CONNACK and disconnect reason means and what to do.
fn reason_catalog() -> Result<MemTable> {
    let all = Reason::all();
    let schema = Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("code", DataType::Int32, true),
        Field::new("protocol", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("is_failure", DataType::Boolean, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("aliases", DataType::Utf8, false),
    ]));
    let kind = |r: &Reason| match r.kind {
        ReasonKind::Connack => "connack",
        ReasonKind::Disconnect => "disconnect",
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(all.iter().map(kind))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.name))),
            Arc::new(Int32Array::from_iter(all.iter().map(|r| r.code.map(i32::from)))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.protocol.as_str()))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.category.as_str()))),
            Arc::new(BooleanArray::from_iter(all.iter().map(|r| Some(r.is_failure)))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.action))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.aliases.join(",")))),
        ],
    )?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}
