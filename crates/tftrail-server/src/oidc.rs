//! CI jobs' OIDC ID tokens (GitHub Actions, GitLab CI, …) to a [`Principal`].
//!
//! Each issuer the server trusts is an `[[oidc]]` table of the server's config:
//!
//! ```toml
//! [[oidc]]
//! issuer = "https://token.actions.githubusercontent.com"
//! audience = "tftrail"          # required
//! jwks = "https://…/jwks"       # optional; else <issuer>/.well-known/openid-configuration
//! [[oidc.roles]]                # first match wins; every pattern given must match
//! role = "writer"
//! subject = "repo:acme/infra:ref:refs/heads/main"
//! repository = "acme/*"         # `*` matches any run of characters
//! ```
//!
//! A token is checked against its issuer's published keys (JWKS, cached; fetched again when a
//! token names a key the cache lacks, at most once per 10 s per issuer): the signature (RS256
//! or ES256 only: `none` and HMAC are refused), `iss`, `aud`, `exp` and `nbf` (30 s leeway).
//! Then the first role rule whose every pattern matches gives the role; none is a 403.
//!
//! Issuer URLs must be https, except on loopback hosts (the test issuer).

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::{Denial, Principal, Role};

/// Leeway on `exp` and `nbf`, for clocks that differ a little.
pub const LEEWAY_SECS: u64 = 30;

/// Default: the JWKS of an issuer is fetched again at most this often.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);

/// The most bytes read of a discovery document or JWKS.
const MAX_DOC_BYTES: usize = 1 << 20;

/// One trusted issuer, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL, exactly as tokens' `iss` claim has it.
    pub issuer: String,
    /// The audience tokens must be minted for (`aud`).
    pub audience: String,
    /// The JWKS URL; when absent, the `jwks_uri` of the issuer's discovery document.
    #[serde(default)]
    pub jwks: Option<String>,
    /// Role rules, in order: the first whose every pattern matches gives the role.
    #[serde(default)]
    pub roles: Vec<RoleRule>,
}

/// One role rule: a role, and patterns over the token's claims (`*` is a wildcard). Every
/// pattern given must match; a claim the token lacks matches no pattern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    /// The role given.
    pub role: Role,
    /// `sub`.
    #[serde(default)]
    pub subject: Option<String>,
    /// GitHub `repository`, GitLab `project_path`.
    #[serde(default)]
    pub repository: Option<String>,
    /// `ref`.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// GitHub `workflow`.
    #[serde(default)]
    pub workflow: Option<String>,
    /// GitHub `actor`, GitLab `user_login`.
    #[serde(default)]
    pub actor: Option<String>,
    /// `environment` (GitHub and GitLab deployment environments).
    #[serde(default)]
    pub environment: Option<String>,
}

impl RoleRule {
    /// The rule as JSON: its role and the patterns it has.
    pub fn describe(&self) -> Value {
        let mut m = Map::new();
        m.insert("role".into(), serde_json::json!(self.role));
        for (field, p) in self.patterns() {
            if let Some(p) = p {
                m.insert(field.into(), Value::String(p.into()));
            }
        }
        Value::Object(m)
    }

    fn patterns(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("subject", self.subject.as_deref()),
            ("repository", self.repository.as_deref()),
            ("ref", self.git_ref.as_deref()),
            ("workflow", self.workflow.as_deref()),
            ("actor", self.actor.as_deref()),
            ("environment", self.environment.as_deref()),
        ]
    }

    fn matches(&self, facts: &Map<String, Value>) -> bool {
        self.patterns()
            .iter()
            .all(|(field, pattern)| match pattern {
                None => true,
                Some(p) => facts
                    .get(*field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| wildcard_match(p, v)),
            })
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (including
/// none, `/` and `:`) and everything else for itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it is currently taken to end at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// A configuration the verifier refuses.
#[derive(Debug, thiserror::Error)]
#[error("[[oidc]] {issuer}: {message}")]
pub struct OidcConfigError {
    /// The issuer concerned.
    pub issuer: String,
    /// What is wrong.
    pub message: String,
}

/// Checks that `url` is https, or http on a loopback host.
fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match u.scheme() {
        "https" if u.host().is_some() => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err(format!(
            "{url} must be an https URL (plain http only on a loopback host)"
        )),
    }
}

#[derive(Clone)]
struct CachedKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<CachedKey>,
    jwks_uri: Option<String>,
    last_fetch: Option<Instant>,
}

