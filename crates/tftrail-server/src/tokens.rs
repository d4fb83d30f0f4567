//! The token file: the server's bearer tokens, kept as SHA-256 hashes only.
//!
//! A TOML file (mode 0600) of `[[token]]` entries, managed by `tftrail token` and read by the
//! server:
//!
//! ```toml
//! [[token]]
//! name = "ci"
//! role = "writer"
//! sha256 = "<hex of the SHA-256 of the token>"
//! created = "2026-01-02T03:04:05Z"
//! expires = "2026-04-02T03:04:05Z"   # optional
//! revoked = "2026-02-01T00:00:00Z"   # optional; a revoked entry stays, so that its use is
//!                                    # reported as "revoked", not "unknown"
//! ```
//!
//! Writers ([`create`], [`revoke`]) take an advisory lock on `<file>.lock`, read the file,
//! and replace it atomically (temporary file in the same directory, fsync, rename, fsync of the
//! directory), so two `token create` at once lose nothing and a reader never sees half a file.
//! The server holds a [`TokenSet`], which re-reads the file when it changes (one `stat` per
//! request), so a revocation takes effect on the next request.
//!
//! A token is `tftrail_` followed by the base64url (no padding) of 32 random bytes. It is shown
//! once, when created; only its hash is stored. Its *fingerprint*, the first 16 hex digits of
//! the hash, names it in logs and records without revealing it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::{Denial, Role};

/// The prefix of every token.
pub const TOKEN_PREFIX: &str = "tftrail_";

/// Length of a token's random part: base64url of 32 bytes, no padding.
const TOKEN_BODY_LEN: usize = 43;

/// The most bytes a token file may hold (it holds hashes, ~200 bytes per token).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// What went wrong with the token file or a token command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Reading, writing or locking the file failed.
    #[error("token file {path}: {source}")]
    Io {
        /// The file (or its lock, or its directory).
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid token file.
    #[error("token file {path}, line {line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A name that is not `[A-Za-z0-9._-]{1,64}`.
    #[error("bad token name {0:?}: a name is 1 to 64 of A-Z a-z 0-9 . _ -")]
    BadName(String),
    /// `create` with a name an unrevoked token already has.
    #[error("a token named {name} already exists{}", match .expired { Some(t) => format!(" (it expired at {t})"), None => String::new() })]
    Duplicate {
        /// The name.
        name: String,
        /// When the existing token expired, if it has.
        expired: Option<String>,
    },
    /// `revoke` of a name no token has.
    #[error("no token named {0}")]
    UnknownName(String),
    /// `revoke` of a name whose tokens are all revoked already.
    #[error("token {name} was already revoked at {at}")]
    AlreadyRevoked {
        /// The name.
        name: String,
        /// When.
        at: String,
    },
    /// An expiry in days that is zero or too far ahead.
    #[error("bad expiry: {0}")]
    BadExpiry(String),
}

impl TokenError {
    /// Whether the caller asked for something wrong (bad name, duplicate, unknown name,
    /// malformed file) rather than the system failing (I/O).
    pub fn is_usage(&self) -> bool {
        !matches!(self, TokenError::Io { .. })
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        TokenError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One token as listed (never the token itself, nor its full hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The first 16 hex digits of the token's SHA-256.
    pub fingerprint: String,
    /// When it was created (RFC 3339, UTC).
    pub created: String,
    /// When it expires, if ever.
    pub expires: Option<String>,
    /// When it was revoked, if it was.
    pub revoked: Option<String>,
}

/// A change to the token file seen by [`TokenSet::check`], for the server to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEvent {
    /// A token was added.
    Created(TokenInfo),
    /// A token was revoked.
    Revoked(TokenInfo),
    /// A token's entry was deleted from the file.
    Removed(TokenInfo),
    /// A token's role or expiry changed (the info is the new one).
    Changed(TokenInfo),
}

impl TokenEvent {
    /// `created`, `revoked`, `removed` or `changed`.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenEvent::Created(_) => "created",
            TokenEvent::Revoked(_) => "revoked",
            TokenEvent::Removed(_) => "removed",
            TokenEvent::Changed(_) => "changed",
        }
    }

    /// The token concerned.
    pub fn info(&self) -> &TokenInfo {
        match self {
            TokenEvent::Created(i)
            | TokenEvent::Revoked(i)
            | TokenEvent::Removed(i)
            | TokenEvent::Changed(i) => i,
        }
    }
}

