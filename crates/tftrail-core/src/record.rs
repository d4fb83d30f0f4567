//! The audit record: one log entry, RFC 8785 canonical JSON, schema-versioned.
//!
//! ```json
//! {"actor":{"host":"ci-7","user":"alice"},"blobs":[{"name":"plan.json","sha256":"…","size":81234}],
//!  "kind":"terraform.plan","payload":{…},"time":"2026-11-26T05:00:00.123Z","v":1}
//! ```
//! `v` is the schema version; readers reject versions they do not know. `kind` names what
//! happened (`[a-z0-9][a-z0-9._-]*`, at most 64 characters). `time` is UTC, RFC 3339 with `Z`,
//! as asserted by the writer. `actor` is who ran tftrail: `user`, `host` and `ci` as the client
//! saw them (self-asserted), and, in records a team server wrote, `authenticated`: who the
//! server authenticated (below). `payload` is any JSON object. `blobs` reference
//! content-addressed artifacts stored beside the log; verification checks each one's SHA-256
//! and size.
//!
//! ## `actor.authenticated`
//!
//! A JSON object, omitted when absent (never `null`), written only by the team server
//! (`tftrail-server`), which refuses requests that set it themselves. Canonical order puts it
//! first: `{"authenticated":{…},"ci":{…},"host":"…","user":"…"}`. The shapes it writes:
//!
//! - a bearer token: `{"by":"token","name":"ci-deploy","role":"writer","token":"<16 hex>"}`,
//!   `token` the first 16 hex digits of the token's SHA-256 fingerprint (never the secret);
//! - an OIDC identity token: `{"by":"oidc","issuer":"…","subject":"…","repository":"…",
//!   "ref":"…","workflow":"…","run_id":"…","actor":"…","role":"writer"}`, with only the claims
//!   the token held (`issuer`, `subject` and `role` always);
//! - the server's own records (`server.access.denied` …): `{"by":"server"}`.
//!
//! Readers accept any object there (as they do any value in `ci`); [`authenticated_label`]
//! reads the shapes above for listings.

use std::borrow::Cow;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::canonical::{Fail, Reject, Scanner, Str};
use crate::MAX_ENTRY_SIZE;

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Problems with a record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Not a valid kind.
    #[error(
        "invalid record kind {0:?}: use lower-case letters, digits, '.', '_' or '-' (at most 64)"
    )]
    BadKind(String),
    /// Not a UTC RFC 3339 time.
    #[error("invalid record time {0:?}: expected UTC RFC 3339 like 2026-01-31T12:00:00Z")]
    BadTime(String),
    /// The payload is not an object.
    #[error("payload must be a JSON object, got {0}")]
    PayloadNotObject(&'static str),
    /// `actor.authenticated` is not an object.
    #[error("actor.authenticated must be a JSON object, got {0}")]
    AuthenticatedNotObject(&'static str),
    /// The encoded record is too large for an entry.
    #[error(
        "record is {0} bytes; a log entry holds at most 65535 (store large artifacts as blobs)"
    )]
    TooLarge(usize),
    /// The entry is not a record.
    #[error("entry is not a valid record: {0}")]
    Malformed(String),
    /// The entry is a record but not in canonical form.
    #[error("entry is not in canonical (RFC 8785) form")]
    NotCanonical,
    /// Unknown schema version.
    #[error("record schema version {0} is not supported (this tftrail reads version 1)")]
    UnknownVersion(u64),
    /// A bad blob reference.
    #[error("invalid blob reference: {0}")]
    BadBlob(String),
    /// Containers nested deeper than readers accept.
    #[error("{what} nests {depth} levels deep; a record holds at most {max} there (readers stop at {} levels in all)", crate::canonical::MAX_DEPTH)]
    TooDeep {
        /// The part of the record (`payload`, `actor.ci`, `actor.authenticated`).
        what: &'static str,
        /// Its nesting depth (an object or array counts as 1).
        depth: usize,
        /// The most allowed there.
        max: usize,
    },
}

/// Nesting depth of a JSON value: 0 for a scalar, 1 for a flat object or array.
fn nesting(v: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            serde_json::Value::Object(m) => stack.extend(m.values().map(|c| (c, d + 1))),
            serde_json::Value::Array(a) => stack.extend(a.iter().map(|c| (c, d + 1))),
            _ => continue,
        }
        deepest = deepest.max(d);
    }
    deepest
}

/// Who made the record: as the writer saw it (`user`, `host`, `ci`) and, when a team server
/// wrote it, as that server authenticated the caller (`authenticated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Who the team server authenticated (a JSON object, see the module documentation), when
    /// a server wrote the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<serde_json::Value>,
    /// OS user name.
    pub user: String,
    /// Host name.
    pub host: String,
    /// CI identity from the environment (self-asserted), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<serde_json::Value>,
}

/// What listings show of an `actor.authenticated` object: how the caller was authenticated,
/// the name to show, its role and (for OIDC) the issuer. Read by [`authenticated_label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedLabel<'a> {
    /// `token`, `oidc`, `server`, or whatever else a server wrote in `by`.
    pub by: &'a str,
    /// The token's name (else its fingerprint), the OIDC subject, or `server`.
    pub label: &'a str,
    /// The role the server granted, when recorded.
    pub role: Option<&'a str>,
    /// The OIDC issuer, when recorded.
    pub issuer: Option<&'a str>,
}

