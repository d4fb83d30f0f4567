//! Reading the log: the verified checkpoint, entries authenticated against it, proofs, blobs.

use std::cell::RefCell;

use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::{Checkpoint, VerifierKey};
use tftrail_core::integrate::Integrator;
use tftrail_core::layout::{blob_path, bundle_path, partial_width, tile_path};
use tftrail_core::merkle::{leaf_hash, tile_hashes, Edge, Hash};
use tftrail_core::receipt::Receipt;
use tftrail_core::{bundle, TILE_WIDTH};
use tftrail_store::{Store, Version};
use tlog_tiles::{HashReader, Tile, TileReader};

use crate::LogError;

/// A log in a store, read with a trusted verifier key.
pub struct Log {
    pub(crate) store: Box<dyn Store>,
    pub(crate) key: VerifierKey,
    /// The tree's right edge after this log's last append, with the checkpoint note that
    /// covers it: the next append starts from it instead of reading and checking the partial
    /// tiles and bundle again, when the stored checkpoint is still exactly that note.
    pub(crate) last_edge: std::sync::Mutex<Option<(Vec<u8>, Integrator)>>,
}

/// A verified checkpoint with its signed bytes and storage version.
#[derive(Debug, Clone)]
pub struct Head {
    /// The parsed, verified checkpoint.
    pub checkpoint: Checkpoint,
    /// The signed note as stored.
    pub note: Vec<u8>,
    /// Storage version for compare-and-swap.
    pub version: Version,
}

/// Reads hash tiles from a store, for the authenticated [`AuthTiles`] reader.
pub struct StoreTiles<'a> {
    store: &'a dyn Store,
    /// The first failure, for messages (`tlog_tiles` errors carry no path).
    pub failure: RefCell<Option<String>>,
    /// Tiles already read through this reader, by path: reading many bundles authenticates
    /// each against the same upper tiles. The bytes are re-authenticated on every use (the
    /// cache saves reads, not checks). Bounded by [`MAX_CACHED_TILES`].
    cache: RefCell<std::collections::HashMap<String, Vec<u8>>>,
}

/// The most tiles one [`StoreTiles`] keeps (8 KiB each: 32 MiB).
const MAX_CACHED_TILES: usize = 4096;

impl<'a> StoreTiles<'a> {
    /// Reads tiles from `store`.
    pub fn new(store: &'a dyn Store) -> Self {
        StoreTiles {
            store,
            failure: RefCell::new(None),
            cache: RefCell::new(std::collections::HashMap::new()),
        }
    }
}

impl TileReader for StoreTiles<'_> {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let mut out = Vec::with_capacity(tiles.len());
        for t in tiles {
            let p = tile_path(t.level(), t.level_index(), u64::from(t.width()));
            if let Some(d) = self.cache.borrow().get(&p) {
                out.push(d.clone());
                continue;
            }
            match self.store.get(&p) {
                Ok(Some(d)) if d.len() == t.width() as usize * 32 => {
                    let mut cache = self.cache.borrow_mut();
                    if cache.len() >= MAX_CACHED_TILES {
                        cache.clear();
                    }
                    cache.insert(p, d.clone());
                    out.push(d)
                }
                Ok(Some(d)) => {
                    self.failure.replace(Some(format!(
                        "hash tile {p} has {} bytes, want {}",
                        d.len(),
                        t.width() * 32
                    )));
                    return Err(tlog_tiles::Error::InvalidTile);
                }
                Ok(None) => {
                    self.failure
                        .replace(Some(format!("hash tile {p} is missing")));
                    return Err(tlog_tiles::Error::InvalidTile);
                }
                Err(e) => {
                    self.failure.replace(Some(e.to_string()));
                    return Err(tlog_tiles::Error::InvalidTile);
                }
            }
        }
        Ok(out)
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// Reads hashes from tiles, authenticated against a tree size and root.
///
/// The same algorithm as `tlog_tiles::TileHashReader` (0.2.0), which is not used because it
/// authenticates full tiles against their parents only from position `stx.len()` of its tile
/// list, while the tree-hash tiles are deduplicated and may be fewer: for tree sizes whose right
/// edge has several subtrees in one tile (e.g. 301), a tampered full tile was returned as
/// authentic.
pub struct AuthTiles<'a, 'b> {
    size: u64,
    root: Hash,
    tr: &'a StoreTiles<'b>,
}

impl<'a, 'b> AuthTiles<'a, 'b> {
    /// Reads from `tr`, trusting the tree of `size` with `root`.
    pub fn new(size: u64, root: Hash, tr: &'a StoreTiles<'b>) -> Self {
        AuthTiles { size, root, tr }
    }
}

