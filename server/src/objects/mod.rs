//! Homes in S3-compatible object storage: the bucket (this file), the
//! namespace in the database (`store/namespace.rs`), browsing (`home.rs`),
//! uploads as resumable multipart uploads (`upload.rs`) whose parts are
//! sent while the next one fills (`parts.rs`) and which are named in
//! group commits (`commit.rs`), ranged downloads (`download.rs`), the
//! SHA-256 state saved at part boundaries (`sha.rs`) and the sweeper of
//! what no path names (`sweep.rs`).
//!
//! Objects are immutable blobs under `PREFIX/USER/`, named at random; a
//! path names a blob through its row, so a rename never touches the bucket.

pub mod commit;
pub mod download;
pub mod home;
pub mod parts;
pub mod sha;
pub mod sweep;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::config::StoreConfig;

/// What went wrong with the object store.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The configuration names no usable store.
    #[error("{0}")]
    Config(String),
    /// The store refused or could not be reached.
    #[error("the object store is unavailable: {0}")]
    Unavailable(#[from] object_store::Error),
}

impl BucketError {
    /// The error a client sees: the store being away is the server being
    /// busy (clients retry), and nothing is lost; the store refusing the
    /// server's credentials (a key revoked or rotated while serving) is
    /// not something a retry mends, so it is said as what it is.
    pub fn to_remote(&self) -> ferry_proto::RemoteError {
        use ferry_proto::{ErrorKind, RemoteError};
        tracing::warn!(error = %self, "object store");
        let refused =
            "the server's object store refused the server's credentials; tell its administrator";
        match self {
            BucketError::Unavailable(
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. },
            ) => RemoteError::new(ErrorKind::Io, refused),
            _ => RemoteError::new(
                ErrorKind::TooBusy,
                "the server's object store is unavailable; try again shortly",
            ),
        }
    }
}

/// The bucket all homes live in, with the prefix of this server's keys.
#[derive(Clone, Debug)]
pub struct Bucket {
    s3: Arc<AmazonS3>,
    prefix: String,
    /// `s3://BUCKET/PREFIX`, for messages.
    pub url: String,
    /// Bytes per multipart part.
    pub part_size: u64,
    /// Part buffers over the whole server.
    parts: Arc<tokio::sync::Semaphore>,
    /// Of those, per user.
    pub parts_per_user: usize,
    /// How long an upload holds its part buffer waiting for `PutStart`.
    pub part_start: Duration,
    /// Files in one commit transaction, at most.
    pub commit_batch: usize,
}

