//! A local SQLite index derived from a tftrail log: which records touch which resource, who
//! made them (as they said, and as a team server authenticated them), when, with what outcome, and in which directory/workspace;
//! and the life of each state a team server holds as Terraform's `http` backend (writes,
//! deletes, locks, refusals, and the recorded runs that name it: [`StateEvent`]).
//!
//! # Scope
//! In: the schema; turning authenticated records into rows ([`extract`], pure); keeping an
//! index file in step with a log ([`Index::open`]); the queries the CLI needs.
//! Out: where the file lives (the CLI picks a cache path, see [`file_name`]), reading and
//! authenticating entries (`tftrail-log`), printing.
//!
//! # Trust
//! The index is a cache, never a source of truth. It remembers the tree size and root hash it
//! was built from. Before every use it is brought up to date against the *verified* checkpoint:
//! when the log has grown and a consistency proof shows the indexed tree is a prefix of it, only
//! the new entries are indexed; in every other case (file missing, unreadable, corrupt, another
//! schema, root mismatch, log shorter than the index) it is rebuilt from scratch from entries
//! authenticated against the checkpoint. Callers read the records an answer names from the log
//! again, so what is *displayed* is always authenticated; a deliberately edited cache file
//! (rows changed, meta kept) can hide or add matches, which `tftrail reindex` repairs.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::merkle::{check_consistency, hash_b64, parse_hash};
use tftrail_core::record::{authenticated_label, Record};
use tftrail_log::{Log, LogError};

/// Schema version kept in `meta`; another value means "rebuild".
pub const SCHEMA_VERSION: &str = "4";

/// Entries read from the log per step while indexing.
const CHUNK: u64 = 4096;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Reading the log failed (integrity errors are the log's, passed through).
    #[error(transparent)]
    Log(#[from] LogError),
    /// An authenticated entry is not a valid record.
    #[error("entry {index}: {reason}")]
    BadRecord {
        /// Which entry.
        index: u64,
        /// Why.
        reason: String,
    },
    /// The SQLite file failed.
    #[error("index database {path}: {source}")]
    Db {
        /// The file.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A file-system error around the index file.
    #[error("index file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// `$XDG_CACHE_HOME`, else `~/.cache`: where indexes are kept (the CLI's under
/// `tftrail/index/`, the server's under `tftrail/server-index/`).
pub fn cache_home() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME") {
        Some(v) if !v.is_empty() && Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(".cache"),
    }
}

/// The file name of the index for one log: a hash of the verifier key and the store location,
/// so two logs never share an index and a changed key never reuses an old one.
pub fn file_name(verifier_key: &str, location: &str) -> String {
    let mut h = Sha256::new();
    h.update(verifier_key.as_bytes());
    h.update(b"\n");
    h.update(location.as_bytes());
    format!("{}.sqlite", hex::encode(&h.finalize()[..16]))
}

/// One record as indexed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordRow {
    /// Log index.
    pub index: u64,
    /// Record kind.
    pub kind: String,
    /// Record time as written.
    pub time: String,
    /// Record time, Unix nanoseconds (None when unparseable).
    pub time_ns: Option<i64>,
    /// OS user.
    pub user: String,
    /// Host.
    pub host: String,
    /// CI actor (self-asserted), when any.
    pub ci_actor: Option<String>,
    /// How a team server authenticated the writer (`actor.authenticated.by`: `token`, `oidc`,
    /// `server` …; empty when the object holds no label), when it did.
    pub auth_by: Option<String>,
    /// Who it authenticated: the token's name or the OIDC subject (see
    /// [`authenticated_label`]), when any.
    pub auth_label: Option<String>,
    /// The role it granted, when recorded.
    pub auth_role: Option<String>,
    /// `success`, `failed`, `interrupted` (outcome and plan records).
    pub outcome: Option<String>,
    /// Terraform operation (`apply`, `plan`, `state` …).
    pub operation: Option<String>,
    /// `context.dir`.
    pub dir: Option<String>,
    /// `context.workspace`.
    pub workspace: Option<String>,
    /// `context.backend`.
    pub backend: Option<String>,
    /// `payload.plan.sha256`.
    pub plan_sha256: Option<String>,
    /// `payload.plan.plan_index`: the recorded plan an apply used.
    pub plan_index: Option<u64>,
    /// `payload.intent_index`: the intent of an outcome.
    pub intent_index: Option<u64>,
}

/// One resource change as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    /// Log index of the record.
    pub index: u64,
    /// Resource instance address.
    pub address: String,
    /// `create`, `update`, `replace`, `delete`, `forget`, `import`, `add` …
    pub action: String,
    /// Changed attribute paths (no values).
    pub paths: Vec<String>,
    /// `plan` (a planned change) or `state` (a change seen in the state after a command).
    pub source: String,
    /// For `state` rows: `added`, `removed` or `changed`; for a planned change of a failed or
    /// interrupted command that left no trace in the state: `attempted`.
    pub state_change: Option<String>,
}

/// One event in the life of a state a team server holds (`/state/{name}`, docs/API.md), from
/// a `terraform.state.*` record, or a recorded run naming that state ([`state_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEvent {
    /// Log index of the record.
    pub index: u64,
    /// The state's name ([`valid_state_name`]).
    pub name: String,
    /// write | delete | lock | unlock | force_unlock | refused | run | run_end
    pub event: String,
    /// The lock's ID: the one held by a write or delete, taken, released, or held when a
    /// request was refused.
    pub lock_id: Option<String>,
    /// SHA-256 of the state bytes: written (`write`), or sent and refused (`refused`).
    pub sha256: Option<String>,
    /// Serial, as `sha256`.
    pub serial: Option<u64>,
    /// Lineage, as `sha256`.
    pub lineage: Option<String>,
    /// run: the intent's own index; run_end: the outcome's intent_index; write/lock:
    /// run.intent_index
    pub intent_index: Option<u64>,
    /// Record time, Unix nanoseconds.
    pub time_ns: Option<i64>,
}

