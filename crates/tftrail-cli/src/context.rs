//! Where things live (XDG directories, environment overrides) and opening the log.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tftrail_core::checkpoint::{Checkpoint, SigningKey, VerifierKey};
use tftrail_log::Log;

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

/// Resolves a verifier key given as text, as a file holding one, or as a signing-key file;
/// without one, derives it from the signing key at the default (or TFTRAIL_KEY) location.
pub fn verifier_key(given: Option<&str>) -> Result<VerifierKey, CliError> {
    let Some(given) = given.filter(|g| !g.is_empty()) else {
        let path = key_path(
            std::env::var_os("TFTRAIL_KEY")
                .map(PathBuf::from)
                .as_deref(),
        );
        return load_signing_key(&path)
            .map(|k| k.verifier())
            .map_err(|e| e.hint("pass the log's verifier key with --key <name+id+base64>"));
    };
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

/// Opens the log at `location` for reading with `key`.
pub fn open_log(location: &str, key: VerifierKey) -> Result<Log, CliError> {
    let store = tftrail_store::open(location)?;
    Ok(Log::open(store, key)?)
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

/// The OS user and host.
pub fn actor() -> tftrail_core::record::Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid:{}", rustix::process::getuid().as_raw()));
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    tftrail_core::record::Actor {
        user,
        host,
        ci: None,
    }
}

/// Whether progress may be drawn on stderr.
pub fn progress_allowed(json: bool) -> bool {
    use std::io::IsTerminal;
    !json && std::io::stderr().is_terminal()
}
