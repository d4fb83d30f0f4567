//! One monitoring round: the checkpoint against the last one seen, the new entries verified
//! incrementally, the rules on the new records, and delivery of what they raised.
//!
//! The order, and what each failure means:
//! 1. Read and verify the signed checkpoint. Against the last checkpoint this monitor
//!    verified: same size and root, nothing new; a smaller size, a rollback; the same size
//!    with another root, or a consistency proof that fails, a fork.
//! 2. Read the new entries in chunks, each authenticated against the new root
//!    ([`Log::entries`]); parse every record; read every blob it references (hash and size
//!    checked); put moved fragments back ([`tftrail_index::inflate`]); extract the resource
//!    changes ([`tftrail_index::extract`]); hand them to the rules.
//! 3. Raise the alerts whose keys were never raised before, queue one delivery per sink in
//!    the outbox, save the memory, deliver the outbox (older deliveries first), save again.
//!
//! An integrity failure stops the round: the last good checkpoint and the rules' memory are
//! kept as they were (the failure is found again next round, and its alert, having the same
//! key, is not delivered twice), and only the `integrity` alert is raised. A failure to read
//! the store is operational: nothing is raised for it, deliveries still owed are still tried.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::merkle::{check_consistency, hash_b64};
use tftrail_core::record::Record;
use tftrail_core::TILE_WIDTH;
use tftrail_log::{Log, LogError};

use crate::alert::{Alert, Severity};
use crate::memory::{Memory, Owed};
use crate::rules::Event;
use crate::sinks::{self, Context, Sender};
use crate::MonitorConfig;

/// Entries read (and handed to the rules) at a time: 16 entry bundles.
pub const CHUNK: u64 = 16 * TILE_WIDTH;

/// Chunks read at once, each by a thread of its own.
pub const PARALLEL: usize = 4;

/// What one round did.
#[derive(Debug, Default)]
pub struct RoundReport {
    /// The checkpoint read this round: origin, size, root (base64).
    pub checkpoint: Option<(String, u64, String)>,
    /// The size of the last checkpoint verified before this round.
    pub previous_size: Option<u64>,
    /// New records read, verified and evaluated.
    pub records: u64,
    /// Distinct blobs read and checked.
    pub blobs: u64,
    /// The alerts raised this round (never raised before).
    pub alerts: Vec<Alert>,
    /// The log failed an integrity check (an `integrity` alert was raised, or had been for the
    /// same failure before).
    pub integrity: bool,
    /// What failed the integrity check.
    pub integrity_message: Option<String>,
    /// An operational failure (the store could not be read, memory not written).
    pub failure: Option<String>,
    /// Deliveries made.
    pub delivered: u64,
    /// Deliveries that failed this round (each after its retries): sink and why.
    pub delivery_failures: Vec<String>,
    /// Deliveries still owed after the round.
    pub owed: usize,
}

impl RoundReport {
    /// The exit code of `tftrail monitor --once`: 1 integrity failure, 4 an alert was
    /// raised, 3 operational failure (store, delivery, memory), 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.integrity {
            1
        } else if !self.alerts.is_empty() {
            4
        } else if self.failure.is_some() || !self.delivery_failures.is_empty() {
            3
        } else {
            0
        }
    }
}

/// Why observing the log stopped.
enum Stop {
    /// The log failed a check: the alert to raise.
    Integrity(Box<Alert>),
    /// The store or the monitor's memory failed.
    Failure(String),
}

fn stop(a: Alert) -> Stop {
    Stop::Integrity(Box::new(a))
}

fn short_hash(s: &[u8]) -> String {
    hex::encode(&Sha256::digest(s)[..8])
}

fn integrity_alert(
    kind: &str,
    key: String,
    records: Vec<u64>,
    summary: String,
    why: &str,
    details: serde_json::Value,
) -> Alert {
    let mut details = details;
    details["check"] = kind.into();
    Alert {
        rule: "integrity".into(),
        severity: Severity::Critical,
        records,
        summary,
        why: why.into(),
        details,
        key,
    }
}