/// Parses `s3://BUCKET/PREFIX` into the bucket and the prefix (may be
/// empty; no leading or trailing `/`).
pub fn parse_url(url: &str) -> Result<(String, String), BucketError> {
    let bad = || {
        BucketError::Config(format!(
            "bad store URL {url:?}: expected s3://BUCKET or s3://BUCKET/PREFIX"
        ))
    };
    let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty()
        || !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(bad());
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|p| p == "." || p == "..") {
        return Err(bad());
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

impl Bucket {
    /// Connects to the bucket `config` names (endpoint, region and
    /// credentials from the config, else the standard `AWS_*` variables)
    /// and checks that it answers and accepts the credentials.
    pub async fn connect(config: &StoreConfig) -> Result<Bucket, BucketError> {
        let url = config
            .url
            .clone()
            .ok_or_else(|| BucketError::Config("no store URL".into()))?;
        let (bucket, prefix) = parse_url(&url)?;
        // reqwest's rustls takes the process's provider: ring, as the rest
        // of ferryd (installing twice is harmless).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        if let Some(e) = &config.endpoint {
            b = b.with_endpoint(e);
        }
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok());
        if endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
        {
            b = b.with_allow_http(true);
        }
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        b = b.with_region(region);
        if let Some(id) = &config.access_key_id {
            b = b.with_access_key_id(id);
        }
        if let Some(file) = &config.secret_access_key_file {
            let secret = std::fs::read_to_string(file)
                .map_err(|e| BucketError::Config(format!("cannot read {}: {e}", file.display())))?;
            b = b.with_secret_access_key(secret.trim());
        }
        // A store that is down answers within seconds, not minutes: a few
        // retries, then the client hears "busy" and retries itself.
        b = b.with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 4,
            retry_timeout: Duration::from_secs(20),
        });
        let s3 = b.build()?;
        let bucket = Bucket {
            s3: Arc::new(s3),
            prefix,
            url,
            part_size: config.part_size_mib << 20,
            parts: Arc::new(tokio::sync::Semaphore::new(config.max_part_buffers)),
            parts_per_user: config.max_part_buffers_per_user,
            part_start: Duration::from_secs(config.part_start_secs),
            commit_batch: config.commit_batch_max,
        };
        bucket.check().await?;
        Ok(bucket)
    }

    /// A bucket that is never reached (tests of what needs none).
    #[cfg(test)]
    pub fn unreached(max_part_buffers: usize, per_user: usize) -> Bucket {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s3 = AmazonS3Builder::new()
            .with_bucket_name("unreached")
            .with_region("us-east-1")
            .with_endpoint("http://127.0.0.1:9")
            .with_allow_http(true)
            .build()
            .unwrap();
        Bucket {
            s3: Arc::new(s3),
            prefix: String::new(),
            url: "s3://unreached".into(),
            part_size: 5 << 20,
            parts: Arc::new(tokio::sync::Semaphore::new(max_part_buffers)),
            parts_per_user: per_user,
            part_start: Duration::from_secs(30),
            commit_batch: 256,
        }
    }

    /// Lists at most one key under the prefix: fails when the store is
    /// down, the bucket is missing or the credentials are refused.
    pub async fn check(&self) -> Result<(), BucketError> {
        let prefix = self.key("");
        self.s3
            .list_with_delimiter(Some(&ObjPath::from(prefix)))
            .await?;
        Ok(())
    }

    /// A place for a part buffer in the server's share.
    pub async fn part_place(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.parts.clone().acquire_owned().await.ok()
    }

    /// A place for a part buffer in the server's share, if one is free.
    pub fn try_part_place(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.parts.clone().try_acquire_owned().ok()
    }

    /// The client.
    pub fn s3(&self) -> &AmazonS3 {
        &self.s3
    }

    /// The full key of `rest` under the prefix.
    pub fn key(&self, rest: &str) -> String {
        match (self.prefix.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{rest}", self.prefix),
        }
    }

    /// A new, never used blob name for `user` (relative to the prefix).
    pub fn new_blob(user: &str) -> Result<String, BucketError> {
        let mut r = [0u8; 16];
        getrandom::getrandom(&mut r)
            .map_err(|e| BucketError::Config(format!("no randomness: {e}")))?;
        Ok(format!("{user}/{}", crate::transfer::hex(&r)))
    }

    /// The object path of a blob name.
    pub fn path(&self, blob: &str) -> ObjPath {
        ObjPath::from(self.key(blob))
    }

    /// The prefix of everything of this server's (for the sweeper).
    pub fn root(&self) -> ObjPath {
        ObjPath::from(self.key(""))
    }

    /// The blob name of a full object path, if it is under the prefix.
    pub fn blob_of(&self, path: &ObjPath) -> Option<String> {
        let full = path.as_ref();
        if self.prefix.is_empty() {
            return Some(full.to_string());
        }
        full.strip_prefix(&self.prefix)
            .and_then(|r| r.strip_prefix('/'))
            .map(str::to_string)
    }

    /// Deletes an object; one already gone is fine.
    pub async fn delete(&self, blob: &str) -> Result<(), BucketError> {
        match self.s3.delete(&self.path(blob)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_are_not_a_busy_store() {
        let source =
            || Box::<dyn std::error::Error + Send + Sync>::from("403 SignatureDoesNotMatch");
        let path = String::from("k");
        for e in [
            object_store::Error::PermissionDenied {
                path: path.clone(),
                source: source(),
            },
            object_store::Error::Unauthenticated {
                path: path.clone(),
                source: source(),
            },
        ] {
            let r = BucketError::Unavailable(e).to_remote();
            assert_eq!(r.kind, ferry_proto::ErrorKind::Io);
            assert!(r.detail.contains("credentials"), "{}", r.detail);
        }
        let away = object_store::Error::Generic {
            store: "S3",
            source: source(),
        };
        let r = BucketError::Unavailable(away).to_remote();
        assert_eq!(r.kind, ferry_proto::ErrorKind::TooBusy);
    }

    #[test]
    fn store_urls() {
        assert_eq!(
            parse_url("s3://ferry/a/b/").unwrap(),
            ("ferry".into(), "a/b".into())
        );
        assert_eq!(
            parse_url("s3://ferry").unwrap(),
            ("ferry".into(), "".into())
        );
        assert!(parse_url("s3://").is_err());
        assert!(parse_url("http://x/y").is_err());
        assert!(parse_url("s3://Bad_Bucket/x").is_err());
        assert!(parse_url("s3://b/../x").is_err());
    }
}
