//! Full verification: recompute every tile and the root from the entry bundles, parse every
//! record, check every blob, and check consistency with a previously verified checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex, MutexGuard};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::integrate::push_hashes;
use tftrail_core::layout::{
    blob_path, bundle_path, classify, partial_width, tile_path, ObjectKind,
};
use tftrail_core::merkle::{hash_b64, leaf_hash, tile_data, tile_hashes, Edge, Hash};
use tftrail_core::record::{BlobRef, RecordView};
use tftrail_core::{bundle, TILE_WIDTH};

use tlog_tiles::HashReader;

use crate::read::AuthTiles;
use crate::read::Head;
use crate::{Log, LogError, Store, StoreTiles};

/// Options for [`Log::verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The last checkpoint this verifier accepted before: the log must still contain it.
    pub previous: Option<Checkpoint>,
}

/// One thing found wrong.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    /// The object concerned (`tile/0/000`, `checkpoint` …).
    pub object: String,
    /// The entry index concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{} (entry {i}): {}", self.object, self.message),
            None => write!(f, "{}: {}", self.object, self.message),
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The checkpoint verified.
    pub origin: String,
    /// Its tree size.
    pub size: u64,
    /// Its root (base64).
    pub root: String,
    /// Entry bytes read.
    pub entry_bytes: u64,
    /// Blobs checked.
    pub blobs: u64,
    /// Blob bytes hashed.
    pub blob_bytes: u64,
    /// Problems; empty when the log is intact.
    pub problems: Vec<Problem>,
    /// Things worth knowing that are not integrity failures.
    pub notes: Vec<String>,
    /// The signed checkpoint (not serialised).
    #[serde(skip)]
    pub head: Option<Head>,
}

