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
//!   [`GCS_RETENTION_LABEL`] (N days), every object created except `checkpoint` is uploaded
//!   with a Locked retention until now + N days, in the upload itself
//!   (`x-goog-object-lock-mode: COMPLIANCE`, `x-goog-object-lock-retain-until-date`), so no
//!   object exists unprotected. A writer reads the bucket resource once per process, before
//!   its first write (`GET storage/v1/b/B`, `storage.buckets.get`); no label, or object
//!   retention off: objects are created without retention. See
//!   docs/decisions/0004-object-storage.md.
//!
//! The trait is synchronous: the store owns a small tokio runtime and blocks on it. Do not
//! call it from inside another tokio runtime's async context.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures::{StreamExt, TryStreamExt};
use md5::Digest as _;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::path::Path as OsPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion,
};

use crate::location::{valid_key_path, Cloud, Location};
use crate::{NewObject, Store, StoreError, Swap, Version, CHECKPOINT};

/// How many object writes are in flight at once in [`Store::create_all`].
pub const MAX_IN_FLIGHT: usize = 16;

/// A store in a bucket (S3, GCS) or container (Azure), below a key prefix.
pub struct ObjectStoreBackend {
    cloud: Cloud,
    bucket: String,
    prefix: String,
    inner: Arc<dyn ObjectStore>,
    /// GCS only: the JSON API and the bucket's object-retention setting.
    gcs: Option<GcsWriter>,
    rt: tokio::runtime::Runtime,
}

/// Label on a GCS bucket that tells writers for how many days to lock each object they
/// create (Object Retention Lock). Set by `tftrail bootstrap gcp`; checked by `storage check`.
pub(crate) const GCS_RETENTION_LABEL: &str = "tftrail-retention-days";

/// The longest retention GCS accepts: 100 years.
const GCS_MAX_RETENTION_DAYS: u32 = 36_500;

/// What a GCS writer needs beyond object_store: the bucket's retention setting, read once.
struct GcsWriter {
    api: crate::request::GcsJsonApi,
    /// `Some(days)`: lock new objects for that long; `None`: the bucket asks for no retention.
    retention_days: OnceLock<Option<u32>>,
}

/// Whether a GCS bucket resource has Object Retention Lock enabled (`objectRetention.mode`).
pub(crate) fn gcs_object_retention_enabled(bucket: &serde_json::Value) -> bool {
    bucket
        .pointer("/objectRetention/mode")
        .and_then(|m| m.as_str())
        == Some("Enabled")
}

/// The [`GCS_RETENTION_LABEL`] of a GCS bucket resource: `None` without the label, an error
/// for a value that is not a number of days GCS accepts (1 to 36,500).
pub(crate) fn gcs_label_days(bucket: &serde_json::Value) -> Option<Result<u32, String>> {
    let raw = bucket.get("labels")?.get(GCS_RETENTION_LABEL)?;
    let text = raw.as_str().unwrap_or_default().trim();
    Some(match text.parse::<u32>() {
        Ok(d) if (1..=GCS_MAX_RETENTION_DAYS).contains(&d) => Ok(d),
        _ => Err(format!(
            "the bucket label {GCS_RETENTION_LABEL}={raw} is not a number of days from 1 to \
             {GCS_MAX_RETENTION_DAYS}"
        )),
    })
}

/// The retention a writer gives new objects in a GCS bucket: `Ok(Some(days))` with object
/// retention enabled and the label set, `Ok(None)` when either is missing (objects are then
/// created without retention), an error for a bad label.
pub(crate) fn gcs_writer_retention(bucket: &serde_json::Value) -> Result<Option<u32>, String> {
    if !gcs_object_retention_enabled(bucket) {
        return Ok(None);
    }
    gcs_label_days(bucket).transpose()
}

impl std::fmt::Debug for ObjectStoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreBackend")
            .field("location", &self.location())
            .finish()
    }
}

