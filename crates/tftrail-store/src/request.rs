//! Raw HTTP requests that object_store has no API for (S3 bucket configuration and versions,
//! Azure container properties, the GCS bucket resource), sent through object_store's HTTP
//! client after the caller signed them with object_store's credentials.

use object_store::client::{HttpClient, HttpRequest};
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

/// Requests to the GCS JSON API (`{base}/storage/v1/…`: the bucket resource, object
/// listings) with object_store's GCS credential chain and endpoint (`GOOGLE_*`,
/// `GOOGLE_BASE_URL` for an emulator), authorised by a bearer token.
pub(crate) struct GcsJsonApi {
    base: String,
    creds: object_store::gcp::GcpCredentialProvider,
    http: HttpClient,
}

impl GcsJsonApi {
    /// The endpoint a builder talks to (`https://storage.googleapis.com` unless overridden).
    pub(crate) fn base_url(b: &object_store::gcp::GoogleCloudStorageBuilder) -> String {
        b.get_config_value(&object_store::gcp::GoogleConfigKey::BaseUrl)
            .unwrap_or_else(|| "https://storage.googleapis.com".into())
            .trim_end_matches('/')
            .to_string()
    }

    /// A client for `base` (plain http allowed only when `base` is an http URL).
    pub(crate) fn new(
        base: String,
        creds: object_store::gcp::GcpCredentialProvider,
    ) -> Result<Self, object_store::Error> {
        use object_store::client::{HttpConnector, ReqwestConnector};
        let http = ReqwestConnector::default().connect(
            &object_store::ClientOptions::new().with_allow_http(base.starts_with("http://")),
        )?;
        Ok(GcsJsonApi { base, creds, http })
    }

    /// `GET {base}/storage/v1/{path}` (`path` already percent-encoded, query included); `what`
    /// names the bucket or object in errors.
    pub(crate) async fn get(&self, path: &str, what: &str) -> Result<RawResponse, StoreError> {
        let cred = self
            .creds
            .get_credential()
            .await
            .map_err(|e| crate::object::map_err("sign", what, e))?;
        let req = http::Request::builder()
            .method("GET")
            .uri(format!("{}/storage/v1/{path}", self.base))
            .header("authorization", format!("Bearer {}", cred.bearer))
            .body(object_store::client::HttpRequestBody::from(Vec::new()))
            .map_err(|e| StoreError::Backend {
                op: "request",
                path: what.to_string(),
                message: e.to_string(),
            })?;
        execute(&self.http, req, what).await
    }
}
