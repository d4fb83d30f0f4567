//! Checkpoint bodies and signed notes: parsing never panics, a parsed body re-encodes to a body
//! that parses to the same checkpoint, and a note the fixed key signs opens to its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftrail_core::checkpoint::{Checkpoint, SigningKey, VerifierKey};

fuzz_target!(|data: &[u8]| {
    let key = tftrail_fuzz::verifier();
    // Outside bytes as they come: a checkpoint object, a note, key files.
    if let Ok(c) = Checkpoint::parse_body(data) {
        let again = Checkpoint::parse_body(&c.body()).expect("an encoded body parses");
        assert_eq!(again, c);
    }
    let opened = key.open_note(data);
    let checkpoint = key.open_checkpoint(data);
    assert!(opened.is_ok() || checkpoint.is_err());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = VerifierKey::parse(text);
        let _ = SigningKey::parse(text);
    }
    // The same bytes as the text of a note the log's key signed: past the signature check.
    if let Some(note) = tftrail_fuzz::sign(data) {
        assert_eq!(key.open_note(&note).expect("own signature verifies"), data);
        match (key.open_checkpoint(&note), Checkpoint::parse_body(data)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Ok(a), Err(e)) => panic!("opened {a:?} but the body does not parse: {e}"),
            (Err(_), _) => {}
        }
    }
});
