//! Redaction by Terraform's sensitivity trees, attribute paths, and scrubbing of known secrets.

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

/// The marker that replaces every sensitive value.
pub const REDACTED: &str = "(sensitive value)";

/// Secrets shorter than this many characters are not scrubbed from free text (they would
/// shred unrelated output); they are still redacted structurally wherever Terraform marks them.
pub const MIN_SCRUB_LEN: usize = 4;

/// Whether a sensitivity tree node (`*_sensitive`, `sensitive_values`) marks the whole value.
fn is_sensitive(sens: &Value) -> bool {
    matches!(sens, Value::Bool(true))
}

fn child<'a>(sens: &'a Value, key: &str) -> &'a Value {
    sens.get(key).unwrap_or(&Value::Null)
}

fn child_idx(sens: &Value, i: usize) -> &Value {
    sens.get(i).unwrap_or(&Value::Null)
}

/// Collects the scalar leaves of `value` (strings and numbers, as text) into `out`.
pub(crate) fn collect_leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|v| collect_leaves(v, out)),
        Value::Object(o) => o.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_leaves(v, out)
        }),
        Value::Bool(_) | Value::Null => {}
    }
}

/// Returns `value` with every part that `sens` marks sensitive replaced by [`REDACTED`];
/// the replaced leaves are pushed to `secrets`. A sensitive `null` stays `null`.
pub fn redact_by_tree(value: &Value, sens: &Value, secrets: &mut Vec<String>) -> Value {
    let mut v = value.clone();
    redact_by_tree_in_place(&mut v, sens, secrets);
    v
}

/// [`redact_by_tree`] on `value` itself.
pub fn redact_by_tree_in_place(value: &mut Value, sens: &Value, secrets: &mut Vec<String>) {
    if is_sensitive(sens) {
        if !value.is_null() {
            collect_leaves(value, secrets);
            *value = Value::String(REDACTED.into());
        }
        return;
    }
    match value {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                redact_by_tree_in_place(v, child(sens, k), secrets);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                redact_by_tree_in_place(v, child_idx(sens, i), secrets);
            }
        }
        _ => {}
    }
}

/// One step of an attribute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// Formats a path: identifier-like keys with dots (`input.password`), other keys in brackets
/// (`tags["a.b"]`), list indices as `[0]`.
pub(crate) fn format_path(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                let ident = !k.is_empty()
                    && k.chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if ident {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                } else {
                    s.push('[');
                    s.push_str(&serde_json::to_string(k).unwrap_or_default());
                    s.push(']');
                }
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The value at `path` (`null` when absent).
pub(crate) fn value_at<'a>(v: &'a Value, path: &[Step]) -> &'a Value {
    let mut node = v;
    for step in path {
        node = match step {
            Step::Key(k) => node.get(k.as_str()),
            Step::Index(i) => node.get(*i),
        }
        .unwrap_or(&Value::Null);
    }
    node
}

/// Attribute paths whose value differs between `before` and `after` (or is unknown until
/// apply per `unknown`). Sensitive subtrees (per either sensitivity tree) are compared but
/// never descended into, so map keys inside secrets are not revealed.
pub fn changed_paths(
    before: &Value,
    after: &Value,
    unknown: &Value,
    sens_before: &Value,
    sens_after: &Value,
) -> Vec<String> {
    changed_step_paths(before, after, unknown, sens_before, sens_after)
        .iter()
        .map(|p| format_path(p))
        .collect()
}

/// [`changed_paths`] as steps, for reading the values at each path.
pub(crate) fn changed_step_paths(
    before: &Value,
    after: &Value,
    unknown: &Value,
    sens_before: &Value,
    sens_after: &Value,
) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk_changes(
        before,
        after,
        unknown,
        sens_before,
        sens_after,
        &mut path,
        &mut out,
    );
    out
}

