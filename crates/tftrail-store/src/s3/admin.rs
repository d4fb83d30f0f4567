//! Signed S3 requests that object_store has no API for: bucket configuration (versioning,
//! Object Lock, Block Public Access, bucket policy) and object versions (list, get one).
//!
//! Requests are signed with object_store's own SigV4 signer ([`AwsAuthorizer`]) and
//! credentials from object_store's credential chain (the same as the store's: environment,
//! web identity, ECS container credentials, EC2 instance metadata), and sent through
//! object_store's HTTP client. See `docs/decisions/0005-s3-admin-signer.md`.
//!
//! [`AwsAuthorizer`]: object_store::aws::AwsAuthorizer

use std::sync::Arc;

use base64::Engine as _;
use md5::Digest as _;
use object_store::aws::{AmazonS3Builder, AwsAuthorizer};
use object_store::client::{HttpClient, HttpConnector, ReqwestConnector};
use object_store::ClientOptions;
use serde::{Deserialize, Serialize};

use crate::location::{Cloud, Location};
use crate::object::runtime;
use crate::s3::{s3_settings_from_env, S3Settings};
use crate::StoreError;

pub use crate::connector::RawResponse;

/// Client for S3 bucket-configuration and object-version calls on one bucket and prefix.
pub struct S3Admin {
    bucket: String,
    prefix: String,
    settings: S3Settings,
    s3: Arc<object_store::aws::AmazonS3>,
    http: HttpClient,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Admin")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// One version of one key, or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectVersion {
    /// S3 version id (`null` for objects written before versioning was enabled).
    pub version_id: String,
    /// Whether this is what a plain GET sees.
    pub is_latest: bool,
    /// Whether this is a delete marker (no data).
    pub delete_marker: bool,
    /// Last-modified time as S3 reports it (RFC 3339).
    pub last_modified: String,
    /// ETag (absent for delete markers).
    pub etag: Option<String>,
    /// Size in bytes (0 for delete markers).
    pub size: u64,
}

/// What happened to a key, judged from its versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// One data version, and it is current.
    Intact,
    /// The current view is a delete marker: a plain GET says the object is gone, yet at
    /// least one data version is retained.
    Deleted,
    /// The current view is a delete marker and no data version is left.
    DeletedNothingRetained,
    /// A newer data version shadows an older one (for a create-only object: a rewrite; for
    /// the checkpoint: normal history).
    Overwritten,
}

/// All versions of one key, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyVersions {
    /// The path in the store (the store's prefix removed).
    pub path: String,
    /// Versions and delete markers, newest first.
    pub versions: Vec<ObjectVersion>,
    /// Summary of [`KeyVersions::versions`].
    pub state: KeyState,
}

impl KeyVersions {
    fn new(path: String, mut versions: Vec<ObjectVersion>) -> Self {
        // Newest first: the latest, then by time (S3 lists each key newest first).
        versions.sort_by(|a, b| {
            b.is_latest
                .cmp(&a.is_latest)
                .then_with(|| b.last_modified.cmp(&a.last_modified))
        });
        let data = versions.iter().filter(|v| !v.delete_marker).count();
        let current_is_marker = versions.first().is_some_and(|v| v.delete_marker);
        let state = match (current_is_marker, data) {
            (true, 0) => KeyState::DeletedNothingRetained,
            (true, _) => KeyState::Deleted,
            (false, n) if n > 1 => KeyState::Overwritten,
            _ => KeyState::Intact,
        };
        KeyVersions {
            path,
            versions,
            state,
        }
    }

    /// The version a plain GET sees (`None`: a delete marker hides the object).
    pub fn current(&self) -> Option<&ObjectVersion> {
        self.versions.first().filter(|v| !v.delete_marker)
    }

    /// The oldest retained data version: for a create-only object, the original write.
    pub fn original(&self) -> Option<&ObjectVersion> {
        self.versions.iter().rev().find(|v| !v.delete_marker)
    }

