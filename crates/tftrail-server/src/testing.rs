//! A real OIDC issuer for tests (feature `testing`): it listens on 127.0.0.1, serves
//! `/.well-known/openid-configuration` and `/jwks` over plain HTTP/1.1 from its own thread, and
//! mints ID tokens signed with committed test keys (`testdata/`, not secret). It can rotate to
//! a second key, and sign with a key it never publishes, so that tests reach every path of
//! [`crate::oidc::OidcVerifier`] through real HTTP.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::oidc::{OidcConfig, RoleRule};

/// The audience the issuer's tokens are minted for by [`TestIssuer::claims`].
pub const AUDIENCE: &str = "tftrail";

/// The test keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    /// The first RSA key (kid `test-rsa-1`), published from the start.
    Rsa1,
    /// The RSA key [`TestIssuer::rotate`] moves to (kid `test-rsa-2`).
    Rsa2,
    /// An RSA key the issuer never publishes (kid `test-stranger`).
    Stranger,
    /// A P-256 key for ES256 (kid `test-ec-1`), published from the start.
    Ec1,
}

impl TestKey {
    /// Its key id.
    pub fn kid(self) -> &'static str {
        match self {
            TestKey::Rsa1 => "test-rsa-1",
            TestKey::Rsa2 => "test-rsa-2",
            TestKey::Stranger => "test-stranger",
            TestKey::Ec1 => "test-ec-1",
        }
    }

    /// Its algorithm.
    pub fn alg(self) -> Algorithm {
        match self {
            TestKey::Ec1 => Algorithm::ES256,
            _ => Algorithm::RS256,
        }
    }

    fn pem(self) -> &'static str {
        match self {
            TestKey::Rsa1 => include_str!("../testdata/issuer-rsa-1.pem"),
            TestKey::Rsa2 => include_str!("../testdata/issuer-rsa-2.pem"),
            TestKey::Stranger => include_str!("../testdata/stranger-rsa.pem"),
            TestKey::Ec1 => include_str!("../testdata/issuer-ec-1.pem"),
        }
    }

    /// The private key (RSA keys are PKCS#1, the EC key PKCS#8).
    fn encoding_key(self) -> EncodingKey {
        let b64: String = self
            .pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(b64).expect("test key PEM is base64");
        match self.alg() {
            Algorithm::ES256 => EncodingKey::from_ec_der(&der),
            _ => EncodingKey::from_rsa_der(&der),
        }
    }

    /// Its public half as a JWK.
    pub fn jwk(self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding_key(), self.alg())
            .expect("test key has a public JWK");
        jwk.common.key_id = Some(self.kid().into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk
    }
}

#[derive(Debug)]
struct Shared {
    published: Mutex<Vec<TestKey>>,
    current: Mutex<TestKey>,
    requests: Mutex<HashMap<String, usize>>,
    stop: AtomicBool,
}

/// The issuer; stops when dropped.
#[derive(Debug)]
pub struct TestIssuer {
    url: String,
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl TestIssuer {
    /// Starts an issuer on 127.0.0.1 (a free port) that publishes [`TestKey::Rsa1`] and
    /// [`TestKey::Ec1`] and signs with `Rsa1`.
    pub fn start() -> TestIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            published: Mutex::new(vec![TestKey::Rsa1, TestKey::Ec1]),
            current: Mutex::new(TestKey::Rsa1),
            requests: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            let url = url.clone();
            std::thread::Builder::new()
                .name("test-oidc-issuer".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if shared.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Ok(stream) = conn {
                            let _ = serve(stream, &url, &shared);
                        }
                    }
                })
                .expect("spawn the issuer thread")
        };
        TestIssuer {
            url,
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// The issuer URL (`iss`), `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A server configuration for this issuer with audience [`AUDIENCE`] and these rules.
    pub fn config(&self, roles: Vec<RoleRule>) -> OidcConfig {
        OidcConfig {
            issuer: self.url.clone(),
            audience: AUDIENCE.into(),
            jwks: None,
            roles,
        }
    }

    /// Claims of a GitHub Actions-like ID token for `sub`, valid for 10 minutes from now.
    pub fn claims(&self, sub: &str) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "iss": self.url, "aud": AUDIENCE, "sub": sub,
            "iat": now, "nbf": now - 5, "exp": now + 600,
            "repository": "acme/infra", "ref": "refs/heads/main",
            "workflow": "deploy", "run_id": "4242", "actor": "octocat",
        })
    }

    /// An ID token with `claims`, signed with the current key.
    pub fn token(&self, claims: Value) -> String {
        let key = *self.shared.current.lock().unwrap();
        self.token_with(key, claims)
    }

    /// An ID token with `claims`, signed with `key` and naming its kid.
    pub fn token_with(&self, key: TestKey, claims: Value) -> String {
        sign(key, Some(key.kid()), &claims)
    }

    /// An ID token with `claims`, signed with `key` but naming `kid` (e.g. a stranger's
    /// signature under a published kid: a bad signature).
    pub fn token_with_kid(&self, key: TestKey, kid: Option<&str>, claims: Value) -> String {
        sign(key, kid, &claims)
    }

    /// Publishes exactly these keys in the JWKS.
    pub fn publish(&self, keys: &[TestKey]) {
        *self.shared.published.lock().unwrap() = keys.to_vec();
    }

    /// Key rotation: the JWKS now holds only [`TestKey::Rsa2`], and new tokens are signed
    /// with it.
    pub fn rotate(&self) {
        self.publish(&[TestKey::Rsa2]);
        *self.shared.current.lock().unwrap() = TestKey::Rsa2;
    }

    /// How many requests for `path` the issuer has answered.
    pub fn requests(&self, path: &str) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sign(key: TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(key.alg());
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key.encoding_key()).expect("sign test token")
}

/// A JWT with `alg: none` and no signature.
pub fn unsigned_token(claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{h}.{c}.")
}

/// A JWT signed with HMAC-SHA256 under `secret` (which a verifier must refuse: an issuer's
/// keys are public, so anyone could mint these with them).
pub fn hs256_token(claims: &Value, kid: Option<&str>, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("sign HS256")
}

/// Answers one request on `stream` and closes it.
fn serve(mut stream: TcpStream, url: &str, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() > 16 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut first = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    *shared
        .requests
        .lock()
        .unwrap()
        .entry(path.to_string())
        .or_default() += 1;
    let (status, body) = match (method, path) {
        ("GET", "/.well-known/openid-configuration") => (
            "200 OK",
            json!({
                "issuer": url, "jwks_uri": format!("{url}/jwks"),
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            })
            .to_string(),
        ),
        ("GET", "/jwks") => {
            let keys = shared.published.lock().unwrap().clone();
            let set = JwkSet {
                keys: keys.iter().map(|k| k.jwk()).collect(),
            };
            ("200 OK", serde_json::to_string(&set).expect("JWKS to JSON"))
        }
        _ => ("404 Not Found", json!({"error": "not found"}).to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