#[allow(clippy::too_many_arguments)]
fn walk_changes(
    before: &Value,
    after: &Value,
    unknown: &Value,
    sb: &Value,
    sa: &Value,
    path: &mut Vec<Step>,
    out: &mut Vec<Vec<Step>>,
) {
    if matches!(unknown, Value::Bool(true)) {
        out.push(path.clone());
        return;
    }
    let sensitive = is_sensitive(sb) || is_sensitive(sa);
    match (before, after) {
        (Value::Object(b), Value::Object(a)) if !sensitive => {
            let unknown_keys = unknown.as_object().into_iter().flat_map(|u| u.keys());
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).chain(unknown_keys).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(Step::Key(k.clone()));
                walk_changes(
                    b.get(k).unwrap_or(&Value::Null),
                    a.get(k).unwrap_or(&Value::Null),
                    child(unknown, k),
                    child(sb, k),
                    child(sa, k),
                    path,
                    out,
                );
                path.pop();
            }
        }
        (Value::Null, Value::Object(a)) if !sensitive && !path.is_empty() => {
            // A nested object appearing: report its own path only.
            let _ = a;
            out.push(path.clone());
        }
        (Value::Null, Value::Object(a)) if !sensitive => {
            // Whole-resource create: every attribute that is set or unknown.
            for (k, v) in a {
                let unk = child(unknown, k);
                if !v.is_null() || !unk.is_null() && unk != &Value::Bool(false) {
                    out.push(vec![Step::Key(k.clone())]);
                }
            }
            if let Value::Object(u) = unknown {
                for (k, v) in u {
                    if !a.contains_key(k) && v == &Value::Bool(true) {
                        out.push(vec![Step::Key(k.clone())]);
                    }
                }
            }
        }
        (Value::Object(b), Value::Null) if !sensitive && path.is_empty() => {
            for (k, v) in b {
                if !v.is_null() {
                    out.push(vec![Step::Key(k.clone())]);
                }
            }
        }
        (Value::Array(b), Value::Array(a)) if !sensitive && b.len() == a.len() => {
            for i in 0..a.len() {
                path.push(Step::Index(i));
                walk_changes(
                    &b[i],
                    &a[i],
                    child_idx(unknown, i),
                    child_idx(sb, i),
                    child_idx(sa, i),
                    path,
                    out,
                );
                path.pop();
            }
        }
        (b, a) => {
            if b != a || (is_sensitive(sb) != is_sensitive(sa)) {
                out.push(path.clone());
            }
        }
    }
}

/// Replaces known secret strings in text and JSON values with [`REDACTED`].
///
/// Built from every value known to be sensitive: sensitive leaves of plans and states,
/// sensitive outputs, sensitive variables, `-var` values and `TF_VAR_*` values. Secrets
/// shorter than [`MIN_SCRUB_LEN`] characters are ignored. Each secret is also matched in its
/// JSON-escaped form, and multi-line secrets line by line.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    patterns: Vec<String>,
    ac: Option<AhoCorasick>,
    /// Whether some pattern is a number's JSON text (only then are numbers compared).
    numeric: bool,
}