/// Endpoint and region an S3 store talks to, shared with the administration client.
#[derive(Clone, Debug)]
pub(crate) struct S3Settings {
    /// Endpoint override (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), path-style when set.
    pub endpoint: Option<String>,
    /// Region used for signing.
    pub region: String,
    /// Whether plain http is allowed.
    pub allow_http: bool,
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

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The S3 endpoint override from the environment, and whether it is a loopback http URL.
pub(crate) fn s3_settings_from_env() -> S3Settings {
    let endpoint = env_nonempty("AWS_ENDPOINT_URL_S3").or_else(|| env_nonempty("AWS_ENDPOINT_URL"));
    let region = env_nonempty("AWS_REGION")
        .or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_string());
    let explicit = env_nonempty("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let loopback_http = endpoint.as_deref().is_some_and(is_loopback_http);
    S3Settings {
        endpoint,
        region,
        allow_http: explicit || loopback_http,
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

/// The retention a GCS writer gives an object it creates. It rides in the request's
/// extensions (object_store hands `PutOptions::extensions` to the HTTP request) to
/// [`HeaderService`], which turns it into the upload's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GcsLock {
    /// RFC 3339 UTC.
    retain_until: String,
}

/// Headers a store adds to its uploads beyond what object_store sends. Both may be added
/// after object_store has authorised the request.
#[derive(Debug, Clone, Copy)]
enum PutHeaders {
    /// `Content-MD5` on every PUT with an in-memory body. S3 Object Lock refuses PUTs into a
    /// bucket with default retention unless they carry `Content-MD5` or an SDK checksum
    /// header; object_store sends `x-amz-checksum-sha256` only, which AWS accepts but
    /// S3-compatible servers (moto) may not. `Content-MD5` is not an `x-amz-*` header, so
    /// the SigV4 signature does not cover it.
    ContentMd5,
    /// GCS Object Retention Lock on a PUT that carries a [`GcsLock`]: the XML-API upload
    /// headers `x-goog-object-lock-mode: COMPLIANCE` (i.e. Locked) and
    /// `x-goog-object-lock-retain-until-date`. GCS authorises with a bearer token, which
    /// signs no header.
    GcsLock,
}

/// An HTTP connector whose clients add [`PutHeaders`].
#[derive(Debug)]
struct HeaderConnector(PutHeaders);

#[derive(Debug)]
struct HeaderService(HttpClient, PutHeaders);

impl HttpConnector for HeaderConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(HeaderService(inner, self.0)))
    }
}

#[async_trait]
impl HttpService for HeaderService {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if req.method() == http::Method::PUT {
            match self.1 {
                PutHeaders::ContentMd5 if !req.headers().contains_key("content-md5") => {
                    // Bodies built from a PutPayload are chunked: gather them (in memory).
                    let bytes = match req.body().as_bytes() {
                        Some(b) => b.clone(),
                        None => {
                            use http_body_util::BodyExt as _;
                            req.body().clone().collect().await?.to_bytes()
                        }
                    };
                    let md5 = md5::Md5::digest(&bytes);
                    let v = base64::engine::general_purpose::STANDARD.encode(md5);
                    if let Ok(v) = http::HeaderValue::from_str(&v) {
                        req.headers_mut().insert("content-md5", v);
                    }
                    *req.body_mut() = object_store::client::HttpRequestBody::from(bytes);
                }
                PutHeaders::ContentMd5 => {}
                PutHeaders::GcsLock => {
                    if let Some(lock) = req.extensions().get::<GcsLock>().cloned() {
                        let headers = req.headers_mut();
                        headers.insert(
                            "x-goog-object-lock-mode",
                            http::HeaderValue::from_static("COMPLIANCE"),
                        );
                        if let Ok(v) = http::HeaderValue::from_str(&lock.retain_until) {
                            headers.insert("x-goog-object-lock-retain-until-date", v);
                        }
                    }
                }
            }
        }
        self.0.execute(req).await
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
                let base = crate::request::GcsJsonApi::base_url(&b);
                let store = b.build().map_err(config_err)?;
                let api = crate::request::GcsJsonApi::new(base, store.credentials().clone())
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

