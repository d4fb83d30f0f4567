//! Entry bundles: entries concatenated, each prefixed by its length as a big-endian u16.

use crate::MAX_ENTRY_SIZE;

/// Why a bundle could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed entry bundle: {0}")]
pub struct BundleError(pub String);

/// Appends one entry to bundle data. The caller guarantees `entry.len() <= MAX_ENTRY_SIZE`.
pub fn push(out: &mut Vec<u8>, entry: &[u8]) {
    assert!(
        entry.len() <= MAX_ENTRY_SIZE,
        "entry too large for a bundle"
    );
    out.extend_from_slice(&(entry.len() as u16).to_be_bytes());
    out.extend_from_slice(entry);
}

/// Encodes entries as a bundle.
pub fn encode<E: AsRef<[u8]>>(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.as_ref().len() + 2).sum());
    for e in entries {
        push(&mut out, e.as_ref());
    }
    out
}

/// Splits bundle data into its entries (borrowed).
pub fn decode(data: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(BundleError(format!(
                "truncated length prefix after {} entries",
                out.len()
            )));
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() - 2 < len {
            return Err(BundleError(format!(
                "entry {} claims {len} bytes but only {} remain",
                out.len(),
                rest.len() - 2
            )));
        }
        out.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let entries: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![], vec![7; 65_535]];
        let data = encode(&entries);
        let back = decode(&data).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].len(), 65_535);
        assert!(decode(&data[..data.len() - 1]).is_err());
        assert!(decode(&[0]).is_err());
    }
}