/// The label of an `actor.authenticated` object (see the module documentation); `None` when it
/// is not an object with a string `by` (or a token or OIDC identity without a name, fingerprint
/// or subject), which listings then show as unlabelled.
pub fn authenticated_label(v: &serde_json::Value) -> Option<AuthenticatedLabel<'_>> {
    let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
    let by = text("by")?;
    let label = match by {
        "token" => text("name").or_else(|| text("token"))?,
        "oidc" => text("subject")?,
        "server" => "server",
        other => text("name").or_else(|| text("subject")).unwrap_or(other),
    };
    Some(AuthenticatedLabel {
        by,
        label,
        role: text("role"),
        issuer: text("issuer"),
    })
}

/// A reference to a content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    /// What it is (`plan.json`, `output.txt` …).
    pub name: String,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Schema version.
    pub v: u32,
    /// What happened.
    pub kind: String,
    /// When (UTC, RFC 3339).
    pub time: String,
    /// Who.
    pub actor: Actor,
    /// The details.
    pub payload: serde_json::Value,
    /// Artifacts stored beside the log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<BlobRef>,
}

/// Checks a record kind.
pub fn validate_kind(kind: &str) -> Result<(), RecordError> {
    if kind_ok(kind.as_bytes()) {
        Ok(())
    } else {
        Err(RecordError::BadKind(kind.to_string()))
    }
}

/// Whether `b` is a valid kind: `[a-z0-9][a-z0-9._-]*`, at most 64 bytes.
fn kind_ok(b: &[u8]) -> bool {
    let first = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 64
        && first(b[0])
        && b.iter()
            .all(|&c| first(c) | (c == b'.') | (c == b'_') | (c == b'-'))
}

/// Checks `YYYY-MM-DDTHH:MM:SS[.f+]Z`.
pub fn validate_time(t: &str) -> Result<(), RecordError> {
    if time_ok(t.as_bytes()) {
        Ok(())
    } else {
        Err(RecordError::BadTime(t.to_string()))
    }
}

