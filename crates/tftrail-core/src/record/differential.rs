//! The differential check behind the equivalence tests (`equivalence.rs`) and the `record`
//! fuzz target (`fuzz/fuzz_targets/record.rs`, through the `fuzzing` feature): the single-pass
//! decoder against the reference decoder ([`decode_reference`]: parse with serde_json,
//! validate, re-encode with serde_json_canonicalizer, compare). Every input must get the same
//! verdict from both and from every public decoder: the same record, or the same error
//! (variant and message). Not part of the API.

use serde_json::Value;

use super::*;

fn variant(r: &Result<Record, RecordError>) -> &'static str {
    match r {
        Ok(_) => "Ok",
        Err(e) => error_variant(e),
    }
}

fn error_variant(e: &RecordError) -> &'static str {
    match e {
        RecordError::BadKind(_) => "BadKind",
        RecordError::BadTime(_) => "BadTime",
        RecordError::PayloadNotObject(_) => "PayloadNotObject",
        RecordError::AuthenticatedNotObject(_) => "AuthenticatedNotObject",
        RecordError::TooLarge(_) => "TooLarge",
        RecordError::Malformed(_) => "Malformed",
        RecordError::NotCanonical => "NotCanonical",
        RecordError::UnknownVersion(_) => "UnknownVersion",
        RecordError::BadBlob(_) => "BadBlob",
        RecordError::TooDeep { .. } => "TooDeep",
    }
}

/// Checks one input against the reference, panicking on any disagreement; returns the
/// reference's verdict (`"Ok"` or the error variant).
pub fn check(input: &[u8]) -> &'static str {
    let want = decode_reference(input);
    let show = || String::from_utf8_lossy(input).into_owned();
    // The single pass alone: accepts exactly what the reference accepts.
    let fast = decode_fast(input);
    assert_eq!(
        fast.is_ok(),
        want.is_ok(),
        "single pass says {:?}, reference says {:?}, for {:?}",
        fast.as_ref().map(|_| ()),
        want.as_ref().map(|_| ()),
        show()
    );
    // The public decoders: the same record, or the same error.
    let got = Record::from_entry(input);
    match (&got, &want) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{:?}", show()),
        (Err(a), Err(b)) => assert_eq!(
            (variant(&got), a.to_string()),
            (variant(&want), b.to_string()),
            "{:?}",
            show()
        ),
        _ => panic!("from_entry {got:?}, reference {want:?}, for {:?}", show()),
    }
    let view = RecordView::from_entry(input);
    match (&view, &want) {
        (Ok(v), Ok(r)) => {
            assert_eq!(v.kind, r.kind);
            assert_eq!(v.time, r.time);
            assert_eq!(v.actor.user, r.actor.user);
            assert_eq!(v.actor.host, r.actor.host);
            let canon = |v: &Value| serde_json_canonicalizer::to_string(v).unwrap();
            assert_eq!(
                v.actor.ci.as_deref(),
                r.actor.ci.as_ref().map(canon).as_deref()
            );
            assert_eq!(
                v.actor.authenticated.as_deref(),
                r.actor.authenticated.as_ref().map(canon).as_deref()
            );
            assert_eq!(v.payload(), canon(&r.payload));
            assert_eq!(v.blob_refs(), r.blobs);
            // Borrowed from the entry wherever no escape had to be decoded.
            assert!(matches!(v.payload, Cow::Borrowed(_)));
            assert!(matches!(v.kind, Cow::Borrowed(_)));
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{:?}", show()),
        _ => panic!("view {view:?}, reference {want:?}, for {:?}", show()),
    }
    // What verification uses: the same verdict, the blob references or the same error.
    let checked = check_entry(input);
    match (&checked, &want) {
        (Ok(blobs), Ok(r)) => assert_eq!(blobs, &r.blobs, "{:?}", show()),
        (Err(a), Err(b)) => assert_eq!(
            (error_variant(a), a.to_string()),
            (variant(&want), b.to_string()),
            "{:?}",
            show()
        ),
        _ => panic!(
            "check_entry {checked:?}, reference {want:?}, for {:?}",
            show()
        ),
    }
    variant(&want)
}
