//! Full verification: recompute every tile and the root from the entry bundles, parse every
//! record, check every blob, and check consistency with a previously verified checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::integrate::push_hashes;
use tftrail_core::layout::{
    blob_path, bundle_path, classify, partial_width, tile_path, ObjectKind,
};
use tftrail_core::merkle::{hash_b64, leaf_hash, tile_data, Edge, Hash};
use tftrail_core::record::{self, BlobRef};
use tftrail_core::{bundle, TILE_WIDTH};

use tlog_tiles::HashReader;

use crate::claims::{read_claims, ClaimMatcher};
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

/// What the tile checks know of the store.
struct Stored<'p> {
    /// The partial objects listed.
    partials: &'p Partials,
    /// Partial hash tiles (level, index, width) compared with the recomputed tile already, as
    /// narrower partials or found equal to it at their own width: they need no second look.
    compared: BTreeSet<(u8, u64, u64)>,
    /// The batch claims, matched against the entries as the walk reaches them.
    claims: ClaimMatcher,
}

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
        // Every batch claim: signed by the log's key, and matched against the entries below.
        let claims = read_claims(self.store.as_ref(), &self.key, cp.size, helpers() + 1)?;
        if claims.pending {
            rep.notes.push(format!(
                "a batch claim at {} is not yet covered by the checkpoint (an interrupted append; the next append finishes it)",
                cp.size
            ));
        }
        for (object, index, message) in &claims.problems {
            problem(&mut rep, object.clone(), *index, message.clone());
        }

        // Helper threads read, hash and parse bundles ahead of this thread, which checks and
        // integrates them in order (and reads, hashes and parses bundles too while the next
        // one is not ready).
        let pipeline = Pipeline::new(self.store.as_ref(), cp.size, &partials);
        let mut stored = Stored {
            partials: &partials,
            compared: BTreeSet::new(),
            claims: ClaimMatcher::new(&claims, cp.size),
        };
        let Walk {
            edge,
            blob_refs,
            complete,
        } = std::thread::scope(|scope| {
            for _ in 0..helpers() {
                scope.spawn(|| pipeline.help());
            }
            let _stop = pipeline.stop_on_drop();
            self.check_bundles(
                &pipeline,
                &cp,
                prev.as_ref(),
                &mut stored,
                &mut rep,
                progress,
            )
        })?;
        if complete {
            for (object, index, message) in stored.claims.finish() {
                problem(&mut rep, object, index, message);
            }
        }

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
                self.check_tile(&mut rep, &mut stored, &p, &d, true, None)?;
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

        // Blobs are read and hashed on every processor, and reported in order.
        let blobs: Vec<(String, (BlobRef, u64))> = blob_refs.into_iter().collect();
        let shas: Vec<&str> = blobs.iter().map(|(sha, _)| sha.as_str()).collect();
        let read = read_blobs(self.store.as_ref(), &shas);
        for ((sha, (b, index)), found) in blobs.into_iter().zip(read) {
            let p = blob_path(&sha);
            match found? {
                None => problem(
                    &mut rep,
                    p,
                    Some(index),
                    format!("blob {:?} referenced by the record is missing", b.name),
                ),
                Some(Blob { len, sha256 }) => {
                    rep.blobs += 1;
                    rep.blob_bytes += len;
                    if sha256 != sha {
                        problem(
                            &mut rep,
                            p,
                            Some(index),
                            format!("blob {:?} does not match its SHA-256", b.name),
                        );
                    } else if len != b.size {
                        problem(
                            &mut rep,
                            p,
                            Some(index),
                            format!(
                                "blob {:?} is {} bytes, the record says {}",
                                b.name, len, b.size
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
        stored: &mut Stored<'_>,
        rep: &mut VerifyReport,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Walk, LogError> {
        let mut edge = Edge::new();
        let mut blob_refs: BTreeMap<String, (BlobRef, u64)> = BTreeMap::new();
        let bundles = cp.size.div_ceil(TILE_WIDTH);
        let mut complete = true;
        let mut bufs = Buffers::default();
        for n in 0..bundles {
            let width = (cp.size - n * TILE_WIDTH).min(TILE_WIDTH);
            let path = bundle_path(n, width);
            let first = n * TILE_WIDTH;
            let Hashed {
                len,
                hashes: from_entries,
                parsed,
                tile0,
                older,
            } = match pipeline.take(n, &mut bufs)? {
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
            let mut authentic = None;
            if let Tile0::Differs(_) = tile0 {
                let idx: Vec<u64> = (first..first + width)
                    .map(|j| tlog_tiles::stored_hash_index(0, j))
                    .collect();
                let tiles = StoreTiles::new(self.store.as_ref());
                if let Ok(stored) = AuthTiles::new(cp.size, cp.root, &tiles).read_hashes(&idx) {
                    for (k, (a, h)) in stored.iter().zip(&from_entries).enumerate() {
                        if a != h {
                            problem(
                                rep,
                                path.clone(),
                                Some(first + k as u64),
                                "entry differs from the one the signed checkpoint commits to (altered, replaced or reordered)".into(),
                            );
                        }
                    }
                    authentic = Some(stored);
                }
            }
            let hashes = authentic.as_deref().unwrap_or(&from_entries);
            stored.claims.feed(hashes);
            for (object, index, message) in stored.claims.problems.drain(..) {
                problem(rep, object, index, message);
            }
            // Older partial bundles must hold the first entries of this one.
            for (w, old) in older {
                let w_len = w as usize;
                let ok = match old {
                    Older::Prefix => from_entries[..w_len] == hashes[..w_len],
                    Older::Hashes(h) => h.is_some_and(|h| h.len() == w_len && h == hashes[..w_len]),
                };
                if !ok {
                    problem(
                        rep,
                        bundle_path(n, w),
                        Some(first),
                        "partial entry bundle differs from the entries of the log".into(),
                    );
                }
            }
            for (k, parsed) in parsed {
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
                    let known = match &tile0 {
                        _ if p != tile0_path => None,
                        Tile0::Missing => Some(None),
                        // It holds the entries' hashes, which were kept (they are replaced
                        // only when it differs): it is the recomputed tile.
                        Tile0::Same => Some(Some(&d[..])),
                        Tile0::Differs(t) => Some(Some(&t[..])),
                    };
                    let required = !p.contains(".p/");
                    self.check_tile(rep, stored, &p, &d, required, known)?;
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
        stored: &mut Stored<'_>,
        path: &str,
        data: &[u8],
        required: bool,
        known: Option<Option<&[u8]>>,
    ) -> Result<(), LogError> {
        let Some(ObjectKind::Tile { level, n, width }) = classify(path) else {
            return Ok(());
        };
        let first = (n * TILE_WIDTH) << (8 * u32::from(level));
        let stored_partial = stored.partials.get(&(level, n));
        let present = width == TILE_WIDTH || stored_partial.is_some_and(|s| s.contains(&width));
        if required || present {
            let read;
            let tile = match known {
                Some(k) => k,
                None => {
                    read = self.store.get(path)?;
                    read.as_deref()
                }
            };
            match tile {
                None if required => push_unique(
                    rep,
                    Problem {
                        object: path.into(),
                        index: Some(first),
                        message: "hash tile is missing".into(),
                    },
                ),
                None => {}
                Some(tile) if tile != data => {
                    let at = tile
                        .chunks(32)
                        .zip(data.chunks(32))
                        .position(|(a, b)| a != b)
                        .unwrap_or(tile.len().min(data.len()) / 32);
                    let idx = first + ((at as u64) << (8 * u32::from(level)));
                    push_unique(rep, Problem {
                        object: path.into(),
                        index: Some(idx),
                        message: format!(
                            "hash tile differs from the hashes recomputed from the entries (hash {at} of the tile)"
                        ),
                    });
                }
                Some(_) => {
                    // As a narrower partial of the wider tiles to come, it matches too.
                    stored.compared.insert((level, n, width));
                }
            }
        }
        if let Some(ws) = stored_partial {
            for &w in ws.iter().filter(|&&w| w < width) {
                // The recomputed tile at a position only grows (a hash once computed never
                // changes), so a narrower partial compared with it once gets the same verdict
                // at every later width: compare it once.
                if !stored.compared.insert((level, n, w)) {
                    continue;
                }
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

/// A blob read: its size and SHA-256 (hex).
struct Blob {
    len: u64,
    sha256: String,
}

/// Reads and hashes the blobs (by their SHA-256 in hex) on as many threads as there are
/// processors (at most eight); the results in the same order.
fn read_blobs(store: &dyn Store, shas: &[&str]) -> Vec<Result<Option<Blob>, LogError>> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(sha) = shas.get(i) else {
                return done;
            };
            let found = store.get(&blob_path(sha)).map(|d| {
                d.map(|d| Blob {
                    len: d.len() as u64,
                    sha256: hex::encode(Sha256::digest(&d)),
                })
            });
            done.push((i, found.map_err(LogError::from)));
        }
    };
    let threads = (helpers() + 1).min(shas.len());
    let mut done: Vec<_> = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for h in others {
            done.extend(h.join().expect("blob thread panicked"));
        }
        done
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
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

/// A bundle read, with the leaf hash of each entry and what its records say.
struct Hashed {
    /// The bundle's size in bytes.
    len: u64,
    /// The leaf hashes of its entries.
    hashes: Vec<Hash>,
    /// The records that reference blobs or are not valid, by position in the bundle (valid
    /// records without blobs are left out).
    parsed: Vec<(usize, Parsed)>,
    /// The stored level-0 tile of the bundle's entries.
    tile0: Tile0,
    /// The stored older (narrower) partial versions of the bundle, by width.
    older: Vec<(u64, Older)>,
}

/// The stored level-0 tile of a bundle's entries, compared with their leaf hashes.
enum Tile0 {
    Missing,
    /// It holds exactly the entries' leaf hashes.
    Same,
    /// It holds something else: these bytes.
    Differs(Vec<u8>),
}

/// An older partial version of a bundle.
enum Older {
    /// Its bytes are the first entries of the bundle: its leaf hashes are the bundle's first
    /// ones (not computed twice).
    Prefix,
    /// Otherwise the leaf hashes of its entries; `None` when it is missing or does not decode.
    Hashes(Option<Vec<Hash>>),
}

/// What a worker found for one bundle.
enum Fetched {
    Missing,
    /// Decodes, but holds this many entries instead of the width the checkpoint needs.
    Count(usize),
    Undecodable(String),
    Hashed(Hashed),
}

/// Read buffers a thread reuses from one bundle to the next.
#[derive(Default)]
struct Buffers {
    bundle: Vec<u8>,
    tile: Vec<u8>,
    older: Vec<u8>,
}

/// The bundles of a tree, read, hashed and parsed by several threads in any order (within a
/// window), taken in order by one of them.
struct Pipeline<'s> {
    store: &'s dyn Store,
    size: u64,
    bundles: u64,
    /// The stored partial objects (for the older versions of each bundle).
    partials: &'s Partials,
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
    /// Threads waiting for a change (the others need no wake-up call).
    waiting: usize,
}

impl<'s> Pipeline<'s> {
    fn new(store: &'s dyn Store, size: u64, partials: &'s Partials) -> Self {
        Pipeline {
            store,
            size,
            bundles: size.div_ceil(TILE_WIDTH),
            partials,
            state: Mutex::new(PipelineState {
                next: 0,
                done: BTreeMap::new(),
                taken: 0,
                stop: false,
                panicked: false,
                waiting: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PipelineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, mut st: MutexGuard<'g, PipelineState>) -> MutexGuard<'g, PipelineState> {
        st.waiting += 1;
        let mut st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        st.waiting -= 1;
        st
    }

    /// Wakes the waiting threads after a change made under the lock `st`, when there are any
    /// (a thread that starts waiting later looks at the state first).
    fn wake(&self, st: &PipelineState) {
        if st.waiting > 0 {
            self.changed.notify_all();
        }
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
        bufs: &mut Buffers,
    ) -> MutexGuard<'g, PipelineState> {
        drop(st);
        let width = (self.size - n * TILE_WIDTH).min(TILE_WIDTH);
        let fetched = self.fetch(n, width, bufs);
        let mut st = self.lock();
        st.done.insert(n, fetched);
        self.wake(&st);
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
        let mut bufs = Buffers::default();
        let mut st = self.lock();
        while !st.stop && st.next < self.bundles {
            st = match self.claim(&mut st) {
                Some(n) => self.process(st, n, &mut bufs),
                None => self.wait(st),
            };
        }
    }

    fn fetch(&self, n: u64, width: u64, bufs: &mut Buffers) -> Result<Fetched, LogError> {
        let path = bundle_path(n, width);
        let Some(at) = self.store.get_into(&path, &mut bufs.bundle)? else {
            return Ok(Fetched::Missing);
        };
        let buf = &mut bufs.bundle;
        // Where each entry lies in the buffer.
        let spans: Vec<Range<usize>> = match bundle::decode(&buf[at.clone()]) {
            Ok(e) if e.len() as u64 == width => {
                let mut end = at.start;
                e.iter()
                    .map(|e| {
                        // Each entry follows its two-byte length.
                        end += 2 + e.len();
                        end - e.len()..end
                    })
                    .collect()
            }
            Ok(e) => return Ok(Fetched::Count(e.len())),
            Err(e) => return Ok(Fetched::Undecodable(e.to_string())),
        };
        let mut hashes = Vec::with_capacity(spans.len());
        let mut parsed = Vec::new();
        for (k, span) in spans.iter().enumerate() {
            // The leaf hash SHA-256(0x00 || entry), over the buffer in place: the byte before
            // the entry (its length's low byte) is 0x00 while it is hashed, so that the input
            // is one slice (no copy, one call fewer into the compression function).
            let lead = span.start - 1;
            let low = std::mem::replace(&mut buf[lead], 0);
            hashes.push(Hash(Sha256::digest(&buf[lead..span.end]).into()));
            buf[lead] = low;
            // Parsed after hashing, while the entry is in the nearest cache.
            match record::check_entry(&buf[span.clone()]) {
                Ok(blobs) if blobs.is_empty() => {}
                Ok(blobs) => parsed.push((k, Ok(blobs))),
                Err(err) => parsed.push((k, Err(err.to_string()))),
            }
        }
        let data = &bufs.bundle[at];
        let tile0 = match self
            .store
            .get_into(&tile_path(0, n, width), &mut bufs.tile)?
        {
            None => Tile0::Missing,
            Some(at) => {
                let tile = &bufs.tile[at];
                if tile.len() == hashes.len() * 32
                    && tile.chunks_exact(32).zip(&hashes).all(|(t, h)| t == h.0)
                {
                    Tile0::Same
                } else {
                    Tile0::Differs(tile.to_vec())
                }
            }
        };
        let mut older = Vec::new();
        if let Some(ws) = self.partials.get(&(BUNDLE_LEVEL, n)) {
            for &w in ws.iter().filter(|&&w| w < width) {
                // A missing one reads as empty.
                let at = self.store.get_into(&bundle_path(n, w), &mut bufs.older)?;
                let old = &bufs.older[at.unwrap_or_default()];
                // Its bytes, were it the first `w` entries of this bundle.
                let prefix = spans[..w as usize]
                    .last()
                    .map_or(0, |last| last.end - spans[0].start + 2);
                let o = if old == &data[..prefix] {
                    Older::Prefix
                } else {
                    Older::Hashes(
                        bundle::decode(old)
                            .ok()
                            .filter(|e| e.len() as u64 == w)
                            .map(|e| e.iter().map(|e| leaf_hash(e)).collect()),
                    )
                };
                older.push((w, o));
            }
        }
        Ok(Fetched::Hashed(Hashed {
            len: data.len() as u64,
            hashes,
            parsed,
            tile0,
            older,
        }))
    }

    /// Bundle `n` (bundles must be taken in order), processing others while it is not ready.
    fn take(&self, n: u64, bufs: &mut Buffers) -> Result<Fetched, LogError> {
        let mut st = self.lock();
        loop {
            if let Some(f) = st.done.remove(&n) {
                st.taken = n + 1;
                self.wake(&st);
                return f;
            }
            assert!(!st.panicked, "verify helper thread panicked");
            st = match self.claim(&mut st) {
                Some(m) => self.process(st, m, bufs),
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use tftrail_core::checkpoint::{Origin, SigningKey};
    use tftrail_core::record::{Actor, Record};
    use tftrail_store::{LocalStore, NewObject, StoreError, Swap, Version};

    use super::*;

    /// A local store that counts the reads of each object.
    struct Counting {
        inner: LocalStore,
        reads: Arc<Mutex<BTreeMap<String, usize>>>,
    }

    impl Counting {
        fn count(&self, path: &str) {
            *self.reads.lock().unwrap().entry(path.into()).or_default() += 1;
        }
    }

    impl Store for Counting {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.count(path);
            self.inner.get(path)
        }
        fn get_into(
            &self,
            path: &str,
            buf: &mut Vec<u8>,
        ) -> Result<Option<Range<usize>>, StoreError> {
            self.count(path);
            self.inner.get_into(path, buf)
        }
        fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError> {
            self.inner.create_all(objects)
        }
        fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            self.inner.list(prefix)
        }
        fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
            self.inner.get_checkpoint()
        }
        fn swap_checkpoint(
            &self,
            expected: Option<&Version>,
            new: &[u8],
        ) -> Result<Swap, StoreError> {
            self.inner.swap_checkpoint(expected, new)
        }
    }

    fn entry(i: usize) -> Vec<u8> {
        let actor = Actor {
            authenticated: None,
            user: "u".into(),
            host: "h".into(),
            ci: None,
        };
        let payload = serde_json::json!({"i": 1000 + i, "pad": "x".repeat(i % 50)});
        Record::new("test", "2026-01-01T00:00:00Z", actor, payload, vec![])
            .unwrap()
            .to_entry()
            .unwrap()
    }

    /// A log in `dir` built by appending batches of these sizes.
    fn build(dir: &Path, batches: &[usize]) -> SigningKey {
        let key = SigningKey::generate(&Origin::new("test.example/log").unwrap());
        let store = LocalStore::create(dir).unwrap();
        crate::init(&store, &key).unwrap();
        let log = Log::open(Box::new(store), key.verifier()).unwrap();
        let mut i = 0;
        for &n in batches {
            let batch = (i..i + n).map(entry).collect();
            log.append(&key, batch, &[], &mut |_, _| {}).unwrap();
            i += n;
        }
        key
    }

    #[test]
    fn reading_many_bundles_reads_each_tile_once() {
        let d = tempfile::tempdir().unwrap();
        // 20 full bundles and a partial one: every bundle is authenticated against the same
        // level-1 tile and the tree's edge.
        let key = build(d.path(), &[256 * 20 + 17]);
        let reads = Arc::new(Mutex::new(BTreeMap::new()));
        let store = Counting {
            inner: LocalStore::open(d.path()).unwrap(),
            reads: reads.clone(),
        };
        let log = Log::open(Box::new(store), key.verifier()).unwrap();
        let cp = log.head().unwrap().checkpoint;
        let all = log.entries(&cp, 0, cp.size).unwrap();
        assert_eq!(all.len() as u64, cp.size);
        assert_eq!(all[5], entry(5));
        let reads = reads.lock().unwrap();
        let tiles: Vec<_> = reads
            .iter()
            .filter(|(p, _)| p.starts_with("tile/") && !p.starts_with("tile/entries"))
            .collect();
        assert!(tiles.iter().all(|(_, n)| **n == 1), "{tiles:?}");
        assert!(tiles.len() <= 24, "{} tiles read: {tiles:?}", tiles.len());
    }

    fn verify(dir: &Path, key: &SigningKey) -> VerifyReport {
        let log = Log::open(Box::new(LocalStore::open(dir).unwrap()), key.verifier()).unwrap();
        log.verify(&VerifyOptions::default(), &mut |_, _| {})
            .unwrap()
    }

    /// Rewrites entry `k` of a stored bundle, keeping it a valid record of the same length
    /// (the first digit of its `i` becomes 7).
    fn alter_entry(dir: &Path, bundle: &str, k: usize) {
        let p = dir.join(bundle);
        let data = std::fs::read(&p).unwrap();
        let mut out = Vec::new();
        for (j, e) in bundle::decode(&data).unwrap().into_iter().enumerate() {
            let text = String::from_utf8(e.to_vec()).unwrap();
            let text = match j == k {
                true => text.replacen("\"i\":1", "\"i\":7", 1),
                false => text,
            };
            assert!(j != k || text.as_bytes() != e);
            bundle::push(&mut out, text.as_bytes());
        }
        std::fs::write(&p, out).unwrap();
    }

    /// The problems found, as printed.
    fn problems(rep: &VerifyReport) -> Vec<String> {
        rep.problems.iter().map(|p| p.to_string()).collect()
    }

    /// Problems of a log built from `batches` after `tamper` changed its claims.
    fn claim_problems(batches: &[usize], tamper: impl FnOnce(&Path, &SigningKey)) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let key = build(dir.path(), batches);
        assert!(verify(dir.path(), &key).ok());
        tamper(dir.path(), &key);
        problems(&verify(dir.path(), &key))
    }

    fn claim_file(dir: &Path, start: u64) -> std::path::PathBuf {
        dir.join(tftrail_core::layout::batch_path(start))
    }

    fn replace(p: &Path, data: &[u8]) {
        std::fs::remove_file(p).unwrap();
        std::fs::write(p, data).unwrap();
    }

    #[test]
    fn every_claim_is_checked() {
        // A flipped byte in the signature, the header or the body of a claim.
        for offset in [10usize, 60, usize::MAX] {
            let got = claim_problems(&[300, 3, 5], |dir, _| {
                let p = claim_file(dir, 300);
                let mut b = std::fs::read(&p).unwrap();
                let at = offset.min(b.len() - 1);
                b[at] ^= 0x20;
                replace(&p, &b);
            });
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(
                got[0].starts_with("tftrail/batches/300 (entry 300): batch claim does not verify"),
                "{got:?}"
            );
        }
        // A deleted claim: its entries are covered by none.
        let got = claim_problems(&[300, 3, 5], |dir, _| {
            std::fs::remove_file(claim_file(dir, 303)).unwrap();
        });
        assert_eq!(
            got,
            ["tftrail/batches/303 (entry 303): no batch claim covers the entries from 303 on: the claim was deleted"]
        );
        // A claim signed with the log's key but for other entries (a key holder rewriting
        // the sequencing record).
        let got = claim_problems(&[300, 3, 5], |dir, key| {
            let forged = tftrail_core::batch::encode(key, 300, &[entry(1), entry(2), entry(3)]);
            replace(&claim_file(dir, 300), &forged);
        });
        assert_eq!(
            got,
            ["tftrail/batches/300 (entry 300): batch claim's leaf hashes do not match entries 300..303 of the log"]
        );
        // A claim of the right entries with a v2 body (leaf hashes) verifies like the v1 one.
        let got = claim_problems(&[300, 3, 5], |dir, key| {
            let hashes: Vec<Hash> = (300..303).map(|i| leaf_hash(&entry(i))).collect();
            let v2 = tftrail_core::batch::encode_hashes(key, 300, "test-stage", &hashes);
            replace(&claim_file(dir, 300), &v2);
        });
        assert!(got.is_empty(), "{got:?}");
        // A claim that overlaps the batch before it, and one past the checkpoint's size.
        let got = claim_problems(&[300, 3, 5], |dir, key| {
            let c = tftrail_core::batch::encode(key, 301, &[entry(301)]);
            std::fs::write(claim_file(dir, 301), c).unwrap();
        });
        assert_eq!(
            got,
            ["tftrail/batches/301 (entry 301): batch claim starts at 301, inside the batch before it"]
        );
        let got = claim_problems(&[300, 3, 5], |dir, key| {
            let c = tftrail_core::batch::encode(
                key,
                303,
                &[
                    entry(303),
                    entry(304),
                    entry(305),
                    entry(306),
                    entry(307),
                    entry(308),
                ],
            );
            replace(&claim_file(dir, 303), &c);
        });
        assert_eq!(
            got,
            ["tftrail/batches/303 (entry 303): batch claim covers entries 303..309, past the checkpoint's 308 entries"]
        );
        // A stray object among the claims.
        let got = claim_problems(&[3], |dir, _| {
            std::fs::write(dir.join("tftrail/batches/junk"), b"x").unwrap();
        });
        assert_eq!(
            got,
            ["tftrail/batches/junk: unexpected object among the batch claims"]
        );
    }

    #[test]
    fn reads_each_object_once() {
        // Partial bundles and level-0 tiles of several widths, and level-1 partial tiles of
        // widths 1 to 5 (the recomputed level-1 tile is checked at every width).
        let dir = tempfile::tempdir().unwrap();
        let key = build(dir.path(), &[300, 3, 5, 250, 700, 1, 40]);
        let size = 1299;
        let reads = Arc::new(Mutex::new(BTreeMap::new()));
        let store = Counting {
            inner: LocalStore::open(dir.path()).unwrap(),
            reads: reads.clone(),
        };
        let log = Log::open(Box::new(store), key.verifier()).unwrap();
        let rep = log
            .verify(&VerifyOptions::default(), &mut |_, _| {})
            .unwrap();
        assert!(rep.ok(), "{:?}", rep.problems);
        assert_eq!(rep.size, size);
        let tiles = log.store.list("tile/").unwrap();
        for p in ["tile/1/000.p/1", "tile/1/000.p/4", "tile/entries/001.p/44"] {
            assert!(tiles.contains(&p.to_string()), "{p} in {tiles:?}");
        }
        // The checkpoint's partial tiles are read twice: as recomputed, and as the tiles the
        // checkpoint needs. Every other object once.
        let twice = ["tile/0/005.p/19", "tile/1/000.p/5"];
        let reads = reads.lock().unwrap();
        for p in &tiles {
            let want = if twice.contains(&p.as_str()) { 2 } else { 1 };
            assert_eq!(reads.get(p), Some(&want), "{p}");
        }
    }

    #[test]
    fn older_partial_bundles() {
        // Bundle 1 as 001.p/44, 001.p/47 and 001.p/52.
        let batches = [300, 3, 5];
        let fresh = || {
            let dir = tempfile::tempdir().unwrap();
            let key = build(dir.path(), &batches);
            (dir, key)
        };
        let (dir, key) = fresh();
        let rep = verify(dir.path(), &key);
        assert!(rep.ok(), "{:?}", rep.problems);

        // An older version altered: its bytes are not those of the bundle, and its entries
        // not those of the log.
        alter_entry(dir.path(), "tile/entries/001.p/44", 10);
        assert_eq!(
            problems(&verify(dir.path(), &key)),
            ["tile/entries/001.p/44 (entry 256): partial entry bundle differs from the entries of the log"]
        );

        // The bundle altered after the older versions' entries: they hold the authentic
        // first entries, which the bundle's bytes still begin with.
        let (dir, key) = fresh();
        alter_entry(dir.path(), "tile/entries/001.p/52", 50);
        assert_eq!(
            problems(&verify(dir.path(), &key)),
            ["tile/entries/001.p/52 (entry 306): entry differs from the one the signed checkpoint commits to (altered, replaced or reordered)"]
        );

        // The bundle altered within the older versions' entries: they still hold the
        // authentic entries, which the bundle's bytes no longer begin with.
        let (dir, key) = fresh();
        alter_entry(dir.path(), "tile/entries/001.p/52", 10);
        assert_eq!(
            problems(&verify(dir.path(), &key)),
            ["tile/entries/001.p/52 (entry 266): entry differs from the one the signed checkpoint commits to (altered, replaced or reordered)"]
        );

        // The bundle and an older version altered alike: the older one differs from the
        // authentic entries although its bytes begin the bundle's.
        alter_entry(dir.path(), "tile/entries/001.p/47", 10);
        assert_eq!(
            problems(&verify(dir.path(), &key)),
            [
                "tile/entries/001.p/52 (entry 266): entry differs from the one the signed checkpoint commits to (altered, replaced or reordered)",
                "tile/entries/001.p/47 (entry 256): partial entry bundle differs from the entries of the log",
            ]
        );
    }

    #[test]
    fn blobs_reported_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&Origin::new("test.example/log").unwrap());
        let store = LocalStore::create(dir.path()).unwrap();
        crate::init(&store, &key).unwrap();
        let log = Log::open(Box::new(store), key.verifier()).unwrap();
        let blobs: Vec<crate::Blob> = (0..7)
            .map(|k| crate::Blob {
                name: format!("b{k}"),
                data: vec![k as u8; 1000 * k + 1],
            })
            .collect();
        let path = |k: usize| blob_path(&blobs[k].reference().sha256);
        let actor = Actor {
            authenticated: None,
            user: "u".into(),
            host: "h".into(),
            ci: None,
        };
        // Entry k < 30 references blob k % 6 (the first reference is the one checked), entry
        // 30 blob 6 with the wrong size.
        let entries = (0..31)
            .map(|k| {
                let mut b = blobs[if k == 30 { 6 } else { k % 6 }].reference();
                b.size += u64::from(k == 30);
                let payload = serde_json::json!({ "k": k });
                let time = "2026-01-01T00:00:00Z";
                Record::new("test", time, actor.clone(), payload, vec![b])
                    .unwrap()
                    .to_entry()
                    .unwrap()
            })
            .collect();
        log.append(&key, entries, &blobs, &mut |_, _| {}).unwrap();
        let rep = verify(dir.path(), &key);
        let wrong_size = format!(
            "{} (entry 30): blob \"b6\" is 6001 bytes, the record says 6002",
            path(6)
        );
        assert_eq!(problems(&rep), std::slice::from_ref(&wrong_size));
        assert_eq!((rep.blobs, rep.blob_bytes), (7, 21_007));

        let mut data = std::fs::read(dir.path().join(path(2))).unwrap();
        data[7] ^= 1;
        std::fs::write(dir.path().join(path(2)), data).unwrap();
        std::fs::remove_file(dir.path().join(path(4))).unwrap();
        let rep = verify(dir.path(), &key);
        let mut want = vec![
            (
                path(2),
                format!(
                    "{} (entry 2): blob \"b2\" does not match its SHA-256",
                    path(2)
                ),
            ),
            (
                path(4),
                format!(
                    "{} (entry 4): blob \"b4\" referenced by the record is missing",
                    path(4)
                ),
            ),
            (path(6), wrong_size),
        ];
        // In the order of their SHA-256.
        want.sort();
        let want: Vec<String> = want.into_iter().map(|(_, m)| m).collect();
        assert_eq!(problems(&rep), want);
        assert_eq!((rep.blobs, rep.blob_bytes), (6, 17_006));
    }

    #[test]
    fn altered_partial_tile_reported_once_per_check() {
        let dir = tempfile::tempdir().unwrap();
        let key = build(dir.path(), &[300, 300, 300]);
        let p = dir.path().join("tile/1/000.p/1");
        let mut data = std::fs::read(&p).unwrap();
        data[5] ^= 1;
        std::fs::write(&p, data).unwrap();
        // Compared at its own width, then as a narrower version of the wider ones.
        assert_eq!(
            problems(&verify(dir.path(), &key)),
            [
                "tile/1/000.p/1 (entry 0): hash tile differs from the hashes recomputed from the entries (hash 0 of the tile)",
                "tile/1/000.p/1 (entry 0): partial hash tile differs from the hashes recomputed from the entries",
            ]
        );
    }
}
