//! The tftrail team server: the only holder of the log's signing key. It authenticates every
//! caller (tokens, CI OIDC ID tokens), sets the authenticated actor of every record, sequences
//! all writers' records into one log with group commit, and serves the log (C2SP tlog-tiles
//! under `/log/`, JSON under `/v1/`: docs/API.md).
//!
//! A layer like the CLI: thin handlers over tftrail-log, tftrail-store and tftrail-index. The
//! log and the store are synchronous; handlers call them on blocking threads, and one thread
//! (the [`sequencer`]) owns the signing key and does every append.
//!
//! - `config.rs`: settings (TOML file and flags), limits
//! - `auth.rs`, `tokens.rs`, `oidc.rs`: credentials to roles, deny by default
//! - `sequencer.rs`: group commit
//! - `api.rs`: the `/v1/` handlers; `files.rs`: the `/log/` read paths
//! - `denied.rs`: recording refused requests, coalesced
//! - `serve.rs`: the listener (TLS, connection and request limits, graceful shutdown)
//! - `metrics.rs`: `/metrics`
//! - `tfstate/`: Terraform's http state backend at `/state/` (every state change recorded)
//! - `witnesses.rs`: checkpoints submitted to the witness policy's witnesses, cosignatures
//!   verified and attached to the stored checkpoint

mod api;
pub mod auth;

mod config;
mod denied;
mod error;
mod files;
mod metrics;
pub mod oidc;
mod sequencer;
mod serve;
mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tfstate;
pub mod tokens;
mod witnesses;

pub use config::{Limits, ServerConfig};
pub use error::ServerError;
pub use serve::run;
