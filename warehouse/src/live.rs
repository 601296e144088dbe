//! Reading the latest state for a long-running reader (`connaudit serve`): each table is a
//! provider that stays registered while [`Live::refresh`] moves it to the newest Delta version,
//! so new commits appear without re-registering anything, and a plan prepared earlier reads
//! the state current when it runs.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{Expr, SessionConfig, SessionContext};
use deltalake::logstore::commit_uri_from_version;
use deltalake::{DeltaTable, DeltaTableBuilder};
use object_store::ObjectStoreExt;
use tokio::sync::Mutex;
use tracing::debug;

use crate::error::{Error, Result};
use crate::store::Warehouse;
use crate::tables::{Table, TABLES};

/// Every table of a warehouse, kept at its latest version by [`Live::refresh`].
#[derive(Debug, Clone)]
pub struct Live {
    wh: Warehouse,
    tables: Vec<Arc<LiveTable>>,
    /// One refresh at a time, and when the last one began: a query that waited for a refresh
    /// begun after it asked is served by that one instead of listing the logs again.
    refreshing: Arc<Mutex<Option<Instant>>>,
}

/// One table: the Delta table once it exists, and the provider queries read.
#[derive(Debug)]
pub struct LiveTable {
    table: &'static Table,
    delta: Mutex<Option<DeltaTable>>,
    current: RwLock<Current>,
}

#[derive(Debug, Clone)]
struct Current {
    provider: Arc<dyn TableProvider>,
    version: Option<u64>,
}

impl Live {
    /// Every table empty until the first refresh finds it.
    pub fn new(wh: Warehouse) -> Result<Self> {
        let tables = TABLES
            .iter()
            .map(|&table| {
                let empty = MemTable::try_new(table.schema(), vec![vec![]])?;
                let current = Current { provider: Arc::new(empty), version: None };
                Ok(Arc::new(LiveTable { table, delta: Mutex::new(None), current: RwLock::new(current) }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Live { wh, tables, refreshing: Arc::default() })
    }

    /// Registers every table as `<schema>.<name>` (the schema must exist).
    pub fn register(&self, ctx: &SessionContext, schema: &str) -> Result<()> {
        for live in &self.tables {
            ctx.register_table(format!("{schema}.{}", live.table.name).as_str(), live.clone())?;
        }
        Ok(())
    }

    /// Moves every table to its newest version; a table that appeared since is loaded. Object
    /// stores are registered in `session`'s runtime, which the queries' runtimes share.
    pub async fn refresh(&self, session: &dyn Session) -> Result<()> {
        let asked = Instant::now();
        let mut last = self.refreshing.lock().await;
        if last.is_some_and(|began| began >= asked) {
            return Ok(());
        }
        let began = Instant::now();
        // The tables at once: each is a few reads of its log, so a statement waits for the
        // slowest table's, not the sum of all seven.
        futures::future::try_join_all(self.tables.iter().map(|live| live.refresh(&self.wh, session))).await?;
        *last = Some(began);
        Ok(())
    }

    /// The version each table is read at; None while it has no commit.
    pub fn versions(&self) -> Vec<(&'static str, Option<u64>)> {
        self.tables.iter().map(|l| (l.table.name, l.current().version)).collect()
    }
}

impl LiveTable {
    fn current(&self) -> Current {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn refresh(&self, wh: &Warehouse, session: &dyn Session) -> Result<()> {
        let name = self.table.name;
        let mut delta = self.delta.lock().await;
        match delta.as_mut() {
            // The provider is at the table's version and no commit follows it: nothing to read.
            Some(d)
                if d.version().is_some_and(|v| Some(v) == self.current().version)
                    && !next_commit(d).await.map_err(Error::delta(name))? =>
            {
                return Ok(());
            }
            Some(d) => d.update_incremental(None).await.map_err(Error::delta(name))?,
            None => {
                let builder = DeltaTableBuilder::from_url(wh.table_url(self.table)).map_err(Error::delta(name))?;
                let table = builder.build().map_err(Error::delta(name))?;
                if !table.verify_deltatable_existence().await.map_err(Error::delta(name))? {
                    return Ok(());
                }
                let builder = DeltaTableBuilder::from_url(wh.table_url(self.table)).map_err(Error::delta(name))?;
                *delta = Some(builder.load().await.map_err(Error::delta(name))?);
            }
        }
        let Some(d) = delta.as_ref() else { return Ok(()) };
        let version = d.version();
        if version == self.current().version {
            return Ok(());
        }
        d.update_datafusion_session(session).map_err(Error::delta(name))?;
        // Strings as Utf8, like the contract's schema: the views were planned against it.
        let provider = d.table_provider().with_session(Arc::new(plain_strings())).await?;
        if provider.schema() != self.table.schema() {
            tracing::warn!(table = name, delta = ?provider.schema(), contract = ?self.table.schema(), "Schemas differ.");
        }
        debug!(table = name, ?version, "Reading a new version.");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Current { provider, version };
        Ok(())
    }
}

/// Whether the commit after `d`'s version exists: one metadata read of the file it would be
/// (versions are contiguous and each commit's file is written once, whole), instead of the
/// listing of the whole log `update_incremental` does. A checkpoint or a cleanup changes no
/// version and nothing a reader of the version sees.
async fn next_commit(d: &DeltaTable) -> Result<bool, deltalake::DeltaTableError> {
    let Some(version) = d.version() else { return Ok(true) };
    match d.object_store().head(&commit_uri_from_version(Some(version + 1))).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A session that only tells delta-rs to read strings as `Utf8`, not `Utf8View`.
pub(crate) fn plain_strings() -> SessionState {
    let mut config = SessionConfig::new();
    config.options_mut().execution.parquet.schema_force_view_types = false;
    SessionStateBuilder::new().with_config(config).build()
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.current().provider.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.current().provider.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(&self, state: &dyn Session, args: ScanArgs<'a>) -> DfResult<ScanResult> {
        self.current().provider.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.current().provider.supports_filters_pushdown(filters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::table_tests::events;
    use crate::commit::{app_id, TableWriter};
    use crate::files::writer_properties;
    use crate::tables::EVENTS;

    /// A refresh reads a commit made since the last one, and leaves a table without one at the
    /// version it has (checked by the next commit's file alone).
    #[tokio::test]
    async fn a_refresh_reads_each_new_commit_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        let mut writer = TableWriter::new(&EVENTS, wh.writable(&EVENTS).await.unwrap());
        let app = app_id("g", "t", 0);
        let live = Live::new(wh).unwrap();
        let ctx = SessionContext::new();
        ctx.sql("CREATE SCHEMA raw").await.unwrap();
        live.register(&ctx, "raw").unwrap();
        let count = || async {
            live.refresh(&ctx.state()).await.unwrap();
            let batches = ctx.sql("SELECT count(*) FROM raw.events").await.unwrap().collect().await.unwrap();
            let n = batches[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0);
            let version = live.versions().into_iter().find(|(t, _)| *t == "events").unwrap().1;
            (n, version)
        };
        assert_eq!(count().await, (0, Some(0)));
        for (i, expected) in [(1, 10), (2, 15)] {
            writer.committed(&app).await.unwrap();
            writer
                .append(&[events(i * 100, 5 * (3 - i as usize))], &app, i, writer_properties(&EVENTS, 10))
                .await
                .unwrap();
            assert_eq!(count().await, (expected, Some(i as u64)));
            assert_eq!(count().await, (expected, Some(i as u64)), "no commit since");
        }
    }
}