/// The fingerprint of a token: the first 16 hex digits of its SHA-256.
pub fn fingerprint(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..8])
}

/// Whether `s` has the shape of a token: `tftrail_` and 43 base64url characters.
pub fn is_well_formed(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(|body| {
        body.len() == TOKEN_BODY_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Whether `name` is a valid token name: `[A-Za-z0-9._-]{1,64}`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

// ----- the file -----

#[derive(Debug, Default, Serialize)]
struct FileOut {
    #[serde(default, rename = "token", skip_serializing_if = "Vec::is_empty")]
    tokens: Vec<EntryOut>,
}

#[derive(Debug, Clone, Serialize)]
struct EntryOut {
    name: String,
    role: Role,
    sha256: String,
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    #[serde(default, rename = "token")]
    tokens: Vec<toml::Spanned<EntryIn>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    name: toml::Spanned<String>,
    role: Role,
    sha256: toml::Spanned<String>,
    created: toml::Spanned<String>,
    #[serde(default)]
    expires: Option<toml::Spanned<String>>,
    #[serde(default)]
    revoked: Option<toml::Spanned<String>>,
}

/// One entry, checked.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    role: Role,
    hash: [u8; 32],
    created: OffsetDateTime,
    expires: Option<OffsetDateTime>,
    revoked: Option<OffsetDateTime>,
}

impl Entry {
    fn fingerprint(&self) -> String {
        hex::encode(&self.hash[..8])
    }

    fn info(&self) -> TokenInfo {
        TokenInfo {
            name: self.name.clone(),
            role: self.role,
            fingerprint: self.fingerprint(),
            created: fmt_time(self.created),
            expires: self.expires.map(fmt_time),
            revoked: self.revoked.map(fmt_time),
        }
    }

    fn out(&self) -> EntryOut {
        EntryOut {
            name: self.name.clone(),
            role: self.role,
            sha256: hex::encode(self.hash),
            created: fmt_time(self.created),
            expires: self.expires.map(fmt_time),
            revoked: self.revoked.map(fmt_time),
        }
    }
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Now, in UTC, to the second (what the file stores).
fn now_utc() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses and checks the file's text.
fn parse(path: &Path, text: &str) -> Result<Vec<Entry>, TokenError> {
    let invalid = |offset: usize, message: String| TokenError::Invalid {
        path: path.to_path_buf(),
        line: line_of(text, offset),
        message,
    };
    let file: FileIn = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        invalid(offset, e.message().trim().to_string())
    })?;
    let time = |s: &toml::Spanned<String>, what: &str| {
        OffsetDateTime::parse(s.get_ref(), &Rfc3339).map_err(|e| {
            invalid(
                s.span().start,
                format!("{what} {:?} is not an RFC 3339 time: {e}", s.get_ref()),
            )
        })
    };
    let mut entries: Vec<Entry> = Vec::with_capacity(file.tokens.len());
    for spanned in &file.tokens {
        let e = spanned.get_ref();
        let name = e.name.get_ref();
        if !valid_name(name) {
            return Err(invalid(
                e.name.span().start,
                format!("bad token name {name:?}: a name is 1 to 64 of A-Z a-z 0-9 . _ -"),
            ));
        }
        let mut hash = [0u8; 32];
        let hex_ok = e.sha256.get_ref().len() == 64
            && hex::decode_to_slice(e.sha256.get_ref(), &mut hash).is_ok();
        if !hex_ok {
            return Err(invalid(
                e.sha256.span().start,
                format!("sha256 of token {name} is not 64 hex digits"),
            ));
        }
        let entry = Entry {
            name: name.clone(),
            role: e.role,
            hash,
            created: time(&e.created, "created")?,
            expires: e.expires.as_ref().map(|t| time(t, "expires")).transpose()?,
            revoked: e.revoked.as_ref().map(|t| time(t, "revoked")).transpose()?,
        };
        if entries.iter().any(|o| o.hash == entry.hash) {
            return Err(invalid(
                spanned.span().start,
                format!("token {name} has the same sha256 as an earlier entry"),
            ));
        }
        if entry.revoked.is_none()
            && entries
                .iter()
                .any(|o| o.revoked.is_none() && o.name == entry.name)
        {
            return Err(invalid(
                e.name.span().start,
                format!("two unrevoked tokens are named {name}"),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// What identifies one version of the file: a change to any of these means "read it again".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
        }
    }
}

/// Reads the file: its entries and the stamp of what was read. A missing file is no tokens.
fn read(path: &Path) -> Result<(Vec<Entry>, Option<Stamp>), TokenError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(TokenError::io(path, e)),
    };
    let meta = f.metadata().map_err(|e| TokenError::io(path, e))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(TokenError::Invalid {
            path: path.to_path_buf(),
            line: 1,
            message: format!("the file is larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            TokenError::Invalid {
                path: path.to_path_buf(),
                line: 1,
                message: "the file is not UTF-8".into(),
            }
        } else {
            TokenError::io(path, e)
        }
    })?;
    Ok((parse(path, &text)?, Some(Stamp::of(&meta))))
}