/// A failure to read or check the log at `cp`: an integrity alert or an operational failure.
fn classify(e: LogError, cp: &Checkpoint, what: &str) -> Stop {
    if !e.is_integrity() {
        return Stop::Failure(e.to_string());
    }
    let msg = e.to_string();
    stop(integrity_alert(
        "verification_failed",
        format!(
            "integrity:verify:{}:{}:{}",
            cp.size,
            hash_b64(&cp.root),
            short_hash(msg.as_bytes())
        ),
        Vec::new(),
        format!("the log failed verification ({what}): {msg}"),
        "every new entry, tile and blob must match the signed checkpoint",
        serde_json::json!({"error": msg, "size": cp.size, "root": hash_b64(&cp.root)}),
    ))
}

/// The monitor's host name, for the alerts it sends.
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn unix(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One round with a new [`Sender`] (the default retries).
pub fn round(
    log: &Log,
    cfg: &MonitorConfig,
    mem: &mut Memory,
    now: time::OffsetDateTime,
) -> RoundReport {
    match Sender::new() {
        Ok(s) => round_with(log, cfg, mem, now, &s),
        Err(e) => RoundReport {
            failure: Some(e),
            ..RoundReport::default()
        },
    }
}

/// One round, delivering through `sender`.
pub fn round_with(
    log: &Log,
    cfg: &MonitorConfig,
    mem: &mut Memory,
    now: time::OffsetDateTime,
    sender: &Sender,
) -> RoundReport {
    let mut rep = RoundReport::default();
    let mut seen: Option<(Checkpoint, Vec<u8>)> = None;
    let before = (mem.state.checkpoint.clone(), mem.state.advanced_at);
    let alerts = match observe(log, cfg, mem, now, &mut rep, &mut seen) {
        Ok(alerts) => {
            if let Some((_, note)) = &seen {
                mem.state.checkpoint = Some(String::from_utf8_lossy(note).into_owned());
            }
            alerts
        }
        Err(stop) => {
            match stop {
                Stop::Integrity(a) => {
                    rep.integrity = true;
                    rep.integrity_message = Some(a.summary.clone());
                    // `[rules.integrity] enabled = false`: still a failure (exit 1, the
                    // checkpoint is not accepted), but no alert.
                    if cfg.rules.integrity().enabled {
                        vec![*a]
                    } else {
                        Vec::new()
                    }
                }
                Stop::Failure(e) => {
                    rep.failure = Some(e);
                    Vec::new()
                }
            }
        }
    };
    // The context deliveries name: the checkpoint read, else the last one verified.
    let (origin, size, root) = match (&rep.checkpoint, last_checkpoint(log, mem)) {
        (Some(c), _) => c.clone(),
        (None, Some(c)) => (c.origin.clone(), c.size, hash_b64(&c.root)),
        (None, None) => (String::new(), 0, String::new()),
    };
    let cx = Context {
        origin,
        size,
        root,
        ui_url: cfg.ui_url.clone(),
        host: host_name(),
        time: rfc3339(now),
    };
    raise(cfg, mem, alerts, &cx, &mut rep);
    // Nothing new, nothing raised, nothing owed (the steady state): nothing to write.
    let changed =
        (mem.state.checkpoint.clone(), mem.state.advanced_at) != before || !rep.alerts.is_empty();
    finish(cfg, mem, sender, &mut rep, changed);
    rep
}

/// Saves the memory when `changed` (the outbox must be durable before delivering), delivers,
/// and saves again when a delivery was tried.
fn finish(
    cfg: &MonitorConfig,
    mem: &mut Memory,
    sender: &Sender,
    rep: &mut RoundReport,
    changed: bool,
) {
    if changed {
        if let Err(e) = mem.save() {
            rep.failure.get_or_insert(e);
        }
    }
    if deliver(cfg, mem, sender, rep) {
        if let Err(e) = mem.save() {
            rep.failure.get_or_insert(e);
        }
    }
    rep.owed = mem.state.outbox.len();
}

fn last_checkpoint(log: &Log, mem: &Memory) -> Option<Checkpoint> {
    let note = mem.state.checkpoint.as_ref()?;
    log.key().open_checkpoint(note.as_bytes()).ok()
}

/// Steps 1 and 2: the alerts the new records raise, or why the round stopped. Sets `seen` to
/// the checkpoint to remember when it returns `Ok`.
fn observe(
    log: &Log,
    cfg: &MonitorConfig,
    mem: &mut Memory,
    now: time::OffsetDateTime,
    rep: &mut RoundReport,
    seen: &mut Option<(Checkpoint, Vec<u8>)>,
) -> Result<Vec<Alert>, Stop> {
    let prev = match &mem.state.checkpoint {
        None => None,
        Some(note) => Some(log.key().open_checkpoint(note.as_bytes()).map_err(|e| {
            Stop::Failure(format!(
                "the last checkpoint kept in {} does not verify with this log's key: {e}",
                mem.dir().display()
            ))
        })?),
    };
    rep.previous_size = prev.as_ref().map(|p| p.size);
    let head = match log.head() {
        Ok(h) => h,
        Err(e) if e.is_integrity() => {
            let msg = e.to_string();
            let note = log
                .store()
                .get_checkpoint()
                .ok()
                .flatten()
                .map(|(n, _)| n)
                .unwrap_or_default();
            return Err(stop(integrity_alert(
                "checkpoint",
                format!("integrity:checkpoint:{}", short_hash(&note)),
                Vec::new(),
                format!("the log's checkpoint is not valid: {msg}"),
                "the checkpoint must exist and be signed by the log's key",
                serde_json::json!({"error": msg}),
            )));
        }
        Err(e) => return Err(Stop::Failure(e.to_string())),
    };
    let cp = head.checkpoint.clone();
    let root = hash_b64(&cp.root);
    rep.checkpoint = Some((cp.origin.clone(), cp.size, root.clone()));
    let mut alerts = Vec::new();
    let start = match &prev {
        None => 0,
        Some(p) if p.size > cp.size => {
            return Err(stop(integrity_alert(
                "rollback",
                format!("integrity:rollback:{}:{root}", cp.size),
                Vec::new(),
                format!(
                    "the log was rolled back: its checkpoint has {} records, {} were verified before",
                    cp.size, p.size
                ),
                "a log only grows: a smaller checkpoint means records were removed or an old checkpoint put back",
                serde_json::json!({"size": cp.size, "root": root, "previous_size": p.size, "previous_root": hash_b64(&p.root)}),
            )));
        }
        Some(p) if p.size == cp.size && p.root != cp.root => {
            return Err(stop(fork(p, &cp, "the same size with another root")));
        }
        Some(p) => {
            if p.size > 0 && p.size < cp.size {
                let proof = log
                    .consistency(&cp, p.size)
                    .map_err(|e| classify(e, &cp, "consistency proof"))?;
                if check_consistency(&proof, p.size, p.root, cp.size, cp.root).is_err() {
                    return Err(stop(fork(
                        p,
                        &cp,
                        "no consistency proof from the tree verified before",
                    )));
                }
            }
            p.size
        }
    };
    // Staleness: the checkpoint's size did not grow for longer than `stale_after`.
    if prev.is_none() || start < cp.size || mem.state.advanced_at.is_none() {
        mem.state.advanced_at = Some(unix(now));
    } else if let Some(since) = mem.state.advanced_at {
        let last = time::OffsetDateTime::from_unix_timestamp(since)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let rule = cfg.rules.integrity();
        if rule.is_stale(last, now) {
            let idle = unix(now) - since;
            let after = rule.stale_after.map_or(0, |d| d.as_secs());
            alerts.push(integrity_alert(
                "stale",
                format!("integrity:stale:{}:{root}", cp.size),
                Vec::new(),
                format!(
                    "the log's checkpoint has not advanced for {idle} s (size {})",
                    cp.size
                ),
                "[rules.integrity] stale_after: the checkpoint must advance while runs are expected",
                serde_json::json!({"size": cp.size, "root": root, "idle_seconds": idle, "stale_after_seconds": after}),
            ));
        }
    }
    // The witnesses' quorum: a checkpoint without it is not final (a split view shown to
    // this monitor would lack the witnesses' cosignatures).
    if let Some(policy) = &cfg.policy {
        let q = policy.check(&head.note);
        if !q.satisfied {
            let by: Vec<&str> = q.cosigned_by.iter().map(|c| c.name.as_str()).collect();
            alerts.push(Alert {
                rule: "witness".into(),
                severity: Severity::Critical,
                records: Vec::new(),
                summary: format!(
                    "the checkpoint of size {} lacks the witnesses' quorum ({}): missing {}",
                    cp.size,
                    policy.describe_quorum(),
                    q.missing.join(", ")
                ),
                why: "the witness policy: every checkpoint must be cosigned by its quorum".into(),
                details: serde_json::json!({"size": cp.size, "root": root, "cosigned_by": by,
                    "missing": q.missing, "explanation": q.explanation}),
                key: format!("witness:{}:{root}", cp.size),
            });
        }
    }
    alerts.extend(read_new(log, cfg, mem, now, rep, &cp, start)?);
    *seen = Some((cp, head.note));
    Ok(alerts)
}

fn fork(p: &Checkpoint, cp: &Checkpoint, how: &str) -> Alert {
    let root = hash_b64(&cp.root);
    integrity_alert(
        "fork",
        format!("integrity:fork:{}:{root}", cp.size),
        Vec::new(),
        format!(
            "the log forked: its checkpoint (size {}, root {root}) does not extend the one verified before (size {}, root {}): {how}",
            cp.size,
            p.size,
            hash_b64(&p.root)
        ),
        "every checkpoint must extend the ones verified before",
        serde_json::json!({"size": cp.size, "root": root, "previous_size": p.size, "previous_root": hash_b64(&p.root)}),
    )
}

/// Reads entries `start..cp.size`, checks them and their blobs, and runs the rules.
fn read_new(
    log: &Log,
    cfg: &MonitorConfig,
    mem: &mut Memory,
    now: time::OffsetDateTime,
    rep: &mut RoundReport,
    cp: &Checkpoint,
    start: u64,
) -> Result<Vec<Alert>, Stop> {
    if start >= cp.size {
        return Ok(Vec::new());
    }
    // The rules' memory as it was, put back if the round stops on a failure.
    let before = serde_json::to_vec(&mem.state.rules).unwrap_or_default();
    let r = evaluate_new(log, cfg, mem, now, rep, cp, start);
    if r.is_err() {
        if let Ok(m) = serde_json::from_slice(&before) {
            mem.state.rules = m;
        }
    }
    r
}

fn evaluate_new(
    log: &Log,
    cfg: &MonitorConfig,
    mem: &mut Memory,
    now: time::OffsetDateTime,
    rep: &mut RoundReport,
    cp: &Checkpoint,
    start: u64,
) -> Result<Vec<Alert>, Stop> {
    let mut alerts = Vec::new();
    // Planned changes of intents, so an outcome's changes name a replace as a replace.
    let mut plans: HashMap<u64, Vec<(String, String)>> = HashMap::new();
    let mut blobs: HashSet<String> = HashSet::new();
    let mut next = start;
    while next < cp.size {
        // The next chunks, each read, authenticated and parsed by a thread of its own (the
        // store's latency and the parsing overlap), then evaluated in log order.
        let mut ranges = Vec::new();
        while next < cp.size && ranges.len() < PARALLEL {
            // Chunks end on bundle boundaries: each bundle is read once.
            let end = ((next / CHUNK + 1) * CHUNK).min(cp.size);
            ranges.push((next, end));
            next = end;
        }
        let known = &blobs;
        let fetched: Vec<Result<Fetched, Stop>> = std::thread::scope(|s| {
            let hs: Vec<_> = ranges
                .iter()
                .map(|&(a, b)| s.spawn(move || fetch(log, cp, a, b, known)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Stop::Failure("a thread reading entries panicked".into()))
                    })
                })
                .collect()
        });
        let mut chunks = Vec::with_capacity(ranges.len());
        for ((a, _), f) in ranges.iter().zip(fetched) {
            let (records, checked) = f?;
            blobs.extend(checked);
            chunks.push((*a, records));
        }
        for (i, records) in chunks {
            alerts.extend(evaluate_chunk(
                log, cfg, mem, now, cp, i, &records, &mut plans, &mut blobs,
            )?);
            rep.records += records.len() as u64;
        }
    }
    rep.blobs = blobs.len() as u64;
    Ok(alerts)
}

