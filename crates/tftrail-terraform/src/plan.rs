//! Redacted, resource-level summaries of `terraform show -json PLANFILE`.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::redact::{
    changed_step_paths, collect_leaves, format_path, redact_by_tree, redact_by_tree_in_place,
    value_at, Scrubber, Step, REDACTED,
};
use crate::state::AttributeValue;
use crate::values::UNKNOWN;

/// One resource change (or drift) from a plan, with values redacted.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceChange {
    /// Full address (`module.m.aws_x.y["k"]`).
    pub address: String,
    /// Module address, if not the root module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_address: Option<String>,
    /// `managed` or `data`.
    pub mode: String,
    /// Resource type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Resource name.
    pub name: String,
    /// Instance key (`count` number or `for_each` string), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<Value>,
    /// Provider.
    pub provider: String,
    /// Raw action list from Terraform.
    pub actions: Vec<String>,
    /// One word: create, update, delete, replace, read, no-op, forget, or the joined list.
    pub action: String,
    /// For replacements: `delete-before-create` or `create-before-destroy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_order: Option<String>,
    /// Terraform's `action_reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_reason: Option<String>,
    /// Attribute paths that force replacement.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replace_paths: Vec<String>,
    /// Attribute paths that change (or become unknown until apply).
    pub changed_paths: Vec<String>,
    /// Import being planned (`{"id": ...}`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub importing: Option<Value>,
    /// Prior value, sensitive leaves replaced by the marker.
    pub before: Value,
    /// Planned value (unknowns absent), sensitive leaves replaced by the marker.
    pub after: Value,
    /// Each changed path (as in `changed_paths`) with its value before and after, redacted
    /// like `before` and `after`; a value known only after the apply is
    /// [`UNKNOWN`](crate::values::UNKNOWN). The shape of a state diff's
    /// [`InstanceValues::attributes`](crate::InstanceValues::attributes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeValue>,
}

/// One root output change, redacted.
#[derive(Debug, Clone, Serialize)]
pub struct OutputChange {
    /// Output name.
    pub name: String,
    /// Action word.
    pub action: String,
    /// Whether the output is sensitive (before or after); then both values are the marker.
    pub sensitive: bool,
    /// Prior value (redacted).
    pub before: Value,
    /// Planned value (redacted; `null` when unknown).
    pub after: Value,
    /// Whether the planned value is unknown until apply.
    pub after_unknown: bool,
}

/// Counts of planned resource actions. A replacement counts once, under `replace` only.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Creations.
    pub add: u32,
    /// In-place updates.
    pub change: u32,
    /// Deletions.
    pub destroy: u32,
    /// Replacements (delete+create in either order).
    pub replace: u32,
    /// Imports.
    pub import: u32,
    /// No-op instances.
    pub no_op: u32,
    /// Data reads.
    pub read: u32,
    /// Forgets (removed from state without destroying).
    pub forget: u32,
}

/// A redacted plan summary, plus the redacted full plan JSON (as a blob) and the
/// secrets found (for scrubbing; never serialised).
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    /// `format_version` of the JSON.
    pub format_version: Option<String>,
    /// Terraform version that made the plan.
    pub terraform_version: Option<String>,
    /// Whether planning errored.
    pub errored: Option<bool>,
    /// Whether the plan can be applied.
    pub applyable: Option<bool>,
    /// Whether the plan is complete.
    pub complete: Option<bool>,
    /// Plan timestamp.
    pub timestamp: Option<String>,
    /// Counts.
    pub counts: Counts,
    /// Resource changes (no-op instances included).
    pub resource_changes: Vec<ResourceChange>,
    /// Drift detected outside Terraform.
    pub resource_drift: Vec<ResourceChange>,
    /// Output changes.
    pub output_changes: Vec<OutputChange>,
    /// Names of input variables (values never kept).
    pub variables: Vec<String>,
    #[serde(skip)]
    redacted_json: Vec<u8>,
    #[serde(skip)]
    secrets: Vec<String>,
    /// Each input variable's value as the plan holds it (never serialised).
    #[serde(skip)]
    variable_values: Vec<(String, Value)>,
}