/// Whether `b` is `YYYY-MM-DDTHH:MM:SS[.f+]Z` with a month, day, hour, minute and second in
/// range.
fn time_ok(b: &[u8]) -> bool {
    /// For a pattern of 8 bytes (`d` for a digit, anything else for itself): the mask of its
    /// digit bytes, the mask of its other bytes and their values, as little-endian words.
    const fn masks(p: &[u8; 8]) -> [u64; 3] {
        let (mut digits, mut fixed, mut value) = (0, 0, 0);
        let mut i = 0;
        while i < 8 {
            if p[i] == b'd' {
                digits |= 0xff << (8 * i);
            } else {
                fixed |= 0xff << (8 * i);
                value |= (p[i] as u64) << (8 * i);
            }
            i += 1;
        }
        [digits, fixed, value]
    }
    /// Whether a little-endian word matches a pattern's masks: a digit is 0x30..=0x39 (high
    /// half 3; low half at most 9, so adding 6 does not carry out of it).
    fn matches(w: u64, [digits, fixed, value]: [u64; 3]) -> bool {
        const ONES: u64 = 0x0101_0101_0101_0101;
        (w & fixed) == value
            && (w & digits & (ONES * 0xf0)) == (digits & (ONES * 0x30))
            && (((w & digits & (ONES * 0x0f)) + (digits & (ONES * 0x06))) & (ONES * 0xf0)) == 0
    }
    const HEAD: [[u64; 3]; 3] = [
        masks(b"dddd-dd-"),
        masks(b"ddTdd:dd"),
        // Bytes 11..19, overlapping the word before.
        masks(b"dd:dd:dd"),
    ];
    let word = |i: usize| {
        b.get(i..i + 8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8")))
    };
    let (Some(w0), Some(w1), Some(w2)) = (word(0), word(8), word(11)) else {
        return false;
    };
    let fraction = match &b[19..] {
        [b'Z'] => true,
        [b'.', digits @ .., b'Z'] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    let num = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    matches(w0, HEAD[0])
        && matches(w1, HEAD[1])
        && matches(w2, HEAD[2])
        && fraction
        && (1..=12).contains(&num(5))
        && (1..=31).contains(&num(8))
        && num(11) < 24
        && num(14) < 60
        && num(17) < 61
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl Record {
    /// Builds a record, validating every field.
    pub fn new(
        kind: &str,
        time: &str,
        actor: Actor,
        payload: serde_json::Value,
        blobs: Vec<BlobRef>,
    ) -> Result<Self, RecordError> {
        let r = Record {
            v: SCHEMA_VERSION,
            kind: kind.to_string(),
            time: time.to_string(),
            actor,
            payload,
            blobs,
        };
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), RecordError> {
        if u64::from(self.v) != u64::from(SCHEMA_VERSION) {
            return Err(RecordError::UnknownVersion(self.v.into()));
        }
        validate_kind(&self.kind)?;
        validate_time(&self.time)?;
        if !self.payload.is_object() {
            return Err(RecordError::PayloadNotObject(json_type(&self.payload)));
        }
        if let Some(a) = self.actor.authenticated.as_ref().filter(|a| !a.is_object()) {
            return Err(RecordError::AuthenticatedNotObject(json_type(a)));
        }
        // The record is at depth 1 of the entry, the payload at 2 and the actor's CI identity
        // and authenticated identity at 3: deeper than the readers' limit would store an entry
        // no reader accepts.
        for (what, v, above) in [
            ("payload", Some(&self.payload), 1),
            ("actor.authenticated", self.actor.authenticated.as_ref(), 2),
            ("actor.ci", self.actor.ci.as_ref(), 2),
        ] {
            let max = crate::canonical::MAX_DEPTH - above;
            if let Some(depth) = v.map(nesting).filter(|&d| d > max) {
                return Err(RecordError::TooDeep { what, depth, max });
            }
        }
        for b in &self.blobs {
            if b.sha256.len() != 64
                || !b
                    .sha256
                    .bytes()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(RecordError::BadBlob(format!("sha256 {:?}", b.sha256)));
            }
            if b.name.is_empty() {
                return Err(RecordError::BadBlob("empty name".into()));
            }
        }
        Ok(())
    }

    /// Encodes the record as a log entry (canonical JSON), refusing oversized ones.
    pub fn to_entry(&self) -> Result<Vec<u8>, RecordError> {
        let bytes = serde_json_canonicalizer::to_vec(self)
            .map_err(|e| RecordError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_ENTRY_SIZE {
            return Err(RecordError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Decodes and validates a log entry, including that it is in canonical form.
    ///
    /// Accepts exactly the entries [`RecordView::from_entry`] accepts, with the same errors.
    pub fn from_entry(entry: &[u8]) -> Result<Self, RecordError> {
        match decode_fast(entry) {
            // A canonical, valid record: one plain parse builds the struct.
            Ok(_) => {
                serde_json::from_slice(entry).map_err(|e| RecordError::Malformed(e.to_string()))
            }
            Err(_) => decode_reference(entry),
        }
    }
}

/// The reference decoder: one parse into the strict struct (unknown fields rejected), the
/// checks of [`Record::validate`], and one canonical re-encoding compared with the stored
/// bytes (canonical form, no lost fields). About 10 µs for a 1 KiB record; the single-pass
/// check ([`decode_fast`]) accepts the same entries far faster, and this decoder runs only
/// for the entries it refuses, to say why exactly as it always has.
fn decode_reference(entry: &[u8]) -> Result<Record, RecordError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        v: Option<u64>,
    }
    let rec: Record = match serde_json::from_slice(entry) {
        Ok(r) => r,
        Err(e) => {
            if let Ok(VersionOnly { v: Some(v) }) = serde_json::from_slice(entry) {
                if v != u64::from(SCHEMA_VERSION) {
                    return Err(RecordError::UnknownVersion(v));
                }
            }
            return Err(RecordError::Malformed(e.to_string()));
        }
    };
    rec.validate()?;
    let canonical = serde_json_canonicalizer::to_vec(&rec)
        .map_err(|e| RecordError::Malformed(e.to_string()))?;
    if canonical != entry {
        return Err(RecordError::NotCanonical);
    }
    Ok(rec)
}

/// The entries of records that share kind, time, actor and blobs and differ only in their
/// payload, built straight from the payload's JSON text when that text is already canonical:
/// importing many records (`tftrail append --batch`) then costs one check of the text instead
/// of parsing it into values and writing them out again.
#[derive(Debug, Clone)]
pub struct EntryTemplate {
    /// The entry up to the payload (`{"actor":…,"kind":…,"payload":`).
    prefix: Vec<u8>,
    /// The entry after the payload (`,"time":…,"v":1}`).
    suffix: Vec<u8>,
}

impl EntryTemplate {
    /// The template of records with these fields (validated as [`Record::new`] does).
    pub fn new(
        kind: &str,
        time: &str,
        actor: Actor,
        blobs: Vec<BlobRef>,
    ) -> Result<Self, RecordError> {
        let payload = serde_json::Value::Object(serde_json::Map::new());
        let entry = Record::new(kind, time, actor, payload, blobs)?.to_entry()?;
        // Only `time` (a string, whose quotes are escaped) and `v` follow the payload, so the
        // last occurrence is the payload's.
        const MARK: &[u8] = b",\"payload\":{}";
        let at = entry
            .windows(MARK.len())
            .rposition(|w| w == MARK)
            .ok_or_else(|| RecordError::Malformed("no payload in the encoded record".into()))?
            + MARK.len()
            - 2;
        Ok(EntryTemplate {
            prefix: entry[..at].to_vec(),
            suffix: entry[at + 2..].to_vec(),
        })
    }

    /// The entry whose payload is the JSON object `text`, when `text` is in the canonical
    /// form (RFC 8785, no whitespace) and the entry fits [`MAX_ENTRY_SIZE`]: byte for byte
    /// what [`Record::new`] with the parsed payload and [`Record::to_entry`] give. `None` for
    /// any other text, valid or not: parse it and use [`Record::new`], which also says what is
    /// wrong with it.
    pub fn canonical_entry(&self, text: &[u8]) -> Option<Vec<u8>> {
        if text.first() != Some(&b'{') {
            return None;
        }
        let len = self.prefix.len() + text.len() + self.suffix.len();
        if len > MAX_ENTRY_SIZE {
            return None;
        }
        // The payload sits at depth 2 of the entry (see `scan_fields`).
        let mut sc = Scanner::new(text);
        if sc.object(2).is_err() || !sc.at_end() {
            return None;
        }
        let mut entry = Vec::with_capacity(len);
        entry.extend_from_slice(&self.prefix);
        entry.extend_from_slice(text);
        entry.extend_from_slice(&self.suffix);
        Some(entry)
    }
}

/// A record read in place from its entry: what verification and listings need, borrowed from
/// the entry bytes (strings holding escapes are decoded into owned ones), the payload, the
/// CI identity and the authenticated identity left as canonical JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordView<'a> {
    /// What happened.
    pub kind: Cow<'a, str>,
    /// When (UTC, RFC 3339).
    pub time: Cow<'a, str>,
    /// Who.
    pub actor: ActorView<'a>,
    /// Artifacts stored beside the log.
    pub blobs: Vec<BlobView<'a>>,
    /// The details (see [`RecordView::payload`]): kept as bytes, checked to be UTF-8, so that
    /// reading a record need not check them twice.
    payload: Cow<'a, [u8]>,
}

/// [`Actor`], read in place.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorView<'a> {
    /// OS user name.
    pub user: Cow<'a, str>,
    /// Host name.
    pub host: Cow<'a, str>,
    /// CI identity, as canonical JSON text, when any.
    pub ci: Option<Cow<'a, str>>,
    /// Who the team server authenticated: a JSON object as canonical JSON text, when any.
    pub authenticated: Option<Cow<'a, str>>,
}

/// [`BlobRef`], read in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobView<'a> {
    /// What it is.
    pub name: Cow<'a, str>,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: Cow<'a, str>,
    /// Its size in bytes.
    pub size: u64,
}

impl BlobView<'_> {
    /// An owned [`BlobRef`].
    pub fn to_blob_ref(&self) -> BlobRef {
        BlobRef {
            name: self.name.to_string(),
            sha256: self.sha256.to_string(),
            size: self.size,
        }
    }
}