/// The records of a chunk, and the blobs checked for them.
type Fetched = (Vec<Record>, HashSet<String>);

/// Entries `a..b` read, authenticated and parsed, with the blobs checked that `known` does not
/// hold already.
fn fetch(
    log: &Log,
    cp: &Checkpoint,
    a: u64,
    b: u64,
    known: &HashSet<String>,
) -> Result<Fetched, Stop> {
    let entries = log
        .entries(cp, a, b)
        .map_err(|e| classify(e, cp, "entries"))?;
    let mut checked = HashSet::new();
    let mut records = Vec::with_capacity(entries.len());
    for (k, e) in entries.iter().enumerate() {
        let index = a + k as u64;
        records.push(read_record(log, cp, index, e, known, &mut checked)?);
    }
    Ok((records, checked))
}

/// The changes of the records of one chunk (starting at `i`), and the rules' alerts on them.
#[allow(clippy::too_many_arguments)]
fn evaluate_chunk(
    log: &Log,
    cfg: &MonitorConfig,
    mem: &mut Memory,
    now: time::OffsetDateTime,
    cp: &Checkpoint,
    i: u64,
    records: &[Record],
    plans: &mut HashMap<u64, Vec<(String, String)>>,
    blobs: &mut HashSet<String>,
) -> Result<Vec<Alert>, Stop> {
    let mut changes = Vec::with_capacity(records.len());
    for (k, r) in records.iter().enumerate() {
        let index = i + k as u64;
        let intent = r.payload.get("intent_index").and_then(|v| v.as_u64());
        if let Some(ii) = intent.filter(|ii| *ii < index && !plans.contains_key(ii)) {
            if r.kind.ends_with(".outcome") {
                // An intent in this chunk that is no `.intent` record has no plan; one
                // before it (an earlier round's) is read from the log.
                let plan = if ii >= i {
                    planned(ii, &records[(ii - i) as usize])
                } else {
                    let entry = log
                        .entries(cp, ii, ii + 1)
                        .map_err(|e| classify(e, cp, "an outcome's intent"))?;
                    let r = read_record(log, cp, ii, &entry[0], &HashSet::new(), blobs)?;
                    planned(ii, &r)
                };
                plans.insert(ii, plan);
            }
        }
        let (_, ch) =
            tftrail_index::extract(index, r, &|x| plans.get(&x).cloned().unwrap_or_default());
        if r.kind.ends_with(".intent") {
            plans.insert(index, planned_rows(&ch));
        }
        if let Some(ii) = intent.filter(|_| r.kind.ends_with(".outcome")) {
            plans.remove(&ii);
        }
        changes.push(ch);
    }
    let events: Vec<Event> = records
        .iter()
        .zip(&changes)
        .enumerate()
        .map(|(k, (record, changes))| Event {
            index: i + k as u64,
            record,
            changes,
        })
        .collect();
    Ok(cfg.rules.evaluate(&events, &mut mem.state.rules, now))
}

