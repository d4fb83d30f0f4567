//! Values in records: truncation of large values (the whole kept in a blob), and the
//! redacted attribute values of a whole state that `check-state` compares against
//! (docs/decisions/0011-values.md).

use serde_json::{json, Value};
use sha2::Digest;

use crate::redact::{changed_step_paths, format_path, value_at, REDACTED};
use crate::state::{AttributeValue, InstanceValues, OutputValue};

/// A string value longer than this many bytes is truncated in a record.
pub const MAX_STRING: usize = 256;
/// What a truncated string keeps of its beginning, in bytes (at most; cut at a character).
pub const KEEP: usize = 64;
/// A composite value (object, list) whose compact JSON is longer than this many bytes, after
/// its strings were truncated, is replaced as a whole.
pub const MAX_JSON: usize = 2048;
/// What a plan shows for a value Terraform knows only after the apply.
pub const UNKNOWN: &str = "(known after apply)";
/// Name of the blob with the whole diff of a record whose values were truncated.
pub const FULL_DIFF_BLOB: &str = "state-diff-full.json";
/// Name of the blob with the redacted values of the whole state after a run.
pub const STATE_VALUES_BLOB: &str = "state-values.json";
/// The words every truncation marker holds.
pub const TRUNCATED: &str = "…(truncated, sha256 ";

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// The marker of a truncated string: its first [`KEEP`] bytes, then
/// `…(truncated, sha256 HEX, N bytes)`, the SHA-256 and length of the whole string (UTF-8).
pub fn truncated_string(s: &str) -> String {
    let mut cut = KEEP.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}{TRUNCATED}{}, {} bytes)",
        &s[..cut],
        sha256_hex(s.as_bytes()),
        s.len()
    )
}

/// Truncates, inside `v`, every string over [`MAX_STRING`] bytes and then, when the value is
/// still over [`MAX_JSON`] bytes of JSON, the whole value (`…(truncated, sha256 HEX, N bytes
/// of JSON)`, the SHA-256 of its RFC 8785 form). Returns whether anything was cut.
pub fn truncate_value(v: &mut Value) -> bool {
    let mut cut = truncate_strings(v);
    if matches!(v, Value::Object(_) | Value::Array(_)) {
        let canonical = serde_json_canonicalizer::to_vec(v).unwrap_or_default();
        if canonical.len() > MAX_JSON {
            *v = Value::String(format!(
                "{TRUNCATED}{}, {} bytes of JSON)",
                sha256_hex(&canonical),
                canonical.len()
            ));
            cut = true;
        }
    }
    cut
}

fn truncate_strings(v: &mut Value) -> bool {
    match v {
        Value::String(s) if s.len() > MAX_STRING => {
            *s = truncated_string(s);
            true
        }
        Value::Array(a) => a.iter_mut().fold(false, |c, x| truncate_strings(x) | c),
        Value::Object(o) => o.values_mut().fold(false, |c, x| truncate_strings(x) | c),
        _ => false,
    }
}

/// Truncates the values of a state diff's JSON ([`crate::StateDiff`]: `values[].attributes[]`
/// and `outputs[]`, `before` and `after`). Returns whether anything was cut.
pub fn truncate_diff(diff: &mut Value) -> bool {
    let mut cut = false;
    let mut each = |list: Option<&mut Value>, inner: Option<&str>| {
        for item in list.and_then(Value::as_array_mut).into_iter().flatten() {
            let targets: Vec<&mut Value> = match inner {
                Some(k) => item
                    .get_mut(k)
                    .and_then(Value::as_array_mut)
                    .map(|a| a.iter_mut().collect())
                    .unwrap_or_default(),
                None => vec![item],
            };
            for t in targets {
                for side in ["before", "after"] {
                    if let Some(x) = t.get_mut(side) {
                        cut |= truncate_value(x);
                    }
                }
            }
        }
    };
    let Some(o) = diff.as_object_mut() else {
        return false;
    };
    let (values, outputs) = {
        let mut values = None;
        let mut outputs = None;
        for (k, v) in o.iter_mut() {
            match k.as_str() {
                "values" => values = Some(v),
                "outputs" => outputs = Some(v),
                _ => {}
            }
        }
        (values, outputs)
    };
    each(values, Some("attributes"));
    each(outputs, None);
    cut
}

