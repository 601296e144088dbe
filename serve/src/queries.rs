//! Answering statements: the simple and the extended protocol of `datafusion-postgres`, each
//! statement on the warehouse's newest versions, in a session of its own (memory limit), within
//! a deadline that covers planning and sending every row, with its outcome counted.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connaudit_query::shared::Held;
use datafusion::prelude::SessionContext;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::portal::Portal;
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore, ConnectionHandle};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::cursor::Cursors;
use crate::erased::Erased;
use crate::error::user_error;
use crate::guard::ReadOnly;
use crate::keys::NoKeys;
use crate::metrics as m;
use crate::parser::Rewriting;
use crate::rewrite::rewrite_sql;
use crate::rows::{self, Tracked};
use crate::savepoint::Savepoints;
use crate::session::Engine;
use crate::shared::{self, Planned, SharedWith};

/// Where the client's `SET statement_timeout` is kept (datafusion-postgres's key).
const CLIENT_TIMEOUT: &str = "statement_timeout_ms";

pub struct Queries {
    engine: Engine,
    hooks: Vec<Arc<dyn QueryHook>>,
    /// Plans extended-protocol statements (Parse), rewritten where DataFusion needs it;
    /// execution gets a session per query.
    parser: Arc<Rewriting>,
    timeout: Duration,
    /// Fired on SIGTERM: statements arriving after it are refused.
    stopping: CancellationToken,
    pub(crate) running: rows::Running,
}

impl Queries {
    pub fn new(engine: Engine, timeout: Duration, stopping: CancellationToken) -> Self {
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(ReadOnly),
            Arc::new(NoKeys),
            Arc::new(Cursors),
            Arc::new(SetShowHook),
            Arc::new(Savepoints),
            Arc::new(TransactionStatementHook),
            Arc::new(SharedWith),
        ];
        let planner = DfSessionService::new_with_hooks(engine.template().clone(), hooks.clone());
        let parser = Arc::new(Rewriting(planner.query_parser()));
        Queries { engine, hooks, parser, timeout, stopping, running: rows::Running::default() }
    }

    /// The deadline of a statement arriving now: ours, or the client's shorter one.
    fn deadline<C: ClientInfo + ?Sized>(&self, client: &C) -> Instant {
        let theirs = client.metadata().get(CLIENT_TIMEOUT).and_then(|s| s.parse::<u64>().ok()).filter(|&ms| ms > 0);
        let timeout = theirs.map_or(self.timeout, |ms| self.timeout.min(Duration::from_millis(ms)));
        Instant::now() + timeout
    }

    /// A service over a fresh session on the newest versions of the tables.
    fn prepare<'a>(&'a self, sql: &'a str) -> BoxFuture<'a, PgWireResult<Box<dyn Erased<Fresh>>>> {
        Box::pin(async move {
            // While draining, a client may still end the transaction its last query ran in.
            if self.stopping.is_cancelled() && !ends_transaction(sql) {
                return Err(user_error("57P01", "connaudit serve is shutting down; connect again".into()));
            }
            crate::guard::literals_within(sql, self.engine.max_literal_bytes())?;
            if let Err(e) = self.engine.refresh().await {
                ::metrics::counter!(m::REFRESH_ERRORS).increment(1);
                warn!(error = %e, "Cannot read the newest versions of the tables.");
                return Err(user_error("58030", format!("cannot read the warehouse's newest state: {e}")));
            }
            let ctx = self.engine.for_query().map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            let service = DfSessionService::new_with_hooks(ctx.clone(), self.hooks.clone());
            Ok(Box::new(Fresh { ctx, service }) as Box<dyn Erased<Fresh>>)
        })
    }

    /// Runs `work` within `deadline` and makes its row streams count and stop at it, or at the
    /// client's cancel request (pgwire listens for one only while `work` runs; the rows are
    /// computed while they are sent, after it).
    fn answer<'a>(
        &'a self,
        deadline: Instant,
        handle: Option<Arc<ConnectionHandle>>,
        work: BoxFuture<'a, PgWireResult<Vec<Response>>>,
    ) -> BoxFuture<'a, PgWireResult<Vec<Response>>> {
        Box::pin(self.answered(deadline, handle, work))
    }

    async fn answered(
        &self,
        deadline: Instant,
        handle: Option<Arc<ConnectionHandle>>,
        work: BoxFuture<'_, PgWireResult<Vec<Response>>>,
    ) -> PgWireResult<Vec<Response>> {
        let started = Instant::now();
        let _running = self.running.enter();
        let responses = match off_the_workers(tokio::time::timeout_at(deadline, work)).await {
            Ok(Ok(responses)) => responses,
            Ok(Err(e)) => {
                let refused = matches!(&e, PgWireError::UserError(info) if info.code == "25006");
                rows::record(started, if refused { "refused" } else { "error" });
                return Err(e);
            }
            Err(_) => {
                rows::record(started, "timeout");
                return Err(rows::timeout_error());
            }
        };
        // The last await: pgwire's own receiver sees its sender replaced only once `work` has
        // answered, so it cannot take this for a cancel of its own.
        let cancel = match handle {
            Some(handle) => Some(handle.start_query().await),
            None => None,
        };
        let cancelled = CancellationToken::new();
        if let Some(cancel) = cancel {
            let cancelled = cancelled.clone();
            // Ends when the next statement replaces the sender, or with the cancel.
            tokio::spawn(async move {
                if cancel.await.is_ok() {
                    cancelled.cancel();
                }
            });
        }
        Ok(responses
            .into_iter()
            .map(|response| match response {
                Response::Query(mut query) => {
                    let inner = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
                    let (running, cancelled) = (self.running.enter(), cancelled.clone());
                    query.data_rows = Box::pin(Tracked::new(inner, started, deadline, cancelled, running));
                    Response::Query(query)
                }
                other => {
                    rows::record(started, "ok");
                    other
                }
            })
            .collect())
    }
}

