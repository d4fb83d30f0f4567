//! Appending: claim, integrate, publish — and rolling forward whatever a crashed writer left.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tftrail_core::batch::Claimed;
use tftrail_core::checkpoint::{Checkpoint, SigningKey};
use tftrail_core::integrate::{push_hashes, Integrator};
use tftrail_core::layout::{batch_path, blob_path};
use tftrail_core::merkle::{empty_root, leaf_hash, Hash};
use tftrail_core::record::BlobRef;
use tftrail_core::{batch, MAX_ENTRY_SIZE};
use tftrail_store::{NewObject, Store, StoreError, Swap, CHECKPOINT};

use crate::read::Head;
use crate::{Log, LogError};

/// How many times a writer retries after losing a race before giving up.
const MAX_ATTEMPTS: u32 = 200;
/// How long a writer without a local lock lets another writer publish a batch it claimed
/// before finishing that batch itself (see [`Log::claim_shared`]).
const PATIENCE: Duration = Duration::from_secs(2);
/// Entries per batch claim in a large append.
const CHUNK_ENTRIES: usize = 65_536;
/// Bytes per batch claim in a large append.
const CHUNK_BYTES: usize = 32 << 20;

/// What a claim's staging round carries besides the batch (see [`Log::claim_staged`]).
#[derive(Clone, Copy)]
struct With<'a> {
    /// Blobs the batch's records reference.
    blobs: &'a [Blob],
    /// Whether to stage the checkpoint that will cover the batch.
    checkpoint: bool,
}

