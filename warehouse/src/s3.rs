//! S3 and S3-compatible stores through object_store's own client, registered with delta-rs for
//! `s3://` and `s3a://` (in place of delta-rs's AWS SDK integration, which brought the whole
//! SDK into the build). Delta commits are conditional PUTs (`If-None-Match: *`), which S3 and
//! the S3-compatible stores support, so two writers never both win a version and no lock
//! service is needed.
//!
//! Credentials come from what object_store reads: the `AWS_*` variables (keys and session
//! token; `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for S3-compatible stores), a web identity
//! token (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`: IRSA on EKS), the ECS or EKS Pod
//! Identity container endpoint, and else the instance metadata service.

use std::sync::{Arc, Once};

use deltalake::logstore::object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::object_store::ObjectStoreScheme;
use deltalake::logstore::{
    default_logstore, logstore_factories, object_store_factories, LogStore, LogStoreFactory, ObjectStoreFactory,
    ObjectStoreRef, StorageConfig,
};
use deltalake::{DeltaResult, DeltaTableError};
use url::Url;

/// Makes `s3://` and `s3a://` tables openable; once a process, before the first is opened.
pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["s3", "s3a"] {
            let url = Url::parse(&format!("{scheme}://")).expect("a scheme is a URL");
            object_store_factories().insert(url.clone(), Arc::new(S3));
            logstore_factories().insert(url, Arc::new(S3));
        }
    });
}

struct S3;

impl ObjectStoreFactory for S3 {
    fn parse_url_opts(&self, url: &Url, config: &StorageConfig) -> DeltaResult<(ObjectStoreRef, Path)> {
        let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
        // Options given with the table (none of ours) win over the environment.
        for (key, value) in &config.raw {
            if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let (_, path) =
            ObjectStoreScheme::parse(url).map_err(|e| DeltaTableError::GenericError { source: Box::new(e) })?;
        Ok((Arc::new(builder.build()?), Path::parse(path)?))
    }
}

impl LogStoreFactory for S3 {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        // The default log store commits with `PutMode::Create`, a conditional PUT on S3.
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_and_prefix_come_from_the_url_and_the_rest_from_the_environment() {
        let url = Url::parse("s3://audit/connaudit/events/").unwrap();
        let config = StorageConfig::parse_options([
            ("aws_region", "eu-west-1"),
            ("aws_access_key_id", "k"),
            ("aws_secret_access_key", "s"),
        ])
        .unwrap();
        let (store, path) = S3.parse_url_opts(&url, &config).unwrap();
        assert_eq!(path.as_ref(), "connaudit/events");
        let shown = format!("{store}");
        assert!(shown.contains("audit"), "{shown}");
    }
}
