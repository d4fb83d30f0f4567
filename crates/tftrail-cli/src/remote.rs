//! The CLI as a client of a tftrail server (`--server URL`, docs/API.md).
//!
//! Reads need nothing here: the server's log is a [`tftrail_store::http::HttpStore`] and the
//! log layer verifies every byte read from it against the signed checkpoint. This module
//! resolves the key a client trusts for a server (trust on first use), explains the server's
//! refusals, and writes: blobs with `PUT /v1/blobs/<sha256>`, records with
//! `POST /v1/records`. A client of a server reads no signing key: the server signs. The
//! record's actor is what the client says of itself; the server adds who the credential
//! authenticates.

use serde_json::Value;
use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::VerifierKey;
use tftrail_core::record::{Actor, BlobRef};
use tftrail_log::{Log, LogError};
use tftrail_store::http::{Client, HttpStore, TOKEN_ENV};
use tftrail_store::StoreError;

use crate::context::{self, KeySource, TrustedKey};
use crate::error::CliError;

/// The largest JSON request the server takes by default (`max_body_bytes`).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;
/// The most records one request may carry by default (`max_records_per_request`).
pub const MAX_REQUEST_RECORDS: usize = 10_000;

/// A store error as the user sees it, with a hint when a server refused or cannot be reached.
pub fn store_error(e: StoreError) -> CliError {
    let hint = match &e {
        StoreError::Denied {
            status: 401, op, ..
        } => Some(
            if std::env::var_os(TOKEN_ENV).is_some_and(|t| !t.is_empty()) {
                format!(
                "the token in {TOKEN_ENV} is unknown, revoked or expired: set {TOKEN_ENV} to a \
                 token from `tftrail token create`"
            )
            } else if *op == "write" {
                format!("set {TOKEN_ENV} to a writer's token from `tftrail token create`")
            } else {
                format!("set {TOKEN_ENV} to a token from `tftrail token create`")
            },
        ),
        StoreError::Denied { op, .. } => Some(if *op == "write" {
            "the token's role cannot append records: use a writer's token (`tftrail token create --role writer`)".to_string()
        } else {
            "the token's role cannot read the log: use a reader's, auditor's or writer's token"
                .to_string()
        }),
        StoreError::Transient { message, .. } if message.contains("tftrail server") => Some(
            "check that the server is running and that --server / TFTRAIL_SERVER names it".into(),
        ),
        _ => None,
    };
    let denied = matches!(e, StoreError::Denied { .. });
    let mut c = CliError::from(e);
    if denied {
        // Not damage and not bad input: the credential is refused (exit 3, 123 in `run`).
        c.code = crate::error::EXIT_FAILURE;
    }
    match hint {
        Some(h) => c.hint(h),
        None => c,
    }
}

/// A log error as the user sees it ([`store_error`] for the store's).
pub fn log_error(e: LogError) -> CliError {
    match e {
        LogError::Store(
            e @ (StoreError::Denied { .. }
            | StoreError::Transient { .. }
            | StoreError::Backend { .. }),
        ) => store_error(e),
        e => e.into(),
    }
}

/// Asks the server at `location` for its key (`GET /v1/key`), trusts it and remembers it for
/// that URL, and says so on stderr.
pub fn trust_on_first_use(location: &str) -> Result<TrustedKey, CliError> {
    let client = Client::new(location).map_err(store_error)?;
    let v = client.get_json("v1/key").map_err(store_error)?;
    let text = v.get("key").and_then(Value::as_str).ok_or_else(|| {
        CliError::failure(format!(
            "the answer of {location}/v1/key has no \"key\": is this a tftrail server?"
        ))
    })?;
    let key = VerifierKey::parse(text).map_err(|e| {
        CliError::failure(format!(
            "the server at {location} gave an invalid verifier key {text:?}: {e}"
        ))
    })?;
    let path = context::remember_server_key(location, &key)?;
    eprintln!(
        "trusting the server's key {} on first use; pass --key to pin it",
        key.as_str()
    );
    Ok(TrustedKey {
        key,
        source: KeySource::Server(path),
    })
}

/// A server to write through: its client and the key its checkpoints must carry.
pub struct Server {
    client: Client,
    trusted: TrustedKey,
}

