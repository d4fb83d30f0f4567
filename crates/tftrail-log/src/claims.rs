//! Checking the signed batch claims under `tftrail/batches/` against the log, for `verify`.
//!
//! Claims are not part of the Merkle tree, but they are how writers sequence batches and how a
//! crashed append is finished, so a forged, altered or deleted claim is damage: every claim
//! below the checkpoint's size must carry a valid signature by the log's key, the claims must
//! cover the entries `0..size` exactly once, in order, and each claim's leaf hashes must be
//! those of the entries it covers.
//!
//! The claims are read and their signatures checked on every processor before the walk over
//! the entry bundles; each is reduced to its position, count and the SHA-256 of its leaf
//! hashes, so memory stays at ~48 bytes per claim whatever the batch sizes. The walk then
//! feeds the log's leaf hashes to a [`ClaimMatcher`], in order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tftrail_core::batch::{self, Claimed};
use tftrail_core::checkpoint::VerifierKey;
use tftrail_core::layout::{batch_path, classify, ObjectKind};
use tftrail_core::merkle::{leaf_hash, Hash};

use crate::{LogError, Store};

/// A claim reduced to what the walk compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Summary {
    count: u64,
    /// SHA-256 of the claimed entries' leaf hashes, concatenated.
    digest: [u8; 32],
}

/// Something wrong with a claim: object, first entry concerned, message.
pub(crate) type ClaimProblem = (String, Option<u64>, String);

/// The claims found below the checkpoint's size.
pub(crate) struct Claims {
    /// Claims that decoded and verified, by start.
    good: BTreeMap<u64, Summary>,
    /// Starts of claims that exist but are unusable (reported already).
    broken: BTreeSet<u64>,
    /// Problems found while reading them.
    pub problems: Vec<ClaimProblem>,
    /// Whether a claim exists at the checkpoint's size (an interrupted append leaves one).
    pub pending: bool,
}