/// A blob to store beside the log.
#[derive(Debug, Clone)]
pub struct Blob {
    /// What it is (`plan.json` …).
    pub name: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl Blob {
    /// The reference a record carries.
    pub fn reference(&self) -> BlobRef {
        BlobRef {
            name: self.name.clone(),
            sha256: hex::encode(Sha256::digest(&self.data)),
            size: self.data.len() as u64,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Index of the first appended entry.
    pub first: u64,
    /// How many entries.
    pub count: u64,
    /// Tree size of the published checkpoint that covers them.
    pub size: u64,
    /// That checkpoint, as signed and stored (this append's own, or a newer one another
    /// writer published first): what a server hands its clients as proof that the entries
    /// are covered, without reading it back.
    pub checkpoint: Vec<u8>,
}

/// Creates a new, empty log in `store`: the checkpoint of the empty tree, signed with `key`.
/// Refuses when the store already holds a checkpoint or any tile.
pub fn init(store: &dyn Store, key: &SigningKey) -> Result<Checkpoint, LogError> {
    if store.get_checkpoint()?.is_some() || !store.list("tile/")?.is_empty() {
        return Err(LogError::AlreadyExists(store.location()));
    }
    let cp = Checkpoint {
        origin: key.name().to_string(),
        size: 0,
        root: empty_root(),
    };
    match store.swap_checkpoint(None, &key.sign_checkpoint(&cp))? {
        Swap::Done => Ok(cp),
        Swap::Lost => Err(LogError::AlreadyExists(store.location())),
    }
}

/// A staging name no other attempt uses: process, clock and a counter.
fn stage_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}-{nanos:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A little randomness for backoff, different across processes.
fn jitter() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64
        ^ u64::from(std::process::id()).wrapping_mul(2654435761)
}

/// Jittered exponential backoff: 5 ms doubling up to 500 ms.
fn backoff(attempt: u32) {
    let cap = (5u64 << attempt.min(7)).min(500);
    std::thread::sleep(Duration::from_millis(cap / 2 + jitter() % (cap / 2 + 1)));
}

impl Log {
    /// Appends entries (with the blobs their records reference) and returns once a published
    /// checkpoint covers them all. `key` must be the log's signing key. Large appends are
    /// claimed in chunks (each its own batch claim) and published under one checkpoint;
    /// `progress(done, total)` reports the entries written so far.
    pub fn append(
        &self,
        key: &SigningKey,
        entries: Vec<Vec<u8>>,
        blobs: &[Blob],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<AppendOutcome, LogError> {
        if key.verifier_key() != self.key.as_str() {
            return Err(LogError::Input(format!(
                "the signing key ({}) is not this log's key ({})",
                key.verifier().display_id(),
                self.key.display_id()
            )));
        }
        if entries.is_empty() {
            return Err(LogError::Input("nothing to append".into()));
        }
        if let Some((i, e)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.len() > MAX_ENTRY_SIZE)
        {
            return Err(LogError::Input(format!(
                "entry {} is {} bytes; a log entry holds at most {MAX_ENTRY_SIZE}",
                i + 1,
                e.len()
            )));
        }
        let total = entries.len() as u64;
        let mut chunks = Vec::new();
        let mut cur: Vec<Vec<u8>> = Vec::new();
        let mut cur_bytes = 0usize;
        for e in entries {
            if !cur.is_empty() && (cur.len() >= CHUNK_ENTRIES || cur_bytes + e.len() > CHUNK_BYTES)
            {
                chunks.push(std::mem::take(&mut cur));
                cur_bytes = 0;
            }
            cur_bytes += e.len() + 2;
            cur.push(e);
        }
        chunks.push(cur);
        // A store that stages takes a one-claim append's blobs and checkpoint in the same
        // round of fsyncs as the claim (a claim's roll-forward publishes its records' blobs
        // from staging). Otherwise the blobs are created first.
        let create_blobs = || -> Result<(), LogError> {
            if !blobs.is_empty() {
                let objs: Vec<NewObject> = blobs
                    .iter()
                    .map(|b| NewObject::new(blob_path(&b.reference().sha256), b.data.clone()))
                    .collect();
                self.store.create_all(&objs)?;
            }
            Ok(())
        };
        let mut fast = self.store.can_stage() && chunks.len() == 1;
        if !fast {
            create_blobs()?;
        }
        let lock = self.store.lock_writers()?;
        if fast && lock.is_none() {
            // Without the writers' lock the batch is claimed the shared way, which stages
            // nothing: the blobs are created now.
            fast = false;
            create_blobs()?;
        }

        let mut first = None;
        let mut done = 0u64;
        let mut state: Option<(Head, Integrator)> = None;
        let mut staged_checkpoint = None;
        for chunk in chunks {
            let n = chunk.len() as u64;
            let with = With {
                blobs: if fast { blobs } else { &[] },
                checkpoint: fast,
            };
            let (start, stage) =
                self.claim_and_integrate(key, chunk, &mut state, lock.is_some(), with)?;
            staged_checkpoint = stage;
            first.get_or_insert(start);
            done += n;
            progress(done, total);
        }
        let (head, it) = state.expect("at least one chunk");
        let cp = Checkpoint {
            origin: head.checkpoint.origin.clone(),
            size: it.size(),
            root: it.root(),
        };
        let (note, size, ours) = self.publish(key, head, &cp, staged_checkpoint.as_deref())?;
        if ours {
            if let Ok(mut last) = self.last_edge.lock() {
                *last = Some((note.clone(), it));
            }
        }
        let first = first.expect("at least one chunk");
        Ok(AppendOutcome {
            first,
            count: total,
            size,
            checkpoint: note,
        })
    }

    /// Claims the next free position for `entries` and writes their tiles; returns the first
    /// index, and the staging name under which the new checkpoint was staged (when
    /// `with.checkpoint` and the store stages). `state` carries the head and tree state between
    /// chunks of one append; it is reloaded from the store when empty or when another writer
    /// got in between.
    fn claim_and_integrate(
        &self,
        key: &SigningKey,
        entries: Vec<Vec<u8>>,
        state: &mut Option<(Head, Integrator)>,
        locked: bool,
        with: With,
    ) -> Result<(u64, Option<String>), LogError> {
        if !locked {
            return Ok((self.claim_shared(key, entries, state)?, None));
        }
        for attempt in 0..MAX_ATTEMPTS {
            let (head, mut it) = match state.take() {
                Some(s) => s,
                None => {
                    let head = self.head()?;
                    let mut it = self.integrator_for(&head)?;
                    let head = self.roll_forward(key, head, &mut it)?;
                    (head, it)
                }
            };
            let start = it.size();
            let claimed = if self.store.can_stage() {
                let origin = with.checkpoint.then_some(head.checkpoint.origin.as_str());
                self.claim_staged(key, &entries, &mut it, with.blobs, origin)
            } else {
                self.claim_with_entries(key, &entries, &mut it)
                    .map(|()| None)
            };
            let stage = match claimed {
                Ok(stage) => stage,
                Err(StoreError::Conflict { path }) if path == batch_path(start) => {
                    // Only a writer on another machine sharing this directory gets here.
                    backoff(attempt);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            *state = Some((head, it));
            return Ok((start, stage));
        }
        Err(LogError::Contention(MAX_ATTEMPTS))
    }

    /// Claims position `it.size()` with a claim that carries the entries' leaf hashes (v2),
    /// for stores that can stage: the claim, bundles, tiles and `blobs` (and, given the log's
    /// `origin`, the signed checkpoint that will cover the batch) are staged durably in one
    /// round; the claim's publication is the commit point; then the rest get their paths. A
    /// crash after the claim leaves bundles and blobs findable under the stage the claim names.
    /// Returns the staging name when the checkpoint was staged.
    ///
    /// The entry bundles need no hashing: for a large batch they are built and staged on a
    /// second thread while this one hashes the entries and builds the tiles, the claim and the
    /// checkpoint, which are staged as they are ready. Both are durable before the claim is
    /// published.
    fn claim_staged(
        &self,
        key: &SigningKey,
        entries: &[Vec<u8>],
        it: &mut Integrator,
        blobs: &[Blob],
        origin: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let start = it.size();
        let stage = stage_name();
        let (bundler, edge) = it.split();
        let bundles = || -> Result<Vec<NewObject>, StoreError> {
            let objects: Vec<NewObject> = bundler
                .push(entries)
                .into_iter()
                .map(|(p, d)| NewObject::new(p, d))
                .collect();
            self.store.stage(&stage, &objects)?;
            Ok(objects)
        };
        let mut rest = |hashes: Vec<Hash>| -> Result<Vec<NewObject>, StoreError> {
            let claim = batch::encode_hashes(key, start, &stage, &hashes);
            let mut objects = vec![NewObject::new(batch_path(start), claim)];
            objects.extend(
                push_hashes(edge, &hashes)
                    .into_iter()
                    .map(|(p, d)| NewObject::new(p, d)),
            );
            objects.extend(
                blobs
                    .iter()
                    .map(|b| NewObject::new(blob_path(&b.reference().sha256), b.data.clone())),
            );
            if let Some(origin) = origin {
                let cp = Checkpoint {
                    origin: origin.to_string(),
                    size: edge.size(),
                    root: edge.root(),
                };
                objects.push(NewObject::new(CHECKPOINT, key.sign_checkpoint(&cp)));
            }
            self.store.stage(&stage, &objects)?;
            Ok(objects)
        };
        let (bundles, rest) = if entries.len() < 64 {
            let hashes = entries.iter().map(|e| leaf_hash(e)).collect();
            (bundles(), rest(hashes))
        } else {
            std::thread::scope(|s| {
                let bundles = s.spawn(bundles);
                let rest = rest(entries.iter().map(|e| leaf_hash(e)).collect());
                (bundles.join().expect("bundle thread panicked"), rest)
            })
        };
        let (bundles, mut rest) = (bundles?, rest?);
        if origin.is_some() {
            rest.pop(); // the checkpoint: moved into place by `publish`
        }
        self.store.publish_staged(&stage, &rest[..1])?;
        rest.drain(..1);
        rest.extend(bundles);
        self.store.publish_staged(&stage, &rest)?;
        Ok(origin.map(|_| stage))
    }

    /// Claims position `it.size()` with a claim that carries the entries (v1), then writes
    /// the tiles and bundles.
    fn claim_with_entries(
        &self,
        key: &SigningKey,
        entries: &[Vec<u8>],
        it: &mut Integrator,
    ) -> Result<(), StoreError> {
        let start = it.size();
        // Integration is pure: compute the objects first, so the store can write them
        // (unnamed) while the claim becomes durable. Encoding the claim and integrating both
        // hash every entry; they run on two threads.
        let (claim, out) = if entries.len() < 64 {
            (batch::encode(key, start, entries), it.integrate(entries))
        } else {
            std::thread::scope(|s| {
                let claim = s.spawn(|| batch::encode(key, start, entries));
                let out = it.integrate(entries);
                (claim.join().expect("claim encoder panicked"), out)
            })
        };
        let objects: Vec<NewObject> = out
            .objects
            .into_iter()
            .map(|(p, d)| NewObject::new(p, d))
            .collect();
        let claim = NewObject::new(batch_path(start), claim);
        self.store
            .create_after(std::slice::from_ref(&claim), &objects)
    }

    /// [`Log::claim_and_integrate`] without a local writer lock: writers on other machines race
    /// for the same positions. Losing costs little: a writer reads only the checkpoint and
    /// asks whether the next position is claimed (HEAD) until it holds a claim; only then does
    /// it read tiles and integrate. A position claimed by another writer is left to that
    /// writer to publish, for at most [`PATIENCE`]; after that it was left by a crashed writer
    /// and is rolled forward.
    fn claim_shared(
        &self,
        key: &SigningKey,
        entries: Vec<Vec<u8>>,
        state: &mut Option<(Head, Integrator)>,
    ) -> Result<u64, LogError> {
        for _ in 0..MAX_ATTEMPTS {
            let (head, it) = match state.take() {
                Some((head, it)) => (head, Some(it)),
                None => (self.head()?, None),
            };
            let start = it.as_ref().map_or(head.checkpoint.size, Integrator::size);
            let path = batch_path(start);
            if self.store.exists(&path)? {
                let head = self.await_checkpoint_past(head, start)?;
                if head.checkpoint.size <= start {
                    let mut it = self.integrator(&head.checkpoint)?;
                    self.roll_forward(key, head, &mut it)?;
                }
                continue;
            }
            // Conditional creates are atomic on S3, GCS and Azure; reading the claim back
            // also catches servers whose If-None-Match is check-then-put (moto).
            let claim = NewObject::new(path.clone(), batch::encode(key, start, &entries));
            let won = self
                .store
                .create_all(std::slice::from_ref(&claim))
                .and_then(|()| Ok(self.store.get(&path)?.as_deref() == Some(&claim.data[..])));
            match won {
                Ok(true) => {}
                Ok(false) => continue,
                Err(StoreError::Conflict { path: p }) if p == path => continue,
                Err(e) => return Err(e.into()),
            }
            // Position `start` is ours.
            let mut it = match it {
                Some(it) => it,
                None => self.integrator(&head.checkpoint)?,
            };
            let out = it.integrate(&entries);
            self.write_objects(out.objects)?;
            *state = Some((head, it));
            return Ok(start);
        }
        Err(LogError::Contention(MAX_ATTEMPTS))
    }

    /// Polls the checkpoint (50 ms doubling to 400 ms, jittered) until it covers position
    /// `pos` or [`PATIENCE`] has passed; returns the last head read.
    fn await_checkpoint_past(&self, mut head: Head, pos: u64) -> Result<Head, LogError> {
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut wait = 50u64;
        while head.checkpoint.size <= pos && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(wait / 2 + jitter() % (wait / 2 + 1)));
            wait = (wait * 2).min(400);
            head = self.head()?;
        }
        Ok(head)
    }

    /// Finishes any claimed batches at the edge of the tree (left by a crashed or slower
    /// writer), publishing a checkpoint that covers them. Returns the head to build on.
    pub fn recover(&self, key: &SigningKey) -> Result<Head, LogError> {
        let _lock = self.store.lock_writers()?;
        let head = self.head()?;
        let mut it = self.integrator(&head.checkpoint)?;
        self.roll_forward(key, head, &mut it)
    }

    fn roll_forward(
        &self,
        key: &SigningKey,
        mut head: Head,
        it: &mut Integrator,
    ) -> Result<Head, LogError> {
        let mut moved = false;
        loop {
            let path = batch_path(it.size());
            let Some(bytes) = self.store.get(&path)? else {
                break;
            };
            let b = batch::decode(&self.key, &path, it.size(), &bytes)
                .map_err(|e| LogError::Integrity(e.to_string()))?;
            let mut stage = None;
            let entries = match b.claimed {
                Claimed::Entries(entries) => entries,
                Claimed::LeafHashes { stage: st, hashes } => {
                    let stage = stage.insert(st);
                    // The batch's bundles, each at its path or still staged.
                    let mut found = HashMap::new();
                    for span in batch::bundle_spans(b.start, hashes.len() as u64) {
                        let data = match self.store.get(&span.path)? {
                            Some(d) => Some(d),
                            None => self.store.get_staged(stage, &span.path)?,
                        };
                        if let Some(d) = data {
                            found.insert(span.path, d);
                        }
                    }
                    batch::entries_from_bundles(&path, b.start, &hashes, |span| {
                        found.remove(&span.path)
                    })
                    .map_err(|e| LogError::Integrity(e.to_string()))?
                }
            };
            if let Some(stage) = &stage {
                self.publish_staged_blobs(stage, &entries)?;
            }
            // Bundles and tiles are rebuilt from the verified state, not copied from staging
            // (the staged files of a crashed writer stay behind as temp files).
            let out = it.integrate(&entries);
            self.write_objects(out.objects)?;
            moved = true;
        }
        if moved {
            let cp = Checkpoint {
                origin: head.checkpoint.origin.clone(),
                size: it.size(),
                root: it.root(),
            };
            self.publish(key, head, &cp, None)?;
            head = self.head()?;
            if head.checkpoint.size != it.size() {
                // Somebody moved further meanwhile; rebuild from what they published.
                *it = self.integrator(&head.checkpoint)?;
                return self.roll_forward(key, head, it);
            }
        }
        Ok(head)
    }

    /// Stores, from staging, the blobs the records of a v2 claim reference that are not
    /// stored yet: a writer that staged them with the claim may have crashed before giving
    /// them their paths. Only staged bytes that match the record's reference are stored; a
    /// blob found nowhere (or not matching) is left missing, for `verify` to report, rather
    /// than stopping every later append.
    fn publish_staged_blobs(&self, stage: &str, entries: &[Vec<u8>]) -> Result<(), LogError> {
        let mut found: Vec<NewObject> = Vec::new();
        let refs = entries
            .iter()
            .filter_map(|e| tftrail_core::record::check_entry(e).ok())
            .flatten();
        for r in refs {
            let path = blob_path(&r.sha256);
            if found.iter().any(|o| o.path == path) || self.store.exists(&path)? {
                continue;
            }
            match self.store.get_staged(stage, &path)? {
                Some(data)
                    if data.len() as u64 == r.size
                        && hex::encode(Sha256::digest(&data)) == r.sha256 =>
                {
                    found.push(NewObject::new(path, data));
                }
                _ => {}
            }
        }
        self.store.create_all(&found)?;
        Ok(())
    }

    fn write_objects(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), LogError> {
        let objs: Vec<NewObject> = objects
            .into_iter()
            .map(|(p, d)| NewObject::new(p, d))
            .collect();
        self.store.create_all(&objs)?;
        Ok(())
    }

    /// Publishes `cp` unless the stored checkpoint is already at least as large; never moves
    /// the checkpoint backwards.
    /// `stage`: the staging name under which the signed checkpoint may have been staged.
    /// Returns the checkpoint that covers `cp`, its size, and whether this call published it.
    fn publish(
        &self,
        key: &SigningKey,
        mut head: Head,
        cp: &Checkpoint,
        stage: Option<&str>,
    ) -> Result<(Vec<u8>, u64, bool), LogError> {
        let note = key.sign_checkpoint(cp);
        for attempt in 0..MAX_ATTEMPTS {
            if head.checkpoint.size >= cp.size {
                // Another writer published a checkpoint that covers this one's entries.
                return Ok((head.note, head.checkpoint.size, false));
            }
            let swapped = match stage {
                Some(stage) => {
                    self.store
                        .swap_staged_checkpoint(stage, Some(&head.version), &note)?
                }
                None => self.store.swap_checkpoint(Some(&head.version), &note)?,
            };
            match swapped {
                Swap::Done => return Ok((note, cp.size, true)),
                Swap::Lost => {
                    if attempt > 0 {
                        backoff(attempt);
                    }
                    head = self.head()?;
                }
            }
        }
        Err(LogError::Contention(MAX_ATTEMPTS))
    }
}

impl Log {
    /// Adds signature lines (witness cosignatures, already verified by the caller) to the
    /// stored checkpoint, by compare-and-swap, when the stored checkpoint still has the body
    /// `text` (the note text the lines sign): a cosignature for an older checkpoint is never
    /// attached to a newer one. The signatures already there (the log's first, and any other
    /// server's cosignatures) are kept. Returns the note now stored, or `None` when the
    /// checkpoint has moved on. This log's cached edge follows the rewritten note.
    pub fn add_cosignatures(
        &self,
        text: &[u8],
        lines: &[Vec<u8>],
    ) -> Result<Option<Vec<u8>>, LogError> {
        for attempt in 0..MAX_ATTEMPTS {
            let head = self.head()?;
            if self.key.open_note(&head.note)? != text {
                return Ok(None);
            }
            let merged = tftrail_core::cosignature::add_signatures(&head.note, lines)
                .map_err(|e| LogError::Input(format!("cannot add the cosignatures: {e}")))?;
            if merged == head.note {
                return Ok(Some(merged));
            }
            // The merged note must still be this log's, with the same body.
            if self.key.open_note(&merged)? != text {
                return Err(LogError::Input(
                    "adding the cosignatures changed the checkpoint".into(),
                ));
            }
            match self.store.swap_checkpoint(Some(&head.version), &merged)? {
                Swap::Done => {
                    if let Ok(mut last) = self.last_edge.lock() {
                        if let Some((note, _)) = last.as_mut().filter(|(n, _)| *n == head.note) {
                            *note = merged.clone();
                        }
                    }
                    return Ok(Some(merged));
                }
                Swap::Lost => {
                    if attempt > 0 {
                        backoff(attempt);
                    }
                }
            }
        }
        Err(LogError::Contention(MAX_ATTEMPTS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tftrail_core::checkpoint::Origin;
    use tftrail_core::record::{Actor, Record};
    use tftrail_store::LocalStore;

    /// A record entry with this payload.
    pub(super) fn record(payload: serde_json::Value, blobs: Vec<BlobRef>) -> Vec<u8> {
        let actor = Actor {
            authenticated: None,
            user: "u".into(),
            host: "h".into(),
            ci: None,
        };
        Record::new("test", "2026-01-01T00:00:00Z", actor, payload, blobs)
            .unwrap()
            .to_entry()
            .unwrap()
    }

    #[test]
    fn a_staged_append_leaves_nothing_behind() {
        // Every file an append stages on a local store (claim, bundles, tiles, blobs and the
        // checkpoint) is moved into place: none is written twice, none is left in `.tmp`.
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&Origin::new("test.example/log").unwrap());
        init(&LocalStore::open(dir.path()).unwrap(), &key).unwrap();
        let log = Log::open(
            Box::new(LocalStore::open(dir.path()).unwrap()),
            key.verifier(),
        )
        .unwrap();
        let blob = Blob {
            name: "plan.json".into(),
            data: b"{}".repeat(50),
        };
        for batch in [1u64, 300, 2] {
            let entries = (0..batch)
                .map(|n| {
                    record(
                        serde_json::json!({ "n": n }),
                        if n == 0 {
                            vec![blob.reference()]
                        } else {
                            vec![]
                        },
                    )
                })
                .collect();
            log.append(&key, entries, std::slice::from_ref(&blob), &mut |_, _| {})
                .unwrap();
            let left: Vec<_> = std::fs::read_dir(dir.path().join(".tmp"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "left in .tmp: {left:?}");
        }
        assert_eq!(log.head().unwrap().checkpoint.size, 303);
        assert_eq!(log.blob(&blob.reference().sha256).unwrap(), blob.data);
        let rep = log
            .verify(&crate::VerifyOptions::default(), &mut |_, _| {})
            .unwrap();
        assert!(rep.ok(), "{:?}", rep.problems);
    }
}

#[cfg(test)]
mod edge_cache_tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tftrail_core::checkpoint::Origin;
    use tftrail_store::{LocalStore, Version, WriterLock};

    /// A local store that records the paths read.
    struct Counting(LocalStore, Arc<Mutex<Vec<String>>>);

    impl Store for Counting {
        fn location(&self) -> String {
            self.0.location()
        }
        fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.1.lock().unwrap().push(path.to_string());
            self.0.get(path)
        }
        fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError> {
            self.0.create_all(objects)
        }
        fn can_stage(&self) -> bool {
            true
        }
        fn stage(&self, stage: &str, objects: &[NewObject]) -> Result<(), StoreError> {
            self.0.stage(stage, objects)
        }
        fn publish_staged(&self, stage: &str, objects: &[NewObject]) -> Result<(), StoreError> {
            self.0.publish_staged(stage, objects)
        }
        fn get_staged(&self, stage: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get_staged(stage, path)
        }
        fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            self.0.list(prefix)
        }
        fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
            self.0.get_checkpoint()
        }
        fn swap_checkpoint(
            &self,
            expected: Option<&Version>,
            new: &[u8],
        ) -> Result<Swap, StoreError> {
            self.0.swap_checkpoint(expected, new)
        }
        fn lock_writers(&self) -> Result<Option<WriterLock>, StoreError> {
            self.0.lock_writers()
        }
    }

    fn entries(tag: &str, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| super::tests::record(serde_json::json!({ "tag": tag, "i": i }), vec![]))
            .collect()
    }

    #[test]
    fn the_next_append_starts_from_the_last_edge_unless_another_writer_moved() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&Origin::new("test.example/log").unwrap());
        init(&LocalStore::open(dir.path()).unwrap(), &key).unwrap();
        let reads = Arc::new(Mutex::new(Vec::new()));
        let open = || {
            Log::open(
                Box::new(Counting(
                    LocalStore::open(dir.path()).unwrap(),
                    reads.clone(),
                )),
                key.verifier(),
            )
            .unwrap()
        };
        let a = open();
        let edge_reads = |reads: &Arc<Mutex<Vec<String>>>| {
            std::mem::take(&mut *reads.lock().unwrap())
                .into_iter()
                .filter(|p| p.starts_with("tile/"))
                .count()
        };
        a.append(&key, entries("a", 300), &[], &mut |_, _| {})
            .unwrap();
        edge_reads(&reads);
        // Same writer, checkpoint unchanged: no tile or bundle read.
        a.append(&key, entries("b", 10), &[], &mut |_, _| {})
            .unwrap();
        assert_eq!(edge_reads(&reads), 0);
        // Another writer moves the checkpoint: the first one reads the edge again.
        let b = open();
        b.append(&key, entries("c", 7), &[], &mut |_, _| {})
            .unwrap();
        edge_reads(&reads);
        a.append(&key, entries("d", 5), &[], &mut |_, _| {})
            .unwrap();
        assert!(edge_reads(&reads) > 0);
        let head = a.head().unwrap();
        assert_eq!(head.checkpoint.size, 322);
        let all = a.entries(&head.checkpoint, 0, 322).unwrap();
        assert_eq!(all[310..317], entries("c", 7)[..]);
        assert_eq!(all[317..], entries("d", 5)[..]);
        let rep = a
            .verify(&crate::VerifyOptions::default(), &mut |_, _| {})
            .unwrap();
        assert!(rep.ok(), "{:?}", rep.problems);
    }
}

