//! A [`Store`] on object storage (S3 and S3-compatible servers, Google Cloud Storage, Azure
//! Blob Storage) through the `object_store` crate.
//!
//! - Objects are written with `PutMode::Create` (`If-None-Match: *`, GCS generation 0); an
//!   existing object is read back and compared: identical bytes are success, different bytes a
//!   [`StoreError::Conflict`].
//! - The checkpoint moves with `PutMode::Update` (`If-Match: <etag>` on S3 and Azure,
//!   `x-goog-if-generation-match: <generation>` on GCS, whose checkpoint [`Version`] is the
//!   object's generation), or `PutMode::Create` when there is none yet; a failed precondition
//!   is [`Swap::Lost`].
//! - Every S3 PUT carries `Content-MD5`, which S3 Object Lock requires for writes into a
//!   bucket with default retention (next to object_store's `x-amz-checksum-sha256`).
//! - Transient failures (5xx, throttling, timeouts, connection errors) are retried with
//!   exponential backoff by object_store; what still fails is [`StoreError::Transient`].
//! - Nothing is ever deleted.
//! - GCS with Object Retention Lock: when the bucket has object retention enabled and the label
//!   [`GCS_RETENTION_LABEL`](crate::gcs::GCS_RETENTION_LABEL) (N days), every object created
//!   except `checkpoint` is uploaded with a Locked retention until now + N days, in the upload
//!   itself (`x-goog-object-lock-mode: COMPLIANCE`, `x-goog-object-lock-retain-until-date`), so
//!   no object exists unprotected. A writer reads the bucket resource once per process, before
//!   its first write (`GET storage/v1/b/B`, `storage.buckets.get`); no label, or object
//!   retention off: objects are created without retention. See
//!   docs/decisions/0004-object-storage.md.
//!
//! The backend-specific parts live beside each backend: the upload headers in
//! [`crate::connector`], the S3 endpoint settings in `s3`, the GCS retention writer and its
//! JSON API in `gcs`.
//!
//! The trait is synchronous: the store owns a small tokio runtime and blocks on it. Do not
//! call it from inside another tokio runtime's async context.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::client::HttpError;
use object_store::path::Path as OsPath;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    UpdateVersion,
};

use crate::connector::{GcsLock, HeaderConnector, PutHeaders};
use crate::gcs::GcsWriter;
use crate::location::{valid_key_path, Cloud, Location};
use crate::s3::s3_settings_from_env;
use crate::{NewObject, Store, StoreError, Swap, Version, CHECKPOINT};

/// How many object writes are in flight at once in [`Store::create_all`].
pub const MAX_IN_FLIGHT: usize = 16;

/// A store in a bucket (S3, GCS) or container (Azure), below a key prefix.
pub struct ObjectStoreBackend {
    cloud: Cloud,
    pub(crate) bucket: String,
    prefix: String,
    pub(crate) inner: Arc<dyn ObjectStore>,
    /// GCS only: the JSON API and the bucket's object-retention setting.
    pub(crate) gcs: Option<GcsWriter>,
    pub(crate) rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for ObjectStoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreBackend")
            .field("location", &self.location())
            .finish()
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, StoreError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tftrail-store-io")
        .enable_all()
        .build()
        .map_err(|e| StoreError::Io {
            op: "start runtime",
            path: String::new(),
            source: e,
        })
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
        max_retries: 8,
        retry_timeout: Duration::from_secs(120),
    }
}