impl<'a> RecordView<'a> {
    /// Decodes and validates a log entry, including that it is in canonical form: accepts
    /// exactly the entries [`Record::from_entry`] accepts, with the same errors, without
    /// building the payload.
    ///
    /// One pass over the bytes checks the canonical form (RFC 8785 as
    /// `serde_json_canonicalizer` writes it) and the schema together; an entry it refuses goes
    /// through the reference decoder, which reports why (and would accept it, were the single
    /// pass ever stricter than the reference).
    pub fn from_entry(entry: &'a [u8]) -> Result<Self, RecordError> {
        match decode_fast(entry) {
            Ok(view) => Ok(view),
            Err(_) => decode_reference(entry).and_then(|r| RecordView::from_record(&r)),
        }
    }

    /// The view of an owned record (strings copied, payload and CI identity encoded).
    fn from_record(r: &Record) -> Result<RecordView<'static>, RecordError> {
        let json = |v: &serde_json::Value| {
            serde_json_canonicalizer::to_string(v)
                .map_err(|e| RecordError::Malformed(e.to_string()))
        };
        Ok(RecordView {
            kind: Cow::Owned(r.kind.clone()),
            time: Cow::Owned(r.time.clone()),
            actor: ActorView {
                user: Cow::Owned(r.actor.user.clone()),
                host: Cow::Owned(r.actor.host.clone()),
                ci: r.actor.ci.as_ref().map(json).transpose()?.map(Cow::Owned),
                authenticated: r
                    .actor
                    .authenticated
                    .as_ref()
                    .map(json)
                    .transpose()?
                    .map(Cow::Owned),
            },
            payload: Cow::Owned(json(&r.payload)?.into_bytes()),
            blobs: r
                .blobs
                .iter()
                .map(|b| BlobView {
                    name: Cow::Owned(b.name.clone()),
                    sha256: Cow::Owned(b.sha256.clone()),
                    size: b.size,
                })
                .collect(),
        })
    }

    /// The details: a JSON object, as canonical JSON text.
    pub fn payload(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("the decoder checked that the entry is UTF-8")
    }

    /// The blob references, owned.
    pub fn blob_refs(&self) -> Vec<BlobRef> {
        self.blobs.iter().map(BlobView::to_blob_ref).collect()
    }
}

/// Checks a log entry exactly as [`Record::from_entry`] and [`RecordView::from_entry`] do (the
/// same entries accepted, the same errors) and returns only its blob references: what full
/// verification needs, without building the rest of the record.
pub fn check_entry(entry: &[u8]) -> Result<Vec<BlobRef>, RecordError> {
    let Ok(fields) = scan(entry) else {
        return decode_reference(entry).map(|r| r.blobs);
    };
    let mut blobs = Vec::with_capacity(fields.blobs.len());
    for (name, sha256, size) in &fields.blobs {
        match (name.value(), sha256.value()) {
            (Some(name), Some(sha256)) => blobs.push(BlobRef {
                name: name.into_owned(),
                sha256: sha256.into_owned(),
                size: *size,
            }),
            // Strings the scanner accepted are text: this cannot happen, but if it did the
            // reference decoder would say what is wrong.
            _ => return decode_reference(entry).map(|r| r.blobs),
        }
    }
    Ok(blobs)
}

/// Where the fields of a valid record lie in its entry, as found by [`scan`].
struct Fields<'a> {
    /// The authenticated identity's canonical JSON text (an object), when any.
    authenticated: Option<Range<usize>>,
    /// The CI identity's canonical JSON text, when any.
    ci: Option<Range<usize>>,
    host: Str<'a>,
    user: Str<'a>,
    /// Name, SHA-256 and size of each blob reference.
    blobs: Vec<(Str<'a>, Str<'a>, u64)>,
    kind: Str<'a>,
    /// The payload object's canonical JSON text.
    payload: Range<usize>,
    time: Str<'a>,
}

/// The single pass: the entry must be exactly the canonical encoding of a valid [`Record`]
/// (members in canonical order: `actor`, `blobs` when not empty, `kind`, `payload`, `time`,
/// `v`; in `actor`: `authenticated` when not null (an object), `ci` when not null, `host`,
/// `user`; in a blob: `name`, `sha256`, `size`),
/// and pass [`Record::validate`]. Anything else is refused with a reason (not a
/// [`RecordError`]: the reference decoder says which one).
fn scan(entry: &[u8]) -> Result<Fields<'_>, Reject> {
    let mut sc = Scanner::new(entry);
    scan_fields(&mut sc).map_err(|Fail| sc.why())
}