/// A state diff as a record keeps it: scrubbed by `scrubber` (when given), then its values
/// truncated ([`truncate_diff`]); when anything was cut, the whole diff's JSON as the blob
/// [`FULL_DIFF_BLOB`], which `full` (a blob reference) and `truncated: true` in the diff name.
pub fn fit_diff(
    diff: crate::StateDiff,
    scrubber: Option<&crate::Scrubber>,
) -> (Value, Option<(String, Vec<u8>)>) {
    let mut diff = serde_json::to_value(diff).unwrap_or(Value::Null);
    if let Some(s) = scrubber {
        s.scrub_value(&mut diff);
    }
    let whole = diff.clone();
    if !truncate_diff(&mut diff) {
        return (diff, None);
    }
    let bytes = serde_json::to_vec(&whole).unwrap_or_default();
    diff["full"] = crate::blob_ref(FULL_DIFF_BLOB, &bytes);
    diff["truncated"] = json!(true);
    (diff, Some((FULL_DIFF_BLOB.to_string(), bytes)))
}

/// Whether `v` holds the redaction marker anywhere (a string equal to or containing it).
fn holds_redacted(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(REDACTED),
        Value::Array(a) => a.iter().any(holds_redacted),
        Value::Object(o) => o
            .iter()
            .any(|(k, x)| k.contains(REDACTED) || holds_redacted(x)),
        _ => false,
    }
}

/// The instances and outputs of a state-values document ([`crate::StateSnapshot::values`]).
fn members<'a>(doc: &'a Value, key: &str) -> Vec<(&'a String, &'a Value)> {
    doc.get(key)
        .and_then(Value::as_object)
        .map(|o| o.iter().collect())
        .unwrap_or_default()
}

