//! Who is calling: credentials (tokens, OIDC ID tokens) to a [`Principal`] or a [`Denial`].
//!
//! Deny by default: a request without a credential the server knows is refused; a role allows
//! only what [`Role::allows`] says.

use std::sync::Mutex;

use base64::Engine as _;
use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::oidc::{is_jwt_shaped, OidcVerifier};
use crate::tokens::{fingerprint, is_well_formed, TokenEvent, TokenSet, TOKEN_PREFIX};

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

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        [Role::Writer, Role::Reader, Role::Auditor, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| "a role is writer, reader, auditor or admin".into())
    }
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
    /// Its name, as the tokens file, the config and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

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

/// Resolves the credential of a request to a [`Principal`]: tokens from the token file, JWTs
/// through the configured OIDC issuers. Deny by default: no credential, or one that is not
/// recognised, is a [`Denial`].
#[derive(Debug)]
pub struct Authenticator {
    tokens: Option<TokenSet>,
    oidc: OidcVerifier,
    /// The issuers as configured, for [`Authenticator::describe`].
    issuers: Vec<crate::oidc::OidcConfig>,
    events: Mutex<Vec<TokenEvent>>,
    errors: Mutex<Vec<String>>,
}

/// How the credential was sent, for messages.
#[derive(Clone, Copy)]
enum Scheme {
    Bearer,
    Basic,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Bearer => "Bearer",
            Scheme::Basic => "Basic",
        }
    }
}

fn unauthorized(reason: impl Into<String>) -> Denial {
    Denial {
        status: 401,
        reason: reason.into(),
        credential: None,
    }
}

/// The secret in an `Authorization` header value: `Bearer X`, or `Basic base64(user:X)`.
/// Errors name what is wrong, never the secret.
fn credential_of(headers: &HeaderMap) -> Result<(Scheme, String), Denial> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(unauthorized("no credential"));
    };
    if values.next().is_some() {
        return Err(unauthorized("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not visible ASCII"))?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("basic") {
        Scheme::Basic
    } else {
        // The "scheme" may be a bare token: do not echo it.
        return Err(unauthorized(
            "the Authorization header is neither `Bearer <token>` nor `Basic <base64 of user:token>`",
        ));
    };
    if rest.is_empty() {
        return Err(unauthorized(format!(
            "the Authorization header's {} credential is empty",
            scheme.name()
        )));
    }
    match scheme {
        Scheme::Bearer => Ok((scheme, rest.to_string())),
        Scheme::Basic => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| unauthorized("the Basic credential is not base64"))?;
            let text = String::from_utf8(raw)
                .map_err(|_| unauthorized("the Basic credential is not UTF-8"))?;
            let Some((_user, password)) = text.split_once(':') else {
                return Err(unauthorized(
                    "the Basic credential has no ':' between user and password",
                ));
            };
            if password.is_empty() {
                return Err(unauthorized(
                    "the Basic credential's password is empty (the token goes in the password)",
                ));
            }
            Ok((scheme, password.to_string()))
        }
    }
}