/// The longest state name, in bytes.
pub const MAX_STATE_NAME_BYTES: usize = 200;

/// Whether `name` is a state name: one or more `/`-separated segments of `[A-Za-z0-9._-]`,
/// none empty, `.` or `..`, at most [`MAX_STATE_NAME_BYTES`] bytes.
pub fn valid_state_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STATE_NAME_BYTES
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// The state name an `http` backend address names on a tftrail server: the URL's path after
/// its first `/state/` (`https://h/state/team/prod` → `team/prod`), when it is a valid name
/// ([`valid_state_name`]; no percent-decoding). Query and fragment are ignored.
pub fn state_name_from_address(addr: &str) -> Option<String> {
    let addr = addr.trim().split(['?', '#']).next().unwrap_or("");
    let (_, rest) = addr.split_once("://")?;
    let path = &rest[rest.find('/')?..];
    let i = path.find("/state/")?;
    let name = &path[i + "/state/".len()..];
    valid_state_name(name).then(|| name.to_string())
}

/// The state event a record is, if any. `run_name(i)` gives the state name of the `run` event
/// of intent `i` (already indexed), so an outcome ends the run of its intent.
///
/// - `terraform.state.{write,delete,lock,unlock,force_unlock,refused}` (the server's records):
///   the payload's `state`, `lock.id`, `run.intent_index`; for a write the `after`
///   fingerprint's sha256, serial and lineage, for a refusal the `sent` one's;
/// - a `*.intent` record whose `context.state_address` names a state
///   ([`state_name_from_address`]): `run`;
/// - a `*.outcome` record whose `intent_index` is a `run`: `run_end`.
pub fn state_event(
    index: u64,
    r: &Record,
    run_name: &dyn Fn(u64) -> Option<String>,
) -> Option<StateEvent> {
    let p = &r.payload;
    let mut e = StateEvent {
        index,
        name: String::new(),
        event: String::new(),
        lock_id: None,
        sha256: None,
        serial: None,
        lineage: None,
        intent_index: None,
        time_ns: time_ns(&r.time),
    };
    let server_event = r.kind.strip_prefix("terraform.state.").filter(|k| {
        matches!(
            *k,
            "write" | "delete" | "lock" | "unlock" | "force_unlock" | "refused"
        )
    });
    if let Some(event) = server_event {
        e.name = s(p.get("state")).filter(|n| valid_state_name(n))?;
        e.event = event.to_string();
        e.lock_id = s(p.pointer("/lock/id"));
        e.intent_index = p.pointer("/run/intent_index").and_then(Value::as_u64);
        let fp = match event {
            "write" => p.get("after"),
            "refused" => p.get("sent"),
            _ => None,
        };
        if let Some(fp) = fp {
            e.sha256 = s(fp.get("sha256"));
            e.serial = fp.get("serial").and_then(Value::as_u64);
            e.lineage = s(fp.get("lineage"));
        }
        return Some(e);
    }
    if r.kind.ends_with(".intent") {
        e.name =
            s(p.pointer("/context/state_address")).and_then(|a| state_name_from_address(&a))?;
        e.event = "run".into();
        e.intent_index = Some(index);
        return Some(e);
    }
    if r.kind.ends_with(".outcome") {
        let intent = p.get("intent_index").and_then(Value::as_u64)?;
        e.name = run_name(intent)?;
        e.event = "run_end".into();
        e.intent_index = Some(intent);
        return Some(e);
    }
    None
}

/// Reads records (any order, duplicates allowed), authenticated against `cp`, grouping reads
/// by tile; returns them in the order asked.
pub fn read_records(
    log: &Log,
    cp: &Checkpoint,
    indexes: &[u64],
) -> Result<Vec<(u64, Record)>, IndexError> {
    let mut sorted = indexes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut got = BTreeMap::new();
    let mut i = 0;
    while i < sorted.len() {
        let tile = sorted[i] / 256;
        let start = sorted[i];
        let mut end = start + 1;
        while i < sorted.len() && sorted[i] / 256 == tile {
            end = sorted[i] + 1;
            i += 1;
        }
        for (k, e) in log.entries(cp, start, end)?.into_iter().enumerate() {
            let idx = start + k as u64;
            if sorted.binary_search(&idx).is_ok() {
                let r = Record::from_entry(&e).map_err(|err| IndexError::BadRecord {
                    index: idx,
                    reason: err.to_string(),
                })?;
                got.insert(idx, r);
            }
        }
    }
    Ok(indexes
        .iter()
        .filter_map(|i| got.get(i).map(|r| (*i, r.clone())))
        .collect())
}

/// One change as `history` and `blame` show it (CLI `--json` and the server's API), with the
/// facts from its authenticated record.
pub fn describe_change(c: &ChangeRow, r: &Record) -> Value {
    serde_json::json!({
        "index": c.index,
        "address": c.address,
        "action": c.action,
        "applied": c.state_change.as_deref() != Some("attempted"),
        "paths": c.paths,
        "kind": r.kind,
        "time": r.time,
        "actor": r.actor,
        "outcome": r.payload.get("outcome"),
        "dir": r.payload.pointer("/context/dir"),
        "workspace": r.payload.pointer("/context/workspace"),
        "commit": r.payload.pointer("/context/git/commit"),
        "intent_index": r.payload.get("intent_index"),
        "values": change_values(c, r),
    })
}