/// What changed from a recorded state-values document to a current one (both from
/// [`crate::StateSnapshot::values`], so redacted the same way), in the shape of
/// [`crate::StateDiff::values`] and [`crate::StateDiff::outputs`].
///
/// An instance is compared by its SHA-256 first: same hash, no change. When the hashes
/// differ but the redacted attributes are equal, only a sensitive value changed: one entry
/// with the path `(sensitive value)`. A value redacted in the record stays redacted in the
/// current side too, at the same path: the record may have been scrubbed of secrets (`-var`
/// values) that the current state alone cannot name.
pub fn diff_state_values(
    recorded: &Value,
    current: &Value,
) -> (Vec<InstanceValues>, Vec<OutputValue>) {
    let rec: std::collections::BTreeMap<_, _> =
        members(recorded, "instances").into_iter().collect();
    let cur: std::collections::BTreeMap<_, _> = members(current, "instances").into_iter().collect();
    let attrs = |v: &Value| v.get("attributes").cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    for (addr, c) in &cur {
        if !rec.contains_key(addr) {
            out.push(InstanceValues {
                address: (*addr).clone(),
                change: "added".into(),
                attributes: top(&attrs(c), true),
            });
        }
    }
    for (addr, r) in &rec {
        let Some(c) = cur.get(addr) else {
            out.push(InstanceValues {
                address: (*addr).clone(),
                change: "removed".into(),
                attributes: top(&attrs(r), false),
            });
            continue;
        };
        if r.get("sha256") == c.get("sha256") && r.get("sha256").is_some() {
            continue;
        }
        let (ra, ca) = (attrs(r), attrs(c));
        let mut attributes: Vec<AttributeValue> =
            changed_step_paths(&ra, &ca, &Value::Null, &Value::Null, &Value::Null)
                .into_iter()
                .map(|p| {
                    let before = value_at(&ra, &p).clone();
                    let after = value_at(&ca, &p).clone();
                    let after = if holds_redacted(&before) && !after.is_null() {
                        json!(REDACTED)
                    } else {
                        after
                    };
                    AttributeValue {
                        path: format_path(&p),
                        before,
                        after,
                    }
                })
                .filter(|a| a.before != a.after || a.before == json!(REDACTED))
                .collect();
        if attributes.is_empty() {
            attributes.push(AttributeValue {
                path: REDACTED.into(),
                before: json!(REDACTED),
                after: json!(REDACTED),
            });
        }
        out.push(InstanceValues {
            address: (*addr).clone(),
            change: "changed".into(),
            attributes,
        });
    }
    out.sort_by(|x, y| x.address.cmp(&y.address));
    let rec_o: std::collections::BTreeMap<_, _> =
        members(recorded, "outputs").into_iter().collect();
    let cur_o: std::collections::BTreeMap<_, _> = members(current, "outputs").into_iter().collect();
    let mut names: Vec<&&String> = rec_o.keys().chain(cur_o.keys()).collect();
    names.sort();
    names.dedup();
    let mut outputs = Vec::new();
    for n in names {
        let (r, c) = (rec_o.get(*n), cur_o.get(*n));
        if r.map(|v| v.get("sha256")) == c.map(|v| v.get("sha256")) {
            continue;
        }
        let val = |v: Option<&&Value>| {
            v.and_then(|v| v.get("value"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let sens = |v: Option<&&Value>| {
            v.and_then(|v| v.get("sensitive")).and_then(Value::as_bool) == Some(true)
        };
        let sensitive = sens(r) || sens(c);
        let (mut before, mut after) = (val(r), val(c));
        if sensitive || holds_redacted(&before) {
            if !before.is_null() {
                before = json!(REDACTED);
            }
            if !after.is_null() {
                after = json!(REDACTED);
            }
        }
        outputs.push(OutputValue {
            name: (*n).clone(),
            before,
            after,
            sensitive,
        });
    }
    (out, outputs)
}

/// Every non-null top-level attribute, before (`added` false) or after (`added` true).
fn top(attrs: &Value, added: bool) -> Vec<AttributeValue> {
    attrs
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let path = format_path(&[crate::redact::Step::Key(k.clone())]);
            let (before, after) = if added {
                (Value::Null, v.clone())
            } else {
                (v.clone(), Value::Null)
            };
            AttributeValue {
                path,
                before,
                after,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_cut_with_their_hash() {
        let long = "é".repeat(200); // 400 bytes
        let mut v = json!({"a": long, "b": "short", "n": [1, 2]});
        assert!(truncate_value(&mut v));
        let a = v["a"].as_str().unwrap();
        assert!(a.starts_with(&"é".repeat(32)), "{a}");
        assert!(
            a.ends_with(&format!(
                "{TRUNCATED}{}, 400 bytes)",
                sha256_hex(long.as_bytes())
            )),
            "{a}"
        );
        assert_eq!(v["b"], "short");
        // At the limit: kept.
        let mut v = json!("x".repeat(MAX_STRING));
        assert!(!truncate_value(&mut v));
        assert_eq!(v.as_str().unwrap().len(), MAX_STRING);
        // Many short strings: the whole value goes.
        let list: Vec<String> = (0..500).map(|i| format!("item-{i}")).collect();
        let mut v = json!(list);
        let canonical = serde_json_canonicalizer::to_vec(&v).unwrap();
        assert!(truncate_value(&mut v));
        assert_eq!(
            v,
            json!(format!(
                "{TRUNCATED}{}, {} bytes of JSON)",
                sha256_hex(&canonical),
                canonical.len()
            ))
        );
        // Numbers, booleans and nulls are never cut.
        let mut v = json!({"n": 12345678901234567u64, "b": true, "z": null});
        assert!(!truncate_value(&mut v));
    }

    #[test]
    fn a_diff_is_cut_in_its_values_only() {
        let long = "v".repeat(1000);
        let mut d = json!({
            "added": ["terraform_data.a"],
            "values": [{"address": "terraform_data.a", "change": "added",
                        "attributes": [{"path": "input", "before": null, "after": long}]}],
            "outputs": [{"name": "o", "before": long, "after": "x", "sensitive": false}],
        });
        assert!(truncate_diff(&mut d));
        let after = d["values"][0]["attributes"][0]["after"].as_str().unwrap();
        assert!(after.starts_with(&"v".repeat(KEEP)) && after.contains(TRUNCATED));
        assert!(after.len() < 200, "{after}");
        assert!(d["outputs"][0]["before"]
            .as_str()
            .unwrap()
            .contains(TRUNCATED));
        assert_eq!(d["outputs"][0]["after"], "x");
        assert_eq!(d["added"][0], "terraform_data.a");
        let mut small = json!({"values": [], "outputs": []});
        assert!(!truncate_diff(&mut small));
    }
}