fn action_word(actions: &[String]) -> (String, Option<String>) {
    let has = |a: &str| actions.iter().any(|x| x == a);
    if has("delete") && has("create") {
        let cbd =
            actions.iter().position(|a| a == "create") < actions.iter().position(|a| a == "delete");
        let order = if cbd {
            "create-before-destroy"
        } else {
            "delete-before-create"
        };
        return ("replace".into(), Some(order.into()));
    }
    (actions.join("+"), None)
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(String::from)
}

fn path_of(steps: &Value) -> String {
    let steps: Vec<Step> = steps
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| match x {
            Value::Number(n) => Step::Index(n.as_u64().unwrap_or(0) as usize),
            Value::String(s) => Step::Key(s.clone()),
            other => Step::Key(other.to_string()),
        })
        .collect();
    format_path(&steps)
}

fn resource_change(rc: &Value, secrets: &mut Vec<String>) -> ResourceChange {
    let null = Value::Null;
    let ch = rc.get("change").unwrap_or(&null);
    let g = |k: &str| ch.get(k).unwrap_or(&null);
    let actions: Vec<String> = g("actions")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let (action, replace_order) = action_word(&actions);
    let before = redact_by_tree(g("before"), g("before_sensitive"), secrets);
    let after = redact_by_tree(g("after"), g("after_sensitive"), secrets);
    let steps = if actions
        .iter()
        .all(|a| a == "no-op" || a == "read" || a == "forget")
    {
        Vec::new()
    } else {
        changed_step_paths(
            g("before"),
            g("after"),
            g("after_unknown"),
            g("before_sensitive"),
            g("after_sensitive"),
        )
    };
    let changed = steps.iter().map(|p| format_path(p)).collect();
    let attributes = steps
        .iter()
        .map(|p| AttributeValue {
            path: format_path(p),
            before: value_at(&before, p).clone(),
            after: if value_at(g("after_unknown"), p) == &Value::Bool(true) {
                Value::String(UNKNOWN.into())
            } else {
                value_at(&after, p).clone()
            },
        })
        .collect();
    ResourceChange {
        address: s(rc, "address").unwrap_or_default(),
        module_address: s(rc, "module_address"),
        mode: s(rc, "mode").unwrap_or_default(),
        type_: s(rc, "type").unwrap_or_default(),
        name: s(rc, "name").unwrap_or_default(),
        index: rc.get("index").cloned(),
        provider: s(rc, "provider_name").unwrap_or_default(),
        actions,
        action,
        replace_order,
        action_reason: s(rc, "action_reason"),
        replace_paths: g("replace_paths")
            .as_array()
            .into_iter()
            .flatten()
            .map(path_of)
            .collect(),
        changed_paths: changed,
        importing: ch.get("importing").cloned(),
        before,
        after,
        attributes,
    }
}

/// Walks the whole plan JSON and redacts, in place, every value its own sensitivity markers
/// cover: `before`/`after` by `*_sensitive`, `values` by `sensitive_values`, outputs with
/// `"sensitive": true`. Sensitive leaves go to `secrets`.
fn redact_generic(v: &mut Value, secrets: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            let sensitive_flag = o.get("sensitive").and_then(Value::as_bool) == Some(true);
            // The sensitivity trees of this object's values (small), read before the values
            // change.
            let before_sens = o.get("before_sensitive").cloned();
            let after_sens = o.get("after_sensitive").cloned();
            let values_sens = o.get("sensitive_values").cloned();
            for (k, val) in o.iter_mut() {
                match (k.as_str(), &before_sens, &after_sens, &values_sens) {
                    ("before", Some(sens), _, _) | ("after", _, Some(sens), _) => {
                        redact_by_tree_in_place(val, sens, secrets);
                        redact_generic(val, secrets);
                    }
                    ("values", _, _, Some(sens)) => redact_by_tree_in_place(val, sens, secrets),
                    ("value", ..) if sensitive_flag => {
                        redact_by_tree_in_place(val, &Value::Bool(true), secrets)
                    }
                    _ => redact_generic(val, secrets),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_generic(x, secrets)),
        _ => {}
    }
}

