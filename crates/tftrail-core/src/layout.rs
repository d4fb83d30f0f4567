//! Object paths: the C2SP tlog-tiles layout plus tftrail's own prefixes.
//!
//! ```text
//! checkpoint                        signed note (the only mutable object)
//! tile/<L>/<N>[.p/<W>]              hash tiles
//! tile/entries/<N>[.p/<W>]          entry bundles
//! tftrail/blobs/sha256/<hex>        content-addressed artifacts too large for an entry
//! tftrail/batches/<start>           signed batch claims (sequencing and crash recovery)
//! ```

use crate::TILE_WIDTH;

/// Formats a tile index as C2SP path elements: 1234067 → `x001/x234/067`.
pub fn index_path(mut n: u64) -> String {
    let mut parts = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        parts.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    parts.reverse();
    parts.join("/")
}

fn with_width(base: String, width: u64) -> String {
    if width == TILE_WIDTH {
        base
    } else {
        format!("{base}.p/{width}")
    }
}

/// Path of the hash tile at `level`, index `n`, holding `width` hashes (1..=256).
pub fn tile_path(level: u8, n: u64, width: u64) -> String {
    debug_assert!((1..=TILE_WIDTH).contains(&width));
    with_width(format!("tile/{level}/{}", index_path(n)), width)
}

/// Path of entry bundle `n` holding `width` entries (1..=256).
pub fn bundle_path(n: u64, width: u64) -> String {
    debug_assert!((1..=TILE_WIDTH).contains(&width));
    with_width(format!("tile/entries/{}", index_path(n)), width)
}

/// Prefix under which the partial versions of bundle `n` live.
pub fn bundle_partial_prefix(n: u64) -> String {
    format!("tile/entries/{}.p/", index_path(n))
}

/// Path of a content-addressed blob.
pub fn blob_path(sha256_hex: &str) -> String {
    format!("tftrail/blobs/sha256/{sha256_hex}")
}

/// Prefix of every blob.
pub const BLOB_PREFIX: &str = "tftrail/blobs/sha256/";

/// Path of the batch claim for the batch that starts at tree size `start`.
pub fn batch_path(start: u64) -> String {
    format!("tftrail/batches/{}", index_path(start))
}

/// Width of the partial tile at `level` for a tree of `size` leaves (0: none).
pub fn partial_width(level: u8, size: u64) -> u64 {
    (size >> (8 * u32::from(level))) % TILE_WIDTH
}

/// What a path in the store is, as far as tftrail understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// The checkpoint.
    Checkpoint,
    /// A hash tile.
    Tile {
        /// Level.
        level: u8,
        /// Index.
        n: u64,
        /// Width (256 for a full tile).
        width: u64,
    },
    /// An entry bundle.
    Bundle {
        /// Index.
        n: u64,
        /// Width (256 for a full bundle).
        width: u64,
    },
    /// A blob.
    Blob {
        /// Hex SHA-256 from its name.
        sha256: String,
    },
    /// A batch claim.
    Batch {
        /// First index.
        start: u64,
    },
}

fn parse_index(parts: &[&str]) -> Option<u64> {
    let (last, rest) = parts.split_last()?;
    let mut n: u64 = 0;
    for p in rest {
        let d = p.strip_prefix('x')?;
        if d.len() != 3 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(d.parse().ok()?)?;
    }
    if last.len() != 3 || !last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = n.checked_mul(1000)?.checked_add(last.parse().ok()?)?;
    // Canonical form only: no leading x000 groups.
    if index_path(n) != parts.join("/") {
        return None;
    }
    Some(n)
}

fn parse_tile_tail(rest: &str) -> Option<(u64, u64)> {
    let (idx, width) = match rest.split_once(".p/") {
        Some((idx, w)) => {
            let w: u64 = w.parse().ok()?;
            if !(1..TILE_WIDTH).contains(&w) || w.to_string().len() != rest.len() - idx.len() - 3 {
                return None;
            }
            (idx, w)
        }
        None => (rest, TILE_WIDTH),
    };
    let parts: Vec<&str> = idx.split('/').collect();
    Some((parse_index(&parts)?, width))
}

/// Classifies a store path; `None` for anything tftrail does not write.
pub fn classify(path: &str) -> Option<ObjectKind> {
    if path == "checkpoint" {
        return Some(ObjectKind::Checkpoint);
    }
    if let Some(rest) = path.strip_prefix("tile/entries/") {
        let (n, width) = parse_tile_tail(rest)?;
        return Some(ObjectKind::Bundle { n, width });
    }
    if let Some(rest) = path.strip_prefix("tile/") {
        let (level, rest) = rest.split_once('/')?;
        let level: u8 = level.parse().ok()?;
        if level > 63 || level.to_string().len() != path[5..].find('/')? {
            return None;
        }
        let (n, width) = parse_tile_tail(rest)?;
        return Some(ObjectKind::Tile { level, n, width });
    }
    if let Some(hex) = path.strip_prefix(BLOB_PREFIX) {
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Some(ObjectKind::Blob {
                sha256: hex.to_string(),
            });
        }
        return None;
    }
    if let Some(rest) = path.strip_prefix("tftrail/batches/") {
        let parts: Vec<&str> = rest.split('/').collect();
        return Some(ObjectKind::Batch {
            start: parse_index(&parts)?,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp() {
        assert_eq!(index_path(5), "005");
        assert_eq!(index_path(1234067), "x001/x234/067");
        assert_eq!(index_path(1000), "x001/000");
        assert_eq!(tile_path(0, 273, 112), "tile/0/273.p/112");
        assert_eq!(tile_path(1, 1, 17), "tile/1/001.p/17");
        assert_eq!(tile_path(2, 0, 256), "tile/2/000");
        assert_eq!(bundle_path(1234067, 256), "tile/entries/x001/x234/067");
        assert_eq!(bundle_path(0, 3), "tile/entries/000.p/3");
    }

    #[test]
    fn partial_widths_for_70000() {
        assert_eq!(partial_width(0, 70_000), 112);
        assert_eq!(partial_width(1, 70_000), 17);
        assert_eq!(partial_width(2, 70_000), 1);
        assert_eq!(partial_width(3, 70_000), 0);
    }

    #[test]
    fn classify_roundtrip() {
        for (l, n, w) in [(0u8, 0u64, 256u64), (0, 273, 112), (3, 1234067, 5)] {
            assert_eq!(
                classify(&tile_path(l, n, w)),
                Some(ObjectKind::Tile {
                    level: l,
                    n,
                    width: w
                })
            );
        }
        assert_eq!(
            classify(&bundle_path(1001, 9)),
            Some(ObjectKind::Bundle { n: 1001, width: 9 })
        );
        assert_eq!(
            classify(&batch_path(70_000)),
            Some(ObjectKind::Batch { start: 70_000 })
        );
        for bad in [
            "tile/0/5",
            "tile/0/x000/005",
            "tile/00/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/07",
            "tile/entries/000.p/",
            "tftrail/blobs/sha256/XYZ",
            "other",
        ] {
            assert_eq!(classify(bad), None, "{bad}");
        }
    }
}
