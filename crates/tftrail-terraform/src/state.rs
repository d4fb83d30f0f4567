//! State fingerprints (lineage, serial, SHA-256) and resource-level state diffs.
//!
//! The state itself is never returned: only its fingerprint, addresses and attribute paths,
//! and, from [`diff_values`], the redacted before and after values of what changed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::redact::{
    changed_paths, changed_step_paths, collect_leaves, format_path, redact_by_tree,
    redact_by_tree_in_place, value_at, Scrubber, Step, REDACTED,
};

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
    /// Redacted before and after values of the changed instances ([`diff_values`] only;
    /// absent from the JSON when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<InstanceValues>,
    /// Redacted before and after values of the changed root outputs ([`diff_values`] only;
    /// absent from the JSON when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputValue>,
}

/// The values of one added, removed or changed instance, redacted (see [`diff_values`]).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InstanceValues {
    /// Instance address.
    pub address: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    /// For an added or removed instance, every top-level attribute that is not null; for a
    /// changed one, every changed path (as in [`ChangedInstance::paths`]).
    pub attributes: Vec<AttributeValue>,
}

/// One attribute's value before and after (`null` on the side where it is absent).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttributeValue {
    /// Attribute path (`input.region`, `tags["a.b"]`, `rule[0].port`).
    pub path: String,
    /// Value before (redacted).
    pub before: Value,
    /// Value after (redacted).
    pub after: Value,
}

/// One root output's value before and after (`null` on the side where it is absent).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutputValue {
    /// Output name.
    pub name: String,
    /// Value before (redacted).
    pub before: Value,
    /// Value after (redacted).
    pub after: Value,
    /// Whether either state marks the output sensitive (its values are then redacted).
    pub sensitive: bool,
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

/// Attribute and output names that hold secrets whatever the provider schema says: the
/// lower-cased name contains one of these.
pub const SECRET_NAME_PARTS: &[&str] = &[
    "password",
    "passphrase",
    "secret",
    "private_key",
    "token",
    "credential",
];

/// Whether an attribute or output name looks like it names a secret ([`SECRET_NAME_PARTS`]).
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|p| lower.contains(p))
}

/// Marks a whole value (a sensitivity tree node meaning "all of it").
static ALL: Value = Value::Bool(true);

/// The node of a sensitivity tree at `path` ([`ALL`] under a node marking all of it).
fn sens_at<'a>(tree: &'a Value, path: &[Step]) -> &'a Value {
    let mut node = tree;
    for step in path {
        if node == &ALL {
            return &ALL;
        }
        node = match step {
            Step::Key(k) => node.get(k.as_str()),
            Step::Index(i) => node.get(*i),
        }
        .unwrap_or(&Value::Null);
    }
    node
}

/// Replaces, inside `v`, every non-null member whose key looks secret ([`looks_secret`]).
fn redact_named(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if looks_secret(k) && !child.is_null() {
                    *child = Value::String(REDACTED.into());
                } else {
                    redact_named(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_named),
        _ => {}
    }
}

/// The string leaves of `v` under secret-looking names (`named` says whether `v` itself is
/// named so), for the scrubber: a copy elsewhere is as secret as the original.
fn named_secrets(v: &Value, named: bool, out: &mut Vec<String>) {
    match v {
        Value::String(s) if named => out.push(s.clone()),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, c)| named_secrets(c, named || looks_secret(k), out)),
        Value::Array(a) => a.iter().for_each(|c| named_secrets(c, named, out)),
        _ => {}
    }
}

impl StateSnapshot {
    /// Strings held under secret-looking attribute or output names (see [`diff_values`]).
    fn named_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for inst in self.instances.values() {
            named_secrets(&inst.attributes, false, &mut out);
        }
        for (name, (v, _)) in &self.outputs {
            named_secrets(v, looks_secret(name), &mut out);
        }
        out
    }
}

