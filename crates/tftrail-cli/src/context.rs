//! Where things live (XDG directories, environment overrides) and opening the log.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tftrail_core::checkpoint::{Checkpoint, CheckpointError, SigningKey, VerifierKey};
use tftrail_log::{Log, LogError};

use crate::error::CliError;

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() && Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(fallback)
        }
    }
}

/// The store location: `--store`, else TFTRAIL_STORE (clap handles both), else the XDG data
/// directory.
pub fn store_location(flag: Option<&str>) -> String {
    match flag {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => xdg("XDG_DATA_HOME", ".local/share")
            .join("tftrail/log")
            .display()
            .to_string(),
    }
}

/// The signing-key path: `--key` / TFTRAIL_KEY, else the XDG config directory.
pub fn key_path(flag: Option<&Path>) -> PathBuf {
    match flag {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => xdg("XDG_CONFIG_HOME", ".config").join("tftrail/signing.key"),
    }
}

/// Reads the signing key.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, CliError> {
    let text = fs::read_to_string(path).map_err(|e| {
        CliError::usage(format!("cannot read signing key {}: {e}", path.display()))
            .hint("create one with `tftrail init`, or point --key / TFTRAIL_KEY at it")
    })?;
    SigningKey::parse(&text).map_err(|e| {
        CliError::usage(format!("{}: {e}", path.display()))
            .hint("the file must hold a PRIVATE+KEY+… signer key as written by `tftrail init`")
    })
}

/// Writes a new signing key with mode 0600, refusing to overwrite.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), CliError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)
            .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CliError::usage(format!(
                    "signing key {} already exists; refusing to overwrite it",
                    path.display()
                ))
                .hint("pass --key with a new path, or reuse the existing key")
            } else {
                CliError::failure(format!("cannot write {}: {e}", path.display()))
            }
        })?;
    f.write_all(format!("{}\n", key.to_text()).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))
}

/// Where the key a command trusts came from; error messages say it, because a store opened
/// with another log's key otherwise looks exactly like a forged checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--key`.
    Flag,
    /// `TFTRAIL_KEY`.
    Env,
    /// The verifier key `init` remembered for this store, in this file.
    Remembered(PathBuf),
    /// Derived from the signing key at the default path.
    Default(PathBuf),
    /// The key a tftrail server gave (`GET /v1/key`), trusted on first use and remembered in
    /// this file.
    Server(PathBuf),
}

impl KeySource {
    /// "the key given with --key", … for messages.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Flag => "the key given with --key".into(),
            KeySource::Env => "the key named by TFTRAIL_KEY".into(),
            KeySource::Remembered(p) => format!(
                "the verifier key remembered for this store when it was created ({})",
                p.display()
            ),
            KeySource::Default(p) => {
                format!(
                    "the key derived from the default signing key {}",
                    p.display()
                )
            }
            KeySource::Server(p) => format!(
                "the server's key, trusted on first use and remembered in {}",
                p.display()
            ),
        }
    }

    /// Whether the user named this key for this store (flag, environment, or `init` on this
    /// machine), as opposed to a default that may belong to another log.
    pub fn is_explicit(&self) -> bool {
        !matches!(self, KeySource::Default(_))
    }
}

/// A verifier key and where it came from.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The key.
    pub key: VerifierKey,
    /// Where it came from.
    pub source: KeySource,
}