/// The before and after values of `c`'s attributes that its record carries (`[]` when it
/// has none: an older record, or a change without values): from the state diff for a change
/// seen in the state, else from the plan (`attributes` of its planned resource change).
fn change_values(c: &ChangeRow, r: &Record) -> Value {
    let find = |list: Option<&Value>| -> Option<Value> {
        list?
            .as_array()?
            .iter()
            .find(|v| v.get("address").and_then(Value::as_str) == Some(c.address.as_str()))
            .and_then(|v| v.get("attributes").cloned())
    };
    let from_state = || find(r.payload.pointer("/state_diff/values"));
    let from_plan = || find(r.payload.pointer("/plan/summary/resource_changes"));
    let v = match c.source.as_str() {
        "state" => from_state().or_else(from_plan),
        _ => from_plan(),
    };
    v.unwrap_or(Value::Array(vec![]))
}

/// Every recorded change to `address` (and its instances), oldest first, described by
/// [`describe_change`] from its record, read authenticated against `cp`.
pub fn describe_history(
    ix: &Index,
    log: &Log,
    cp: &Checkpoint,
    address: &str,
) -> Result<Vec<Value>, IndexError> {
    let rows = ix.history(address)?;
    let idx: Vec<u64> = rows.iter().map(|c| c.index).collect();
    let mut recs: BTreeMap<u64, Record> = read_records(log, cp, &idx)?.into_iter().collect();
    // Values moved into blobs by [`deflate`] are put back.
    for r in recs.values_mut() {
        inflate(log, &mut r.payload)?;
    }
    Ok(rows
        .iter()
        .filter_map(|c| recs.get(&c.index).map(|r| describe_change(c, r)))
        .collect())
}

/// What `blame` shows of described changes (oldest first): the last applied change of each
/// address, by address.
pub fn last_applied(changes: Vec<Value>) -> Vec<Value> {
    let mut last: std::collections::BTreeMap<String, Value> = Default::default();
    for v in changes {
        if v["applied"].as_bool() == Some(true) {
            last.insert(v["address"].as_str().unwrap_or("").to_string(), v);
        }
    }
    last.into_values().collect()
}