impl KeyCache {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .map(|k| k.key.clone())
            .collect()
    }
}

struct Issuer {
    config: OidcConfig,
    cache: tokio::sync::Mutex<KeyCache>,
}

/// Checks OIDC ID tokens against the configured issuers.
pub struct OidcVerifier {
    issuers: Vec<Issuer>,
    client: reqwest::Client,
    min_refresh: Duration,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|i| &i.config.issuer)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn denial(status: u16, reason: impl Into<String>, credential: &Option<String>) -> Denial {
    Denial {
        status,
        reason: reason.into(),
        credential: credential.clone(),
    }
}

/// Decodes one base64url JSON part of a JWT.
fn json_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `s` looks like a JWT: three base64url parts, the first a JSON object with `alg`.
pub fn is_jwt_shaped(s: &str) -> bool {
    let mut parts = s.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    json_part(h).is_some_and(|v| v.get("alg").is_some_and(Value::is_string))
}

/// A claim as text (GitHub's `run_id` is a string, some issuers send numbers).
fn claim_str(claims: &Value, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl OidcVerifier {
    /// A verifier for `configs`; refuses non-https issuers (but loopback), duplicates, an
    /// empty audience, and role rules without any pattern.
    pub fn new(configs: Vec<OidcConfig>) -> Result<OidcVerifier, OidcConfigError> {
        let mut issuers: Vec<Issuer> = Vec::with_capacity(configs.len());
        for config in configs {
            let err = |message: String| OidcConfigError {
                issuer: config.issuer.clone(),
                message,
            };
            check_url(&config.issuer).map_err(err)?;
            if let Some(j) = &config.jwks {
                check_url(j).map_err(|m| err(format!("jwks: {m}")))?;
            }
            if config.audience.trim().is_empty() {
                return Err(err("audience is empty".into()));
            }
            if config.roles.is_empty() {
                return Err(err(
                    "no [[oidc.roles]]: every token of this issuer would be refused".into(),
                ));
            }
            for (i, r) in config.roles.iter().enumerate() {
                if r.patterns().iter().all(|(_, p)| p.is_none()) {
                    return Err(err(format!(
                        "role rule {} ({:?}) has no pattern: it would give the role to every \
                         token this issuer mints, for anyone (name at least subject or repository)",
                        i + 1,
                        r.role
                    )));
                }
            }
            if issuers.iter().any(|i| i.config.issuer == config.issuer) {
                return Err(err("configured twice".into()));
            }
            issuers.push(Issuer {
                config,
                cache: tokio::sync::Mutex::new(KeyCache::default()),
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcConfigError {
                issuer: String::new(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(OidcVerifier {
            issuers,
            client,
            min_refresh: MIN_REFRESH,
        })
    }

    /// A verifier that trusts no issuer (every JWT is refused).
    pub fn none() -> OidcVerifier {
        OidcVerifier::new(Vec::new()).expect("no issuer is a valid configuration")
    }

    /// How often, at most, an issuer's JWKS is fetched again on an unknown key
    /// ([`MIN_REFRESH`] unless set; tests of key rotation shorten it).
    pub fn with_min_refresh(mut self, interval: Duration) -> OidcVerifier {
        self.min_refresh = interval;
        self
    }

    /// Whether any issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Checks an ID token; the caller it names, with the role its issuer's rules give.
    pub async fn verify(&self, jwt: &str) -> Result<Principal, Denial> {
        let none = None;
        let mut parts = jwt.split('.');
        let (Some(h), Some(c), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(denial(
                401,
                "malformed JWT: not three dot-separated parts",
                &none,
            ));
        };
        let Some(header) = json_part(h).filter(Value::is_object) else {
            return Err(denial(
                401,
                "malformed JWT: the header is not base64url JSON",
                &none,
            ));
        };
        let Some(claims) = json_part(c).filter(Value::is_object) else {
            return Err(denial(
                401,
                "malformed JWT: the claims are not base64url JSON",
                &none,
            ));
        };
        let iss = claims.get("iss").and_then(Value::as_str);
        let sub = claims.get("sub").and_then(Value::as_str);
        let credential = iss.map(|i| format!("oidc:{i} {}", sub.unwrap_or("-")));
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some("RS256") => Algorithm::RS256,
            Some("ES256") => Algorithm::ES256,
            Some(a) if a.eq_ignore_ascii_case("none") => {
                return Err(denial(401, "unsigned JWT (alg none) refused", &credential))
            }
            Some(a) if a.starts_with("HS") => {
                return Err(denial(
                    401,
                    format!("JWT algorithm {a:.10} refused: HMAC needs a shared secret"),
                    &credential,
                ))
            }
            Some(a) => {
                return Err(denial(
                    401,
                    format!("unsupported JWT algorithm {a:.10?} (accepted: RS256, ES256)"),
                    &credential,
                ))
            }
            None => {
                return Err(denial(
                    401,
                    "malformed JWT: no alg in the header",
                    &credential,
                ))
            }
        };
        let Some(iss) = iss else {
            return Err(denial(401, "JWT has no iss claim", &credential));
        };
        let Some(issuer) = self.issuers.iter().find(|i| i.config.issuer == iss) else {
            return Err(denial(
                401,
                format!("issuer {iss:.200} is not configured"),
                &credential,
            ));
        };
        let kid = header.get("kid").and_then(Value::as_str);
        let keys = self
            .keys(issuer, kid, alg)
            .await
            .map_err(|r| denial(401, r, &credential))?;
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[&issuer.config.audience]);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut last = None;
        let mut verified = None;
        for key in &keys {
            match jsonwebtoken::decode::<Value>(jwt, key, &validation) {
                Ok(data) => {
                    verified = Some(data.claims);
                    break;
                }
                Err(e) => {
                    let bad_sig =
                        matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature);
                    last = Some(e);
                    if !bad_sig {
                        break;
                    }
                }
            }
        }
        let claims = match (verified, last) {
            (Some(c), _) => c,
            (None, Some(e)) => {
                return Err(denial(401, reason_of(&e, &claims, issuer), &credential))
            }
            (None, None) => unreachable!("keys() returns at least one key"),
        };
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| denial(401, "JWT has an empty sub claim", &credential))?;
        let facts = facts(&claims, iss, sub);
        let Some(rule) = issuer.config.roles.iter().find(|r| r.matches(&facts)) else {
            return Err(denial(
                403,
                format!("no role for subject {sub:.300} (issuer {iss})"),
                &credential,
            ));
        };
        let mut authenticated = Map::new();
        authenticated.insert("by".into(), "oidc".into());
        for field in [
            "issuer",
            "subject",
            "repository",
            "ref",
            "workflow",
            "run_id",
            "actor",
        ] {
            if let Some(v) = facts.get(field) {
                authenticated.insert(field.into(), v.clone());
            }
        }
        authenticated.insert(
            "role".into(),
            serde_json::to_value(rule.role).unwrap_or_default(),
        );
        Ok(Principal {
            role: rule.role,
            label: sub.to_string(),
            authenticated: Value::Object(authenticated),
        })
    }

    /// The issuer's keys for `kid` and `alg`: from the cache, else after one fetch (at most
    /// one per `min_refresh`).
    async fn keys(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<DecodingKey>, String> {
        let mut cache = issuer.cache.lock().await;
        let found = cache.find(kid, alg);
        if !found.is_empty() {
            return Ok(found);
        }
        let due = cache
            .last_fetch
            .is_none_or(|t| t.elapsed() >= self.min_refresh);
        let mut fetch_error = None;
        if due {
            cache.last_fetch = Some(Instant::now());
            match self.fetch_keys(issuer, &mut cache).await {
                Ok(keys) => cache.keys = keys,
                Err(e) => fetch_error = Some(e),
            }
        }
        let found = cache.find(kid, alg);
        if !found.is_empty() {
            return Ok(found);
        }
        let iss = &issuer.config.issuer;
        Err(match fetch_error {
            Some(e) => format!("the keys of issuer {iss} cannot be fetched: {e}"),
            None => match kid {
                Some(k) => {
                    format!("unknown key: no {alg:?} key {k:.100} in the JWKS of issuer {iss}")
                }
                None => format!("unknown key: no {alg:?} key in the JWKS of issuer {iss}"),
            },
        })
    }

    /// Fetches the issuer's JWKS (finding its URL by discovery when not configured).
    async fn fetch_keys(
        &self,
        issuer: &Issuer,
        cache: &mut KeyCache,
    ) -> Result<Vec<CachedKey>, String> {
        let uri = match (&issuer.config.jwks, &cache.jwks_uri) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.config.issuer.trim_end_matches('/')
                );
                let doc = self.get_json(&url).await?;
                if doc.get("issuer").and_then(Value::as_str) != Some(issuer.config.issuer.as_str())
                {
                    return Err(format!("{url} names another issuer"));
                }
                let uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{url} has no jwks_uri"))?;
                check_url(uri)?;
                cache.jwks_uri = Some(uri.to_string());
                uri.to_string()
            }
        };
        let jwks = self.get_json(&uri).await?;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{uri} is not a JWKS (no keys array)"))?;
        Ok(keys.iter().filter_map(cached_key).collect())
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut resp = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOC_BYTES {
                return Err(format!("GET {url}: more than {MAX_DOC_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

/// A usable signing key of a JWKS entry (RSA for RS256, P-256 for ES256); others are skipped.
fn cached_key(v: &Value) -> Option<CachedKey> {
    let jwk: Jwk = serde_json::from_value(v.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    match (jwk.common.key_algorithm, alg) {
        (None, _)
        | (Some(KeyAlgorithm::RS256), Algorithm::RS256)
        | (Some(KeyAlgorithm::ES256), Algorithm::ES256) => {}
        _ => return None,
    }
    Some(CachedKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(&jwk).ok()?,
    })
}

/// Why a token that has a key failed, in words.
fn reason_of(e: &jsonwebtoken::errors::Error, claims: &Value, issuer: &Issuer) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    let time = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_i64)
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| "?".into())
    };
    match e.kind() {
        K::ExpiredSignature => format!("ID token expired at {}", time("exp")),
        K::ImmatureSignature => format!("ID token not valid before {}", time("nbf")),
        K::InvalidAudience => format!(
            "ID token is for another audience (expected {:?})",
            issuer.config.audience
        ),
        K::InvalidIssuer => "ID token's iss does not match its issuer".into(),
        K::InvalidSignature => "bad signature on the ID token".into(),
        K::MissingRequiredClaim(c) => format!("ID token has no {c} claim"),
        K::InvalidClaimFormat(c) => format!("ID token's {c} claim is malformed"),
        K::InvalidAlgorithm => "ID token's algorithm does not fit its key".into(),
        _ => format!("ID token refused: {e}"),
    }
}

/// What a record keeps of a verified token, under one naming for every CI: GitHub's claim
/// names, with GitLab's `project_path`, `pipeline_id` and `user_login` mapped onto them.
fn facts(claims: &Value, iss: &str, sub: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("issuer".into(), iss.into());
    m.insert("subject".into(), sub.into());
    let pick = |names: &[&str]| names.iter().find_map(|n| claim_str(claims, n));
    for (field, names) in [
        ("repository", &["repository", "project_path"][..]),
        ("ref", &["ref"][..]),
        ("workflow", &["workflow"][..]),
        ("run_id", &["run_id", "pipeline_id"][..]),
        ("actor", &["actor", "user_login"][..]),
        ("environment", &["environment"][..]),
    ] {
        if let Some(v) = pick(names) {
            m.insert(field.into(), v.into());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        for (p, t, ok) in [
            ("acme/*", "acme/infra", true),
            ("acme/*", "acme/", true),
            ("acme/*", "acmex/infra", false),
            ("*", "", true),
            (
                "repo:acme/infra:ref:refs/heads/main",
                "repo:acme/infra:ref:refs/heads/main",
                true,
            ),
            (
                "repo:acme/infra:ref:refs/heads/main",
                "repo:acme/infra:ref:refs/heads/mainx",
                false,
            ),
            (
                "repo:*:ref:refs/heads/main",
                "repo:a/b:ref:refs/heads/main",
                true,
            ),
            (
                "repo:*:ref:refs/heads/main",
                "repo:a/b:ref:refs/heads/dev",
                false,
            ),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*main", "refs/heads/main", true),
            ("", "x", false),
        ] {
            assert_eq!(wildcard_match(p, t), ok, "{p} ~ {t}");
        }
    }

    #[test]
    fn urls() {
        assert!(check_url("https://token.actions.githubusercontent.com").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("http://[::1]:8080").is_ok());
        assert!(check_url("http://localhost:1").is_ok());
        assert!(check_url("http://example.com").is_err());
        assert!(check_url("ftp://127.0.0.1").is_err());
        assert!(check_url("not a url").is_err());
    }

    fn config(toml_text: &str) -> Result<OidcVerifier, String> {
        #[derive(Deserialize)]
        struct C {
            oidc: Vec<OidcConfig>,
        }
        let c: C = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        OidcVerifier::new(c.oidc).map_err(|e| e.to_string())
    }

    #[test]
    fn config_checks() {
        let ok = r#"
            [[oidc]]
            issuer = "https://token.actions.githubusercontent.com"
            audience = "tftrail"
            [[oidc.roles]]
            role = "writer"
            subject = "repo:acme/infra:ref:refs/heads/main"
            repository = "acme/*"
        "#;
        assert!(config(ok).is_ok());
        let e = config(&ok.replace("https://token", "http://token")).unwrap_err();
        assert!(e.contains("must be an https URL"), "{e}");
        let e = config(
            &ok.replace("subject = \"repo:acme/infra:ref:refs/heads/main\"\n", "")
                .replace("repository = \"acme/*\"", ""),
        )
        .unwrap_err();
        assert!(e.contains("has no pattern"), "{e}");
        let e = config(&ok.replace("role = \"writer\"", "role = \"writer\"\nbranch = \"main\""))
            .unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = config(&ok.replace("audience = \"tftrail\"", "")).unwrap_err();
        assert!(e.contains("audience"), "{e}");
        let twice = format!("{ok}\n{}", ok.trim_start());
        let e = config(&twice).unwrap_err();
        assert!(e.contains("configured twice"), "{e}");
    }

    #[test]
    fn gitlab_claims_are_mapped() {
        let claims = serde_json::json!({
            "sub": "project_path:acme/infra:ref_type:branch:ref:main",
            "project_path": "acme/infra", "ref": "main", "pipeline_id": 1234, "user_login": "bob",
        });
        let f = facts(&claims, "https://gitlab.com", "s");
        assert_eq!(f["repository"], "acme/infra");
        assert_eq!(f["run_id"], "1234");
        assert_eq!(f["actor"], "bob");
        assert!(f.get("workflow").is_none());
    }

    #[test]
    fn jwt_shape() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        assert!(is_jwt_shaped(&format!("{h}.e30.sig")));
        assert!(!is_jwt_shaped(&format!("{h}.e30")));
        assert!(!is_jwt_shaped(&format!("{h}.e30.sig.x")));
        assert!(!is_jwt_shaped("a.b.c"));
        let no_alg = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT"}"#);
        assert!(!is_jwt_shaped(&format!("{no_alg}.e30.sig")));
    }

    // ----- against the real test issuer, over loopback HTTP -----

    use crate::testing::{hs256_token, unsigned_token, TestIssuer, TestKey};
    use serde_json::json;

    fn rule(role: Role, subject: Option<&str>, repository: Option<&str>) -> RoleRule {
        RoleRule {
            role,
            subject: subject.map(Into::into),
            repository: repository.map(Into::into),
            git_ref: None,
            workflow: None,
            actor: None,
            environment: None,
        }
    }

    const MAIN: &str = "repo:acme/infra:ref:refs/heads/main";

    fn verifier(issuer: &TestIssuer) -> OidcVerifier {
        OidcVerifier::new(vec![issuer.config(vec![
            rule(Role::Writer, Some(MAIN), Some("acme/*")),
            rule(Role::Reader, Some("repo:acme/*"), None),
        ])])
        .unwrap()
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[tokio::test]
    async fn accepted_with_the_first_matching_role() {
        let issuer = TestIssuer::start();
        let v = verifier(&issuer);
        let p = v.verify(&issuer.token(issuer.claims(MAIN))).await.unwrap();
        assert_eq!(p.role, Role::Writer);
        assert_eq!(p.label, MAIN);
        assert_eq!(
            p.authenticated,
            json!({"by": "oidc", "issuer": issuer.url(), "subject": MAIN,
                   "repository": "acme/infra", "ref": "refs/heads/main", "workflow": "deploy",
                   "run_id": "4242", "actor": "octocat", "role": "writer"})
        );
        // Another branch of the same repository: the second rule.
        let dev = "repo:acme/infra:ref:refs/heads/dev";
        let p = v.verify(&issuer.token(issuer.claims(dev))).await.unwrap();
        assert_eq!(p.role, Role::Reader);
        // ES256 too, from the same JWKS.
        let p = v
            .verify(&issuer.token_with(TestKey::Ec1, issuer.claims(MAIN)))
            .await
            .unwrap();
        assert_eq!(p.role, Role::Writer);
        // Discovery once, the JWKS once: both cached.
        assert_eq!(issuer.requests("/.well-known/openid-configuration"), 1);
        assert_eq!(issuer.requests("/jwks"), 1);
    }

    #[tokio::test]
    async fn time_audience_signature_and_issuer_are_checked() {
        let issuer = TestIssuer::start();
        let v = verifier(&issuer);
        let cred = Some(format!("oidc:{} {MAIN}", issuer.url()));

        let mut c = issuer.claims(MAIN);
        c["exp"] = json!(now() - 120);
        let d = v.verify(&issuer.token(c)).await.unwrap_err();
        assert_eq!(d.status, 401);
        assert!(d.reason.starts_with("ID token expired at "), "{}", d.reason);
        assert_eq!(d.credential, cred);

        let mut c = issuer.claims(MAIN);
        c["exp"] = json!(now() - 10);
        assert!(
            v.verify(&issuer.token(c)).await.is_ok(),
            "within the leeway"
        );

        let mut c = issuer.claims(MAIN);
        c["nbf"] = json!(now() + 300);
        let d = v.verify(&issuer.token(c)).await.unwrap_err();
        assert!(d.reason.contains("not valid before"), "{}", d.reason);

        let mut c = issuer.claims(MAIN);
        c["aud"] = json!("someone-else");
        let d = v.verify(&issuer.token(c)).await.unwrap_err();
        assert_eq!(d.status, 401);
        assert!(d.reason.contains("another audience"), "{}", d.reason);

        let mut c = issuer.claims(MAIN);
        c.as_object_mut().unwrap().remove("exp");
        let d = v.verify(&issuer.token(c)).await.unwrap_err();
        assert!(d.reason.contains("no exp claim"), "{}", d.reason);

        // A stranger's signature under a published kid.
        let forged =
            issuer.token_with_kid(TestKey::Stranger, Some("test-rsa-1"), issuer.claims(MAIN));
        let d = v.verify(&forged).await.unwrap_err();
        assert_eq!(
            (d.status, d.reason.as_str()),
            (401, "bad signature on the ID token")
        );
        // A tampered payload.
        let good = issuer.token(issuer.claims("repo:acme/infra:ref:refs/heads/dev"));
        let mut parts: Vec<&str> = good.split('.').collect();
        let elevated = URL_SAFE_NO_PAD.encode(issuer.claims(MAIN).to_string());
        parts[1] = &elevated;
        let d = v.verify(&parts.join(".")).await.unwrap_err();
        assert_eq!(d.reason, "bad signature on the ID token");

        let mut c = issuer.claims(MAIN);
        c["iss"] = json!("https://evil.example");
        let d = v.verify(&issuer.token(c)).await.unwrap_err();
        assert_eq!(d.status, 401);
        assert_eq!(d.reason, "issuer https://evil.example is not configured");
        assert_eq!(
            d.credential.as_deref(),
            Some(format!("oidc:https://evil.example {MAIN}").as_str())
        );
    }

    #[tokio::test]
    async fn unmapped_subject_is_forbidden() {
        let issuer = TestIssuer::start();
        let v = verifier(&issuer);
        let sub = "repo:evil/infra:ref:refs/heads/main";
        let mut c = issuer.claims(sub);
        c["repository"] = json!("evil/infra");
        let d = v.verify(&issuer.token(c)).await.unwrap_err();
        assert_eq!(d.status, 403);
        assert_eq!(
            d.reason,
            format!("no role for subject {sub} (issuer {})", issuer.url())
        );
        // The writer rule needs both patterns: right subject, wrong repository claim.
        let mut c = issuer.claims(MAIN);
        c["repository"] = json!("other/infra");
        assert_eq!(v.verify(&issuer.token(c)).await.unwrap().role, Role::Reader);
    }

    #[tokio::test]
    async fn none_and_hmac_are_refused() {
        let issuer = TestIssuer::start();
        let v = verifier(&issuer);
        let c = issuer.claims(MAIN);
        let d = v.verify(&unsigned_token(&c)).await.unwrap_err();
        assert_eq!(
            (d.status, d.reason.as_str()),
            (401, "unsigned JWT (alg none) refused")
        );
        // HS256 "signed" with the issuer's public key material, the classic confusion attack.
        let n = match &TestKey::Rsa1.jwk().algorithm {
            AlgorithmParameters::RSA(p) => p.n.clone(),
            _ => unreachable!(),
        };
        let d = v
            .verify(&hs256_token(&c, Some("test-rsa-1"), n.as_bytes()))
            .await
            .unwrap_err();
        assert_eq!(d.status, 401);
        assert!(
            d.reason.starts_with("JWT algorithm HS256 refused"),
            "{}",
            d.reason
        );
        assert_eq!(
            issuer.requests("/jwks"),
            0,
            "refused before any key is looked at"
        );
    }

    #[tokio::test]
    async fn unknown_key_then_rotation_through_refresh() {
        let issuer = TestIssuer::start();
        let v = verifier(&issuer).with_min_refresh(Duration::ZERO);
        assert!(v.verify(&issuer.token(issuer.claims(MAIN))).await.is_ok());
        // Signed with the next key before the issuer publishes it: unknown.
        let early = issuer.token_with(TestKey::Rsa2, issuer.claims(MAIN));
        let d = v.verify(&early).await.unwrap_err();
        assert_eq!(d.status, 401);
        assert!(
            d.reason.starts_with("unknown key: no RS256 key test-rsa-2"),
            "{}",
            d.reason
        );
        assert_eq!(
            issuer.requests("/jwks"),
            2,
            "the unknown kid made it look again"
        );
        issuer.rotate();
        let p = v.verify(&issuer.token(issuer.claims(MAIN))).await.unwrap();
        assert_eq!(p.role, Role::Writer);
        assert_eq!(issuer.requests("/jwks"), 3);
        // The old key is gone from the JWKS: after a refresh, its tokens are unknown.
        let old = issuer.token_with(TestKey::Rsa1, issuer.claims(MAIN));
        let d = v.verify(&old).await.unwrap_err();
        assert!(d.reason.starts_with("unknown key"), "{}", d.reason);
    }

    #[tokio::test]
    async fn unknown_kids_do_not_hammer_the_issuer() {
        let issuer = TestIssuer::start();
        let v = verifier(&issuer); // the default: one refresh per 10 s at most
        assert!(v.verify(&issuer.token(issuer.claims(MAIN))).await.is_ok());
        for i in 0..20 {
            let kid = format!("made-up-{i}");
            let t = issuer.token_with_kid(TestKey::Stranger, Some(&kid), issuer.claims(MAIN));
            let d = v.verify(&t).await.unwrap_err();
            assert!(d.reason.starts_with("unknown key"), "{}", d.reason);
        }
        assert_eq!(issuer.requests("/jwks"), 1);
    }

    #[tokio::test]
    async fn unreachable_issuer_is_a_clear_denial() {
        let issuer = TestIssuer::start();
        let v = verifier(&issuer);
        let t = issuer.token(issuer.claims(MAIN));
        let url = issuer.url().to_string();
        drop(issuer);
        let d = v.verify(&t).await.unwrap_err();
        assert_eq!(d.status, 401);
        assert!(
            d.reason.starts_with(&format!("the keys of issuer {url} cannot be fetched: GET {url}/.well-known/openid-configuration")),
            "{}",
            d.reason
        );
    }
}
