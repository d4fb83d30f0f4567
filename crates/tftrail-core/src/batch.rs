//! Batch claims: the sequencing step of an append.
//!
//! Before any tile or bundle of a batch gets its name, the writer creates the claim
//! `tftrail/batches/<start>` (create-only). Whoever creates it owns tree positions
//! `start..start+count`, and anyone can finish integrating a claimed batch after a crash,
//! producing byte-identical tiles. A claim is signed with the log key so that nobody without
//! the key can slip entries into the log through a forged claim.
//!
//! Two forms, both signed notes followed by one NUL byte and a body:
//! - **v1, entries** (stores that cannot stage, i.e. object storage): the text is
//!   `tftrail-batch/v1\n<origin>\n<start>\n<count>\n<base64 SHA-256 of the body>\n` and the
//!   body is the entries encoded as an entry bundle.
//! - **v2, leaf hashes** (the local store): the text is
//!   `tftrail-batch/v2\n<origin>\n<start>\n<count>\n<stage>\n<base64 SHA-256 of the body>\n`
//!   and the body is the entries' RFC 6962 leaf hashes, 32 bytes each. The entries themselves
//!   are in the batch's entry bundles, which the writer made durable under the staging name
//!   `<stage>` before creating the claim; a recovering writer finds each bundle at its own path
//!   or staged, and checks its entries against the signed hashes ([`entries_from_bundles`]).
//!   The claim is then ~3 % of the batch's bytes instead of a second copy of them.

use sha2::{Digest, Sha256};

use crate::bundle;
use crate::checkpoint::{SigningKey, VerifierKey};
use crate::layout::bundle_path;
use crate::merkle::{hash_b64, leaf_hash, parse_hash, Hash};
use crate::TILE_WIDTH;

const MAGIC_V1: &str = "tftrail-batch/v1";
const MAGIC_V2: &str = "tftrail-batch/v2";
/// Longest staging name a claim may carry.
const MAX_STAGE: usize = 64;

/// Why a claim is unusable.
#[derive(Debug, thiserror::Error)]
#[error("batch claim {path}: {reason}")]
pub struct BatchError {
    /// The claim's path.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// What a claim holds besides its position.
#[derive(Debug, Clone, PartialEq)]
pub enum Claimed {
    /// The entries, in order (v1).
    Entries(Vec<Vec<u8>>),
    /// The entries' leaf hashes, in order, and the staging name of their bundles (v2).
    LeafHashes {
        /// Staging name under which the writer stored the batch's bundles.
        stage: String,
        /// One per entry.
        hashes: Vec<Hash>,
    },
}

/// A decoded, verified claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// First tree index.
    pub start: u64,
    /// What the claim carries.
    pub claimed: Claimed,
}

impl Batch {
    /// Number of entries claimed.
    pub fn count(&self) -> u64 {
        match &self.claimed {
            Claimed::Entries(e) => e.len() as u64,
            Claimed::LeafHashes { hashes, .. } => hashes.len() as u64,
        }
    }
}

/// Whether `stage` can name a staging area: 1 to 64 characters of `[0-9a-z-]`.
pub fn valid_stage(stage: &str) -> bool {
    !stage.is_empty()
        && stage.len() <= MAX_STAGE
        && stage
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-')
}

fn sign(key: &SigningKey, text: String, body: &[u8]) -> Vec<u8> {
    let mut out = key.sign_note(text.as_bytes());
    out.reserve(1 + body.len());
    out.push(0);
    out.extend_from_slice(body);
    out
}

/// Encodes and signs a v1 claim, which carries the entries.
pub fn encode(key: &SigningKey, start: u64, entries: &[Vec<u8>]) -> Vec<u8> {
    let data = bundle::encode(entries);
    let digest = Hash(Sha256::digest(&data).into());
    let text = format!(
        "{MAGIC_V1}\n{}\n{start}\n{}\n{}\n",
        key.name(),
        entries.len(),
        hash_b64(&digest)
    );
    sign(key, text, &data)
}

/// Encodes and signs a v2 claim, which carries the entries' leaf hashes and the staging name
/// of their bundles. Panics when `stage` is not [`valid_stage`] or `hashes` is empty.
pub fn encode_hashes(key: &SigningKey, start: u64, stage: &str, hashes: &[Hash]) -> Vec<u8> {
    assert!(valid_stage(stage), "invalid staging name {stage:?}");
    assert!(!hashes.is_empty(), "a claim holds at least one entry");
    let mut body = Vec::with_capacity(32 * hashes.len());
    for h in hashes {
        body.extend_from_slice(&h.0);
    }
    let digest = Hash(Sha256::digest(&body).into());
    let text = format!(
        "{MAGIC_V2}\n{}\n{start}\n{}\n{stage}\n{}\n",
        key.name(),
        hashes.len(),
        hash_b64(&digest)
    );
    sign(key, text, &body)
}

