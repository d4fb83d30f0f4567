//! Batch claims: the sequencing step of an append.
//!
//! Before any tile or bundle of a batch is written, the writer creates the claim
//! `tftrail/batches/<start>` (create-only). Whoever creates it owns tree positions
//! `start..start+count`; because the claim holds the entries, anyone can finish integrating it
//! after a crash, producing byte-identical tiles. A claim is signed with the log key so that
//! nobody without the key can slip entries into the log through a forged claim.
//!
//! Object format: a signed note whose text is
//! `tftrail-batch/v1\n<origin>\n<start>\n<count>\n<base64 SHA-256 of the bundle>\n`, one NUL
//! byte, then the entries encoded as an entry bundle.

use sha2::{Digest, Sha256};

use crate::bundle;
use crate::checkpoint::{SigningKey, VerifierKey};
use crate::merkle::{hash_b64, parse_hash, Hash};

const MAGIC: &str = "tftrail-batch/v1";

/// Why a claim is unusable.
#[derive(Debug, thiserror::Error)]
#[error("batch claim {path}: {reason}")]
pub struct BatchError {
    /// The claim's path.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// A decoded, verified claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// First tree index.
    pub start: u64,
    /// The entries, in order.
    pub entries: Vec<Vec<u8>>,
}

/// Encodes and signs a claim.
pub fn encode(key: &SigningKey, start: u64, entries: &[Vec<u8>]) -> Vec<u8> {
    let data = bundle::encode(entries);
    let digest = Hash(Sha256::digest(&data).into());
    let text = format!(
        "{MAGIC}\n{}\n{start}\n{}\n{}\n",
        key.name(),
        entries.len(),
        hash_b64(&digest)
    );
    let mut out = key.sign_note(text.as_bytes());
    out.push(0);
    out.extend_from_slice(&data);
    out
}

/// Verifies and decodes a claim read from `path`, which must start at `start`.
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
    if lines.len() != 5 || lines[0] != MAGIC {
        return Err(err("unknown header format".into()));
    }
    if lines[1] != key.name() {
        return Err(err(format!("claim is for log {:?}", lines[1])));
    }
    let claimed_start: u64 = lines[2].parse().map_err(|_| err("bad start".into()))?;
    if claimed_start != start {
        return Err(err(format!("claim says it starts at {claimed_start}")));
    }
    let count: usize = lines[3].parse().map_err(|_| err("bad count".into()))?;
    let digest = parse_hash(lines[4]).ok_or_else(|| err("bad digest".into()))?;
    let data = &bytes[nul + 1..];
    if Hash(Sha256::digest(data).into()) != digest {
        return Err(err("entries do not match the signed digest".into()));
    }
    let entries = bundle::decode(data).map_err(|e| err(e.to_string()))?;
    if entries.len() != count || count == 0 {
        return Err(err(format!(
            "holds {} entries, header says {count}",
            entries.len()
        )));
    }
    Ok(Batch {
        start,
        entries: entries.into_iter().map(|e| e.to_vec()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Origin;

    #[test]
    fn roundtrip_and_forgery() {
        let key = SigningKey::generate(&Origin::new("t/log").unwrap());
        let entries = vec![b"one".to_vec(), b"two".to_vec()];
        let bytes = encode(&key, 42, &entries);
        let b = decode(&key.verifier(), "p", 42, &bytes).unwrap();
        assert_eq!(b.entries, entries);
        assert!(decode(&key.verifier(), "p", 41, &bytes).is_err());
        let mut tampered = bytes.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(decode(&key.verifier(), "p", 42, &tampered).is_err());
        let other = SigningKey::generate(&Origin::new("t/log").unwrap());
        assert!(decode(&other.verifier(), "p", 42, &bytes).is_err());
    }
}