fn s(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(String::from)
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses an RFC 3339 time into Unix nanoseconds.
pub fn time_ns(t: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// Planned (non-no-op) changes in a payload's `plan.summary`.
fn planned(payload: &Value) -> Vec<(String, String, Vec<String>)> {
    payload
        .pointer("/plan/summary/resource_changes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    let addr = s(c.get("address"))?;
                    let action = s(c.get("action"))?;
                    if matches!(action.as_str(), "no-op" | "read") {
                        return None;
                    }
                    Some((addr, action, strs(c.get("changed_paths"))))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Turns one authenticated record into rows. `intent_plan(i)` gives the planned changes of
/// intent record `i` (already indexed) so an outcome can name a replace as a replace.
pub fn extract(
    index: u64,
    r: &Record,
    intent_plan: &dyn Fn(u64) -> Vec<(String, String)>,
) -> (RecordRow, Vec<ChangeRow>) {
    let p = &r.payload;
    let ci_actor = r.actor.ci.as_ref().and_then(|ci| {
        s(ci.get("actor"))
            .or_else(|| s(ci.get("user")))
            .or_else(|| s(ci.get("user_login")))
    });
    let auth = r.actor.authenticated.as_ref().map(authenticated_label);
    let row = RecordRow {
        index,
        auth_by: auth.map(|l| l.map_or("", |l| l.by).to_string()),
        auth_label: auth.flatten().map(|l| l.label.to_string()),
        auth_role: auth.flatten().and_then(|l| l.role).map(String::from),
        kind: r.kind.clone(),
        time: r.time.clone(),
        time_ns: time_ns(&r.time),
        user: r.actor.user.clone(),
        host: r.actor.host.clone(),
        ci_actor,
        outcome: s(p.get("outcome")),
        operation: s(p.pointer("/command/operation")),
        dir: s(p.pointer("/context/dir")),
        workspace: s(p.pointer("/context/workspace")),
        backend: s(p.pointer("/context/backend")),
        plan_sha256: s(p.pointer("/plan/sha256")),
        plan_index: p.pointer("/plan/plan_index").and_then(Value::as_u64),
        intent_index: p.get("intent_index").and_then(Value::as_u64),
    };
    let mut changes = Vec::new();
    if !r.kind.starts_with("terraform.") && !r.kind.starts_with("tofu.") {
        return (row, changes);
    }
    for (address, action, paths) in planned(p) {
        changes.push(ChangeRow {
            index,
            address,
            action,
            paths,
            source: "plan".into(),
            state_change: None,
        });
    }
    if matches!(
        r.kind.as_str(),
        "terraform.state.write" | "terraform.state.delete"
    ) {
        // A write through the server's state backend: whatever made it (a plain
        // `terraform apply` too). No plan: a new `id` means a replacement.
        if let Some(diff) = p.get("state_diff") {
            for a in strs(diff.get("added")) {
                changes.push(state_row(index, a, "create".into(), vec![], "added"));
            }
            for a in strs(diff.get("removed")) {
                changes.push(state_row(index, a, "delete".into(), vec![], "removed"));
            }
            for c in diff
                .get("changed")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(a) = s(c.get("address")) else {
                    continue;
                };
                let paths = strs(c.get("paths"));
                let action = if paths.iter().any(|p| p == "id") {
                    "replace"
                } else {
                    "update"
                };
                changes.push(state_row(index, a, action.into(), paths, "changed"));
            }
        }
        return (row, changes);
    }
    if let (Some(stem), Some(diff)) = (r.kind.strip_suffix(".outcome"), p.get("state_diff")) {
        let plan: BTreeMap<String, String> = row
            .intent_index
            .map(intent_plan)
            .unwrap_or_default()
            .into_iter()
            .collect();
        // An outcome carries no plan of its own: the planned changes were its intent's.
        changes.clear();
        let op = stem.rsplit('.').next().unwrap_or(stem);
        let mut seen = std::collections::BTreeSet::new();
        for a in strs(diff.get("added")) {
            let action = match (plan.get(&a).map(String::as_str), op) {
                (Some(x), _) => x.to_string(),
                (None, "import") => "import".into(),
                (None, "state") => "add".into(),
                _ => "create".into(),
            };
            seen.insert(a.clone());
            changes.push(state_row(index, a, action, vec![], "added"));
        }
        for a in strs(diff.get("removed")) {
            let action = match (plan.get(&a).map(String::as_str), op) {
                (Some(x), _) => x.to_string(),
                (None, "apply" | "destroy") => "delete".into(),
                _ => "forget".into(),
            };
            seen.insert(a.clone());
            changes.push(state_row(index, a, action, vec![], "removed"));
        }
        for c in diff
            .get("changed")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(a) = s(c.get("address")) else {
                continue;
            };
            let paths = strs(c.get("paths"));
            // Without a plan, a new `id` means a new remote object: a replacement.
            let action = match plan.get(&a) {
                Some(x) => x.clone(),
                None if paths.iter().any(|p| p == "id") => "replace".into(),
                None => "update".into(),
            };
            seen.insert(a.clone());
            changes.push(state_row(index, a, action, paths, "changed"));
        }
        if row.outcome.as_deref() != Some("success") {
            for (a, action) in plan {
                if !seen.contains(&a) {
                    changes.push(state_row(index, a, action, vec![], "attempted"));
                }
            }
        }
    }
    (row, changes)
}

fn state_row(
    index: u64,
    address: String,
    action: String,
    paths: Vec<String>,
    sc: &str,
) -> ChangeRow {
    ChangeRow {
        index,
        address,
        action,
        paths,
        source: "state".into(),
        state_change: Some(sc.into()),
    }
}

/// Payload fragments that may be moved out of an oversized record into a blob, biggest first.
/// The fragment is replaced by `{"in_blob": {"blob": name, "sha256": hex, "size": n}}` plus
/// any `keep` fields it had (counts stay readable in the record itself).
pub const MOVABLE: &[(&str, &str, &[&str])] = &[
    (
        "/plan/summary",
        "plan-summary.json",
        &["counts", "errored", "applyable", "complete"],
    ),
    (
        "/state_diff",
        "state-diff.json",
        &["serial", "lineage_changed"],
    ),
];

/// Moves [`MOVABLE`] fragments of `payload` into blobs, one at a time, until `fits(payload)`;
/// returns the blobs as `(name, bytes)`. A record keeps its meaning: a reader (and the index)
/// puts the fragments back with [`inflate`].
pub fn deflate(payload: &mut Value, fits: &dyn Fn(&Value) -> bool) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (ptr, name, keep) in MOVABLE {
        if fits(payload) {
            break;
        }
        let Some(frag) = payload.pointer_mut(ptr) else {
            continue;
        };
        if !frag.is_object() || frag.get("in_blob").is_some() {
            continue;
        }
        let bytes = serde_json::to_vec(frag).unwrap_or_default();
        let mut stub = serde_json::Map::new();
        for k in *keep {
            if let Some(v) = frag.get(*k) {
                stub.insert((*k).to_string(), v.clone());
            }
        }
        stub.insert(
            "in_blob".into(),
            serde_json::json!({"blob": name, "sha256": hex::encode(Sha256::digest(&bytes)), "size": bytes.len()}),
        );
        *frag = Value::Object(stub);
        out.push(((*name).to_string(), bytes));
    }
    out
}

/// Puts fragments moved by [`deflate`] back, reading each blob from the log (which checks its
/// SHA-256). Fragments whose blob cannot be read are left as stubs.
pub fn inflate(log: &Log, payload: &mut Value) -> Result<(), LogError> {
    for (ptr, _, _) in MOVABLE {
        let Some(frag) = payload.pointer_mut(ptr) else {
            continue;
        };
        let Some(sha) = frag.pointer("/in_blob/sha256").and_then(Value::as_str) else {
            continue;
        };
        let data = log.blob(sha)?;
        let v: Value = serde_json::from_slice(&data)
            .map_err(|e| LogError::Integrity(format!("blob {sha} is not JSON: {e}")))?;
        *frag = v;
    }
    Ok(())
}

/// What bringing the index up to date did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// Nothing new.
    UpToDate,
    /// Indexed the entries from `from` to the checkpoint's size.
    Extended {
        /// First newly indexed entry.
        from: u64,
    },
    /// Rebuilt from scratch, and why.
    Rebuilt(String),
}

/// Whether a record of `kind` matches the filter `filter`: `filter` is a prefix of the kind
/// (`terraform.apply` matches `terraform.apply.intent`, `change` matches `change.approval`),
/// or of the kind without its `terraform.` (`apply` matches `terraform.apply.intent` and
/// `terraform.apply.outcome`, `destroy.intent` `terraform.destroy.intent`).
pub fn kind_matches(filter: &str, kind: &str) -> bool {
    kind.starts_with(filter)
        || kind
            .strip_prefix("terraform.")
            .is_some_and(|k| k.starts_with(filter))
}

/// Filters for [`Index::find`]. All given filters must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Kinds this matches by [`kind_matches`].
    pub kind: Option<String>,
    /// `user`, `user@host`, the CI actor, or the authenticated name (a token's name, an OIDC
    /// subject).
    pub actor: Option<String>,
    /// Only records a team server authenticated (`Some(true)`) or did not (`Some(false)`).
    pub authenticated: Option<bool>,
    /// Outcome word.
    pub outcome: Option<String>,
    /// Not before (Unix ns).
    pub since_ns: Option<i64>,
    /// Before (Unix ns, exclusive).
    pub until_ns: Option<i64>,
    /// Records that plan or make a change to this address (or to its instances `ADDR[…]`).
    pub resource: Option<String>,
    /// `context.workspace`, exactly.
    pub workspace: Option<String>,
    /// Keyset paging: only records with a smaller index than this.
    pub before: Option<u64>,
    /// Keyset paging backwards: only records with a greater index than this; the `limit`
    /// closest to it (still answered newest first).
    pub after: Option<u64>,
    /// At most this many (0: all).
    pub limit: u64,
}