/// Whether a location names a tftrail server rather than a store.
pub fn is_server(location: &str) -> bool {
    let l = location.trim_start().to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// Resolves the key a reading command trusts for the store at `location`: `--key` (`flag`),
/// else TFTRAIL_KEY, else the key `init` remembered for this store, else the one derived from
/// the default signing key. For a server, instead of the default: the key it gives
/// (`GET /v1/key`), trusted on first use and remembered for it, so that a later change of
/// the server's key is caught as a key mismatch.
pub fn trusted_key(flag: Option<&str>, location: &str) -> Result<TrustedKey, CliError> {
    if let Some(k) = flag.filter(|k| !k.is_empty()) {
        return verifier_key(k).map(|key| TrustedKey {
            key,
            source: KeySource::Flag,
        });
    }
    if let Some(k) = std::env::var("TFTRAIL_KEY").ok().filter(|k| !k.is_empty()) {
        return verifier_key(&k)
            .map(|key| TrustedKey {
                key,
                source: KeySource::Env,
            })
            .map_err(|e| CliError {
                message: format!("TFTRAIL_KEY: {}", e.message),
                ..e
            });
    }
    if let Some((key, path, first_use)) = remembered(location)? {
        let source = if first_use {
            KeySource::Server(path)
        } else {
            KeySource::Remembered(path)
        };
        return Ok(TrustedKey { key, source });
    }
    if is_server(location) {
        return crate::remote::trust_on_first_use(location);
    }
    let path = key_path(None);
    let key = load_signing_key(&path)
        .map(|k| k.verifier())
        .map_err(|e| e.hint("pass the log's verifier key with --key <name+id+base64>"))?;
    Ok(TrustedKey {
        key,
        source: KeySource::Default(path),
    })
}

/// Parses a verifier key given as text, as a file holding one, or as a signing-key file.
pub fn verifier_key(given: &str) -> Result<VerifierKey, CliError> {
    if let Ok(k) = VerifierKey::parse(given) {
        return Ok(k);
    }
    let p = Path::new(given);
    if p.is_file() {
        let text = fs::read_to_string(p)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))?;
        if let Ok(k) = VerifierKey::parse(&text) {
            return Ok(k);
        }
        if let Ok(k) = SigningKey::parse(&text) {
            return Ok(k.verifier());
        }
        return Err(CliError::usage(format!(
            "{} holds no verifier key",
            p.display()
        )));
    }
    Err(CliError::usage(format!(
        "invalid verifier key {given:?}: expected <name>+<8 hex digits>+<base64>, or a file holding one"
    )))
}

/// The store location as remembered: absolute for a directory, without a trailing `/`.
fn canonical_location(location: &str) -> String {
    let l = location.trim();
    if is_server(l) {
        if let Ok(tftrail_store::Location::Server(url)) = tftrail_store::Location::parse(l) {
            return url;
        }
    }
    if l.contains("://") && !l.starts_with("file://") {
        return l.trim_end_matches('/').to_string();
    }
    let p = Path::new(l.strip_prefix("file://").unwrap_or(l));
    let abs = fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    });
    abs.display().to_string()
}

/// File holding the verifier key remembered for a store.
fn remembered_path(location: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let id = hex::encode(&Sha256::digest(canonical_location(location).as_bytes())[..8]);
    xdg("XDG_CONFIG_HOME", ".config").join(format!("tftrail/stores/{id}"))
}

/// The verifier key remembered for the store at `location`, if any: its file, and whether
/// it was a server's key trusted on first use (rather than remembered by `init`).
fn remembered(location: &str) -> Result<Option<(VerifierKey, PathBuf, bool)>, CliError> {
    let p = remembered_path(location);
    let text = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::failure(format!(
                "cannot read {}: {e}",
                p.display()
            )))
        }
    };
    let want = canonical_location(location);
    let mut store = None;
    let mut key = None;
    let mut first_use = false;
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("store ") {
            store = Some(s);
        } else if let Some(k) = line.strip_prefix("key ") {
            key = Some(k);
        } else if line == "trust first-use" {
            first_use = true;
        }
    }
    if store != Some(want.as_str()) {
        // Another store whose name hashes alike: not this one's key.
        return Ok(None);
    }
    let key = key
        .and_then(|k| VerifierKey::parse(k).ok())
        .ok_or_else(|| {
            CliError::usage(format!(
                "{} (the verifier key remembered for {want}) is damaged",
                p.display()
            ))
            .hint("remove it and pass the log's verifier key with --key")
        })?;
    Ok(Some((key, p, first_use)))
}

/// Remembers `key` as the verifier key of the store at `location` (done by `init`, which
/// only runs on an empty store).
pub fn remember_key(location: &str, key: &VerifierKey) -> Result<PathBuf, CliError> {
    write_remembered(location, key, false)
}

/// Remembers `key` as the key of the server at `location`, trusted on first use.
pub fn remember_server_key(location: &str, key: &VerifierKey) -> Result<PathBuf, CliError> {
    write_remembered(location, key, true)
}

fn write_remembered(
    location: &str,
    key: &VerifierKey,
    first_use: bool,
) -> Result<PathBuf, CliError> {
    let p = remembered_path(location);
    let dir = p.parent().expect("has parent");
    fs::create_dir_all(dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    let text = format!(
        "store {}\nkey {}\n{}",
        canonical_location(location),
        key.as_str(),
        if first_use { "trust first-use\n" } else { "" }
    );
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, text)
        .and_then(|_| fs::rename(&tmp, &p))
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", p.display())))?;
    Ok(p)
}

