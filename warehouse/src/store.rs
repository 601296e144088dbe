//! Where the warehouse lives (a directory or `s3://bucket/prefix`) and its tables as Delta
//! tables under it: created by the writer on first use, found and loaded by readers.

use std::path::{Path, PathBuf};

use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructType;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

use crate::error::{Error, Result};
use crate::tables::{Table, PARTITION, TABLES};

/// A warehouse location. S3 is configured from the usual `AWS_*` variables, a web identity
/// token or instance metadata (see `s3.rs`); commits use S3's conditional writes, so no lock
/// service is needed.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: Url,
    local: Option<PathBuf>,
}

impl Warehouse {
    /// Opens `location` for writing: a directory (created when missing) or `s3://bucket/prefix`.
    pub fn open(location: &str) -> Result<Self> {
        match Self::parse(location)? {
            Parsed::Local(dir) => {
                let io =
                    |e: std::io::Error| Error::Config(format!("cannot create the warehouse {}: {e}", dir.display()));
                std::fs::create_dir_all(&dir).map_err(io)?;
                let dir = dir.canonicalize().map_err(io)?;
                let root = Url::from_directory_path(&dir)
                    .map_err(|()| Error::Config(format!("{} is not an absolute path", dir.display())))?;
                Ok(Warehouse { root, local: Some(dir) })
            }
            Parsed::Remote(root) => Ok(Warehouse { root, local: None }),
        }
    }

    /// Names `location` for a reader that waits for the tables to appear: nothing is created or
    /// checked.
    pub fn reader(location: &str) -> Result<Self> {
        match Self::parse(location)? {
            Parsed::Local(dir) => {
                let dir = std::path::absolute(&dir)
                    .map_err(|e| Error::Config(format!("cannot resolve the warehouse {}: {e}", dir.display())))?;
                let root = Url::from_directory_path(&dir)
                    .map_err(|()| Error::Config(format!("{} is not an absolute path", dir.display())))?;
                Ok(Warehouse { root, local: Some(dir) })
            }
            Parsed::Remote(root) => Ok(Warehouse { root, local: None }),
        }
    }

    /// Finds an existing warehouse without creating anything: at least one of its tables.
    pub async fn locate(location: &str) -> Result<Self> {
        let missing = || Error::Missing(location.to_string());
        let wh = match Self::parse(location)? {
            Parsed::Local(dir) => {
                let dir = dir.canonicalize().map_err(|_| missing())?;
                let root = Url::from_directory_path(&dir).map_err(|()| missing())?;
                Warehouse { root, local: Some(dir) }
            }
            Parsed::Remote(root) => Warehouse { root, local: None },
        };
        for table in TABLES {
            let delta = DeltaTableBuilder::from_url(wh.table_url(table)).map_err(Error::delta(table.name))?;
            let found = delta.build().map_err(Error::delta(table.name))?.verify_deltatable_existence().await;
            if found.map_err(Error::delta(table.name))? {
                return Ok(wh);
            }
        }
        Err(missing())
    }

    fn parse(location: &str) -> Result<Parsed> {
        if location.trim().is_empty() {
            return Err(Error::Config("--warehouse is empty; give a directory or s3://bucket/prefix".into()));
        }
        match Url::parse(location) {
            Ok(url) if url.scheme() == "s3" || url.scheme() == "s3a" => {
                crate::s3::register();
                let mut url = url;
                if !url.path().ends_with('/') {
                    url.set_path(&format!("{}/", url.path()));
                }
                Ok(Parsed::Remote(url))
            }
            Ok(url) if url.scheme() == "file" => url
                .to_file_path()
                .map(Parsed::Local)
                .map_err(|()| Error::Config(format!("`{location}` is not a local path"))),
            Ok(url) if url.scheme().len() > 1 => Err(Error::Config(format!(
                "warehouse scheme `{}` is not supported; use a directory or s3://bucket/prefix",
                url.scheme()
            ))),
            _ => Ok(Parsed::Local(PathBuf::from(location))),
        }
    }

