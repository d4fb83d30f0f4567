//! Scrubbing: never panics, and no secret survives in what it outputs. Input: secrets and a
//! text, separated by NUL bytes (the last part is the text). Secrets are kept to characters
//! absent from the redaction marker, so a secret found in the output can only be one the
//! scrubber missed (it cannot be made by the marker and its neighbours).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tftrail_terraform::redact::{redact_by_tree, MIN_SCRUB_LEN};
use tftrail_terraform::{Scrubber, REDACTED};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts: Vec<&str> = text.split('\0').collect();
    let input = parts.pop().unwrap_or_default();
    let secrets: Vec<String> = parts
        .iter()
        .map(|s| s.chars().filter(|c| !REDACTED.contains(*c)).collect())
        .collect();
    let scrubber = Scrubber::new(&secrets);
    let checked: Vec<&String> = secrets
        .iter()
        .filter(|s| s.chars().count() >= MIN_SCRUB_LEN)
        .collect();
    let out = scrubber.scrub_str(input);
    let out_bytes = scrubber.scrub_bytes(input.as_bytes());
    assert_eq!(
        out.as_bytes(),
        out_bytes,
        "scrub_str and scrub_bytes differ"
    );
    let mut value = json!({ input: [input, {"k": input}], "n": 1 });
    scrubber.scrub_value(&mut value);
    let value_text: Vec<String> = strings(&value);
    for s in &checked {
        assert!(!out.contains(s.as_str()), "{s:?} survives in {out:?}");
        for v in &value_text {
            assert!(!v.contains(s.as_str()), "{s:?} survives in {v:?}");
        }
    }
    // Structural redaction with the input as a sensitivity tree, when it is JSON.
    if let Ok(sens) = serde_json::from_str::<Value>(input) {
        let mut found = Vec::new();
        let _ = redact_by_tree(&value, &sens, &mut found);
        let _ = redact_by_tree(&sens, &sens, &mut found);
    }
});

/// Every string in a value, object keys included.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.clone()).chain(strings(v)))
            .collect(),
        _ => Vec::new(),
    }
}
