//! Evidence bundles: one tar file that proves itself offline (docs/EVIDENCE.md).
//!
//! [`build`] gathers, from a log read through tftrail-log's authenticated reads, every entry
//! of the index range that a time window covers (plus one entry on each side, which bound it),
//! the blobs they need, an inclusion proof per entry against the newest checkpoint, and a
//! consistency proof from the tree just before the range to that checkpoint. [`verify`]
//! checks a bundle with nothing but the log's verifier key (and witness keys when asked).
//! What is selected is a pure function of the bundle's own content ([`Selection::matches`]),
//! so the verifier recomputes the selection and the report instead of trusting the manifest.

pub mod report;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::{Checkpoint, VerifierKey};
use tftrail_core::merkle::{
    check_consistency, check_inclusion, hash_b64, leaf_hash, parse_hash, Hash,
};
use tftrail_core::receipt::Receipt;
use tftrail_core::record::Record;

/// The format's name and version, the manifest's first member.
pub const FORMAT: &str = "tftrail-evidence/v1";
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The checkpoint note's file name.
pub const CHECKPOINT: &str = "checkpoint";
/// The report's file name.
pub const REPORT: &str = "report.html";
/// The consistency proof's file name (a C2SP tlog-witness add-checkpoint body).
pub const CONSISTENCY: &str = "proofs/consistency";
/// Largest bundle [`read_tar`] accepts, and largest member.
const MAX_BUNDLE: u64 = 4 << 30;

/// The records a bundle selects: a time window, and optionally a kind and a resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Records at or after this time (RFC 3339, UTC), when bounded.
    pub since: Option<String>,
    /// Records before this time, when bounded.
    pub until: Option<String>,
    /// Kind filter (as `tftrail log --kind`).
    pub kind: Option<String>,
    /// Resource address (as `tftrail log --resource`: the address or its instances).
    pub resource: Option<String>,
}

impl Selection {
    fn bounds(&self) -> Result<(Option<i64>, Option<i64>), String> {
        let p = |s: &Option<String>, what: &str| {
            s.as_deref()
                .map(|t| {
                    tftrail_index::time_ns(t).ok_or_else(|| {
                        format!("the manifest's {what} {t:?} is not an RFC 3339 time")
                    })
                })
                .transpose()
        };
        Ok((p(&self.since, "since")?, p(&self.until, "until")?))
    }

    /// Whether the record's time is in the window (a record whose time does not parse is
    /// not, as with `tftrail export`).
    pub fn in_window(&self, r: &Record) -> bool {
        let Ok((since, until)) = self.bounds() else {
            return false;
        };
        match tftrail_index::time_ns(&r.time) {
            Some(t) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u),
            None => since.is_none() && until.is_none(),
        }
    }

    /// Whether the record is selected: in the window, of the kind, changing the resource.
    /// `full` is the record with its blob fragments put back; `intent_plan` the planned
    /// changes of an intent record in the bundle (empty for one outside it).
    pub fn matches(
        &self,
        index: u64,
        full: &Record,
        intent_plan: &dyn Fn(u64) -> Vec<(String, String)>,
    ) -> bool {
        if !self.in_window(full) {
            return false;
        }
        if let Some(k) = &self.kind {
            if !tftrail_index::kind_matches(k, &full.kind) {
                return false;
            }
        }
        if let Some(addr) = &self.resource {
            let (_, changes) = tftrail_index::extract(index, full, intent_plan);
            let inst = format!("{addr}[");
            if !changes
                .iter()
                .any(|c| &c.address == addr || c.address.starts_with(&inst))
            {
                return false;
            }
        }
        true
    }
}

/// What the manifest says of the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointInfo {
    /// Tree size.
    pub size: u64,
    /// Root hash, base64.
    pub root: String,
    /// Names of the witnesses whose signature lines the note carries (not checked by the
    /// builder: the verifier checks them against the keys it is given).
    pub cosignature_lines: Vec<String>,
}

/// The tree just before the bundle's range.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTree {
    /// Its size: the range's first index.
    pub size: u64,
    /// Its root hash, base64 (the consistency proof proves it a prefix of the checkpoint's).
    pub root: String,
}

