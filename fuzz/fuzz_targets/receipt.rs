//! Receipts: parsing and verifying never panic; a parsed receipt re-encodes to the same bytes;
//! and with its checkpoint's body signed by the log's fixed key (the fuzzer cannot forge a
//! signature) verification reaches the inclusion proof, and what verifies is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftrail_core::merkle::{check_inclusion, leaf_hash};
use tftrail_core::receipt::Receipt;

fuzz_target!(|data: &[u8]| {
    let key = tftrail_fuzz::verifier();
    let Ok(r) = Receipt::parse(data) else {
        return;
    };
    assert_eq!(r.encode(), data, "a parsed receipt re-encodes differently");
    let _ = r.verify(&key, None);
    let _ = r.verify(&key, Some(b"other entry"));
    // The checkpoint part up to its first empty line, as the body of a note the log signed.
    let body_len = r
        .checkpoint
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(r.checkpoint.len(), |i| i + 1);
    let Some(note) = tftrail_fuzz::sign(&r.checkpoint[..body_len]) else {
        return;
    };
    let signed = Receipt {
        checkpoint: note,
        ..r.clone()
    };
    let again = Receipt::parse(&signed.encode()).expect("an encoded receipt parses");
    assert_eq!(again, signed);
    if let Ok((c, entry)) = signed.verify(&key, None) {
        assert_eq!(Some(&entry), r.entry.as_ref());
        assert!(signed.index < c.size);
        check_inclusion(
            &signed.proof,
            c.size,
            c.root,
            signed.index,
            leaf_hash(&entry),
        )
        .expect("verified means the proof checks");
    }
});
