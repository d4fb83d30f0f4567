//! Records: the single-pass decoder (`record::check_entry`, `RecordView::from_entry`, the
//! canonical-form scanner) against the reference path (serde_json, validation, canonical
//! re-encoding): both must accept the same entries, with the same record or the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tftrail_core::record::differential::check(data);
});
