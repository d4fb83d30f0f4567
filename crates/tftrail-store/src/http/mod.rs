//! A tftrail server (`tftrail serve`) as a read-only [`Store`], and the small blocking HTTP
//! client the CLI writes through.
//!
//! The server serves its store's objects byte for byte under `<base>/log/<path>` and lists
//! them with `GET <base>/v1/objects?prefix=` (docs/API.md). [`HttpStore`] reads exactly that,
//! so the log layer verifies every byte against the signed checkpoint as it does for any
//! store: the server is trusted with nothing but availability. Writes go through the
//! server's API (`PUT /v1/blobs/<sha256>`, `POST /v1/records`) with [`Client`]; the store's
//! own write methods refuse.
//!
//! - The credential is `TFTRAIL_TOKEN`, sent as `Authorization: Bearer <token>`; never logged
//!   or shown in `Debug`. It is refused over plain `http://` to a host that is not loopback.
//! - One connection pool (keep-alive) per [`Client`]; no redirects are followed; connecting
//!   times out after 10 s, a request after 60 s.
//! - `401` is [`StoreError::Denied`] saying the server refused the credential (and whether
//!   `TFTRAIL_TOKEN` was set), `403` [`StoreError::Denied`] saying the token's role does not
//!   allow the request; a server that cannot be reached, `408`, `429` and `5xx` are
//!   [`StoreError::Transient`]. Messages carry the server's JSON `error` text.
//!
//! Synchronous: the client owns a small tokio runtime and blocks on it. Do not call it from
//! inside another tokio runtime's async context.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sha2::Digest as _;

use crate::location::{valid_key_path, Location};
use crate::{NewObject, Store, StoreError, Swap, Version};

/// How long connecting to the server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The environment variable holding the credential.
pub const TOKEN_ENV: &str = "TFTRAIL_TOKEN";

/// A credential, kept out of `Debug` output.
#[derive(Clone)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