/// In `configuration`: replace every `constant_value` (literals may be hard-coded secrets)
/// except count/for_each, and the `default` of variables declared sensitive.
fn redact_configuration(v: &mut Value, in_count: bool, secrets: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            let sensitive = o.get("sensitive").and_then(Value::as_bool) == Some(true);
            for (k, val) in o.iter_mut() {
                match k.as_str() {
                    "constant_value" if !in_count => {
                        *val = Value::String(REDACTED.into());
                    }
                    "default" if sensitive => {
                        collect_leaves(val, secrets);
                        *val = Value::String(REDACTED.into());
                    }
                    "count_expression" | "for_each_expression" => {
                        redact_configuration(val, true, secrets)
                    }
                    _ => redact_configuration(val, in_count, secrets),
                }
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|x| redact_configuration(x, in_count, secrets)),
        _ => {}
    }
}

/// Names of variables declared sensitive anywhere in the configuration's root module.
fn sensitive_variable_names(plan: &Value) -> Vec<String> {
    plan.pointer("/configuration/root_module/variables")
        .and_then(Value::as_object)
        .map(|vars| {
            vars.iter()
                .filter(|(_, d)| d.get("sensitive").and_then(Value::as_bool) == Some(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Scrubs the values of attribute changes.
fn scrub_attributes(scrubber: &Scrubber, attributes: &mut [AttributeValue]) {
    for a in attributes {
        scrubber.scrub_value(&mut a.before);
        scrubber.scrub_value(&mut a.after);
    }
}

impl PlanSummary {
    /// Builds the summary from the bytes of `terraform show -json PLANFILE`.
    ///
    /// Redaction of the full JSON (returned by [`PlanSummary::redacted_json`]): every value
    /// Terraform marks sensitive (resource changes, drift, planned values, prior state,
    /// outputs) becomes `"(sensitive value)"`; **every** input variable value is replaced
    /// (a `-var-file` may hold secrets in variables not declared sensitive); in
    /// `configuration`, every literal `constant_value` (except count/for_each) and the
    /// defaults of sensitive variables are replaced; finally every string equal to or
    /// containing a secret found anywhere is scrubbed.
    pub fn from_show_json(bytes: &[u8]) -> Result<Self> {
        let plan: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::Plan(format!("`show -json` output is not JSON: {e}")))?;
        if !plan.is_object() || plan.get("format_version").is_none() {
            return Err(Error::Plan("not a Terraform plan JSON document".into()));
        }
        let mut secrets = Vec::new();
        // Secrets from sensitive variables.
        for name in sensitive_variable_names(&plan) {
            if let Some(v) = plan.pointer(&format!(
                "/variables/{}/value",
                name.replace('~', "~0").replace('/', "~1")
            )) {
                collect_leaves(v, &mut secrets);
            }
        }
        let changes = |key: &str, secrets: &mut Vec<String>| -> Vec<ResourceChange> {
            plan.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|rc| resource_change(rc, secrets))
                .collect()
        };
        let mut resource_changes = changes("resource_changes", &mut secrets);
        let mut resource_drift = changes("resource_drift", &mut secrets);
        let mut output_changes: Vec<OutputChange> = plan
            .get("output_changes")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, ch)| {
                let null = Value::Null;
                let g = |k: &str| ch.get(k).unwrap_or(&null);
                let sens = g("before_sensitive") == &Value::Bool(true)
                    || g("after_sensitive") == &Value::Bool(true);
                let actions: Vec<String> = g("actions")
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(String::from))
                    .collect();
                let (before, after) = if sens {
                    let mut b = Value::Null;
                    let mut a = Value::Null;
                    if !g("before").is_null() {
                        collect_leaves(g("before"), &mut secrets);
                        b = Value::String(REDACTED.into());
                    }
                    if !g("after").is_null() {
                        collect_leaves(g("after"), &mut secrets);
                        a = Value::String(REDACTED.into());
                    }
                    (b, a)
                } else {
                    (
                        redact_by_tree(g("before"), g("before_sensitive"), &mut secrets),
                        redact_by_tree(g("after"), g("after_sensitive"), &mut secrets),
                    )
                };
                OutputChange {
                    name: name.clone(),
                    action: action_word(&actions).0,
                    sensitive: sens,
                    before,
                    after,
                    after_unknown: g("after_unknown") == &Value::Bool(true),
                }
            })
            .collect();
        // Full-document redaction, in place: the few top-level facts the summary keeps are
        // taken first.
        let format_version = s(&plan, "format_version");
        let terraform_version = s(&plan, "terraform_version");
        let errored = plan.get("errored").and_then(Value::as_bool);
        let applyable = plan.get("applyable").and_then(Value::as_bool);
        let complete = plan.get("complete").and_then(Value::as_bool);
        let timestamp = s(&plan, "timestamp");
        let variables: Vec<String> = plan
            .get("variables")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let variable_values: Vec<(String, Value)> = plan
            .get("variables")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.get("value").cloned().unwrap_or(Value::Null)))
                    .collect()
            })
            .unwrap_or_default();
        let mut redacted = plan;
        redact_generic(&mut redacted, &mut secrets);
        if let Some(vars) = redacted.get_mut("variables").and_then(Value::as_object_mut) {
            for (_, v) in vars.iter_mut() {
                if let Some(val) = v.get_mut("value") {
                    *val = Value::String(REDACTED.into());
                }
            }
        }
        if let Some(cfg) = redacted.get_mut("configuration") {
            redact_configuration(cfg, false, &mut secrets);
        }
        let scrubber = Scrubber::new(&secrets);
        scrubber.scrub_value(&mut redacted);
        for rc in resource_changes.iter_mut().chain(resource_drift.iter_mut()) {
            scrubber.scrub_value(&mut rc.before);
            scrubber.scrub_value(&mut rc.after);
            scrub_attributes(&scrubber, &mut rc.attributes);
            if let Some(i) = rc.importing.as_mut() {
                scrubber.scrub_value(i);
            }
        }
        for oc in output_changes.iter_mut() {
            scrubber.scrub_value(&mut oc.before);
            scrubber.scrub_value(&mut oc.after);
        }
        let mut counts = Counts::default();
        for rc in &resource_changes {
            match rc.action.as_str() {
                "create" => counts.add += 1,
                "update" => counts.change += 1,
                "delete" => counts.destroy += 1,
                "replace" => counts.replace += 1,
                "no-op" => counts.no_op += 1,
                "read" => counts.read += 1,
                "forget" => counts.forget += 1,
                _ => {}
            }
            if rc.importing.is_some() {
                counts.import += 1;
            }
        }
        let redacted_json =
            serde_json::to_vec(&redacted).map_err(|e| Error::Plan(e.to_string()))?;
        Ok(PlanSummary {
            format_version,
            terraform_version,
            errored,
            applyable,
            complete,
            timestamp,
            counts,
            resource_changes,
            resource_drift,
            output_changes,
            variables,
            redacted_json,
            secrets,
            variable_values,
        })
    }

    /// The redacted plan JSON, to store as a blob.
    pub fn redacted_json(&self) -> &[u8] {
        &self.redacted_json
    }

    /// The values (scalar leaves) of the input variables named (`None`: of every one), for
    /// scrubbing: the caller knows which were given on the command line.
    pub fn variable_values(&self, names: Option<&[String]>) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.variable_values {
            if names.is_none_or(|n| n.contains(k)) {
                collect_leaves(v, &mut out);
            }
        }
        out
    }

    /// Values found sensitive in the plan (for scrubbing other text).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// Scrubs additional known secrets (e.g. `-var` / `TF_VAR_*` values) out of the
    /// summary and the redacted JSON.
    pub fn scrub_with(&mut self, scrubber: &Scrubber) {
        if scrubber.is_empty() {
            return;
        }
        if let Ok(mut v) = serde_json::from_slice::<Value>(&self.redacted_json) {
            scrubber.scrub_value(&mut v);
            if let Ok(b) = serde_json::to_vec(&v) {
                self.redacted_json = b;
            }
        }
        for rc in self
            .resource_changes
            .iter_mut()
            .chain(self.resource_drift.iter_mut())
        {
            scrubber.scrub_value(&mut rc.before);
            scrubber.scrub_value(&mut rc.after);
            scrub_attributes(scrubber, &mut rc.attributes);
        }
        for oc in self.output_changes.iter_mut() {
            scrubber.scrub_value(&mut oc.before);
            scrubber.scrub_value(&mut oc.after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &[u8] = include_bytes!("../testdata/plan_create.json");
    const UPDATE: &[u8] = include_bytes!("../testdata/plan_update.json");
    const SECRETS: &[&str] = &[
        "cli-pw-4321",
        "literal-secret-5555",
        "default-pw-9876",
        "cli-pw-changed",
    ];

    fn assert_clean(p: &PlanSummary) {
        let summary = serde_json::to_string(p).unwrap();
        let blob = String::from_utf8_lossy(p.redacted_json());
        for s in SECRETS {
            assert!(!summary.contains(s), "{s} in summary");
            assert!(!blob.contains(s), "{s} in blob");
        }
    }

    #[test]
    fn create_plan() {
        let p = PlanSummary::from_show_json(CREATE).unwrap();
        assert_eq!(
            p.counts,
            Counts {
                add: 4,
                ..Default::default()
            }
        );
        let a = &p.resource_changes[0];
        assert_eq!(a.address, "terraform_data.a");
        assert_eq!(a.after["input"]["password"], REDACTED);
        assert_eq!(a.after["input"]["region"], "eu-west-1");
        assert_eq!(a.changed_paths, vec!["input", "id", "output"]);
        let pw = p.output_changes.iter().find(|o| o.name == "pw").unwrap();
        assert!(pw.sensitive);
        assert_eq!(pw.after, REDACTED);
        assert!(p.secrets().contains(&"cli-pw-4321".to_string()));
        assert_eq!(p.variables, vec!["password", "region", "token"]);
        assert_clean(&p);
        // token came from TF_VAR (not declared sensitive): only the caller's scrubber knows.
        let mut p = p;
        assert!(String::from_utf8_lossy(p.redacted_json()).contains("envtoken-1234"));
        p.scrub_with(&Scrubber::new(["envtoken-1234"]));
        assert!(!String::from_utf8_lossy(p.redacted_json()).contains("envtoken-1234"));
        assert!(!serde_json::to_string(&p).unwrap().contains("envtoken-1234"));
    }

    #[test]
    fn update_plan() {
        let p = PlanSummary::from_show_json(UPDATE).unwrap();
        assert_eq!(
            p.counts,
            Counts {
                change: 1,
                destroy: 1,
                replace: 1,
                no_op: 1,
                ..Default::default()
            }
        );
        let a = &p.resource_changes[0];
        assert_eq!(a.action, "update");
        assert_eq!(
            a.changed_paths,
            vec!["input.password", "input.region", "output"]
        );
        let b = &p.resource_changes[1];
        assert_eq!(b.action, "replace");
        assert_eq!(b.replace_order.as_deref(), Some("create-before-destroy"));
        assert_eq!(b.replace_paths, vec!["triggers_replace"]);
        assert_eq!(
            b.action_reason.as_deref(),
            Some("replace_because_cannot_update")
        );
        let c1 = &p.resource_changes[3];
        assert_eq!(
            (c1.action.as_str(), c1.index.clone()),
            ("delete", Some(serde_json::json!(1)))
        );
        // before.output.password is not marked sensitive by Terraform: scrubbed anyway.
        assert_eq!(a.before["output"]["password"], REDACTED);
        assert_clean(&p);
    }

    #[test]
    fn bad_input() {
        assert!(matches!(
            PlanSummary::from_show_json(b"nope"),
            Err(Error::Plan(_))
        ));
        assert!(matches!(
            PlanSummary::from_show_json(b"{}"),
            Err(Error::Plan(_))
        ));
        assert!(matches!(
            PlanSummary::from_show_json(b"[1]"),
            Err(Error::Plan(_))
        ));
    }
}
