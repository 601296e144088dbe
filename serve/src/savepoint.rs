//! `SAVEPOINT`, `RELEASE` and `ROLLBACK TO`: a read-only PostgreSQL accepts them, and clients
//! use them on their own (psycopg 3 opens a savepoint to look a type up when a transaction is
//! open, as SQLAlchemy's dialect does on connect). Nothing is written here, so each is
//! answered and changes nothing but a failed transaction's state, which `ROLLBACK TO` clears.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::{DFSchema, ParamValues};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::results::{Response, Tag};
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::error::PgWireResult;
use datafusion_postgres::pgwire::messages::response::TransactionStatus;
use datafusion_postgres::QueryHook;

#[derive(Debug)]
pub struct Savepoints;

fn answer(statement: &Statement, status: TransactionStatus) -> Option<Response> {
    match statement {
        Statement::Savepoint { .. } => Some(Response::Execution(Tag::new("SAVEPOINT"))),
        Statement::ReleaseSavepoint { .. } => Some(Response::Execution(Tag::new("RELEASE"))),
        // Back inside the transaction, also from a failed one.
        Statement::Rollback { savepoint: Some(_), .. } if status == TransactionStatus::Error => {
            Some(Response::TransactionStart(Tag::new("ROLLBACK")))
        }
        Statement::Rollback { savepoint: Some(_), .. } => Some(Response::Execution(Tag::new("ROLLBACK"))),
        _ => None,
    }
}

#[async_trait]
impl QueryHook for Savepoints {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        answer(statement, client.transaction_status()).map(Ok)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        answer(statement, client.transaction_status())?;
        let schema = Arc::new(DFSchema::empty());
        Some(Ok(LogicalPlan::EmptyRelation(EmptyRelation { produce_one_row: false, schema })))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        answer(statement, client.transaction_status()).map(Ok)
    }
}
