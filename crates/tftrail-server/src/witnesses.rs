//! Witness cosignatures (docs/decisions/0014-cosignatures.md): every checkpoint the sequencer
//! publishes is submitted to each witness of the `--witness-policy` that has a URL (C2SP
//! tlog-witness `POST <url>/add-checkpoint`), all at once, each with a timeout. Each returned
//! cosignature is verified against the policy's key for that witness before it is used; the
//! valid ones are attached to the stored checkpoint by compare-and-swap, only while the stored
//! checkpoint still has the body they sign ([`Log::add_cosignatures`]).
//!
//! Submissions coalesce: while a round runs, newer checkpoints replace each other and the
//! latest is submitted next (one submission per group commit at most, fewer under load).
//! Appends are never stopped by a witness: an append waits at most `limits.quorum_wait_millis`
//! for the quorum and then answers, saying whether it was met.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};
use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::cosignature::{add_signatures, cosignatures, WitnessVerifier};
use tftrail_core::policy::{Policy, QuorumReport};
use tftrail_log::Log;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// The response header that says whether a checkpoint carries the policy's quorum.
pub const QUORUM_HEADER: &str = "tftrail-witness-quorum";

/// A witness the server submits to.
struct Target {
    name: String,
    verifier: WitnessVerifier,
    /// `<url>/add-checkpoint`.
    endpoint: String,
    /// The size of the last checkpoint this witness cosigned or told us it holds.
    size: Mutex<Option<u64>>,
}

/// The newest checkpoint a round has gathered cosignatures for.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// Its tree size.
    pub size: u64,
    /// The checkpoint with the cosignatures gathered so far.
    pub note: Vec<u8>,
    /// Every witness answered (or failed) for it.
    pub settled: bool,
}

/// The witness side of the server.
pub struct Witnesses {
    policy: Policy,
    targets: Vec<Arc<Target>>,
    client: reqwest::Client,
    timeout: Duration,
    /// How long an append waits for the quorum.
    pub wait: Duration,
    input: watch::Sender<Option<Arc<Vec<u8>>>>,
    gathered: watch::Sender<Option<Arc<Gathered>>>,
}

