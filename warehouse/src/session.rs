//! The DataFusion session every reader of the warehouse starts from (`query`, `audit`, `serve`,
//! `compact`): written once, so a tuning applies to all of them.

use std::path::Path;
use std::sync::Arc;

use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;

/// DataFusion's own `DATAFUSION_*` variables (as datafusion-cli reads them), then filters
/// evaluated while Parquet is decoded (so `clientid = '...'` reads only the matching pages),
/// unless `DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS` says otherwise. The error names the
/// variables.
pub fn reader_config() -> Result<SessionConfig, String> {
    let mut config = SessionConfig::from_env().map_err(|e| format!("a DATAFUSION_* variable is not valid: {e}"))?;
    if std::env::var_os("DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS").is_none() {
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
    }
    Ok(config)
}

/// A runtime whose sorts, joins and aggregations spill to disk past `memory_limit` bytes, into
/// `spill_dir` when given (it must be a directory).
pub fn spilling_runtime(memory_limit: usize, spill_dir: Option<&Path>) -> Result<RuntimeEnvBuilder, String> {
    let mut runtime = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)));
    if let Some(dir) = spill_dir {
        if !dir.is_dir() {
            return Err(format!("--spill-dir {} is not a directory; create it or pick another", dir.display()));
        }
        runtime = runtime.with_temp_file_path(dir);
    }
    Ok(runtime)
}