/// What `POST /v1/records` answered, checked against the trusted key.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    /// Index of the first record.
    pub first: u64,
    /// How many records.
    pub count: u64,
    /// Tree size of the checkpoint that covers them.
    pub size: u64,
}

impl Server {
    /// The server at `url`, trusting `--key` / TFTRAIL_KEY / the remembered key, else its own
    /// key on first use. Sends no request when a key is known.
    pub fn connect(url: &str, key_flag: Option<&str>) -> Result<Server, CliError> {
        let client = Client::new(url).map_err(store_error)?;
        let trusted = context::trusted_key(key_flag, url)?;
        Ok(Server { client, trusted })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// The server's log, read through the same connections, with its checkpoint checked
    /// against the trusted key.
    pub fn open_log(&self) -> Result<Log, CliError> {
        let store = HttpStore::with_client(self.client.clone());
        let log = Log::open(Box::new(store), self.trusted.key.clone()).map_err(log_error)?;
        log.head()
            .map_err(|e| context::key_mismatch(e, &self.trusted, self.url(), false))?;
        Ok(log)
    }

    /// Checks that the credential may append (`GET /v1/whoami`), so that a command whose
    /// records would be refused does not start.
    pub fn check_can_write(&self) -> Result<(), CliError> {
        let path = "v1/whoami";
        let r = self.client.get(path).map_err(store_error)?;
        if !r.is_success() {
            return Err(store_error(self.client.error("read", path, &r)));
        }
        let v = r.json("read", path).map_err(store_error)?;
        if v.pointer("/may/write").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        let role = v.get("role").and_then(Value::as_str).unwrap_or("?");
        let label = v.get("label").and_then(Value::as_str).unwrap_or("?");
        Err(CliError::failure(format!(
            "the server at {} knows this credential as {label}, role {role}, which cannot append records",
            self.url()
        ))
        .hint("use a writer token (`tftrail token create --role writer`) in TFTRAIL_TOKEN"))
    }

    /// Stores a blob (`PUT /v1/blobs/<sha256>`); the server checks its hash.
    pub fn put_blob(&self, data: &[u8]) -> Result<(), CliError> {
        let hex = hex::encode(Sha256::digest(data));
        let path = format!("v1/blobs/{hex}");
        let r = self.client.put(&path, data.to_vec()).map_err(store_error)?;
        if !r.is_success() {
            return Err(store_error(self.client.error("write", &path, &r)));
        }
        Ok(())
    }

    /// Appends the records of one request body (`{"records": […]}`, built with
    /// [`RequestBuilder`]) atomically, and checks that the answer's checkpoint is signed by
    /// the trusted key and covers them.
    pub fn append(&self, body: Vec<u8>, count: usize) -> Result<Appended, CliError> {
        let path = "v1/records";
        let r = self.client.post_json(path, body).map_err(store_error)?;
        if !r.is_success() {
            return Err(store_error(self.client.error("write", path, &r)));
        }
        let v = r.json("write", path).map_err(store_error)?;
        let num = |k: &str| v.get(k).and_then(Value::as_u64);
        let (Some(first), Some(n), Some(size), Some(note)) = (
            num("first"),
            num("count"),
            num("size"),
            v.get("checkpoint").and_then(Value::as_str),
        ) else {
            return Err(CliError::failure(format!(
                "the answer of {}/{path} lacks first, count, size or checkpoint: {v}",
                self.url()
            )));
        };
        let wrong = |why: String| {
            CliError::integrity(format!(
                "the server at {} acknowledged records {first}..{} but {why}",
                self.url(),
                first + n.max(1) - 1
            ))
            .hint("the records may be stored; run `tftrail verify --server …` and keep its report")
        };
        if n != count as u64 {
            return Err(wrong(format!(
                "counted {n} records where {count} were sent"
            )));
        }
        let cp = self
            .trusted
            .key
            .open_checkpoint(note.as_bytes())
            .map_err(|e| {
                wrong(format!(
                    "its checkpoint does not verify with {}: {e}",
                    self.trusted.source.describe()
                ))
            })?;
        if cp.size != size || first + n > size {
            return Err(wrong(format!(
                "its checkpoint (size {}) does not cover them",
                cp.size
            )));
        }
        Ok(Appended {
            first,
            count: n,
            size,
        })
    }
}

/// One record of a `POST /v1/records` request, as JSON.
pub fn record_json(kind: &str, payload: &Value, blobs: &[BlobRef], actor: &Actor) -> Vec<u8> {
    let mut r = serde_json::json!({"kind": kind, "payload": payload, "actor": actor});
    if !blobs.is_empty() {
        r["blobs"] = serde_json::to_value(blobs).expect("blob references serialise");
    }
    serde_json::to_vec(&r).expect("JSON values serialise")
}

/// Groups records into request bodies of at most [`MAX_REQUEST_RECORDS`] records and
/// [`MAX_REQUEST_BYTES`] bytes.
#[derive(Default)]
pub struct RequestBuilder {
    body: Vec<u8>,
    count: usize,
}

impl RequestBuilder {
    const HEAD: &'static [u8] = b"{\"records\":[";
    const TAIL: &'static [u8] = b"]}";

