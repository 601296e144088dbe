//! The read-only guard, run before anything else sees a statement: what `connaudit query`
//! allows (queries, EXPLAIN, SHOW), plus what a PostgreSQL client's session needs (`SET` of a
//! session setting, transactions, cursors over a query). Everything else, DDL, DML, COPY and
//! `CREATE EXTERNAL TABLE` included, is refused with SQLSTATE 25006 before it is planned.

use std::collections::HashMap;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::error::PgWireResult;
use datafusion_postgres::QueryHook;
use futures::future::BoxFuture;

use crate::error::user_error;
use crate::metrics as m;

#[derive(Debug)]
pub struct ReadOnly;

/// Whether `statement` may run; `Err` says why not.
pub fn check(statement: &Statement) -> PgWireResult<()> {
    if connaudit_query::guard::reads_only(statement) || session_statement(statement) {
        return within_plan_budget(statement);
    }
    let what = connaudit_query::guard::first_words(&statement.to_string());
    let message = match statement {
        Statement::Set(_) => format!(
            "{what}: the engine's settings are the server's; a session may set PostgreSQL's \
             (statement_timeout, TimeZone, DateStyle, application_name, search_path, ...)"
        ),
        _ => format!("{what} is refused: connaudit serves the warehouse read-only (queries, EXPLAIN and SHOW)"),
    };
    Err(user_error("25006", message))
}

/// What a PostgreSQL session does around its queries: session settings, transactions and
/// their savepoints (there is nothing to commit), and cursors over a query.
fn session_statement(statement: &Statement) -> bool {
    match statement {
        Statement::Set(set) => match set {
            Set::SingleAssignment { variable, .. } => client_setting(variable),
            Set::MultipleAssignments { assignments } => assignments.iter().all(|a| client_setting(&a.name)),
            Set::SetTimeZone { .. }
            | Set::SetNames { .. }
            | Set::SetNamesDefault { .. }
            | Set::SetTransaction { .. } => true,
            _ => false,
        },
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. }
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

/// PostgreSQL's settings that clients and BI tools set on their sessions: those with a meaning
/// here are kept by the connection (timeouts, time zone, date style), the others are accepted
/// and change nothing. The engine's own settings are never among them.
const CLIENT_SETTINGS: &[&str] = &[
    "application_name",
    "bytea_output",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "extra_float_digits",
    "idle_in_transaction_session_timeout",
    "intervalstyle",
    "jit",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "lock_timeout",
    "search_path",
    "standard_conforming_strings",
    "statement_timeout",
    "timezone",
    "transaction_isolation",
    "transaction_read_only",
];

/// Whether `name`, however quoted or cased (`"DateStyle"`, `"datafusion".execution.x`), is one
/// of [`CLIENT_SETTINGS`].
fn client_setting(name: &datafusion::sql::sqlparser::ast::ObjectName) -> bool {
    let parts: Option<Vec<String>> =
        name.0.iter().map(|part| part.as_ident().map(|ident| ident.value.to_lowercase())).collect();
    parts.is_some_and(|parts| parts.len() == 1 && CLIENT_SETTINGS.contains(&parts[0].as_str()))
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

    // `#[async_trait]`'s desugaring written out: answered at once, by no future that holds
    // the plan (see "Compile time" in lib.rs).
    fn handle_extended_query<'life0, 'life1, 'life2, 'life3, 'life4, 'life5, 'async_trait>(
        &'life0 self,
        statement: &'life1 Statement,
        plan: &'life2 LogicalPlan,
        _params: &'life3 ParamValues,
        _ctx: &'life4 SessionContext,
        _client: &'life5 mut dyn HookClient,
    ) -> BoxFuture<'async_trait, Option<PgWireResult<Response>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        'life4: 'async_trait,
        'life5: 'async_trait,
        Self: 'async_trait,
    {
        answered(refused(statement, plan))
    }
}

/// An extended-protocol statement refused, or `None` (then its plan is run): the statement as
/// at Parse, then its plan, as `connaudit query` checks one (no DDL, DML or engine statement).
fn refused(statement: &Statement, plan: &LogicalPlan) -> Option<PgWireResult<Response>> {
    if let Err(refused) = check(statement) {
        return Some(Err(refused));
    }
    if !connaudit_query::guard::reads_only(statement) {
        return None;
    }
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let refused = options.verify_plan(plan).err()?;
    Some(Err(user_error("25006", refused.to_string())))
}

/// An answer known before any await, as a hook's future.
fn answered(answer: Option<PgWireResult<Response>>) -> BoxFuture<'static, Option<PgWireResult<Response>>> {
    Box::pin(std::future::ready(answer))
}

