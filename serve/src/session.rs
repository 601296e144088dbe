//! The SQL engine behind the endpoint: one template session (the warehouse tables read live,
//! the views of `connaudit query`, PostgreSQL's catalog and functions), and for each query a
//! session of its own built from it, with its own memory pool, so one query over its limit
//! fails alone and a `SET` of one client changes nothing for the others.

use std::path::PathBuf;
use std::sync::Arc;

use connaudit_warehouse::Live;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;

use crate::error::{Error, Result};

/// The database name clients connect to; any name is accepted and sees the same tables.
pub const CATALOG: &str = "connaudit";

#[derive(Clone)]
pub struct Engine {
    template: Arc<SessionContext>,
    live: Live,
    memory_limit: usize,
}

impl Engine {
    pub fn new(live: Live, memory_limit: usize, spill_dir: Option<PathBuf>) -> Result<Self> {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(dir) = spill_dir {
            runtime = runtime.with_temp_file_path(dir);
        }
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, "public")
            .with_create_default_catalog_and_schema(true);
        let parquet = &mut config.options_mut().execution.parquet;
        // Evaluate filters while decoding, as `connaudit query` does.
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
        let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
        connaudit_query::register_schema(&ctx)?;
        live.register(&ctx, connaudit_query::RAW_SCHEMA)?;
        setup_pg_catalog(&ctx, CATALOG, EmptyContextProvider).map_err(|e| Error::DataFusion(*e))?;
        crate::functions::register(&ctx);
        Ok(Engine { template: Arc::new(ctx), live, memory_limit })
    }

    /// Registers the views; they plan against the tables, so after [`Engine::new`].
    pub async fn with_views(self) -> Result<Self> {
        connaudit_query::register_views(&self.template, &connaudit_query::Window::default()).await?;
        Ok(self)
    }

    /// The session queries are planned in.
    pub fn template(&self) -> &Arc<SessionContext> {
        &self.template
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Moves the tables to their newest Delta versions.
    pub async fn refresh(&self) -> Result<()> {
        Ok(self.live.refresh(&self.template.state()).await?)
    }

    /// A session for one query: the template's catalog, functions and settings, a memory pool
    /// of its own (spilling, then failing past the limit), the shared object stores.
    pub fn for_query(&self) -> Result<Arc<SessionContext>> {
        let state = self.template.state();
        let runtime: Arc<RuntimeEnv> = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_pool(Arc::new(FairSpillPool::new(self.memory_limit)))
            .build_arc()?;
        let state = SessionStateBuilder::new_from_existing(state).with_runtime_env(runtime).build();
        Ok(Arc::new(SessionContext::new_with_state(state)))
    }
}
