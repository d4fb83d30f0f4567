//! Batch claims: decoding never panics, whether the bytes come as they are or as a header the
//! log's key signed (the fuzzer cannot forge a signature); a claim that decodes re-encodes to
//! a claim that decodes to the same batch, and its bundle spans cover it exactly once.
//!
//! Input: one flags byte, then the claim (header text, NUL, body). Flags: bit 0 signs the
//! header with the fixed key, bit 1 first replaces the header's last line with the body's
//! real digest.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tftrail_core::batch::{self, Claimed};

const PATH: &str = "tftrail/batches/fuzz";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, claim)) = data.split_first() else {
        return;
    };
    let key = tftrail_fuzz::verifier();
    let nul = claim.iter().position(|&b| b == 0).unwrap_or(claim.len());
    let (header, body) = (&claim[..nul], claim.get(nul + 1..).unwrap_or_default());
    let text = String::from_utf8_lossy(header);
    let start = text
        .lines()
        .nth(2)
        .and_then(|l| l.parse::<u64>().ok())
        .unwrap_or(0);
    let _ = batch::decode(&key, PATH, start, claim);
    if flags & 1 == 0 {
        return;
    }
    let mut text = text.into_owned();
    if flags & 2 != 0 {
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
        let mut lines: Vec<&str> = text.lines().collect();
        lines.pop();
        lines.push(&digest);
        text = lines.join("\n") + "\n";
    }
    let Some(note) = tftrail_fuzz::sign(text.as_bytes()) else {
        return;
    };
    let mut signed = note;
    signed.push(0);
    signed.extend_from_slice(body);
    let Ok(b) = batch::decode(&key, PATH, start, &signed) else {
        return;
    };
    assert_eq!(b.start, start);
    assert!(b.count() > 0);
    let sk = tftrail_fuzz::signing_key();
    let again = match &b.claimed {
        Claimed::Entries(entries) => batch::encode(&sk, start, entries),
        Claimed::LeafHashes { stage, hashes } => batch::encode_hashes(&sk, start, stage, hashes),
    };
    let decoded = batch::decode(&key, PATH, start, &again).expect("a re-encoded claim decodes");
    assert_eq!(decoded, b);
    let spans = batch::bundle_spans(b.start, b.count());
    let covered: u64 = spans.iter().map(|s| (s.width - s.skip) as u64).sum();
    assert_eq!(covered, b.count());
});
