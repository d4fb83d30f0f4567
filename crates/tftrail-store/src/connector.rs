//! The HTTP layer shared by the object-storage backends.
//!
//! - Raw HTTP requests that object_store has no API for (S3 bucket configuration and versions,
//!   Azure container properties, the GCS bucket resource), sent through object_store's HTTP
//!   client after the caller signed them with object_store's credentials ([`RawResponse`]).
//! - The HTTP connector the object_store clients use, which adds the headers object_store does
//!   not send: S3 `Content-MD5` and GCS Object Retention Lock (`PutHeaders`).

use async_trait::async_trait;
use base64::Engine as _;
use md5::Digest as _;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::ClientOptions;
use serde::Deserialize;

use crate::StoreError;

/// A response read whole.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The error code in an S3-style XML error body (`<Error><Code>…`), if any.
    pub fn error_code(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct E {
            #[serde(rename = "Code")]
            code: String,
        }
        quick_xml::de::from_str::<E>(&String::from_utf8_lossy(&self.body))
            .ok()
            .map(|e| e.code)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends a signed request and reads the whole response; `what` names the object or bucket in
/// errors. A failure to connect or to read the body is [`StoreError::Transient`].
pub(crate) async fn execute(
    http: &HttpClient,
    req: HttpRequest,
    what: &str,
) -> Result<RawResponse, StoreError> {
    let transient = |message: String| StoreError::Transient {
        op: "request",
        path: what.to_string(),
        message,
    };
    let resp = http
        .execute(req)
        .await
        .map_err(|e| transient(e.to_string()))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .bytes()
        .await
        .map_err(|e| transient(e.to_string()))?
        .to_vec();
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// The retention a GCS writer gives an object it creates. It rides in the request's
/// extensions (object_store hands `PutOptions::extensions` to the HTTP request) to
/// [`HeaderService`], which turns it into the upload's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GcsLock {
    /// RFC 3339 UTC.
    pub(crate) retain_until: String,
}

/// Headers a store adds to its uploads beyond what object_store sends. Both may be added
/// after object_store has authorised the request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PutHeaders {
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
pub(crate) struct HeaderConnector(pub(crate) PutHeaders);

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
