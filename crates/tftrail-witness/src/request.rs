//! The `add-checkpoint` request body (C2SP tlog-witness): `old <size>\n`, zero to 63 base64
//! consistency-proof lines, an empty line, then the signed checkpoint.

use tftrail_core::merkle::{parse_hash, Hash};

/// At most this many proof lines (the spec: a client MUST NOT send more than 63).
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct AddCheckpoint {
    /// The size of the previous checkpoint the client says the witness holds.
    pub old: u64,
    /// The consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as sent.
    pub checkpoint: Vec<u8>,
}

/// Parses a request body; the error says what is malformed (answered with 400).
pub fn parse(body: &[u8]) -> Result<AddCheckpoint, String> {
    let (first, mut rest) =
        split_line(body).ok_or("the body does not start with an `old <size>` line")?;
    let first = std::str::from_utf8(first).map_err(|_| "the old size line is not UTF-8")?;
    let digits = first
        .strip_prefix("old ")
        .ok_or("the first line must be `old <size>`")?;
    let old = parse_decimal(digits)
        .ok_or("the old size must be a decimal number without leading zeros")?;
    let mut proof = Vec::new();
    loop {
        let (line, next) = split_line(rest)
            .ok_or("the proof lines must be followed by an empty line, then the checkpoint")?;
        rest = next;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(format!(
                "more than {MAX_PROOF_LINES} consistency proof lines"
            ));
        }
        let line = std::str::from_utf8(line).map_err(|_| "a proof line is not UTF-8")?;
        let h = parse_hash(line).ok_or_else(|| {
            format!(
                "proof line {} is not a base64 32-byte hash",
                proof.len() + 1
            )
        })?;
        proof.push(h);
    }
    if rest.is_empty() {
        return Err("no checkpoint after the empty line".into());
    }
    Ok(AddCheckpoint {
        old,
        proof,
        checkpoint: rest.to_vec(),
    })
}

/// The line before the first `\n` and what follows it; `None` when there is no `\n`.
fn split_line(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == b'\n')?;
    Some((&b[..i], &b[i + 1..]))
}

/// A decimal without sign or leading zeros (`0` itself is fine).
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Encodes a request body (what a log sends).
pub fn encode(old: u64, proof: &[Hash], checkpoint: &[u8]) -> Vec<u8> {
    let mut out = format!("old {old}\n").into_bytes();
    for h in proof {
        out.extend_from_slice(tftrail_core::merkle::hash_b64(h).as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(checkpoint);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = tftrail_core::merkle::leaf_hash(b"a");
        let body = encode(5, &[h, h], b"origin\n6\nroot\n\n- sig\n");
        let r = parse(&body).unwrap();
        assert_eq!(r.old, 5);
        assert_eq!(r.proof, vec![h, h]);
        assert_eq!(r.checkpoint, b"origin\n6\nroot\n\n- sig\n");
        assert_eq!(parse(&encode(0, &[], b"x\n")).unwrap().old, 0);
    }

    #[test]
    fn refuses_malformed() {
        for (body, want) in [
            (&b""[..], "old"),
            (b"new 5\n\nx", "old <size>"),
            (b"old 05\n\nx", "leading zeros"),
            (b"old -1\n\nx", "decimal"),
            (b"old 1\n", "empty line"),
            (b"old 1\nAAAA\n\nx", "proof line 1"),
            (b"old 1\n\n", "no checkpoint"),
            (b"old 99999999999999999999\n\nx", "decimal"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(want), "{body:?}: {e}");
        }
        let h = tftrail_core::merkle::leaf_hash(b"a");
        let many = encode(1, &vec![h; 64], b"x\n");
        assert!(parse(&many).unwrap_err().contains("63"));
        assert!(parse(&encode(1, &vec![h; 63], b"x\n")).is_ok());
    }
}
