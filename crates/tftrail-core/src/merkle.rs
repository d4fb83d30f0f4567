//! RFC 6962 Merkle tree hashing over C2SP tiles.

use sha2::{Digest, Sha256};
pub use tlog_tiles::Hash;

use crate::TILE_WIDTH;

/// Errors from proof checking.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The proof does not lead to the expected root.
    #[error("proof does not verify")]
    Invalid,
    /// Indexes or sizes that cannot form a proof (index beyond size, old size above new size,
    /// zero-sized trees).
    #[error("impossible proof request: {0}")]
    BadInput(String),
}

/// Hash of an empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// RFC 6962 leaf hash: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    Hash(h.finalize().into())
}

/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Root of a *perfect* subtree whose leaves (already hashed) are `hashes`; the length must be
/// a power of two.
fn perfect_root(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two());
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|p| node_hash(&p[0], &p[1]))
            .collect();
    }
    level[0]
}

/// Root of the RFC 6962 tree over the given leaf-level hashes (any count).
pub fn root_of(hashes: &[Hash]) -> Hash {
    match hashes.len() {
        0 => empty_root(),
        1 => hashes[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&root_of(&hashes[..k]), &root_of(&hashes[k..]))
        }
    }
}

/// The right edge of a tiled tree: for each tile level, the hashes of the rightmost, not yet
/// full tile. That is all it takes to append and to compute the root.
///
/// Level `L` holds hashes of perfect subtrees of `256^L` leaves; when a level fills up to 256
/// hashes its tile is complete and its root moves one level up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edge {
    size: u64,
    levels: Vec<Vec<Hash>>,
}

/// A tile that became full while appending.
#[derive(Clone, Debug, PartialEq)]
pub struct FullTile {
    /// Tile level.
    pub level: u8,
    /// Tile index at that level.
    pub index: u64,
    /// Its 256 hashes.
    pub hashes: Vec<Hash>,
}

impl Edge {
    /// The edge of an empty tree.
    pub fn new() -> Self {
        Edge::default()
    }

    /// Rebuilds the edge of a tree of `size` leaves from its partial tiles, given as
    /// `partial(level)` = the hashes of the partial tile at that level (empty when the width at
    /// that level is zero). Checks the widths.
    pub fn from_partials(
        size: u64,
        mut partial: impl FnMut(u8, u64, u64) -> Result<Vec<Hash>, String>,
    ) -> Result<Self, String> {
        let mut levels = Vec::new();
        let mut level = 0u8;
        while level == 0 || (size >> (8 * u32::from(level))) > 0 {
            let at_level = size >> (8 * u32::from(level));
            let width = at_level % TILE_WIDTH;
            let index = at_level / TILE_WIDTH;
            let hashes = if width > 0 {
                let hs = partial(level, index, width)?;
                if hs.len() as u64 != width {
                    return Err(format!(
                        "tile at level {level} index {index} has {} hashes, want {width}",
                        hs.len()
                    ));
                }
                hs
            } else {
                Vec::new()
            };
            levels.push(hashes);
            level += 1;
            if at_level < TILE_WIDTH {
                break;
            }
        }
        Ok(Edge { size, levels })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Hashes of the partial tile at `level` (possibly empty).
    pub fn partial(&self, level: u8) -> &[Hash] {
        self.levels
            .get(usize::from(level))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }

    /// Number of tile levels in use.
    pub fn levels(&self) -> u8 {
        self.levels.len() as u8
    }

    /// Appends one leaf hash; calls `full` for each tile this completes (lowest level first).
    pub fn push(&mut self, leaf: Hash, full: &mut impl FnMut(FullTile)) {
        let mut carry = leaf;
        let mut level = 0usize;
        let mut pos = self.size; // number of subtrees at this level before this push
        self.size += 1;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::with_capacity(TILE_WIDTH as usize));
            }
            let tile = &mut self.levels[level];
            tile.push(carry);
            if tile.len() as u64 == TILE_WIDTH {
                let hashes = std::mem::take(tile);
                carry = perfect_root(&hashes);
                full(FullTile {
                    level: level as u8,
                    index: pos / TILE_WIDTH,
                    hashes,
                });
                pos /= TILE_WIDTH;
                level += 1;
            } else {
                break;
            }
        }
    }

    /// RFC 6962 root hash of the tree.
    pub fn root(&self) -> Hash {
        if self.size == 0 {
            return empty_root();
        }
        // Perfect subtrees from left (largest) to right: higher levels first, and within a
        // level the binary decomposition of the partial tile.
        let mut subtrees: Vec<Hash> = Vec::new();
        for tile in self.levels.iter().rev() {
            let mut start = 0usize;
            let mut rest = tile.len();
            while rest > 0 {
                let k = 1usize << (usize::BITS - 1 - rest.leading_zeros());
                subtrees.push(perfect_root(&tile[start..start + k]));
                start += k;
                rest -= k;
            }
        }
        let mut acc = *subtrees.last().expect("non-empty tree has a subtree");
        for h in subtrees.iter().rev().skip(1) {
            acc = node_hash(h, &acc);
        }
        acc
    }
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2): leaf `index` with hash `leaf` is in the tree
/// of `size` leaves with root `root`.
pub fn check_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    index: u64,
    leaf: Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::BadInput(format!(
            "index {index} is not below tree size {size}"
        )));
    }
    tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf).map_err(map_err)
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): the tree of `old_size` leaves with root
/// `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.
pub fn check_consistency(
    proof: &[Hash],
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
) -> Result<(), ProofError> {
    check_consistency_bytes(proof, old_size, &old_root.0, new_size, &new_root.0)
}