/// `http://127.x.y.z…`, `http://localhost…` or `http://[::1]…`.
pub(crate) fn is_loopback_http(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    if u.scheme() != "http" {
        return false;
    }
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl ObjectStoreBackend {
    /// Connects to the bucket or container of an object-storage location, with credentials
    /// from the cloud's standard environment. Does not contact the service: see
    /// [`ObjectStoreBackend::check_reachable`].
    ///
    /// The environment is object_store's: `AWS_*` (plus `AWS_ENDPOINT_URL[_S3]`), `GOOGLE_*`
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_BASE_URL` …) and
    /// `AZURE_*` (`AZURE_STORAGE_ACCOUNT_NAME`, Entra ID, `AZURE_STORAGE_ENDPOINT` …; for the
    /// Azurite emulator `AZURE_STORAGE_USE_EMULATOR=true`, with `AZURITE_BLOB_STORAGE_URL` when
    /// it does not listen on `127.0.0.1:10000`).
    pub fn connect(cloud: Cloud, bucket: &str, prefix: &str) -> Result<Self, StoreError> {
        let location = Location::Object {
            cloud,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }
        .to_string();
        let config_err = |e: object_store::Error| StoreError::NotAStore {
            location: location.clone(),
            reason: format!("cannot configure the client: {e}"),
        };
        let rt = runtime()?;
        let mut gcs = None;
        let inner: Arc<dyn ObjectStore> = match cloud {
            Cloud::S3 => {
                use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
                let settings = s3_settings_from_env();
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(&settings.region)
                    .with_conditional_put(S3ConditionalPut::ETagMatch)
                    .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
                    .with_retry(retry_config())
                    .with_http_connector(HeaderConnector(PutHeaders::ContentMd5))
                    .with_allow_http(settings.allow_http);
                if let Some(ep) = &settings.endpoint {
                    b = b.with_endpoint(ep).with_virtual_hosted_style_request(false);
                }
                // The credential chain may start background refreshes on the runtime.
                let _guard = rt.enter();
                Arc::new(b.build().map_err(config_err)?)
            }
            Cloud::Gcs => {
                let _guard = rt.enter();
                let b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry_config())
                    .with_http_connector(HeaderConnector(PutHeaders::GcsLock));
                let base = crate::gcs::GcsJsonApi::base_url(&b);
                let store = b.build().map_err(config_err)?;
                let api = crate::gcs::GcsJsonApi::new(base, store.credentials().clone())
                    .map_err(config_err)?;
                gcs = Some(GcsWriter {
                    api,
                    retention_days: OnceLock::new(),
                });
                Arc::new(store)
            }
            Cloud::Azure => {
                let _guard = rt.enter();
                Arc::new(
                    object_store::azure::MicrosoftAzureBuilder::from_env()
                        .with_container_name(bucket)
                        .with_retry(retry_config())
                        .build()
                        .map_err(config_err)?,
                )
            }
        };
        Ok(ObjectStoreBackend {
            cloud,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            inner,
            gcs,
            rt,
        })
    }

    /// Which cloud.
    pub fn cloud(&self) -> Cloud {
        self.cloud
    }

    /// Bucket or container name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Key prefix (no leading or trailing `/`; empty for the bucket's root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Lists one key to make sure the bucket exists and the credentials work.
    pub fn check_reachable(&self) -> Result<(), StoreError> {
        let root = self.key("")?;
        let res: Result<Option<_>, object_store::Error> = self.rt.block_on(async {
            let mut s = self.inner.list(root.as_ref());
            s.next().await.transpose()
        });
        match res {
            Ok(_) => Ok(()),
            Err(e) => Err(match map_err("list", &self.location(), e) {
                StoreError::NotAStore { location, reason } => {
                    StoreError::NotAStore { location, reason }
                }
                other => other,
            }),
        }
    }

    /// The full key of a store path (prefix joined), validated.
    fn key(&self, path: &str) -> Result<Option<OsPath>, StoreError> {
        let full = match (self.prefix.is_empty(), path.is_empty()) {
            (true, true) => return Ok(None),
            (true, false) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{}", self.prefix, path),
        };
        if !valid_key_path(&full) {
            return Err(invalid_path(path));
        }
        OsPath::parse(&full)
            .map(Some)
            .map_err(|_| invalid_path(path))
    }

    fn object_key(&self, path: &str) -> Result<OsPath, StoreError> {
        if path.is_empty() {
            return Err(invalid_path(path));
        }
        Ok(self.key(path)?.expect("non-empty path"))
    }

    fn strip_prefix<'a>(&self, key: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
        }
    }

    async fn get_async(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.object_key(path)?;
        match self.inner.get(&key).await {
            Ok(r) => {
                let b = r.bytes().await.map_err(|e| map_err("read", path, e))?;
                Ok(Some(b.to_vec()))
            }
            Err(object_store::Error::NotFound { source, .. }) if !no_such_bucket(&*source) => {
                Ok(None)
            }
            Err(e) => Err(map_err("read", path, e)),
        }
    }

    /// Whether an object with these bytes is already there (`Some(false)`: other bytes).
    async fn same_bytes(&self, obj: &NewObject) -> Result<Option<bool>, StoreError> {
        Ok(self
            .get_async(&obj.path)
            .await?
            .map(|existing| existing == obj.data))
    }

    async fn create_one(&self, obj: &NewObject, lock: Option<&GcsLock>) -> Result<(), StoreError> {
        if obj.path == CHECKPOINT {
            return Err(StoreError::Backend {
                op: "write",
                path: obj.path.clone(),
                message: "the checkpoint moves only through swap_checkpoint".into(),
            });
        }
        let key = self.object_key(&obj.path)?;
        // A 409 (concurrent conditional write in flight) may leave nothing to compare yet.
        for attempt in 0..5u32 {
            let mut opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            if let Some(lock) = lock {
                opts.extensions.insert(lock.clone());
            }
            let payload = PutPayload::from(obj.data.clone());
            match self.inner.put_opts(&key, payload, opts).await {
                Ok(_) => return Ok(()),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    match self.same_bytes(obj).await? {
                        Some(true) => return Ok(()),
                        Some(false) => {
                            return Err(StoreError::Conflict {
                                path: obj.path.clone(),
                            })
                        }
                        None => {
                            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                        }
                    }
                }
                // GCS may refuse an object under retention before it evaluates the
                // generation precondition: compare as for a failed precondition.
                Err(e @ object_store::Error::PermissionDenied { .. })
                    if self.cloud == Cloud::Gcs =>
                {
                    return match self.same_bytes(obj).await? {
                        Some(true) => Ok(()),
                        Some(false) => Err(StoreError::Conflict {
                            path: obj.path.clone(),
                        }),
                        None => Err(match (lock, map_err("write", &obj.path, e)) {
                            (Some(l), StoreError::Backend { op, path, message }) => {
                                StoreError::Backend {
                                    op,
                                    message: format!(
                                        "{message} (creating it locked until {} needs \
                                         storage.objects.create and storage.objects.setRetention)",
                                        l.retain_until
                                    ),
                                    path,
                                }
                            }
                            (_, other) => other,
                        }),
                    };
                }
                Err(e) => return Err(map_err("write", &obj.path, e)),
            }
        }
        Err(StoreError::Transient {
            op: "write",
            path: obj.path.clone(),
            message: "conditional write kept conflicting with a write that never landed".into(),
        })
    }
}

fn invalid_path(path: &str) -> StoreError {
    StoreError::Backend {
        op: "resolve",
        path: path.to_string(),
        message: "invalid object path".into(),
    }
}

/// Whether an error chain says the bucket or container does not exist.
fn no_such_bucket(e: &(dyn std::error::Error + 'static)) -> bool {
    let text = error_chain_text(e);
    text.contains("NoSuchBucket")
        || text.contains("ContainerNotFound")
        || text.contains("The specified bucket does not exist")
}

fn error_chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::HttpErrorKind;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            if matches!(
                h.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            ) {
                return true;
            }
        }
        cur = err.source();
    }
    let text = error_chain_text(e);
    [
        "500 Internal Server Error",
        "502 Bad Gateway",
        "503 Service Unavailable",
        "504 Gateway Timeout",
        "429 Too Many Requests",
        "SlowDown",
        "RequestTimeout",
        "error sending request",
        "timed out",
    ]
    .iter()
    .any(|n| text.contains(n))
}

/// Maps an object_store error to the store's classification.
pub(crate) fn map_err(op: &'static str, path: &str, e: object_store::Error) -> StoreError {
    if no_such_bucket(&e) {
        return StoreError::NotAStore {
            location: path.to_string(),
            reason: "the bucket or container does not exist".into(),
        };
    }
    if is_transient(&e) {
        return StoreError::Transient {
            op,
            path: path.to_string(),
            message: error_chain_text(&e),
        };
    }
    let message = match &e {
        object_store::Error::PermissionDenied { .. } => {
            format!("permission denied: {}", error_chain_text(&e))
        }
        object_store::Error::Unauthenticated { .. } => {
            format!(
                "not authenticated (check credentials): {}",
                error_chain_text(&e)
            )
        }
        _ => error_chain_text(&e),
    };
    StoreError::Backend {
        op,
        path: path.to_string(),
        message,
    }
}

impl Store for ObjectStoreBackend {
    fn location(&self) -> String {
        Location::Object {
            cloud: self.cloud,
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
        }
        .to_string()
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.rt.block_on(self.get_async(path))
    }

    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        let key = self.object_key(path)?;
        match self.rt.block_on(self.inner.head(&key)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { source, .. }) if !no_such_bucket(&*source) => {
                Ok(false)
            }
            Err(e) => Err(map_err("read", path, e)),
        }
    }

    fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError> {
        if objects.is_empty() {
            return Ok(());
        }
        let lock = self.gcs_lock()?;
        self.rt.block_on(async {
            futures::stream::iter(objects.iter().map(|o| self.create_one(o, lock.as_ref())))
                .buffer_unordered(MAX_IN_FLIGHT)
                .try_collect::<Vec<()>>()
                .await
                .map(|_| ())
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // object_store lists by whole path segments: list the directory part, filter the rest.
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let dir_key = if dir.is_empty() {
            self.key("")?
        } else {
            Some(self.object_key(dir)?)
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.inner.list(dir_key.as_ref()).try_collect())
            .map_err(|e| map_err("list", prefix, e))?;
        let mut out: Vec<String> = metas
            .iter()
            .filter_map(|m| self.strip_prefix(m.location.as_ref()))
            .filter(|p| p.starts_with(prefix))
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        let key = self.object_key(CHECKPOINT)?;
        self.rt.block_on(async {
            match self.inner.get(&key).await {
                Ok(r) => {
                    // GCS preconditions compare generations (x-goog-if-generation-match), not
                    // ETags: object_store's GCS client needs the generation for PutMode::Update.
                    let (tag, what) = match self.cloud {
                        Cloud::Gcs => (r.meta.version.clone(), "generation"),
                        Cloud::S3 | Cloud::Azure => (r.meta.e_tag.clone(), "ETag"),
                    };
                    let etag = tag.ok_or_else(|| StoreError::Backend {
                        op: "read",
                        path: CHECKPOINT.into(),
                        message: format!("the service returned no {what}"),
                    })?;
                    let b = r
                        .bytes()
                        .await
                        .map_err(|e| map_err("read", CHECKPOINT, e))?;
                    Ok(Some((b.to_vec(), Version(etag))))
                }
                Err(object_store::Error::NotFound { source, .. }) if !no_such_bucket(&*source) => {
                    Ok(None)
                }
                Err(e) => Err(map_err("read", CHECKPOINT, e)),
            }
        })
    }

    fn swap_checkpoint(&self, expected: Option<&Version>, new: &[u8]) -> Result<Swap, StoreError> {
        let key = self.object_key(CHECKPOINT)?;
        let mode = match expected {
            None => PutMode::Create,
            Some(v) if self.cloud == Cloud::Gcs => PutMode::Update(UpdateVersion {
                e_tag: None,
                version: Some(v.0.clone()),
            }),
            Some(v) => PutMode::Update(UpdateVersion {
                e_tag: Some(v.0.clone()),
                version: None,
            }),
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        let payload = PutPayload::from(new.to_vec());
        match self.rt.block_on(self.inner.put_opts(&key, payload, opts)) {
            Ok(_) => Ok(Swap::Done),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Swap::Lost),
            // If-Match on a checkpoint that is gone: the expected version is not current.
            Err(object_store::Error::NotFound { source, .. }) if !no_such_bucket(&*source) => {
                Ok(Swap::Lost)
            }
            Err(e) => Err(map_err("write", CHECKPOINT, e)),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC) of a time in seconds since the Unix epoch.
pub(crate) fn rfc3339_utc(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2027-01-31T12:00:00.250Z`,
/// `…+01:00`); fractions of a second are dropped.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        // The retention date a GCS upload carries, and the dates `storage check` reads back.
        assert_eq!(rfc3339_utc(1_835_438_400), "2028-02-29T12:00:00Z");
        assert_eq!(parse_rfc3339("2028-02-29T12:00:00Z"), Some(1_835_438_400));
        assert_eq!(
            parse_rfc3339("2028-02-29T13:30:00.25+01:30"),
            Some(1_835_438_400)
        );
        assert_eq!(parse_rfc3339("2028-02-29"), None);
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_http("http://127.0.0.1:9000"));
        assert!(is_loopback_http("http://localhost:5000/"));
        assert!(is_loopback_http("http://[::1]:80"));
        assert!(!is_loopback_http("https://127.0.0.1:9000"));
        assert!(!is_loopback_http("http://10.0.0.1"));
        assert!(!is_loopback_http("http://s3.example.com"));
        assert!(!is_loopback_http("not a url"));
    }
}