/// Verifies and decodes a claim (either form) read from `path`, which must start at `start`.
pub fn decode(
    key: &VerifierKey,
    path: &str,
    start: u64,
    bytes: &[u8],
) -> Result<Batch, BatchError> {
    let err = |reason: String| BatchError {
        path: path.to_string(),
        reason,
    };
    let nul = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| err("no header separator".into()))?;
    let text = key
        .open_note(&bytes[..nul])
        .map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8(text).map_err(|_| err("header is not UTF-8".into()))?;
    let lines: Vec<&str> = text.lines().collect();
    let v2 = match lines.first().copied() {
        Some(MAGIC_V1) if lines.len() == 5 => false,
        Some(MAGIC_V2) if lines.len() == 6 => true,
        _ => return Err(err("unknown header format".into())),
    };
    if lines[1] != key.name() {
        return Err(err(format!("claim is for log {:?}", lines[1])));
    }
    let claimed_start: u64 = lines[2].parse().map_err(|_| err("bad start".into()))?;
    if claimed_start != start {
        return Err(err(format!("claim says it starts at {claimed_start}")));
    }
    let count: usize = lines[3].parse().map_err(|_| err("bad count".into()))?;
    if count == 0 {
        return Err(err("claims no entries".into()));
    }
    if start.checked_add(count as u64).is_none() {
        return Err(err(format!(
            "claims {count} entries from {start}, past the largest tree size"
        )));
    }
    let digest = parse_hash(lines[lines.len() - 1]).ok_or_else(|| err("bad digest".into()))?;
    let data = &bytes[nul + 1..];
    if Hash(Sha256::digest(data).into()) != digest {
        return Err(err("body does not match the signed digest".into()));
    }
    let claimed = if v2 {
        let stage = lines[4];
        if !valid_stage(stage) {
            return Err(err(format!("bad staging name {stage:?}")));
        }
        if data.len() != 32 * count {
            return Err(err(format!(
                "holds {} bytes of leaf hashes, header says {count} entries",
                data.len()
            )));
        }
        Claimed::LeafHashes {
            stage: stage.to_string(),
            hashes: data
                .chunks_exact(32)
                .map(|c| Hash(c.try_into().expect("32 bytes")))
                .collect(),
        }
    } else {
        let entries = bundle::decode(data).map_err(|e| err(e.to_string()))?;
        if entries.len() != count {
            return Err(err(format!(
                "holds {} entries, header says {count}",
                entries.len()
            )));
        }
        Claimed::Entries(entries.into_iter().map(|e| e.to_vec()).collect())
    };
    Ok(Batch { start, claimed })
}

/// One entry bundle that holds entries of a batch, as the batch left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSpan {
    /// The bundle object's path (full, or the partial width the batch ends at).
    pub path: String,
    /// Entries of earlier batches at the start of this bundle.
    pub skip: usize,
    /// Entries in the bundle object.
    pub width: usize,
}

/// The entry bundles a batch of `count` entries starting at `start` writes, in order: together
/// they hold every entry of the batch exactly once.
pub fn bundle_spans(start: u64, count: u64) -> Vec<BundleSpan> {
    let end = start + count;
    if count == 0 {
        return Vec::new();
    }
    (start / TILE_WIDTH..=(end - 1) / TILE_WIDTH)
        .map(|n| {
            let width = (end - n * TILE_WIDTH).min(TILE_WIDTH);
            BundleSpan {
                path: bundle_path(n, width),
                skip: start.saturating_sub(n * TILE_WIDTH) as usize,
                width: width as usize,
            }
        })
        .collect()
}

