//! TEMPORARY stand-in for the Authenticator (replaced by auth.rs's when it lands).
#![allow(missing_docs, dead_code)]
use crate::auth::{Denial, Principal, Role};

pub struct TokenEvent;
impl TokenEvent {
    pub fn record(&self) -> (&'static str, serde_json::Value) {
        ("server.token.created", serde_json::json!({}))
    }
}

pub struct Authenticator;
impl Authenticator {
    pub fn from_config(_c: &crate::ServerConfig) -> Result<Self, crate::ServerError> {
        Ok(Authenticator)
    }
    pub async fn authenticate(&self, h: &axum::http::HeaderMap) -> Result<Principal, Denial> {
        match h.get("authorization").and_then(|v| v.to_str().ok()) {
            Some("Bearer test-writer") => Ok(Principal {
                role: Role::Writer,
                label: "w".into(),
                authenticated: serde_json::json!({"by":"token","name":"w","role":"writer"}),
            }),
            _ => Err(Denial {
                status: 401,
                reason: "no credential".into(),
                credential: None,
            }),
        }
    }
    pub fn refresh(&self) {}
    pub fn take_events(&self) -> Vec<TokenEvent> {
        vec![]
    }
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!([])
    }
}
