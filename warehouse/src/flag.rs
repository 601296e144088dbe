//! `--warehouse`, as every command takes it (`transform`, `compact`, `query`, `audit`, `serve`):
//! one flag, one help text, one default.

use clap::Args;

/// Where the warehouse is when no flag, variable or config file says.
pub const DEFAULT_LOCATION: &str = "./warehouse";

#[derive(Debug, Clone, Default, Args)]
pub struct WarehouseFlag {
    /// The warehouse: a directory or s3://bucket/prefix (AWS_* variables configure S3)
    /// [default: ./warehouse]
    #[arg(long = "warehouse", env = "CONNAUDIT_WAREHOUSE", value_name = "DIR|URL")]
    pub given: Option<String>,
}

impl WarehouseFlag {
    pub fn new(location: &str) -> Self {
        WarehouseFlag { given: Some(location.to_string()) }
    }

    /// The location given, else [`DEFAULT_LOCATION`].
    pub fn location(&self) -> &str {
        self.given.as_deref().unwrap_or(DEFAULT_LOCATION)
    }
}
