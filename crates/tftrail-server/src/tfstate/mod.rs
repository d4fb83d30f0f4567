//! Terraform's and OpenTofu's `http` state backend, at `/state/{name}`.
//!
//! Every change to a state passes through here, so every one is recorded with the
//! authenticated caller, whatever tool made it. The log is the source of truth: a state
//! version exists when its `terraform.state.write` record is in the log; the state store
//! (`--state-store`, separate from the log because state holds secrets) keeps each version's
//! bytes under `<name>/<sha256>.tfstate`, create-only, and every read checks them against
//! the SHA-256 the record holds. Locks are records too (`terraform.state.lock`, `unlock`,
//! `force_unlock`), so a restarted server finds the locks and versions it had from its
//! index of the log.
//!
//! One server serves a state name at a time: the checks before a write (lock, lineage,
//! serial) are made against this process's view, under a per-name mutex
//! (docs/decisions/0009-state-backend.md).
//!
//! - `lock.rs`: Terraform's lock info
//! - `http.rs`: the handlers (GET, POST, DELETE, LOCK, UNLOCK; `/v1/state` listings)

mod http;
mod lock;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tftrail_store::{NewObject, Store};

pub(crate) use http::who_of;
pub use http::{state, v1_state, v1_states};
pub use lock::LockInfo;

use crate::error::ApiError;

/// The longest state name.
const MAX_NAME: usize = 200;

/// Checks a state name: `/`-separated segments of `[A-Za-z0-9._-]`, none `.`, `..` or
/// ending in `.tfstate` (the state store's file names), at most 200 bytes.
pub fn check_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("state name {name:?} {why}"));
    if name.is_empty() {
        return bad("is empty: use /state/<name>, e.g. /state/team/prod");
    }
    if name.len() > MAX_NAME {
        return bad(&format!("is longer than {MAX_NAME} bytes"));
    }
    for seg in name.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad("has an empty, `.` or `..` segment");
        }
        if !seg
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            return bad("may hold only letters, digits, `.`, `_`, `-` and `/`");
        }
        if seg.ends_with(".tfstate") {
            return bad("has a segment ending in .tfstate");
        }
    }
    Ok(())
}

/// The state store's path of one version.
fn object_path(name: &str, sha256: &str) -> String {
    format!("{name}/{sha256}.tfstate")
}

/// The current version of a state, as its record says.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// The record that wrote it.
    pub index: u64,
    pub sha256: String,
    pub serial: u64,
    pub lineage: String,
}

/// A lock held, as its record says.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub info: LockInfo,
    /// The `terraform.state.lock` record.
    pub index: u64,
    /// The intent of the `tftrail run` open when it was taken.
    pub run: Option<u64>,
}

/// One state name's view: loaded from the index on first use, then kept by this process.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub loaded: bool,
    pub current: Option<Current>,
    pub lock: Option<Held>,
}

/// A `tftrail run` whose intent named a state on this server and whose outcome has not come.
#[derive(Debug, Clone)]
struct OpenRun {
    intent: u64,
    time_ns: i64,
    /// `user@host` its intent's writer gave, when it gave both.
    who: Option<String>,
}

/// What an appended record says of runs (kept by [`StateBackend::note_run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// An intent whose context names this state, and `user@host` of its writer.
    Opened(String, Option<String>),
    /// An outcome of that intent.
    Closed(u64),
}

/// What a record appended through the server means for run linking, if anything.
pub fn run_event(kind: &str, payload: &Value, who: Option<String>) -> Option<RunEvent> {
    if kind.ends_with(".intent") {
        let addr = payload.pointer("/context/state_address")?.as_str()?;
        let name = tftrail_index::state_name_from_address(addr)?;
        return Some(RunEvent::Opened(name, who));
    }
    if kind.ends_with(".outcome") {
        return payload
            .get("intent_index")
            .and_then(Value::as_u64)
            .map(RunEvent::Closed);
    }
    None
}

/// The state backend's shared part of the server state.
pub struct StateBackend {
    store: Box<dyn Store>,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    runs: Mutex<HashMap<String, Vec<OpenRun>>>,
    runs_loaded: tokio::sync::OnceCell<()>,
    run_window: Duration,
}

impl StateBackend {
    /// A backend keeping versions in `store`; a run is open for at most `run_window`.
    pub fn new(store: Box<dyn Store>, run_window: Duration) -> Self {
        StateBackend {
            store,
            slots: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
            runs_loaded: tokio::sync::OnceCell::new(),
            run_window,
        }
    }

    /// The state store's location.
    pub fn location(&self) -> String {
        self.store.location()
    }

    fn slot(&self, name: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Notes what an appended record (at `index`) says of runs.
    pub fn note_run(&self, ev: RunEvent, index: u64, time_ns: i64) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        match ev {
            RunEvent::Opened(name, who) => runs.entry(name).or_default().push(OpenRun {
                intent: index,
                time_ns,
                who,
            }),
            RunEvent::Closed(intent) => {
                for v in runs.values_mut() {
                    v.retain(|r| r.intent != intent);
                }
                runs.retain(|_, v| !v.is_empty());
            }
        }
    }

