//! Redaction must never leak: a generated plan whose every sensitive value holds a marker
//! (`tftrail_fuzz::PlanGen`: values under sensitivity trees, sensitive outputs and variables,
//! configuration literals, and copies of those secrets in unmarked places) is summarised, and
//! the marker must be absent from everything the summary outputs.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use tftrail_fuzz::{PlanGen, MARKER};
use tftrail_terraform::PlanSummary;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = PlanGen::new(&mut u).plan() else {
        return;
    };
    let input = serde_json::to_vec(&plan).expect("serialises");
    let p = PlanSummary::from_show_json(&input).expect("a generated plan is a plan");
    let outputs = [
        String::from_utf8_lossy(p.redacted_json()).into_owned(),
        serde_json::to_string(&p).expect("the summary serialises"),
    ];
    for out in outputs {
        if let Some(at) = out.find(MARKER) {
            panic!(
                "secret leaked at byte {at}: …{}…\nplan: {}\noutput: {out}",
                &out[at.saturating_sub(60)..(at + 40).min(out.len())],
                String::from_utf8_lossy(&input)
            );
        }
    }
});
