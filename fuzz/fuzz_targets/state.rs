//! State JSON: parsing, fingerprints, secrets and diffs never panic, and the fingerprint and
//! the diffs (with values, as the state backend records them) hold no value the state marks
//! sensitive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftrail_terraform::state::{diff_opt, diff_values};
use tftrail_terraform::StateSnapshot;

fuzz_target!(|data: &[u8]| {
    // Two states in one input, split at the first NUL: before and after.
    let (a, b) = match data.iter().position(|&c| c == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let before = StateSnapshot::from_state_json(a).ok();
    let after = StateSnapshot::from_state_json(b).ok();
    let d = diff_opt(before.as_ref(), after.as_ref());
    let diff = serde_json::to_string(&d).expect("the diff serialises");
    let values = serde_json::to_string(&diff_values(before.as_ref(), after.as_ref()))
        .expect("the diff with values serialises");
    for s in [&before, &after].into_iter().flatten() {
        let _ = s.addresses().count();
        let fp = s.fingerprint().to_string();
        let secrets = s.secrets();
        // Long, distinctive secrets only: short ones (`1`, `true`) can match for other reasons.
        for secret in secrets.iter().filter(|x| x.len() >= 12 && x.contains('Z')) {
            assert!(
                !fp.contains(secret.as_str()),
                "fingerprint leaks {secret:?}"
            );
            assert!(
                !values.contains(secret.as_str()),
                "the diff with values leaks {secret:?}"
            );
        }
    }
    let _ = diff;
});