impl Scrubber {
    /// Builds a scrubber for these secrets.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = Vec::new();
        let mut add = |s: &str| {
            if s.chars().count() >= MIN_SCRUB_LEN && s != REDACTED {
                patterns.push(s.to_string());
            }
        };
        for s in secrets {
            let s = s.as_ref();
            add(s);
            let escaped = serde_json::to_string(s).unwrap_or_default();
            let escaped = &escaped[1..escaped.len().saturating_sub(1).max(1)];
            if escaped != s {
                add(escaped);
            }
            if s.contains('\n') {
                for line in s.lines() {
                    add(line.trim());
                }
            }
        }
        patterns.sort();
        patterns.dedup();
        let ac = if patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .ok()
        };
        let numeric = patterns
            .iter()
            .any(|p| p.parse::<serde_json::Number>().is_ok());
        Self {
            patterns,
            ac,
            numeric,
        }
    }

    /// Number of patterns (for diagnostics and tests).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Scrubs bytes (captured output).
    pub fn scrub_bytes(&self, input: &[u8]) -> Vec<u8> {
        match &self.ac {
            None => input.to_vec(),
            Some(ac) => {
                let mut out = Vec::with_capacity(input.len());
                ac.replace_all_with_bytes(input, &mut out, |_, _, dst| {
                    dst.extend_from_slice(REDACTED.as_bytes());
                    true
                });
                out
            }
        }
    }

    /// Scrubs a string.
    pub fn scrub_str(&self, input: &str) -> String {
        match &self.ac {
            Some(ac) if ac.is_match(input) => {
                ac.replace_all(input, &vec![REDACTED; self.patterns.len()])
            }
            _ => input.to_string(),
        }
    }

    /// Whether `input` holds a secret.
    fn matches(&self, input: &str) -> bool {
        self.ac.as_ref().is_some_and(|ac| ac.is_match(input))
    }

    /// Scrubs every string (object keys included) inside a JSON value; a number equal to a
    /// secret becomes the marker. The value stays valid JSON. Only what holds a secret is
    /// rewritten.
    pub fn scrub_value(&self, value: &mut Value) {
        if self.ac.is_none() {
            return;
        }
        match value {
            Value::String(s) => {
                if self.matches(s) {
                    *s = self.scrub_str(s);
                }
            }
            Value::Number(n) => {
                if self.numeric && self.patterns.iter().any(|p| *p == n.to_string()) {
                    *value = Value::String(REDACTED.into());
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(o) => {
                if o.keys().any(|k| self.matches(k)) {
                    let old = std::mem::take(o);
                    for (k, mut v) in old {
                        self.scrub_value(&mut v);
                        o.insert(self.scrub_str(&k), v);
                    }
                } else {
                    o.values_mut().for_each(|v| self.scrub_value(v));
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn scrub_value_rewrites_only_what_holds_a_secret() {
        let sc = Scrubber::new(["hunter22", "123456"]);
        let mut v = serde_json::json!({
            "a": 123456,
            "b": "x hunter22 y",
            "hunter22": 1,
            "c": [1234567, 123456.5, "plain"],
            "d": {"e": "plain", "f": 7}
        });
        sc.scrub_value(&mut v);
        let r = format!("x {REDACTED} y");
        assert_eq!(
            v,
            serde_json::json!({
                "a": REDACTED,
                "b": r,
                REDACTED: 1,
                "c": [1234567, 123456.5, "plain"],
                "d": {"e": "plain", "f": 7}
            })
        );
        // Without a numeric secret, numbers are left alone.
        let mut w = serde_json::json!({"n": 123456, "s": "123456 hunter22"});
        Scrubber::new(["hunter22"]).scrub_value(&mut w);
        assert_eq!(
            w,
            serde_json::json!({"n": 123456, "s": format!("123456 {REDACTED}")})
        );
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_by_tree_and_collects() {
        let v = json!({"a": "x", "b": {"c": "secret1", "d": [1, "s2s2"]}, "e": null});
        let s = json!({"b": {"c": true, "d": [false, true]}, "e": true});
        let mut secrets = vec![];
        let r = redact_by_tree(&v, &s, &mut secrets);
        assert_eq!(
            r,
            json!({"a": "x", "b": {"c": REDACTED, "d": [1, REDACTED]}, "e": null})
        );
        assert_eq!(secrets, vec!["secret1", "s2s2"]);
        let mut secrets = vec![];
        assert_eq!(
            redact_by_tree(&v, &json!(true), &mut secrets),
            json!(REDACTED)
        );
        assert!(secrets.contains(&"s2s2".to_string()) && secrets.contains(&"1".to_string()));
    }

    #[test]
    fn paths() {
        let p = [
            Step::Key("tags".into()),
            Step::Key("a.b".into()),
            Step::Index(2),
            Step::Key("x".into()),
        ];
        assert_eq!(format_path(&p), r#"tags["a.b"][2].x"#);
        let b = json!({"input": {"password": "a", "region": "x", "tags": {"k": "1"}}, "id": "i"});
        let a = json!({"input": {"password": "b", "region": "x", "tags": {"k": "2"}}, "id": "i"});
        let sens = json!({"input": {"password": true}});
        let got = changed_paths(&b, &a, &json!({"output": true}), &sens, &sens);
        assert_eq!(got, vec!["input.password", "input.tags.k", "output"]);
        // secret subtree: not descended
        let got = changed_paths(
            &json!({"m": {"k1": "v"}}),
            &json!({"m": {"k2": "v"}}),
            &json!({}),
            &json!({"m": true}),
            &json!({"m": true}),
        );
        assert_eq!(got, vec!["m"]);
        // create
        let got = changed_paths(
            &Value::Null,
            &json!({"input": 1, "triggers_replace": null}),
            &json!({"id": true, "output": true}),
            &json!(false),
            &json!({}),
        );
        assert_eq!(got, vec!["input", "id", "output"]);
    }

    #[test]
    fn scrubber() {
        let s = Scrubber::new(["hunter22", "abc", "quo\"te", "line-one\nline-two"]);
        assert_eq!(s.scrub_str("pw=hunter22 abc"), format!("pw={REDACTED} abc"));
        assert_eq!(
            s.scrub_bytes(br#"{"v":"quo\"te"} line-two"#),
            format!(r#"{{"v":"{REDACTED}"}} {REDACTED}"#).into_bytes()
        );
        let mut v = json!({"k hunter22": ["xhunter22x", 1234], "n": 5});
        Scrubber::new(["hunter22", "1234"]).scrub_value(&mut v);
        assert_eq!(
            v,
            json!({format!("k {REDACTED}"): [format!("x{REDACTED}x"), REDACTED], "n": 5})
        );
        assert!(Scrubber::new(["ab"]).is_empty());
    }
}
