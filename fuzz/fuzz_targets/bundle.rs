//! Entry bundles: decoding never panics, and what decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftrail_core::bundle;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = bundle::decode(data) {
        assert_eq!(bundle::encode(&entries), data);
        for e in &entries {
            assert!(e.len() <= tftrail_core::MAX_ENTRY_SIZE);
        }
    }
});
