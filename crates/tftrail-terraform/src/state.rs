//! State fingerprints (lineage, serial, SHA-256) and resource-level state diffs.
//!
//! The state itself is never returned: only its fingerprint, addresses and attribute paths.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::redact::{changed_paths, collect_leaves, redact_by_tree};

/// A parsed state (v4) kept in memory to fingerprint and diff it.
#[derive(Debug, Clone)]
pub struct StateSnapshot {
    lineage: Option<String>,
    serial: Option<u64>,
    sha256: String,
    /// SHA-256 of the state's RFC 8785 canonical JSON.
    content_sha256: String,
    size: u64,
    terraform_version: Option<String>,
    instances: BTreeMap<String, Instance>,
    outputs: BTreeMap<String, (Value, bool)>,
}

#[derive(Debug, Clone)]
struct Instance {
    attributes: Value,
    sensitive: Value,
}

/// Converts state v4 `sensitive_attributes` (list of paths of steps) to a sensitivity tree.
fn sensitivity_tree(paths: &Value) -> Value {
    let mut tree = Value::Object(Default::default());
    let Some(paths) = paths.as_array() else {
        return tree;
    };
    for path in paths {
        let Some(steps) = path.as_array() else {
            continue;
        };
        if steps.is_empty() {
            return Value::Bool(true);
        }
        let mut node = &mut tree;
        for (i, step) in steps.iter().enumerate() {
            let last = i + 1 == steps.len();
            let key = match (step.get("type").and_then(Value::as_str), step.get("value")) {
                (Some("get_attr"), Some(Value::String(s))) => s.clone(),
                (Some("index"), Some(v)) => match v.get("value").unwrap_or(v) {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => {
                        // list index: represent the node as an array
                        let idx = n.as_u64().unwrap_or(0) as usize;
                        if !node.is_array() {
                            if node.as_object().is_some_and(|o| !o.is_empty()) {
                                // mixed; be safe: mark whole node
                                *node = Value::Bool(true);
                                break;
                            }
                            *node = Value::Array(vec![]);
                        }
                        let arr = node.as_array_mut().expect("array");
                        while arr.len() <= idx {
                            arr.push(Value::Object(Default::default()));
                        }
                        if last {
                            arr[idx] = Value::Bool(true);
                            break;
                        }
                        node = &mut arr[idx];
                        continue;
                    }
                    _ => {
                        *node = Value::Bool(true);
                        break;
                    }
                },
                _ => {
                    // unknown step kind: mark the node sensitive as a whole
                    *node = Value::Bool(true);
                    break;
                }
            };
            if node.is_boolean() {
                break; // already sensitive above
            }
            if !node.is_object() {
                *node = Value::Bool(true);
                break;
            }
            let obj = node.as_object_mut().expect("object");
            if last {
                obj.insert(key, Value::Bool(true));
                break;
            }
            node = obj
                .entry(key)
                .or_insert_with(|| Value::Object(Default::default()));
        }
    }
    tree
}

/// Whether `t` looks like a cty type in JSON (`"string"`, `["object", {...}]`).
fn is_cty_type(t: &Value) -> bool {
    match t {
        Value::String(_) => true,
        Value::Array(a) => a.first().is_some_and(Value::is_string),
        _ => false,
    }
}