struct Inner {
    /// `http(s)://host[:port][/base]`, without a trailing `/`.
    base: String,
    token: Option<Token>,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// A blocking client of one tftrail server. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.base)
            .field("token", &self.inner.token)
            .finish()
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// What the server said went wrong: its JSON `{"error": …}` text, else the body's first
    /// line (truncated), else the status.
    pub fn error_message(&self) -> String {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            if let Some(e) = v.get("error").and_then(serde_json::Value::as_str) {
                return e.to_string();
            }
        }
        let text = String::from_utf8_lossy(&self.body);
        let line = text.lines().next().unwrap_or("").trim();
        if line.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            let short: String = line.chars().take(200).collect();
            format!("HTTP {}: {short}", self.status)
        }
    }

    /// The body as JSON.
    pub fn json(&self, op: &'static str, path: &str) -> Result<serde_json::Value, StoreError> {
        serde_json::from_slice(&self.body).map_err(|e| StoreError::Backend {
            op,
            path: path.to_string(),
            message: format!("the server's answer is not JSON: {e}"),
        })
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Client {
    /// A client of the server at `url` (`http(s)://host[:port][/base]`), with the credential
    /// from `TFTRAIL_TOKEN` (none when unset or empty). Does not contact the server.
    pub fn new(url: &str) -> Result<Client, StoreError> {
        let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
        Client::with_token(url, token)
    }

    /// A client with this credential (`None`: anonymous, for `--public-read` servers).
    pub fn with_token(url: &str, token: Option<String>) -> Result<Client, StoreError> {
        let base = match Location::parse(url)? {
            Location::Server(base) => base,
            _ => {
                return Err(StoreError::NotAStore {
                    location: url.to_string(),
                    reason: "a server's URL starts with http:// or https://".into(),
                })
            }
        };
        let parsed = url::Url::parse(&base).map_err(|e| StoreError::NotAStore {
            location: url.to_string(),
            reason: e.to_string(),
        })?;
        if token.is_some() && parsed.scheme() == "http" && !is_loopback(&parsed) {
            return Err(StoreError::NotAStore {
                location: base,
                reason: format!(
                    "refusing to send {TOKEN_ENV} over plain http:// to a host that is not \
                     loopback: use https://"
                ),
            });
        }
        if let Some(t) = &token {
            if http::HeaderValue::from_str(&format!("Bearer {t}")).is_err() {
                return Err(StoreError::NotAStore {
                    location: base,
                    reason: format!("{TOKEN_ENV} holds characters a token cannot have"),
                });
            }
        }
        let rt = crate::object::runtime()?;
        let http = {
            let _guard = rt.enter();
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| StoreError::NotAStore {
                    location: base.clone(),
                    reason: format!("cannot configure the HTTP client: {e}"),
                })?
        };
        Ok(Client {
            inner: Arc::new(Inner {
                base,
                token: token.map(Token),
                http,
                rt,
            }),
        })
    }

    /// The server's URL (`http(s)://host[:port][/base]`, no trailing `/`).
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// Whether a credential is sent.
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    fn url_of(&self, path: &str, query: &[(&str, &str)]) -> Result<url::Url, StoreError> {
        let mut u = url::Url::parse(&format!("{}/{path}", self.inner.base)).map_err(|e| {
            StoreError::Backend {
                op: "request",
                path: path.to_string(),
                message: format!("bad URL: {e}"),
            }
        })?;
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        Ok(u)
    }

    /// Sends one request and reads the whole answer. `path` is relative to the server's base
    /// (`log/checkpoint`, `v1/records`). A server that cannot be reached, or an answer cut
    /// short, is [`StoreError::Transient`]; any status is returned as it is.
    pub fn send(
        &self,
        method: http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<Response, StoreError> {
        let url = self.url_of(path, query)?;
        let mut req = self.inner.http.request(method, url);
        if let Some(t) = &self.inner.token {
            let mut v = http::HeaderValue::from_str(&format!("Bearer {}", t.0))
                .expect("checked in with_token");
            v.set_sensitive(true);
            req = req.header(http::header::AUTHORIZATION, v);
        }
        if let Some((bytes, content_type)) = body {
            req = req
                .header(http::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let unreachable = |e: reqwest::Error| {
            // reqwest's Display names the URL; the chain says why (refused, timed out …).
            let mut why = String::new();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                why = s.to_string();
                src = s.source();
            }
            if why.is_empty() {
                why = e.to_string();
            }
            let what = if e.is_timeout() {
                "the tftrail server did not answer in time"
            } else {
                "cannot reach the tftrail server"
            };
            StoreError::Transient {
                op: "request",
                path: path.to_string(),
                message: format!("{what} at {}: {why}", self.inner.base),
            }
        };
        self.inner.rt.block_on(async {
            let resp = req.send().await.map_err(unreachable)?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(unreachable)?.to_vec();
            Ok(Response { status, body })
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Response, StoreError> {
        self.send(http::Method::GET, path, &[], None)
    }

    /// `PUT path` with these bytes (`application/octet-stream`).
    pub fn put(&self, path: &str, body: Vec<u8>) -> Result<Response, StoreError> {
        self.send(
            http::Method::PUT,
            path,
            &[],
            Some((body, "application/octet-stream")),
        )
    }

    /// `POST path` with a JSON body (already serialised).
    pub fn post_json(&self, path: &str, body: Vec<u8>) -> Result<Response, StoreError> {
        self.send(
            http::Method::POST,
            path,
            &[],
            Some((body, "application/json")),
        )
    }

    /// `GET path` whose answer must be 2xx JSON; other answers are classified as
    /// [`Client::error`] does.
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, StoreError> {
        let r = self.get(path)?;
        if !r.is_success() {
            return Err(self.error("read", path, &r));
        }
        r.json("read", path)
    }

    /// The error for an answer that is not a success: [`StoreError::Denied`] for 401 and 403,
    /// [`StoreError::Transient`] for 408, 429 and 5xx, [`StoreError::Backend`] otherwise; each
    /// with the server's message.
    pub fn error(&self, op: &'static str, path: &str, r: &Response) -> StoreError {
        let said = r.error_message();
        let base = &self.inner.base;
        match r.status {
            401 => StoreError::Denied {
                op,
                path: path.to_string(),
                status: 401,
                message: format!(
                    "the tftrail server at {base} refused the credential ({said}); {}",
                    if self.has_token() {
                        format!("{TOKEN_ENV} is set, but its token is not accepted")
                    } else {
                        format!("{TOKEN_ENV} is not set")
                    }
                ),
            },
            403 => StoreError::Denied {
                op,
                path: path.to_string(),
                status: 403,
                message: format!(
                    "the tftrail server at {base} does not allow this to the token's role \
                     ({said})"
                ),
            },
            408 | 429 | 500..=599 => StoreError::Transient {
                op,
                path: path.to_string(),
                message: format!("the tftrail server at {base} answered: {said}"),
            },
            _ => StoreError::Backend {
                op,
                path: path.to_string(),
                message: format!("the tftrail server at {base} answered: {said}"),
            },
        }
    }
}

/// The log of a tftrail server, read through its HTTP API. Read-only: see the module docs.
#[derive(Debug, Clone)]
pub struct HttpStore {
    client: Client,
}

impl HttpStore {
    /// The store of the server at `url`, with the credential from `TFTRAIL_TOKEN`. Does not
    /// contact the server.
    pub fn connect(url: &str) -> Result<HttpStore, StoreError> {
        Ok(HttpStore {
            client: Client::new(url)?,
        })
    }

    /// The store read through `client` (sharing its connection pool).
    pub fn with_client(client: Client) -> HttpStore {
        HttpStore { client }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn object(&self, path: &str) -> Result<String, StoreError> {
        if !valid_key_path(path) {
            return Err(StoreError::Backend {
                op: "read",
                path: path.to_string(),
                message: "invalid object path".into(),
            });
        }
        Ok(format!("log/{path}"))
    }

    fn read_only(&self, op: &'static str, path: &str) -> StoreError {
        StoreError::Backend {
            op,
            path: path.to_string(),
            message: format!(
                "a server's log is written through its API, not as a store ({})",
                self.client.url()
            ),
        }
    }
}

impl Store for HttpStore {
    fn location(&self) -> String {
        self.client.url().to_string()
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.client.get(&self.object(path)?)?;
        match r.status {
            200 => Ok(Some(r.body)),
            404 => Ok(None),
            _ => Err(self.client.error("read", path, &r)),
        }
    }

    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        let r = self
            .client
            .send(http::Method::HEAD, &self.object(path)?, &[], None)?;
        match r.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.client.error("read", path, &r)),
        }
    }

    fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError> {
        let path = objects.first().map_or("", |o| o.path.as_str());
        Err(self.read_only("write", path))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let r = self
            .client
            .send(http::Method::GET, "v1/objects", &[("prefix", prefix)], None)?;
        if !r.is_success() {
            return Err(self.client.error("list", prefix, &r));
        }
        #[derive(serde::Deserialize)]
        struct Listing {
            paths: Vec<String>,
        }
        let l: Listing = serde_json::from_slice(&r.body).map_err(|e| StoreError::Backend {
            op: "list",
            path: prefix.to_string(),
            message: format!("the server's listing is not {{\"paths\": [...]}}: {e}"),
        })?;
        let mut paths = l.paths;
        // The contract promises sorted paths under the prefix; do not rely on the server.
        paths.retain(|p| p.starts_with(prefix));
        paths.sort_unstable();
        paths.dedup();
        Ok(paths)
    }

    fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        Ok(self.get(crate::CHECKPOINT)?.map(|b| {
            let v = Version(hex::encode(sha2::Sha256::digest(&b)));
            (b, v)
        }))
    }

    fn swap_checkpoint(&self, _: Option<&Version>, _: &[u8]) -> Result<Swap, StoreError> {
        Err(self.read_only("write", crate::CHECKPOINT))
    }
}

#[cfg(test)]
mod tests;