/// One entry of the range.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInfo {
    /// Log index.
    pub index: u64,
    /// RFC 6962 leaf hash of the entry bytes, base64.
    pub leaf_hash: String,
    /// Whether the selection picked it (else it is there to prove the range complete).
    pub selected: bool,
    /// The record's kind and time (for people reading the manifest).
    pub kind: String,
    /// The record's time.
    pub time: String,
}

/// One blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobInfo {
    /// Lower-case hex SHA-256 (its file is `blobs/sha256/<hex>`).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The log's origin.
    pub origin: String,
    /// The log's verifier key as the builder trusted it (the verifier uses its own `--key`).
    pub verifier_key: String,
    /// When the bundle was made (the builder's clock).
    pub created: String,
    /// What was selected.
    pub selection: Selection,
    /// The checkpoint everything is proven against (file `checkpoint`).
    pub checkpoint: CheckpointInfo,
    /// The tree before the range; `None` when the range starts at entry 0.
    pub start: Option<StartTree>,
    /// Every entry of the range `[first, last]`, in order (files `entries/<index>` and
    /// `proofs/<index>.tlog-proof`).
    pub entries: Vec<EntryInfo>,
    /// Every blob the selected records name, and the plan-summary and state-diff blobs of
    /// the range's other records (the resource filter reads them).
    pub blobs: Vec<BlobInfo>,
    /// SHA-256 of `report.html`, hex.
    pub report_sha256: String,
    /// What the bundle proves, as its builder states it (`tftrail evidence verify` says what
    /// it checked itself).
    pub proves: Vec<String>,
}

/// The file of entry `i`.
pub fn entry_file(i: u64) -> String {
    format!("entries/{i}")
}

/// The inclusion proof of entry `i`: a C2SP tlog-proof receipt (without the entry).
pub fn proof_file(i: u64) -> String {
    format!("proofs/{i}.tlog-proof")
}

/// The file of a blob.
pub fn blob_file(sha256: &str) -> String {
    format!("blobs/sha256/{sha256}")
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The blob hashes a record's payload points at for fragments moved out of it
/// (`{"in_blob": …}`, tftrail_index::MOVABLE).
pub fn fragment_blobs(r: &Record) -> Vec<String> {
    tftrail_index::MOVABLE
        .iter()
        .filter_map(|(ptr, _, _)| {
            r.payload
                .pointer(ptr)?
                .pointer("/in_blob/sha256")?
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// The record with its moved fragments put back from `blobs` (left as stubs when absent).
pub fn inflate(r: &Record, blobs: &BTreeMap<String, Vec<u8>>) -> Record {
    let mut full = r.clone();
    for (ptr, _, _) in tftrail_index::MOVABLE {
        let Some(frag) = full.payload.pointer_mut(ptr) else {
            continue;
        };
        let Some(sha) = frag.pointer("/in_blob/sha256").and_then(Value::as_str) else {
            continue;
        };
        if let Some(v) = blobs
            .get(sha)
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        {
            *frag = v;
        }
    }
    full
}

/// The planned (address, action) pairs of an inflated intent record.
fn planned(index: u64, r: &Record) -> Vec<(String, String)> {
    let (_, rows) = tftrail_index::extract(index, r, &|_| Vec::new());
    rows.into_iter()
        .filter(|c| c.source == "plan")
        .map(|c| (c.address, c.action))
        .collect()
}

/// Which of `records` (index, inflated record) the selection picks.
pub fn select(sel: &Selection, records: &BTreeMap<u64, Record>) -> BTreeSet<u64> {
    let plan = |i: u64| records.get(&i).map(|r| planned(i, r)).unwrap_or_default();
    records
        .iter()
        .filter(|(i, r)| sel.matches(**i, r, &plan))
        .map(|(i, _)| *i)
        .collect()
}

/// Everything a bundle holds, before it is written as tar.
pub struct Contents {
    /// The manifest.
    pub manifest: Manifest,
    /// The files, by name, manifest excluded.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Contents {
    /// The tar file: the manifest first, then the other files in name order.
    pub fn to_tar(&self) -> std::io::Result<Vec<u8>> {
        let mtime = tftrail_index::time_ns(&self.manifest.created)
            .map_or(0, |t| (t / 1_000_000_000).max(0) as u64);
        let mut b = tar::Builder::new(Vec::new());
        let manifest = serde_json::to_vec_pretty(&self.manifest).expect("serialises");
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data)
        };
        add(MANIFEST, &manifest)?;
        for (name, data) in &self.files {
            add(name, data)?;
        }
        b.into_inner()
    }
}

/// Reads a tar bundle into its files. Only regular files with plain relative names are
/// accepted, each once.
pub fn read_tar(data: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    use std::io::Read;
    let damaged = |e: std::io::Error| format!("the bundle is truncated or not a tar file: {e}");
    let mut files = BTreeMap::new();
    let mut ar = tar::Archive::new(data);
    for entry in ar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let name = entry
            .path_bytes()
            .iter()
            .map(|&b| b as char)
            .collect::<String>();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(format!(
                "the bundle holds {name:?}, which is not a regular file"
            ));
        }
        let plain = !name.is_empty()
            && name.len() <= 200
            && name.split('/').all(|c| {
                !c.is_empty() && c != "." && c != ".." && c.bytes().all(|b| b.is_ascii_graphic())
            });
        if !plain {
            return Err(format!(
                "the bundle holds a file with an unsafe name {name:?}"
            ));
        }
        let size = entry.header().size().map_err(damaged)?;
        if size > MAX_BUNDLE {
            return Err(format!("{name} is larger than a bundle may be"));
        }
        let mut buf = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut buf).map_err(damaged)?;
        if buf.len() as u64 != size {
            return Err(format!("the bundle is truncated inside {name}"));
        }
        if files.insert(name.clone(), buf).is_some() {
            return Err(format!("the bundle holds {name} twice"));
        }
    }
    if files.is_empty() {
        return Err("the bundle is empty or not a tar file".into());
    }
    Ok(files)
}

