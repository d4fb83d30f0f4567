//! Export for SIEMs and data lakes: every record (or a selection) as JSON Lines that can each
//! be proven against a signed checkpoint, or as OCSF events (docs/EXPORT.md has the mapping).
//!
//! An [`Exporter`] reads the log in order from entry 0, every entry authenticated against the
//! checkpoint it is given, and remembers where it stopped, so that `--follow` hands it each
//! newer checkpoint in turn (after checking that checkpoint is consistent with the last one).
//! It must see every intent before its outcome (an outcome names a replacement through its
//! intent's plan), which is why it always starts at 0 and selects afterwards.

use std::collections::HashMap;
use std::io::Write;

use serde_json::{json, Map, Value};
use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::merkle::{check_consistency, hash_b64, leaf_hash};
use tftrail_core::record::{authenticated_label, Record};
use tftrail_index::ChangeRow;
use tftrail_log::{Log, LogError};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// tftrail's version, as `metadata.product.version`.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Entries read from the log per step.
const CHUNK: u64 = 1024;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the log failed; integrity errors are the log's.
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
    /// A newer checkpoint is not an extension of the one exported before: the log was
    /// rolled back or forked.
    #[error("{0}")]
    Inconsistent(String),
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

impl ExportError {
    /// Whether the log failed a check (as opposed to storage or output trouble).
    pub fn is_integrity(&self) -> bool {
        match self {
            ExportError::Log(e) => e.is_integrity(),
            ExportError::BadRecord { .. } | ExportError::Inconsistent(_) => true,
            ExportError::Write(_) => false,
        }
    }
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per record with its index, leaf hash and checkpoint; first, the signed note.
    Jsonl,
    /// OCSF events: API Activity (6003) per resource change, Authentication (3002) per refusal.
    Ocsf,
}

/// Which records to export. All given filters must match.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Records at or after this time (Unix nanoseconds).
    pub since_ns: Option<i64>,
    /// Records before this time (Unix nanoseconds).
    pub until_ns: Option<i64>,
    /// Kinds matching this as `tftrail log --kind` does ([`tftrail_index::kind_matches`]).
    pub kind: Option<String>,
}

impl Selection {
    /// Whether `r` is selected. A record whose time does not parse is left out when a time
    /// bound is given.
    pub fn matches(&self, r: &Record) -> bool {
        if let Some(k) = &self.kind {
            if !tftrail_index::kind_matches(k, &r.kind) {
                return false;
            }
        }
        if self.since_ns.is_none() && self.until_ns.is_none() {
            return true;
        }
        let Some(t) = tftrail_index::time_ns(&r.time) else {
            return false;
        };
        self.since_ns.is_none_or(|s| t >= s) && self.until_ns.is_none_or(|u| t < u)
    }
}

/// The first line of a JSON Lines export (and of each later checkpoint with `--follow`):
/// the signed note, so that every line after it can be proven.
pub fn checkpoint_line(note: &[u8]) -> Value {
    json!({"checkpoint_note": String::from_utf8_lossy(note)})
}

/// One JSON Lines record line: the index, the RFC 6962 leaf hash of `entry` (base64), the
/// checkpoint that covers it, and the record as stored (`entry` is its canonical JSON).
pub fn jsonl_line(index: u64, entry: &[u8], cp: &Checkpoint) -> Result<Value, ExportError> {
    let record: Value = serde_json::from_slice(entry).map_err(|e| ExportError::BadRecord {
        index,
        reason: e.to_string(),
    })?;
    Ok(json!({
        "index": index,
        "leaf_hash": hash_b64(&leaf_hash(entry)),
        "checkpoint": {"origin": cp.origin, "size": cp.size, "root": hash_b64(&cp.root)},
        "record": record,
    }))
}

/// Who made a record as `tftrail log` shows the authenticated identity (`token:NAME`,
/// `oidc:SUBJECT`, `server`), when a team server authenticated one.
pub fn authenticated_name(r: &Record) -> Option<(String, String)> {
    let l = authenticated_label(r.actor.authenticated.as_ref()?)?;
    let shown = if l.by == "server" {
        "server".to_string()
    } else {
        format!("{}:{}", l.by, l.label)
    };
    Some((l.label.to_string(), shown))
}