/// [`scan`], the reason for a failure left in the scanner.
fn scan_fields<'a>(sc: &mut Scanner<'a>) -> Result<Fields<'a>, Fail> {
    // The scanner checks that strings are UTF-8 (and allows only ASCII elsewhere).
    // The record is at depth 1, `actor`, `blobs` and `payload` at depth 2.
    sc.expect(b"{\"actor\":{", "expected {\"actor\":{")?;
    let authenticated = if sc.eat(b"\"authenticated\":") {
        let start = sc.pos;
        if sc.eat(b"null") {
            // `authenticated: None` is omitted, never written as null.
            return Err(sc.reject("authenticated is null"));
        }
        // An object inside the actor (depth 2), so at depth 3.
        sc.object(3)?;
        let authenticated = start..sc.pos;
        sc.expect(b",", "expected ,")?;
        Some(authenticated)
    } else {
        None
    };
    let ci = if sc.eat(b"\"ci\":") {
        let start = sc.pos;
        if sc.eat(b"null") {
            // `ci: None` is omitted, never written as null.
            return Err(sc.reject("ci is null"));
        }
        sc.value(2)?;
        let ci = start..sc.pos;
        sc.expect(b",", "expected ,")?;
        Some(ci)
    } else {
        None
    };
    sc.expect(b"\"host\":", "expected \"host\":")?;
    let host = sc.str()?;
    sc.expect(b",\"user\":", "expected ,\"user\":")?;
    let user = sc.str()?;
    sc.expect(b"}", "expected } after actor")?;
    let mut blobs = Vec::new();
    if sc.eat(b",\"blobs\":[") {
        // Never empty: an empty list is omitted.
        loop {
            sc.expect(b"{\"name\":", "expected {\"name\":")?;
            let name = sc.str()?;
            sc.expect(b",\"sha256\":", "expected ,\"sha256\":")?;
            let sha256 = sc.str()?;
            sc.expect(b",\"size\":", "expected ,\"size\":")?;
            let at = sc.pos;
            let size = sc.number()?;
            let size = match size.iter().all(u8::is_ascii_digit) {
                true => std::str::from_utf8(size)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok()),
                false => None,
            }
            .ok_or_else(|| sc.reject_at(at, "blob size is not a u64"))?;
            sc.expect(b"}", "expected } after blob")?;
            // Record::validate's checks.
            if sha256.escaped
                || sha256.raw.len() != 64
                || !sha256
                    .raw
                    .iter()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(sc.reject_at(at, "bad blob sha256"));
            }
            if name.raw.is_empty() {
                return Err(sc.reject_at(at, "empty blob name"));
            }
            blobs.push((name, sha256, size));
            if !sc.eat(b",") {
                break;
            }
        }
        sc.expect(b"]", "expected ] after blobs")?;
    }
    sc.expect(b",\"kind\":", "expected ,\"kind\":")?;
    let kind = sc.str()?;
    sc.expect(b",\"payload\":", "expected ,\"payload\":")?;
    let payload_start = sc.pos;
    sc.object(2)?;
    let payload = payload_start..sc.pos;
    sc.expect(b",\"time\":", "expected ,\"time\":")?;
    let time = sc.str()?;
    sc.expect(b",\"v\":1}", "expected ,\"v\":1}")?;
    if !sc.at_end() {
        return Err(sc.reject("trailing bytes"));
    }
    // Record::validate's checks, on the text as written: no character a valid kind or time
    // holds is ever escaped, so one holding an escape is not valid.
    if kind.escaped || !kind_ok(kind.raw) {
        return Err(sc.reject_at(0, "bad kind"));
    }
    if time.escaped || !time_ok(time.raw) {
        return Err(sc.reject_at(0, "bad time"));
    }
    Ok(Fields {
        authenticated,
        ci,
        host,
        user,
        blobs,
        kind,
        payload,
        time,
    })
}

/// The single pass ([`scan`]), building the view: strings borrowed from the entry unless they
/// hold escapes.
pub(crate) fn decode_fast(entry: &[u8]) -> Result<RecordView<'_>, Reject> {
    fn text<'a>(s: &Str<'a>) -> Result<Cow<'a, str>, Reject> {
        s.value().ok_or(Reject {
            at: 0,
            what: "invalid UTF-8",
        })
    }
    let f = scan(entry)?;
    let text_at = |r: Range<usize>| -> Result<_, Reject> {
        std::str::from_utf8(&entry[r.clone()]).map_err(|_| Reject {
            at: r.start,
            what: "invalid UTF-8",
        })
    };
    let blobs = f
        .blobs
        .iter()
        .map(|(name, sha256, size)| {
            Ok(BlobView {
                name: text(name)?,
                sha256: text(sha256)?,
                size: *size,
            })
        })
        .collect::<Result<_, Reject>>()?;
    Ok(RecordView {
        kind: text(&f.kind)?,
        time: text(&f.time)?,
        actor: ActorView {
            user: text(&f.user)?,
            host: text(&f.host)?,
            ci: f.ci.map(text_at).transpose()?.map(Cow::Borrowed),
            authenticated: f.authenticated.map(text_at).transpose()?.map(Cow::Borrowed),
        },
        payload: Cow::Borrowed(&entry[f.payload]),
        blobs,
    })
}