/// The names of the signature lines of a note other than `key`'s (cosignatures, probably).
pub fn other_signers(note: &[u8], key_name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(note);
    let Some((_, sigs)) = text.split_once("\n\n") else {
        return Vec::new();
    };
    sigs.lines()
        .filter_map(|l| l.strip_prefix("\u{2014} "))
        .filter_map(|l| l.split_once(' ').map(|(n, _)| n.to_string()))
        .filter(|n| n != key_name)
        .collect()
}

/// The consistency proof file: `old N`, the proof's hashes, an empty line, the checkpoint
/// note (the body of a C2SP tlog-witness add-checkpoint request).
pub fn consistency_file(old: u64, proof: &[Hash], note: &[u8]) -> Vec<u8> {
    let mut s = format!("old {old}\n");
    for h in proof {
        s.push_str(&hash_b64(h));
        s.push('\n');
    }
    s.push('\n');
    let mut out = s.into_bytes();
    out.extend_from_slice(note);
    out
}

fn parse_consistency(data: &[u8]) -> Result<(u64, Vec<Hash>, Vec<u8>), String> {
    let bad = |w: &str| format!("{CONSISTENCY} is malformed: {w}");
    let text = std::str::from_utf8(data).map_err(|_| bad("not UTF-8"))?;
    let (head, note) = text
        .split_once("\n\n")
        .ok_or_else(|| bad("no empty line"))?;
    let mut lines = head.split('\n');
    let old = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| bad("the first line is not `old N`"))?;
    let proof = lines
        .map(|l| parse_hash(l).ok_or_else(|| bad("a proof line is not a base64 hash")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((old, proof, note.as_bytes().to_vec()))
}

/// What a verification established, for the text and JSON reports.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    /// No problem found.
    pub ok: bool,
    /// Every problem found (empty when `ok`).
    pub problems: Vec<String>,
    /// The log's origin.
    pub origin: String,
    /// The key that signed the checkpoint (`name+id`).
    pub key: String,
    /// Checkpoint tree size.
    pub size: u64,
    /// Checkpoint root, base64.
    pub root: String,
    /// The witnesses whose cosignatures verified: (name, key id, time).
    pub cosigned_by: Vec<(String, String, u64)>,
    /// Whether a witness policy was given and satisfied (`None`: none was given).
    pub quorum: Option<bool>,
    /// The range `[first, end)` of entries present.
    pub range: (u64, u64),
    /// The selected records' indexes.
    pub selected: Vec<u64>,
    /// Number of blobs checked.
    pub blobs: usize,
    /// The selection.
    pub selection: Selection,
    /// What it proves.
    pub proves: Vec<String>,
    /// What it does not prove.
    pub does_not_prove: Vec<String>,
}