/// Holds the advisory lock of a token file while it is rewritten.
struct Locked {
    _lock: File,
}

fn lock(path: &Path) -> Result<Locked, TokenError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| TokenError::io(&lock_path, e))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| TokenError::io(&lock_path, e.into()))?;
    Ok(Locked { _lock: f })
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces the file with `entries`: temp file (0600) in the same directory, fsync, rename,
/// fsync of the directory.
fn write(path: &Path, entries: &[Entry]) -> Result<(), TokenError> {
    let file = FileOut {
        tokens: entries.iter().map(Entry::out).collect(),
    };
    let body = toml::to_string(&file)
        .map_err(|e| TokenError::io(path, std::io::Error::other(format!("cannot encode: {e}"))))?;
    let text = format!(
        "# tftrail tokens: SHA-256 hashes of the tokens, never the tokens themselves.\n\
         # Managed by `tftrail token create|list|revoke`; the server re-reads it on change.\n\n\
         {body}"
    );
    let dir = dir_of(path);
    let mut rnd = [0u8; 8];
    OsRng.fill_bytes(&mut rnd);
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        hex::encode(rnd)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(TokenError::io(path, e));
    }
    Ok(())
}

/// A new random token.
fn generate() -> String {
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// Creates a token named `name` with `role`, valid for `expires_days` days (or forever), adds
/// its hash to the file (created, mode 0600, when missing), and returns the token: the only
/// time it is seen. Refuses a name that an unrevoked token already has.
pub fn create(
    path: &Path,
    name: &str,
    role: Role,
    expires_days: Option<u32>,
) -> Result<String, TokenError> {
    if !valid_name(name) {
        return Err(TokenError::BadName(name.to_string()));
    }
    let now = now_utc();
    let expires = match expires_days {
        None => None,
        Some(0) => {
            return Err(TokenError::BadExpiry(
                "0 days: the token would expire now".into(),
            ))
        }
        Some(d) if d > 36_500 => {
            return Err(TokenError::BadExpiry(format!(
            "{d} days is more than 100 years; leave --expires out for a token that does not expire"
        )))
        }
        Some(d) => Some(now + time::Duration::days(i64::from(d))),
    };
    let _lock = lock(path)?;
    let (mut entries, _) = read(path)?;
    if let Some(old) = entries
        .iter()
        .find(|e| e.name == name && e.revoked.is_none())
    {
        return Err(TokenError::Duplicate {
            name: name.to_string(),
            expired: old.expires.filter(|t| *t <= now).map(fmt_time),
        });
    }
    let token = generate();
    entries.push(Entry {
        name: name.to_string(),
        role,
        hash: Sha256::digest(token.as_bytes()).into(),
        created: now,
        expires,
        revoked: None,
    });
    write(path, &entries)?;
    Ok(token)
}

/// The tokens in the file, in file order. A missing file has none.
pub fn list(path: &Path) -> Result<Vec<TokenInfo>, TokenError> {
    Ok(read(path)?.0.iter().map(Entry::info).collect())
}

/// Revokes the token named `name` (its entry stays, marked revoked). Returns it.
pub fn revoke(path: &Path, name: &str) -> Result<TokenInfo, TokenError> {
    let _lock = lock(path)?;
    let (mut entries, _) = read(path)?;
    let now = now_utc();
    let mut revoked = None;
    for e in entries.iter_mut().filter(|e| e.name == name) {
        if e.revoked.is_none() {
            e.revoked = Some(now);
            revoked = Some(e.info());
        }
    }
    match revoked {
        Some(info) => {
            write(path, &entries)?;
            Ok(info)
        }
        None => match entries.iter().rev().find(|e| e.name == name) {
            Some(e) => Err(TokenError::AlreadyRevoked {
                name: name.to_string(),
                at: e.revoked.map(fmt_time).unwrap_or_default(),
            }),
            None => Err(TokenError::UnknownName(name.to_string())),
        },
    }
}

/// Index of the entry whose hash is `hash`, comparing with every entry in constant time (no
/// early exit, no data-dependent branch on the hash bytes).
fn find(entries: &[Entry], hash: &[u8; 32]) -> Option<usize> {
    let mut found = subtle::Choice::from(0u8);
    let mut index = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let eq = e.hash.ct_eq(hash);
        index = u64::conditional_select(&index, &(i as u64), eq);
        found |= eq;
        #[cfg(test)]
        tests::COMPARED.with(|c| c.set(c.get() + 1));
    }
    if bool::from(found) {
        Some(index as usize)
    } else {
        None
    }
}