fn planned(index: u64, r: &Record) -> Vec<(String, String)> {
    planned_rows(&tftrail_index::extract(index, r, &|_| Vec::new()).1)
}

fn planned_rows(ch: &[tftrail_index::ChangeRow]) -> Vec<(String, String)> {
    ch.iter()
        .filter(|c| c.source == "plan")
        .map(|c| (c.address.clone(), c.action.clone()))
        .collect()
}

/// Parses entry `index`, checks each blob it references (once per round), and puts moved
/// fragments back.
fn read_record(
    log: &Log,
    cp: &Checkpoint,
    index: u64,
    entry: &[u8],
    known: &HashSet<String>,
    blobs: &mut HashSet<String>,
) -> Result<Record, Stop> {
    let mut r = Record::from_entry(entry).map_err(|e| {
        classify(
            LogError::Integrity(format!("entry {index} is not a valid record: {e}")),
            cp,
            "records",
        )
    })?;
    for b in &r.blobs {
        if known.contains(&b.sha256) || !blobs.insert(b.sha256.clone()) {
            continue;
        }
        let data = log
            .blob(&b.sha256)
            .map_err(|e| classify(e, cp, &format!("blob {:?} of record {index}", b.name)))?;
        if data.len() as u64 != b.size {
            return Err(classify(
                LogError::Integrity(format!(
                    "blob {:?} of record {index} is {} bytes, the record says {}",
                    b.name,
                    data.len(),
                    b.size
                )),
                cp,
                "blobs",
            ));
        }
    }
    tftrail_index::inflate(log, &mut r.payload)
        .map_err(|e| classify(e, cp, &format!("record {index}'s moved fragments")))?;
    Ok(r)
}