/// A check of cosignatures: given the note, returns the valid cosigners (name, key id hex,
/// time) and, for a policy, whether it is met and why not.
pub type WitnessCheck<'a> =
    &'a dyn Fn(&[u8]) -> (Vec<(String, String, u64)>, Option<Result<(), String>>);

/// Checks a bundle offline. A bundle that cannot be read at all (not tar, no manifest, a
/// checkpoint that does not verify) is one problem; otherwise every problem is listed.
pub fn verify(data: &[u8], key: &VerifierKey, witnesses: Option<WitnessCheck<'_>>) -> Verdict {
    let mut v = Verdict {
        key: key.display_id(),
        ..Verdict::default()
    };
    if let Err(p) = verify_into(&mut v, data, key, witnesses) {
        v.problems.push(p);
    }
    v.ok = v.problems.is_empty();
    if !v.ok {
        v.proves.clear();
        v.does_not_prove.clear();
    }
    v
}

fn verify_into(
    v: &mut Verdict,
    data: &[u8],
    key: &VerifierKey,
    witnesses: Option<WitnessCheck<'_>>,
) -> Result<(), String> {
    let mut files = read_tar(data)?;
    let manifest = files
        .remove(MANIFEST)
        .ok_or_else(|| format!("the bundle has no {MANIFEST}"))?;
    let m: Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| format!("{MANIFEST} is not a tftrail evidence manifest: {e}"))?;
    if m.format != FORMAT {
        return Err(format!(
            "{MANIFEST} is of format {:?}; this tftrail reads {FORMAT:?}",
            m.format
        ));
    }
    v.selection = m.selection.clone();
    // 1. The checkpoint, signed by the key the auditor trusts.
    let note = files
        .get(CHECKPOINT)
        .ok_or_else(|| format!("the bundle has no {CHECKPOINT}"))?
        .clone();
    let cp: Checkpoint = key
        .open_checkpoint(&note)
        .map_err(|e| format!("{CHECKPOINT}: {e}"))?;
    v.origin = cp.origin.clone();
    v.size = cp.size;
    v.root = hash_b64(&cp.root);
    if m.checkpoint.size != cp.size || m.checkpoint.root != v.root || m.origin != cp.origin {
        v.problems.push(format!(
            "{MANIFEST} names checkpoint {} size {} root {}, but {CHECKPOINT} is {} size {} root {}",
            m.origin, m.checkpoint.size, m.checkpoint.root, cp.origin, cp.size, v.root
        ));
    }
    if let Some(check) = witnesses {
        let (cosigned, quorum) = check(&note);
        v.cosigned_by = cosigned;
        if let Some(q) = quorum {
            v.quorum = Some(q.is_ok());
            if let Err(why) = q {
                v.problems.push(format!("witness quorum not met: {why}"));
            }
        }
    }
    // 2. The manifest lists exactly the files there are.
    let first = m.entries.first().map_or(0, |e| e.index);
    let end = first + m.entries.len() as u64;
    v.range = (first, end);
    let mut want: BTreeSet<String> = [CHECKPOINT, REPORT].iter().map(|s| s.to_string()).collect();
    for (k, e) in m.entries.iter().enumerate() {
        if e.index != first + k as u64 {
            v.problems.push(format!(
                "{MANIFEST} lists entry {} after entry {}: the range has a gap (a record was dropped from the manifest?)",
                e.index,
                first + k as u64 - 1
            ));
            return Ok(());
        }
        want.insert(entry_file(e.index));
        want.insert(proof_file(e.index));
    }
    for b in &m.blobs {
        want.insert(blob_file(&b.sha256));
    }
    if m.start.is_some() {
        want.insert(CONSISTENCY.into());
    }
    let have: BTreeSet<String> = files.keys().cloned().collect();
    for missing in want.difference(&have) {
        v.problems.push(format!(
            "{missing} is listed in {MANIFEST} but missing from the bundle"
        ));
    }
    for extra in have.difference(&want) {
        v.problems
            .push(format!("{extra} is in the bundle but not in {MANIFEST}"));
    }
    if end > cp.size {
        v.problems.push(format!(
            "{MANIFEST} lists entries up to {} but the checkpoint's tree has {}",
            end - 1,
            cp.size
        ));
        return Ok(());
    }
    // 3. Each entry: its bytes, its leaf hash, its inclusion proof against the checkpoint.
    let mut records: BTreeMap<u64, Record> = BTreeMap::new();
    for e in &m.entries {
        let Some(bytes) = files.get(&entry_file(e.index)) else {
            continue;
        };
        let lh = leaf_hash(bytes);
        if hash_b64(&lh) != e.leaf_hash {
            v.problems.push(format!(
                "{}: its leaf hash is {} but {MANIFEST} says {} (the record was altered)",
                entry_file(e.index),
                hash_b64(&lh),
                e.leaf_hash
            ));
        }
        match files.get(&proof_file(e.index)).map(|p| Receipt::parse(p)) {
            None => {}
            Some(Err(err)) => v.problems.push(format!("{}: {err}", proof_file(e.index))),
            Some(Ok(r)) => {
                if r.index != e.index {
                    v.problems.push(format!(
                        "{} proves index {}, not {}",
                        proof_file(e.index),
                        r.index,
                        e.index
                    ));
                } else if r.checkpoint != note {
                    v.problems.push(format!(
                        "{} is against another checkpoint than {CHECKPOINT}",
                        proof_file(e.index)
                    ));
                } else if r.entry.as_deref().is_some_and(|x| x != bytes.as_slice()) {
                    v.problems.push(format!(
                        "{} carries other entry bytes than {}",
                        proof_file(e.index),
                        entry_file(e.index)
                    ));
                } else if let Err(err) = check_inclusion(&r.proof, cp.size, cp.root, e.index, lh) {
                    v.problems.push(format!(
                        "entry {} is not in the log's tree of size {} ({err}): the record or its proof was altered",
                        e.index, cp.size
                    ));
                }
            }
        }
        match Record::from_entry(bytes) {
            Ok(r) => {
                if r.kind != e.kind || r.time != e.time {
                    v.problems.push(format!(
                        "{MANIFEST} gives entry {} as {} at {}, the entry is {} at {}",
                        e.index, e.kind, e.time, r.kind, r.time
                    ));
                }
                records.insert(e.index, r);
            }
            Err(err) => v.problems.push(format!(
                "{} is not a tftrail record: {err}",
                entry_file(e.index)
            )),
        }
    }
    // 4. The consistency proof from the tree before the range.
    match &m.start {
        None if first != 0 => v.problems.push(format!(
            "the range starts at entry {first} but {MANIFEST} names no tree before it"
        )),
        None => {}
        Some(s) => {
            if s.size != first || first == 0 {
                v.problems.push(format!(
                    "{MANIFEST}'s start tree has size {}, the range starts at entry {first}",
                    s.size
                ));
            } else if let Some(data) = files.get(CONSISTENCY) {
                match (parse_consistency(data), parse_hash(&s.root)) {
                    (Err(e), _) => v.problems.push(e),
                    (_, None) => v
                        .problems
                        .push(format!("{MANIFEST}'s start root is not a base64 hash")),
                    (Ok((old, proof, n)), Some(old_root)) => {
                        if old != s.size || n != note {
                            v.problems.push(format!(
                                "{CONSISTENCY} is from size {old} to another checkpoint than {CHECKPOINT}"
                            ));
                        } else if let Err(e) =
                            check_consistency(&proof, old, old_root, cp.size, cp.root)
                        {
                            v.problems.push(format!(
                                "the tree of size {old} is not a prefix of the checkpoint's tree ({e})"
                            ));
                        }
                    }
                }
            }
        }
    }
    // 5. Blobs: each matches its hash and the size listed.
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for b in &m.blobs {
        let Some(data) = files.get(&blob_file(&b.sha256)) else {
            continue;
        };
        if sha256_hex(data) != b.sha256 {
            v.problems.push(format!(
                "{} does not match its SHA-256 (the blob was altered)",
                blob_file(&b.sha256)
            ));
        } else if data.len() as u64 != b.size {
            v.problems.push(format!(
                "{} has {} bytes, {MANIFEST} says {}",
                blob_file(&b.sha256),
                data.len(),
                b.size
            ));
        } else {
            blobs.insert(b.sha256.clone(), data.clone());
        }
    }
    v.blobs = blobs.len();
    // 6. The selection, recomputed from the records; every blob a selected record names.
    let full: BTreeMap<u64, Record> = records
        .iter()
        .map(|(i, r)| (*i, inflate(r, &blobs)))
        .collect();
    for (i, r) in &records {
        for sha in fragment_blobs(r) {
            if !m.blobs.iter().any(|b| b.sha256 == sha) {
                v.problems.push(format!(
                    "record {i} keeps part of its payload in blob {sha}, which the bundle lacks"
                ));
            }
        }
    }
    let selected = select(&m.selection, &full);
    for e in &m.entries {
        let picked = selected.contains(&e.index);
        if picked && !e.selected {
            v.problems.push(format!(
                "record {} matches the selection but {MANIFEST} does not mark it selected (left out?)",
                e.index
            ));
        } else if !picked && e.selected && records.contains_key(&e.index) {
            v.problems.push(format!(
                "{MANIFEST} marks record {} selected but it does not match the selection",
                e.index
            ));
        }
    }
    for i in &selected {
        for b in &records[i].blobs {
            match m.blobs.iter().find(|x| x.sha256 == b.sha256) {
                None => v.problems.push(format!(
                    "record {i} names blob {} ({}), which the bundle lacks",
                    b.name, b.sha256
                )),
                Some(x) if x.size != b.size => v.problems.push(format!(
                    "record {i} gives blob {} {} bytes, {MANIFEST} {}",
                    b.name, b.size, x.size
                )),
                Some(_) => {}
            }
        }
    }
    v.selected = selected.iter().copied().collect();
    // 7. Completeness: the entries on the range's edges lie outside the window, unless the
    //    range reaches the log's start or the checkpoint's end.
    if let Some(r) = records.get(&first).filter(|_| first > 0) {
        if m.selection.in_window(r) {
            v.problems.push(format!(
                "entry {first}, the first of the bundle, has a time in the window: records before it may have been left out"
            ));
        }
    }
    if let Some(r) = records
        .get(&(end.wrapping_sub(1)))
        .filter(|_| end < cp.size)
    {
        if m.selection.in_window(r) {
            v.problems.push(format!(
                "entry {}, the last of the bundle, has a time in the window: records after it may have been left out",
                end - 1
            ));
        }
    }
    if m.entries.is_empty() && cp.size > 0 {
        v.problems.push(format!(
            "{MANIFEST} lists no entry: not even the ones bounding the window"
        ));
    }
    // 8. The report is what these records render to.
    let html = report::render(&m, &full, &selected);
    match files.get(REPORT) {
        Some(r) if *r == html => {}
        Some(_) => v.problems.push(format!(
            "{REPORT} is not what the bundle's records render to (it was edited)"
        )),
        None => {}
    }
    if sha256_hex(&html) != m.report_sha256 && files.get(REPORT).is_some_and(|r| *r == html) {
        v.problems.push(format!(
            "{MANIFEST}'s report_sha256 does not match {REPORT}"
        ));
    }
    if v.problems.is_empty() {
        claims(v, &m, key);
    }
    Ok(())
}

