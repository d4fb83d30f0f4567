//! The server's settings: a TOML file (`--config`), overridden by command-line flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ServerError;

/// Everything `tftrail serve` needs.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (default 127.0.0.1:7878).
    pub listen: Option<String>,
    /// The log's store (a directory, s3://, gs://, az://).
    pub store: Option<String>,
    /// The signing-key file.
    pub key: Option<PathBuf>,
    /// The tokens file (`tftrail token create --tokens FILE`).
    pub tokens: Option<PathBuf>,
    /// Whether reads need no credential.
    #[serde(default)]
    pub public_read: bool,
    /// TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Where the server keeps its query index (a cache, rebuilt from the log when missing).
    pub index: Option<PathBuf>,
    /// Where Terraform state versions are kept (`/state/`): a directory or a bucket URL,
    /// never the log's store (state holds secrets). Default: [`default_state_store`].
    pub state_store: Option<String>,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// A C2SP tlog-policy file: its witnesses with a URL are sent every checkpoint to cosign
    /// (docs/decisions/0014-cosignatures.md).
    pub witness_policy: Option<PathBuf>,
    /// CI identity providers whose ID tokens are accepted.
    #[serde(default)]
    pub oidc: Vec<crate::oidc::OidcConfig>,
}

/// Request and resource limits, with safe defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest JSON request body.
    pub max_body_bytes: usize,
    /// Largest blob.
    pub max_blob_bytes: usize,
    /// Most records in one request.
    pub max_records_per_request: usize,
    /// Most blob uploads held in memory at once (each up to `max_blob_bytes`).
    pub max_concurrent_uploads: usize,
    /// A request (headers, body and answer) must finish within this.
    pub request_timeout_secs: u64,
    /// A client must send a request's headers within this (slow clients).
    pub header_timeout_secs: u64,
    /// Most open connections; more are answered 503 and closed.
    pub max_connections: usize,
    /// Most requests being handled at once; more are answered 503.
    pub max_inflight_requests: usize,
    /// Most records in one group commit.
    pub max_batch_records: usize,
    /// How long a group commit may wait, once the queue is empty, for as many records as the
    /// previous commit held (the writers it answered, on their way back), in microseconds.
    pub gather_micros: u64,
    /// Refused requests from one source within this many seconds make one record at once and
    /// one summary after (`server.access.denied`).
    pub denied_window_secs: u64,
    /// Largest Terraform state written through `/state/`.
    pub max_state_bytes: usize,
    /// A `tftrail run` whose outcome has not come is still open (and links the state writes
    /// of its workspace) for at most this many seconds.
    pub run_window_secs: u64,
    /// How long an append waits for the witness policy's quorum before answering without it
    /// (0: never waits), in milliseconds.
    pub quorum_wait_millis: u64,
    /// How long one witness may take to answer a checkpoint, in milliseconds.
    pub witness_timeout_millis: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            max_blob_bytes: 64 << 20,
            max_records_per_request: 10_000,
            max_concurrent_uploads: 4,
            request_timeout_secs: 30,
            header_timeout_secs: 10,
            max_connections: 1024,
            max_inflight_requests: 512,
            max_batch_records: 20_000,
            denied_window_secs: 60,
            gather_micros: 5000,
            max_state_bytes: 64 << 20,
            run_window_secs: 6 * 3600,
            quorum_wait_millis: 2000,
            witness_timeout_millis: 5000,
        }
    }
}

impl Limits {
    /// [`Limits::request_timeout_secs`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    /// [`Limits::header_timeout_secs`].
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    /// [`Limits::run_window_secs`].
    pub fn run_window(&self) -> Duration {
        Duration::from_secs(self.run_window_secs.max(1))
    }

    /// [`Limits::quorum_wait_millis`].
    pub fn quorum_wait(&self) -> Duration {
        Duration::from_millis(self.quorum_wait_millis)
    }

    /// [`Limits::witness_timeout_millis`].
    pub fn witness_timeout(&self) -> Duration {
        Duration::from_millis(self.witness_timeout_millis.max(1))
    }

    /// [`Limits::denied_window_secs`].
    pub fn denied_window(&self) -> Duration {
        Duration::from_secs(self.denied_window_secs.max(1))
    }

    fn check(&self) -> Result<(), ServerError> {
        let zero = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_blob_bytes", self.max_blob_bytes),
            ("max_records_per_request", self.max_records_per_request),
            ("max_concurrent_uploads", self.max_concurrent_uploads),
            ("max_connections", self.max_connections),
            ("max_inflight_requests", self.max_inflight_requests),
            ("max_batch_records", self.max_batch_records),
            ("max_state_bytes", self.max_state_bytes),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(ServerError::Config(format!(
                "limits.{name} must be at least 1"
            )));
        }
        Ok(())
    }
}

impl ServerConfig {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ServerError::Config(format!("cannot read config {}: {e}", path.display()))
        })?;
        let c: ServerConfig = toml::from_str(&text)
            .map_err(|e| ServerError::Config(format!("config {}: {e}", path.display())))?;
        Ok(c)
    }

    /// The state store to use: [`ServerConfig::state_store`], else [`default_state_store`].
    pub fn state_store(&self) -> String {
        self.state_store
            .clone()
            .unwrap_or_else(|| default_state_store().display().to_string())
    }

    /// The address to listen on.
    pub fn listen(&self) -> &str {
        self.listen.as_deref().unwrap_or("127.0.0.1:7878")
    }

    /// Checks settings that belong together.
    pub fn check(&self) -> Result<(), ServerError> {
        self.limits.check()?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ServerError::Config(
                "TLS needs both a certificate (--tls-cert) and its key (--tls-key)".into(),
            ));
        }
        if self.store.is_none() {
            return Err(ServerError::Config("no store given (--store)".into()));
        }
        if self.key.is_none() {
            return Err(ServerError::Config("no signing key given (--key)".into()));
        }
        Ok(())
    }
}

/// `$XDG_DATA_HOME/tftrail/server-states`, else `~/.local/share/tftrail/server-states`.
pub fn default_state_store() -> PathBuf {
    let data = match std::env::var_os("XDG_DATA_HOME") {
        Some(v) if !v.is_empty() && Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
            .join(".local/share"),
    };
    data.join("tftrail/server-states")
}
