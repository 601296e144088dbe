//! A DataFusion session over one warehouse: memory limit with spilling, filter pushdown into
//! Parquet (statistics, page index, bloom filters), the tables and the views.

use std::path::Path as FsPath;
use std::sync::Arc;

use connaudit_transform::Warehouse;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::path::Path;
use object_store::ObjectStore;
use url::Url;

use crate::args::{parse_size, Common};
use crate::error::{Error, Result};
use crate::tables::TABLES;
use crate::window::Window;

/// Opens the warehouse named by `common` and registers its tables and views within `window`.
pub async fn open(common: &Common, window: &Window) -> Result<SessionContext> {
    let root = locate(&common.warehouse).await?;
    let mut runtime =
        RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(parse_size(&common.memory_limit)?)));
    if let Some(dir) = &common.spill_dir {
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "--spill-dir {} is not a directory; create it or pick another",
                dir.display()
            )));
        }
        runtime = runtime.with_temp_file_path(dir);
    }
    // DataFusion's own `DATAFUSION_*` variables tune the session, as in datafusion-cli.
    let mut config = SessionConfig::from_env()
        .map_err(|e| Error::Usage(format!("a DATAFUSION_* variable is not valid: {e}")))?
        .with_information_schema(true);
    let parquet = &mut config.options_mut().execution.parquet;
    // Evaluate filters while decoding, so `clientid = '...'` reads only the matching pages.
    if std::env::var_os("DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS").is_none() {
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
    }
    let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
    if let Some(store) = root.store {
        ctx.register_object_store(&root.url, store);
    }
    crate::tables::register(&ctx, &root.url).await?;
    crate::views::register(&ctx, window).await?;
    Ok(ctx)
}

struct Root {
    url: Url,
    /// The object store to register, for warehouses that are not local directories.
    store: Option<Arc<dyn ObjectStore>>,
}

/// Finds the warehouse without creating anything: a directory holding at least one table or
/// the transformer's `_state`, or an object-store prefix holding the same.
async fn locate(location: &str) -> Result<Root> {
    let missing = || Error::NoWarehouse(location.to_string());
    let local = match Url::parse(location) {
        Ok(url) if url.scheme() == "file" => Some(url.to_file_path().map_err(|()| missing())?),
        Ok(url) if url.scheme().len() > 1 => None,
        _ => Some(FsPath::new(location).to_path_buf()),
    };
    let known = |name: &str| name == "_state" || TABLES.iter().any(|t| t.name == name);
    if let Some(dir) = local {
        let entries = std::fs::read_dir(&dir).map_err(|_| missing())?;
        if !entries.flatten().any(|e| e.file_name().to_str().is_some_and(known)) {
            return Err(missing());
        }
        let wh = Warehouse::open(&dir.to_string_lossy())?;
        return Ok(Root { url: wh.url().clone(), store: None });
    }
    let wh = Warehouse::open(location)?;
    let store = wh.store();
    let prefix = Path::parse(wh.url().path().trim_matches('/')).map_err(|_| missing())?;
    let listed = store.list_with_delimiter(Some(&prefix)).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => missing(),
        other => Error::Warehouse(other.into()),
    })?;
    if !listed.common_prefixes.iter().any(|p| p.filename().is_some_and(known)) {
        return Err(missing());
    }
    Ok(Root { url: wh.url().clone(), store: Some(store) })
}
