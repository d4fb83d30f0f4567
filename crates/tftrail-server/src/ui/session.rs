//! The web UI's sessions and CSRF tokens.
//!
//! A session is opened by logging in with a tftrail token. Its cookie holds 32 random bytes;
//! the server keeps only their SHA-256, with the token's SHA-256 (never the token), the label
//! and role it had, and the session's times. Sessions live in memory: a restart ends them.
//! Every request re-checks the token (revoked, expired, removed, role changed: the session
//! ends). Idle and absolute timeouts bound a stolen cookie's use.
//!
//! CSRF: every POST carries a token compared in constant time — the session's own for logout
//! (and admin actions), and before login one bound to a pre-session cookie (double submit) —
//! and its `Origin` (else `Referer`) must be this server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tftrail_session";
/// The pre-session CSRF cookie's name (the login form's).
pub const LOGIN_CSRF_COOKIE: &str = "tftrail_login_csrf";
/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after login, whatever its use.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// The most sessions held at once; beyond, the least recently used ends.
pub const MAX_SESSIONS: usize = 10_000;

/// 32 random bytes, base64url without padding.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn hash(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Whether two secrets are equal, in constant time (for equal lengths).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// One open session.
#[derive(Clone)]
pub struct Session {
    /// SHA-256 of the token it was opened with.
    pub token_hash: [u8; 32],
    /// Its CSRF token (sent in forms, never in a cookie).
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// The sessions, by SHA-256 of their cookie.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Opens a session for the token with this SHA-256; returns the cookie value.
    pub fn open(&self, token_hash: [u8; 32]) -> String {
        let cookie = random_token();
        let now = Instant::now();
        let s = Session {
            token_hash,
            csrf: random_token(),
            created: now,
            last_seen: now,
        };
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, s| live(s, now));
        if m.len() >= MAX_SESSIONS {
            if let Some(k) = m.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                m.remove(&k);
            }
        }
        m.insert(hash(&cookie), s);
        cookie
    }

    /// The live session of this cookie value, its idle time renewed.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let now = Instant::now();
        let key = hash(cookie);
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // A HashMap lookup by a hash of the secret: no timing leak of the secret itself.
        match m.get_mut(&key) {
            Some(s) if live(s, now) => {
                s.last_seen = now;
                Some(s.clone())
            }
            Some(_) => {
                m.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of this cookie value.
    pub fn close(&self, cookie: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hash(cookie));
    }

    /// How many sessions are open (for tests and status).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.values().filter(|s| live(s, now)).count()
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last_seen) < IDLE_TIMEOUT
        && now.duration_since(s.created) < ABSOLUTE_TIMEOUT
}

/// The value of cookie `name` in the request, if exactly one is sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(val.trim().to_string());
                }
            }
        }
    }
    found
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when served over TLS;
/// `max_age` `Some(0)` deletes it.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    c
}

/// Whether a POST comes from a page of this server: its `Origin`, else its `Referer`, names
/// this server's scheme and `Host`. Neither sent: refused.
pub fn same_origin(headers: &HeaderMap, secure: bool) -> Result<(), String> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or("the request has no Host header")?;
    let scheme = if secure { "https" } else { "http" };
    let me = format!("{scheme}://{host}");
    if let Some(o) = headers.get(header::ORIGIN) {
        let o = o.to_str().unwrap_or("");
        return if o == me {
            Ok(())
        } else {
            Err(format!(
                "the request's Origin {o:?} is not this server ({me})"
            ))
        };
    }
    if let Some(r) = headers.get(header::REFERER) {
        let r = r.to_str().unwrap_or("");
        return if r == me || r.starts_with(&format!("{me}/")) {
            Ok(())
        } else {
            Err("the request's Referer is not a page of this server".into())
        };
    }
    Err("the request has neither Origin nor Referer; a form of this server sends one".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn sessions_open_find_and_close() {
        let s = Sessions::default();
        let c = s.open([7; 32]);
        assert_eq!(c.len(), 43);
        assert_eq!(s.get(&c).unwrap().token_hash, [7; 32]);
        assert_eq!(s.len(), 1);
        assert!(s.get(&format!("{c}x")).is_none());
        s.close(&c);
        assert!(s.get(&c).is_none());
    }

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tftrail_session=xyz"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("tftrail_session=other"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None, "two values: none");
        assert_eq!(
            set_cookie("n", "v", true, Some(0)),
            "n=v; HttpOnly; SameSite=Strict; Path=/; Secure; Max-Age=0"
        );
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h, false).is_err());
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://127.0.0.1:8080/login"),
        );
        assert!(same_origin(&h, false).is_ok());
        assert!(same_origin(&h, true).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(same_origin(&h, false).is_err(), "Origin wins over Referer");
        assert!(
            secrets_equal("abc", "abc")
                && !secrets_equal("abc", "abd")
                && !secrets_equal("a", "ab")
        );
    }
}
