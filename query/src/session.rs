//! A DataFusion session over one snapshot of the warehouse: memory limit with spilling, filter
//! pushdown into Parquet (statistics, page index, bloom filters), the tables and the views.

use std::sync::Arc;

use connaudit_warehouse::{AsOf, Warehouse};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use tracing::info;

use crate::args::{parse_size, Common};
use crate::error::{Error, Result};
use crate::window::Window;

/// Opens the warehouse named by `common` and registers its tables and views within `window`.
pub async fn open(common: &Common, window: &Window) -> Result<SessionContext> {
    let wh = Warehouse::locate(&common.warehouse).await?;
    let as_of = common.as_of.as_deref().map(str::parse::<AsOf>).transpose()?;
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
    let loaded = crate::tables::register(&ctx, &wh, as_of).await?;
    if as_of.is_some() {
        for l in loaded {
            info!(table = l.table.name, version = ?l.version, "Reading an earlier version.");
        }
    }
    crate::views::register(&ctx, window).await?;
    Ok(ctx)
}
