//! Catalog questions about keys and indexes, which the warehouse has none of. pgjdbc's
//! `getPrimaryKeys` and `getIndexInfo` (what Metabase, DBeaver and Tableau call for each table)
//! expand `pg_index.indkey` with `information_schema._pg_expandarray(...)` and read its fields,
//! which DataFusion cannot plan; their answer here is the true one, no rows, under the column
//! names the query asks for.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DFSchema, ParamValues};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, SelectItem, SetExpr, Statement};
use datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::{QueryResponse, Response};
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::QueryHook;

#[derive(Debug)]
pub struct NoKeys;

/// The output columns of a query about keys or indexes, or None for any other statement.
fn asks_for_keys(statement: &Statement) -> Option<Schema> {
    let Statement::Query(query) = statement else { return None };
    if !statement.to_string().contains("_pg_expandarray") {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let names = select.projection.iter().map(|item| match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(id.value.clone()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => ids.last().map(|id| id.value.clone()),
        _ => None,
    });
    let fields = names.map(|n| n.map(|n| Field::new(n, DataType::Utf8, true))).collect::<Option<Vec<_>>>()?;
    Some(Schema::new(fields))
}

fn empty(schema: &Schema) -> PgWireResult<Response> {
    let fields = arrow_schema_to_pg_fields(schema, &Format::UnifiedText, None)?;
    Ok(Response::Query(QueryResponse::new(Arc::new(fields), futures::stream::empty())))
}

#[async_trait]
impl QueryHook for NoKeys {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        asks_for_keys(statement).map(|schema| empty(&schema))
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        let schema = asks_for_keys(statement)?;
        let schema = DFSchema::try_from(schema).map_err(|e| PgWireError::ApiError(Box::new(e)));
        Some(schema.map(|s| LogicalPlan::EmptyRelation(EmptyRelation { produce_one_row: false, schema: Arc::new(s) })))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        asks_for_keys(statement).map(|schema| empty(&schema))
    }
}
