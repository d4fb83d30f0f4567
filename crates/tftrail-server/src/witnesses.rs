//! Witness cosignatures (docs/decisions/0014-cosignatures.md): every checkpoint the sequencer
//! publishes is submitted to each witness of the `--witness-policy` that has a URL (C2SP
//! tlog-witness `POST <url>/add-checkpoint`), all at once, each with a timeout. Each returned
//! cosignature is verified against the policy's key for that witness before it is used; the
//! valid ones are attached to the stored checkpoint by compare-and-swap, only while the stored
//! checkpoint still has the body they sign ([`Log::add_cosignatures`]).
//!
//! Each witness has its own task, so a slow or hung witness holds back no other. Submissions
//! coalesce: while a witness is busy, newer checkpoints replace each other and the latest is
//! submitted next (one submission per group commit at most, fewer under load). One task
//! gathers the answers for the newest checkpoint answered for.
//! Appends are never stopped by a witness: an append waits at most `limits.quorum_wait_millis`
//! for the quorum and then answers, saying whether it was met.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// One witness's answer for a checkpoint.
struct Answer {
    witness: usize,
    size: u64,
    note: Arc<Vec<u8>>,
    line: Option<Vec<u8>>,
}

/// The cosignatures gathered for the newest checkpoint answered for.
struct Current {
    size: u64,
    text: Vec<u8>,
    note: Vec<u8>,
    lines: Vec<Vec<u8>>,
    attached: usize,
    answered: Vec<bool>,
    /// The quorum was reached.
    quorum: bool,
    /// Its miss was counted.
    missed: bool,
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

    /// Starts the submission tasks on the current runtime: one per witness, so that a slow
    /// or hung witness never holds back the others, and one that gathers their answers.
    pub fn spawn(self: &Arc<Self>, log: Arc<Log>, metrics: Arc<Metrics>) {
        let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel::<Answer>();
        for (i, t) in self.targets.iter().enumerate() {
            let (me, t, log, metrics, tx) = (
                self.clone(),
                t.clone(),
                log.clone(),
                metrics.clone(),
                tx.clone(),
            );
            tokio::spawn(async move {
                let mut rx = me.input.subscribe();
                while rx.changed().await.is_ok() {
                    let note = rx.borrow_and_update().clone();
                    let Some(note) = note else { continue };
                    let Ok(cp) = log.key().open_checkpoint(&note) else {
                        continue;
                    };
                    let size = cp.size;
                    let line = me
                        .submit_one(t.clone(), log.clone(), note.clone(), cp, &metrics)
                        .await;
                    if tx
                        .send(Answer {
                            witness: i,
                            size,
                            note,
                            line,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut cur: Option<Current> = None;
            while let Some(a) = answers.recv().await {
                me.gather(&log, &metrics, &mut cur, a).await;
            }
        });
    }

    /// Waits (at most [`Witnesses::wait`]) until a checkpoint of at least `size` has the
    /// quorum, or every witness has answered for it without. Returns that checkpoint with what
    /// it gathered (at the deadline, what it has so far), or `None` when no witness answered
    /// for a checkpoint that large in time.
    pub async fn wait_for(&self, size: u64) -> Option<Arc<Gathered>> {
        if self.targets.is_empty() {
            return None;
        }
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

    /// Takes one witness's answer into the newest checkpoint's cosignatures: attached to the
    /// stored checkpoint as soon as the quorum is reached, and the late ones once every
    /// witness has answered for it. Answers for an older checkpoint than the newest one
    /// answered for are dropped (never attached to a newer one).
    async fn gather(
        &self,
        log: &Arc<Log>,
        metrics: &Metrics,
        cur: &mut Option<Current>,
        a: Answer,
    ) {
        if cur.as_ref().is_none_or(|c| a.size > c.size) {
            let Ok(text) = log.key().open_note(&a.note) else {
                return;
            };
            if cur.as_ref().is_some_and(|c| !c.quorum && !c.missed) {
                metrics.quorum_missed();
            }
            *cur = Some(Current {
                size: a.size,
                text,
                note: a.note.to_vec(),
                lines: Vec::new(),
                attached: 0,
                answered: vec![false; self.targets.len()],
                quorum: self.policy.check(&a.note).satisfied,
                missed: false,
            });
        }
        let c = cur.as_mut().expect("set above");
        if a.size < c.size || c.answered[a.witness] {
            return;
        }
        c.answered[a.witness] = true;
        if let Some(line) = a.line {
            if let Ok(n) = add_signatures(&c.note, std::slice::from_ref(&line)) {
                c.note = n;
                c.lines.push(line);
            }
        }
        let settled = c.answered.iter().all(|x| *x);
        let reached = !c.quorum && self.policy.check(&c.note).satisfied;
        if reached || (settled && c.lines.len() > c.attached) {
            c.quorum |= reached;
            c.note = self.attach(log, &c.text, &c.lines, c.note.clone()).await;
            c.attached = c.lines.len();
        }
        if settled && !c.quorum && !c.missed {
            metrics.quorum_missed();
            c.missed = true;
        }
        self.publish_gathered(c.size, &c.note, settled);
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