    /// Retained data versions, newest first.
    pub fn data_versions(&self) -> impl Iterator<Item = &ObjectVersion> {
        self.versions.iter().filter(|v| !v.delete_marker)
    }
}

#[derive(Deserialize, Debug)]
struct ListVersionsResult {
    #[serde(rename = "IsTruncated", default)]
    is_truncated: bool,
    #[serde(rename = "NextKeyMarker")]
    next_key_marker: Option<String>,
    #[serde(rename = "NextVersionIdMarker")]
    next_version_id_marker: Option<String>,
    #[serde(rename = "Version", default)]
    versions: Vec<XmlVersion>,
    #[serde(rename = "DeleteMarker", default)]
    delete_markers: Vec<XmlVersion>,
}

#[derive(Deserialize, Debug)]
struct XmlVersion {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "VersionId")]
    version_id: String,
    #[serde(rename = "IsLatest", default)]
    is_latest: bool,
    #[serde(rename = "LastModified", default)]
    last_modified: String,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    #[serde(rename = "Size", default)]
    size: u64,
}

/// Percent-encodes a query value or key segment the way SigV4 wants it (RFC 3986 unreserved
/// characters kept).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl S3Admin {
    /// A client for the bucket and prefix of an `s3://` location, with credentials, region
    /// and endpoint from the same environment as the store.
    pub fn for_location(location: &str) -> Result<Self, StoreError> {
        match Location::parse(location)? {
            Location::Object {
                cloud: Cloud::S3,
                bucket,
                prefix,
            } => Self::new(&bucket, &prefix),
            _ => Err(StoreError::NotAStore {
                location: location.to_string(),
                reason: "not an s3:// location".into(),
            }),
        }
    }

    /// A client for `bucket`, with versions listed below `prefix`.
    pub fn new(bucket: &str, prefix: &str) -> Result<Self, StoreError> {
        let settings = s3_settings_from_env();
        let rt = runtime()?;
        let _guard = rt.enter();
        let config_err = |e: object_store::Error| StoreError::NotAStore {
            location: format!("s3://{bucket}"),
            reason: format!("cannot configure the client: {e}"),
        };
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&settings.region)
            .with_allow_http(settings.allow_http);
        if let Some(ep) = &settings.endpoint {
            b = b.with_endpoint(ep);
        }
        let s3 = Arc::new(b.build().map_err(config_err)?);
        let options = ClientOptions::new().with_allow_http(settings.allow_http);
        let http = ReqwestConnector::default()
            .connect(&options)
            .map_err(config_err)?;
        Ok(S3Admin {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            settings,
            s3,
            http,
            rt,
        })
    }

    /// Bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn url(&self, region: &str, key: Option<&str>, query: &[(&str, &str)]) -> String {
        let path = match key {
            Some(k) => format!("/{}", uri_encode(k, true)),
            None => "/".to_string(),
        };
        let base = match &self.settings.endpoint {
            Some(ep) => format!("{}/{}", ep.trim_end_matches('/'), self.bucket),
            None if self.bucket.contains('.') => {
                format!("https://s3.{region}.amazonaws.com/{}", self.bucket)
            }
            None => format!("https://{}.s3.{region}.amazonaws.com", self.bucket),
        };
        let mut url = if key.is_none() && self.settings.endpoint.is_some() {
            base
        } else {
            format!("{base}{path}")
        };
        if !query.is_empty() {
            let mut q: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        uri_encode(k, false)
                    } else {
                        format!("{}={}", uri_encode(k, false), uri_encode(v, false))
                    }
                })
                .collect();
            q.sort();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        url
    }

    /// Sends one signed request to the bucket (`key` None) or an object. Follows one
    /// region redirect (`x-amz-bucket-region`). A `Content-MD5` is added to bodies.
    pub fn send(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<RawResponse, StoreError> {
        let what = key.unwrap_or("").to_string();
        self.rt.block_on(async {
            let cred = self
                .s3
                .credentials()
                .get_credential()
                .await
                .map_err(|e| crate::object::map_err("sign", &what, e))?;
            let mut region = self.settings.region.clone();
            for _ in 0..2 {
                let url = self.url(&region, key, query);
                let mut b = http::Request::builder().method(method).uri(&url);
                for (n, v) in headers {
                    b = b.header(*n, *v);
                }
                if !body.is_empty() {
                    let md5 = md5::Md5::digest(&body);
                    b = b.header(
                        "content-md5",
                        base64::engine::general_purpose::STANDARD.encode(md5),
                    );
                }
                let mut req = b
                    .body(object_store::client::HttpRequestBody::from(body.clone()))
                    .map_err(|e| StoreError::Backend {
                        op: "request",
                        path: what.clone(),
                        message: e.to_string(),
                    })?;
                AwsAuthorizer::new(&cred, "s3", &region)
                    .try_authorize(&mut req, None)
                    .map_err(|e| crate::object::map_err("sign", &what, e))?;
                let r = crate::connector::execute(&self.http, req, &what).await?;
                let status = r.status;
                if matches!(status, 301 | 307 | 400) {
                    if let Some(real) = r.header("x-amz-bucket-region") {
                        if real != region {
                            region = real.to_string();
                            continue;
                        }
                    }
                }
                return Ok(r);
            }
            Err(StoreError::Backend {
                op: "request",
                path: what.clone(),
                message: "redirected between regions more than once".into(),
            })
        })
    }

    /// Turns an unsuccessful response into the store's error classification.
    pub fn error(op: &'static str, path: &str, r: &RawResponse) -> StoreError {
        let code = r.error_code().unwrap_or_default();
        let message = format!(
            "HTTP {} {}: {}",
            r.status,
            code,
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(300)
                .collect::<String>()
        );
        if code == "NoSuchBucket" {
            return StoreError::NotAStore {
                location: path.to_string(),
                reason: "the bucket does not exist".into(),
            };
        }
        if r.status >= 500 || r.status == 429 || code == "SlowDown" {
            StoreError::Transient {
                op,
                path: path.to_string(),
                message,
            }
        } else {
            StoreError::Backend {
                op,
                path: path.to_string(),
                message,
            }
        }
    }

    /// GETs a bucket sub-resource (`versioning`, `object-lock`, `publicAccessBlock`,
    /// `policy` …). Returns the raw response whatever its status.
    pub fn get_bucket_config(&self, subresource: &str) -> Result<RawResponse, StoreError> {
        self.send("GET", None, &[(subresource, "")], &[], Vec::new())
    }

    /// Lists every version and delete marker of the keys below `path_prefix` (a store path
    /// prefix; the store's own prefix is added), grouped by key, sorted by path.
    pub fn versions(&self, path_prefix: &str) -> Result<Vec<KeyVersions>, StoreError> {
        let full = if self.prefix.is_empty() {
            path_prefix.to_string()
        } else {
            format!("{}/{}", self.prefix, path_prefix)
        };
        let mut all: Vec<XmlVersion> = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut q: Vec<(&str, &str)> = vec![("versions", ""), ("prefix", &full)];
            if let Some((k, v)) = &markers {
                q.push(("key-marker", k));
                q.push(("version-id-marker", v));
            }
            let r = self.send("GET", None, &q, &[], Vec::new())?;
            if !r.is_success() {
                return Err(Self::error("list versions", &full, &r));
            }
            let page: ListVersionsResult =
                quick_xml::de::from_str(&String::from_utf8_lossy(&r.body)).map_err(|e| {
                    StoreError::Backend {
                        op: "list versions",
                        path: full.clone(),
                        message: format!("unreadable response: {e}"),
                    }
                })?;
            let truncated = page.is_truncated;
            let next = page.next_key_marker.zip(page.next_version_id_marker);
            all.extend(page.versions);
            all.extend(page.delete_markers.into_iter().map(|mut m| {
                m.etag = None;
                m.size = u64::MAX; // flag: delete marker, fixed below
                m
            }));
            match (truncated, next) {
                (true, Some(n)) => markers = Some(n),
                _ => break,
            }
        }
        let mut by_key: std::collections::BTreeMap<String, Vec<ObjectVersion>> = Default::default();
        for v in all {
            let path = if self.prefix.is_empty() {
                v.key.clone()
            } else {
                match v.key.strip_prefix(&format!("{}/", self.prefix)) {
                    Some(p) => p.to_string(),
                    None => continue,
                }
            };
            let delete_marker = v.size == u64::MAX;
            by_key.entry(path).or_default().push(ObjectVersion {
                version_id: v.version_id,
                is_latest: v.is_latest,
                delete_marker,
                last_modified: v.last_modified,
                etag: v.etag,
                size: if delete_marker { 0 } else { v.size },
            });
        }
        Ok(by_key
            .into_iter()
            .map(|(p, v)| KeyVersions::new(p, v))
            .collect())
    }

    fn object_key(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{}", self.prefix, path)
        }
    }

    /// Reads one version of a store path. `Ok(None)` when that version does not exist; an
    /// error when it is a delete marker.
    pub fn get_version(&self, path: &str, version_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.object_key(path);
        let r = self.send(
            "GET",
            Some(&key),
            &[("versionId", version_id)],
            &[],
            Vec::new(),
        )?;
        if r.is_success() {
            return Ok(Some(r.body));
        }
        match (r.status, r.error_code().as_deref()) {
            (404, Some("NoSuchVersion")) | (404, Some("NoSuchKey")) => Ok(None),
            (400, Some("InvalidArgument")) => Ok(None),
            (405, _) => Err(StoreError::Backend {
                op: "read version",
                path: path.to_string(),
                message: format!("version {version_id} is a delete marker"),
            }),
            _ => Err(Self::error("read version", path, &r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_listing() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>log/</Prefix><IsTruncated>false</IsTruncated>
  <DeleteMarker><Key>log/tile/0/000</Key><VersionId>dm1</VersionId><IsLatest>true</IsLatest><LastModified>2026-01-02T00:00:00.000Z</LastModified></DeleteMarker>
  <Version><Key>log/tile/0/000</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e1"</ETag><Size>8192</Size></Version>
  <Version><Key>log/checkpoint</Key><VersionId>c2</VersionId><IsLatest>true</IsLatest><LastModified>2026-01-03T00:00:00.000Z</LastModified><ETag>"c2"</ETag><Size>100</Size></Version>
  <Version><Key>log/checkpoint</Key><VersionId>c1</VersionId><IsLatest>false</IsLatest><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"c1"</ETag><Size>99</Size></Version>
  <Version><Key>log/tile/0/001</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e3"</ETag><Size>5</Size></Version>
</ListVersionsResult>"#;
        let page: ListVersionsResult = quick_xml::de::from_str(xml).unwrap();
        assert_eq!(page.versions.len(), 4);
        assert_eq!(page.delete_markers.len(), 1);
        let kv = KeyVersions::new(
            "tile/0/000".into(),
            vec![
                ObjectVersion {
                    version_id: "v1".into(),
                    is_latest: false,
                    delete_marker: false,
                    last_modified: "2026-01-01T00:00:00.000Z".into(),
                    etag: Some("e1".into()),
                    size: 8192,
                },
                ObjectVersion {
                    version_id: "dm1".into(),
                    is_latest: true,
                    delete_marker: true,
                    last_modified: "2026-01-02T00:00:00.000Z".into(),
                    etag: None,
                    size: 0,
                },
            ],
        );
        assert_eq!(kv.state, KeyState::Deleted);
        assert!(kv.current().is_none());
        assert_eq!(kv.original().unwrap().version_id, "v1");
    }

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode("a b/c~d", true), "a%20b/c~d");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