    /// Whether `record` (from [`record_json`]) still fits in this request.
    pub fn fits(&self, record: &[u8]) -> bool {
        self.count == 0
            || (self.count < MAX_REQUEST_RECORDS
                && self.body.len() + 1 + record.len() + Self::TAIL.len() <= MAX_REQUEST_BYTES)
    }

    /// Adds a record; check [`RequestBuilder::fits`] first.
    pub fn push(&mut self, record: &[u8]) {
        if self.count == 0 {
            self.body.extend_from_slice(Self::HEAD);
        } else {
            self.body.push(b',');
        }
        self.body.extend_from_slice(record);
        self.count += 1;
    }

    /// The request body and its record count; the builder is empty again.
    pub fn take(&mut self) -> (Vec<u8>, usize) {
        let mut body = std::mem::take(&mut self.body);
        body.extend_from_slice(Self::TAIL);
        (body, std::mem::take(&mut self.count))
    }
}

/// What a tftrail server answered to `GET /state/<name>` (docs/API.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateAnswer {
    /// 200: the state's bytes, exactly as written.
    State(Vec<u8>),
    /// 204: no state (never written, or deleted).
    NoState,
    /// 500: the server would not serve the bytes it holds (their SHA-256 is not the one
    /// recorded for the version), with its message.
    Altered(String),
}

/// The server's base URL and the request path of an `http` backend address on a tftrail
/// server: `https://h/base/state/team/prod` → (`https://h/base`, `state/team/prod`). `None`
/// when the address names no state ([`tftrail_index::state_name_from_address`]).
pub fn split_state_address(address: &str) -> Option<(String, String)> {
    let name = tftrail_index::state_name_from_address(address)?;
    let address = address.trim().split(['?', '#']).next().unwrap_or("");
    let authority = address.find("://")? + 3;
    let path_start = authority + address[authority..].find('/')?;
    let at = path_start + address[path_start..].find("/state/")?;
    Some((address[..at].to_string(), format!("state/{name}")))
}

/// Reads the state at `address` (an `http` backend address on a tftrail server) as Terraform
/// would, with `credential` (a token or OIDC ID token) as the password.
pub fn get_state(address: &str, credential: Option<String>) -> Result<StateAnswer, CliError> {
    let (base, path) = split_state_address(address).ok_or_else(|| {
        CliError::usage(format!(
            "{address} is not a tftrail server's state address (https://HOST/state/NAME)"
        ))
    })?;
    let client = Client::with_token(&base, credential).map_err(store_error)?;
    let r = client.get(&path).map_err(store_error)?;
    state_answer(address, client.has_token(), &r)
}