impl VerifyReport {
    /// Whether the log is intact.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Stored partial objects, by (level or `u8::MAX` for bundles, index) → widths.
type Partials = BTreeMap<(u8, u64), BTreeSet<u64>>;

const BUNDLE_LEVEL: u8 = u8::MAX;

impl Log {
    /// Verifies the whole log. `progress(done, total)` is called as entries are checked.
    /// Returns `Err` only when the checkpoint itself cannot be read or verified.
    pub fn verify(
        &self,
        opts: &VerifyOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport, LogError> {
        let head = self.head()?;
        let cp = head.checkpoint.clone();
        let mut rep = VerifyReport {
            origin: cp.origin.clone(),
            size: cp.size,
            root: hash_b64(&cp.root),
            entry_bytes: 0,
            blobs: 0,
            blob_bytes: 0,
            problems: Vec::new(),
            notes: Vec::new(),
            head: Some(head),
        };

        let prev = opts.previous.clone();
        if let Some(p) = &prev {
            if p.origin != cp.origin {
                problem(
                    &mut rep,
                    "checkpoint".into(),
                    None,
                    format!(
                        "origin {:?} differs from the previously verified log {:?}",
                        cp.origin, p.origin
                    ),
                );
            } else if p.size > cp.size {
                problem(&mut rep, "checkpoint".into(), None, format!(
                    "tree size {} is smaller than the {} entries verified before: the log was rolled back or truncated",
                    cp.size, p.size));
            }
        }

        // What partial objects exist, to check them against the recomputed data.
        let mut partials: Partials = BTreeMap::new();
        let mut beyond = 0u64;
        for path in self.store.list("tile/")? {
            match classify(&path) {
                Some(ObjectKind::Tile { level, n, width }) => {
                    let start = (n * TILE_WIDTH) << (8 * u32::from(level));
                    if start >= cp.size {
                        beyond += 1;
                    } else if width < TILE_WIDTH {
                        partials.entry((level, n)).or_default().insert(width);
                    }
                }
                Some(ObjectKind::Bundle { n, width }) => {
                    if n * TILE_WIDTH >= cp.size {
                        beyond += 1;
                    } else if width < TILE_WIDTH {
                        partials.entry((BUNDLE_LEVEL, n)).or_default().insert(width);
                    }
                }
                _ => {
                    problem(
                        &mut rep,
                        path.clone(),
                        None,
                        "unexpected object in the tile tree".into(),
                    );
                }
            }
        }
        if beyond > 0 {
            rep.notes.push(format!(
                "{beyond} tile objects lie beyond the checkpoint (left by an interrupted append; the next append finishes it)"
            ));
        }
        if self
            .store
            .get(&tftrail_core::layout::batch_path(cp.size))?
            .is_some()
        {
            rep.notes.push(format!(
                "a batch claim at {} is not yet covered by the checkpoint (an interrupted append; the next append finishes it)",
                cp.size
            ));
        }

        // Helper threads read, hash and parse bundles ahead of this thread, which checks and
        // integrates them in order (and reads, hashes and parses bundles too while the next
        // one is not ready).
        let pipeline = Pipeline::new(self.store.as_ref(), cp.size);
        let Walk {
            edge,
            blob_refs,
            complete,
        } = std::thread::scope(|scope| {
            for _ in 0..helpers() {
                scope.spawn(|| pipeline.help());
            }
            let _stop = pipeline.stop_on_drop();
            self.check_bundles(&pipeline, &cp, prev.as_ref(), &partials, &mut rep, progress)
        })?;

        if complete {
            // The partial tiles of this checkpoint must exist and match.
            for level in 0..edge.levels() {
                let w = partial_width(level, cp.size);
                if w == 0 {
                    continue;
                }
                let n = (cp.size >> (8 * u32::from(level))) / TILE_WIDTH;
                let p = tile_path(level, n, w);
                let d = tile_data(edge.partial(level));
                self.check_tile(&mut rep, &partials, &p, &d, true, None)?;
            }
            let root = edge.root();
            if root != cp.root {
                problem(
                    &mut rep,
                    "checkpoint".into(),
                    None,
                    format!(
                        "root {} recomputed from the entries does not match the signed root {}",
                        hash_b64(&root),
                        hash_b64(&cp.root)
                    ),
                );
            }
        }

        for (sha, (b, index)) in blob_refs {
            let p = blob_path(&sha);
            match self.store.get(&p)? {
                None => problem(
                    &mut rep,
                    p,
                    Some(index),
                    format!("blob {:?} referenced by the record is missing", b.name),
                ),
                Some(d) => {
                    rep.blobs += 1;
                    rep.blob_bytes += d.len() as u64;
                    if hex::encode(Sha256::digest(&d)) != sha {
                        problem(
                            &mut rep,
                            p,
                            Some(index),
                            format!("blob {:?} does not match its SHA-256", b.name),
                        );
                    } else if d.len() as u64 != b.size {
                        problem(
                            &mut rep,
                            p,
                            Some(index),
                            format!(
                                "blob {:?} is {} bytes, the record says {}",
                                b.name,
                                d.len(),
                                b.size
                            ),
                        );
                    }
                }
            }
        }
        Ok(rep)
    }

    /// Recomputes the tree from the entry bundles (taken in order from `pipeline`), checking
    /// each bundle's entries and records, the stored tiles and partial objects against it, and
    /// the root of the previously verified size.
    fn check_bundles(
        &self,
        pipeline: &Pipeline<'_>,
        cp: &Checkpoint,
        prev: Option<&Checkpoint>,
        partials: &Partials,
        rep: &mut VerifyReport,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Walk, LogError> {
        let mut edge = Edge::new();
        let mut blob_refs: BTreeMap<String, (BlobRef, u64)> = BTreeMap::new();
        let bundles = cp.size.div_ceil(TILE_WIDTH);
        let mut complete = true;
        for n in 0..bundles {
            let width = (cp.size - n * TILE_WIDTH).min(TILE_WIDTH);
            let path = bundle_path(n, width);
            let first = n * TILE_WIDTH;
            let Hashed {
                len,
                mut hashes,
                parsed,
                tile0,
            } = match pipeline.take(n)? {
                Fetched::Hashed(h) => h,
                Fetched::Missing => {
                    problem(
                        rep,
                        path,
                        Some(first),
                        "entry bundle is missing; the tree cannot be recomputed past this point"
                            .into(),
                    );
                    complete = false;
                    break;
                }
                Fetched::Count(count) => {
                    problem(
                        rep,
                        path,
                        Some(first),
                        format!("holds {count} entries, the checkpoint needs {width}"),
                    );
                    complete = false;
                    break;
                }
                Fetched::Undecodable(e) => {
                    problem(rep, path, Some(first), e);
                    complete = false;
                    break;
                }
            };
            rep.entry_bytes += len;
            // When the entries disagree with the stored level-0 tile, find out which one is
            // wrong: a stored tile that authenticates against the signed root is the truth,
            // so the entries were altered, replaced or reordered. Continue with the authentic
            // hashes so that the tiles above are not blamed for it.
            let tile0_path = tile_path(0, n, width);
            if tile0
                .as_deref()
                .is_some_and(|t| tile_hashes(t).as_deref() != Some(&hashes[..]))
            {
                let idx: Vec<u64> = (first..first + width)
                    .map(|j| tlog_tiles::stored_hash_index(0, j))
                    .collect();
                let tiles = StoreTiles::new(self.store.as_ref());
                if let Ok(authentic) = AuthTiles::new(cp.size, cp.root, &tiles).read_hashes(&idx) {
                    for (k, (a, h)) in authentic.iter().zip(&hashes).enumerate() {
                        if a != h {
                            problem(
                                rep,
                                path.clone(),
                                Some(first + k as u64),
                                "entry differs from the one the signed checkpoint commits to (altered, replaced or reordered)".into(),
                            );
                        }
                    }
                    hashes = authentic;
                }
            }
            // Older partial bundles must hold the first entries of this one.
            if let Some(ws) = partials.get(&(BUNDLE_LEVEL, n)) {
                for &w in ws.iter().filter(|&&w| w < width) {
                    let p = bundle_path(n, w);
                    let old = self.store.get(&p)?.unwrap_or_default();
                    let ok = bundle::decode(&old).is_ok_and(|e| {
                        e.len() as u64 == w
                            && e.iter().zip(&hashes).all(|(e, h)| leaf_hash(e) == *h)
                    });
                    if !ok {
                        problem(
                            rep,
                            p,
                            Some(first),
                            "partial entry bundle differs from the entries of the log".into(),
                        );
                    }
                }
            }
            for (k, parsed) in parsed.into_iter().enumerate() {
                let index = first + k as u64;
                match parsed {
                    Ok(blobs) => {
                        for b in blobs {
                            blob_refs.entry(b.sha256.clone()).or_insert((b, index));
                        }
                    }
                    Err(err) => problem(rep, path.clone(), Some(index), err),
                }
            }
            // Integrate, splitting at the previously verified size to check its root.
            let mut done = 0usize;
            let mut cut = hashes.len();
            if let Some(p) = &prev {
                if p.size > first && p.size < first + width {
                    cut = (p.size - first) as usize;
                }
            }
            for chunk_end in [cut, hashes.len()] {
                if chunk_end <= done {
                    continue;
                }
                for (p, d) in push_hashes(&mut edge, &hashes[done..chunk_end]) {
                    // The worker read this bundle's level-0 tile already.
                    let known = (p == tile0_path).then_some(tile0.as_deref());
                    self.check_tile(rep, partials, &p, &d, !p.contains(".p/"), known)?;
                }
                done = chunk_end;
                if let Some(pv) = &prev {
                    if pv.size == edge.size() && pv.origin == cp.origin && edge.root() != pv.root {
                        problem(rep, "checkpoint".into(), None, format!(
                            "the first {} entries no longer hash to the root verified before ({}): history was rewritten",
                            pv.size, hash_b64(&pv.root)));
                    }
                }
            }
            progress(edge.size(), cp.size);
        }
        Ok(Walk {
            edge,
            blob_refs,
            complete,
        })
    }

    /// Compares a recomputed tile with the stored one (which must exist when `required`), and
    /// stored narrower partial versions of it with its prefix. `known` is the stored tile when
    /// it has been read already.
    fn check_tile(
        &self,
        rep: &mut VerifyReport,
        partials: &Partials,
        path: &str,
        data: &[u8],
        required: bool,
        known: Option<Option<&[u8]>>,
    ) -> Result<(), LogError> {
        let Some(ObjectKind::Tile { level, n, width }) = classify(path) else {
            return Ok(());
        };
        let first = (n * TILE_WIDTH) << (8 * u32::from(level));
        let stored_partial = partials.get(&(level, n));
        let present = width == TILE_WIDTH || stored_partial.is_some_and(|s| s.contains(&width));
        if required || present {
            let read;
            let stored = match known {
                Some(k) => k,
                None => {
                    read = self.store.get(path)?;
                    read.as_deref()
                }
            };
            match stored {
                None if required => push_unique(
                    rep,
                    Problem {
                        object: path.into(),
                        index: Some(first),
                        message: "hash tile is missing".into(),
                    },
                ),
                None => {}
                Some(stored) if stored != data => {
                    let at = stored
                        .chunks(32)
                        .zip(data.chunks(32))
                        .position(|(a, b)| a != b)
                        .unwrap_or(stored.len().min(data.len()) / 32);
                    let idx = first + ((at as u64) << (8 * u32::from(level)));
                    push_unique(rep, Problem {
                        object: path.into(),
                        index: Some(idx),
                        message: format!(
                            "hash tile differs from the hashes recomputed from the entries (hash {at} of the tile)"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(ws) = stored_partial {
            for &w in ws.iter().filter(|&&w| w < width) {
                let p = tile_path(level, n, w);
                if let Some(old) = self.store.get(&p)? {
                    if !data.starts_with(&old) || old.len() as u64 != w * 32 {
                        push_unique(rep, Problem {
                            object: p,
                            index: Some(first),
                            message: "partial hash tile differs from the hashes recomputed from the entries".into(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Records a problem once (a tile can be checked twice: as written by a batch and as a
/// partial tile of the checkpoint).
fn push_unique(rep: &mut VerifyReport, p: Problem) {
    if rep.problems.len() < 1000 && !rep.problems.contains(&p) {
        rep.problems.push(p);
    }
}

/// Records a problem once.
fn problem(rep: &mut VerifyReport, object: String, index: Option<u64>, message: String) {
    push_unique(
        rep,
        Problem {
            object,
            index,
            message,
        },
    );
}

/// Where recomputing the tree from the bundles got to.
struct Walk {
    /// The right edge of the tree recomputed so far.
    edge: Edge,
    /// Blobs referenced by the records, each with the first entry referencing it.
    blob_refs: BTreeMap<String, (BlobRef, u64)>,
    /// Whether every bundle of the checkpoint could be read.
    complete: bool,
}

/// Blob references of an entry's record, or why it is not a valid record.
type Parsed = Result<Vec<BlobRef>, String>;

/// Threads that read, hash and parse bundles besides the one that integrates them (which does
/// that too while it waits): one fewer than the processors, at least one, at most seven.
fn helpers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)) - 1
}

/// How many bundles may be read ahead of the one being integrated (results are small: the
/// bundle data is dropped once hashed and parsed).
const AHEAD: u64 = 16;

/// A bundle read, with the leaf hash and parsed record of each entry.
struct Hashed {
    /// The bundle's size in bytes.
    len: u64,
    hashes: Vec<Hash>,
    parsed: Vec<Parsed>,
    /// The stored level-0 tile of the bundle's entries, when there is one.
    tile0: Option<Vec<u8>>,
}

/// What a worker found for one bundle.
enum Fetched {
    Missing,
    /// Decodes, but holds this many entries instead of the width the checkpoint needs.
    Count(usize),
    Undecodable(String),
    Hashed(Hashed),
}

/// The bundles of a tree, read, hashed and parsed by several threads in any order (within a
/// window), taken in order by one of them.
struct Pipeline<'s> {
    store: &'s dyn Store,
    size: u64,
    bundles: u64,
    state: Mutex<PipelineState>,
    changed: Condvar,
}

struct PipelineState {
    /// The next bundle to claim.
    next: u64,
    /// Results not yet taken, by bundle number.
    done: BTreeMap<u64, Result<Fetched, LogError>>,
    /// Bundles below this one have been taken.
    taken: u64,
    /// The consumer has stopped (finished, gave up or failed): helpers stop too.
    stop: bool,
    /// A helper panicked: the consumer stops waiting for it.
    panicked: bool,
}

impl<'s> Pipeline<'s> {
    fn new(store: &'s dyn Store, size: u64) -> Self {
        Pipeline {
            store,
            size,
            bundles: size.div_ceil(TILE_WIDTH),
            state: Mutex::new(PipelineState {
                next: 0,
                done: BTreeMap::new(),
                taken: 0,
                stop: false,
                panicked: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PipelineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, PipelineState>) -> MutexGuard<'g, PipelineState> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the next bundle, when there is one within the window.
    fn claim(&self, st: &mut PipelineState) -> Option<u64> {
        let n = st.next;
        (n < self.bundles && n < st.taken + AHEAD).then(|| {
            st.next += 1;
            n
        })
    }

    /// Reads, hashes and parses bundle `n` (without the lock) and stores the result.
    fn process<'g>(
        &'g self,
        st: MutexGuard<'g, PipelineState>,
        n: u64,
    ) -> MutexGuard<'g, PipelineState> {
        drop(st);
        let width = (self.size - n * TILE_WIDTH).min(TILE_WIDTH);
        let fetched = self.fetch(n, width);
        let mut st = self.lock();
        st.done.insert(n, fetched);
        self.changed.notify_all();
        st
    }

    /// A helper thread: processes bundles until there are none left or the consumer stops.
    fn help(&self) {
        struct OnPanic<'p, 's>(&'p Pipeline<'s>);
        impl Drop for OnPanic<'_, '_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.lock().panicked = true;
                    self.0.changed.notify_all();
                }
            }
        }
        let _guard = OnPanic(self);
        let mut st = self.lock();
        while !st.stop && st.next < self.bundles {
            st = match self.claim(&mut st) {
                Some(n) => self.process(st, n),
                None => self.wait(st),
            };
        }
    }

    fn fetch(&self, n: u64, width: u64) -> Result<Fetched, LogError> {
        let Some(data) = self.store.get(&bundle_path(n, width))? else {
            return Ok(Fetched::Missing);
        };
        let (hashes, parsed) = match bundle::decode(&data) {
            Ok(e) if e.len() as u64 == width => e
                .iter()
                .map(|e| {
                    let parsed = RecordView::from_entry(e)
                        .map(|r| r.blob_refs())
                        .map_err(|e| e.to_string());
                    (leaf_hash(e), parsed)
                })
                .unzip(),
            Ok(e) => return Ok(Fetched::Count(e.len())),
            Err(e) => return Ok(Fetched::Undecodable(e.to_string())),
        };
        let tile0 = self.store.get(&tile_path(0, n, width))?;
        Ok(Fetched::Hashed(Hashed {
            len: data.len() as u64,
            hashes,
            parsed,
            tile0,
        }))
    }

    /// Bundle `n` (bundles must be taken in order), processing others while it is not ready.
    fn take(&self, n: u64) -> Result<Fetched, LogError> {
        let mut st = self.lock();
        loop {
            if let Some(f) = st.done.remove(&n) {
                st.taken = n + 1;
                drop(st);
                self.changed.notify_all();
                return f;
            }
            assert!(!st.panicked, "verify helper thread panicked");
            st = match self.claim(&mut st) {
                Some(m) => self.process(st, m),
                None => self.wait(st),
            };
        }
    }

    /// A guard that stops the helpers when dropped, however the consumer leaves.
    fn stop_on_drop(&self) -> impl Drop + '_ {
        struct Stop<'p, 's>(&'p Pipeline<'s>);
        impl Drop for Stop<'_, '_> {
            fn drop(&mut self) {
                self.0.lock().stop = true;
                self.0.changed.notify_all();
            }
        }
        Stop(self)
    }
}