/// Relations a statement may expand to once its CTEs are inlined (DataFusion plans every CTE
/// where it is defined and copies its plan at every reference, so k CTEs that each join the
/// previous one twice plan 2^k scans, and 3,500 small ones 24 s of a core, before any deadline
/// is looked at).
pub const PLAN_BUDGET: u64 = 500;

/// Subqueries a statement may hold: DataFusion decorrelates each into a join of the plan, and
/// its optimizer recurses through them; 300 correlated ones in a `WHERE` overflowed a worker's
/// stack and aborted the server (a debug build; 200 planned in 1 s). A catalog query of a BI
/// tool holds a few.
pub const SUBQUERY_BUDGET: usize = 100;

/// Refuses a statement whose CTEs expand past [`PLAN_BUDGET`] relations, counted on the text
/// before anything is planned: a CTE costs one plus what the CTEs it names cost, once per
/// mention (a mention that is not a reference counts too: the count errs on the safe side),
/// and every CTE counts where it is defined, named or not.
pub fn within_plan_budget(statement: &Statement) -> PgWireResult<()> {
    let mut subqueries = 0usize;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(statement, |e| {
        subqueries += usize::from(matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }));
        std::ops::ControlFlow::<()>::Continue(())
    });
    if subqueries > SUBQUERY_BUDGET {
        return Err(user_error(
            "54001",
            format!(
                "statement too complex: {subqueries} subqueries, more than {SUBQUERY_BUDGET}; \
                 join the tables they read instead, or split the statement"
            ),
        ));
    }
    let expanded = match statement {
        Statement::Query(query) => query_cost(query),
        Statement::Declare { stmts } => stmts.iter().filter_map(|d| d.for_query.as_deref()).map(query_cost).sum(),
        Statement::Explain { statement, .. } => return within_plan_budget(statement),
        _ => 0,
    };
    if expanded <= PLAN_BUDGET {
        return Ok(());
    }
    Err(user_error(
        "54001",
        format!(
            "statement too complex: its CTEs expand to about {expanded} relations once inlined, more than {PLAN_BUDGET}; \
             reference each CTE fewer times or materialise the repeated part in a query of its own"
        ),
    ))
}

/// The relations DataFusion plans for `query`: each CTE once where it is defined (with what
/// it names inlined), then each mention of one in the body again.
fn query_cost(query: &datafusion::sql::sqlparser::ast::Query) -> u64 {
    let Some(with) = &query.with else { return 1 };
    let mut costs: HashMap<String, u64> = HashMap::new();
    let mut planned: u64 = 0;
    for cte in &with.cte_tables {
        let cost = mentions(&cte.query.to_string(), &costs).saturating_add(query_cost(&cte.query)).min(u64::MAX / 4);
        planned = planned.saturating_add(cost);
        costs.insert(cte.alias.name.value.to_lowercase(), cost);
    }
    planned.saturating_add(mentions(&query.body.to_string(), &costs)).saturating_add(1)
}

/// What the CTEs named in `text` cost, each mention counted (one lookup a word).
fn mentions(text: &str, costs: &HashMap<String, u64>) -> u64 {
    if costs.is_empty() {
        return 0;
    }
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .filter_map(|word| costs.get(&word.to_lowercase()))
        .fold(0u64, |sum, cost| sum.saturating_add(*cost))
}

/// Refuses a statement with a string literal longer than `max` bytes: DataFusion copies a
/// constant to every row of a batch (8,192 rows), so a 1 MiB literal makes an 8 GiB column
/// outside the memory pool.
pub fn literals_within(sql: &str, max: usize) -> PgWireResult<()> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    if sql.len() <= max {
        return Ok(());
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else { return Ok(()) };
    let longest = tokens
        .iter()
        .map(|t| match t {
            Token::SingleQuotedString(s)
            | Token::TripleSingleQuotedString(s)
            | Token::NationalStringLiteral(s)
            | Token::EscapedStringLiteral(s)
            | Token::UnicodeStringLiteral(s)
            | Token::HexStringLiteral(s)
            | Token::SingleQuotedByteStringLiteral(s)
            | Token::DoubleQuotedByteStringLiteral(s) => s.len(),
            Token::DollarQuotedString(s) => s.value.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    if longest <= max {
        return Ok(());
    }
    Err(user_error(
        "54000",
        format!(
            "a string literal of {longest} bytes is longer than {max} (a query's memory share over the 8192 rows \
             it is copied to; connaudit serve --query-memory-limit)"
        ),
    ))
}