/// [`get_state`]'s reading of the server's answer.
fn state_answer(
    address: &str,
    had_credential: bool,
    r: &tftrail_store::http::Response,
) -> Result<StateAnswer, CliError> {
    let said = r.error_message();
    match r.status {
        200 => Ok(StateAnswer::State(r.body.clone())),
        204 => Ok(StateAnswer::NoState),
        500 => Ok(StateAnswer::Altered(said)),
        401 => Err(CliError::failure(format!(
            "the tftrail server refused the credential for {address} ({said})"
        ))
        .hint(if had_credential {
            "the password (TF_HTTP_PASSWORD, the backend's `password`, else TFTRAIL_TOKEN) is not \
             a token or ID token the server accepts"
        } else {
            "set TF_HTTP_PASSWORD (or TFTRAIL_TOKEN) to a tftrail token or an OIDC ID token, as \
             for Terraform"
        })),
        404 => Err(CliError::failure(format!(
            "{address} answered 404 ({said}): is it the address of a state on a tftrail server?"
        ))),
        _ => Err(CliError::failure(format!(
            "reading the state at {address} failed: {said}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_stay_under_both_limits() {
        let actor = Actor {
            authenticated: None,
            user: "u".into(),
            host: "h".into(),
            ci: None,
        };
        let small = record_json("event", &serde_json::json!({"n": 1}), &[], &actor);
        let mut b = RequestBuilder::default();
        let mut bodies = Vec::new();
        for _ in 0..25_000 {
            if !b.fits(&small) {
                bodies.push(b.take());
            }
            b.push(&small);
        }
        bodies.push(b.take());
        let counts: Vec<usize> = bodies.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [10_000, 10_000, 5_000]);
        for (body, n) in &bodies {
            let v: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["records"].as_array().unwrap().len(), *n);
            assert_eq!(v["records"][0]["actor"]["user"], "u");
        }

        let big = record_json(
            "event",
            &serde_json::json!({"pad": "x".repeat(60_000)}),
            &[],
            &actor,
        );
        let mut b = RequestBuilder::default();
        let mut sizes = Vec::new();
        for _ in 0..150 {
            if !b.fits(&big) {
                sizes.push(b.take().0.len());
            }
            b.push(&big);
        }
        sizes.push(b.take().0.len());
        assert!(sizes.len() == 3, "{sizes:?}");
        assert!(sizes.iter().all(|&s| s <= MAX_REQUEST_BYTES), "{sizes:?}");
        assert!(sizes[0] > MAX_REQUEST_BYTES - big.len() - 16, "{sizes:?}");
    }

    #[test]
    fn state_addresses_split_into_server_and_path() {
        let split = |a: &str| split_state_address(a);
        let pair = |b: &str, p: &str| Some((b.to_string(), p.to_string()));
        assert_eq!(
            split("https://tftrail.example/state/team/prod"),
            pair("https://tftrail.example", "state/team/prod")
        );
        assert_eq!(
            split("http://127.0.0.1:8080/base/state/a?x=1"),
            pair("http://127.0.0.1:8080/base", "state/a")
        );
        assert_eq!(split("https://h/state/../x"), None);
        assert_eq!(split("https://h/v1/x"), None);
        assert!(get_state("https://h/nothing", None)
            .unwrap_err()
            .message
            .contains("not a tftrail server's state address"));
    }

    #[test]
    fn state_answers() {
        use tftrail_store::http::Response;
        let a = "https://h/state/x";
        let r = |status: u16, body: &str| Response {
            status,
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            state_answer(a, true, &r(200, "{}")).unwrap(),
            StateAnswer::State(b"{}".to_vec())
        );
        assert_eq!(
            state_answer(a, true, &r(204, "")).unwrap(),
            StateAnswer::NoState
        );
        assert_eq!(
            state_answer(
                a,
                true,
                &r(500, r#"{"error":"the state store was altered: x"}"#)
            )
            .unwrap(),
            StateAnswer::Altered("the state store was altered: x".into())
        );
        let e = state_answer(a, false, &r(401, r#"{"error":"no credential"}"#)).unwrap_err();
        assert_eq!(e.code, crate::error::EXIT_FAILURE);
        assert!(e.message.contains("no credential"), "{}", e.message);
        assert!(e.hint.unwrap().contains("set TF_HTTP_PASSWORD"));
        let e = state_answer(a, true, &r(401, "")).unwrap_err();
        assert!(e.hint.unwrap().contains("is not a token"));
        let e = state_answer(a, true, &r(404, "")).unwrap_err();
        assert!(e.message.contains("404"), "{}", e.message);
        let e = state_answer(a, true, &r(503, r#"{"error":"busy"}"#)).unwrap_err();
        assert!(e.message.contains("busy"), "{}", e.message);
    }
}