/// The entries of a v2 claim, taken from the bundles of [`bundle_spans`]: `bundle(span)` returns
/// the bytes of that bundle (from its path or from staging), `None` when it is in neither. Each
/// entry must match the claim's leaf hash. (Only the batch's own entries are checked and
/// returned: a recovering writer rebuilds the bundles from its own copy of earlier entries.)
pub fn entries_from_bundles(
    claim_path: &str,
    start: u64,
    hashes: &[Hash],
    mut bundle: impl FnMut(&BundleSpan) -> Option<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, BatchError> {
    let err = |reason: String| BatchError {
        path: claim_path.to_string(),
        reason,
    };
    let mut entries = Vec::with_capacity(hashes.len());
    for span in bundle_spans(start, hashes.len() as u64) {
        let data = bundle(&span).ok_or_else(|| {
            err(format!(
                "entry bundle {} is neither stored nor staged",
                span.path
            ))
        })?;
        let decoded =
            bundle::decode(&data).map_err(|e| err(format!("entry bundle {}: {e}", span.path)))?;
        if decoded.len() != span.width {
            return Err(err(format!(
                "entry bundle {} holds {} entries, not {}",
                span.path,
                decoded.len(),
                span.width
            )));
        }
        for e in &decoded[span.skip..] {
            let i = entries.len();
            if leaf_hash(e) != hashes[i] {
                return Err(err(format!(
                    "entry {} in bundle {} does not match the claim's leaf hash",
                    start + i as u64,
                    span.path
                )));
            }
            entries.push(e.to_vec());
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Origin;
    use crate::integrate::Integrator;
    use std::collections::BTreeMap;

    fn new_key() -> SigningKey {
        SigningKey::generate(&Origin::new("t/log").unwrap())
    }

    #[test]
    fn roundtrip_and_forgery() {
        let key = new_key();
        let entries = vec![b"one".to_vec(), b"two".to_vec()];
        let bytes = encode(&key, 42, &entries);
        let b = decode(&key.verifier(), "p", 42, &bytes).unwrap();
        assert_eq!(b.claimed, Claimed::Entries(entries));
        assert_eq!(b.count(), 2);
        assert!(decode(&key.verifier(), "p", 41, &bytes).is_err());
        let mut tampered = bytes.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(decode(&key.verifier(), "p", 42, &tampered).is_err());
        assert!(decode(&new_key().verifier(), "p", 42, &bytes).is_err());
    }

    #[test]
    fn claims_past_the_largest_tree_size_are_refused() {
        // Signed and well-formed, but start + count overflows: bundle_spans (recovery) would
        // overflow on it, so decode refuses it with a clear reason.
        let key = new_key();
        let bytes = encode(&key, u64::MAX, &[b"one".to_vec()]);
        let e = decode(&key.verifier(), "p", u64::MAX, &bytes).unwrap_err();
        assert!(e.reason.contains("past the largest tree size"), "{e}");
        let hashes = [leaf_hash(b"a"), leaf_hash(b"b")];
        let bytes = encode_hashes(&key, u64::MAX - 1, "s", &hashes);
        assert!(decode(&key.verifier(), "p", u64::MAX - 1, &bytes).is_err());
        // The last position that fits is fine.
        let bytes = encode_hashes(&key, u64::MAX - 2, "s", &hashes);
        let b = decode(&key.verifier(), "p", u64::MAX - 2, &bytes).unwrap();
        assert_eq!(b.count(), 2);
    }

    #[test]
    fn hash_claims_roundtrip_and_refuse_tampering() {
        let key = new_key();
        let hashes: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let bytes = encode_hashes(&key, 7, "1a2b-3c", &hashes);
        assert!(bytes.len() < 32 * 300 + 400, "{} bytes", bytes.len());
        let b = decode(&key.verifier(), "p", 7, &bytes).unwrap();
        assert_eq!(
            b.claimed,
            Claimed::LeafHashes {
                stage: "1a2b-3c".into(),
                hashes: hashes.clone()
            }
        );
        assert_eq!(b.count(), 300);
        assert!(decode(&key.verifier(), "p", 8, &bytes).is_err());
        let mut tampered = bytes.clone();
        let n = tampered.len();
        tampered[n - 40] ^= 1;
        let e = decode(&key.verifier(), "p", 7, &tampered).unwrap_err();
        assert!(e.reason.contains("digest"), "{e}");
        // A truncated body does not match the digest either.
        assert!(decode(&key.verifier(), "p", 7, &bytes[..n - 32]).is_err());
        assert!(decode(&new_key().verifier(), "p", 7, &bytes).is_err());
        for bad in ["", "UPPER", "a/b", "../x", &"x".repeat(65)] {
            assert!(!valid_stage(bad), "{bad:?}");
        }
    }

    #[test]
    fn spans_cover_each_entry_once_and_match_integration() {
        // The spans must name exactly the bundles integration writes, so that a recovering
        // writer finds every entry of the batch.
        let mut it = Integrator::empty();
        let mut n = 0u32;
        for count in [1u64, 255, 1, 256, 300, 1000, 2, 254] {
            let start = it.size();
            let entries: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    n += 1;
                    format!("e{n}").into_bytes()
                })
                .collect();
            let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
            let written: BTreeMap<String, Vec<u8>> = it
                .integrate(&entries)
                .objects
                .into_iter()
                .filter(|(p, _)| p.starts_with("tile/entries/"))
                .collect();
            let spans = bundle_spans(start, count);
            let paths: Vec<&String> = written.keys().collect();
            let mut span_paths: Vec<&String> = spans.iter().map(|s| &s.path).collect();
            span_paths.sort();
            assert_eq!(span_paths, paths, "batch at {start} of {count}");
            let got = entries_from_bundles("c", start, &hashes, |s| written.get(&s.path).cloned())
                .unwrap();
            assert_eq!(got, entries);
            // A missing bundle, or one with another entry, is named.
            let e = entries_from_bundles("c", start, &hashes, |s| {
                (s.path != spans[0].path).then(|| written[&s.path].clone())
            })
            .unwrap_err();
            assert!(e.reason.contains(&spans[0].path), "{e}");
            let mut wrong = hashes.clone();
            wrong[count as usize - 1] = leaf_hash(b"other");
            let e = entries_from_bundles("c", start, &wrong, |s| written.get(&s.path).cloned())
                .unwrap_err();
            assert!(e.reason.contains("does not match"), "{e}");
        }
    }
}
