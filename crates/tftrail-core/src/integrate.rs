//! The pure integration step: given the right edge of the tree and new entries, compute the
//! new root and every tile and bundle to write. The caller persists them (in a crash-safe
//! order) and then publishes the checkpoint.

use crate::bundle;
use crate::layout::{bundle_path, tile_path};
use crate::merkle::{leaf_hash, tile_data, Edge, Hash};
use crate::TILE_WIDTH;

/// The state needed to append: the hash edge plus the entries of the partial bundle.
#[derive(Clone, Debug)]
pub struct Integrator {
    edge: Edge,
    bundle: Vec<u8>,
    bundle_len: u64,
}

/// Result of integrating a batch.
#[derive(Debug)]
pub struct Integrated {
    /// New tree size.
    pub size: u64,
    /// New root.
    pub root: Hash,
    /// Objects to create: entry bundles and hash tiles, full and partial.
    pub objects: Vec<(String, Vec<u8>)>,
}

impl Integrator {
    /// Starts from an edge and the raw data of the partial bundle at the edge (empty when the
    /// size is a multiple of 256). Fails when the bundle does not hold exactly the entries the
    /// edge expects or their hashes differ from the edge's.
    pub fn new(edge: Edge, partial_bundle: Vec<u8>) -> Result<Self, String> {
        let want = edge.size() % TILE_WIDTH;
        let entries = bundle::decode(&partial_bundle).map_err(|e| e.to_string())?;
        if entries.len() as u64 != want {
            return Err(format!(
                "partial entry bundle holds {} entries, the tree needs {want}",
                entries.len()
            ));
        }
        for (i, e) in entries.iter().enumerate() {
            if leaf_hash(e) != edge.partial(0)[i] {
                return Err(format!(
                    "entry {} does not match its hash tile",
                    edge.size() - want + i as u64
                ));
            }
        }
        Ok(Integrator {
            edge,
            bundle: partial_bundle,
            bundle_len: want,
        })
    }

    /// An empty tree.
    pub fn empty() -> Self {
        Integrator {
            edge: Edge::new(),
            bundle: Vec::new(),
            bundle_len: 0,
        }
    }

    /// Current size.
    pub fn size(&self) -> u64 {
        self.edge.size()
    }

    /// The hash edge.
    pub fn edge(&self) -> &Edge {
        &self.edge
    }

    /// Current root.
    pub fn root(&self) -> Hash {
        self.edge.root()
    }

    /// Integrates entries and returns what to write. Entries must be at most
    /// [`crate::MAX_ENTRY_SIZE`] bytes (checked by the caller).
    pub fn integrate<E: AsRef<[u8]>>(&mut self, entries: &[E]) -> Integrated {
        let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e.as_ref())).collect();
        self.integrate_hashed(entries, &hashes)
    }

    /// [`Integrator::integrate`] with the leaf hashes already computed (verification hashes
    /// entries on several threads). `hashes[i]` must be `leaf_hash(entries[i])`.
    pub fn integrate_hashed<E: AsRef<[u8]>>(
        &mut self,
        entries: &[E],
        hashes: &[Hash],
    ) -> Integrated {
        assert_eq!(entries.len(), hashes.len());
        let (bundles, edge) = self.split();
        let mut objects = bundles.push(entries);
        objects.extend(push_hashes(edge, hashes));
        Integrated {
            size: self.size(),
            root: self.edge.root(),
            objects,
        }
    }

    /// The two independent halves of integrating a batch, to run on two threads: the entry
    /// bundles (from the entries: [`Bundler::push`]) and the hash tiles (from their leaf
    /// hashes: [`push_hashes`] on the edge). The caller must give both halves the same batch,
    /// as [`Integrator::integrate_hashed`] does.
    pub fn split(&mut self) -> (Bundler<'_>, &mut Edge) {
        let bundler = Bundler {
            size: self.edge.size(),
            bundle: &mut self.bundle,
            bundle_len: &mut self.bundle_len,
        };
        (bundler, &mut self.edge)
    }
}