/// A token found by [`TokenSet::lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMatch {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its fingerprint.
    pub fingerprint: String,
}

#[derive(Debug)]
struct State {
    entries: Vec<Entry>,
    stamp: Option<Stamp>,
}

/// The tokens the server accepts: the file's entries, re-read when the file changes.
#[derive(Debug)]
pub struct TokenSet {
    path: PathBuf,
    state: Mutex<State>,
}

impl TokenSet {
    /// Loads the file. A file that does not parse is an error naming the line; a missing file
    /// is an error too (the server was told to use it: create it with `tftrail token create`).
    pub fn load(path: &Path) -> Result<TokenSet, TokenError> {
        let (entries, stamp) = read(path)?;
        if stamp.is_none() {
            return Err(TokenError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file (create a token with `tftrail token create --tokens FILE`)",
                ),
            ));
        }
        Ok(TokenSet {
            path: path.to_path_buf(),
            state: Mutex::new(State { entries, stamp }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file if it changed since the last look (inode, size, mtime or ctime), and
    /// returns what changed. A file that no longer parses (or cannot be read) keeps the last
    /// good set and is reported as the error, once per change of the file; a deleted file keeps
    /// the last good set too.
    pub fn check(&self) -> Result<Vec<TokenEvent>, TokenError> {
        let stamp = match std::fs::metadata(&self.path) {
            Ok(m) => Some(Stamp::of(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(TokenError::io(&self.path, e)),
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if stamp == state.stamp {
            return Ok(Vec::new());
        }
        // Remember what was looked at, good or bad, so that one broken version is reported
        // once, not on every request.
        state.stamp = stamp;
        if stamp.is_none() {
            return Err(TokenError::io(
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the token file was deleted; keeping the tokens last read",
                ),
            ));
        }
        let (entries, read_stamp) = read(&self.path)?;
        // The file may have changed again between stat and read: the next call looks again.
        state.stamp = read_stamp.filter(|s| Some(*s) == stamp);
        let events = diff(&state.entries, &entries);
        state.entries = entries;
        Ok(events)
    }

    /// Looks up a presented token (now).
    pub fn lookup(&self, token: &str) -> Result<TokenMatch, Denial> {
        self.lookup_at(token, OffsetDateTime::now_utc())
    }

    /// Looks up a presented token at time `now`: its SHA-256 is compared with every entry in
    /// constant time. Unknown, revoked and expired tokens are denials (401).
    pub fn lookup_at(&self, token: &str, now: OffsetDateTime) -> Result<TokenMatch, Denial> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.lookup_hash_at(&hash, now)
    }

    /// Looks up a token by its SHA-256 at time `now`, as [`TokenSet::lookup_at`] (the web
    /// UI's sessions keep the hash of the token they were opened with, never the token).
    pub fn lookup_hash_at(
        &self,
        hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<TokenMatch, Denial> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(i) = find(&state.entries, hash) else {
            return Err(Denial {
                status: 401,
                reason: "unknown token".into(),
                credential: Some(format!("token:{}", hex::encode(&hash[..8]))),
            });
        };
        let e = &state.entries[i];
        if let Some(at) = e.revoked {
            return Err(Denial {
                status: 401,
                reason: format!("token {} was revoked at {}", e.name, fmt_time(at)),
                credential: Some(e.name.clone()),
            });
        }
        if let Some(at) = e.expires.filter(|t| *t <= now) {
            return Err(Denial {
                status: 401,
                reason: format!("token {} expired at {}", e.name, fmt_time(at)),
                credential: Some(e.name.clone()),
            });
        }
        Ok(TokenMatch {
            name: e.name.clone(),
            role: e.role,
            fingerprint: e.fingerprint(),
        })
    }

    /// The tokens currently held.
    pub fn infos(&self) -> Vec<TokenInfo> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.entries.iter().map(Entry::info).collect()
    }
}

/// The events that take `old` to `new` (entries are matched by hash).
fn diff(old: &[Entry], new: &[Entry]) -> Vec<TokenEvent> {
    let mut events = Vec::new();
    for n in new {
        match old.iter().find(|o| o.hash == n.hash) {
            None => {
                events.push(TokenEvent::Created(n.info()));
                if n.revoked.is_some() {
                    events.push(TokenEvent::Revoked(n.info()));
                }
            }
            Some(o) => {
                if o.role != n.role || o.expires != n.expires || o.name != n.name {
                    events.push(TokenEvent::Changed(n.info()));
                }
                if o.revoked.is_none() && n.revoked.is_some() {
                    events.push(TokenEvent::Revoked(n.info()));
                } else if o.revoked.is_some() && n.revoked.is_none() {
                    events.push(TokenEvent::Changed(n.info()));
                }
            }
        }
    }
    for o in old {
        if !new.iter().any(|n| n.hash == o.hash) {
            events.push(TokenEvent::Removed(o.info()));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::PermissionsExt;

    thread_local! {
        pub(super) static COMPARED: Cell<usize> = const { Cell::new(0) };
    }

    fn tmp() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("tokens.toml");
        (d, p)
    }

    #[test]
    fn round_trip_mode_and_no_token_text() {
        let (_d, p) = tmp();
        let t1 = create(&p, "ci", Role::Writer, None).unwrap();
        let t2 = create(&p, "alice.admin", Role::Admin, Some(30)).unwrap();
        assert!(is_well_formed(&t1) && is_well_formed(&t2), "{t1} {t2}");
        assert_ne!(t1, t2);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&p).unwrap();
        for t in [&t1, &t2] {
            assert!(!text.contains(t.as_str()), "token in file");
            assert!(
                !text.contains(&t[TOKEN_PREFIX.len()..]),
                "token body in file"
            );
            assert!(text.contains(&hex::encode(Sha256::digest(t.as_bytes()))));
        }
        let l = list(&p).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "ci");
        assert_eq!(l[0].role, Role::Writer);
        assert_eq!(l[0].fingerprint, fingerprint(&t1));
        assert_eq!(l[0].expires, None);
        assert!(l[1].expires.is_some());
        assert_eq!(l[1].role, Role::Admin);
        let set = TokenSet::load(&p).unwrap();
        let m = set.lookup(&t2).unwrap();
        assert_eq!((m.name.as_str(), m.role), ("alice.admin", Role::Admin));
        assert_eq!(m.fingerprint, fingerprint(&t2));
    }

    #[test]
    fn names_are_checked_and_unique_among_unrevoked() {
        let (_d, p) = tmp();
        for bad in ["", "a b", "ünï", "x/y", &"n".repeat(65)] {
            assert!(matches!(
                create(&p, bad, Role::Reader, None),
                Err(TokenError::BadName(_))
            ));
        }
        assert!(!p.exists(), "a refused create wrote nothing");
        create(&p, &"n".repeat(64), Role::Reader, None).unwrap();
        create(&p, "ci", Role::Writer, None).unwrap();
        let e = create(&p, "ci", Role::Reader, None).unwrap_err();
        assert!(matches!(e, TokenError::Duplicate { .. }), "{e}");
        assert_eq!(e.to_string(), "a token named ci already exists");
        revoke(&p, "ci").unwrap();
        // A revoked name may be given to a new token; the old entry stays.
        create(&p, "ci", Role::Writer, None).unwrap();
        assert_eq!(list(&p).unwrap().len(), 3);
    }

    #[test]
    fn revoke_and_its_errors() {
        let (_d, p) = tmp();
        let t = create(&p, "ci", Role::Writer, None).unwrap();
        let set = TokenSet::load(&p).unwrap();
        assert!(set.lookup(&t).is_ok());
        let e = revoke(&p, "nobody").unwrap_err();
        assert_eq!(e.to_string(), "no token named nobody");
        let info = revoke(&p, "ci").unwrap();
        assert!(info.revoked.is_some());
        let e = revoke(&p, "ci").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("token ci was already revoked at "),
            "{e}"
        );
        let ev = set.check().unwrap();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].kind(), "revoked");
        assert_eq!(ev[0].info().fingerprint, fingerprint(&t));
        let d = set.lookup(&t).unwrap_err();
        assert_eq!(d.status, 401);
        assert!(
            d.reason.starts_with("token ci was revoked at "),
            "{}",
            d.reason
        );
        assert_eq!(d.credential.as_deref(), Some("ci"));
    }

    #[test]
    fn unknown_and_expired() {
        let (_d, p) = tmp();
        let t = create(&p, "short", Role::Reader, Some(1)).unwrap();
        let set = TokenSet::load(&p).unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(set.lookup_at(&t, now).is_ok());
        let d = set
            .lookup_at(&t, now + time::Duration::days(2))
            .unwrap_err();
        assert_eq!(d.status, 401);
        assert!(
            d.reason.starts_with("token short expired at "),
            "{}",
            d.reason
        );
        let other = generate();
        let d = set.lookup(&other).unwrap_err();
        assert_eq!(d.reason, "unknown token");
        assert_eq!(d.credential, Some(format!("token:{}", fingerprint(&other))));
        assert!(!d.reason.contains(&other));
        // An expired name blocks a new token of that name until revoked, and says why.
        let mut entries = read(&p).unwrap().0;
        entries[0].expires = Some(now - time::Duration::hours(1));
        write(&p, &entries).unwrap();
        let e = create(&p, "short", Role::Reader, None).unwrap_err();
        assert!(e.to_string().contains("(it expired at "), "{e}");
        assert!(matches!(
            create(&p, "x", Role::Reader, Some(0)),
            Err(TokenError::BadExpiry(_))
        ));
    }

    #[test]
    fn lookup_compares_with_every_entry() {
        let (_d, p) = tmp();
        let first = create(&p, "a", Role::Reader, None).unwrap();
        for i in 0..9 {
            create(&p, &format!("t{i}"), Role::Reader, None).unwrap();
        }
        let last = create(&p, "z", Role::Writer, None).unwrap();
        let set = TokenSet::load(&p).unwrap();
        for (token, name) in [(&first, "a"), (&last, "z"), (&generate(), "")] {
            COMPARED.with(|c| c.set(0));
            let r = set.lookup(token);
            assert_eq!(COMPARED.with(|c| c.get()), 11, "every entry compared");
            match r {
                Ok(m) => assert_eq!(m.name, name),
                Err(d) => assert!(name.is_empty() && d.reason == "unknown token"),
            }
        }
    }

    #[test]
    fn reload_reports_events() {
        let (_d, p) = tmp();
        let a = create(&p, "a", Role::Reader, None).unwrap();
        let set = TokenSet::load(&p).unwrap();
        assert!(set.check().unwrap().is_empty(), "no change, no event");
        let b = create(&p, "b", Role::Writer, None).unwrap();
        let ev = set.check().unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind(), "created");
        assert_eq!(ev[0].info().name, "b");
        assert_eq!(ev[0].info().role, Role::Writer);
        assert_eq!(ev[0].info().fingerprint, fingerprint(&b));
        assert!(
            set.lookup(&b).is_ok(),
            "a new token works on the next request"
        );
        // Role changed by hand, and `a` removed.
        let mut entries = read(&p).unwrap().0;
        entries[1].role = Role::Auditor;
        entries.remove(0);
        write(&p, &entries).unwrap();
        let ev = set.check().unwrap();
        let kinds: Vec<_> = ev
            .iter()
            .map(|e| (e.kind(), e.info().name.as_str()))
            .collect();
        assert_eq!(kinds, [("changed", "b"), ("removed", "a")]);
        assert_eq!(ev[0].info().role, Role::Auditor);
        assert_eq!(set.lookup(&a).unwrap_err().reason, "unknown token");
        assert!(set.check().unwrap().is_empty());
    }

    #[test]
    fn broken_file_keeps_the_last_good_set() {
        let (_d, p) = tmp();
        let a = create(&p, "a", Role::Reader, None).unwrap();
        let set = TokenSet::load(&p).unwrap();
        let good = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            format!("{good}\n[[token]]\nname = \"b\"\nrole = \"boss\"\n"),
        )
        .unwrap();
        let e = set.check().unwrap_err();
        let msg = e.to_string();
        let bad_line = good.lines().count() + 4;
        assert!(
            msg.contains(&format!("line {bad_line}:")),
            "{msg} (expected line {bad_line})"
        );
        assert!(msg.contains("boss"), "{msg}");
        assert!(set.check().unwrap().is_empty(), "reported once per change");
        assert!(set.lookup(&a).is_ok(), "last good set kept");
        // And at startup the same file is an error.
        let e = TokenSet::load(&p).unwrap_err();
        assert!(
            matches!(e, TokenError::Invalid { line, .. } if line == bad_line),
            "{e}"
        );
        // Fixed again: picked up.
        std::fs::write(&p, &good).unwrap();
        assert!(set.check().unwrap().is_empty());
        assert!(set.lookup(&a).is_ok());
    }

    #[test]
    fn file_checks_name_their_line() {
        let (_d, p) = tmp();
        let h = hex::encode([7u8; 32]);
        let cases = [
            (format!("[[token]]\nname = \"a b\"\nrole = \"reader\"\nsha256 = \"{h}\"\ncreated = \"2026-01-01T00:00:00Z\"\n"), 2, "bad token name"),
            ("[[token]]\nname = \"a\"\nrole = \"reader\"\nsha256 = \"xyz\"\ncreated = \"2026-01-01T00:00:00Z\"\n".into(), 4, "not 64 hex digits"),
            (format!("[[token]]\nname = \"a\"\nrole = \"reader\"\nsha256 = \"{h}\"\ncreated = \"yesterday\"\n"), 5, "not an RFC 3339 time"),
            (format!("[[token]]\nname = \"a\"\nrole = \"reader\"\nsha256 = \"{h}\"\ncreated = \"2026-01-01T00:00:00Z\"\nsecret = \"x\"\n"), 6, "unknown field"),
            (format!("[[token]]\nname = \"a\"\nrole = \"reader\"\nsha256 = \"{h}\"\ncreated = \"2026-01-01T00:00:00Z\"\n[[token]]\nname = \"a\"\nrole = \"reader\"\nsha256 = \"{}\"\ncreated = \"2026-01-01T00:00:00Z\"\n", hex::encode([8u8; 32])), 7, "two unrevoked tokens are named a"),
            ("name = [\n".into(), 1, ""),
        ];
        for (text, line, what) in cases {
            std::fs::write(&p, &text).unwrap();
            let e = TokenSet::load(&p).unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(e, TokenError::Invalid { line: l, .. } if l == line) && msg.contains(what),
                "{msg} (expected line {line}, {what:?})\n{text}"
            );
        }
    }

    #[test]
    fn concurrent_creates_lose_nothing() {
        let (_d, p) = tmp();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    create(&p, &format!("t{i}"), Role::Reader, None).unwrap()
                })
            })
            .collect();
        let tokens: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let set = TokenSet::load(&p).unwrap();
        assert_eq!(set.infos().len(), 8);
        for t in &tokens {
            assert!(set.lookup(t).is_ok());
        }
    }

    #[test]
    fn token_shape() {
        let t = generate();
        assert!(is_well_formed(&t));
        assert!(!is_well_formed(&t[..t.len() - 1]));
        assert!(!is_well_formed(&format!("{}=", &t[..t.len() - 1])));
        assert!(!is_well_formed("tftrail_"));
        assert_eq!(fingerprint(&t).len(), 16);
    }
}