/// Explains a checkpoint that carries no signature by the trusted key: names the key's
/// source and the signers found, and hints at --key. Exit 1 when the user named the key for
/// this store (a forged or replaced checkpoint, or the wrong store); exit 2 when the key was
/// only a default that may belong to another log. Other errors convert as usual.
pub fn key_mismatch(e: LogError, trusted: &TrustedKey, location: &str, signing: bool) -> CliError {
    let LogError::Checkpoint(CheckpointError::NotSignedByKey { want, found }) = &e else {
        return crate::remote::log_error(e);
    };
    let what = if signing { "signing key" } else { "key" };
    let message = format!(
        "the checkpoint of {location} is not signed by {} ({want}); it is signed by: {found}",
        trusted.source.describe()
    );
    let flag = if signing {
        "--key FILE (or TFTRAIL_KEY) with this log's signing key"
    } else {
        "--key with this log's verifier key (`tftrail key` prints it where the log was created)"
    };
    if trusted.source.is_explicit() {
        CliError::integrity(message).hint(format!(
            "if {location} is another log, pass {flag}; if this {what} is the right one for it, the checkpoint was replaced: run `tftrail verify`"
        ))
    } else {
        CliError::usage(message).hint(format!(
            "{location} is probably not the log that the default {what} belongs to: pass {flag}"
        ))
    }
}

/// Opens the log at `location` for reading with `trusted`, and checks that its checkpoint is
/// signed by that key (explaining a mismatch with [`key_mismatch`]).
pub fn open_log(location: &str, trusted: &TrustedKey) -> Result<Log, CliError> {
    let log = open_log_with(location, trusted.key.clone())?;
    match log.head() {
        Ok(_) => Ok(log),
        Err(e) => Err(key_mismatch(e, trusted, location, false)),
    }
}

/// Opens the log at `location` with `key`, without reading the checkpoint.
pub fn open_log_with(location: &str, key: VerifierKey) -> Result<Log, CliError> {
    let store = tftrail_store::open(location).map_err(crate::remote::store_error)?;
    Log::open(store, key).map_err(crate::remote::log_error)
}

/// File that remembers the last checkpoint this machine verified for a log.
fn verified_path(key: &VerifierKey) -> PathBuf {
    use sha2::{Digest, Sha256};
    let id = hex::encode(&Sha256::digest(key.as_str().as_bytes())[..8]);
    xdg("XDG_STATE_HOME", ".local/state").join(format!("tftrail/verified/{id}"))
}

/// The last checkpoint verified on this machine, if any (it was verified when stored, and is
/// verified again here).
pub fn last_verified(key: &VerifierKey) -> Result<Option<Checkpoint>, CliError> {
    let p = verified_path(key);
    match fs::read(&p) {
        Ok(b) => key.open_checkpoint(&b).map(Some).map_err(|e| {
            CliError::integrity(format!(
                "the last verified checkpoint kept at {} is damaged: {e}",
                p.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::failure(format!(
            "cannot read {}: {e}",
            p.display()
        ))),
    }
}

/// Remembers a verified checkpoint (only ever moving forward).
pub fn remember_verified(key: &VerifierKey, note: &[u8]) -> Result<(), CliError> {
    let p = verified_path(key);
    // Already remembered (verifying an unchanged log): no write, no fsync.
    if fs::read(&p).is_ok_and(|old| old == note) {
        return Ok(());
    }
    let dir = p.parent().expect("has parent");
    fs::create_dir_all(dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    // One temporary name per process: two verifications at once must not rename each
    // other's half-written file into place.
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, note)
        .and_then(|_| fs::File::open(&tmp)?.sync_all())
        .and_then(|_| fs::rename(&tmp, &p))
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", p.display())))
}

/// Current UTC time, RFC 3339 with milliseconds.
pub fn now_utc() -> String {
    let t = time::OffsetDateTime::now_utc();
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).expect("formats")
}

/// The OS user and host, as every command records them (one function with `run`'s context:
/// `tftrail_terraform::context::os_user`).
pub fn actor() -> tftrail_core::record::Actor {
    let env = tftrail_terraform::Env::inherit();
    tftrail_core::record::Actor {
        authenticated: None,
        user: tftrail_terraform::context::os_user(&env),
        host: tftrail_terraform::context::host_name(),
        ci: None,
    }
}

/// Whether progress may be drawn on stderr.
pub fn progress_allowed(json: bool) -> bool {
    use std::io::IsTerminal;
    !json && std::io::stderr().is_terminal()
}
