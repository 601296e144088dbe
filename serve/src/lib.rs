//! `connaudit serve`: the warehouse over the PostgreSQL protocol, so Grafana, Metabase,
//! Superset, Tableau and DBeaver chart it. DataFusion answers (through `datafusion-postgres`)
//! over the same tables and views as `connaudit query`, each statement on the newest Delta
//! versions; read-only, authenticated, each query bounded in memory and time.
//!
//! # Compile time
//!
//! `#[async_trait]` boxes each method's future as `dyn Future + Send`, and rustc proves it
//! `Send` by walking every type the future holds. Under the method's where-clauses
//! (`'life0: 'async_trait`, a client type `C`) none of that walk is cached beyond the method,
//! and what DataFusion's plans reach (`Expr`, `LogicalPlan`, `SessionContext`, sqlparser's
//! statements) took about 3 s of each of typeck, borrowck, the coroutine check and MIR
//! building, per method (`-Z self-profile`: `evaluate_obligation` of `Send` and `Sync`); the
//! library took 110 s to compile (dev profile, `-Z time-passes`), 42 s since.
//! So the heavy trait methods here are `#[async_trait]`'s desugaring written out: they return
//! a future built elsewhere (the inner one, or one from a function without where-clauses,
//! where the proof is made once and cached), or one that holds only boxed futures and `dyn`
//! handles (`erased::Erased`), `Send` and `Sync` by their bounds alone. A new method that
//! awaits DataFusion's types should do the same (DataFusion's own crates did:
//! apache/datafusion#24325).

mod args;
mod auth;
mod base_tables;
mod bounded;
mod capped;
mod catalog_functions;
mod catalog_literals;
mod catalog_tables;
mod concat_op;
mod conn;
mod cursor;
mod datetime_format;
mod erased;
mod error;
mod expr;
mod functions;
mod guard;
mod information_schema;
mod keys;
mod listen;
pub mod metrics;
mod parser;
mod pool;
mod projection_names;
mod queries;
mod relations;
mod rewrite;
mod rows;
mod savepoint;
mod scalar_subquery;
mod session;
mod shared;
mod single_value;
mod table_functions;
mod table_stats;
mod to_regtype;
mod viewdef;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use connaudit_service::{Http, Supervisor};
use connaudit_warehouse::{Live, Warehouse};
use datafusion_postgres::pgwire::api::auth::StartupHandler;
use datafusion_postgres::pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::{ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers};
use datafusion_postgres::pgwire::error::PgWireError;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use args::{Login, ServeArgs, ServeConfig};
pub use error::{Error, Result};
pub use session::CATALOG;

use crate::auth::{Gate, Startup};
use crate::queries::Queries;

/// Serves until `shutdown` fires, then stops accepting, lets running statements finish (up to
/// `--shutdown-timeout-secs`) and closes the connections.
pub async fn run(cfg: ServeConfig, shutdown: CancellationToken) -> Result<()> {
    // Before anything listens: a TLS setup that fails stops the start.
    let tls = cfg.tls.as_ref().map(|(cert, key)| listen::tls(cert, key)).transpose()?;
    if matches!(cfg.login, Login::Anonymous) && !cfg.pg_listen.ip().is_loopback() {
        warn!("--pg-allow-anonymous: anyone who reaches {} can read the warehouse.", cfg.pg_listen);
    }
    let prometheus = connaudit_service::prometheus();
    metrics::describe();
    let live = Live::new(Warehouse::reader(&cfg.warehouse)?)?;
    let engine = session::Engine::new(live, &cfg.memory(), cfg.spill_dir.clone())?.with_views().await?;
    let health = Health::default();
    match engine.refresh().await {
        Ok(()) => health.0.store(true, Ordering::Relaxed),
        Err(e) => warn!(error = %e, "Cannot read the warehouse yet; every query will try again."),
    }
    let bind = |addr, flag| async move {
        tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, flag, source })
    };
    let pg = bind(cfg.pg_listen, "--pg-listen").await?;
    let pg_addr = pg.local_addr().map_err(Error::Http)?;
    let http_listener = bind(cfg.http_listen, "--http-listen").await?;

    let supervisor = Supervisor::new(shutdown.clone());
    let http = Http::spawn(&supervisor, http_listener, connaudit_service::router(health.clone(), prometheus))
        .map_err(Error::Http)?;
    let connections = Arc::new(ConnectionManager::new());
    let queries = Arc::new(Queries::new(engine.clone(), cfg.query_timeout, shutdown.clone()));
    let running = queries.running.clone();
    let handlers = Arc::new(Handlers {
        queries,
        gate: Gate::new(&cfg.login, tls.is_some(), connections.clone()),
        cancel: Arc::new(DefaultCancelHandler::new(connections)),
    });
    let listener = listen::Listener {
        listener: pg,
        tls,
        handlers,
        limits: cfg.conn.clone(),
        max_pending: cfg.max_pending_logins,
        max_pending_per_address: cfg.max_pending_logins_per_address,
        running,
        drain: cfg.shutdown_timeout,
    };
    let stop_accepting = CancellationToken::new();
    let mut serving = supervisor.spawn("postgres listener", listener.run(stop_accepting.clone()));
    let refresher = supervisor.spawn("refresh", refresh_every_5s(engine, health.clone(), shutdown.clone()));
    info!(pg = %pg_addr, http = %http.addr, warehouse = %cfg.warehouse, tls = cfg.tls.is_some(),
        anonymous = matches!(cfg.login, Login::Anonymous), "Serve is running.");

    shutdown.cancelled().await;
    info!("Shutting down.");
    stop_accepting.cancel();
    if tokio::time::timeout(cfg.shutdown_timeout + Duration::from_secs(5), &mut serving).await.is_err() {
        serving.abort();
    }
    refresher.abort();
    http.stop().await;
    info!("Serve stopped.");
    supervisor.failure().map_or(Ok(()), |why| Err(Error::Stopped(why)))
}

/// Keeps the snapshots current between queries (so a query's own refresh finds little to
/// read) and `/readyz` honest about whether the warehouse can be read.
async fn refresh_every_5s(engine: session::Engine, health: Health, stop: CancellationToken) -> Result<(), Infallible> {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let ok = match engine.refresh().await {
            Ok(()) => true,
            Err(e) => {
                ::metrics::counter!(metrics::REFRESH_ERRORS).increment(1);
                warn!(error = %e, "Cannot read the newest versions of the tables.");
                false
            }
        };
        if health.0.swap(ok, Ordering::Relaxed) != ok && ok {
            info!("The warehouse is readable again.");
        }
        debug!(versions = ?engine.live().versions(), "Refreshed.");
    }
}

/// Ready when the latest read of the warehouse succeeded.
#[derive(Debug, Clone, Default)]
struct Health(Arc<AtomicBool>);

impl connaudit_service::Readiness for Health {
    fn readiness(&self) -> (bool, serde_json::Value) {
        let warehouse = self.0.load(Ordering::Relaxed);
        (warehouse, json!({ "warehouse": warehouse }))
    }
}

struct Handlers {
    queries: Arc<Queries>,
    gate: Gate,
    cancel: Arc<DefaultCancelHandler>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    /// A new one per connection: SCRAM's exchange has state.
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        let startup: Startup = self.gate.startup();
        Arc::new(startup)
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

/// Errors sent to clients, at debug: they are the clients' (bad SQL, refused writes).
struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, client: &C, error: &mut PgWireError) {
        debug!(peer = %client.socket_addr(), error = %error, "Sent an error to a client.");
    }
}