impl HashReader for AuthTiles<'_, '_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        use std::collections::HashMap;
        use tlog_tiles::Error;
        let h = self.tr.height();
        let n = self.size;
        let mut order: HashMap<Tile, usize> = HashMap::new();
        let mut tiles: Vec<Tile> = Vec::new();
        // Tiles holding the hashes that make up the tree hash.
        let stx = tlog_tiles::sub_tree_index(0, n, vec![]);
        let mut stx_order = Vec::with_capacity(stx.len());
        for &x in &stx {
            let t = Tile::from_index(h, x).parent(0, n).ok_or(Error::BadMath)?;
            let j = *order.entry(t).or_insert_with(|| {
                tiles.push(t);
                tiles.len() - 1
            });
            stx_order.push(j);
        }
        let n_stx_tiles = tiles.len();
        // Tiles holding the requested hashes, each after the parents that authenticate it.
        let mut index_order = Vec::with_capacity(indexes.len());
        for &x in indexes {
            if x >= tlog_tiles::stored_hash_index(0, n) {
                return Err(Error::IndexesNotInTree);
            }
            let t = Tile::from_index(h, x);
            let mut k = 0;
            loop {
                let p = t.parent(k, n).ok_or(Error::BadMath)?;
                if order.contains_key(&p) {
                    break;
                }
                k += 1;
            }
            for k in (0..k).rev() {
                let p = t.parent(k, n).ok_or(Error::BadMath)?;
                if p.width() != 1 << h {
                    return Err(Error::BadMath);
                }
                order.insert(p, tiles.len());
                tiles.push(p);
            }
            index_order.push(order[&t.parent(0, n).ok_or(Error::BadMath)?]);
        }
        let data = self.tr.read_tiles(&tiles)?;
        if data.len() != tiles.len()
            || tiles
                .iter()
                .zip(&data)
                .any(|(t, d)| d.len() != t.width() as usize * 32)
        {
            return Err(Error::BadMath);
        }
        // The tree-hash tiles against the root …
        let last = stx.len() - 1;
        let mut th = tiles[stx_order[last]].hash_at_index(&data[stx_order[last]], stx[last])?;
        for i in (0..last).rev() {
            let hi = tiles[stx_order[i]].hash_at_index(&data[stx_order[i]], stx[i])?;
            th = tlog_tiles::node_hash(hi, th);
        }
        if th != self.root {
            return Err(Error::InconsistentTile);
        }
        // … then every other (full) tile against its already authenticated parent.
        for i in n_stx_tiles..tiles.len() {
            let t = tiles[i];
            let p = t.parent(1, n).ok_or(Error::BadMath)?;
            let j = *order.get(&p).ok_or(Error::BadMath)?;
            let want = p.hash_at_index(
                &data[j],
                tlog_tiles::stored_hash_index(p.level() * h, t.level_index()),
            )?;
            if want != Tile::subtree_hash(&data[i]) {
                return Err(Error::InconsistentTile);
            }
        }
        indexes
            .iter()
            .zip(&index_order)
            .map(|(&x, &j)| tiles[j].hash_at_index(&data[j], x))
            .collect()
    }
}

impl Log {
    /// Opens the log in `store`, trusting `key`. Fails when the store holds no checkpoint.
    pub fn open(store: Box<dyn Store>, key: VerifierKey) -> Result<Self, LogError> {
        let log = Log {
            store,
            key,
            last_edge: std::sync::Mutex::new(None),
        };
        if log.store.get_checkpoint()?.is_none() {
            return Err(log.no_checkpoint());
        }
        Ok(log)
    }