impl StateSnapshot {
    /// The redacted values of the whole state, for `check-state` to compare a later state
    /// against (the `state-values.json` blob of a run's outcome; see
    /// [`crate::values::diff_state_values`]):
    /// `{"v": 1, "instances": {ADDR: {"attributes": {…}, "sha256": HEX}}, "outputs": {NAME:
    /// {"value": V, "sensitive": B, "sha256": HEX}}}`.
    ///
    /// Attributes are redacted as in [`diff_values`] (sensitivity, secret-looking names, the
    /// state's secrets), then scrubbed by `extra` (the run's `-var` values and the like).
    /// `sha256` is that of the RFC 8785 form of the instance's attributes and sensitivity
    /// as stored (unredacted), so that a change to a sensitive value is seen without its
    /// value; the state's own SHA-256 is in the record already, so it reveals nothing more.
    pub fn values(&self, extra: &Scrubber) -> Value {
        let mut secrets = self.secrets();
        secrets.extend(self.named_secrets());
        let scrubber = Scrubber::new(secrets);
        let mut instances = serde_json::Map::new();
        for (addr, inst) in &self.instances {
            let mut attributes = serde_json::Map::new();
            for (k, v) in inst.attributes.as_object().into_iter().flatten() {
                let path = [Step::Key(k.clone())];
                let mut v = redacted(v, &path, &[&inst.sensitive], &scrubber);
                extra.scrub_value(&mut v);
                attributes.insert(k.clone(), v);
            }
            let hash = content_sha256(&json!([inst.attributes, inst.sensitive]));
            instances.insert(
                addr.clone(),
                json!({"attributes": attributes, "sha256": hash}),
            );
        }
        let mut outputs = serde_json::Map::new();
        for (name, (v, sensitive)) in &self.outputs {
            let path = [Step::Key(name.clone())];
            let tree = if *sensitive { ALL.clone() } else { Value::Null };
            let mut value = redacted(v, &path, &[&tree], &scrubber);
            extra.scrub_value(&mut value);
            outputs.insert(
                name.clone(),
                json!({"value": value, "sensitive": sensitive,
                       "sha256": content_sha256(&json!([v, sensitive]))}),
            );
        }
        json!({"v": 1, "instances": instances, "outputs": outputs})
    }
}

/// Redacts one value read from a state: all of it when a sensitivity tree marks `path` (or
/// above), the parts the trees mark below it, secret-looking names, then every known secret.
fn redacted(value: &Value, path: &[Step], trees: &[&Value], scrubber: &Scrubber) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    let nodes: Vec<&Value> = trees.iter().map(|t| sens_at(t, path)).collect();
    let last_key = path.iter().rev().find_map(|s| match s {
        Step::Key(k) => Some(k.as_str()),
        Step::Index(_) => None,
    });
    if nodes.iter().any(|n| **n == ALL) || last_key.is_some_and(looks_secret) {
        return Value::String(REDACTED.into());
    }
    let mut v = value.clone();
    let mut ignored = Vec::new();
    for n in nodes {
        redact_by_tree_in_place(&mut v, n, &mut ignored);
    }
    redact_named(&mut v);
    scrubber.scrub_value(&mut v);
    v
}

/// Every non-null top-level attribute of an instance that is only on one side.
fn top_level(inst: &Instance, added: bool, scrubber: &Scrubber) -> Vec<AttributeValue> {
    let Some(attrs) = inst.attributes.as_object() else {
        return Vec::new();
    };
    attrs
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let path = [Step::Key(k.clone())];
            let v = redacted(v, &path, &[&inst.sensitive], scrubber);
            let (before, after) = if added {
                (Value::Null, v)
            } else {
                (v, Value::Null)
            };
            AttributeValue {
                path: format_path(&path),
                before,
                after,
            }
        })
        .collect()
}