/// State encodes dynamically-typed attributes as `{"value": V, "type": T}`; sensitivity
/// paths address `V` directly, so unwrap those.
fn unwrap_dynamic(v: Value) -> Value {
    match v {
        Value::Object(mut o) => {
            if o.len() == 2 && o.contains_key("value") && o.get("type").is_some_and(is_cty_type) {
                return unwrap_dynamic(o.remove("value").unwrap_or(Value::Null));
            }
            Value::Object(o.into_iter().map(|(k, v)| (k, unwrap_dynamic(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(unwrap_dynamic).collect()),
        other => other,
    }
}

fn index_suffix(key: Option<&Value>) -> String {
    match key {
        Some(Value::Number(n)) => format!("[{n}]"),
        Some(Value::String(s)) => format!("[{}]", serde_json::to_string(s).unwrap_or_default()),
        _ => String::new(),
    }
}

impl StateSnapshot {
    /// Parses state JSON (format version 4, as in `terraform.tfstate` or `state pull`).
    pub fn from_state_json(bytes: &[u8]) -> Result<Self> {
        use sha2::Digest;
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| Error::State(format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| Error::State("not a JSON object".into()))?;
        if let Some(ver) = obj.get("version").and_then(Value::as_u64) {
            if ver != 4 {
                return Err(Error::State(format!("unsupported state version {ver}")));
            }
        }
        let mut instances = BTreeMap::new();
        for r in obj
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
            let mut base = String::new();
            if let Some(m) = r.get("module").and_then(Value::as_str) {
                base.push_str(m);
                base.push('.');
            }
            if s("mode") == "data" {
                base.push_str("data.");
            }
            base.push_str(&format!("{}.{}", s("type"), s("name")));
            for inst in r
                .get("instances")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut addr = format!("{base}{}", index_suffix(inst.get("index_key")));
                if let Some(d) = inst.get("deposed").and_then(Value::as_str) {
                    addr.push_str(&format!(" (deposed {d})"));
                }
                instances.insert(
                    addr,
                    Instance {
                        attributes: unwrap_dynamic(
                            inst.get("attributes").cloned().unwrap_or(Value::Null),
                        ),
                        sensitive: sensitivity_tree(
                            inst.get("sensitive_attributes").unwrap_or(&Value::Null),
                        ),
                    },
                );
            }
        }
        let outputs = obj
            .get("outputs")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            (
                                v.get("value").cloned().unwrap_or(Value::Null),
                                v.get("sensitive").and_then(Value::as_bool).unwrap_or(false),
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(StateSnapshot {
            lineage: obj.get("lineage").and_then(Value::as_str).map(String::from),
            serial: obj.get("serial").and_then(Value::as_u64),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            content_sha256: content_sha256(&v),
            size: bytes.len() as u64,
            terraform_version: obj
                .get("terraform_version")
                .and_then(Value::as_str)
                .map(String::from),
            instances,
            outputs,
        })
    }

    /// Lineage.
    pub fn lineage(&self) -> Option<&str> {
        self.lineage.as_deref()
    }

    /// Serial.
    pub fn serial(&self) -> Option<u64> {
        self.serial
    }

    /// SHA-256 (hex) of the state bytes as read.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Resource instance addresses.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.instances.keys().map(|s| s.as_str())
    }

    /// SHA-256 of the state's canonical JSON (RFC 8785): the same for two states that differ
    /// only in formatting (whitespace, key order, number spelling).
    pub fn content_sha256(&self) -> &str {
        &self.content_sha256
    }

    /// The fingerprint fragment for records (no values).
    pub fn fingerprint(&self) -> Value {
        json!({
            "present": true,
            "lineage": self.lineage,
            "serial": self.serial,
            "sha256": self.sha256,
            "content_sha256": self.content_sha256,
            "size": self.size,
            "terraform_version": self.terraform_version,
            "resources": self.instances.len(),
            "outputs": self.outputs.len(),
        })
    }

    /// Every value this state marks sensitive (sensitive attributes and outputs), for
    /// scrubbing.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for inst in self.instances.values() {
            redact_by_tree(&inst.attributes, &inst.sensitive, &mut out);
        }
        for (v, sensitive) in self.outputs.values() {
            if *sensitive {
                collect_leaves(v, &mut out);
            }
        }
        out
    }

    /// Resource-level differences from `self` (before) to `after`.
    pub fn diff(&self, after: &StateSnapshot) -> StateDiff {
        diff_opt(Some(self), Some(after))
    }
}

/// Resource-level difference between two states (addresses and attribute paths only).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StateDiff {
    /// Instances only in the new state.
    pub added: Vec<String>,
    /// Instances only in the old state.
    pub removed: Vec<String>,
    /// Instances in both whose attributes differ.
    pub changed: Vec<ChangedInstance>,
    /// Root outputs added, removed or changed (names only).
    pub outputs_changed: Vec<String>,
    /// Whether the lineage differs (a different state, e.g. after `state push`).
    pub lineage_changed: bool,
    /// Serial before and after.
    pub serial: (Option<u64>, Option<u64>),
}

/// One changed instance.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChangedInstance {
    /// Instance address.
    pub address: String,
    /// Changed attribute paths.
    pub paths: Vec<String>,
}

/// SHA-256 of a JSON document's RFC 8785 canonical form, hex.
fn content_sha256(v: &Value) -> String {
    use sha2::Digest;
    let canonical = serde_json_canonicalizer::to_vec(v).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(canonical))
}