impl Witnesses {
    /// Submits to the witnesses of `policy` that have a URL.
    pub fn new(
        policy: Policy,
        timeout: Duration,
        wait: Duration,
    ) -> Result<Witnesses, crate::ServerError> {
        let targets = policy
            .witnesses()
            .iter()
            .filter_map(|w| {
                let url = w.url.as_ref()?;
                Some(Arc::new(Target {
                    name: w.name.clone(),
                    verifier: w.verifier.clone(),
                    endpoint: format!("{}/add-checkpoint", url.trim_end_matches('/')),
                    size: Mutex::new(None),
                }))
            })
            .collect();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .build()
            .map_err(|e| crate::ServerError::Config(format!("witness HTTP client: {e}")))?;
        Ok(Witnesses {
            policy,
            targets,
            client,
            timeout,
            wait,
            input: watch::Sender::new(None),
            gathered: watch::Sender::new(None),
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Queues a published checkpoint for submission (replacing one not yet submitted).
    /// Callable from any thread.
    pub fn submit(&self, note: Arc<Vec<u8>>) {
        self.input.send_replace(Some(note));
    }

    /// Starts the submission task on the current runtime.
    pub fn spawn(self: &Arc<Self>, log: Arc<Log>, metrics: Arc<Metrics>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut rx = me.input.subscribe();
            while rx.changed().await.is_ok() {
                let note = rx.borrow_and_update().clone();
                if let Some(note) = note {
                    me.round(&log, &metrics, note).await;
                }
            }
        });
    }

    /// Waits (at most [`Witnesses::wait`]) until a checkpoint of at least `size` has the
    /// quorum, or its round has settled without it. Returns that checkpoint with what it
    /// gathered, or `None` when no round reached `size` in time.
    pub async fn wait_for(&self, size: u64) -> Option<Arc<Gathered>> {
        let mut rx = self.gathered.subscribe();
        let deadline = tokio::time::sleep(self.wait);
        tokio::pin!(deadline);
        loop {
            let cur = rx.borrow_and_update().clone();
            if let Some(g) = cur.filter(|g| g.size >= size) {
                if g.settled || self.policy.check(&g.note).satisfied {
                    return Some(g);
                }
            }
            tokio::select! {
                _ = &mut deadline => {
                    return rx.borrow().clone().filter(|g| g.size >= size);
                }
                changed = rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// One round: `note` to every witness at once; the cosignatures attached as they come
    /// (at once when the quorum is reached, then the late ones at the end).
    async fn round(&self, log: &Arc<Log>, metrics: &Arc<Metrics>, note: Arc<Vec<u8>>) {
        let Ok(cp) = log.key().open_checkpoint(&note) else {
            return;
        };
        let Ok(text) = log.key().open_note(&note) else {
            return;
        };
        let mut pending: FuturesUnordered<_> = self
            .targets
            .iter()
            .map(|t| self.submit_one(t.clone(), log.clone(), note.clone(), cp.clone(), metrics))
            .collect();
        let mut current = note.to_vec();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut attached = 0usize;
        self.publish_gathered(cp.size, &current, pending.is_empty());
        let mut quorum = self.policy.check(&current).satisfied;
        while let Some(line) = pending.next().await {
            if let Some(line) = line {
                if let Ok(n) = add_signatures(&current, std::slice::from_ref(&line)) {
                    current = n;
                    lines.push(line);
                }
            }
            let now = self.policy.check(&current).satisfied;
            if now && !quorum {
                quorum = true;
                current = self.attach(log, &text, &lines, current).await;
                attached = lines.len();
            }
            // "Settled" only once the late cosignatures are attached too (below).
            self.publish_gathered(cp.size, &current, false);
        }
        if lines.len() > attached {
            current = self.attach(log, &text, &lines, current).await;
        }
        self.publish_gathered(cp.size, &current, true);
        if !quorum {
            metrics.quorum_missed();
        }
    }

    fn publish_gathered(&self, size: u64, note: &[u8], settled: bool) {
        self.gathered.send_replace(Some(Arc::new(Gathered {
            size,
            note: note.to_vec(),
            settled,
        })));
    }

    /// Attaches `lines` to the stored checkpoint when it still has body `text`; returns the
    /// note to hand out (the stored one, which may carry other servers' cosignatures too, or
    /// `current` when the checkpoint moved on).
    async fn attach(
        &self,
        log: &Arc<Log>,
        text: &[u8],
        lines: &[Vec<u8>],
        current: Vec<u8>,
    ) -> Vec<u8> {
        let (log, text, lines) = (log.clone(), text.to_vec(), lines.to_vec());
        match tokio::task::spawn_blocking(move || log.add_cosignatures(&text, &lines)).await {
            Ok(Ok(Some(stored))) => stored,
            Ok(Ok(None)) => current,
            Ok(Err(e)) => {
                eprintln!("tftrail serve: cannot attach the cosignatures to the checkpoint: {e}");
                current
            }
            Err(e) => {
                eprintln!("tftrail serve: cannot attach the cosignatures: {e}");
                current
            }
        }
    }

    /// Submits to one witness; its valid cosignature line, or `None` (logged and counted).
    async fn submit_one(
        &self,
        t: Arc<Target>,
        log: Arc<Log>,
        note: Arc<Vec<u8>>,
        cp: Checkpoint,
        metrics: &Metrics,
    ) -> Option<Vec<u8>> {
        let started = Instant::now();
        let out = self.try_submit(&t, &log, &note, &cp).await;
        let took = started.elapsed();
        match out {
            Ok(line) => {
                metrics.witnessed(&t.name, took, None);
                Some(line)
            }
            Err((reason, message)) => {
                metrics.witnessed(&t.name, took, Some(reason));
                eprintln!(
                    "tftrail serve: witness {} did not cosign the checkpoint of size {}: {message}",
                    t.name, cp.size
                );
                None
            }
        }
    }

    async fn try_submit(
        &self,
        t: &Target,
        log: &Arc<Log>,
        note: &[u8],
        cp: &Checkpoint,
    ) -> Result<Vec<u8>, (&'static str, String)> {
        // A stale size (the witness restarted, or another server submitted) is learnt from
        // the 409 answer and retried once.
        for attempt in 0..2 {
            let old = t.size.lock().map(|s| s.unwrap_or(0)).unwrap_or(0);
            if old > cp.size {
                return Err((
                    "ahead",
                    format!(
                        "it holds a checkpoint of size {old}, larger than this one (another server's?)"
                    ),
                ));
            }
            let proof = if old == 0 || old == cp.size {
                Vec::new()
            } else {
                let (log, cp2) = (log.clone(), cp.clone());
                tokio::task::spawn_blocking(move || log.consistency(&cp2, old))
                    .await
                    .map_err(|e| ("proof", e.to_string()))?
                    .map_err(|e| ("proof", format!("cannot build the consistency proof: {e}")))?
            };
            let mut body = format!("old {old}\n");
            for h in &proof {
                body.push_str(&tftrail_core::merkle::hash_b64(h));
                body.push('\n');
            }
            body.push('\n');
            let mut body = body.into_bytes();
            body.extend_from_slice(note);
            let resp = self
                .client
                .post(&t.endpoint)
                .timeout(self.timeout)
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    let reason = if e.is_timeout() {
                        "timeout"
                    } else {
                        "unreachable"
                    };
                    (reason, format!("{}: {e}", t.endpoint))
                })?;
            let status = resp.status().as_u16();
            let size_answer = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/x.tlog.size"));
            let text = resp
                .bytes()
                .await
                .map_err(|e| ("unreachable", format!("reading the answer: {e}")))?;
            match status {
                200 => {
                    // Only a line that verifies with the policy's key for this witness is
                    // kept.
                    let line = String::from_utf8_lossy(&text)
                        .lines()
                        .map(|l| format!("{l}\n").into_bytes())
                        .find(|l| {
                            add_signatures(note, std::slice::from_ref(l)).is_ok_and(|n| {
                                !cosignatures(&n, std::slice::from_ref(&t.verifier)).is_empty()
                            })
                        })
                        .ok_or_else(|| {
                            (
                                "bad-cosignature",
                                format!(
                                    "its answer holds no valid cosignature by {}",
                                    t.verifier.display_id()
                                ),
                            )
                        })?;
                    if let Ok(mut s) = t.size.lock() {
                        *s = Some(cp.size);
                    }
                    return Ok(line);
                }
                409 if size_answer => {
                    let theirs = std::str::from_utf8(&text)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .ok_or(("conflict", "409 without a readable size".to_string()))?;
                    if let Ok(mut s) = t.size.lock() {
                        *s = Some(theirs);
                    }
                    if attempt == 0 {
                        continue;
                    }
                    return Err((
                        "conflict",
                        format!("it holds size {theirs} and not {old}, twice in a row"),
                    ));
                }
                409 => {
                    return Err((
                        "conflict",
                        format!(
                            "409: it holds another checkpoint of this size (a fork?): {}",
                            String::from_utf8_lossy(&text).trim()
                        ),
                    ))
                }
                s => {
                    return Err((
                        status_reason(s),
                        format!("{s}: {}", String::from_utf8_lossy(&text).trim()),
                    ))
                }
            }
        }
        Err(("conflict", "size conflict".into()))
    }
}

fn status_reason(s: u16) -> &'static str {
    match s {
        400 => "status-400",
        403 => "status-403",
        404 => "status-404",
        422 => "status-422",
        500..=599 => "status-5xx",
        _ => "status-other",
    }
}

/// The quorum of `note` as JSON: `{"quorum": bool, "required": "...", "cosigned_by": [...],
/// "missing": [...]}`.
pub fn quorum_json(policy: &Policy, note: &[u8]) -> (bool, Value) {
    let r: QuorumReport = policy.check(note);
    let v = json!({
        "quorum": r.satisfied,
        "required": policy.describe_quorum(),
        "cosigned_by": r.cosigned_by.iter().map(|c| json!({"name": c.name, "time": c.time})).collect::<Vec<_>>(),
        "missing": r.missing,
    });
    (r.satisfied, v)
}

/// The header value for [`QUORUM_HEADER`].
pub fn quorum_word(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "not-met"
    }
}