fn window_text(s: &Selection) -> String {
    match (&s.since, &s.until) {
        (Some(a), Some(b)) => format!("from {a} (inclusive) to {b} (exclusive)"),
        (Some(a), None) => format!("from {a} on"),
        (None, Some(b)) => format!("before {b}"),
        (None, None) => "at any time".into(),
    }
}

fn filter_text(s: &Selection) -> String {
    let mut f = Vec::new();
    if let Some(k) = &s.kind {
        f.push(format!("of kind {k}"));
    }
    if let Some(r) = &s.resource {
        f.push(format!("changing {r}"));
    }
    if f.is_empty() {
        String::new()
    } else {
        format!(" {}", f.join(" and "))
    }
}

/// The statements of a bundle that verified.
fn claims(v: &mut Verdict, m: &Manifest, key: &VerifierKey) {
    let (first, end) = v.range;
    let sel = &m.selection;
    let mut p = vec![format!(
        "the checkpoint of log {} at tree size {}, root {}, is signed by {}",
        v.origin,
        v.size,
        v.root,
        key.display_id()
    )];
    if !v.cosigned_by.is_empty() {
        let w: Vec<String> = v
            .cosigned_by
            .iter()
            .map(|(n, id, t)| format!("{n}+{id} at {}", unix_text(*t)))
            .collect();
        p.push(format!(
            "it is cosigned by {}{}",
            w.join(", "),
            match v.quorum {
                Some(true) => " (the witness quorum asked for is met)",
                _ => "",
            }
        ));
    }
    let n = v.selected.len();
    p.push(format!(
        "the {n} selected record{} ({}) {} entries of that tree, byte for byte (one inclusion proof each), and the {} blob{} in the bundle match the SHA-256 the records give",
        if n == 1 { "" } else { "s" },
        index_list(&v.selected),
        if n == 1 { "is one of the" } else { "are" },
        v.blobs,
        if v.blobs == 1 { "" } else { "s" }
    ));
    if end > first {
        p.push(format!(
            "entries {first}..{} are all in the bundle, and every one of them with a time {}{} is among the selected records: none in that index range was left out",
            end - 1,
            window_text(sel),
            filter_text(sel)
        ));
    }
    let lower = if first > 0 {
        format!("entry {first}, the first of the bundle, has a time outside the window")
    } else {
        "the range starts at the log's first entry".to_string()
    };
    let upper = if end < v.size {
        format!(
            "entry {}, the last, has a time outside the window",
            end.saturating_sub(1)
        )
    } else {
        "the range reaches the checkpoint's last entry".to_string()
    };
    p.push(format!("{lower}; {upper}"));
    if let Some(s) = &m.start {
        p.push(format!(
            "the tree of size {} (root {}) is a prefix of the checkpoint's tree (consistency proof): a checkpoint of that size with another root shows a fork",
            s.size, s.root
        ));
    }
    p.push(format!("{REPORT} is exactly what these records render to"));
    let mut d = vec![
        format!("records appended after tree size {} (the log may have grown since)", v.size),
        format!(
            "that no record outside entries {first}..{} has a time in the window: a record's time is its writer's clock, so one written out of order could lie elsewhere",
            end.saturating_sub(1)
        ),
        "that the log's signing key was not stolen or misused".to_string(),
    ];
    match v.quorum {
        Some(true) => d.push(
            "that the witnesses are honest and independent of the log: a cosignature shows only that a witness saw this tree consistent with every earlier one it cosigned".into(),
        ),
        _ if v.cosigned_by.is_empty() => d.push(
            "that everyone was shown this same tree (no witness cosignature was checked: pass --witness-policy or --witness)".into(),
        ),
        _ => d.push("that the witnesses form a quorum you trust (no --min-witnesses or policy was given)".into()),
    }
    d.push("that what a record says of its writer (user, host, CI) is true; only an `authenticated` identity was checked, by the team server that wrote it".into());
    d.push(
        "that nothing was changed outside tftrail (a change no recorded run made leaves no record)"
            .into(),
    );
    v.proves = p;
    v.does_not_prove = d;
}