/// Diff where either side may be absent (no state yet / state deleted).
pub fn diff_opt(before: Option<&StateSnapshot>, after: Option<&StateSnapshot>) -> StateDiff {
    let empty = BTreeMap::new();
    let bi = before.map(|s| &s.instances).unwrap_or(&empty);
    let ai = after.map(|s| &s.instances).unwrap_or(&empty);
    let mut d = StateDiff {
        added: ai
            .keys()
            .filter(|k| !bi.contains_key(*k))
            .cloned()
            .collect(),
        removed: bi
            .keys()
            .filter(|k| !ai.contains_key(*k))
            .cloned()
            .collect(),
        ..Default::default()
    };
    for (k, b) in bi {
        if let Some(a) = ai.get(k) {
            if b.attributes != a.attributes || b.sensitive != a.sensitive {
                let mut paths = changed_paths(
                    &b.attributes,
                    &a.attributes,
                    &Value::Null,
                    &b.sensitive,
                    &a.sensitive,
                );
                if paths.is_empty() {
                    paths.push("(sensitivity)".into());
                }
                d.changed.push(ChangedInstance {
                    address: k.clone(),
                    paths,
                });
            }
        }
    }
    let eo = BTreeMap::new();
    let bo = before.map(|s| &s.outputs).unwrap_or(&eo);
    let ao = after.map(|s| &s.outputs).unwrap_or(&eo);
    let mut names: Vec<&String> = bo.keys().chain(ao.keys()).collect();
    names.sort();
    names.dedup();
    d.outputs_changed = names
        .into_iter()
        .filter(|n| bo.get(*n) != ao.get(*n))
        .cloned()
        .collect();
    d.lineage_changed = before.and_then(|s| s.lineage.as_ref())
        != after.and_then(|s| s.lineage.as_ref())
        && before.is_some()
        && after.is_some();
    d.serial = (before.and_then(|s| s.serial), after.and_then(|s| s.serial));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE_A: &[u8] = include_bytes!("../testdata/state_a.json");

    #[test]
    fn parses_real_state() {
        let s = StateSnapshot::from_state_json(STATE_A).unwrap();
        assert_eq!(s.serial(), Some(5));
        assert!(s.lineage().is_some());
        let addrs: Vec<&str> = s.addresses().collect();
        assert_eq!(
            addrs,
            vec![
                "terraform_data.a",
                "terraform_data.b",
                "terraform_data.c[0]",
                "terraform_data.c[1]"
            ]
        );
        let secrets = s.secrets();
        assert!(secrets.contains(&"cli-pw-4321".to_string()));
        assert!(secrets.contains(&"literal-secret-5555".to_string()));
        assert!(!secrets.contains(&"eu-west-1".to_string()));
        let fp = s.fingerprint().to_string();
        assert!(!fp.contains("cli-pw-4321"));
    }

    #[test]
    fn diffs() {
        let a = StateSnapshot::from_state_json(STATE_A).unwrap();
        let mut v: Value = serde_json::from_slice(STATE_A).unwrap();
        v["serial"] = json!(6);
        let res = v["resources"].as_array_mut().unwrap();
        res[0]["instances"][0]["attributes"]["input"]["value"]["password"] = json!("new-pw");
        res[0]["instances"][0]["attributes"]["input"]["value"]["region"] = json!("r2");
        res[0]["instances"][0]["attributes"]["output"]["value"]["password"] = json!("new-pw");
        res[0]["instances"][0]["attributes"]["output"]["value"]["region"] = json!("r2");
        res.remove(1);
        let b = StateSnapshot::from_state_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        let d = a.diff(&b);
        assert_eq!(d.removed, vec!["terraform_data.b"]);
        assert!(d.added.is_empty());
        assert_eq!(d.changed.len(), 1);
        assert_eq!(
            d.changed[0].paths,
            vec![
                "input.password",
                "input.region",
                "output.password",
                "output.region"
            ]
        );
        assert_eq!(d.serial, (Some(5), Some(6)));
        assert!(!d.lineage_changed);
        let none = diff_opt(None, Some(&a));
        assert_eq!(none.added.len(), 4);
    }

    #[test]
    fn sensitivity_paths() {
        let t = sensitivity_tree(&json!([
            [{"type": "get_attr", "value": "a"}, {"type": "index", "value": {"value": 1, "type": "number"}}],
            [{"type": "get_attr", "value": "m"}, {"type": "index", "value": {"value": "k", "type": "string"}}]
        ]));
        assert_eq!(t, json!({"a": [{}, true], "m": {"k": true}}));
        assert!(StateSnapshot::from_state_json(b"garbage").is_err());
    }
}