/// Reads and checks every claim in `store` that starts below `size`, on `threads` threads.
pub(crate) fn read_claims(
    store: &dyn Store,
    key: &VerifierKey,
    size: u64,
    threads: usize,
) -> Result<Claims, LogError> {
    let mut claims = Claims {
        good: BTreeMap::new(),
        broken: BTreeSet::new(),
        problems: Vec::new(),
        pending: false,
    };
    let mut todo = Vec::new();
    for path in store.list("tftrail/batches/")? {
        match classify(&path) {
            Some(ObjectKind::Batch { start }) if batch_path(start) == path => {
                if start < size {
                    todo.push((start, path));
                } else if start == size {
                    claims.pending = true;
                }
            }
            _ => claims.problems.push((
                path,
                None,
                "unexpected object among the batch claims".into(),
            )),
        }
    }
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(todo.len()));
    let failure = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((start, path)) = todo.get(i) else {
                    break;
                };
                match store.get(path) {
                    Ok(Some(bytes)) => {
                        let r = summarise(key, path, *start, &bytes);
                        results.lock().expect("not poisoned").push((*start, r));
                    }
                    // Listed, then gone: deleted while we looked; the walk reports the gap.
                    Ok(None) => {}
                    Err(e) => {
                        *failure.lock().expect("not poisoned") = Some(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("not poisoned") {
        return Err(e.into());
    }
    let mut results = results.into_inner().expect("not poisoned");
    results.sort_by_key(|(start, _)| *start);
    for (start, r) in results {
        match r {
            Ok(s) => {
                claims.good.insert(start, s);
            }
            Err(message) => {
                claims.broken.insert(start);
                claims
                    .problems
                    .push((batch_path(start), Some(start), message));
            }
        }
    }
    Ok(claims)
}

/// Verifies one claim's signature and form; reduces it to its count and digest.
fn summarise(key: &VerifierKey, path: &str, start: u64, bytes: &[u8]) -> Result<Summary, String> {
    let b = batch::decode(key, path, start, bytes).map_err(|e| {
        format!(
            "batch claim does not verify ({}): altered, or not written by the log's key",
            e.reason
        )
    })?;
    let mut h = Sha256::new();
    match &b.claimed {
        Claimed::Entries(entries) => {
            for e in entries {
                h.update(leaf_hash(e).0);
            }
        }
        Claimed::LeafHashes { hashes, .. } => {
            for x in hashes {
                h.update(x.0);
            }
        }
    }
    Ok(Summary {
        count: b.count(),
        digest: h.finalize().into(),
    })
}

/// The claim being matched.
struct Current {
    start: u64,
    end: u64,
    digest: [u8; 32],
    hasher: Sha256,
    /// Whether its digest can be compared (not when it reaches past the checkpoint).
    compare: bool,
}

/// Matches the log's leaf hashes, fed in order, against the claims.
pub(crate) struct ClaimMatcher {
    claims: Vec<(u64, Summary)>,
    broken: BTreeSet<u64>,
    size: u64,
    next: usize,
    pos: u64,
    cur: Option<Current>,
    in_gap: bool,
    /// Problems found so far.
    pub problems: Vec<ClaimProblem>,
}

impl ClaimMatcher {
    /// A matcher for a log of `size` entries.
    pub(crate) fn new(claims: &Claims, size: u64) -> ClaimMatcher {
        ClaimMatcher {
            claims: claims.good.iter().map(|(s, c)| (*s, *c)).collect(),
            broken: claims.broken.clone(),
            size,
            next: 0,
            pos: 0,
            cur: None,
            in_gap: false,
            problems: Vec::new(),
        }
    }

    /// The leaf hashes of the next entries of the log.
    pub(crate) fn feed(&mut self, hashes: &[Hash]) {
        let mut rest = hashes;
        while !rest.is_empty() {
            if let Some(c) = &mut self.cur {
                let take = ((c.end - self.pos) as usize).min(rest.len());
                for h in &rest[..take] {
                    c.hasher.update(h.0);
                }
                rest = &rest[take..];
                self.pos += take as u64;
                if self.pos == c.end {
                    let c = self.cur.take().expect("current claim");
                    let got: [u8; 32] = c.hasher.finalize().into();
                    if c.compare && got != c.digest {
                        self.problems.push((
                            batch_path(c.start),
                            Some(c.start),
                            format!(
                                "batch claim's leaf hashes do not match entries {}..{} of the log",
                                c.start, c.end
                            ),
                        ));
                    }
                }
                continue;
            }
            match self.claims.get(self.next).copied() {
                Some((s, _)) if s < self.pos => {
                    self.problems.push((
                        batch_path(s),
                        Some(s),
                        format!("batch claim starts at {s}, inside the batch before it"),
                    ));
                    self.next += 1;
                }
                Some((s, c)) if s == self.pos => {
                    let end = s.saturating_add(c.count);
                    let compare = end <= self.size;
                    if !compare {
                        self.problems.push((
                            batch_path(s),
                            Some(s),
                            format!(
                                "batch claim covers entries {s}..{end}, past the checkpoint's {} entries",
                                self.size
                            ),
                        ));
                    }
                    self.cur = Some(Current {
                        start: s,
                        end: end.min(self.size),
                        digest: c.digest,
                        hasher: Sha256::new(),
                        compare,
                    });
                    self.next += 1;
                    self.in_gap = false;
                }
                next => {
                    let gap_end = next.map_or(u64::MAX, |(s, _)| s);
                    let take = (gap_end - self.pos).min(rest.len() as u64);
                    if !self.in_gap {
                        self.in_gap = true;
                        // A claim that exists but did not verify was reported already.
                        if !self.broken.contains(&self.pos) {
                            self.problems.push((
                                batch_path(self.pos),
                                Some(self.pos),
                                format!(
                                    "no batch claim covers the entries from {} on: the claim was deleted",
                                    self.pos
                                ),
                            ));
                        }
                    }
                    rest = &rest[take as usize..];
                    self.pos += take;
                }
            }
        }
    }
}

impl ClaimMatcher {
    /// After the last entry: claims that start inside batches already matched overlap them.
    pub(crate) fn finish(&mut self) -> Vec<ClaimProblem> {
        for (s, _) in &self.claims[self.next..] {
            if *s < self.pos {
                self.problems.push((
                    batch_path(*s),
                    Some(*s),
                    format!("batch claim starts at {s}, inside the batch before it"),
                ));
            }
        }
        std::mem::take(&mut self.problems)
    }
}
