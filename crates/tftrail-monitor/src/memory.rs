//! The monitor's own state directory: what it must not forget between rounds and restarts.
//!
//! One file, `memory.json`, written atomically (temporary file, fsync, rename, fsync of the
//! directory) whenever it changed: the last checkpoint the monitor verified (the signed note,
//! checked again with the trusted key when read), when its size last grew, the rules' memory,
//! the keys of every alert already raised and of those each sink has received, and the outbox
//! of deliveries still owed. A round that finds nothing new and owes nothing writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rules::RuleMemory;

/// The file's name in the state directory.
pub const FILE: &str = "memory.json";

/// The version of the file's shape.
const VERSION: u32 = 1;

/// A delivery still owed to a sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owed {
    /// The sink's id ([`crate::sinks::SinkConfig::id`]).
    pub sink: String,
    /// The alert's key.
    pub key: String,
    /// The exact body to send (webhooks sign it at each try).
    pub body: String,
    /// Tries so far, over all rounds.
    pub attempts: u32,
    /// The last failure, for `tftrail monitor`'s report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Everything remembered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The shape's version.
    pub version: u32,
    /// Where the log is (a check that the directory belongs to this log).
    pub location: String,
    /// The last checkpoint verified: the signed note as stored.
    #[serde(default)]
    pub checkpoint: Option<String>,
    /// When that checkpoint's size last grew (or was first seen), Unix seconds.
    #[serde(default)]
    pub advanced_at: Option<i64>,
    /// The rules' memory.
    #[serde(default)]
    pub rules: RuleMemory,
    /// The key of every alert raised: an alert whose key is here is not raised again.
    #[serde(default)]
    pub raised: BTreeSet<String>,
    /// Per sink id, the keys of the alerts it received.
    #[serde(default)]
    pub delivered: BTreeMap<String, BTreeSet<String>>,
    /// Deliveries still owed, oldest first.
    #[serde(default)]
    pub outbox: Vec<Owed>,
}

/// The state directory and what it holds.
#[derive(Debug)]
pub struct Memory {
    dir: PathBuf,
    /// `lock`, held (flock) while this memory is open: one monitor per state directory.
    _lock: fs::File,
    /// What is remembered.
    pub state: State,
    /// The bytes last read or written: nothing is written while they are unchanged.
    saved: Vec<u8>,
}

/// The default state directory: `$XDG_STATE_HOME/tftrail/monitor/<hash>`, the hash of the
/// log's location and verifier key (two logs, or two keys for one location, never share one).
pub fn default_dir(location: &str, verifier_key: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".local/state")
        });
    let mut h = Sha256::new();
    h.update(location.as_bytes());
    h.update([0]);
    h.update(verifier_key.as_bytes());
    base.join("tftrail/monitor")
        .join(hex::encode(&h.finalize()[..8]))
}

impl Memory {
    /// Opens (creating it when missing) the state directory `dir` for the log at `location`.
    /// Refuses a directory that remembers another log, or a damaged file, naming it.
    pub fn open(dir: &Path, location: &str) -> Result<Memory, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let lp = dir.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
            .map_err(|e| format!("cannot open {}: {e}", lp.display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| {
                format!(
                    "another monitor is using {} (it holds {})",
                    dir.display(),
                    lp.display()
                )
            },
        )?;
        let p = dir.join(FILE);
        let (state, saved) = match fs::read(&p) {
            Ok(b) => {
                let s: State = serde_json::from_slice(&b).map_err(|e| {
                    format!(
                        "{} is damaged: {e} (move it away to start afresh)",
                        p.display()
                    )
                })?;
                if s.version != VERSION {
                    return Err(format!(
                        "{} has version {}, this monitor reads version {VERSION}",
                        p.display(),
                        s.version
                    ));
                }
                if s.location != location {
                    return Err(format!(
                        "{} is the state of the monitor of {}, not of {location}",
                        p.display(),
                        s.location
                    ));
                }
                (s, b)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                State {
                    version: VERSION,
                    location: location.to_string(),
                    ..State::default()
                },
                Vec::new(),
            ),
            Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
        };
        Ok(Memory {
            dir: dir.to_path_buf(),
            _lock: lock,
            state,
            saved,
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the state when it changed: temporary file, fsync, rename, fsync of the directory.
    pub fn save(&mut self) -> Result<(), String> {
        let bytes = serde_json::to_vec(&self.state).map_err(|e| e.to_string())?;
        if bytes == self.saved {
            return Ok(());
        }
        let p = self.dir.join(FILE);
        let tmp = self.dir.join(format!("{FILE}.tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &p)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        self.saved = bytes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_only_changes() {
        let d = tempfile::tempdir().unwrap();
        let mut m = Memory::open(d.path(), "/log").unwrap();
        m.save().unwrap();
        // Unchanged: not written again.
        fs::remove_file(d.path().join(FILE)).unwrap();
        m.save().unwrap();
        assert!(!d.path().join(FILE).exists());
        m.state.raised.insert("destroy:3".into());
        // One monitor per state directory.
        let e = Memory::open(d.path(), "/log").unwrap_err();
        assert!(e.contains("another monitor is using"), "{e}");
        m.state.outbox.push(Owed {
            sink: "jsonl:x".into(),
            key: "destroy:3".into(),
            body: "{}".into(),
            attempts: 1,
            last_error: Some("down".into()),
        });
        m.save().unwrap();
        let outbox = m.state.outbox.clone();
        drop(m);
        let again = Memory::open(d.path(), "/log").unwrap();
        assert!(again.state.raised.contains("destroy:3"));
        assert_eq!(again.state.outbox, outbox);
        // No temporary file left behind.
        let mut names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["lock".to_string(), FILE.to_string()]);
    }

    #[test]
    fn refuses_another_logs_state_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let mut m = Memory::open(d.path(), "/log").unwrap();
        m.save().unwrap();
        drop(m);
        let e = Memory::open(d.path(), "/other").unwrap_err();
        assert!(e.contains("not of /other"), "{e}");
        fs::write(d.path().join(FILE), b"{").unwrap();
        let e = Memory::open(d.path(), "/log").unwrap_err();
        assert!(e.contains("is damaged"), "{e}");
    }

    #[test]
    fn default_dir_differs_per_log_and_key() {
        let a = default_dir("/log", "k+1+x");
        assert_ne!(a, default_dir("/log2", "k+1+x"));
        assert_ne!(a, default_dir("/log", "k+2+x"));
        assert!(a.to_string_lossy().contains("tftrail/monitor/"));
    }
}