/// The resource type of an instance address: `module.a.aws_s3_bucket.b["x.y"]` →
/// `aws_s3_bucket`, `data.aws_ami.ubuntu` → `aws_ami`.
pub fn resource_type(address: &str) -> Option<String> {
    // Split on dots outside brackets and quotes.
    let mut parts = Vec::new();
    let (mut cur, mut depth, mut quoted, mut escaped) = (String::new(), 0u32, false, false);
    for c in address.chars() {
        if quoted {
            cur.push(c);
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                cur.push(c);
            }
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            '.' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    let mut i = 0;
    while i + 1 < parts.len() && parts[i] == "module" {
        i += 2;
    }
    if parts.get(i).map(String::as_str) == Some("data") {
        i += 1;
    }
    // The type is followed by the name; an address of one part names no resource.
    if i + 1 >= parts.len() {
        return None;
    }
    let t = parts[i].split('[').next().unwrap_or_default();
    (!t.is_empty()).then(|| t.to_string())
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

/// `api.operation` for a record: `terraform apply`, `terraform state rm`, `state write` …
fn operation(r: &Record) -> String {
    if let Some(what) = r.kind.strip_prefix("terraform.state.") {
        if what == "write" || what == "delete" {
            return format!("state {what}");
        }
    }
    let (tool, rest) = r.kind.split_once('.').unwrap_or(("terraform", &r.kind));
    let tool = if tool == "tofu" { "tofu" } else { "terraform" };
    match text(r.payload.pointer("/command/subcommand")).filter(|s| !s.is_empty()) {
        Some(sub) => format!("{tool} {sub}"),
        None => {
            let stem = rest
                .strip_suffix(".outcome")
                .or_else(|| rest.strip_suffix(".intent"))
                .unwrap_or(rest);
            format!("{tool} {stem}")
        }
    }
}

fn time_ms(r: &Record) -> i64 {
    tftrail_index::time_ns(&r.time).map_or(0, |ns| ns / 1_000_000)
}

fn metadata(index: u64, n: usize, r: &Record, cp: &Checkpoint) -> Value {
    json!({
        "product": {"name": "tftrail", "vendor_name": "tftrail", "version": PRODUCT_VERSION},
        "version": OCSF_VERSION,
        "uid": format!("{index}-{n}"),
        "correlation_uid": index.to_string(),
        "log_name": cp.origin,
        "original_time": r.time,
    })
}

/// What tftrail knows that OCSF has no attribute for (`unmapped.tftrail`).
fn unmapped(index: u64, leaf: &str, r: &Record, extra: Map<String, Value>) -> Value {
    let mut t = Map::new();
    t.insert("index".into(), json!(index));
    t.insert("leaf_hash".into(), json!(leaf));
    t.insert("kind".into(), json!(r.kind));
    t.insert(
        "self_asserted".into(),
        json!({"user": r.actor.user, "host": r.actor.host, "ci": r.actor.ci}),
    );
    if let Some(a) = &r.actor.authenticated {
        t.insert("authenticated".into(), a.clone());
    }
    for k in ["dir", "workspace", "backend"] {
        if let Some(v) = r.payload.pointer(&format!("/context/{k}")) {
            t.insert(k.into(), v.clone());
        }
    }
    t.extend(extra);
    json!({"tftrail": t})
}

fn actor(r: &Record) -> Value {
    match authenticated_name(r) {
        Some((name, shown)) => json!({"user": {"name": name, "uid": shown}}),
        None => json!({"user": {"name": r.actor.user}}),
    }
}

/// OCSF API Activity activities for a tftrail action: `(activity_id, activity_name)`; a
/// replace is a delete then a create.
fn activities(action: &str) -> Vec<(u64, String)> {
    match action {
        "create" => vec![(1, "Create".into())],
        "update" => vec![(3, "Update".into())],
        "delete" => vec![(4, "Delete".into())],
        "replace" | "delete-create" | "create-delete" => {
            vec![(4, "Delete".into()), (1, "Create".into())]
        }
        other => vec![(99, other.to_string())],
    }
}

/// The OCSF events of one record: an API Activity event per activity of each state change
/// (`changes` as [`tftrail_index::extract`] made them; plan rows are skipped), or one
/// Authentication event for a `server.access.denied` record; none for other records.
pub fn ocsf_events(
    index: u64,
    entry: &[u8],
    r: &Record,
    changes: &[ChangeRow],
    cp: &Checkpoint,
) -> Vec<Value> {
    let leaf = hash_b64(&leaf_hash(entry));
    if r.kind == "server.access.denied" {
        return vec![denied_event(index, &leaf, r, cp)];
    }
    let state_record = matches!(
        r.kind.as_str(),
        "terraform.state.write" | "terraform.state.delete"
    );
    let outcome = text(r.payload.get("outcome"));
    let ok = state_record || outcome == Some("success");
    let op = operation(r);
    let mut out = Vec::new();
    for c in changes.iter().filter(|c| c.source == "state") {
        for (activity_id, activity_name) in activities(&c.action) {
            let n = out.len();
            let severity_id = match (ok, activity_id) {
                (false, _) => 3,
                (true, 4) => 2,
                _ => 1,
            };
            let mut extra = Map::new();
            extra.insert("action".into(), json!(c.action));
            extra.insert("state_change".into(), json!(c.state_change));
            extra.insert("paths".into(), json!(c.paths));
            if let Some(o) = outcome {
                extra.insert("outcome".into(), json!(o));
            }
            for k in ["intent_index", "out_of_band"] {
                if let Some(v) = r.payload.get(k) {
                    extra.insert(k.into(), v.clone());
                }
            }
            let mut resource = json!({"name": c.address, "uid": c.address});
            if let Some(t) = resource_type(&c.address) {
                resource["type"] = json!(t);
            }
            const SEVERITY: [&str; 4] = ["Unknown", "Informational", "Low", "Medium"];
            let type_name = format!("API Activity: {activity_name}");
            out.push(json!({
                "class_uid": 6003,
                "class_name": "API Activity",
                "category_uid": 6,
                "category_name": "Application Activity",
                "activity_id": activity_id,
                "activity_name": activity_name,
                "type_uid": 600300 + activity_id,
                "type_name": type_name,
                "time": time_ms(r),
                "severity_id": severity_id,
                "severity": SEVERITY[severity_id],
                "status_id": if ok { 1 } else { 2 },
                "status": if ok { "Success" } else { "Failure" },
                "status_detail": outcome.unwrap_or("written"),
                "message": format!("{op}: {} {} (record {index})", c.action, c.address),
                "actor": actor(r),
                "api": {"operation": op, "service": {"name": "terraform"}},
                "resources": [resource],
                "src_endpoint": {"hostname": r.actor.host},
                "metadata": metadata(index, n, r, cp),
                "unmapped": unmapped(index, &leaf, r, extra),
            }));
        }
    }
    out
}

fn denied_event(index: u64, leaf: &str, r: &Record, cp: &Checkpoint) -> Value {
    let p = &r.payload;
    let source = text(p.get("source")).unwrap_or("unknown");
    let endpoint = match source.parse::<std::net::IpAddr>() {
        Ok(ip) => json!({"ip": ip.to_string()}),
        Err(_) => json!({"name": source}),
    };
    let user = text(p.get("credential")).unwrap_or("unknown");
    let count = p.get("count").and_then(Value::as_u64).unwrap_or(1);
    let reason = text(p.get("reason"))
        .map(String::from)
        .or_else(|| p.get("reasons").map(Value::to_string))
        .unwrap_or_default();
    let mut extra = Map::new();
    for k in ["method", "path", "coalesced", "since", "reasons"] {
        if let Some(v) = p.get(k) {
            extra.insert(k.into(), v.clone());
        }
    }
    let mut e = json!({
        "class_uid": 3002,
        "class_name": "Authentication",
        "category_uid": 3,
        "category_name": "Identity & Access Management",
        "activity_id": 1,
        "activity_name": "Logon",
        "type_uid": 300201,
        "type_name": "Authentication: Logon",
        "time": time_ms(r),
        "count": count,
        "severity_id": 3,
        "severity": "Medium",
        "status_id": 2,
        "status": "Failure",
        "status_detail": reason,
        "message": format!("{count} request(s) from {source} refused by the tftrail server (record {index})"),
        "user": {"name": user},
        "src_endpoint": endpoint,
        "service": {"name": "tftrail"},
        "metadata": metadata(index, 0, r, cp),
        "unmapped": unmapped(index, leaf, r, extra),
    });
    if let Some(s) = p.get("status").and_then(Value::as_u64) {
        e["status_code"] = json!(s.to_string());
    }
    e
}

/// Exports a log in order, remembering where it stopped and which checkpoint it read last.
pub struct Exporter {
    format: Format,
    selection: Selection,
    /// The next entry to read.
    next: u64,
    /// The last checkpoint exported against.
    last: Option<Checkpoint>,
    /// The planned changes of intents whose outcome has not been seen yet.
    intent_plans: HashMap<u64, Vec<(String, String)>>,
}

impl Exporter {
    /// A new export of the records `selection` picks.
    pub fn new(format: Format, selection: Selection) -> Self {
        Exporter {
            format,
            selection,
            next: 0,
            last: None,
            intent_plans: HashMap::new(),
        }
    }

    /// The number of entries read so far.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Writes the entries of the tree of `cp` (whose signed note is `note`) not exported yet;
    /// returns the number of lines written. A checkpoint smaller than, or not consistent
    /// with, the last one is refused; one with nothing new writes nothing.
    pub fn export(
        &mut self,
        log: &Log,
        cp: &Checkpoint,
        note: &[u8],
        out: &mut dyn Write,
    ) -> Result<u64, ExportError> {
        if let Some(last) = &self.last {
            consistent(log, last, cp)?;
        }
        let mut lines = 0;
        if (cp.size > self.next || self.last.is_none()) && self.format == Format::Jsonl {
            writeln!(out, "{}", checkpoint_line(note))?;
            lines += 1;
        }
        while self.next < cp.size {
            let end = cp.size.min(self.next + CHUNK);
            let entries = log.entries(cp, self.next, end)?;
            for (k, entry) in entries.iter().enumerate() {
                let index = self.next + k as u64;
                lines += self.one(log, index, entry, cp, out)?;
            }
            self.next = end;
        }
        out.flush()?;
        self.last = Some(cp.clone());
        Ok(lines)
    }

    fn one(
        &mut self,
        log: &Log,
        index: u64,
        entry: &[u8],
        cp: &Checkpoint,
        out: &mut dyn Write,
    ) -> Result<u64, ExportError> {
        let r = Record::from_entry(entry).map_err(|e| ExportError::BadRecord {
            index,
            reason: e.to_string(),
        })?;
        let terraform = r.kind.starts_with("terraform.") || r.kind.starts_with("tofu.");
        let changes = if self.format == Format::Ocsf && terraform {
            // Fragments moved into blobs (big plans and diffs) are put back, their hashes checked.
            let mut full = r.clone();
            tftrail_index::inflate(log, &mut full.payload)?;
            let plans = &self.intent_plans;
            let (row, changes) = tftrail_index::extract(index, &full, &|i| {
                plans.get(&i).cloned().unwrap_or_default()
            });
            if r.kind.ends_with(".intent") {
                let planned = changes
                    .iter()
                    .filter(|c| c.source == "plan")
                    .map(|c| (c.address.clone(), c.action.clone()))
                    .collect();
                self.intent_plans.insert(index, planned);
            }
            if let Some(i) = row.intent_index.filter(|_| r.kind.ends_with(".outcome")) {
                self.intent_plans.remove(&i);
            }
            changes
        } else {
            Vec::new()
        };
        if !self.selection.matches(&r) {
            return Ok(0);
        }
        match self.format {
            Format::Jsonl => {
                writeln!(out, "{}", jsonl_line(index, entry, cp)?)?;
                Ok(1)
            }
            Format::Ocsf => {
                let events = ocsf_events(index, entry, &r, &changes, cp);
                for e in &events {
                    writeln!(out, "{e}")?;
                }
                Ok(events.len() as u64)
            }
        }
    }
}

/// Checks that `new` extends `old` (same origin, not smaller, a consistency proof that holds).
fn consistent(log: &Log, old: &Checkpoint, new: &Checkpoint) -> Result<(), ExportError> {
    if new.size < old.size {
        return Err(ExportError::Inconsistent(format!(
            "the log went back from size {} to {}: rolled back",
            old.size, new.size
        )));
    }
    if new.size == old.size {
        return if new.root == old.root {
            Ok(())
        } else {
            Err(ExportError::Inconsistent(format!(
                "two checkpoints of size {} with different roots: the log forked",
                new.size
            )))
        };
    }
    if old.size == 0 {
        return Ok(());
    }
    let proof = log.consistency(new, old.size)?;
    check_consistency(&proof, old.size, old.root, new.size, new.root).map_err(|e| {
        ExportError::Inconsistent(format!(
            "the checkpoint of size {} is not consistent with the one of size {} exported before: {e}",
            new.size, old.size
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tftrail_core::record::Actor;

    fn record(kind: &str, payload: Value, authenticated: Option<Value>) -> Record {
        let actor = Actor {
            authenticated,
            user: "alice".into(),
            host: "ci-7".into(),
            ci: None,
        };
        Record::new(kind, "2026-03-01T10:00:00.250Z", actor, payload, vec![]).unwrap()
    }

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "test.example/log".into(),
            size: 10,
            root: tftrail_core::merkle::empty_root(),
        }
    }

    fn row(action: &str, addr: &str) -> ChangeRow {
        ChangeRow {
            index: 3,
            address: addr.into(),
            action: action.into(),
            paths: vec![],
            source: "state".into(),
            state_change: Some("changed".into()),
        }
    }

    #[test]
    fn resource_types() {
        assert_eq!(
            resource_type("aws_s3_bucket.logs").as_deref(),
            Some("aws_s3_bucket")
        );
        assert_eq!(
            resource_type(r#"module.a.module.b.aws_s3_bucket.logs["x.y"]"#).as_deref(),
            Some("aws_s3_bucket")
        );
        assert_eq!(
            resource_type("data.aws_ami.ubuntu").as_deref(),
            Some("aws_ami")
        );
        assert_eq!(
            resource_type("terraform_data.web[0]").as_deref(),
            Some("terraform_data")
        );
        assert_eq!(resource_type("module.a"), None);
        assert_eq!(resource_type("nothing"), None);
    }

    #[test]
    fn replace_is_a_delete_then_a_create() {
        let r = record(
            "terraform.apply.outcome",
            json!({"outcome": "success", "command": {"subcommand": "apply"}}),
            Some(json!({"by": "token", "name": "ci", "role": "writer"})),
        );
        let entry = r.to_entry().unwrap();
        let ev = ocsf_events(
            3,
            &entry,
            &r,
            &[
                row("replace", "terraform_data.db"),
                row("update", "terraform_data.web"),
            ],
            &cp(),
        );
        let ids: Vec<(u64, u64)> = ev
            .iter()
            .map(|e| {
                (
                    e["activity_id"].as_u64().unwrap(),
                    e["type_uid"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ids, [(4, 600304), (1, 600301), (3, 600303)]);
        let e = &ev[0];
        assert_eq!(e["actor"]["user"]["uid"], "token:ci");
        assert_eq!(e["actor"]["user"]["name"], "ci");
        assert_eq!(e["api"]["operation"], "terraform apply");
        assert_eq!(e["resources"][0]["type"], "terraform_data");
        assert_eq!(e["time"], 1_772_359_200_250i64);
        assert_eq!(e["status_id"], 1);
        assert_eq!(e["metadata"]["correlation_uid"], "3");
        assert_eq!(
            e["unmapped"]["tftrail"]["leaf_hash"],
            hash_b64(&leaf_hash(&entry))
        );
        let uids: Vec<&str> = ev
            .iter()
            .map(|e| e["metadata"]["uid"].as_str().unwrap())
            .collect();
        assert_eq!(uids, ["3-0", "3-1", "3-2"]);
    }

    #[test]
    fn failed_outcome_and_state_write() {
        let r = record(
            "terraform.apply.outcome",
            json!({"outcome": "failed"}),
            None,
        );
        let e = &ocsf_events(
            3,
            &r.to_entry().unwrap(),
            &r,
            &[row("create", "a.b")],
            &cp(),
        )[0];
        assert_eq!(
            (e["status_id"].as_u64(), e["status"].as_str()),
            (Some(2), Some("Failure"))
        );
        assert_eq!(e["actor"]["user"], json!({"name": "alice"}));
        assert_eq!(e["src_endpoint"]["hostname"], "ci-7");
        let w = record("terraform.state.write", json!({"out_of_band": true}), None);
        let e = &ocsf_events(
            4,
            &w.to_entry().unwrap(),
            &w,
            &[row("forget", "a.b")],
            &cp(),
        )[0];
        assert_eq!(e["api"]["operation"], "state write");
        assert_eq!(
            (e["activity_id"].as_u64(), e["activity_name"].as_str()),
            (Some(99), Some("forget"))
        );
        assert_eq!(e["type_uid"], 600399);
        assert_eq!(e["unmapped"]["tftrail"]["out_of_band"], true);
        // Plan rows are what was planned, not what happened.
        let mut plan = row("create", "a.b");
        plan.source = "plan".into();
        assert!(ocsf_events(4, &w.to_entry().unwrap(), &w, &[plan], &cp()).is_empty());
    }

    #[test]
    fn denied_access_is_a_failed_logon() {
        let r = record(
            "server.access.denied",
            json!({"source": "127.0.0.1", "method": "POST", "path": "/v1/records", "status": 401, "reason": "unknown token", "credential": "tftrail_ab12", "count": 1}),
            Some(json!({"by": "server"})),
        );
        let ev = ocsf_events(7, &r.to_entry().unwrap(), &r, &[], &cp());
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(
            (e["class_uid"].as_u64(), e["type_uid"].as_u64()),
            (Some(3002), Some(300201))
        );
        assert_eq!(e["status_id"], 2);
        assert_eq!(e["status_code"], "401");
        assert_eq!(e["src_endpoint"]["ip"], "127.0.0.1");
        assert_eq!(e["user"]["name"], "tftrail_ab12");
        assert_eq!(e["status_detail"], "unknown token");
    }

    #[test]
    fn selection() {
        let r = record("terraform.apply.intent", json!({}), None);
        let all = Selection::default();
        assert!(all.matches(&r));
        let kind = |k: &str| Selection {
            kind: Some(k.into()),
            ..Default::default()
        };
        assert!(kind("apply").matches(&r));
        assert!(kind("terraform.apply.intent").matches(&r));
        assert!(!kind("plan").matches(&r));
        let t = tftrail_index::time_ns("2026-03-01T10:00:00.250Z").unwrap();
        let since = |s| Selection {
            since_ns: Some(s),
            ..Default::default()
        };
        let until = |u| Selection {
            until_ns: Some(u),
            ..Default::default()
        };
        assert!(since(t).matches(&r));
        assert!(!since(t + 1).matches(&r));
        assert!(!until(t).matches(&r));
        assert!(until(t + 1).matches(&r));
    }

    #[test]
    fn jsonl_line_hashes_the_entry() {
        let r = record("note", json!({"x": 1}), None);
        let entry = r.to_entry().unwrap();
        let l = jsonl_line(5, &entry, &cp()).unwrap();
        assert_eq!(l["index"], 5);
        assert_eq!(l["leaf_hash"], hash_b64(&leaf_hash(&entry)));
        assert_eq!(l["checkpoint"]["size"], 10);
        assert_eq!(
            serde_json_canonicalizer::to_vec(&l["record"]).unwrap(),
            entry
        );
    }
}