/// Step 3a: raises the alerts never raised before and queues their deliveries.
fn raise(
    cfg: &MonitorConfig,
    mem: &mut Memory,
    alerts: Vec<Alert>,
    cx: &Context,
    rep: &mut RoundReport,
) {
    for a in alerts {
        if !mem.state.raised.insert(a.key.clone()) {
            continue;
        }
        for s in &cfg.sinks {
            let id = s.id();
            let done = mem
                .state
                .delivered
                .get(&id)
                .is_some_and(|d| d.contains(&a.key));
            let queued = mem
                .state
                .outbox
                .iter()
                .any(|o| o.sink == id && o.key == a.key);
            if !done && !queued {
                mem.state.outbox.push(Owed {
                    sink: id,
                    key: a.key.clone(),
                    body: sinks::body(s, &a, cx),
                    attempts: 0,
                    last_error: None,
                });
            }
        }
        rep.alerts.push(a);
    }
}

/// Step 3b: delivers the outbox, oldest first; a sink that fails (after its retries) gets
/// nothing more this round, so its deliveries keep their order.
fn deliver(cfg: &MonitorConfig, mem: &mut Memory, sender: &Sender, rep: &mut RoundReport) -> bool {
    let mut tried = false;
    let mut down: HashSet<String> = HashSet::new();
    let mut k = 0;
    while k < mem.state.outbox.len() {
        let id = mem.state.outbox[k].sink.clone();
        let Some(sink) = cfg.sinks.iter().find(|s| s.id() == id) else {
            // A sink no longer configured: kept, never dropped silently.
            k += 1;
            continue;
        };
        if down.contains(&id) {
            k += 1;
            continue;
        }
        tried = true;
        let owed = &mut mem.state.outbox[k];
        owed.attempts += 1;
        match sender.send(sink, &owed.body) {
            Ok(_) => {
                let o = mem.state.outbox.remove(k);
                mem.state.delivered.entry(o.sink).or_default().insert(o.key);
                rep.delivered += 1;
            }
            Err(e) => {
                rep.delivery_failures
                    .push(format!("{}: {e}", sink.describe()));
                owed.last_error = Some(e);
                down.insert(id);
                k += 1;
            }
        }
    }
    tried
}

