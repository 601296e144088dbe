//! The warehouse: a local directory or an object store (`s3://bucket/prefix`). Files appear
//! whole or not at all: locally through a hidden temporary file, fsync and rename; on object
//! storage through one `put`.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Warehouse {
    store: Arc<dyn ObjectStore>,
    /// Where the warehouse starts inside the store.
    prefix: Path,
    /// The directory, for a local warehouse.
    local: Option<PathBuf>,
    url: Url,
}

/// A file found by `list`: its path relative to the warehouse, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: u64,
}

impl Warehouse {
    /// Opens `location`: a directory (created when missing) or `s3://bucket/prefix`, configured
    /// from the usual `AWS_*` variables (`AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for
    /// S3-compatible stores).
    pub fn open(location: &str) -> Result<Self> {
        match Url::parse(location) {
            Ok(url) if url.scheme() == "s3" => {
                let store = AmazonS3Builder::from_env().with_url(url.as_str()).build()?;
                let prefix = Path::parse(url.path().trim_matches('/'))?;
                Ok(Warehouse { store: Arc::new(store), prefix, local: None, url })
            }
            Ok(url) if url.scheme() == "file" => {
                let dir =
                    url.to_file_path().map_err(|()| Error::Config(format!("`{location}` is not a local path")))?;
                Self::open_dir(&dir)
            }
            Ok(url) if url.scheme().len() > 1 => Err(Error::Config(format!(
                "warehouse scheme `{}` is not supported; use a directory or s3://bucket/prefix",
                url.scheme()
            ))),
            _ => Self::open_dir(FsPath::new(location)),
        }
    }

    fn open_dir(dir: &FsPath) -> Result<Self> {
        let io = |source| Error::Io { path: dir.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let dir = dir.canonicalize().map_err(io)?;
        let store = LocalFileSystem::new_with_prefix(&dir)?;
        let url =
            Url::from_directory_path(&dir).map_err(|()| Error::Config(format!("{} is not absolute", dir.display())))?;
        Ok(Warehouse { store: Arc::new(store), prefix: Path::default(), local: Some(dir), url })
    }

    /// `file:///dir/` or `s3://bucket/prefix/`: what a query engine registers.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub fn local_dir(&self) -> Option<&FsPath> {
        self.local.as_deref()
    }

    fn path(&self, rel: &str) -> Result<Path> {
        let rel = Path::parse(rel)?;
        Ok(self.prefix.parts().chain(rel.parts()).collect())
    }

    /// Writes a whole file: readers see the old content or the new, never part of it.
    pub async fn put(&self, rel: &str, data: Bytes) -> Result<()> {
        match &self.local {
            Some(dir) => {
                let target = dir.join(rel);
                tokio::task::spawn_blocking(move || write_durably(&target, &data))
                    .await
                    .map_err(|e| Error::Io { path: rel.to_string(), source: std::io::Error::other(e) })?
            }
            None => {
                self.store.put(&self.path(rel)?, PutPayload::from_bytes(data)).await?;
                Ok(())
            }
        }
    }

    pub async fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(rel)?).await {
            Ok(got) => Ok(Some(got.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.path(rel)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every `.parquet` file under `rel`, recursively, sorted by path.
    pub async fn list(&self, rel: &str) -> Result<Vec<Listed>> {
        let base = self.path(rel)?;
        let skip = self.prefix.parts().count();
        let found: Vec<_> = match self.store.list(Some(&base)).try_collect().await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut out: Vec<Listed> = found
            .into_iter()
            .filter(|m| {
                m.location.extension() == Some("parquet") && m.location.filename().is_some_and(|f| !f.starts_with('.'))
            })
            .map(|m| Listed {
                path: m.location.parts().skip(skip).map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"),
                size: m.size,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// Temporary file beside the target (hidden, so no reader picks it up), fsync, rename, fsync
/// of the directory: after a crash the file is either complete or absent.
fn write_durably(target: &FsPath, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| Error::Io { path: target.display().to_string(), source };
    let dir = target.parent().expect("warehouse files live in a directory");
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(data).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, target).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}