#[cfg(test)]
mod cosignature_tests {
    use super::*;
    use tftrail_core::checkpoint::Origin;
    use tftrail_core::cosignature::{cosignatures, WitnessKey};
    use tftrail_store::LocalStore;

    #[test]
    fn cosignatures_are_attached_only_to_the_checkpoint_they_sign() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&Origin::new("test.example/log").unwrap());
        init(&LocalStore::open(dir.path()).unwrap(), &key).unwrap();
        let log = Log::open(
            Box::new(LocalStore::open(dir.path()).unwrap()),
            key.verifier(),
        )
        .unwrap();
        let w = WitnessKey::generate("w.example/witness").unwrap();
        let entry = |n: u64| super::tests::record(serde_json::json!({ "n": n }), vec![]);
        let out = log
            .append(&key, vec![entry(0)], &[], &mut |_, _| {})
            .unwrap();
        let text = key.verifier().open_note(&out.checkpoint).unwrap();
        let line = w.cosign(&text, 1_764_000_000);
        let stored = log
            .add_cosignatures(&text, std::slice::from_ref(&line))
            .unwrap()
            .expect("same body: attached");
        assert_eq!(log.head().unwrap().note, stored);
        assert_eq!(cosignatures(&stored, &[w.verifier()]).len(), 1);
        // The log's signature stays first and still verifies.
        assert!(stored.starts_with(&out.checkpoint[..out.checkpoint.len() - 1]));
        assert_eq!(log.head().unwrap().checkpoint.size, 1);
        // Attaching again changes nothing.
        assert_eq!(
            log.add_cosignatures(&text, std::slice::from_ref(&line))
                .unwrap()
                .unwrap(),
            stored
        );
        // The next append starts from the cached edge and publishes past the cosigned note;
        // the old cosignature is then never attached to the newer checkpoint.
        log.append(&key, vec![entry(1)], &[], &mut |_, _| {})
            .unwrap();
        let newer = log.head().unwrap().note;
        assert!(log.add_cosignatures(&text, &[line]).unwrap().is_none());
        assert_eq!(log.head().unwrap().note, newer);
        assert!(cosignatures(&newer, &[w.verifier()]).is_empty());
        let rep = log
            .verify(&crate::VerifyOptions::default(), &mut |_, _| {})
            .unwrap();
        assert!(rep.ok(), "{:?}", rep.problems);
    }
}
