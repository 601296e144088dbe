//! WITH queries a statement reads more than once, computed once, as PostgreSQL does
//! (`connaudit_query::shared`): the simple protocol's statements through a hook, the extended
//! protocol's portals before `datafusion-postgres` runs them (a hook is not told the result
//! formats a portal asks for). The computed rows are counted in the query's memory share until
//! its last row is sent.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use connaudit_query::shared::{compute_shared, with_names, Held};
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::stmt::StoredStatement;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::types::format::FormatOptions;
use datafusion_postgres::QueryHook;
use futures::future::BoxFuture;
use futures::StreamExt;

use crate::metrics as m;

/// The statement the extended protocol keeps: its text, and its parse and plan.
pub type Planned = (String, Option<(Statement, LogicalPlan)>);

/// Answers a simple-protocol statement that has WITH queries, those read more than once
/// computed once.
#[derive(Debug)]
pub struct SharedWith;

#[async_trait]
impl QueryHook for SharedWith {
    // `#[async_trait]`'s desugaring written out, the future built by `simple_query` (see
    // "Compile time" in lib.rs).
    fn handle_simple_query<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        statement: &'life1 Statement,
        ctx: &'life2 SessionContext,
        client: &'life3 mut dyn HookClient,
    ) -> BoxFuture<'async_trait, Option<PgWireResult<Response>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        simple_query(statement, ctx, client)
    }

    async fn handle_extended_parse_query(
        &self,
        _statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        None
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        None
    }
}

/// A simple-protocol statement's answer with its WITH queries computed once, or `None` when it
/// has none.
fn simple_query<'a>(
    statement: &'a Statement,
    ctx: &'a SessionContext,
    client: &'a mut dyn HookClient,
) -> BoxFuture<'a, Option<PgWireResult<Response>>> {
    Box::pin(async move {
        let names = with_names(statement);
        if names.is_empty() {
            return None;
        }
        // A statement that does not plan is left to the engine to report.
        let plan = ctx.state().statement_to_plan(DfStatement::Statement(Box::new(statement.clone()))).await.ok()?;
        // Answered from this plan even with nothing computed: it is not planned twice.
        let (plan, held) = match computed(ctx, &names, plan).await {
            Ok(done) => done,
            Err(e) => return Some(Err(e)),
        };
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let answer = async {
            let df = ctx.execute_logical_plan(plan).await.map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            Ok(holding(Response::Query(encode_dataframe(df, &Format::UnifiedText, Some(options)).await?), held))
        };
        Some(answer.await)
    })
}

/// `portal` with the WITH queries its statement reads more than once computed, or `None` when
/// it has none (or none fits the memory budget).
pub async fn portal(ctx: &SessionContext, portal: &Portal<Planned>) -> PgWireResult<Option<(Portal<Planned>, Held)>> {
    let (sql, Some((statement, plan))) = &portal.statement.statement else { return Ok(None) };
    let names = with_names(statement);
    if names.is_empty() {
        return Ok(None);
    }
    let (plan, held) = computed(ctx, &names, plan.clone()).await?;
    if held.count() == 0 {
        return Ok(None);
    }
    let stored = StoredStatement::new(
        portal.statement.id.clone(),
        (sql.clone(), Some((statement.clone(), plan))),
        portal.statement.parameter_types.clone(),
    );
    // Non-exhaustive: built from its default, every field set.
    let mut planned = Portal::default();
    planned.name = portal.name.clone();
    planned.statement = Arc::new(stored);
    planned.parameter_format = portal.parameter_format.clone();
    planned.parameters = portal.parameters.clone();
    planned.result_column_format = portal.result_column_format.clone();
    planned.state = portal.state.clone();
    let portal = planned;
    Ok(Some((portal, held)))
}

async fn computed(
    ctx: &SessionContext,
    names: &HashSet<String>,
    plan: LogicalPlan,
) -> PgWireResult<(LogicalPlan, Held)> {
    let budget = connaudit_query::shared::budget(ctx);
    let (plan, held) =
        compute_shared(ctx, names, plan, budget).await.map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    ::metrics::counter!(m::WITH_QUERIES, "outcome" => "computed").increment(held.count() as u64);
    ::metrics::counter!(m::WITH_QUERIES, "outcome" => "each_reference").increment(held.left() as u64);
    Ok((plan, held))
}

/// `response` keeping `held` until its last row is sent.
pub fn holding(response: Response, held: Held) -> Response {
    match response {
        Response::Query(mut query) => {
            let rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
            query.data_rows = Box::pin(rows.map(move |row| {
                let _ = &held;
                row
            }));
            Response::Query(query)
        }
        other => other,
    }
}
