//! Full verification: recompute every tile and the root from the entry bundles, parse every
//! record, check every blob, and check consistency with a previously verified checkpoint.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::integrate::Integrator;
use tftrail_core::layout::{
    blob_path, bundle_path, classify, partial_width, tile_path, ObjectKind,
};
use tftrail_core::merkle::{hash_b64, leaf_hash, tile_data, tile_hashes, Hash};
use tftrail_core::record::{BlobRef, Record};
use tftrail_core::{bundle, TILE_WIDTH};

use tlog_tiles::HashReader;

use crate::read::AuthTiles;
use crate::read::Head;
use crate::{Log, LogError, StoreTiles};

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
        let problem =
            |rep: &mut VerifyReport, object: String, index: Option<u64>, message: String| {
                let p = Problem {
                    object,
                    index,
                    message,
                };
                if rep.problems.len() < 1000 && !rep.problems.contains(&p) {
                    rep.problems.push(p);
                }
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

        let mut it = Integrator::empty();
        let mut blob_refs: BTreeMap<String, (BlobRef, u64)> = BTreeMap::new();
        let bundles = cp.size.div_ceil(TILE_WIDTH);
        let mut complete = true;
        for n in 0..bundles {
            let width = (cp.size - n * TILE_WIDTH).min(TILE_WIDTH);
            let path = bundle_path(n, width);
            let first = n * TILE_WIDTH;
            let data = match self.store.get(&path)? {
                Some(d) => d,
                None => {
                    problem(
                        &mut rep,
                        path,
                        Some(first),
                        "entry bundle is missing; the tree cannot be recomputed past this point"
                            .into(),
                    );
                    complete = false;
                    break;
                }
            };
            let entries = match bundle::decode(&data) {
                Ok(e) if e.len() as u64 == width => e,
                Ok(e) => {
                    problem(
                        &mut rep,
                        path,
                        Some(first),
                        format!("holds {} entries, the checkpoint needs {width}", e.len()),
                    );
                    complete = false;
                    break;
                }
                Err(e) => {
                    problem(&mut rep, path, Some(first), e.to_string());
                    complete = false;
                    break;
                }
            };
            rep.entry_bytes += data.len() as u64;
            let (mut hashes, parsed) = hash_and_parse(&entries);
            // When the entries disagree with the stored level-0 tile, find out which one is
            // wrong: a stored tile that authenticates against the signed root is the truth,
            // so the entries were altered, replaced or reordered. Continue with the authentic
            // hashes so that the tiles above are not blamed for it.
            let tile0 = self.store.get(&tile_path(0, n, width))?;
            if tile0.is_some_and(|t| tile_hashes(&t).as_deref() != Some(&hashes[..])) {
                let idx: Vec<u64> = (first..first + width)
                    .map(|j| tlog_tiles::stored_hash_index(0, j))
                    .collect();
                let tiles = StoreTiles::new(self.store.as_ref());
                if let Ok(authentic) = AuthTiles::new(cp.size, cp.root, &tiles).read_hashes(&idx) {
                    for (k, (a, h)) in authentic.iter().zip(&hashes).enumerate() {
                        if a != h {
                            problem(
                                &mut rep,
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
                            &mut rep,
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
                    Err(err) => problem(&mut rep, path.clone(), Some(index), err),
                }
            }
            // Integrate, splitting at the previously verified size to check its root.
            let mut done = 0usize;
            let mut cut = entries.len();
            if let Some(p) = &prev {
                if p.size > first && p.size < first + width {
                    cut = (p.size - first) as usize;
                }
            }
            for chunk_end in [cut, entries.len()] {
                if chunk_end <= done {
                    continue;
                }
                let out = it.integrate_hashed(&entries[done..chunk_end], &hashes[done..chunk_end]);
                done = chunk_end;
                for (p, d) in out.objects {
                    if p.starts_with("tile/entries/") {
                        continue;
                    }
                    self.check_tile(&mut rep, &partials, &p, &d, !p.contains(".p/"))?;
                }
                if let Some(pv) = &prev {
                    if pv.size == it.size() && pv.origin == cp.origin && it.root() != pv.root {
                        problem(&mut rep, "checkpoint".into(), None, format!(
                            "the first {} entries no longer hash to the root verified before ({}): history was rewritten",
                            pv.size, hash_b64(&pv.root)));
                    }
                }
            }
            progress(it.size(), cp.size);
        }

        if complete {
            // The partial tiles of this checkpoint must exist and match.
            for level in 0..it.edge().levels() {
                let w = partial_width(level, cp.size);
                if w == 0 {
                    continue;
                }
                let n = (cp.size >> (8 * u32::from(level))) / TILE_WIDTH;
                let p = tile_path(level, n, w);
                let d = tile_data(it.edge().partial(level));
                self.check_tile(&mut rep, &partials, &p, &d, true)?;
            }
            if it.root() != cp.root {
                problem(
                    &mut rep,
                    "checkpoint".into(),
                    None,
                    format!(
                        "root {} recomputed from the entries does not match the signed root {}",
                        hash_b64(&it.root()),
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

    /// Compares a recomputed tile with the stored one (which must exist when `required`), and
    /// stored narrower partial versions of it with its prefix.
    fn check_tile(
        &self,
        rep: &mut VerifyReport,
        partials: &Partials,
        path: &str,
        data: &[u8],
        required: bool,
    ) -> Result<(), LogError> {
        let Some(ObjectKind::Tile { level, n, width }) = classify(path) else {
            return Ok(());
        };
        let first = (n * TILE_WIDTH) << (8 * u32::from(level));
        let stored_partial = partials.get(&(level, n));
        let present = width == TILE_WIDTH || stored_partial.is_some_and(|s| s.contains(&width));
        if required || present {
            match self.store.get(path)? {
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

/// Leaf hashes and parsed blob references of a bundle's entries, on two threads.
type Parsed = Result<Vec<BlobRef>, String>;

fn hash_and_parse(entries: &[&[u8]]) -> (Vec<Hash>, Vec<Parsed>) {
    fn work(part: &[&[u8]]) -> Vec<(Hash, Parsed)> {
        part.iter()
            .map(|e| {
                let parsed = Record::from_entry(e)
                    .map(|r| r.blobs)
                    .map_err(|e| e.to_string());
                (leaf_hash(e), parsed)
            })
            .collect()
    }
    let all: Vec<(Hash, Parsed)> = if entries.len() < 32 {
        work(entries)
    } else {
        let (a, b) = entries.split_at(entries.len() / 2);
        std::thread::scope(|s| {
            let hb = s.spawn(|| work(b));
            let mut ra = work(a);
            ra.extend(hb.join().expect("verify worker panicked"));
            ra
        })
    };
    all.into_iter().unzip()
}