    /// Refuses a warehouse an earlier connaudit wrote as plain Parquet with `_state/`: its files
    /// are in no Delta log, so a compaction's cleanup would delete them as unreferenced.
    pub async fn refuse_old_layout(&self) -> Result<()> {
        let root = DeltaTableBuilder::from_url(self.root.clone())
            .and_then(|b| b.build())
            .map_err(Error::delta("warehouse"))?;
        let store = root.log_store().object_store(None);
        let listed = store.list_with_delimiter(Some(&object_store::path::Path::from("_state"))).await;
        match listed {
            Ok(l) if !l.objects.is_empty() || !l.common_prefixes.is_empty() => Err(Error::Config(format!(
                "{} holds a warehouse of an earlier connaudit (Parquet files and _state/), which is not a Delta \
                 table; point --warehouse at a new location (and keep reading the old one with DuckDB's read_parquet)",
                self.root
            ))),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// `file:///dir/` or `s3://bucket/prefix/`.
    pub fn url(&self) -> &Url {
        &self.root
    }

    pub fn local_dir(&self) -> Option<&Path> {
        self.local.as_deref()
    }

    /// Where `table`'s Delta log and files live: `<root>/<name>/`.
    pub fn table_url(&self, table: &Table) -> Url {
        self.root.join(&format!("{}/", table.name)).expect("a table name is a valid path segment")
    }

    /// The latest version of `table`, created (empty, partitioned by `date`) when missing.
    /// Two writers creating it at once both succeed: the second finds the first's table.
    pub async fn writable(&self, table: &'static Table) -> Result<DeltaTable> {
        let url = self.table_url(table);
        if let Some(dir) = &self.local {
            // delta-rs opens only an existing directory.
            let dir = dir.join(table.name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut delta =
            DeltaTableBuilder::from_url(url.clone()).and_then(|b| b.build()).map_err(Error::delta(table.name))?;
        if delta.verify_deltatable_existence().await.map_err(Error::delta(table.name))? {
            delta.load().await.map_err(Error::delta(table.name))?;
            return upgrade(delta, table).await;
        }
        let schema: StructType =
            table.schema().as_ref().try_into_kernel().map_err(|e| Error::Config(format!("{}: {e}", table.name)))?;
        let created = delta
            .create()
            .with_table_name(table.name)
            .with_columns(schema.fields().cloned())
            .with_partition_columns([PARTITION])
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(delta) => Ok(delta),
            Err(DeltaTableError::VersionAlreadyExists(_)) | Err(DeltaTableError::Transaction { .. }) => {
                DeltaTable::try_from_url(url).await.map_err(Error::delta(table.name))
            }
            Err(e) => Err(Error::delta(table.name)(e)),
        }
    }
}

/// Adds the contract's columns a table written by an earlier version lacks (nullable ones
/// only: its old rows read them as null), in one Delta commit. Two writers upgrading at once:
/// the loser's commit conflicts, and it finds the winner's columns on its next read.
async fn upgrade(mut delta: DeltaTable, table: &'static Table) -> Result<DeltaTable> {
    let name = table.name;
    for _ in 0..3 {
        let have = delta.snapshot().map_err(Error::delta(name))?.schema();
        let contract: StructType =
            table.schema().as_ref().try_into_kernel().map_err(|e| Error::Config(format!("{name}: {e}")))?;
        let missing: Vec<_> = contract.fields().filter(|f| have.field(f.name()).is_none()).cloned().collect();
        if missing.is_empty() {
            return Ok(delta);
        }
        if let Some(f) = missing.iter().find(|f| !f.is_nullable()) {
            return Err(Error::Config(format!(
                "the table {name} has no column {} and it cannot be added to existing rows; \
                 write to a new warehouse location",
                f.name()
            )));
        }
        let names: Vec<&str> = missing.iter().map(|f| f.name().as_str()).collect();
        tracing::info!(table = name, columns = ?names, "Adding the columns this version writes to the table.");
        match delta.clone().add_columns().with_fields(missing.clone()).await {
            Ok(upgraded) => return Ok(upgraded),
            Err(DeltaTableError::Transaction { .. }) | Err(DeltaTableError::VersionAlreadyExists(_)) => {
                delta.update_incremental(None).await.map_err(Error::delta(name))?;
            }
            Err(e) => return Err(Error::delta(name)(e)),
        }
    }
    Err(Error::Config(format!("could not add the missing columns to {name}: other writers kept changing it")))
}

enum Parsed {
    Local(PathBuf),
    Remote(Url),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_table_of_an_earlier_version_gets_the_new_columns() {
        use crate::tables::EVENTS;
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        let url = wh.table_url(&EVENTS);
        std::fs::create_dir_all(dir.path().join("events")).unwrap();
        let contract: StructType = EVENTS.schema().as_ref().try_into_kernel().unwrap();
        let old: Vec<_> = contract.fields().filter(|f| f.name() != "fingerprint").cloned().collect();
        let delta = DeltaTableBuilder::from_url(url).unwrap().build().unwrap();
        delta.create().with_columns(old).with_partition_columns([PARTITION]).await.unwrap();
        let upgraded = wh.writable(&EVENTS).await.unwrap();
        let schema = upgraded.snapshot().unwrap().schema();
        assert!(schema.field("fingerprint").is_some_and(|f| f.is_nullable()));
        assert_eq!(upgraded.version(), Some(1), "one commit added it");
        // Opening it again changes nothing.
        assert_eq!(wh.writable(&EVENTS).await.unwrap().version(), Some(1));
    }

    #[tokio::test]
    async fn a_warehouse_of_the_parquet_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        wh.refuse_old_layout().await.unwrap();
        std::fs::create_dir_all(dir.path().join("_state/mqtt.client-events")).unwrap();
        std::fs::write(dir.path().join("_state/mqtt.client-events/0.json"), r#"{"done":9}"#).unwrap();
        let e = wh.refuse_old_layout().await.unwrap_err();
        assert!(e.is_user_error() && e.to_string().contains("earlier connaudit"), "{e}");
        assert!(Warehouse::open(" ").unwrap_err().to_string().contains("--warehouse"));
        assert!(Warehouse::open("gs://b/p").unwrap_err().to_string().contains("not supported"));
    }
}
