//! Refused requests are recorded in the log (`server.access.denied`), coalesced so that a
//! flood cannot fill it: per source address, the first refusal of a minute is recorded at
//! once; further ones in that minute (`limits.denied_window_secs`) are counted and recorded as one summary when the minute
//! is over. Memory is bounded: beyond [`MAX_SOURCES`] addresses, new ones share one window.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tftrail_core::record::{Actor, Record};

use crate::auth::Denial;
use crate::sequencer::Sequencer;

/// The most source addresses tracked at once.
pub const MAX_SOURCES: usize = 10_000;

struct Window {
    opened: Instant,
    opened_at: String,
    /// Refusals after the first, not yet recorded.
    suppressed: u64,
    reasons: BTreeMap<String, u64>,
    last_path: String,
    last_credential: Option<String>,
}

/// The coalescing recorder.
pub struct DeniedLog {
    seq: Sequencer,
    window: Duration,
    actor: Actor,
    windows: Mutex<HashMap<Option<IpAddr>, Window>>,
}

impl DeniedLog {
    /// Records through `seq`, as `actor`, one window lasting `window`.
    pub fn new(seq: Sequencer, actor: Actor, window: Duration) -> Self {
        DeniedLog {
            seq,
            window,
            actor,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// A refused request from `source`.
    pub fn record(&self, source: IpAddr, method: &str, path: &str, d: &Denial) {
        let now = Instant::now();
        let mut out = Vec::new();
        {
            let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            let key = if w.len() >= MAX_SOURCES && !w.contains_key(&Some(source)) {
                None
            } else {
                Some(source)
            };
            match w.get_mut(&key) {
                Some(win) if now.duration_since(win.opened) < self.window => {
                    win.suppressed += 1;
                    *win.reasons.entry(d.reason.clone()).or_default() += 1;
                    win.last_path = path.to_string();
                    win.last_credential = d.credential.clone();
                    return;
                }
                Some(win) => {
                    if let Some(p) = summary(key, win) {
                        out.push(p);
                    }
                }
                None => {}
            }
            w.insert(
                key,
                Window {
                    opened: now,
                    opened_at: crate::api::now_utc(),
                    suppressed: 0,
                    reasons: BTreeMap::new(),
                    last_path: String::new(),
                    last_credential: None,
                },
            );
        }
        out.push(json!({
            "source": key_text(Some(source)),
            "method": method,
            "path": path,
            "status": d.status,
            "reason": d.reason,
            "credential": d.credential,
            "count": 1,
        }));
        self.emit(out);
    }

    /// Records the summaries of windows that are over, and forgets them. Called every few
    /// seconds, and at shutdown with `all`.
    pub fn flush(&self, all: bool) {
        let now = Instant::now();
        let mut out = Vec::new();
        {
            let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            w.retain(|k, win| {
                if all || now.duration_since(win.opened) >= self.window {
                    out.extend(summary(*k, win));
                    false
                } else {
                    true
                }
            });
        }
        self.emit(out);
    }

    fn emit(&self, payloads: Vec<Value>) {
        if payloads.is_empty() {
            return;
        }
        let time = crate::api::now_utc();
        let mut entries = Vec::with_capacity(payloads.len());
        for p in payloads {
            match Record::new("server.access.denied", &time, self.actor.clone(), p, vec![])
                .and_then(|r| r.to_entry())
            {
                Ok(e) => entries.push(e),
                Err(e) => eprintln!("tftrail serve: cannot record a denied access: {e}"),
            }
        }
        if !entries.is_empty() {
            self.seq.append_detached(entries);
        }
    }
}

fn key_text(k: Option<IpAddr>) -> String {
    match k {
        Some(ip) => ip.to_string(),
        None => "(other sources)".to_string(),
    }
}

/// The summary of a window's refusals after its first, if there were any.
fn summary(k: Option<IpAddr>, w: &Window) -> Option<Value> {
    (w.suppressed > 0).then(|| {
        json!({
            "source": key_text(k),
            "coalesced": true,
            "since": w.opened_at,
            "count": w.suppressed,
            "reasons": w.reasons,
            "path": w.last_path,
            "credential": w.last_credential,
        })
    })
}
