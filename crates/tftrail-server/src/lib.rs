//! The tftrail team server: the only holder of the log's signing key. It authenticates every
//! caller (tokens, CI OIDC ID tokens), sets the authenticated actor of every record, sequences
//! all writers' records into one log with group commit, and serves the log (C2SP tlog-tiles
//! under `/log/`, JSON under `/v1/`: docs/API.md).
//!
//! A layer like the CLI: thin handlers over tftrail-log, tftrail-store and tftrail-index.

pub mod auth;
pub mod oidc;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tokens;
