//! What every handler shares, and the checks they all make first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, StatusCode};
use tftrail_core::record::Actor;
use tftrail_log::Log;

use crate::auth::{Authenticator, Need, Principal};
use crate::config::ServerConfig;
use crate::denied::DeniedLog;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::sequencer::Sequencer;

/// The server's shared state.
pub struct AppState {
    /// The log, for reads (appends go through the sequencer, which holds its own handle).
    pub log: Arc<Log>,
    /// Group commit.
    pub seq: Sequencer,
    /// Credentials to principals.
    pub auth: Authenticator,
    /// Settings.
    pub config: ServerConfig,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Refused requests, recorded.
    pub denied: DeniedLog,
    /// The query index's file, used by one query at a time.
    pub index: Mutex<PathBuf>,
    /// Blobs stored through this server, with their sizes (a record naming one of them needs
    /// no read of the store to check its size). Bounded.
    pub uploaded: Mutex<HashMap<String, u64>>,
    /// Blob uploads held in memory at once.
    pub uploads: tokio::sync::Semaphore,
    /// Who the server is, in its own records.
    pub server_actor: Actor,
    /// Terraform's http state backend (`/state/`).
    pub tfstate: crate::tfstate::StateBackend,
    /// The witnesses of `--witness-policy`, when given.
    pub witnesses: Option<Arc<crate::witnesses::Witnesses>>,
}

/// The most blobs remembered in [`AppState::uploaded`].
pub const MAX_REMEMBERED_UPLOADS: usize = 100_000;

impl AppState {
    /// Authenticates the caller and checks that its role allows `need`; records a refusal.
    /// Reads with `--public-read` need no credential (`Ok(None)`).
    pub async fn require(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        method: &Method,
        path: &str,
        need: Need,
    ) -> Result<Option<Principal>, ApiError> {
        if need == Need::Read && self.config.public_read {
            return Ok(None);
        }
        let denial = match self.auth.authenticate(headers).await {
            Ok(p) if p.role.allows(need) => return Ok(Some(p)),
            Ok(p) => crate::auth::Denial {
                status: 403,
                reason: format!(
                    "{} has role {}, which cannot {}",
                    p.label,
                    p.role.as_str(),
                    need_words(need)
                ),
                credential: Some(p.label.clone()),
            },
            Err(d) => d,
        };
        Err(self.refuse(peer, method, path, denial))
    }

    /// Authenticates the caller whatever its role (and even with `--public-read`); records a
    /// refusal.
    pub async fn identify(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        method: &Method,
        path: &str,
    ) -> Result<Principal, ApiError> {
        match self.auth.authenticate(headers).await {
            Ok(p) => Ok(p),
            Err(d) => Err(self.refuse(peer, method, path, d)),
        }
    }

    /// Refuses (403, recorded) an authenticated caller whose role does not allow `what`.
    pub fn forbid(
        &self,
        peer: SocketAddr,
        method: &Method,
        path: &str,
        p: &Principal,
        what: &str,
    ) -> ApiError {
        let denial = crate::auth::Denial {
            status: 403,
            reason: format!(
                "{} has role {}, which cannot {what}",
                p.label,
                p.role.as_str()
            ),
            credential: Some(p.label.clone()),
        };
        self.refuse(peer, method, path, denial)
    }

    /// Counts and records a refusal; the answer to send.
    fn refuse(
        &self,
        peer: SocketAddr,
        method: &Method,
        path: &str,
        denial: crate::auth::Denial,
    ) -> ApiError {
        self.metrics.auth_failed(reason_class(&denial));
        self.denied
            .record(peer.ip(), method.as_str(), path, &denial);
        let status = StatusCode::from_u16(denial.status).unwrap_or(StatusCode::UNAUTHORIZED);
        ApiError::new(status, denial.reason)
    }

    /// Runs synchronous log or store work on a blocking thread.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| ApiError::internal(format!("a server task failed: {e}")))?
    }
}

/// What a role may do, in words (for refusals).
pub fn need_words(n: Need) -> &'static str {
    match n {
        Need::Read => "read the log",
        Need::Write => "append records",
        Need::Export => "export evidence",
        Need::Admin => "manage tokens",
    }
}

/// A short class of refusal, for the metrics label.
fn reason_class(d: &crate::auth::Denial) -> &'static str {
    let r = d.reason.to_ascii_lowercase();
    if d.status == 403 {
        "forbidden"
    } else if r.contains("no credential") {
        "no-credential"
    } else if r.contains("revoked") {
        "revoked"
    } else if r.contains("expired") {
        "expired"
    } else if r.contains("unknown token") {
        "unknown-token"
    } else if r.contains("neither") || r.contains("malformed") {
        "bad-credential"
    } else if r.contains("oidc") || r.contains("jwt") || r.contains("id token") {
        "bad-oidc-token"
    } else {
        "bad-credential"
    }
}

/// The peer address a connection's service put in the request (`serve.rs`).
pub(crate) fn peer_of(parts: &axum::http::request::Parts) -> SocketAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

async fn caller(
    parts: &axum::http::request::Parts,
    st: &AppState,
    need: Need,
) -> Result<Option<Principal>, ApiError> {
    st.require(
        &parts.headers,
        peer_of(parts),
        &parts.method,
        parts.uri.path(),
        need,
    )
    .await
}

/// Extracted by a handler that reads: the caller may read (or reads are public).
pub struct Reader;

/// A handler's caller allowed to append.
pub struct Writer(pub Principal);

/// Extracted by a handler that manages the server: the caller is an admin.
pub struct Admin;

/// A handler's caller, authenticated whatever its role.
pub struct Identified(pub Principal);

impl axum::extract::FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        caller(parts, st, Need::Read).await.map(|_| Reader)
    }
}

/// Writes and management always authenticate, even with `--public-read`.
fn authenticated(p: Option<Principal>) -> Result<Principal, ApiError> {
    p.ok_or_else(|| ApiError::internal("an authenticated caller was expected"))
}

impl axum::extract::FromRequestParts<Arc<AppState>> for Writer {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        authenticated(caller(parts, st, Need::Write).await?).map(Writer)
    }
}

impl axum::extract::FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        authenticated(caller(parts, st, Need::Admin).await?).map(|_| Admin)
    }
}

impl axum::extract::FromRequestParts<Arc<AppState>> for Identified {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        st.identify(
            &parts.headers,
            peer_of(parts),
            &parts.method,
            parts.uri.path(),
        )
        .await
        .map(Identified)
    }
}