/// A round for a log that could not even be opened: when the reason is an integrity failure
/// (its checkpoint was deleted while its objects remain), the `integrity` alert is raised and
/// delivered; otherwise it is an operational failure. Deliveries still owed are tried either way.
pub fn failed_open(
    e: &LogError,
    cfg: &MonitorConfig,
    mem: &mut Memory,
    now: time::OffsetDateTime,
    sender: &Sender,
) -> RoundReport {
    let mut rep = RoundReport::default();
    let msg = e.to_string();
    let mut alerts = Vec::new();
    if e.is_integrity() {
        rep.integrity = true;
        rep.integrity_message = Some(msg.clone());
    }
    if e.is_integrity() && cfg.rules.integrity().enabled {
        alerts.push(integrity_alert(
            "checkpoint",
            format!("integrity:open:{}", short_hash(msg.as_bytes())),
            Vec::new(),
            format!("the log cannot be opened: {msg}"),
            "the checkpoint must exist and be signed by the log's key",
            serde_json::json!({"error": msg}),
        ));
    }
    if !e.is_integrity() {
        rep.failure = Some(msg);
    }
    let prev = mem
        .state
        .checkpoint
        .as_deref()
        .and_then(|n| n.find("\n\n").map(|k| &n[..k + 1]))
        .and_then(|body| Checkpoint::parse_body(body.as_bytes()).ok());
    let cx = Context {
        origin: prev.as_ref().map(|c| c.origin.clone()).unwrap_or_default(),
        size: prev.as_ref().map_or(0, |c| c.size),
        root: prev.as_ref().map(|c| hash_b64(&c.root)).unwrap_or_default(),
        ui_url: cfg.ui_url.clone(),
        host: host_name(),
        time: rfc3339(now),
    };
    raise(cfg, mem, alerts, &cx, &mut rep);
    let changed = !rep.alerts.is_empty();
    finish(cfg, mem, sender, &mut rep, changed);
    rep
}

