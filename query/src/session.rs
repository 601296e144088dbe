//! A DataFusion session over one snapshot of the warehouse: memory limit with spilling, filter
//! pushdown into Parquet (statistics, page index, bloom filters), the tables and the views.

use connaudit_warehouse::{reader_config, spilling_runtime, AsOf, Warehouse};
use datafusion::prelude::SessionContext;
use tracing::info;

use crate::args::{parse_size, Common};
use crate::error::{Error, Result};
use crate::window::Window;

/// Opens the warehouse named by `common` and registers its tables and views within `window`.
pub async fn open(common: &Common, window: &Window) -> Result<SessionContext> {
    let wh = Warehouse::locate(common.warehouse.location()).await?;
    let as_of = common.as_of.as_deref().map(str::parse::<AsOf>).transpose()?;
    let runtime =
        spilling_runtime(parse_size(&common.memory_limit)?, common.spill_dir.as_deref()).map_err(Error::Usage)?;
    let config = reader_config().map_err(Error::Usage)?.with_information_schema(true);
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
