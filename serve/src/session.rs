//! The SQL engine behind the endpoint: one template session (the warehouse tables read live,
//! the views of `connaudit query`, PostgreSQL's catalog and functions), and for each query a
//! session of its own built from it, with its share of the server's memory pool, so one query
//! over its share fails alone, all of them together stay within the server's limit, and a
//! `SET` of one client changes nothing for the others.

use std::path::PathBuf;
use std::sync::Arc;

use connaudit_warehouse::Live;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;

use crate::error::{Error, Result};
use crate::pool::Share;

/// The database name clients connect to; any name is accepted and sees the same tables.
pub const CATALOG: &str = "connaudit";

/// What the queries may hold, from the flags.
#[derive(Debug, Clone)]
pub struct Memory {
    /// All queries together (`--memory-limit`).
    pub server: usize,
    /// One query's share, and the most one function call may build (`--query-memory-limit`).
    pub query: usize,
    /// Spill files of all queries together (`--spill-limit`).
    pub spill_limit: u64,
}

#[derive(Clone)]
pub struct Engine {
    template: Arc<SessionContext>,
    live: Live,
    server_pool: Arc<GreedyMemoryPool>,
    query_memory_limit: usize,
    max_literal_bytes: usize,
}

impl Engine {
    pub fn new(live: Live, memory: &Memory, spill_dir: Option<PathBuf>) -> Result<Self> {
        // One disk manager for every query's runtime: the spill cap is the server's.
        let mut runtime = RuntimeEnvBuilder::new().with_max_temp_directory_size(memory.spill_limit);
        if let Some(dir) = spill_dir {
            runtime = runtime.with_temp_file_path(dir);
        }
        // The readers' recipe (`DATAFUSION_*` variables, filters while decoding), as `query`'s.
        let config = connaudit_warehouse::reader_config()
            .map_err(Error::Config)?
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, "public")
            .with_create_default_catalog_and_schema(true);
        let server_pool = Arc::new(GreedyMemoryPool::new(memory.server));
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime.build_arc()?)
            .with_default_features()
            .build();
        let concat = crate::concat_op::Planner::new(memory.query, server_pool.clone());
        FunctionRegistry::register_expr_planner(&mut state, Arc::new(concat))?;
        let ctx = SessionContext::new_with_state(state);
        connaudit_query::register_schema(&ctx)?;
        live.register(&ctx, connaudit_query::RAW_SCHEMA)?;
        setup_pg_catalog(&ctx, CATALOG, EmptyContextProvider).map_err(|e| Error::DataFusion(*e))?;
        crate::functions::register(&ctx);
        crate::catalog_functions::register_all(&ctx);
        crate::single_value::register(&ctx);
        crate::bounded::register(&ctx, memory.query, server_pool.clone());
        // A constant is copied to every row of a batch: its share of memory over the rows.
        let max_literal_bytes = (memory.query / ctx.state().config().batch_size().max(1)).max(4096);
        let template = Arc::new(ctx);
        Ok(Engine { template, live, server_pool, query_memory_limit: memory.query, max_literal_bytes })
    }

    /// Registers the views (they plan against the tables, so after [`Engine::new`]), and what
    /// reads the finished catalog: `to_regtype` (`pg_type`), `pg_get_viewdef`, the relations'
    /// oids and the contract's comments.
    pub async fn with_views(self) -> Result<Self> {
        let ctx = &self.template;
        connaudit_query::register_views(ctx, &connaudit_query::Window::default()).await?;
        crate::base_tables::register(ctx).await?;
        crate::to_regtype::register(ctx).await?;
        let relations = Arc::new(crate::relations::Relations::read(ctx).await?);
        let views = crate::viewdef::register(ctx, CATALOG, "public", &relations).await?;
        crate::catalog_tables::register(ctx, CATALOG, &relations, &views).await?;
        crate::relations::register(ctx, relations);
        Ok(self)
    }

    /// The session queries are planned in.
    pub fn template(&self) -> &Arc<SessionContext> {
        &self.template
    }

    /// The longest string literal (or bound parameter) a statement may hold: a query's share
    /// of memory over the rows of a batch it is copied to (at least 4 KiB).
    pub fn max_literal_bytes(&self) -> usize {
        self.max_literal_bytes
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Moves the tables to their newest Delta versions.
    pub async fn refresh(&self) -> Result<()> {
        Ok(self.live.refresh(&self.template.state()).await?)
    }

    /// A session for one query: the template's catalog, functions and settings, its share of
    /// the server's memory pool (spilling, then failing past it), the shared object stores.
    pub fn for_query(&self) -> Result<Arc<SessionContext>> {
        let state = self.template.state();
        let runtime: Arc<RuntimeEnv> = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_pool(Arc::new(Share::new(self.server_pool.clone(), self.query_memory_limit)))
            .build_arc()?;
        let state = SessionStateBuilder::new_from_existing(state).with_runtime_env(runtime).build();
        Ok(Arc::new(SessionContext::new_with_state(state)))
    }
}