/// The entry-bundle half of an [`Integrator`] (see [`Integrator::split`]).
#[derive(Debug)]
pub struct Bundler<'a> {
    size: u64,
    bundle: &'a mut Vec<u8>,
    bundle_len: &'a mut u64,
}

impl Bundler<'_> {
    /// Appends the entries to the bundles and returns the bundles to write: every bundle that
    /// fills up, then the partial bundle at the new size.
    pub fn push<E: AsRef<[u8]>>(self, entries: &[E]) -> Vec<(String, Vec<u8>)> {
        let old_size = self.size;
        let mut objects = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let index = old_size + i as u64;
            bundle::push(self.bundle, e.as_ref());
            *self.bundle_len += 1;
            if *self.bundle_len == TILE_WIDTH {
                objects.push((
                    bundle_path(index / TILE_WIDTH, TILE_WIDTH),
                    std::mem::take(self.bundle),
                ));
                *self.bundle_len = 0;
            }
        }
        let size = old_size + entries.len() as u64;
        if *self.bundle_len > 0 && size != old_size {
            objects.push((
                bundle_path(size / TILE_WIDTH, *self.bundle_len),
                self.bundle.clone(),
            ));
        }
        objects
    }
}

/// Appends leaf hashes to `edge` and returns the hash tiles that writes: every tile that
/// fills up, then the partial tile of each level that changed. (Verification rebuilds the
/// tree with this alone; appending adds the entry bundles, see [`Integrator`].)
pub fn push_hashes(edge: &mut Edge, hashes: &[Hash]) -> Vec<(String, Vec<u8>)> {
    let old_size = edge.size();
    let mut tiles = Vec::new();
    for h in hashes {
        edge.push(*h, &mut |t| {
            tiles.push((
                tile_path(t.level, t.index, TILE_WIDTH),
                tile_data(&t.hashes),
            ));
        });
    }
    let size = edge.size();
    for level in 0..edge.levels() {
        let shift = 8 * u32::from(level);
        let partial = edge.partial(level);
        if !partial.is_empty() && (old_size >> shift) != (size >> shift) {
            let n = (size >> shift) / TILE_WIDTH;
            tiles.push((
                tile_path(level, n, partial.len() as u64),
                tile_data(partial),
            ));
        }
    }
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{root_of, tile_hashes};
    use std::collections::BTreeMap;

    #[test]
    fn batches_produce_the_c2sp_layout() {
        let mut it = Integrator::empty();
        let mut store: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut leaves = Vec::new();
        let mut n = 0u64;
        for batch in [1usize, 2, 300, 1000, 255, 1, 68_441] {
            let entries: Vec<Vec<u8>> = (0..batch)
                .map(|_| {
                    n += 1;
                    format!("entry {n}").into_bytes()
                })
                .collect();
            leaves.extend(entries.iter().map(|e| leaf_hash(e)));
            let out = it.integrate(&entries);
            assert_eq!(out.root, root_of(&leaves));
            for (p, d) in out.objects {
                if let Some(old) = store.insert(p.clone(), d.clone()) {
                    assert_eq!(old, d, "rewrote {p} with other bytes");
                }
            }
        }
        assert_eq!(it.size(), 70_000);
        for p in [
            "tile/0/273.p/112",
            "tile/1/001.p/17",
            "tile/2/000.p/1",
            "tile/entries/273.p/112",
            "tile/1/000",
            "tile/0/272",
        ] {
            assert!(store.contains_key(p), "{p} missing");
        }
        assert_eq!(tile_hashes(&store["tile/0/000"]).unwrap()[5], leaves[5]);
        // Rebuilding from the stored partials continues identically.
        let edge = Edge::from_partials(70_000, |l, n, w| {
            Ok(tile_hashes(&store[&tile_path(l, n, w)]).unwrap())
        })
        .unwrap();
        let mut again = Integrator::new(edge, store["tile/entries/273.p/112"].clone()).unwrap();
        let a = again.integrate(&[b"next"]);
        let b = it.integrate(&[b"next"]);
        assert_eq!(a.root, b.root);
        assert_eq!(a.objects, b.objects);
    }
}
