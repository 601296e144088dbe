//! Cursors (`DECLARE ... CURSOR [WITH HOLD] FOR`, `FETCH`, `CLOSE`; Tableau reads through
//! them). `datafusion-postgres` declares and closes them; a FETCH is answered here as a stream
//! that pulls its rows from the cursor while they are sent, instead of collecting them all
//! first: `FETCH ALL` of a large result no longer sits in memory, and its rows pass through
//! the statement's deadline and cancel like any query's. A connection holds at most
//! [`MAX_OPEN`] cursors at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{CloseCursor, FetchDirection, Ident, Statement, Value};
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::portal::PortalExecutionState;
use datafusion_postgres::pgwire::api::results::{QueryResponse, Response};
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::error::PgWireResult;
use datafusion_postgres::QueryHook;
use futures::future::BoxFuture;
use futures::StreamExt;

use crate::error::user_error;

#[derive(Debug)]
pub struct Cursors;

/// Cursors one connection may hold open at once: each holds a running query.
pub const MAX_OPEN: usize = 16;

/// The names of a connection's open cursors (kept in its session extensions).
#[derive(Default)]
struct Open(Mutex<HashSet<String>>);

/// The names a DECLARE would add to the connection's open cursors.
fn declared(names: &HashSet<String>, statement: &Statement) -> Vec<String> {
    let Statement::Declare { stmts } = statement else { return Vec::new() };
    stmts.iter().filter_map(|d| d.names.first().map(|n| n.value.clone())).filter(|n| !names.contains(n)).collect()
}

fn open_names(client: &dyn HookClient) -> Arc<Open> {
    client.session_extensions().get_or_insert_with(Open::default)
}

/// Refuses a DECLARE past [`MAX_OPEN`] open cursors.
fn room_for(client: &dyn HookClient, statement: &Statement) -> PgWireResult<()> {
    let open = open_names(client);
    let names = open.0.lock().unwrap_or_else(|e| e.into_inner());
    if names.len() + declared(&names, statement).len() > MAX_OPEN {
        let why = format!("a connection holds at most {MAX_OPEN} open cursors; CLOSE one first");
        return Err(user_error("54000", why));
    }
    Ok(())
}

/// `answer`, with the open cursors' names kept when it is a DECLARE's or CLOSE's success.
fn tracked(
    client: &dyn HookClient,
    statement: &Statement,
    answer: Option<PgWireResult<Response>>,
) -> Option<PgWireResult<Response>> {
    if matches!(answer, Some(Ok(_))) {
        track(client, statement);
    }
    answer
}

fn track(client: &dyn HookClient, statement: &Statement) {
    let open = open_names(client);
    let mut names = open.0.lock().unwrap_or_else(|e| e.into_inner());
    match statement {
        Statement::Declare { .. } => {
            let new = declared(&names, statement);
            names.extend(new);
        }
        Statement::Close { cursor: CloseCursor::All } => names.clear(),
        Statement::Close { cursor: CloseCursor::Specific { name } } => {
            names.remove(&name.value);
        }
        _ => {}
    }
}

#[async_trait]
impl QueryHook for Cursors {
    // `#[async_trait]`'s desugaring written out, the futures built by `simple` and `extended`
    // below (see "Compile time" in lib.rs).
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
        simple(statement, ctx, client)
    }

    fn handle_extended_parse_query<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        statement: &'life1 Statement,
        ctx: &'life2 SessionContext,
        client: &'life3 (dyn ClientInfo + Send + Sync),
    ) -> BoxFuture<'async_trait, Option<PgWireResult<LogicalPlan>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        CursorStatementHook.handle_extended_parse_query(statement, ctx, client)
    }

    fn handle_extended_query<'life0, 'life1, 'life2, 'life3, 'life4, 'life5, 'async_trait>(
        &'life0 self,
        statement: &'life1 Statement,
        plan: &'life2 LogicalPlan,
        params: &'life3 ParamValues,
        ctx: &'life4 SessionContext,
        client: &'life5 mut dyn HookClient,
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
        extended(statement, plan, params, ctx, client)
    }
}

/// A simple-protocol statement: a FETCH answered here, the rest of the cursor statements by
/// `datafusion-postgres` within the connection's cursor limit.
fn simple<'a>(
    statement: &'a Statement,
    ctx: &'a SessionContext,
    client: &'a mut dyn HookClient,
) -> BoxFuture<'a, Option<PgWireResult<Response>>> {
    Box::pin(async move {
        match statement {
            Statement::Fetch { name, direction, .. } => Some(fetch(client, name, direction).await),
            _ => {
                if let Err(refused) = room_for(client, statement) {
                    return Some(Err(refused));
                }
                let answer = CursorStatementHook.handle_simple_query(statement, ctx, client).await;
                tracked(client, statement, answer)
            }
        }
    })
}

/// `simple` for the extended protocol.
fn extended<'a>(
    statement: &'a Statement,
    plan: &'a LogicalPlan,
    params: &'a ParamValues,
    ctx: &'a SessionContext,
    client: &'a mut dyn HookClient,
) -> BoxFuture<'a, Option<PgWireResult<Response>>> {
    Box::pin(async move {
        match statement {
            Statement::Fetch { name, direction, .. } => Some(fetch(client, name, direction).await),
            _ => {
                if let Err(refused) = room_for(client, statement) {
                    return Some(Err(refused));
                }
                let answer = CursorStatementHook.handle_extended_query(statement, plan, params, ctx, client).await;
                tracked(client, statement, answer)
            }
        }
    })
}

/// The next rows of cursor `name`, pulled while they are sent.
async fn fetch(client: &mut dyn HookClient, name: &Ident, direction: &FetchDirection) -> PgWireResult<Response> {
    let count = match direction {
        FetchDirection::Next | FetchDirection::Forward { limit: None } => 1,
        FetchDirection::Forward { limit: Some(v) } | FetchDirection::Count { limit: v } => match &v.value {
            Value::Number(n, _) => n.parse::<usize>().map_err(|_| user_error("22023", format!("bad count {n}")))?,
            other => return Err(user_error("22023", format!("FETCH takes a number of rows, not {other}"))),
        },
        FetchDirection::ForwardAll | FetchDirection::All => usize::MAX,
        _ => return Err(user_error("0A000", "cursor can only scan forward".into())),
    };
    let portal = client
        .portal_store()
        .get_portal(&name.value)
        .and_then(|entry| entry.value().cloned())
        .ok_or_else(|| user_error("34000", format!("cursor \"{}\" does not exist", name.value)))?;
    let mut state = portal.state().lock_owned().await;
    let schema = match &mut *state {
        PortalExecutionState::Suspended(response) => response.row_schema(),
        PortalExecutionState::Finished => Arc::new(Vec::new()),
        PortalExecutionState::Initial => return Err(user_error("XX000", "the cursor was never started".into())),
    };
    let rows = futures::stream::unfold((state, count), |(mut state, left)| async move {
        if left == 0 {
            return None;
        }
        let PortalExecutionState::Suspended(response) = &mut *state else { return None };
        match response.data_rows().next().await {
            Some(row) => Some((row, (state, left - 1))),
            None => {
                *state = PortalExecutionState::Finished;
                None
            }
        }
    });
    let mut response = QueryResponse::new(schema, rows);
    response.set_command_tag("FETCH");
    Ok(Response::Query(response))
}
