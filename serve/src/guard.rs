//! The read-only guard, run before anything else sees a statement: what `connaudit query`
//! allows (queries, EXPLAIN, SHOW), plus what a PostgreSQL client's session needs (`SET` of a
//! session setting, transactions, cursors over a query). Everything else, DDL, DML, COPY and
//! `CREATE EXTERNAL TABLE` included, is refused with SQLSTATE 25006 before it is planned.

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::QueryHook;

use crate::metrics as m;

#[derive(Debug)]
pub struct ReadOnly;

/// Whether `statement` may run; `Err` says why not.
pub fn check(statement: &Statement) -> PgWireResult<()> {
    if connaudit_query::guard::reads_only(statement) || session_statement(statement) {
        return Ok(());
    }
    let what = connaudit_query::guard::first_words(&statement.to_string());
    let message = match statement {
        Statement::Set(_) => format!(
            "{what}: the engine's settings are the server's; a session may set PostgreSQL's \
             (statement_timeout, TimeZone, DateStyle, application_name, search_path, ...)"
        ),
        _ => format!("{what} is refused: connaudit serves the warehouse read-only (queries, EXPLAIN and SHOW)"),
    };
    Err(PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), "25006".into(), message))))
}

/// What a PostgreSQL session does around its queries: session settings, transactions (there
/// is nothing to commit), and cursors over a query.
fn session_statement(statement: &Statement) -> bool {
    match statement {
        Statement::Set(set) => match set {
            Set::SingleAssignment { variable, .. } => {
                !variable.to_string().to_ascii_lowercase().trim_matches('"').starts_with("datafusion.")
            }
            Set::SetTimeZone { .. }
            | Set::SetNames { .. }
            | Set::SetNamesDefault { .. }
            | Set::SetTransaction { .. } => true,
            _ => false,
        },
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Deallocate { .. }
        | Statement::Discard { .. } => true,
        Statement::Declare { stmts } => stmts.iter().all(|d| {
            d.for_query.as_ref().is_some_and(|q| connaudit_query::guard::reads_only(&Statement::Query(q.clone())))
        }),
        _ => false,
    }
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        check(statement).err().map(Err)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        // Refused at Parse, before the statement reaches the query handler that counts.
        let refused = check(statement).err()?;
        ::metrics::counter!(m::QUERIES, "outcome" => "refused").increment(1);
        Some(Err(refused))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        check(statement).err().map(Err)
    }
}
