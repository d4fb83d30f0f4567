//! Who is calling: credentials (tokens, OIDC ID tokens) to a [`Principal`] or a [`Denial`].
//!
//! Deny by default: a request without a credential the server knows is refused; a role allows
//! only what [`Role::allows`] says.

use serde::{Deserialize, Serialize};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Appends records (and reads).
    Writer,
    /// Reads.
    Reader,
    /// Reads and exports.
    Auditor,
    /// Manages tokens (and reads).
    Admin,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Reading the log.
    Read,
    /// Appending records and blobs.
    Write,
    /// Exporting evidence.
    Export,
    /// Managing tokens.
    Admin,
}

impl Role {
    /// Whether this role may do what `need` asks.
    pub fn allows(self, need: Need) -> bool {
        matches!(
            (self, need),
            (_, Need::Read)
                | (Role::Writer, Need::Write)
                | (Role::Auditor | Role::Admin, Need::Export)
                | (Role::Admin, Need::Admin)
        )
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Its role.
    pub role: Role,
    /// A short label for logs and metrics: the token's name, or the OIDC subject.
    pub label: String,
    /// What a record's `actor.authenticated` holds for this caller: a JSON object, e.g.
    /// `{"by":"token","name":"ci","role":"writer","token":"<fingerprint>"}` or
    /// `{"by":"oidc","issuer":…,"subject":…,"repository":…,"ref":…,"workflow":…,"run_id":…,
    /// "actor":…,"role":"writer"}`.
    pub authenticated: serde_json::Value,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 401 (no or bad credential) or 403 (a valid credential whose role does not allow it).
    pub status: u16,
    /// Why, for the client and the `server.access.denied` record (never the secret).
    pub reason: String,
    /// Which credential: the token's name, the fingerprint of an unknown token, or the OIDC
    /// issuer and subject; `None` when there was none.
    pub credential: Option<String>,
}
