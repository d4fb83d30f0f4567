//! The witness's directory: its key (`witness.key`, mode 0600, never overwritten), a lock file
//! held while it serves (one witness process per directory), and per origin the latest
//! checkpoint it cosigned (`state/<sha256(origin)>.json`), replaced crash-safely: temp file,
//! fsync, rename, fsync the directory.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tftrail_core::cosignature::WitnessKey;
use tftrail_core::merkle::{hash_b64, parse_hash, Hash};

use crate::WitnessError;

/// The key file's name inside the witness directory.
pub const KEY_FILE: &str = "witness.key";

/// What the witness records per origin: the latest checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// The log's origin.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash, base64.
    pub root: String,
    /// The signed checkpoint as the log submitted it.
    pub checkpoint: String,
    /// When it was cosigned (POSIX seconds).
    pub time: u64,
}

impl Recorded {
    /// The root hash.
    pub fn root_hash(&self) -> Option<Hash> {
        parse_hash(&self.root)
    }

    /// A record for a checkpoint.
    pub fn new(origin: &str, size: u64, root: &Hash, checkpoint: &[u8], time: u64) -> Self {
        Recorded {
            origin: origin.to_string(),
            size,
            root: hash_b64(root),
            checkpoint: String::from_utf8_lossy(checkpoint).into_owned(),
            time,
        }
    }
}

/// Creates the witness key in `dir` (refusing to overwrite one) and returns it.
pub fn init_key(dir: &Path, name: &str) -> Result<WitnessKey, WitnessError> {
    let key = WitnessKey::generate(name).map_err(|e| WitnessError::Config(e.to_string()))?;
    fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    let path = dir.join(KEY_FILE);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                WitnessError::Config(format!(
                    "witness key {} already exists; refusing to overwrite it",
                    path.display()
                ))
            } else {
                io_err("create", &path, e)
            }
        })?;
    f.write_all(format!("{}\n", key.to_text()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err("write", &path, e))?;
    sync_dir(dir)?;
    Ok(key)
}

/// Reads the witness key from `dir`.
pub fn load_key(dir: &Path) -> Result<WitnessKey, WitnessError> {
    let path = dir.join(KEY_FILE);
    let text = fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            WitnessError::Config(format!(
                "no witness key at {}: create one with `tftrail witness init --origin NAME --dir {}`",
                path.display(),
                dir.display()
            ))
        } else {
            io_err("read", &path, e)
        }
    })?;
    WitnessKey::parse(&text)
        .map_err(|e| WitnessError::Config(format!("witness key {}: {e}", path.display())))
}

/// The state directory, locked for this process.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    _lock: fs::File,
}

impl StateDir {
    /// Opens (creating) `dir/state` and takes the directory's lock; refuses when another
    /// witness holds it.
    pub fn open(dir: &Path) -> Result<Self, WitnessError> {
        let state = dir.join("state");
        fs::create_dir_all(&state).map_err(|e| io_err("create", &state, e))?;
        let lock_path = dir.join("lock");
        let lock = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| io_err("open", &lock_path, e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| {
                WitnessError::Config(format!(
                    "another witness process serves {} (its lock file is held)",
                    dir.display()
                ))
            },
        )?;
        Ok(StateDir {
            dir: state,
            _lock: lock,
        })
    }

    fn path(&self, origin: &str) -> PathBuf {
        let h = Sha256::digest(origin.as_bytes());
        self.dir.join(format!("{}.json", hex::encode(&h[..16])))
    }

    /// The recorded checkpoint for `origin`, if any.
    pub fn load(&self, origin: &str) -> Result<Option<Recorded>, WitnessError> {
        let p = self.path(origin);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &p, e)),
        };
        let r: Recorded = serde_json::from_slice(&bytes)
            .map_err(|e| WitnessError::State(format!("{} does not parse: {e}", p.display())))?;
        if r.origin != origin || r.root_hash().is_none() {
            return Err(WitnessError::State(format!(
                "{} holds a record for {:?} or a malformed root, not {origin:?}",
                p.display(),
                r.origin
            )));
        }
        Ok(Some(r))
    }

    /// Replaces the record for `r.origin` durably: it is on disk when this returns.
    pub fn store(&self, r: &Recorded) -> Result<(), WitnessError> {
        let p = self.path(&r.origin);
        let json = serde_json::to_vec_pretty(r).expect("serialisable");
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(|e| io_err("create a temporary file in", &self.dir, e))?;
        tmp.write_all(&json)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| io_err("write", tmp.path(), e))?;
        tmp.persist(&p)
            .map_err(|e| io_err("rename into", &p, e.error))?;
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), WitnessError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync", dir, e))
}

fn io_err(what: &str, p: &Path, e: std::io::Error) -> WitnessError {
    WitnessError::State(format!("cannot {what} {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_private_and_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let k = init_key(d.path(), "w.example/1").unwrap();
        let meta = fs::metadata(d.path().join(KEY_FILE)).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let before = fs::read(d.path().join(KEY_FILE)).unwrap();
        let e = init_key(d.path(), "w.example/1").unwrap_err().to_string();
        assert!(e.contains("refusing to overwrite"), "{e}");
        assert_eq!(fs::read(d.path().join(KEY_FILE)).unwrap(), before);
        assert_eq!(load_key(d.path()).unwrap().verifier_key(), k.verifier_key());
        assert!(init_key(d.path(), "bad name").is_err());
    }

    #[test]
    fn state_round_trip_and_lock() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::open(d.path()).unwrap();
        assert!(StateDir::open(d.path())
            .unwrap_err()
            .to_string()
            .contains("another witness"));
        assert_eq!(s.load("o").unwrap(), None);
        let r = Recorded::new("o", 3, &tftrail_core::merkle::leaf_hash(b"x"), b"cp\n", 9);
        s.store(&r).unwrap();
        assert_eq!(s.load("o").unwrap(), Some(r.clone()));
        let r2 = Recorded { size: 4, ..r };
        s.store(&r2).unwrap();
        assert_eq!(s.load("o").unwrap(), Some(r2));
        // No temporary files left behind.
        assert_eq!(fs::read_dir(d.path().join("state")).unwrap().count(), 1);
        drop(s);
        assert!(StateDir::open(d.path()).is_ok());
    }
}