/// Records [`Index::find`] looks at in its first pass (see there); few in unit tests, so that
/// their small logs take both passes.
const FIRST_PASS_ROWS: u64 = if cfg!(test) { 3 } else { 20_000 };

/// The smallest string greater than every string that starts with `prefix` (valid UTF-8
/// holds no character above U+10FFFF), so that `prefix <= x < prefix_end(prefix)` is "x starts
/// with prefix", answered by an index.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// An open, up-to-date index.
pub struct Index {
    conn: Connection,
    path: String,
}

const SCHEMA: &str = "
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE records (
  idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, time TEXT NOT NULL, time_ns INTEGER,
  user TEXT NOT NULL, host TEXT NOT NULL, ci_actor TEXT, outcome TEXT, operation TEXT,
  dir TEXT, workspace TEXT, backend TEXT, plan_sha256 TEXT, plan_index INTEGER,
  intent_index INTEGER, auth_by TEXT, auth_label TEXT, auth_role TEXT);
CREATE INDEX records_kind ON records(kind, idx);
CREATE INDEX records_user ON records(user, idx);
CREATE INDEX records_ci_actor ON records(ci_actor, idx);
CREATE INDEX records_auth_label ON records(auth_label, idx);
CREATE INDEX records_outcome ON records(outcome, idx);
CREATE INDEX records_workspace ON records(workspace, idx);
CREATE INDEX records_time ON records(time_ns);
CREATE INDEX records_plan ON records(plan_sha256);
CREATE INDEX records_intent ON records(intent_index);
CREATE INDEX records_ctx ON records(dir, workspace, backend);
CREATE TABLE resource_changes (
  idx INTEGER NOT NULL, address TEXT NOT NULL, action TEXT NOT NULL, paths TEXT NOT NULL,
  source TEXT NOT NULL, state_change TEXT);
CREATE INDEX rc_address ON resource_changes(address, idx);
CREATE INDEX rc_idx ON resource_changes(idx);
CREATE TABLE state_events (
  idx INTEGER PRIMARY KEY, name TEXT NOT NULL, event TEXT NOT NULL, lock_id TEXT,
  sha256 TEXT, serial INTEGER, lineage TEXT, intent_index INTEGER, time_ns INTEGER);
CREATE INDEX se_name ON state_events(name, idx);
CREATE INDEX se_run ON state_events(event, intent_index);
";

