//! Offline receipts in the C2SP tlog-proof format.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the entry>
//! index <N>
//! <base64 proof hash>…
//!
//! <signed checkpoint>
//! ```
//! tftrail puts the entry itself in the `extra` line, so the receipt alone proves what was
//! logged; `verify-receipt --entry FILE` can still check a separately kept copy.

use base64::Engine;

use crate::checkpoint::{Checkpoint, CheckpointError, VerifierKey};
use crate::merkle::{check_inclusion, hash_b64, leaf_hash, parse_hash, Hash};

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Why a receipt does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// It does not parse.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// Its checkpoint does not verify.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The entry is missing.
    #[error("the receipt carries no entry; pass the entry with --entry")]
    NoEntry,
    /// The entry given does not match the one in the receipt.
    #[error("the entry given does not match the entry in the receipt")]
    EntryMismatch,
    /// The inclusion proof fails.
    #[error(
        "inclusion proof for index {index} does not match the checkpoint (size {size}): {reason}"
    )]
    Proof {
        /// Index.
        index: u64,
        /// Tree size.
        size: u64,
        /// What failed.
        reason: String,
    },
}

/// A receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// Entry index.
    pub index: u64,
    /// Inclusion proof, leaf to root.
    pub proof: Vec<Hash>,
    /// The entry, when carried.
    pub entry: Option<Vec<u8>>,
    /// The signed checkpoint.
    pub checkpoint: Vec<u8>,
}

impl Receipt {
    /// Encodes the receipt.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("{HEADER}\n");
        if let Some(e) = &self.entry {
            s.push_str(&format!(
                "extra {}\n",
                base64::engine::general_purpose::STANDARD.encode(e)
            ));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            s.push_str(&hash_b64(h));
            s.push('\n');
        }
        s.push('\n');
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Parses a receipt.
    pub fn parse(data: &[u8]) -> Result<Self, ReceiptError> {
        let m = |s: &str| ReceiptError::Malformed(s.to_string());
        let text = std::str::from_utf8(data).map_err(|_| m("not UTF-8"))?;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| m("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(m("first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut entry = None;
        let mut index = None;
        let mut proof = Vec::new();
        for line in lines {
            if let Some(x) = line.strip_prefix("extra ") {
                if index.is_some() || entry.is_some() {
                    return Err(m("misplaced extra line"));
                }
                entry = Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(x)
                        .map_err(|_| m("extra is not base64"))?,
                );
            } else if let Some(i) = line.strip_prefix("index ") {
                if index.is_some() {
                    return Err(m("two index lines"));
                }
                // Decimal digits only, no leading zero: one text per receipt (`u64::parse`
                // alone would also take `+2`).
                if i.is_empty()
                    || !i.bytes().all(|b| b.is_ascii_digit())
                    || (i.len() > 1 && i.starts_with('0'))
                {
                    return Err(m("bad index"));
                }
                index = Some(i.parse::<u64>().map_err(|_| m("bad index"))?);
            } else {
                if index.is_none() {
                    return Err(m("proof hash before the index line"));
                }
                proof.push(parse_hash(line).ok_or_else(|| m("bad proof hash"))?);
            }
        }
        Ok(Receipt {
            index: index.ok_or_else(|| m("no index line"))?,
            proof,
            entry,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }

    /// Verifies the receipt with nothing but the trusted key (and optionally the entry kept
    /// elsewhere). Returns the checkpoint and the entry that is proven.
    pub fn verify(
        &self,
        key: &VerifierKey,
        entry: Option<&[u8]>,
    ) -> Result<(Checkpoint, Vec<u8>), ReceiptError> {
        let c = key.open_checkpoint(&self.checkpoint)?;
        let entry = match (entry, &self.entry) {
            (Some(given), Some(carried)) if given != carried.as_slice() => {
                return Err(ReceiptError::EntryMismatch)
            }
            (Some(given), _) => given.to_vec(),
            (None, Some(carried)) => carried.clone(),
            (None, None) => return Err(ReceiptError::NoEntry),
        };
        check_inclusion(&self.proof, c.size, c.root, self.index, leaf_hash(&entry)).map_err(
            |e| ReceiptError::Proof {
                index: self.index,
                size: c.size,
                reason: e.to_string(),
            },
        )?;
        Ok((c, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(index_line: &str) -> Vec<u8> {
        format!("{HEADER}\nextra eA==\n{index_line}\n\nfuzz.example/log\n1\nroot\n").into_bytes()
    }

    #[test]
    fn index_is_plain_decimal() {
        // Found by the receipt fuzz target: `index +2` parsed as 2, so two texts gave the
        // same receipt (and it re-encoded differently).
        for bad in [
            "index +2", "index -0", "index 02", "index ", "index 2 ", "index ٢",
        ] {
            let e = Receipt::parse(&receipt(bad)).unwrap_err();
            assert!(e.to_string().contains("bad index"), "{bad:?}: {e}");
        }
        let r = Receipt::parse(&receipt("index 2")).unwrap();
        assert_eq!(r.index, 2);
        assert_eq!(r.encode(), receipt("index 2"));
    }
}