/// [`diff_opt`] with the before and after values of what changed ([`StateDiff::values`],
/// [`StateDiff::outputs`]), for the server's `terraform.state.write` records.
///
/// An added instance lists every non-null top-level attribute (before `null`), a removed one
/// every non-null top-level attribute (after `null`), a changed one every changed path. Every
/// changed root output is listed.
///
/// Nothing secret is kept, in this order:
/// 1. a value at or under a path either state's `sensitive_attributes` marks is
///    [`REDACTED`]; so are both values of an output either state marks sensitive;
/// 2. as a defence for states whose `sensitive_attributes` lack the provider schema's
///    sensitivity, a value whose attribute or output name looks secret ([`looks_secret`]:
///    the lower-cased name contains `password`, `passphrase`, `secret`, `private_key`,
///    `token` or `credential`), at the path's last key or at any key inside the value, is
///    [`REDACTED`] too;
/// 3. every value is then scrubbed ([`Scrubber`]) of the secrets of both states
///    ([`StateSnapshot::secrets`]) and of the strings held under secret-looking names, so a
///    copy of a secret in an unmarked attribute (an interpolated connection string) or in an
///    unmarked output is replaced as well.
///
/// A `null` stays `null` (it reveals nothing). Addresses and paths are those of
/// [`diff_opt`], which never descends into a sensitive value.
pub fn diff_values(before: Option<&StateSnapshot>, after: Option<&StateSnapshot>) -> StateDiff {
    let mut d = diff_opt(before, after);
    let mut secrets = Vec::new();
    for s in before.into_iter().chain(after) {
        secrets.extend(s.secrets());
        secrets.extend(s.named_secrets());
    }
    let scrubber = Scrubber::new(secrets);
    let empty = BTreeMap::new();
    let bi = before.map(|s| &s.instances).unwrap_or(&empty);
    let ai = after.map(|s| &s.instances).unwrap_or(&empty);
    let mut values = Vec::new();
    for (address, inst) in d.added.iter().filter_map(|k| Some((k, ai.get(k)?))) {
        values.push(InstanceValues {
            address: address.clone(),
            change: "added".into(),
            attributes: top_level(inst, true, &scrubber),
        });
    }
    for (address, inst) in d.removed.iter().filter_map(|k| Some((k, bi.get(k)?))) {
        values.push(InstanceValues {
            address: address.clone(),
            change: "removed".into(),
            attributes: top_level(inst, false, &scrubber),
        });
    }
    for c in &d.changed {
        let (Some(b), Some(a)) = (bi.get(&c.address), ai.get(&c.address)) else {
            continue;
        };
        let trees = [&b.sensitive, &a.sensitive];
        let attributes = changed_step_paths(
            &b.attributes,
            &a.attributes,
            &Value::Null,
            &b.sensitive,
            &a.sensitive,
        )
        .into_iter()
        .map(|p| AttributeValue {
            path: format_path(&p),
            before: redacted(value_at(&b.attributes, &p), &p, &trees, &scrubber),
            after: redacted(value_at(&a.attributes, &p), &p, &trees, &scrubber),
        })
        .collect();
        values.push(InstanceValues {
            address: c.address.clone(),
            change: "changed".into(),
            attributes,
        });
    }
    values.sort_by(|x, y| x.address.cmp(&y.address));
    let eo = BTreeMap::new();
    let bo = before.map(|s| &s.outputs).unwrap_or(&eo);
    let ao = after.map(|s| &s.outputs).unwrap_or(&eo);
    let outputs = d
        .outputs_changed
        .iter()
        .map(|name| {
            let (bv, bs) = bo.get(name).cloned().unwrap_or((Value::Null, false));
            let (av, as_) = ao.get(name).cloned().unwrap_or((Value::Null, false));
            let sensitive = bs || as_;
            let path = [Step::Key(name.clone())];
            let tree = if sensitive { ALL.clone() } else { Value::Null };
            OutputValue {
                name: name.clone(),
                before: redacted(&bv, &path, &[&tree], &scrubber),
                after: redacted(&av, &path, &[&tree], &scrubber),
                sensitive,
            }
        })
        .collect();
    d.values = values;
    d.outputs = outputs;
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

    const V1: &[u8] = include_bytes!("../testdata/state_values_v1.json");
    const V2: &[u8] = include_bytes!("../testdata/state_values_v2.json");
    /// Every secret the test states hold: sensitive variables (marked in `db.input.password`,
    /// copied unmarked into `copy.input`, `db.output` and the sensitive output `pw`), and a
    /// literal nothing marks, under the name `db_password` (copied into the output
    /// `named_copy`).
    const SECRETS: &[&str] = &[
        "first-secret-1111",
        "second-secret-2222",
        "named-secret-7777",
    ];

    fn snap(b: &[u8]) -> StateSnapshot {
        StateSnapshot::from_state_json(b).unwrap()
    }

    fn no_secret_in(d: &StateDiff, secrets: &[&str]) -> Value {
        let bytes = serde_json::to_vec(d).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        for s in secrets {
            assert!(!text.contains(s), "{s} in {text}");
        }
        serde_json::from_str(&text).unwrap()
    }

    fn attr<'a>(d: &'a StateDiff, address: &str, path: &str) -> &'a AttributeValue {
        let inst = d
            .values
            .iter()
            .find(|v| v.address == address)
            .unwrap_or_else(|| panic!("no values for {address}: {d:?}"));
        inst.attributes
            .iter()
            .find(|a| a.path == path)
            .unwrap_or_else(|| panic!("no {path} in {inst:?}"))
    }

    #[test]
    fn values_of_a_create_are_redacted() {
        let v1 = snap(V1);
        let d = diff_values(None, Some(&v1));
        let j = no_secret_in(&d, SECRETS);
        let kinds: Vec<(&str, &str)> = d
            .values
            .iter()
            .map(|v| (v.address.as_str(), v.change.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("terraform_data.copy", "added"),
                ("terraform_data.db", "added"),
                ("terraform_data.gone[0]", "added"),
                ("terraform_data.named", "added")
            ]
        );
        // Top-level attributes that are set; triggers_replace is null.
        let db = &d.values[1];
        let paths: Vec<&str> = db.attributes.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["id", "input", "output"]);
        assert_eq!(
            attr(&d, "terraform_data.db", "input").after,
            json!({"password": REDACTED, "region": "eu-west-1",
                   "tags": {"env": "prod", "team": "infra"}})
        );
        // The unmarked copy in `output` is caught by name and by the scrubber alike.
        assert_eq!(
            attr(&d, "terraform_data.db", "output").after["password"],
            json!(REDACTED)
        );
        assert_eq!(attr(&d, "terraform_data.db", "input").before, Value::Null);
        // A copy of the marked secret inside an unmarked string.
        assert_eq!(
            attr(&d, "terraform_data.copy", "input").after,
            json!(format!("conn=postgres://app:{REDACTED}@db.internal/app"))
        );
        // Named like a secret, marked by nothing.
        assert_eq!(
            attr(&d, "terraform_data.named", "input").after,
            json!({"db_password": REDACTED, "size": 2})
        );
        let outs: Vec<(&str, &Value, bool)> = d
            .outputs
            .iter()
            .map(|o| (o.name.as_str(), &o.after, o.sensitive))
            .collect();
        assert_eq!(
            outs,
            [
                ("extra", &json!("yes"), false),
                // An unmarked output holding a value stored under a secret-looking name.
                ("named_copy", &json!(REDACTED), false),
                ("pw", &json!(REDACTED), true),
                ("region", &json!("eu-west-1"), false),
            ]
        );
        // The diff_opt part is unchanged.
        assert_eq!(d.added.len(), 4);
        assert_eq!(j["serial"], json!([null, v1.serial()]));
    }

    #[test]
    fn values_of_an_update_and_a_delete_are_redacted() {
        let (v1, v2) = (snap(V1), snap(V2));
        let d = diff_values(Some(&v1), Some(&v2));
        no_secret_in(&d, SECRETS);
        assert_eq!(d.removed, ["terraform_data.gone[0]"]);
        let gone = d.values.iter().find(|v| v.change == "removed").unwrap();
        assert_eq!(gone.address, "terraform_data.gone[0]");
        assert_eq!(
            attr(&d, "terraform_data.gone[0]", "input").before,
            json!("only-in-v1")
        );
        assert_eq!(
            attr(&d, "terraform_data.gone[0]", "input").after,
            Value::Null
        );
        // One entry per changed path, before and after.
        let db = d
            .values
            .iter()
            .find(|v| v.address == "terraform_data.db")
            .unwrap();
        assert_eq!(db.change, "changed");
        let paths: Vec<&str> = db.attributes.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "input.password",
                "input.region",
                "output.password",
                "output.region"
            ]
        );
        let region = attr(&d, "terraform_data.db", "input.region");
        assert_eq!(
            (&region.before, &region.after),
            (&json!("eu-west-1"), &json!("us-east-2"))
        );
        let pw = attr(&d, "terraform_data.db", "input.password");
        assert_eq!(
            (&pw.before, &pw.after),
            (&json!(REDACTED), &json!(REDACTED))
        );
        let pw = attr(&d, "terraform_data.db", "output.password");
        assert_eq!(
            (&pw.before, &pw.after),
            (&json!(REDACTED), &json!(REDACTED))
        );
        let copy = attr(&d, "terraform_data.copy", "input");
        assert_eq!(
            copy.before,
            json!(format!("conn=postgres://app:{REDACTED}@db.internal/app"))
        );
        assert_eq!(copy.after, copy.before);
        let size = attr(&d, "terraform_data.named", "input.size");
        assert_eq!((&size.before, &size.after), (&json!(2), &json!(3)));
        let o: BTreeMap<&str, &OutputValue> =
            d.outputs.iter().map(|o| (o.name.as_str(), o)).collect();
        assert_eq!(
            o.keys().copied().collect::<Vec<_>>(),
            ["extra", "pw", "region"]
        );
        assert_eq!(
            (&o["extra"].before, &o["extra"].after),
            (&json!("yes"), &Value::Null)
        );
        assert_eq!(
            (&o["pw"].before, &o["pw"].after, o["pw"].sensitive),
            (&json!(REDACTED), &json!(REDACTED), true)
        );
        assert_eq!(o["region"].after, json!("us-east-2"));

        // Deleting the state: every instance removed, every output gone.
        let d = diff_values(Some(&v2), None);
        no_secret_in(&d, SECRETS);
        assert!(d.values.iter().all(|v| v.change == "removed"));
        assert_eq!(d.values.len(), 3);
        assert!(d.outputs.iter().all(|o| o.after.is_null()));
    }

    #[test]
    fn state_values_are_redacted_and_diffed() {
        use crate::values::diff_state_values;
        let none = Scrubber::new(Vec::<String>::new());
        let (v1, v2) = (snap(V1).values(&none), snap(V2).values(&none));
        for v in [&v1, &v2] {
            let text = v.to_string();
            for s in SECRETS {
                assert!(!text.contains(s), "{s} in {text}");
            }
        }
        assert_eq!(
            v1["instances"]["terraform_data.db"]["attributes"]["input"]["password"],
            json!(REDACTED)
        );
        assert_eq!(v1["outputs"]["pw"]["value"], json!(REDACTED));
        // Against itself: nothing.
        assert_eq!(diff_state_values(&v1, &v1), (vec![], vec![]));
        let (inst, outs) = diff_state_values(&v1, &v2);
        let by: BTreeMap<&str, &InstanceValues> =
            inst.iter().map(|i| (i.address.as_str(), i)).collect();
        assert_eq!(by["terraform_data.gone[0]"].change, "removed");
        let db = by["terraform_data.db"];
        let region = db
            .attributes
            .iter()
            .find(|a| a.path == "input.region")
            .unwrap();
        assert_eq!(
            (&region.before, &region.after),
            (&json!("eu-west-1"), &json!("us-east-2"))
        );
        // Redacted on both sides: not listed as a change (which secret changed is unknown).
        assert!(!db.attributes.iter().any(|a| a.path == "input.password"));
        assert!(outs.iter().any(|o| o.name == "pw" && o.sensitive));
        // Only a sensitive value changes: seen by its hash, not shown.
        let mut v: Value = serde_json::from_slice(V1).unwrap();
        let db = v["resources"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["name"] == "db")
            .unwrap();
        db["instances"][0]["attributes"]["input"]["value"]["password"] = json!("third-secret-3333");
        let v3 = snap(&serde_json::to_vec(&v).unwrap()).values(&none);
        assert!(!v3.to_string().contains("third-secret-3333"));
        let (inst, _) = diff_state_values(&v1, &v3);
        assert_eq!(inst.len(), 1, "{inst:?}");
        assert_eq!(inst[0].address, "terraform_data.db");
        assert_eq!(inst[0].attributes[0].path, REDACTED);
        // A value the run's scrubber removed stays redacted on the current side.
        let scrubbed = snap(V1).values(&Scrubber::new(["eu-west-1"]));
        let (inst, _) = diff_state_values(&scrubbed, &v2);
        let db = inst
            .iter()
            .find(|i| i.address == "terraform_data.db")
            .unwrap();
        let region = db
            .attributes
            .iter()
            .find(|a| a.path == "input.region")
            .unwrap();
        assert_eq!(region.after, json!(REDACTED));
    }

    #[test]
    fn values_redact_by_either_side_and_by_name() {
        // The older real state: `token` and the output `tokout` mark nothing.
        let a = snap(STATE_A);
        let secrets = ["cli-pw-4321", "literal-secret-5555", "envtoken-1234"];
        for d in [diff_values(None, Some(&a)), diff_values(Some(&a), None)] {
            no_secret_in(&d, &secrets);
        }
        // A value that turns sensitive is redacted on both sides, though only one marks it.
        let mut v: Value = serde_json::from_slice(STATE_A).unwrap();
        let inst = &mut v["resources"][1]["instances"][0];
        inst["attributes"]["input"]["value"] = json!("now-secret-8888");
        inst["sensitive_attributes"] = json!([[{"type": "get_attr", "value": "input"}]]);
        let b = snap(&serde_json::to_vec(&v).unwrap());
        let d = diff_values(Some(&a), Some(&b));
        let x = attr(&d, "terraform_data.b", "input");
        assert_eq!((&x.before, &x.after), (&json!(REDACTED), &json!(REDACTED)));
        // Its earlier value lives on unmarked in `output` (after): scrubbed as a secret of
        // the other state.
        no_secret_in(&d, &["now-secret-8888"]);
        assert!(d.changed.iter().any(|c| c.address == "terraform_data.b"));
        // Names alone redact what the scrubber cannot catch: short strings and numbers.
        let inst = &mut v["resources"][1]["instances"][0];
        inst["attributes"]["input"]["value"] =
            json!({"api_token": "xyz", "pin_secret": 4242, "size": 1});
        inst["sensitive_attributes"] = json!([]);
        let c = snap(&serde_json::to_vec(&v).unwrap());
        let d = diff_values(Some(&a), Some(&c));
        assert_eq!(
            attr(&d, "terraform_data.b", "input").after,
            json!({"api_token": REDACTED, "pin_secret": REDACTED, "size": 1})
        );
        // Records without values keep their old shape.
        let plain = serde_json::to_value(a.diff(&b)).unwrap();
        assert!(plain.get("values").is_none() && plain.get("outputs").is_none());
        for n in [
            "db_password",
            "Api_Token",
            "client_secret",
            "tls_private_key",
            "credentials",
        ] {
            assert!(looks_secret(n), "{n}");
        }
        for n in ["region", "tags", "id", "private_ip", "key_name"] {
            assert!(!looks_secret(n), "{n}");
        }
    }
}
