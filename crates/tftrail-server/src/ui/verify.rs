//! The server verifies its own log, for the status page: in full once at start (in the
//! background: the server answers meanwhile), then incrementally every
//! [`INCREMENTAL_EVERY`] (the new checkpoint's signature, and a consistency proof that the
//! tree verified before is a prefix of it), and in full again when an admin asks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::merkle::{check_consistency, hash_b64};
use tftrail_log::VerifyOptions;

use crate::state::AppState;

/// How often the log is verified incrementally.
pub const INCREMENTAL_EVERY: Duration = Duration::from_secs(30);

/// One verification's result.
#[derive(Debug, Clone)]
pub struct Verification {
    /// When it ended (UTC, RFC 3339).
    pub time: String,
    /// `full` or `incremental`.
    pub how: &'static str,
    /// Who asked: `the server (at start)`, `the server (every 30 s)`, `admin NAME`.
    pub by: String,
    /// The tree size verified.
    pub size: u64,
    /// Its root (base64).
    pub root: String,
    /// Problems found; empty when the log is intact.
    pub problems: Vec<String>,
    /// How long it took.
    pub took: Duration,
}

/// The last verifications.
#[derive(Default)]
pub struct Verifier {
    last: Mutex<Option<Verification>>,
    /// The last full one (the incremental ones build on it).
    last_full: Mutex<Option<Verification>>,
    /// The checkpoint last found good.
    good: Mutex<Option<Checkpoint>>,
    running: AtomicBool,
}

impl Verifier {
    /// The last verification (full or incremental) and the last full one.
    pub fn last(&self) -> (Option<Verification>, Option<Verification>) {
        (
            self.last.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            self.last_full
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// Whether a full verification is running.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    fn store(&self, v: Verification, cp: Option<Checkpoint>) {
        if v.problems.is_empty() {
            if let Some(cp) = cp {
                *self.good.lock().unwrap_or_else(|p| p.into_inner()) = Some(cp);
            }
        }
        if v.how == "full" {
            *self.last_full.lock().unwrap_or_else(|p| p.into_inner()) = Some(v.clone());
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }
}

/// Verifies the whole log (blocking); `false` when one was already running.
pub fn full(st: &AppState, by: &str) -> bool {
    let v = &st.ui.verifier;
    if v.running.swap(true, Ordering::SeqCst) {
        return false;
    }
    let started = Instant::now();
    let previous = v.good.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let result = st.log.verify(&VerifyOptions { previous }, &mut |_, _| {});
    let out = match result {
        Ok(rep) => {
            let cp = rep.head.as_ref().map(|h| h.checkpoint.clone());
            (
                Verification {
                    time: crate::api::now_utc(),
                    how: "full",
                    by: by.to_string(),
                    size: rep.size,
                    root: rep.root.clone(),
                    problems: rep.problems.iter().map(|p| p.to_string()).collect(),
                    took: started.elapsed(),
                },
                cp,
            )
        }
        Err(e) => (
            Verification {
                time: crate::api::now_utc(),
                how: "full",
                by: by.to_string(),
                size: 0,
                root: String::new(),
                problems: vec![e.to_string()],
                took: started.elapsed(),
            },
            None,
        ),
    };
    v.store(out.0, out.1);
    v.running.store(false, Ordering::SeqCst);
    true
}

/// Checks the current checkpoint against the last good one (blocking): its signature (read
/// through the log) and a consistency proof. Nothing to do before a full verification, or
/// when the log has not grown.
pub fn incremental(st: &AppState) {
    let v = &st.ui.verifier;
    if v.running() {
        return;
    }
    let Some(good) = v.good.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
        return;
    };
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut cp = None;
    match st.log.head() {
        Ok(h) if h.checkpoint.size == good.size && h.checkpoint.root == good.root => return,
        Ok(h) => {
            let new = h.checkpoint;
            if new.size < good.size {
                problems.push(format!(
                    "the checkpoint's tree size {} is smaller than the {} verified before: the log was rolled back",
                    new.size, good.size
                ));
            } else {
                match st.log.consistency(&new, good.size) {
                    Ok(proof) => {
                        if let Err(e) =
                            check_consistency(&proof, good.size, good.root, new.size, new.root)
                        {
                            problems.push(format!(
                                "the tree of size {} verified before is not a prefix of the log: {e}",
                                good.size
                            ));
                        }
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
            cp = Some(new);
        }
        Err(e) => problems.push(e.to_string()),
    }
    let (size, root) = cp
        .as_ref()
        .map(|c| (c.size, hash_b64(&c.root)))
        .unwrap_or_default();
    v.store(
        Verification {
            time: crate::api::now_utc(),
            how: "incremental",
            by: format!(
                "the server (every {} s, from size {})",
                INCREMENTAL_EVERY.as_secs(),
                good.size
            ),
            size,
            root,
            problems,
            took: started.elapsed(),
        },
        cp,
    );
}