#[cfg(test)]
mod tests {
    use super::*;
    use tftrail_core::checkpoint::{Origin, SigningKey};
    use tftrail_core::record::Actor;

    fn entry(kind: &str, payload: serde_json::Value) -> Vec<u8> {
        let actor = Actor {
            authenticated: None,
            user: "alice".into(),
            host: "h".into(),
            ci: None,
        };
        Record::new(kind, "2026-01-05T10:00:00Z", actor, payload, vec![])
            .unwrap()
            .to_entry()
            .unwrap()
    }

    /// A new log at `dir` (replacing what was there) signed by `key`, holding `n` events
    /// tagged `tag`.
    fn log_at(dir: &std::path::Path, key: &SigningKey, n: u64, tag: &str) -> Log {
        let _ = std::fs::remove_dir_all(dir);
        let store = tftrail_store::LocalStore::create(dir).unwrap();
        tftrail_log::init(&store, key).unwrap();
        let log = Log::open(Box::new(store), key.verifier()).unwrap();
        if n > 0 {
            let entries = (0..n)
                .map(|i| entry("event", serde_json::json!({"i": i, "tag": tag})))
                .collect();
            log.append(key, entries, &[], &mut |_, _| {}).unwrap();
        }
        log
    }

    fn cfg(text: &str) -> MonitorConfig {
        MonitorConfig::parse(text).unwrap()
    }

    fn sender() -> Sender {
        Sender::new().unwrap()
    }

    fn check(a: &RoundReport) -> Option<&str> {
        a.alerts
            .iter()
            .find(|a| a.rule == "integrity")
            .and_then(|a| a.details["check"].as_str())
    }

    #[test]
    fn forks_are_found_at_the_same_size_and_beyond() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("log");
        let key = SigningKey::generate(&Origin::new("test.example/m").unwrap());
        let loc = dir.display().to_string();
        let mut mem = Memory::open(&t.path().join("state"), &loc).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let c = cfg("");
        let s = sender();

        let log = log_at(&dir, &key, 5, "a");
        let r = round_with(&log, &c, &mut mem, now, &s);
        assert_eq!((r.records, r.exit_code()), (5, 0), "{r:?}");
        let good = mem.state.checkpoint.clone();

        // Another history of the same size, signed by the same key.
        let log = log_at(&dir, &key, 5, "b");
        let r = round_with(&log, &c, &mut mem, now, &s);
        assert_eq!(r.exit_code(), 1, "{r:?}");
        assert_eq!(check(&r), Some("fork"), "{r:?}");
        assert_eq!(
            mem.state.checkpoint, good,
            "the last good checkpoint is kept"
        );