    /// The error for a store without a checkpoint: not a log, unless the store holds a log's
    /// objects, in which case the checkpoint was deleted (damage: it is the one object that
    /// write-once storage cannot lock).
    fn no_checkpoint(&self) -> LogError {
        let location = self.store.location();
        for prefix in ["tile/entries/000", "tile/0/000", "tftrail/batches/000"] {
            match self.store.list(prefix) {
                Ok(found) if !found.is_empty() => {
                    return LogError::CheckpointMissing {
                        location,
                        found: found[0].clone(),
                    }
                }
                Ok(_) => {}
                Err(e) => return e.into(),
            }
        }
        LogError::NotALog {
            location,
            reason: "no checkpoint (run `tftrail init` first, or check --store)".into(),
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The trusted key.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// Reads and verifies the current checkpoint.
    pub fn head(&self) -> Result<Head, LogError> {
        let (note, version) = self
            .store
            .get_checkpoint()?
            .ok_or_else(|| self.no_checkpoint())?;
        let checkpoint = self.key.open_checkpoint(&note)?;
        Ok(Head {
            checkpoint,
            note,
            version,
        })
    }

    /// Reads an object that must exist.
    pub(crate) fn must_get(&self, path: &str, what: &str) -> Result<Vec<u8>, LogError> {
        self.store
            .get(path)?
            .ok_or_else(|| LogError::Integrity(format!("{what} {path} is missing")))
    }

    /// [`Log::integrator`] for `head`, taken from this log's last append when the stored
    /// checkpoint is still the one that append published (objects never change, so the edge
    /// it computed is the edge of that tree).
    pub(crate) fn integrator_for(&self, head: &Head) -> Result<Integrator, LogError> {
        let cached = self.last_edge.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(note, _)| *note == head.note)
                .map(|(_, it)| it.clone())
        });
        match cached {
            Some(it) => Ok(it),
            None => self.integrator(&head.checkpoint),
        }
    }

    /// Rebuilds the append state for the tree of `cp`, checking it against the root.
    pub fn integrator(&self, cp: &Checkpoint) -> Result<Integrator, LogError> {
        let edge = Edge::from_partials(cp.size, |level, n, width| {
            let p = tile_path(level, n, width);
            let data = self.must_get(&p, "hash tile").map_err(|e| e.to_string())?;
            tile_hashes(&data).ok_or_else(|| format!("integrity: hash tile {p} has a partial hash"))
        })
        .map_err(|e| LogError::Integrity(e.trim_start_matches("integrity: ").to_string()))?;
        if edge.root() != cp.root {
            return Err(LogError::Integrity(format!(
                "the partial hash tiles at size {} do not lead to the checkpoint's root",
                cp.size
            )));
        }
        let w = partial_width(0, cp.size);
        let bundle = if w > 0 {
            self.must_get(&bundle_path(cp.size / TILE_WIDTH, w), "entry bundle")?
        } else {
            Vec::new()
        };
        Integrator::new(edge, bundle).map_err(|e| {
            LogError::Integrity(format!(
                "entry bundle {}: {e}",
                bundle_path(cp.size / TILE_WIDTH, w.max(1))
            ))
        })
    }

    /// Reads entries `start..end` of the tree of `cp`, each authenticated against its root.
    pub fn entries(&self, cp: &Checkpoint, start: u64, end: u64) -> Result<Vec<Vec<u8>>, LogError> {
        if start > end || end > cp.size {
            return Err(LogError::Input(format!(
                "entries {start}..{end} are not in the log (size {})",
                cp.size
            )));
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        let tiles = StoreTiles::new(self.store.as_ref());
        let reader = AuthTiles::new(cp.size, cp.root, &tiles);
        let mut i = start;
        while i < end {
            let n = i / TILE_WIDTH;
            let width = (cp.size - n * TILE_WIDTH).min(TILE_WIDTH);
            let path = bundle_path(n, width);
            let data = self.must_get(&path, "entry bundle")?;
            let entries = bundle::decode(&data)
                .map_err(|e| LogError::Integrity(format!("entry bundle {path}: {e}")))?;
            if entries.len() as u64 != width {
                return Err(LogError::Integrity(format!(
                    "entry bundle {path} holds {} entries, want {width}",
                    entries.len()
                )));
            }
            let stop = end.min((n + 1) * TILE_WIDTH);
            let idx: Vec<u64> = (i..stop)
                .map(|j| tlog_tiles::stored_hash_index(0, j))
                .collect();
            let want = reader.read_hashes(&idx).map_err(|_| {
                LogError::Integrity(tiles.failure.borrow().clone().unwrap_or_else(|| {
                    format!("hash tiles for entries {i}..{stop} do not match the checkpoint")
                }))
            })?;
            for (k, j) in (i..stop).enumerate() {
                let e = entries[(j - n * TILE_WIDTH) as usize];
                if leaf_hash(e) != want[k] {
                    return Err(LogError::Integrity(format!(
                        "entry {j} in {path} does not match the log's hashes"
                    )));
                }
                out.push(e.to_vec());
            }
            i = stop;
        }
        Ok(out)
    }

    /// Builds an offline receipt for entry `index` in the tree of `head`.
    pub fn prove(&self, head: &Head, index: u64) -> Result<Receipt, LogError> {
        let cp = &head.checkpoint;
        if index >= cp.size {
            return Err(LogError::Input(format!(
                "entry {index} is not in the log (size {})",
                cp.size
            )));
        }
        let entry = self.entries(cp, index, index + 1)?.remove(0);
        let tiles = StoreTiles::new(self.store.as_ref());
        let reader = AuthTiles::new(cp.size, cp.root, &tiles);
        let proof = tlog_tiles::prove_record(cp.size, index, &reader).map_err(|_| {
            LogError::Integrity(
                tiles
                    .failure
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "cannot build an inclusion proof".into()),
            )
        })?;
        Ok(Receipt {
            index,
            proof,
            entry: Some(entry),
            checkpoint: head.note.clone(),
        })
    }

    /// Consistency proof from `old_size` to the tree of `cp`.
    pub fn consistency(&self, cp: &Checkpoint, old_size: u64) -> Result<Vec<Hash>, LogError> {
        let tiles = StoreTiles::new(self.store.as_ref());
        let reader = AuthTiles::new(cp.size, cp.root, &tiles);
        tlog_tiles::prove_tree(cp.size, old_size, &reader).map_err(|_| {
            LogError::Integrity(
                tiles
                    .failure
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "cannot build a consistency proof".into()),
            )
        })
    }

    /// Reads a blob and checks its hash.
    pub fn blob(&self, sha256_hex: &str) -> Result<Vec<u8>, LogError> {
        let p = blob_path(sha256_hex);
        let data = self.must_get(&p, "blob")?;
        if hex::encode(Sha256::digest(&data)) != sha256_hex {
            return Err(LogError::Integrity(format!(
                "blob {p} does not match its SHA-256"
            )));
        }
        Ok(data)
    }
}