impl Authenticator {
    /// An authenticator over the token file (if the server has one) and the OIDC issuers.
    pub fn new(tokens: Option<TokenSet>, oidc: OidcVerifier) -> Authenticator {
        Authenticator {
            tokens,
            oidc,
            issuers: Vec::new(),
            events: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// The authenticator of the server's settings: its token file and OIDC issuers.
    pub fn from_config(c: &crate::ServerConfig) -> Result<Authenticator, crate::ServerError> {
        let tokens = c
            .tokens
            .as_deref()
            .map(TokenSet::load)
            .transpose()
            .map_err(|e| crate::ServerError::Config(e.to_string()))?;
        let oidc = OidcVerifier::new(c.oidc.clone())
            .map_err(|e| crate::ServerError::Config(e.to_string()))?;
        let mut a = Authenticator::new(tokens, oidc);
        a.issuers = c.oidc.clone();
        Ok(a)
    }

    /// The credentials in effect, never a secret or a hash: tokens (name, role, fingerprint,
    /// created, expires, revoked) and OIDC issuers with their role rules.
    pub fn describe(&self) -> serde_json::Value {
        let tokens = self
            .tokens
            .as_ref()
            .map(TokenSet::infos)
            .unwrap_or_default();
        let issuers: Vec<serde_json::Value> = self
            .issuers
            .iter()
            .map(|i| {
                serde_json::json!({
                    "issuer": i.issuer,
                    "audience": i.audience,
                    "roles": i.roles.iter().map(|r| r.describe()).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({ "tokens": tokens, "oidc": issuers })
    }

    /// The caller of a request with these headers, or why it is refused.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Denial> {
        let (scheme, secret) = credential_of(headers)?;
        if secret.starts_with(TOKEN_PREFIX) {
            if !is_well_formed(&secret) {
                return Err(unauthorized(format!(
                    "malformed tftrail token in the {} credential (expected {TOKEN_PREFIX} and 43 base64url characters)",
                    scheme.name()
                )));
            }
            return self.token(&secret);
        }
        if is_jwt_shaped(&secret) {
            return self.oidc.verify(&secret).await;
        }
        Err(unauthorized(format!(
            "the {} credential is neither a tftrail token nor a JWT",
            scheme.name()
        )))
    }

    /// The caller holding the tftrail token whose SHA-256 is `hash`, checked now (revoked,
    /// expired and removed tokens are denials): the web UI's sessions re-check their token on
    /// every request this way.
    pub fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Principal, Denial> {
        self.token_with(|set| set.lookup_hash_at(hash, time::OffsetDateTime::now_utc()))
    }

    fn token(&self, token: &str) -> Result<Principal, Denial> {
        let fp = fingerprint(token);
        self.token_with(|set| set.lookup(token)).map_err(|mut d| {
            if d.reason.contains("accepts no tokens") {
                d.credential = Some(format!("token:{fp}"));
            }
            d
        })
    }

    fn token_with(
        &self,
        lookup: impl FnOnce(&TokenSet) -> Result<crate::tokens::TokenMatch, Denial>,
    ) -> Result<Principal, Denial> {
        let Some(set) = &self.tokens else {
            return Err(Denial {
                status: 401,
                reason: "this server accepts no tokens (it has no token file)".into(),
                credential: None,
            });
        };
        match set.check() {
            Ok(events) if !events.is_empty() => lock(&self.events).extend(events),
            Ok(_) => {}
            Err(e) => lock(&self.errors).push(e.to_string()),
        }
        let m = lookup(set)?;
        Ok(Principal {
            role: m.role,
            label: m.name.clone(),
            authenticated: serde_json::json!({
                "by": "token", "name": m.name, "role": m.role, "token": m.fingerprint,
            }),
        })
    }

    /// Re-reads the token file if it changed, without a request (e.g. on a timer), so that
    /// its changes are seen by [`Authenticator::take_events`].
    pub fn refresh(&self) {
        if let Some(set) = &self.tokens {
            match set.check() {
                Ok(events) => lock(&self.events).extend(events),
                Err(e) => lock(&self.errors).push(e.to_string()),
            }
        }
    }

    /// The token file changes seen since the last call: reload by reload, and within one
    /// reload in the file's order (removals last).
    pub fn take_events(&self) -> Vec<TokenEvent> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// The token file's reload failures since the last call (the last good set was kept),
    /// for the server's log.
    pub fn take_reload_errors(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.errors))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::RoleRule;
    use crate::testing::TestIssuer;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        issuer: TestIssuer,
        auth: Authenticator,
        token: String,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let token = crate::tokens::create(&path, "ci", Role::Writer, None).unwrap();
        let issuer = TestIssuer::start();
        let oidc = OidcVerifier::new(vec![issuer.config(vec![RoleRule {
            role: Role::Reader,
            subject: Some("repo:acme/*".into()),
            repository: None,
            git_ref: None,
            workflow: None,
            actor: None,
            environment: None,
        }])])
        .unwrap();
        let auth = Authenticator::new(Some(TokenSet::load(&path).unwrap()), oidc);
        Fixture {
            _dir: dir,
            path,
            issuer,
            auth,
            token,
        }
    }

    #[tokio::test]
    async fn bearer_and_basic_tokens() {
        let f = fixture();
        let fp = fingerprint(&f.token);
        for h in [
            format!("Bearer {}", f.token),
            format!("bearer  {} ", f.token),
            basic(&format!("terraform:{}", f.token)),
            basic(&format!(":{}", f.token)),
        ] {
            let p = f.auth.authenticate(&headers(&[&h])).await.unwrap();
            assert_eq!(p.role, Role::Writer);
            assert_eq!(p.label, "ci");
            assert_eq!(
                p.authenticated,
                serde_json::json!({"by": "token", "name": "ci", "role": "writer", "token": fp})
            );
        }
    }

    #[tokio::test]
    async fn jwts_go_to_oidc() {
        let f = fixture();
        let sub = "repo:acme/infra:ref:refs/heads/main";
        let jwt = f.issuer.token(f.issuer.claims(sub));
        let p = f
            .auth
            .authenticate(&headers(&[&format!("Bearer {jwt}")]))
            .await
            .unwrap();
        assert_eq!((p.role, p.label.as_str()), (Role::Reader, sub));
        assert_eq!(p.authenticated["by"], "oidc");
        let p = f
            .auth
            .authenticate(&headers(&[&basic(&format!("x:{jwt}"))]))
            .await
            .unwrap();
        assert_eq!(p.role, Role::Reader);
    }

    #[tokio::test]
    async fn missing_and_garbled_credentials() {
        let f = fixture();
        let secret = &f.token[8..];
        let cases: Vec<(Vec<String>, &str)> = vec![
            (vec![], "no credential"),
            (vec![f.token.clone()], "neither `Bearer <token>` nor `Basic"),
            (
                vec![format!("Token {}", f.token)],
                "neither `Bearer <token>` nor `Basic",
            ),
            (vec!["Bearer".into()], "Bearer credential is empty"),
            (
                vec![format!("Bearer {}x", f.token)],
                "malformed tftrail token",
            ),
            (
                vec![format!("Bearer {}", &f.token[..20])],
                "malformed tftrail token",
            ),
            (
                vec![format!("Bearer {secret}")],
                "neither a tftrail token nor a JWT",
            ),
            (
                vec!["Bearer a.b.c".into()],
                "neither a tftrail token nor a JWT",
            ),
            (
                vec![format!("Basic {secret}!")],
                "Basic credential is not base64",
            ),
            (vec![basic(&f.token)], "no ':' between user and password"),
            (vec![basic("user:")], "password is empty"),
            (
                vec![format!("Bearer {}", f.token), format!("Bearer {}", f.token)],
                "more than one Authorization header",
            ),
        ];
        for (values, want) in cases {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let d = f.auth.authenticate(&headers(&refs)).await.unwrap_err();
            assert_eq!(d.status, 401, "{values:?}");
            assert!(d.reason.contains(want), "{values:?}: {}", d.reason);
            assert!(!d.reason.contains(secret), "secret echoed: {}", d.reason);
        }
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        let d = f.auth.authenticate(&h).await.unwrap_err();
        assert!(d.reason.contains("not visible ASCII"), "{}", d.reason);
    }

    #[tokio::test]
    async fn revocation_takes_effect_on_the_next_request_and_is_an_event() {
        let f = fixture();
        let h = headers(&[&format!("Bearer {}", f.token)]);
        assert!(f.auth.authenticate(&h).await.is_ok());
        assert!(f.auth.take_events().is_empty());
        let other = crate::tokens::create(&f.path, "other", Role::Reader, None).unwrap();
        crate::tokens::revoke(&f.path, "ci").unwrap();
        let d = f.auth.authenticate(&h).await.unwrap_err();
        assert!(
            d.reason.starts_with("token ci was revoked at "),
            "{}",
            d.reason
        );
        assert_eq!(d.credential.as_deref(), Some("ci"));
        let ev: Vec<_> = f
            .auth
            .take_events()
            .iter()
            .map(|e| (e.kind(), e.info().name.clone()))
            .collect();
        // Both changes were seen by one reload: in file order.
        assert_eq!(ev, [("revoked", "ci".into()), ("created", "other".into())]);
        assert!(f.auth.take_events().is_empty());
        let p = f
            .auth
            .authenticate(&headers(&[&format!("Bearer {other}")]))
            .await
            .unwrap();
        assert_eq!(p.role, Role::Reader);
        // A broken file: reported once, last good set kept.
        std::fs::write(&f.path, "[[token]]\nname = 1\n").unwrap();
        f.auth.refresh();
        let errors = f.auth.take_reload_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("line 2"), "{}", errors[0]);
        assert!(f
            .auth
            .authenticate(&headers(&[&format!("Bearer {other}")]))
            .await
            .is_ok());
        assert!(f.auth.take_reload_errors().is_empty());
    }

    #[tokio::test]
    async fn no_token_file_accepts_no_token() {
        let auth = Authenticator::new(None, OidcVerifier::none());
        let t = format!("tftrail_{}", "A".repeat(43));
        let d = auth
            .authenticate(&headers(&[&format!("Bearer {t}")]))
            .await
            .unwrap_err();
        assert_eq!(d.status, 401);
        assert!(d.reason.contains("accepts no tokens"), "{}", d.reason);
    }

    #[test]
    fn roles_allow() {
        assert!(Role::Writer.allows(Need::Write) && !Role::Reader.allows(Need::Write));
        assert!(Role::Auditor.allows(Need::Export) && !Role::Writer.allows(Need::Export));
        assert!(Role::Admin.allows(Need::Admin) && !Role::Writer.allows(Need::Admin));
        assert!([Role::Writer, Role::Reader, Role::Auditor, Role::Admin]
            .iter()
            .all(|r| r.allows(Need::Read)));
    }
}
