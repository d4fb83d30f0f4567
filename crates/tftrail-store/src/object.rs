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
//!
//! The trait is synchronous: the store owns a small tokio runtime and blocks on it. Do not
//! call it from inside another tokio runtime's async context.

use std::sync::Arc;
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
    rt: tokio::runtime::Runtime,
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

/// An HTTP connector that adds `Content-MD5` to every PUT with an in-memory body.
///
/// S3 Object Lock refuses PUTs into a bucket with default retention unless they carry
/// `Content-MD5` or an SDK checksum header; object_store sends `x-amz-checksum-sha256` only,
/// which AWS accepts but S3-compatible servers (moto) may not. `Content-MD5` is not an
/// `x-amz-*` header, so adding it after signing is allowed.
#[derive(Debug, Default)]
struct Md5Connector;

#[derive(Debug)]
struct Md5Service(HttpClient);

impl HttpConnector for Md5Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Md5Service(inner)))
    }
}

#[async_trait]
impl HttpService for Md5Service {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if req.method() == http::Method::PUT && !req.headers().contains_key("content-md5") {
            // Bodies built from a PutPayload are chunked: gather them (they are in memory).
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
                    .with_http_connector(Md5Connector)
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
                Arc::new(
                    object_store::gcp::GoogleCloudStorageBuilder::from_env()
                        .with_bucket_name(bucket)
                        .with_retry(retry_config())
                        .build()
                        .map_err(config_err)?,
                )
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

    async fn create_one(&self, obj: &NewObject) -> Result<(), StoreError> {
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
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            let payload = PutPayload::from(obj.data.clone());
            match self.inner.put_opts(&key, payload, opts).await {
                Ok(_) => return Ok(()),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    match self.get_async(&obj.path).await? {
                        Some(existing) if existing == obj.data => return Ok(()),
                        Some(_) => {
                            return Err(StoreError::Conflict {
                                path: obj.path.clone(),
                            })
                        }
                        None => {
                            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                        }
                    }
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
        self.rt.block_on(async {
            futures::stream::iter(objects.iter().map(|o| self.create_one(o)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal GCS XML-API server for the requests object_store's GCS client makes: `PUT`
    /// honouring `x-goog-if-generation-match` (412 when it fails), `GET` returning
    /// `x-goog-generation`, and `list-type=2` listings. No emulator in a package registry
    /// implements these (docs/decisions/0004-object-storage.md), so this checks that the GCS
    /// path sends generations, not ETags, and maps 412 the way the store contract needs.
    mod fake_gcs {
        use std::collections::BTreeMap;
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::{Arc, Mutex};

        type Objects = Arc<Mutex<BTreeMap<String, (Vec<u8>, u64)>>>;

        /// Starts the server on a free loopback port; returns its base URL.
        pub fn start() -> String {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", l.local_addr().unwrap());
            let objects: Objects = Arc::default();
            std::thread::spawn(move || {
                for conn in l.incoming().flatten() {
                    let objects = objects.clone();
                    std::thread::spawn(move || serve(conn, &objects));
                }
            });
            url
        }

        fn dec(s: &str) -> String {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        }

        fn serve(conn: TcpStream, objects: &Objects) {
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
                let key = path
                    .trim_start_matches('/')
                    .split_once('/')
                    .map(|(_, k)| dec(k));
                let mut objs = objects.lock().unwrap();
                let (status, extra, out): (u16, Vec<(String, String)>, Vec<u8>) = match (
                    method.as_str(),
                    key,
                ) {
                    ("PUT", Some(k)) => {
                        let current = objs.get(&k).map(|(_, g)| *g).unwrap_or(0);
                        match headers.get("x-goog-if-generation-match") {
                            Some(want) if want.parse::<u64>().unwrap() != current => (
                                412,
                                vec![],
                                b"<Error><Code>PreconditionFailed</Code></Error>".to_vec(),
                            ),
                            _ => {
                                let g = current.max(1000) + 1;
                                objs.insert(k, (body, g));
                                (
                                    200,
                                    vec![
                                        ("x-goog-generation".into(), g.to_string()),
                                        ("etag".into(), format!("\"e{g}\"")),
                                    ],
                                    vec![],
                                )
                            }
                        }
                    }
                    ("GET", Some(k)) if !k.is_empty() => match objs.get(&k) {
                        Some((d, g)) => (
                            200,
                            vec![
                                ("x-goog-generation".into(), g.to_string()),
                                ("etag".into(), format!("\"e{g}\"")),
                                (
                                    "last-modified".into(),
                                    "Thu, 01 Jan 2026 00:00:00 GMT".into(),
                                ),
                            ],
                            d.clone(),
                        ),
                        None => (
                            404,
                            vec![],
                            b"<Error><Code>NoSuchKey</Code></Error>".to_vec(),
                        ),
                    },
                    ("GET", _) => {
                        let prefix = query
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("prefix="))
                            .map(dec)
                            .unwrap_or_default();
                        let mut xml = String::from("<ListBucketResult>");
                        for (k, (d, g)) in objs.iter().filter(|(k, _)| k.starts_with(&prefix)) {
                            xml.push_str(&format!(
                                    "<Contents><Key>{k}</Key><Size>{}</Size><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>\"e{g}\"</ETag></Contents>",
                                    d.len()
                                ));
                        }
                        xml.push_str("</ListBucketResult>");
                        (200, vec![], xml.into_bytes())
                    }
                    _ => (400, vec![], vec![]),
                };
                drop(objs);
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

    #[test]
    fn gcs_create_only_and_generation_compare_and_swap() {
        // nextest runs each test in its own process: these variables stay in this test.
        std::env::set_var("GOOGLE_BASE_URL", fake_gcs::start());
        // object_store 0.14's GCS PUT fetches a credential even with GOOGLE_SKIP_SIGNATURE: a
        // static bearer token keeps it off the metadata server.
        std::env::set_var("GOOGLE_BEARER_TOKEN", "test");
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