    /// GCS: for how many days to lock the objects this writer creates, from the bucket
    /// resource, read on the first write and kept for the life of the process. `None` on
    /// other clouds and on a bucket without object retention or without the label.
    ///
    /// A bucket whose settings cannot be read fails the write (fail closed): without them
    /// the writer cannot know whether the bucket expects its objects locked.
    fn gcs_retention_days(&self) -> Result<Option<u32>, StoreError> {
        let Some(g) = &self.gcs else {
            return Ok(None);
        };
        if let Some(days) = g.retention_days.get() {
            return Ok(*days);
        }
        const OP: &str = "read the bucket's retention settings";
        let location = self.location();
        let r = self.rt.block_on(g.api.get(
            &format!("b/{}?fields=objectRetention,labels", self.bucket),
            &location,
        ))?;
        let days = match r.status {
            200..=299 => {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.body).map_err(|e| StoreError::Backend {
                        op: OP,
                        path: location.clone(),
                        message: format!("unreadable bucket resource: {e}"),
                    })?;
                gcs_writer_retention(&v).map_err(|message| StoreError::Backend {
                    op: OP,
                    path: location.clone(),
                    message,
                })?
            }
            404 => {
                return Err(StoreError::NotAStore {
                    location,
                    reason: "the bucket or container does not exist".into(),
                })
            }
            s @ (408 | 429 | 500..=599) => {
                return Err(StoreError::Transient {
                    op: OP,
                    path: location,
                    message: format!("HTTP {s}"),
                })
            }
            s => {
                return Err(StoreError::Backend {
                    op: OP,
                    path: location,
                    message: format!(
                        "HTTP {s}{}: a writer reads the bucket's object retention and its \
                         {GCS_RETENTION_LABEL} label before creating objects",
                        if s == 403 {
                            " (permission denied: writers need storage.buckets.get, see \
                             `tftrail bootstrap gcp`)"
                        } else {
                            ""
                        }
                    ),
                })
            }
        };
        Ok(*g.retention_days.get_or_init(|| days))
    }

    /// The lock to put on the objects created now, if the bucket asks for one.
    fn gcs_lock(&self) -> Result<Option<GcsLock>, StoreError> {
        let Some(days) = self.gcs_retention_days()? else {
            return Ok(None);
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Ok(Some(GcsLock {
            retain_until: rfc3339_utc(now + i64::from(days) * 86_400),
        }))
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

    /// A minimal GCS server for the requests tftrail's GCS store makes. No emulator in a
    /// package registry implements them (docs/decisions/0004-object-storage.md), so this
    /// loopback fake stands in for GCS, strict where the store contract depends on it:
    /// - XML API (object_store's client): `PUT` honouring `x-goog-if-generation-match` (412
    ///   when it fails) and the Object Retention Lock headers `x-goog-object-lock-mode` and
    ///   `x-goog-object-lock-retain-until-date` (400 on a bucket without object retention or
    ///   for a bad value); an object under an unexpired retention can be neither replaced nor
    ///   deleted (403), as on GCS; `GET` returning `x-goog-generation`; `DELETE`;
    ///   `list-type=2` listings.
    /// - JSON API: `GET storage/v1/b/B`, the bucket resource, whose settings follow the
    ///   bucket's name ([`bucket`]).
    ///
    /// Every request is recorded with its retention headers. It is not GCS: header names and
    /// status codes follow GCS's documentation, and nothing here has run against GCS itself.
    mod fake_gcs {
        use std::collections::BTreeMap;
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::{Arc, Mutex};

        /// A bucket's settings in the fake.
        #[derive(Clone, Copy, Default)]
        pub struct Bucket {
            /// `objectRetention.mode: Enabled`.
            pub object_retention: bool,
            /// The `tftrail-retention-days` label.
            pub label: Option<&'static str>,
            /// Uploads with retention headers are refused (a writer without
            /// storage.objects.setRetention).
            pub deny_set_retention: bool,
            /// An object under retention is refused (403) before the generation precondition
            /// is evaluated.
            pub retention_first: bool,
            /// The bucket resource is readable (else 403: no storage.buckets.get).
            pub readable: bool,
        }

        /// The buckets the fake knows, by name.
        pub fn bucket(name: &str) -> Option<Bucket> {
            let worm = Bucket {
                object_retention: true,
                label: Some("30"),
                readable: true,
                ..Default::default()
            };
            Some(match name {
                "bkt" => Bucket {
                    readable: true,
                    ..Default::default()
                },
                "worm" => worm,
                "worm403" => Bucket {
                    retention_first: true,
                    ..worm
                },
                "nolabel" => Bucket {
                    label: None,
                    ..worm
                },
                "badlabel" => Bucket {
                    label: Some("forever"),
                    ..worm
                },
                "norole" => Bucket {
                    deny_set_retention: true,
                    ..worm
                },
                "private" => Bucket {
                    readable: false,
                    ..worm
                },
                _ => return None,
            })
        }

        /// An object's retention, with the JSON API's mode names (`Locked`, `Unlocked`).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Retention {
            pub mode: String,
            pub until: String,
        }

        pub struct Obj {
            pub data: Vec<u8>,
            pub generation: u64,
            pub retention: Option<Retention>,
        }

        /// A request as received: method, target, and its retention headers (mode, date).
        #[derive(Clone, Debug)]
        pub struct Seen {
            pub method: String,
            pub target: String,
            pub lock: Option<(String, String)>,
        }

        #[derive(Default)]
        pub struct State {
            /// By (bucket, object name).
            pub objects: BTreeMap<(String, String), Obj>,
            pub requests: Vec<Seen>,
        }

        pub type Shared = Arc<Mutex<State>>;

        /// Starts the server on a free loopback port; returns its base URL and its state.
        pub fn start() -> (String, Shared) {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", l.local_addr().unwrap());
            let state: Shared = Arc::default();
            let shared = state.clone();
            std::thread::spawn(move || {
                for conn in l.incoming().flatten() {
                    let state = state.clone();
                    std::thread::spawn(move || serve(conn, &state));
                }
            });
            (url, shared)
        }

        fn dec(s: &str) -> String {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        }

        fn now() -> i64 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        }

        /// Whether a retention still protects its object.
        fn active(r: &Retention) -> bool {
            super::super::parse_rfc3339(&r.until).is_some_and(|t| t > now())
        }

        type Reply = (u16, Vec<(String, String)>, Vec<u8>);

        fn xml_error(status: u16, code: &str, message: &str) -> Reply {
            (
                status,
                vec![],
                format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>")
                    .into_bytes(),
            )
        }

        fn bucket_resource(name: &str) -> Reply {
            let Some(b) = bucket(name) else {
                return (404, vec![], br#"{"error":{"code":404}}"#.to_vec());
            };
            if !b.readable {
                return (
                    403,
                    vec![],
                    br#"{"error":{"code":403,"message":"does not have storage.buckets.get access"}}"#
                        .to_vec(),
                );
            }
            let mut v = serde_json::json!({ "name": name });
            if b.object_retention {
                v["objectRetention"] = serde_json::json!({ "mode": "Enabled" });
            }
            if let Some(l) = b.label {
                v["labels"] = serde_json::json!({ super::super::GCS_RETENTION_LABEL: l });
            }
            (200, vec![], v.to_string().into_bytes())
        }

        fn put(
            st: &mut State,
            b: Bucket,
            id: (String, String),
            headers: &BTreeMap<String, String>,
            body: Vec<u8>,
        ) -> Reply {
            let current = st.objects.get(&id);
            let generation = current.map(|o| o.generation).unwrap_or(0);
            let protected = current
                .and_then(|o| o.retention.as_ref())
                .is_some_and(active);
            let precondition_failed = headers
                .get("x-goog-if-generation-match")
                .is_some_and(|want| want.parse::<u64>().unwrap() != generation);
            let under_retention = xml_error(
                403,
                "AccessDenied",
                "Object is under active retention and cannot be deleted or overwritten",
            );
            if b.retention_first && protected {
                return under_retention;
            }
            if precondition_failed {
                return xml_error(412, "PreconditionFailed", "");
            }
            if protected {
                return under_retention;
            }
            let retention = match (
                headers.get("x-goog-object-lock-mode"),
                headers.get("x-goog-object-lock-retain-until-date"),
            ) {
                (None, None) => None,
                (Some(mode), Some(until)) => {
                    if !b.object_retention {
                        return xml_error(
                            400,
                            "InvalidArgument",
                            "object retention is not enabled on the bucket",
                        );
                    }
                    if b.deny_set_retention {
                        return xml_error(
                            403,
                            "AccessDenied",
                            "w@p.iam does not have storage.objects.setRetention access",
                        );
                    }
                    let mode = match mode.as_str() {
                        "COMPLIANCE" => "Locked",
                        "GOVERNANCE" => "Unlocked",
                        _ => return xml_error(400, "InvalidArgument", "bad retention mode"),
                    };
                    if super::super::parse_rfc3339(until).is_none_or(|t| t <= now()) {
                        return xml_error(400, "InvalidArgument", "bad retain-until date");
                    }
                    Some(Retention {
                        mode: mode.into(),
                        until: until.clone(),
                    })
                }
                _ => return xml_error(400, "InvalidArgument", "incomplete retention"),
            };
            let g = generation.max(1000) + 1;
            st.objects.insert(
                id,
                Obj {
                    data: body,
                    generation: g,
                    retention,
                },
            );
            (
                200,
                vec![
                    ("x-goog-generation".into(), g.to_string()),
                    ("etag".into(), format!("\"e{g}\"")),
                ],
                vec![],
            )
        }

        fn respond(
            st: &mut State,
            method: &str,
            path: &str,
            query: &str,
            headers: &BTreeMap<String, String>,
            body: Vec<u8>,
        ) -> Reply {
            if let Some(rest) = path.strip_prefix("/storage/v1/b/") {
                return match method {
                    "GET" if !rest.contains('/') => bucket_resource(rest),
                    _ => (400, vec![], vec![]),
                };
            }
            let (bkt, key) = match path.trim_start_matches('/').split_once('/') {
                Some((b, k)) => (b.to_string(), Some(dec(k))),
                None => (path.trim_start_matches('/').to_string(), None),
            };
            let Some(b) = bucket(&bkt) else {
                return xml_error(404, "NoSuchBucket", "The specified bucket does not exist");
            };
            match (method, key) {
                ("PUT", Some(k)) => put(st, b, (bkt, k), headers, body),
                ("DELETE", Some(k)) => match st.objects.get(&(bkt.clone(), k.clone())) {
                    Some(o) if o.retention.as_ref().is_some_and(active) => xml_error(
                        403,
                        "AccessDenied",
                        "Object is under active retention and cannot be deleted or overwritten",
                    ),
                    Some(_) => {
                        st.objects.remove(&(bkt, k));
                        (204, vec![], vec![])
                    }
                    None => xml_error(404, "NoSuchKey", ""),
                },
                ("GET", Some(k)) if !k.is_empty() => match st.objects.get(&(bkt, k)) {
                    Some(o) => (
                        200,
                        vec![
                            ("x-goog-generation".into(), o.generation.to_string()),
                            ("etag".into(), format!("\"e{}\"", o.generation)),
                            (
                                "last-modified".into(),
                                "Thu, 01 Jan 2026 00:00:00 GMT".into(),
                            ),
                        ],
                        o.data.clone(),
                    ),
                    None => xml_error(404, "NoSuchKey", ""),
                },
                ("GET", _) => {
                    let prefix = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("prefix="))
                        .map(dec)
                        .unwrap_or_default();
                    let mut xml = String::from("<ListBucketResult>");
                    for ((_, k), o) in st
                        .objects
                        .iter()
                        .filter(|((ob, k), _)| *ob == bkt && k.starts_with(&prefix))
                    {
                        xml.push_str(&format!(
                            "<Contents><Key>{k}</Key><Size>{}</Size><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>\"e{}\"</ETag></Contents>",
                            o.data.len(),
                            o.generation
                        ));
                    }
                    xml.push_str("</ListBucketResult>");
                    (200, vec![], xml.into_bytes())
                }
                _ => (400, vec![], vec![]),
            }
        }

        fn serve(conn: TcpStream, state: &Shared) {
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut w = conn;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let (method, target) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                let mut headers = BTreeMap::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
                let mut body = Vec::new();
                if headers
                    .get("transfer-encoding")
                    .is_some_and(|v| v.contains("chunked"))
                {
                    loop {
                        let mut size = String::new();
                        r.read_line(&mut size).unwrap();
                        let n = usize::from_str_radix(size.trim(), 16).unwrap();
                        let mut chunk = vec![0; n + 2];
                        r.read_exact(&mut chunk).unwrap();
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                } else if let Some(n) = headers.get("content-length") {
                    body = vec![0; n.parse().unwrap()];
                    r.read_exact(&mut body).unwrap();
                }
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let mut st = state.lock().unwrap();
                st.requests.push(Seen {
                    method: method.clone(),
                    target: target.clone(),
                    lock: headers.get("x-goog-object-lock-mode").map(|m| {
                        (
                            m.clone(),
                            headers
                                .get("x-goog-object-lock-retain-until-date")
                                .cloned()
                                .unwrap_or_default(),
                        )
                    }),
                });
                let (status, extra, out) = respond(&mut st, &method, path, query, &headers, body);
                drop(st);
                let mut resp = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", out.len());
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                w.write_all(resp.as_bytes()).unwrap();
                w.write_all(&out).unwrap();
            }
        }
    }

    /// Points object_store's GCS client at the fake. nextest runs each test in its own
    /// process: these variables stay in that test.
    fn gcs_fake() -> fake_gcs::Shared {
        let (url, state) = fake_gcs::start();
        std::env::set_var("GOOGLE_BASE_URL", url);
        // object_store 0.14's GCS PUT fetches a credential even with GOOGLE_SKIP_SIGNATURE: a
        // static bearer token keeps it off the metadata server.
        std::env::set_var("GOOGLE_BEARER_TOKEN", "test");
        state
    }

    fn now_secs() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    /// Requests whose target starts with `prefix` (`GET /storage/v1/b/worm`, `PUT /worm/…`).
    fn seen(state: &fake_gcs::Shared, method: &str, prefix: &str) -> Vec<fake_gcs::Seen> {
        state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.method == method && r.target.starts_with(prefix))
            .cloned()
            .collect()
    }

    #[test]
    fn gcs_create_only_and_generation_compare_and_swap() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "bkt", "log").unwrap();
        s.check_reachable().unwrap();
        let obj = NewObject::new("tile/0/000", b"one".to_vec());
        s.create_all(std::slice::from_ref(&obj)).unwrap();
        s.create_all(std::slice::from_ref(&obj)).unwrap();
        assert!(matches!(
            s.create_all(&[NewObject::new("tile/0/000", b"two".to_vec())]),
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(s.list("tile/").unwrap(), ["tile/0/000"]);
        assert!(s.get_checkpoint().unwrap().is_none());
        assert_eq!(s.swap_checkpoint(None, b"c1").unwrap(), Swap::Done);
        assert_eq!(s.swap_checkpoint(None, b"c1").unwrap(), Swap::Lost);
        let (b, v1) = s.get_checkpoint().unwrap().unwrap();
        assert_eq!(b, b"c1");
        // The version is the generation, not the ETag.
        assert!(v1.0.chars().all(|c| c.is_ascii_digit()), "{v1}");
        assert_eq!(s.swap_checkpoint(Some(&v1), b"c2").unwrap(), Swap::Done);
        assert_eq!(s.swap_checkpoint(Some(&v1), b"c3").unwrap(), Swap::Lost);
        assert_eq!(s.get_checkpoint().unwrap().unwrap().0, b"c2");
        // A bucket without object retention: its settings are read once, no upload is locked.
        assert_eq!(seen(&state, "GET", "/storage/v1/b/bkt").len(), 1);
        let puts = seen(&state, "PUT", "/bkt/");
        assert!(
            puts.len() >= 5 && puts.iter().all(|r| r.lock.is_none()),
            "{puts:?}"
        );
    }

    /// On a bucket with object retention and the label (30 days), every object created but
    /// the checkpoint is uploaded Locked until now + 30 days, and GCS then refuses to replace
    /// or delete it; the checkpoint carries no retention and keeps moving.
    #[test]
    fn gcs_object_retention_locks_every_object_but_the_checkpoint() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "worm", "log").unwrap();
        let before = now_secs();
        s.create_all(&[
            NewObject::new("tile/0/000.p/2", b"tiles".to_vec()),
            NewObject::new("tile/entries/000.p/2", b"bundle".to_vec()),
            NewObject::new("tftrail/blobs/sha256/ab", b"blob".to_vec()),
        ])
        .unwrap();
        s.create_after(
            &[NewObject::new("tftrail/batches/2", b"claim".to_vec())],
            &[NewObject::new("tile/0/000.p/3", b"more".to_vec())],
        )
        .unwrap();
        // Identical bytes again (a roll-forward): success; other bytes: a conflict.
        s.create_all(&[NewObject::new("tile/0/000.p/2", b"tiles".to_vec())])
            .unwrap();
        assert!(matches!(
            s.create_all(&[NewObject::new("tile/0/000.p/2", b"other".to_vec())]),
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(s.swap_checkpoint(None, b"c1").unwrap(), Swap::Done);
        let (_, v1) = s.get_checkpoint().unwrap().unwrap();
        assert_eq!(s.swap_checkpoint(Some(&v1), b"c2").unwrap(), Swap::Done);
        let after = now_secs();

        // Read once per process, however many writes.
        assert_eq!(seen(&state, "GET", "/storage/v1/b/worm").len(), 1);
        {
            let st = state.lock().unwrap();
            let names: Vec<&str> = st.objects.keys().map(|(_, k)| k.as_str()).collect();
            assert_eq!(names.len(), 6, "{names:?}");
            for ((_, k), o) in &st.objects {
                if k == "log/checkpoint" {
                    assert_eq!(o.retention, None, "the checkpoint must stay replaceable");
                    assert_eq!(o.data, b"c2");
                    continue;
                }
                let r = o
                    .retention
                    .as_ref()
                    .unwrap_or_else(|| panic!("{k} not retained"));
                assert_eq!(r.mode, "Locked", "{k}");
                let until = parse_rfc3339(&r.until).unwrap();
                let days = 30 * 86_400;
                assert!(
                    (before + days..=after + days).contains(&until),
                    "{k}: {} is not now + 30 days",
                    r.until
                );
            }
        }
        for r in seen(&state, "PUT", "/worm/") {
            let cp = r
                .target
                .replace("%2F", "/")
                .starts_with("/worm/log/checkpoint");
            match &r.lock {
                Some((mode, _)) => assert!(!cp && mode == "COMPLIANCE", "{r:?}"),
                None => assert!(cp, "{r:?}"),
            }
        }

        // What the retention buys: neither an overwrite nor a delete gets through.
        let key = OsPath::from("log/tile/0/000.p/2");
        let overwrite = s.rt.block_on(s.inner.put_opts(
            &key,
            PutPayload::from(b"forged".to_vec()),
            PutMode::Overwrite.into(),
        ));
        assert!(
            matches!(overwrite, Err(object_store::Error::PermissionDenied { .. })),
            "{overwrite:?}"
        );
        let delete = s.rt.block_on(s.inner.delete(&key));
        assert!(
            matches!(delete, Err(object_store::Error::PermissionDenied { .. })),
            "{delete:?}"
        );
        assert_eq!(s.get("tile/0/000.p/2").unwrap().unwrap(), b"tiles");
        // The checkpoint, unretained, is replaceable by whoever may (writers: through CAS).
        let cp = OsPath::from("log/checkpoint");
        s.rt.block_on(s.inner.put_opts(
            &cp,
            PutPayload::from(b"c3".to_vec()),
            PutMode::Overwrite.into(),
        ))
        .unwrap();
    }

    /// GCS may answer a create-only upload of an object under retention with 403 rather
    /// than 412: identical bytes are still success, other bytes a conflict.
    #[test]
    fn gcs_refusal_of_a_retained_object_still_compares_bytes() {
        let _state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "worm403", "").unwrap();
        let obj = NewObject::new("tile/0/000", b"one".to_vec());
        s.create_all(std::slice::from_ref(&obj)).unwrap();
        s.create_all(std::slice::from_ref(&obj)).unwrap();
        assert!(matches!(
            s.create_all(&[NewObject::new("tile/0/000", b"two".to_vec())]),
            Err(StoreError::Conflict { .. })
        ));
    }

    /// A writer that may not set retention fails the write, naming the object and the
    /// permission; nothing is created.
    #[test]
    fn gcs_retention_refused_fails_the_write_naming_the_object() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "norole", "log").unwrap();
        let err = s
            .create_all(&[NewObject::new("tile/0/000", b"one".to_vec())])
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, StoreError::Backend { path, .. } if path == "tile/0/000"),
            "{err:?}"
        );
        assert!(text.contains("storage.objects.setRetention"), "{text}");
        assert!(state.lock().unwrap().objects.is_empty());
    }

    /// Object retention enabled but no label: objects are created without retention (no
    /// lock header sent), as on a bucket that does not ask for it.
    #[test]
    fn gcs_without_the_label_sends_no_retention() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "nolabel", "log").unwrap();
        s.create_all(&[NewObject::new("tile/0/000", b"one".to_vec())])
            .unwrap();
        let puts = seen(&state, "PUT", "/nolabel/");
        assert!(puts.len() == 1 && puts[0].lock.is_none(), "{puts:?}");
        assert!(state
            .lock()
            .unwrap()
            .objects
            .values()
            .all(|o| o.retention.is_none()));
    }

    /// Unreadable bucket settings (no storage.buckets.get) or a bad label fail the write
    /// before anything is uploaded; reads do not need the settings.
    #[test]
    fn gcs_unreadable_retention_settings_fail_closed() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "private", "log").unwrap();
        assert_eq!(s.get("tile/0/000").unwrap(), None);
        let err = s
            .create_all(&[NewObject::new("tile/0/000", b"one".to_vec())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.buckets.get"), "{err}");
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "badlabel", "log").unwrap();
        let err = s
            .create_all(&[NewObject::new("tile/0/000", b"one".to_vec())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tftrail-retention-days=\"forever\""), "{err}");
        assert!(seen(&state, "PUT", "/").is_empty());
    }

    #[test]
    fn gcs_writer_retention_from_the_bucket_resource() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        let on =
            r#"{"objectRetention":{"mode":"Enabled"},"labels":{"tftrail-retention-days":"365"}}"#;
        assert_eq!(gcs_writer_retention(&v(on)), Ok(Some(365)));
        // Object retention off: the label alone asks for nothing GCS would accept.
        let off = r#"{"labels":{"tftrail-retention-days":"365"}}"#;
        assert_eq!(gcs_writer_retention(&v(off)), Ok(None));
        let no_label = r#"{"objectRetention":{"mode":"Enabled"},"labels":{"team":"infra"}}"#;
        assert_eq!(gcs_writer_retention(&v(no_label)), Ok(None));
        for bad in ["0", "36501", "-1", "1y", ""] {
            let j = format!(
                r#"{{"objectRetention":{{"mode":"Enabled"}},"labels":{{"tftrail-retention-days":"{bad}"}}}}"#
            );
            assert!(gcs_writer_retention(&v(&j)).is_err(), "{bad}");
        }
    }

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