    /// The latest run open on `name` now, if any (runs older than the window are dropped).
    /// With `who` (a lock's `user@host`), only a run whose writer named the same host, or
    /// none: a plain `terraform apply` elsewhere that takes the lock while a run waits for it
    /// is not that run. Hosts only, because Terraform and tftrail find the user name in
    /// different places (passwd entry, `$USER`) and may disagree.
    fn open_run(&self, name: &str, now_ns: i64, who: Option<&str>) -> Option<u64> {
        let window = self.run_window.as_nanos() as i64;
        let host = |w: &str| w.rsplit_once('@').map(|(_, h)| h.to_string());
        let want = who.and_then(host);
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let v = runs.get_mut(name)?;
        v.retain(|r| now_ns.saturating_sub(r.time_ns) <= window);
        v.iter()
            .filter(|r| match (&want, r.who.as_deref().and_then(host)) {
                (Some(a), Some(b)) => *a == b,
                _ => true,
            })
            .map(|r| r.intent)
            .max()
    }

    /// Stores a version's bytes (create-only; the same bytes again is success).
    fn put(&self, name: &str, sha256: &str, bytes: Vec<u8>) -> Result<(), ApiError> {
        self.store
            .create_all(&[NewObject::new(object_path(name, sha256), bytes)])
            .map_err(|e| {
                ApiError::internal(format!(
                    "state {name}: cannot store the new version in the state store {}: {e}",
                    self.store.location()
                ))
            })
    }

    /// Reads a version's bytes, checked against the SHA-256 its record holds.
    fn get(&self, name: &str, sha256: &str, index: u64) -> Result<Vec<u8>, ApiError> {
        let loc = self.store.location();
        let bytes = self
            .store
            .get(&object_path(name, sha256))
            .map_err(|e| {
                ApiError::internal(format!(
                    "state {name}: cannot read the version recorded at index {index} from the state store {loc}: {e}"
                ))
            })?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "state {name}: the version recorded at index {index} (sha256 {sha256}) is missing from the state store {loc}: the state store was altered"
                ))
            })?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != sha256 {
            return Err(ApiError::internal(format!(
                "state {name}: the state store's copy of the version recorded at index {index} has sha256 {got}, but the record says {sha256}: the state store was altered"
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["prod", "team/prod", "a.b_c-d/e", "x/y/z"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("a//b", "empty"),
            ("a/../b", "`..`"),
            ("./a", "`.`"),
            ("a b", "letters"),
            ("a/%2e", "letters"),
            ("a/x.tfstate", ".tfstate"),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(check_name(&"a".repeat(201)).unwrap_err().contains("200"));
    }

    #[test]
    fn runs_open_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = tftrail_store::create(dir.path().to_str().unwrap()).unwrap();
        let b = StateBackend::new(store, Duration::from_secs(60));
        let s = 1_000_000_000i64;
        b.note_run(RunEvent::Opened("p".into(), Some("a@h1".into())), 5, 10 * s);
        b.note_run(RunEvent::Opened("p".into(), Some("b@h2".into())), 9, 20 * s);
        assert_eq!(b.open_run("p", 21 * s, None), Some(9));
        assert_eq!(b.open_run("p", 21 * s, Some("a@h1")), Some(5));
        // Terraform may name the user otherwise; the host decides.
        assert_eq!(b.open_run("p", 21 * s, Some("root@h1")), Some(5));
        assert_eq!(b.open_run("p", 21 * s, Some("a@h3")), None);
        assert_eq!(b.open_run("q", 21 * s, None), None);
        b.note_run(RunEvent::Closed(9), 10, 22 * s);
        assert_eq!(b.open_run("p", 22 * s, None), Some(5));
        // Older than the window: no longer open.
        assert_eq!(b.open_run("p", 71 * s, None), None);
    }

    #[test]
    fn run_events_of_records() {
        let intent =
            serde_json::json!({"context": {"state_address": "http://h:1/state/team/prod"}});
        assert_eq!(
            run_event("terraform.apply.intent", &intent, None),
            Some(RunEvent::Opened("team/prod".into(), None))
        );
        assert_eq!(
            run_event(
                "terraform.apply.intent",
                &serde_json::json!({"context": {}}),
                None
            ),
            None
        );
        assert_eq!(
            run_event(
                "terraform.apply.outcome",
                &serde_json::json!({"intent_index": 4}),
                None
            ),
            Some(RunEvent::Closed(4))
        );
        assert_eq!(run_event("terraform.plan", &intent, None), None);
    }

    #[test]
    fn versions_are_checked_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = tftrail_store::create(dir.path().to_str().unwrap()).unwrap();
        let b = StateBackend::new(store, Duration::from_secs(60));
        let bytes = b"{\"version\":4}".to_vec();
        let sha = hex::encode(Sha256::digest(&bytes));
        b.put("team/prod", &sha, bytes.clone()).unwrap();
        b.put("team/prod", &sha, bytes.clone()).unwrap();
        assert_eq!(b.get("team/prod", &sha, 3).unwrap(), bytes);
        let other = "0".repeat(64);
        let e = b.get("team/prod", &other, 3).unwrap_err();
        assert!(
            e.message.contains("missing") && e.message.contains("index 3"),
            "{}",
            e.message
        );
        // Altered on disk.
        let p = dir.path().join(format!("team/prod/{sha}.tfstate"));
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&p, perm).unwrap();
        std::fs::write(&p, b"{\"version\":4,\"x\":1}").unwrap();
        let e = b.get("team/prod", &sha, 3).unwrap_err();
        assert!(e.message.contains("was altered"), "{}", e.message);
    }
}