        // … and a longer one: no consistency proof from the tree seen before.
        let log = log_at(&dir, &key, 9, "b");
        let r = round_with(&log, &c, &mut mem, now, &s);
        assert_eq!(r.exit_code(), 1, "{r:?}");
        assert_eq!(check(&r), Some("fork"), "{r:?}");
        assert_eq!(r.records, 0, "no record of a fork reaches the rules");
        assert_eq!(mem.state.checkpoint, good);

        // The original history, grown: consistent, the 3 new records read.
        let log = log_at(&dir, &key, 5, "a");
        log.append(
            &key,
            (5..8)
                .map(|i| entry("event", serde_json::json!({"i": i, "tag": "a"})))
                .collect(),
            &[],
            &mut |_, _| {},
        )
        .unwrap();
        let r = round_with(&log, &c, &mut mem, now, &s);
        assert_eq!((r.records, r.exit_code()), (3, 0), "{r:?}");
        assert_eq!(r.previous_size, Some(5));
    }

    #[test]
    fn a_stale_checkpoint_alerts_once_and_integrity_can_be_silenced() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("log");
        let key = SigningKey::generate(&Origin::new("test.example/m").unwrap());
        let loc = dir.display().to_string();
        let mut mem = Memory::open(&t.path().join("state"), &loc).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let c = cfg("[rules.integrity]\nstale_after = \"1h\"\n");
        let s = sender();
        let log = log_at(&dir, &key, 2, "a");
        assert_eq!(round_with(&log, &c, &mut mem, now, &s).exit_code(), 0);
        let r = round_with(&log, &c, &mut mem, now + time::Duration::minutes(59), &s);
        assert!(r.alerts.is_empty(), "{r:?}");
        let later = now + time::Duration::minutes(61);
        let r = round_with(&log, &c, &mut mem, later, &s);
        assert_eq!(check(&r), Some("stale"), "{r:?}");
        assert_eq!(
            r.exit_code(),
            4,
            "stale is an alert, not a verification failure"
        );
        let r = round_with(&log, &c, &mut mem, later + time::Duration::minutes(5), &s);
        assert!(r.alerts.is_empty(), "raised once per checkpoint: {r:?}");

        // With the integrity rule off, a fork still fails the round, silently.
        let off = cfg("[rules.integrity]\nenabled = false\n");
        let log = log_at(&dir, &key, 2, "b");
        let r = round_with(&log, &off, &mut mem, later, &s);
        assert_eq!(r.exit_code(), 1, "{r:?}");
        assert!(r.alerts.is_empty(), "{r:?}");
    }

    #[test]
    fn a_missing_blob_is_an_integrity_failure() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("log");
        let key = SigningKey::generate(&Origin::new("test.example/m").unwrap());
        let loc = dir.display().to_string();
        let mut mem = Memory::open(&t.path().join("state"), &loc).unwrap();
        let log = log_at(&dir, &key, 0, "a");
        let data = b"plan bytes".to_vec();
        let blob = tftrail_log::Blob {
            name: "plan.json".into(),
            data: data.clone(),
        };
        let actor = Actor {
            authenticated: None,
            user: "alice".into(),
            host: "h".into(),
            ci: None,
        };
        let e = Record::new(
            "event",
            "2026-01-05T10:00:00Z",
            actor,
            serde_json::json!({}),
            vec![blob.reference()],
        )
        .unwrap()
        .to_entry()
        .unwrap();
        log.append(&key, vec![e], &[blob], &mut |_, _| {}).unwrap();
        let p = dir.join(tftrail_core::layout::blob_path(&hex::encode(
            Sha256::digest(&data),
        )));
        std::fs::remove_file(&p).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let r = round_with(&log, &cfg(""), &mut mem, now, &sender());
        assert_eq!(r.exit_code(), 1, "{r:?}");
        assert_eq!(check(&r), Some("verification_failed"), "{r:?}");
        assert!(r.alerts[0].summary.contains("blob"), "{r:?}");
        assert_eq!(mem.state.checkpoint, None, "nothing accepted");
    }
}