/// [`check_consistency`] with roots as raw bytes, as they arrive from outside: equal sizes need
/// an empty proof and equal roots; otherwise both roots must be 32-byte hashes.
pub fn check_consistency_bytes(
    proof: &[Hash],
    old_size: u64,
    old_root: &[u8],
    new_size: u64,
    new_root: &[u8],
) -> Result<(), ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::BadInput(format!(
            "cannot prove size {old_size} consistent with size {new_size}"
        )));
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Invalid)
        };
    }
    let (Ok(old_root), Ok(new_root)) = (
        <[u8; 32]>::try_from(old_root),
        <[u8; 32]>::try_from(new_root),
    ) else {
        return Err(ProofError::BadInput("roots must be 32-byte hashes".into()));
    };
    tlog_tiles::check_tree(
        &proof.to_vec(),
        new_size,
        Hash(new_root),
        old_size,
        Hash(old_root),
    )
    .map_err(map_err)
}

fn map_err(e: tlog_tiles::Error) -> ProofError {
    match e {
        tlog_tiles::Error::InvalidInput(s) => ProofError::BadInput(s),
        _ => ProofError::Invalid,
    }
}

/// Decodes a base64 hash, rejecting any length but 32 bytes.
pub fn parse_hash(s: &str) -> Option<Hash> {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    Some(Hash(b.try_into().ok()?))
}

/// Encodes a hash as standard padded base64.
pub fn hash_b64(h: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h.0)
}

/// Splits tile data (concatenated 32-byte hashes) into hashes.
pub fn tile_hashes(data: &[u8]) -> Option<Vec<Hash>> {
    if data.len() % 32 != 0 {
        return None;
    }
    Some(
        data.chunks_exact(32)
            .map(|c| Hash(c.try_into().expect("32 bytes")))
            .collect(),
    )
}

/// Concatenates hashes into tile data.
pub fn tile_data(hashes: &[Hash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hashes.len() * 32);
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_root_matches_reference_for_many_sizes() {
        let mut edge = Edge::new();
        let mut leaves = Vec::new();
        let sizes: Vec<u64> = (1..=600).chain([65535, 65536, 65537, 70000]).collect();
        let mut fulls = 0;
        for i in 0..70_000u64 {
            let h = leaf_hash(&i.to_be_bytes());
            leaves.push(h);
            edge.push(h, &mut |_| fulls += 1);
            if sizes.contains(&(i + 1)) {
                assert_eq!(edge.root(), root_of(&leaves), "size {}", i + 1);
            }
        }
        // 273 full level-0 tiles, 1 full level-1 tile (REFERENCE example for size 70,000).
        assert_eq!(fulls, 273 + 1);
        assert_eq!(edge.partial(0).len(), 112);
        assert_eq!(edge.partial(1).len(), 17);
        assert_eq!(edge.partial(2).len(), 1);
    }

    #[test]
    fn empty_tree_root() {
        assert_eq!(
            hex::encode(Edge::new().root().0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn edge_rebuilds_from_partials() {
        let mut edge = Edge::new();
        for i in 0..70_000u64 {
            edge.push(leaf_hash(&i.to_be_bytes()), &mut |_| {});
        }
        let copy = edge.clone();
        let rebuilt = Edge::from_partials(70_000, |l, _, _| Ok(copy.partial(l).to_vec())).unwrap();
        assert_eq!(rebuilt.root(), edge.root());
        let bad = Edge::from_partials(70_000, |_, _, _| Ok(vec![]));
        assert!(bad.is_err());
    }
}