/// Runs `work` (planning, which cannot yield) on this thread while the runtime hands this
/// worker's other connections to another thread, so a long plan never stalls other clients.
async fn off_the_workers<F: std::future::Future>(work: F) -> F::Output {
    let runtime = tokio::runtime::Handle::current();
    match runtime.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| runtime.block_on(work)),
        _ => work.await,
    }
}

fn ends_transaction(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or_default().trim_end_matches(';').to_ascii_uppercase();
    matches!(first.as_str(), "COMMIT" | "ROLLBACK" | "END" | "ABORT")
}

/// For the handlers' futures, which hold the client, `dyn` handles and boxed futures, nothing
/// of DataFusion's own types (see "Compile time" in lib.rs).
fn erased_queries(queries: &Queries) -> &dyn Erased<Queries> {
    queries
}

/// A statement's fresh session and the service that runs it.
pub(crate) struct Fresh {
    ctx: Arc<SessionContext>,
    service: DfSessionService,
}

fn erased_portal(portal: &Portal<Planned>) -> &dyn Erased<Portal<Planned>> {
    portal
}

/// A portal with its shared WITH queries computed, and the memory they hold until its rows
/// are sent.
struct Replaced {
    portal: Portal<Planned>,
    held: Held,
}

trait Replacement: Send + Sync {
    fn portal(&self) -> &Portal<Planned>;
    fn holding(self: Box<Self>, response: Response) -> Response;
}

impl Replacement for Replaced {
    fn portal(&self) -> &Portal<Planned> {
        &self.portal
    }

    fn holding(self: Box<Self>, response: Response) -> Response {
        shared::holding(response, self.held)
    }
}

/// `shared::portal` for the handler's future.
fn replaced<'a>(
    fresh: &'a Fresh,
    portal: &'a dyn Erased<Portal<Planned>>,
) -> BoxFuture<'a, PgWireResult<Option<Box<dyn Replacement>>>> {
    Box::pin(async move {
        let replaced = shared::portal(&fresh.ctx, portal.get()).await?;
        Ok(replaced.map(|(portal, held)| Box::new(Replaced { portal, held }) as Box<dyn Replacement>))
    })
}

/// An error known before any await, as a handler's future.
fn failed<T: Send + 'static>(error: PgWireError) -> BoxFuture<'static, PgWireResult<T>> {
    Box::pin(std::future::ready(Err(error)))
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    // `#[async_trait]`'s desugaring written out (see "Compile time" in lib.rs).
    fn do_query<'life0, 'life1, 'life2, 'async_trait, C>(
        &'life0 self,
        client: &'life1 mut C,
        query: &'life2 str,
    ) -> BoxFuture<'async_trait, PgWireResult<Vec<Response>>>
    where
        C: ClientInfo + ClientPortalStore + futures::Sink<PgWireBackendMessage> + Unpin + Send + Sync + 'async_trait,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let deadline = self.deadline(client);
        let handle = client.session_extensions().get::<Arc<ConnectionHandle>>().map(|h| (*h).clone());
        let this = erased_queries(self);
        Box::pin(async move {
            let runs = this.get().prepare(query).await?;
            let query = rewrite_sql(query).map_or(std::borrow::Cow::Borrowed(query), std::borrow::Cow::Owned);
            let work = SimpleQueryHandler::do_query(&runs.get().service, client, &query);
            this.get().answer(deadline, handle, work).await
        })
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = Rewriting;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    // `#[async_trait]`'s desugaring written out (see "Compile time" in lib.rs).
    fn do_query<'life0, 'life1, 'life2, 'async_trait, C>(
        &'life0 self,
        client: &'life1 mut C,
        portal: &'life2 Portal<Self::Statement>,
        max_rows: usize,
    ) -> BoxFuture<'async_trait, PgWireResult<Response>>
    where
        C: ClientInfo + ClientPortalStore + futures::Sink<PgWireBackendMessage> + Unpin + Send + Sync + 'async_trait,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let deadline = self.deadline(client);
        let handle = client.session_extensions().get::<Arc<ConnectionHandle>>().map(|h| (*h).clone());
        // A bound parameter is copied to every row like a literal.
        let max = self.engine.max_literal_bytes();
        if let Some(long) = portal.parameters.iter().flatten().map(|p| p.len()).find(|&n| n > max) {
            let why =
                format!("a parameter of {long} bytes is longer than {max} (connaudit serve --query-memory-limit)");
            return failed(user_error("54000", why));
        }
        let (this, portal) = (erased_queries(self), erased_portal(portal));
        Box::pin(async move {
            let runs = this.get().prepare(&portal.get().statement.statement.0).await?;
            let work: BoxFuture<'_, PgWireResult<Vec<Response>>> = Box::pin(async {
                let Some(replaced) = replaced(runs.get(), portal).await? else {
                    let response = ExtendedQueryHandler::do_query(&runs.get().service, client, portal.get(), max_rows);
                    return response.await.map(|r| vec![r]);
                };
                let response = ExtendedQueryHandler::do_query(&runs.get().service, client, replaced.portal(), max_rows);
                let response = response.await?;
                Ok(vec![replaced.holding(response)])
            });
            let mut responses = this.get().answer(deadline, handle, work).await?;
            Ok(responses.remove(0))
        })
    }
}