/// [`Index::extend`] inside the caller's transaction.
fn extend_in(
    tx: &rusqlite::Transaction<'_>,
    path: &str,
    log: &Log,
    cp: &Checkpoint,
    from: u64,
) -> Result<(), IndexError> {
    let db = |source| IndexError::Db {
        path: path.to_string(),
        source,
    };
    let mut start = from;
    while start < cp.size {
        let end = (start + CHUNK).min(cp.size);
        let entries = log.entries(cp, start, end)?;
        for (k, e) in entries.iter().enumerate() {
            let index = start + k as u64;
            let mut r = Record::from_entry(e).map_err(|err| IndexError::BadRecord {
                index,
                reason: err.to_string(),
            })?;
            inflate(log, &mut r.payload)?;
            let lookup = |i: u64| -> Vec<(String, String)> {
                let Ok(mut st) = tx.prepare_cached(
                    "SELECT address, action FROM resource_changes WHERE idx = ?1 AND source = 'plan'",
                ) else {
                    return vec![];
                };
                st.query_map([i as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map(|rows| rows.filter_map(Result::ok).collect())
                    .unwrap_or_default()
            };
            let (row, changes) = extract(index, &r, &lookup);
            let run_name = |i: u64| -> Option<String> {
                tx.prepare_cached("SELECT name FROM state_events WHERE idx = ?1 AND event = 'run'")
                    .ok()?
                    .query_row([i as i64], |r| r.get(0))
                    .ok()
            };
            let event = state_event(index, &r, &run_name);
            insert(tx, &row, &changes, event.as_ref()).map_err(db)?;
        }
        start = end;
    }
    tx.execute(
        "UPDATE meta SET v = ?1 WHERE k = 'size'",
        [cp.size.to_string()],
    )
    .map_err(db)?;
    tx.execute(
        "UPDATE meta SET v = ?1 WHERE k = 'root'",
        [hash_b64(&cp.root)],
    )
    .map_err(db)?;
    Ok(())
}

fn remove_db_files(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

impl Index {
    fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T, IndexError> {
        r.map_err(|source| IndexError::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// Opens the index at `path` and brings it up to date with the log at checkpoint `cp` (verified
    /// checkpoint). Missing, corrupt or inconsistent files are rebuilt.
    pub fn open(path: &Path, log: &Log, cp: &Checkpoint) -> Result<(Index, Sync), IndexError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        match Self::try_open(path, log, cp) {
            Ok(r) => Ok(r),
            Err(IndexError::Db { source, .. }) => {
                // Unreadable or corrupt: start over.
                remove_db_files(path);
                let mut ix = Self::connect(path)?;
                ix.rebuild(log, cp)?;
                Ok((
                    ix,
                    Sync::Rebuilt(format!("the index file was unusable: {source}")),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// An index in memory, built from scratch (when no cache file can be written).
    pub fn in_memory(log: &Log, cp: &Checkpoint) -> Result<Index, IndexError> {
        let conn = Connection::open_in_memory().map_err(|source| IndexError::Db {
            path: ":memory:".into(),
            source,
        })?;
        let mut ix = Index {
            conn,
            path: ":memory:".into(),
        };
        ix.rebuild(log, cp)?;
        Ok(ix)
    }

    /// Deletes the file at `path` and builds it again.
    pub fn rebuild_file(path: &Path, log: &Log, cp: &Checkpoint) -> Result<Index, IndexError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        remove_db_files(path);
        let mut ix = Self::connect(path)?;
        ix.rebuild(log, cp)?;
        Ok(ix)
    }

    fn connect(path: &Path) -> Result<Index, IndexError> {
        let p = path.display().to_string();
        let conn = Connection::open(path).map_err(|source| IndexError::Db {
            path: p.clone(),
            source,
        })?;
        let ix = Index { conn, path: p };
        ix.db(ix.conn.busy_timeout(std::time::Duration::from_secs(30)))?;
        // The index is a cache of the log: a commit lost in a power failure only makes it
        // stale (its recorded size and root are updated in the same transaction), which the
        // next open notices. WAL with synchronous=NORMAL stays consistent after a crash and
        // needs no fsync per commit.
        ix.db(ix
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)))?;
        ix.db(ix.conn.execute_batch("PRAGMA synchronous=NORMAL"))?;
        Ok(ix)
    }

    fn meta(&self, k: &str) -> Result<Option<String>, IndexError> {
        self.db(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional())
    }

    fn try_open(path: &Path, log: &Log, cp: &Checkpoint) -> Result<(Index, Sync), IndexError> {
        let mut ix = Self::connect(path)?;
        let has_meta: bool = ix.db(ix.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        ))?;
        let reason = if !has_meta {
            Some("no index yet".to_string())
        } else if ix.meta("schema")?.as_deref() != Some(SCHEMA_VERSION) {
            Some("another index schema".to_string())
        } else if ix.meta("key")?.as_deref() != Some(log.key().as_str()) {
            Some("built for another key".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            ix.rebuild(log, cp)?;
            return Ok((ix, Sync::Rebuilt(reason)));
        }
        let size: Option<u64> = ix.meta("size")?.and_then(|s| s.parse().ok());
        let root = ix.meta("root")?.and_then(|r| parse_hash(&r));
        let reason = match (size, root) {
            (Some(size), Some(root)) => {
                if size == cp.size && root == cp.root {
                    return Ok((ix, Sync::UpToDate));
                } else if size == cp.size {
                    "the log's root differs from the indexed one".to_string()
                } else if size > cp.size {
                    format!(
                        "the log has {} entries, fewer than the {size} indexed",
                        cp.size
                    )
                } else if size == 0 {
                    ix.extend(log, cp, 0)?;
                    return Ok((ix, Sync::Extended { from: 0 }));
                } else {
                    let proof = log.consistency(cp, size)?;
                    if check_consistency(&proof, size, root, cp.size, cp.root).is_ok() {
                        ix.extend(log, cp, size)?;
                        return Ok((ix, Sync::Extended { from: size }));
                    }
                    "the indexed tree is not a prefix of the log".to_string()
                }
            }
            _ => "the index's tree size or root is unreadable".to_string(),
        };
        ix.rebuild(log, cp)?;
        Ok((ix, Sync::Rebuilt(reason)))
    }

    fn rebuild(&mut self, log: &Log, cp: &Checkpoint) -> Result<(), IndexError> {
        let path = self.path.clone();
        let db = |source| IndexError::Db {
            path: path.clone(),
            source,
        };
        // One transaction: dropping, creating and filling commit together.
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute_batch(
            "DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS records;
             DROP TABLE IF EXISTS resource_changes; DROP TABLE IF EXISTS state_events;",
        )
        .map_err(db)?;
        tx.execute_batch(SCHEMA).map_err(db)?;
        tx.execute(
            "INSERT INTO meta (k, v) VALUES ('schema', ?1), ('key', ?2), ('size', '0'), ('root', ?3)",
            params![
                SCHEMA_VERSION,
                log.key().as_str(),
                hash_b64(&tftrail_core::merkle::empty_root())
            ],
        )
        .map_err(db)?;
        extend_in(&tx, &path, log, cp, 0)?;
        // Statistics, so that the planner picks the index a filter's rarity asks for.
        tx.execute_batch("ANALYZE").map_err(db)?;
        tx.commit().map_err(db)
    }

    /// Indexes entries `from..` of the tree at `cp`, then records (size, root) — all in one
    /// transaction, so a crash leaves the previous consistent state.
    fn extend(&mut self, log: &Log, cp: &Checkpoint, from: u64) -> Result<(), IndexError> {
        let path = self.path.clone();
        let db = |source| IndexError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        extend_in(&tx, &path, log, cp, from)?;
        tx.commit().map_err(db)
    }

    /// Record indexes matching `f`, newest first.
    pub fn find(&self, f: &Filter) -> Result<Vec<u64>, IndexError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut p = |v: rusqlite::types::Value| {
            args.push(v);
            format!("?{}", args.len())
        };
        if let Some(k) = &f.kind {
            // A prefix of the kind, or of a Terraform kind without its `terraform.`
            // (`apply` matches `terraform.apply.intent`), see [`kind_matches`]: as ranges,
            // which `records(kind, idx)` answers.
            let (a, a2) = (p(k.clone().into()), p(prefix_end(k).into()));
            let t = format!("terraform.{k}");
            let (b, b2) = (p(prefix_end(&t).into()), p(t.into()));
            clauses.push(format!(
                "((kind >= {a} AND kind < {a2}) OR (kind >= {b2} AND kind < {b}))"
            ));
        }
        if let Some(a) = &f.actor {
            // `user@host` split at its last `@` (host names hold none), so that every term
            // has an index.
            let x = p(a.clone().into());
            let mut terms = vec![
                format!("user = {x}"),
                format!("ci_actor = {x}"),
                format!("auth_label = {x}"),
            ];
            if let Some((u, h)) = a.rsplit_once('@') {
                let (u, h) = (p(u.to_string().into()), p(h.to_string().into()));
                terms.push(format!("(user = {u} AND host = {h})"));
            }
            clauses.push(format!("({})", terms.join(" OR ")));
        }
        match f.authenticated {
            Some(true) => clauses.push("auth_by IS NOT NULL".into()),
            Some(false) => clauses.push("auth_by IS NULL".into()),
            None => {}
        }
        if let Some(o) = &f.outcome {
            clauses.push(format!("outcome = {}", p(o.clone().into())));
        }
        if let Some(t) = f.since_ns {
            clauses.push(format!("time_ns >= {}", p(t.into())));
        }
        if let Some(t) = f.until_ns {
            clauses.push(format!("time_ns < {}", p(t.into())));
        }
        if let Some(w) = &f.workspace {
            clauses.push(format!("workspace = {}", p(w.clone().into())));
        }
        // The keyset bounds, kept apart: the first pass below applies them before the rest.
        let filters = clauses.len();
        if let Some(b) = f.before {
            clauses.push(format!(
                "idx < {}",
                p((b.min(i64::MAX as u64) as i64).into())
            ));
        }
        if let Some(a) = f.after {
            clauses.push(format!(
                "idx > {}",
                p((a.min(i64::MAX as u64) as i64).into())
            ));
        }
        if let Some(addr) = &f.resource {
            // The instances `ADDR[…]` as a range of `resource_changes(address, idx)`.
            let inst = format!("{addr}[");
            let (a, b, b2) = (
                p(addr.clone().into()),
                p(prefix_end(&inst).into()),
                p(inst.into()),
            );
            clauses.push(format!(
                "r.idx IN (SELECT c.idx FROM resource_changes c WHERE \
                 c.address = {a} OR (c.address >= {b2} AND c.address < {b}))"
            ));
        }
        let order = if f.after.is_some() { "ASC" } else { "DESC" };
        let limit = if f.limit > 0 {
            format!(" LIMIT {}", f.limit)
        } else {
            String::new()
        };
        let run = |sql: &str| -> Result<Vec<i64>, IndexError> {
            let mut st = self.db(self.conn.prepare_cached(sql))?;
            self.db(st
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    r.get::<_, i64>(0)
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>()))
        };
        let (filter, bounds) = clauses.split_at(filters);
        let bounds = if bounds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", bounds.join(" AND "))
        };
        // First pass, for filters that match often: the newest FIRST_PASS_ROWS records (in the
        // page's bounds), filtered. A full page there is the answer (the rows are in index
        // order), and so is a short one when those rows were all there are. Otherwise the
        // matches are rare: the planner's indexes find them.
        let mut rows = None;
        if f.limit > 0 && !filter.is_empty() {
            let sql = format!(
                "SELECT idx, (SELECT count(*) FROM (SELECT 1 FROM records{bounds} LIMIT {FIRST_PASS_ROWS})) \
                 FROM (SELECT * FROM records{bounds} ORDER BY idx {order} LIMIT {FIRST_PASS_ROWS}) r \
                 WHERE {} ORDER BY idx {order}{limit}",
                filter.join(" AND ")
            );
            let mut st = self.db(self.conn.prepare_cached(&sql))?;
            let got = self.db(st
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>()))?;
            let scanned_all = got
                .first()
                .is_some_and(|(_, n)| (*n as u64) < FIRST_PASS_ROWS);
            if got.len() as u64 == f.limit || scanned_all {
                rows = Some(got.into_iter().map(|(i, _)| i).collect());
            }
        }
        let rows = match rows {
            Some(r) => r,
            None => {
                let mut sql = String::from("SELECT idx FROM records r");
                if !clauses.is_empty() {
                    sql.push_str(" WHERE ");
                    sql.push_str(&clauses.join(" AND "));
                }
                sql.push_str(&format!(" ORDER BY idx {order}{limit}"));
                run(&sql)?
            }
        };
        let mut out: Vec<u64> = rows.into_iter().map(|i| i as u64).collect();
        if f.after.is_some() {
            out.reverse();
        }
        Ok(out)
    }

    /// Changes seen in the state (and attempts that failed) for `address` or its instances,
    /// oldest first. Planned-only changes are not included.
    pub fn history(&self, address: &str) -> Result<Vec<ChangeRow>, IndexError> {
        let mut st = self.db(self.conn.prepare(
            "SELECT idx, address, action, paths, source, state_change FROM resource_changes
             WHERE source = 'state' AND (address = ?1 OR substr(address, 1, length(?2)) = ?2)
             ORDER BY idx, address",
        ))?;
        let rows = self.db(st
            .query_map(params![address, format!("{address}[")], |r| {
                let paths: String = r.get(3)?;
                Ok(ChangeRow {
                    index: r.get::<_, i64>(0)? as u64,
                    address: r.get(1)?,
                    action: r.get(2)?,
                    paths: serde_json::from_str(&paths).unwrap_or_default(),
                    source: r.get(4)?,
                    state_change: r.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>()))?;
        Ok(rows)
    }

    /// The newest `terraform.plan` record whose plan file has this SHA-256.
    pub fn find_plan(&self, sha256: &str) -> Result<Option<u64>, IndexError> {
        self.db(self
            .conn
            .query_row(
                "SELECT idx FROM records WHERE plan_sha256 = ?1 AND kind LIKE '%.plan'
                     ORDER BY idx DESC LIMIT 1",
                [sha256],
                |r| r.get::<_, i64>(0),
            )
            .optional())
            .map(|o| o.map(|i| i as u64))
    }

    /// The outcome record of intent `intent`.
    pub fn outcome_of(&self, intent: u64) -> Result<Option<u64>, IndexError> {
        self.db(self
            .conn
            .query_row(
                "SELECT idx FROM records WHERE intent_index = ?1 AND kind LIKE '%.outcome'
                     ORDER BY idx LIMIT 1",
                [intent as i64],
                |r| r.get::<_, i64>(0),
            )
            .optional())
            .map(|o| o.map(|i| i as u64))
    }

    /// Records that applied the plan recorded at `plan` (intents naming it).
    pub fn applies_of_plan(&self, plan: u64) -> Result<Vec<u64>, IndexError> {
        let mut st = self.db(self
            .conn
            .prepare("SELECT idx FROM records WHERE plan_index = ?1 ORDER BY idx"))?;
        let rows = self.db(st
            .query_map([plan as i64], |r| r.get::<_, i64>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>()))?;
        Ok(rows.into_iter().map(|i| i as u64).collect())
    }

    /// Outcome records for one directory, workspace and backend, oldest first.
    pub fn outcomes_in(
        &self,
        dir: &str,
        workspace: &str,
        backend: &str,
    ) -> Result<Vec<u64>, IndexError> {
        let mut st = self.db(self.conn.prepare(
            "SELECT idx FROM records WHERE dir = ?1 AND workspace = ?2 AND backend = ?3
             AND kind LIKE '%.outcome' ORDER BY idx",
        ))?;
        let rows = self.db(st
            .query_map(params![dir, workspace, backend], |r| r.get::<_, i64>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>()))?;
        Ok(rows.into_iter().map(|i| i as u64).collect())
    }

    /// Every event of state `name`, oldest first.
    pub fn state_events(&self, name: &str) -> Result<Vec<StateEvent>, IndexError> {
        let sql =
            format!("SELECT {STATE_EVENT_COLUMNS} FROM state_events WHERE name = ?1 ORDER BY idx");
        let mut st = self.db(self.conn.prepare(&sql))?;
        self.db(st
            .query_map([name], state_event_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>()))
    }

    /// The names of the states the server's records speak of (any event but a run's), sorted.
    pub fn state_names(&self) -> Result<Vec<String>, IndexError> {
        let mut st = self.db(self.conn.prepare(
            "SELECT DISTINCT name FROM state_events WHERE event NOT IN ('run', 'run_end')
             ORDER BY name",
        ))?;
        self.db(st
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>()))
    }

    /// `run` events at or after `since_ns` whose intent has no `run_end` (no outcome yet),
    /// oldest first.
    pub fn open_runs(&self, since_ns: i64) -> Result<Vec<StateEvent>, IndexError> {
        let sql = format!(
            "SELECT {STATE_EVENT_COLUMNS} FROM state_events r WHERE event = 'run'
             AND time_ns >= ?1 AND NOT EXISTS (SELECT 1 FROM state_events e
               WHERE e.event = 'run_end' AND e.intent_index = r.intent_index)
             ORDER BY idx"
        );
        let mut st = self.db(self.conn.prepare(&sql))?;
        self.db(st
            .query_map([since_ns], state_event_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>()))
    }

    /// The (size, root) the index was built from.
    pub fn built_from(&self) -> Result<(u64, String), IndexError> {
        Ok((
            self.meta("size")?.and_then(|s| s.parse().ok()).unwrap_or(0),
            self.meta("root")?.unwrap_or_default(),
        ))
    }
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    r: &RecordRow,
    cs: &[ChangeRow],
    event: Option<&StateEvent>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO records (idx, kind, time, time_ns, user, host, ci_actor, outcome,
         operation, dir, workspace, backend, plan_sha256, plan_index, intent_index, auth_by,
         auth_label, auth_role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        r.index as i64,
        r.kind,
        r.time,
        r.time_ns,
        r.user,
        r.host,
        r.ci_actor,
        r.outcome,
        r.operation,
        r.dir,
        r.workspace,
        r.backend,
        r.plan_sha256,
        r.plan_index.map(|i| i as i64),
        r.intent_index.map(|i| i as i64),
        r.auth_by,
        r.auth_label,
        r.auth_role,
    ])?;
    tx.prepare_cached("DELETE FROM resource_changes WHERE idx = ?1")?
        .execute([r.index as i64])?;
    let mut st = tx.prepare_cached(
        "INSERT INTO resource_changes (idx, address, action, paths, source, state_change)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for c in cs {
        st.execute(params![
            c.index as i64,
            c.address,
            c.action,
            serde_json::to_string(&c.paths).unwrap_or_else(|_| "[]".into()),
            c.source,
            c.state_change,
        ])?;
    }
    tx.prepare_cached("DELETE FROM state_events WHERE idx = ?1")?
        .execute([r.index as i64])?;
    if let Some(e) = event {
        tx.prepare_cached(
            "INSERT INTO state_events (idx, name, event, lock_id, sha256, serial, lineage,
             intent_index, time_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            e.index as i64,
            e.name,
            e.event,
            e.lock_id,
            e.sha256,
            e.serial.and_then(|n| i64::try_from(n).ok()),
            e.lineage,
            e.intent_index.map(|i| i as i64),
            e.time_ns,
        ])?;
    }
    Ok(())
}

const STATE_EVENT_COLUMNS: &str =
    "idx, name, event, lock_id, sha256, serial, lineage, intent_index, time_ns";

fn state_event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StateEvent> {
    Ok(StateEvent {
        index: r.get::<_, i64>(0)? as u64,
        name: r.get(1)?,
        event: r.get(2)?,
        lock_id: r.get(3)?,
        sha256: r.get(4)?,
        serial: r.get::<_, Option<i64>>(5)?.map(|n| n as u64),
        lineage: r.get(6)?,
        intent_index: r.get::<_, Option<i64>>(7)?.map(|i| i as u64),
        time_ns: r.get(8)?,
    })
}

#[cfg(test)]
mod tests;