fn index_list(ix: &[u64]) -> String {
    if ix.is_empty() {
        return "none".into();
    }
    // Runs of consecutive indexes as a..b.
    let mut out = Vec::new();
    let mut i = 0;
    while i < ix.len() {
        let mut j = i;
        while j + 1 < ix.len() && ix[j + 1] == ix[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}..{}", ix[i], ix[j])
        } else {
            ix[i].to_string()
        });
        i = j + 1;
    }
    out.join(", ")
}

/// A Unix time in seconds as RFC 3339.
pub fn unix_text(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{t} (Unix time)"))
}

/// Nanoseconds since the epoch as RFC 3339 (UTC).
pub fn ns_text(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ns.to_string())
}

/// Assembles a bundle from what the builder read (each read already authenticated):
/// `entries` the range `[first, first + len)`, `blobs` by hash.
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    key: &VerifierKey,
    created: String,
    selection: Selection,
    note: Vec<u8>,
    cp: &Checkpoint,
    first: u64,
    entries: Vec<Vec<u8>>,
    proofs: Vec<Vec<Hash>>,
    start: Option<(Hash, Vec<Hash>)>,
    blobs: BTreeMap<String, Vec<u8>>,
) -> Result<Contents, String> {
    let mut records = BTreeMap::new();
    for (k, e) in entries.iter().enumerate() {
        let i = first + k as u64;
        let r = Record::from_entry(e).map_err(|err| format!("entry {i}: {err}"))?;
        records.insert(i, r);
    }
    let full: BTreeMap<u64, Record> = records
        .iter()
        .map(|(i, r)| (*i, inflate(r, &blobs)))
        .collect();
    let selected = select(&selection, &full);
    // The blobs the bundle carries: all a selected record names, and every fragment blob.
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for (i, r) in &records {
        needed.extend(fragment_blobs(r));
        if selected.contains(i) {
            needed.extend(r.blobs.iter().map(|b| b.sha256.clone()));
        }
    }
    let mut files = BTreeMap::new();
    files.insert(CHECKPOINT.to_string(), note.clone());
    let mut entry_infos = Vec::new();
    for (k, (e, proof)) in entries.iter().zip(proofs).enumerate() {
        let i = first + k as u64;
        let r = &records[&i];
        entry_infos.push(EntryInfo {
            index: i,
            leaf_hash: hash_b64(&leaf_hash(e)),
            selected: selected.contains(&i),
            kind: r.kind.clone(),
            time: r.time.clone(),
        });
        let receipt = Receipt {
            index: i,
            proof,
            entry: None,
            checkpoint: note.clone(),
        };
        files.insert(entry_file(i), e.clone());
        files.insert(proof_file(i), receipt.encode());
    }
    let mut blob_infos = Vec::new();
    for sha in &needed {
        let data = blobs
            .get(sha)
            .ok_or_else(|| format!("blob {sha} was not read"))?;
        blob_infos.push(BlobInfo {
            sha256: sha.clone(),
            size: data.len() as u64,
        });
        files.insert(blob_file(sha), data.clone());
    }
    let start = start.map(|(root, proof)| {
        files.insert(CONSISTENCY.into(), consistency_file(first, &proof, &note));
        StartTree {
            size: first,
            root: hash_b64(&root),
        }
    });
    let mut m = Manifest {
        format: FORMAT.into(),
        origin: cp.origin.clone(),
        verifier_key: key.as_str().to_string(),
        created,
        selection,
        checkpoint: CheckpointInfo {
            size: cp.size,
            root: hash_b64(&cp.root),
            cosignature_lines: other_signers(&note, key.name()),
        },
        start,
        entries: entry_infos,
        blobs: blob_infos,
        report_sha256: String::new(),
        proves: Vec::new(),
    };
    let html = report::render(&m, &full, &selected);
    m.report_sha256 = sha256_hex(&html);
    files.insert(REPORT.into(), html);
    // State the claims the verifier will make, from the builder's side.
    let mut v = Verdict {
        origin: cp.origin.clone(),
        size: cp.size,
        root: hash_b64(&cp.root),
        range: (first, first + entries.len() as u64),
        selected: selected.iter().copied().collect(),
        blobs: m.blobs.len(),
        ..Verdict::default()
    };
    claims(&mut v, &m, key);
    m.proves = v.proves;
    Ok(Contents { manifest: m, files })
}
