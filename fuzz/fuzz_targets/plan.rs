//! Plan JSON (`terraform show -json`): summarising and redacting never panics, on any bytes,
//! and scrubbing the result with its own secrets changes nothing the summary already hid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftrail_terraform::{PlanSummary, Scrubber};

fuzz_target!(|data: &[u8]| {
    if let Ok(mut p) = PlanSummary::from_show_json(data) {
        let _: serde_json::Value =
            serde_json::from_slice(p.redacted_json()).expect("the redacted plan is JSON");
        serde_json::to_vec(&p).expect("the summary serialises");
        let scrubber = Scrubber::new(p.secrets().to_vec());
        p.scrub_with(&scrubber);
    }
});
