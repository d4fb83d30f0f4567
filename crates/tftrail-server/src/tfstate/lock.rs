//! Terraform's lock info, as the `http` backend sends it with LOCK and UNLOCK.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Terraform's `statemgr.LockInfo`, with its JSON field names. Unknown fields are ignored (a
/// newer client may add some); every field is self-asserted by the client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The lock's ID, chosen by the client (a UUID).
    #[serde(rename = "ID", default)]
    pub id: String,
    /// `OperationTypeApply`, `OperationTypePlan` …
    #[serde(rename = "Operation", default)]
    pub operation: String,
    /// Free text (`-lock-info`, rarely set).
    #[serde(rename = "Info", default)]
    pub info: String,
    /// `user@host` of the client.
    #[serde(rename = "Who", default)]
    pub who: String,
    /// The client's version.
    #[serde(rename = "Version", default)]
    pub version: String,
    /// When the client took it (RFC 3339).
    #[serde(rename = "Created", default)]
    pub created: String,
    /// The state's path (empty for the http backend).
    #[serde(rename = "Path", default)]
    pub path: String,
}

/// What an UNLOCK body asks, against the lock held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlock {
    /// The holder releases its own lock (the body is the lock as it was taken).
    Release,
    /// `force-unlock`: the body names the holder's ID and nothing else (Terraform), or is
    /// empty (OpenTofu sends no ID).
    Force,
    /// The body names another lock.
    Mismatch,
}

impl LockInfo {
    /// Parses a LOCK or UNLOCK body; an empty body is an empty lock info.
    pub fn parse(body: &[u8]) -> Result<LockInfo, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(LockInfo::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            format!("the body is not Terraform lock info (JSON with ID, Operation, Who …): {e}")
        })
    }

    /// The lock as records carry it (lower-case keys).
    pub fn to_record(&self) -> Value {
        json!({
            "id": self.id,
            "operation": self.operation,
            "info": self.info,
            "who": self.who,
            "version": self.version,
            "created": self.created,
            "path": self.path,
        })
    }

    /// Reads a lock back from a record (the inverse of [`LockInfo::to_record`]).
    pub fn from_record(v: &Value) -> Option<LockInfo> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let id = s("id");
        if id.is_empty() {
            return None;
        }
        Some(LockInfo {
            id,
            operation: s("operation"),
            info: s("info"),
            who: s("who"),
            version: s("version"),
            created: s("created"),
            path: s("path"),
        })
    }

    /// The JSON Terraform reads back (a 423 or 409 answer names the holder this way).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `Who` split into user and host, when it is `user@host`.
    pub fn user_host(&self) -> (String, String) {
        match self.who.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() && !h.is_empty() => (u.to_string(), h.to_string()),
            _ => (String::new(), String::new()),
        }
    }

    /// What `body` (an UNLOCK's lock info) asks of this held lock.
    pub fn unlock_kind(&self, body: &LockInfo) -> Unlock {
        if body.id.is_empty() {
            return Unlock::Force;
        }
        if body.id != self.id {
            return Unlock::Mismatch;
        }
        let rest_empty = body.operation.is_empty()
            && body.who.is_empty()
            && body.created.is_empty()
            && body.version.is_empty();
        if body == self {
            Unlock::Release
        } else if rest_empty {
            Unlock::Force
        } else {
            // The ID matches but the rest differs: the ID is the secret that proves the holder
            // (Terraform itself unlocks by ID), so this is a release by a client that filled
            // the rest its own way.
            Unlock::Release
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TF: &str = r#"{"ID":"c5b1a1b0-9d1e-4e0c-8d1c-1f2e3d4c5b6a","Operation":"OperationTypeApply","Info":"","Who":"alice@laptop","Version":"1.11.4","Created":"2026-12-03T10:00:00.123456Z","Path":""}"#;

    #[test]
    fn parses_terraform_lock_info_and_round_trips() {
        let l = LockInfo::parse(TF.as_bytes()).unwrap();
        assert_eq!(l.id, "c5b1a1b0-9d1e-4e0c-8d1c-1f2e3d4c5b6a");
        assert_eq!(l.operation, "OperationTypeApply");
        assert_eq!(l.user_host(), ("alice".into(), "laptop".into()));
        assert_eq!(LockInfo::from_record(&l.to_record()), Some(l.clone()));
        let back: LockInfo = serde_json::from_slice(&l.to_json()).unwrap();
        assert_eq!(back, l);
        // Fields a newer client adds are ignored.
        let mut v: Value = serde_json::from_str(TF).unwrap();
        v["Extra"] = json!(1);
        assert_eq!(LockInfo::parse(v.to_string().as_bytes()).unwrap(), l);
        assert!(LockInfo::parse(b"[1]").unwrap_err().contains("lock info"));
        assert_eq!(LockInfo::parse(b" \n").unwrap(), LockInfo::default());
    }

    #[test]
    fn unlock_kinds() {
        let held = LockInfo::parse(TF.as_bytes()).unwrap();
        assert_eq!(held.unlock_kind(&held), Unlock::Release);
        let only_id = LockInfo {
            id: held.id.clone(),
            ..Default::default()
        };
        assert_eq!(held.unlock_kind(&only_id), Unlock::Force);
        assert_eq!(held.unlock_kind(&LockInfo::default()), Unlock::Force);
        let other = LockInfo {
            id: "other".into(),
            ..held.clone()
        };
        assert_eq!(held.unlock_kind(&other), Unlock::Mismatch);
        assert_eq!(
            LockInfo {
                who: "x".into(),
                ..Default::default()
            }
            .user_host(),
            (String::new(), String::new())
        );
    }
}