#[cfg(test)]
mod equivalence;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod differential;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn actor() -> Actor {
        Actor {
            authenticated: None,
            user: "alice".into(),
            host: "box".into(),
            ci: None,
        }
    }

    #[test]
    fn payloads_too_deep_for_readers_are_refused() {
        fn deep(n: usize) -> serde_json::Value {
            let mut v = serde_json::json!(1);
            for _ in 0..n {
                v = serde_json::json!({ "a": v });
            }
            v
        }
        let actor = |ci| Actor {
            authenticated: None,
            user: "u".into(),
            host: "h".into(),
            ci,
        };
        let t = "2026-01-01T00:00:00Z";
        // The deepest payload allowed still reads back.
        let e = Record::new("k", t, actor(None), deep(126), vec![])
            .unwrap()
            .to_entry()
            .unwrap();
        assert!(Record::from_entry(&e).is_ok());
        assert!(check_entry(&e).is_ok());
        let err = Record::new("k", t, actor(None), deep(127), vec![]).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::TooDeep {
                    what: "payload",
                    depth: 127,
                    max: 126
                }
            ),
            "{err}"
        );
        let e = Record::new("k", t, actor(Some(deep(125))), deep(1), vec![])
            .unwrap()
            .to_entry()
            .unwrap();
        assert!(Record::from_entry(&e).is_ok());
        let err = Record::new("k", t, actor(Some(deep(126))), deep(1), vec![]).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::TooDeep {
                    what: "actor.ci",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn canonical_roundtrip() {
        let r = Record::new(
            "terraform.plan",
            "2026-11-26T05:00:00.123Z",
            actor(),
            json!({"z": 1, "a": [true, null, "é"], "n": 1.5e3}),
            vec![],
        )
        .unwrap();
        let e = r.to_entry().unwrap();
        let s = String::from_utf8(e.clone()).unwrap();
        assert!(s.starts_with(r#"{"actor":{"host":"box","user":"alice"},"kind":"terraform.plan","payload":{"a":[true,null,"é"],"n":1500,"z":1}"#), "{s}");
        assert_eq!(Record::from_entry(&e).unwrap().to_entry().unwrap(), e);
        // Same content, not canonical.
        let pretty = serde_json::to_vec_pretty(&r).unwrap();
        assert!(matches!(
            Record::from_entry(&pretty),
            Err(RecordError::NotCanonical)
        ));
    }

    #[test]
    fn rejects_bad_fields() {
        assert!(Record::new(
            "Bad Kind",
            "2026-11-26T05:00:00Z",
            actor(),
            json!({}),
            vec![]
        )
        .is_err());
        assert!(Record::new("k", "2026-11-26 05:00:00", actor(), json!({}), vec![]).is_err());
        assert!(Record::new("k", "2026-13-26T05:00:00Z", actor(), json!({}), vec![]).is_err());
        assert!(matches!(
            Record::new("k", "2026-11-26T05:00:00Z", actor(), json!([1]), vec![]),
            Err(RecordError::PayloadNotObject("an array"))
        ));
        let big = Record::new(
            "k",
            "2026-11-26T05:00:00Z",
            actor(),
            json!({"x": "a".repeat(70_000)}),
            vec![],
        )
        .unwrap();
        assert!(matches!(big.to_entry(), Err(RecordError::TooLarge(_))));
        assert!(Record::from_entry(b"{\"v\":2}").is_err());
        assert!(Record::from_entry(b"not json").is_err());
    }

    /// One entry per rejection class, each refused by the single pass (with the reason given)
    /// and reported with the same error as before.
    #[test]
    fn each_rejection_class() {
        let good = Record::new(
            "k",
            "2026-01-01T00:00:00Z",
            actor(),
            json!({"a": 1}),
            vec![],
        )
        .unwrap()
        .to_entry()
        .unwrap();
        let good = String::from_utf8(good).unwrap();
        assert!(decode_fast(good.as_bytes()).is_ok());
        let sha = "ab".repeat(32);
        let cases: Vec<(String, &str, &str)> = vec![
            // (entry, variant, what the single pass says)
            ("not json".into(), "Malformed", "expected {\"actor\":{"),
            (
                good.replace(r#""v":1"#, r#""v":1,"w":2"#),
                "Malformed",
                "expected ,\"v\":1}",
            ),
            (
                good.replace(r#""v":1"#, r#""v":"1""#),
                "Malformed",
                "expected ,\"v\":1}",
            ),
            (
                good.replace(r#""host":"box","#, ""),
                "Malformed",
                "expected \"host\":",
            ),
            (
                good.replace("\"box\"", "\"b\\x\""),
                "Malformed",
                "escape not in canonical form",
            ),
            (
                good.replace("box", "b\u{1}x"),
                "Malformed",
                "raw control character in a string",
            ),
            (
                good.replace(r#""a":1"#, r#""a":1e400"#),
                "Malformed",
                "number not in canonical form",
            ),
            (
                good.replace(r#""v":1"#, r#""v":2"#),
                "UnknownVersion",
                "expected ,\"v\":1}",
            ),
            (
                good.replace(r#""v":1"#, r#""v":4294967296"#),
                "UnknownVersion",
                "expected ,\"v\":1}",
            ),
            (
                good.replace(r#""kind":"k""#, r#""kind":"K""#),
                "BadKind",
                "bad kind",
            ),
            (
                good.replace("2026-01-01", "2026-13-01"),
                "BadTime",
                "bad time",
            ),
            (
                good.replace(r#"{"a":1}"#, "[1]"),
                "PayloadNotObject",
                "expected an object",
            ),
            (
                good.replace(
                    r#","kind""#,
                    &format!(
                        r#","blobs":[{{"name":"p","sha256":"{}","size":1}}],"kind""#,
                        sha.to_uppercase()
                    ),
                ),
                "BadBlob",
                "bad blob sha256",
            ),
            (
                good.replace(
                    r#","kind""#,
                    &format!(r#","blobs":[{{"name":"","sha256":"{sha}","size":1}}],"kind""#),
                ),
                "BadBlob",
                "empty blob name",
            ),
            (
                good.replace(r#""a":1"#, r#""a": 1"#),
                "NotCanonical",
                "expected a value",
            ),
            (
                good.replace(r#""a":1"#, r#""a":1.0"#),
                "NotCanonical",
                "number not in canonical form",
            ),
            (
                good.replace(r#""a":1"#, r#""a":"\u0041""#),
                "NotCanonical",
                "\\u escape not in canonical form",
            ),
            (
                good.replace(r#"{"a":1}"#, r#"{"b":1,"a":1}"#),
                "NotCanonical",
                "object member names not in canonical order",
            ),
            (
                good.replace(r#"{"a":1}"#, r#"{"a":1,"a":1}"#),
                "NotCanonical",
                "object member names not in canonical order",
            ),
            (
                good.replace(r#""host":"#, r#""ci":null,"host":"#),
                "NotCanonical",
                "ci is null",
            ),
            (
                good.replace(r#","kind""#, r#","blobs":[],"kind""#),
                "NotCanonical",
                "expected {\"name\":",
            ),
            (format!("{good} "), "NotCanonical", "trailing bytes"),
        ];
        for (entry, variant, why) in cases {
            let fast = decode_fast(entry.as_bytes()).map(|_| ()).unwrap_err();
            assert_eq!(fast.what, why, "single pass on {entry}");
            let err = Record::from_entry(entry.as_bytes()).unwrap_err();
            let got = format!("{err:?}");
            assert!(
                got.starts_with(variant),
                "{entry}: {variant} expected, got {got}"
            );
            let view_err = RecordView::from_entry(entry.as_bytes()).unwrap_err();
            assert_eq!(view_err.to_string(), err.to_string(), "{entry}");
        }
    }

    fn token() -> serde_json::Value {
        json!({"by": "token", "name": "ci-deploy", "role": "writer", "token": "0123456789abcdef"})
    }

    #[test]
    fn authenticated_round_trips_in_canonical_order() {
        let a = Actor {
            authenticated: Some(token()),
            user: "alice".into(),
            host: "box".into(),
            ci: Some(json!({"system": "github"})),
        };
        let r = Record::new("k", "2026-01-01T00:00:00Z", a, json!({}), vec![]).unwrap();
        let e = r.to_entry().unwrap();
        let s = std::str::from_utf8(&e).unwrap();
        assert!(
            s.starts_with(
                r#"{"actor":{"authenticated":{"by":"token","name":"ci-deploy","role":"writer","token":"0123456789abcdef"},"ci":{"system":"github"},"host":"box","user":"alice"},"kind":"k""#
            ),
            "{s}"
        );
        assert_eq!(Record::from_entry(&e).unwrap(), r);
        assert_eq!(Record::from_entry(&e).unwrap().to_entry().unwrap(), e);
        let v = RecordView::from_entry(&e).unwrap();
        assert_eq!(
            v.actor.authenticated.as_deref(),
            Some(r#"{"by":"token","name":"ci-deploy","role":"writer","token":"0123456789abcdef"}"#)
        );
        assert!(matches!(v.actor.authenticated, Some(Cow::Borrowed(_))));
        assert_eq!(RecordView::from_record(&r).unwrap(), v);
        assert!(check_entry(&e).is_ok());
        // Without `ci` too.
        let a = Actor {
            authenticated: Some(json!({"by": "server"})),
            ..actor()
        };
        let e = Record::new("k", "2026-01-01T00:00:00Z", a, json!({}), vec![])
            .unwrap()
            .to_entry()
            .unwrap();
        assert!(e.starts_with(
            br#"{"actor":{"authenticated":{"by":"server"},"host":"box","user":"alice"},"#
        ));
        assert!(decode_fast(&e).is_ok());
    }

    #[test]
    fn entries_without_authenticated_are_unchanged() {
        // An entry as written before the field existed: decoded by the fast path, the same
        // bytes when encoded again, and no authenticated identity.
        let old = br#"{"actor":{"ci":{"run":7},"host":"box","user":"alice"},"kind":"terraform.plan","payload":{"a":1},"time":"2026-01-01T00:00:00Z","v":1}"#;
        let v = decode_fast(old).unwrap();
        assert_eq!(v.actor.authenticated, None);
        let r = Record::from_entry(old).unwrap();
        assert_eq!(r.actor.authenticated, None);
        assert_eq!(r.to_entry().unwrap(), old.to_vec());
        assert!(!serde_json::to_string(&r.actor)
            .unwrap()
            .contains("authenticated"));
    }

    #[test]
    fn authenticated_must_be_an_object() {
        let t = "2026-01-01T00:00:00Z";
        for (v, got) in [
            (json!(null), "null"),
            (json!("token"), "a string"),
            (json!([token()]), "an array"),
            (json!(1), "a number"),
            (json!(true), "a boolean"),
        ] {
            let a = Actor {
                authenticated: Some(v),
                ..actor()
            };
            let err = Record::new("k", t, a, json!({}), vec![]).unwrap_err();
            assert!(
                matches!(err, RecordError::AuthenticatedNotObject(g) if g == got),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!("actor.authenticated must be a JSON object, got {got}")
            );
        }
        // Entries holding one: null is not canonical (None is omitted), the rest not objects.
        let good = r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#;
        for (auth, variant, why) in [
            ("null", "NotCanonical", "authenticated is null"),
            ("\"token\"", "AuthenticatedNotObject", "expected an object"),
            ("[]", "AuthenticatedNotObject", "expected an object"),
            ("{\"by\":\"server\"}\"x\"", "Malformed", "expected ,"),
        ] {
            let entry = good.replace(
                r#"{"host":"#,
                &format!(r#"{{"authenticated":{auth},"host":"#),
            );
            let fast = decode_fast(entry.as_bytes()).map(|_| ()).unwrap_err();
            assert_eq!(fast.what, why, "{entry}");
            let err = Record::from_entry(entry.as_bytes()).unwrap_err();
            assert!(format!("{err:?}").starts_with(variant), "{entry}: {err:?}");
            assert_eq!(
                RecordView::from_entry(entry.as_bytes())
                    .unwrap_err()
                    .to_string(),
                err.to_string()
            );
            assert_eq!(
                check_entry(entry.as_bytes()).unwrap_err().to_string(),
                err.to_string()
            );
        }
    }

    #[test]
    fn authenticated_too_deep_for_readers_is_refused() {
        fn deep(n: usize) -> serde_json::Value {
            let mut v = json!(1);
            for _ in 0..n {
                v = json!({ "a": v });
            }
            v
        }
        let t = "2026-01-01T00:00:00Z";
        let with = |d| Actor {
            authenticated: Some(deep(d)),
            ..actor()
        };
        let e = Record::new("k", t, with(125), json!({}), vec![])
            .unwrap()
            .to_entry()
            .unwrap();
        assert!(Record::from_entry(&e).is_ok());
        assert!(decode_fast(&e).is_ok());
        let err = Record::new("k", t, with(126), json!({}), vec![]).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::TooDeep {
                    what: "actor.authenticated",
                    depth: 126,
                    max: 125
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn labels_of_the_shapes_the_server_writes() {
        let token = token();
        let l = authenticated_label(&token).unwrap();
        assert_eq!(
            (l.by, l.label, l.role, l.issuer),
            ("token", "ci-deploy", Some("writer"), None)
        );
        let oidc = json!({"by": "oidc", "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:acme/infra:ref:refs/heads/main", "repository": "acme/infra",
            "role": "writer"});
        let l = authenticated_label(&oidc).unwrap();
        assert_eq!(
            (l.by, l.label, l.role, l.issuer),
            (
                "oidc",
                "repo:acme/infra:ref:refs/heads/main",
                Some("writer"),
                Some("https://token.actions.githubusercontent.com")
            )
        );
        let server = json!({"by": "server"});
        let l = authenticated_label(&server).unwrap();
        assert_eq!((l.by, l.label, l.role), ("server", "server", None));
        // A nameless token falls back to its fingerprint.
        let nameless = json!({"by": "token", "token": "00ff"});
        let l = authenticated_label(&nameless).unwrap();
        assert_eq!(l.label, "00ff");
        // Unknown ways are shown by their name; no `by`, or nothing to show, is no label.
        assert_eq!(
            authenticated_label(&json!({"by": "mtls"})).unwrap().label,
            "mtls"
        );
        assert_eq!(authenticated_label(&json!({"name": "x"})), None);
        assert_eq!(authenticated_label(&json!({"by": "oidc"})), None);
        assert_eq!(authenticated_label(&json!({"by": 1})), None);
    }

    #[test]
    fn entry_template_carries_authenticated() {
        let a = Actor {
            authenticated: Some(token()),
            ..actor()
        };
        let t = EntryTemplate::new("k", "2026-01-01T00:00:00Z", a.clone(), vec![]).unwrap();
        let e = t.canonical_entry(br#"{"x":1}"#).unwrap();
        let want = Record::new("k", "2026-01-01T00:00:00Z", a, json!({"x": 1}), vec![])
            .unwrap()
            .to_entry()
            .unwrap();
        assert_eq!(e, want);
        let bad = Actor {
            authenticated: Some(json!("x")),
            ..actor()
        };
        assert!(matches!(
            EntryTemplate::new("k", "2026-01-01T00:00:00Z", bad, vec![]),
            Err(RecordError::AuthenticatedNotObject("a string"))
        ));
    }

    #[test]
    fn view_borrows_and_decodes() {
        let a = Actor {
            authenticated: None,
            user: "al\"ice\n".into(),
            host: "box".into(),
            ci: Some(json!({"run": 7, "z": [1.5, "é"]})),
        };
        let blob = BlobRef {
            name: "plan.json".into(),
            sha256: "ab".repeat(32),
            size: 81_234,
        };
        let r = Record::new(
            "terraform.plan",
            "2026-11-26T05:00:00.123Z",
            a,
            json!({"b": {"c": null}}),
            vec![blob.clone()],
        )
        .unwrap();
        let e = r.to_entry().unwrap();
        let v = RecordView::from_entry(&e).unwrap();
        assert_eq!(v.kind, "terraform.plan");
        assert_eq!(v.time, "2026-11-26T05:00:00.123Z");
        assert_eq!(v.actor.user, "al\"ice\n");
        assert!(matches!(v.actor.user, Cow::Owned(_)));
        assert!(matches!(v.actor.host, Cow::Borrowed("box")));
        assert_eq!(v.actor.ci.as_deref(), Some(r#"{"run":7,"z":[1.5,"é"]}"#));
        assert_eq!(v.payload(), r#"{"b":{"c":null}}"#);
        assert_eq!(v.blob_refs(), vec![blob.clone()]);
        assert_eq!(check_entry(&e).unwrap(), vec![blob]);
        assert_eq!(Record::from_entry(&e).unwrap(), r);
        // The owned view (used should the single pass ever refuse what the reference accepts)
        // is the same.
        assert_eq!(RecordView::from_record(&r).unwrap(), v);
    }
}
