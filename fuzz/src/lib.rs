//! Helpers shared by the fuzz targets (`fuzz_targets/`) and the seed generator
//! (`examples/seeds.rs`): a fixed signing key, so that targets can sign what the fuzzer writes
//! and reach the parsers behind a signature, and the plan generator of the `plan_secrets`
//! target.

use arbitrary::{Result, Unstructured};
use serde_json::{json, Map, Value};
use tftrail_core::checkpoint::{SigningKey, VerifierKey};

/// The fuzz log's signing key (a fixed key: a crash must reproduce from its input alone).
pub const SKEY: &str =
    "PRIVATE+KEY+fuzz.example/log+c90ed6df+AYefoNcW/NMHusQcGxjE+lUc9IJBk8Q3jtwOkC88bDBc";
/// Its verifier key.
pub const VKEY: &str = "fuzz.example/log+c90ed6df+AWtspwF2kCde2DQjVeP38gnIoHv+uTaIb5NRKDMLwyJT";

/// The fixed signing key.
pub fn signing_key() -> SigningKey {
    SigningKey::parse(SKEY).expect("the fixed fuzz key parses")
}

/// The fixed verifier key.
pub fn verifier() -> VerifierKey {
    VerifierKey::parse(VKEY).expect("the fixed fuzz key parses")
}

/// Signs `text` with the fixed key when it is text a signed note can carry (what
/// [`SigningKey::sign_note`] requires of its callers), else `None`.
pub fn sign(text: &[u8]) -> Option<Vec<u8>> {
    signed_note::Note::new(text, &[]).ok()?;
    Some(signing_key().sign_note(text))
}

/// Every marker in a generated plan starts with this; nothing else in a generated plan (keys,
/// other strings, the summary's own field names, the redaction marker) holds an upper-case
/// letter followed by this, so finding it in an output is a leak.
pub const MARKER: &str = "ZQ";

/// A generated plan (`terraform show -json` shape) whose every sensitive value holds
/// [`MARKER`]: the values under `*_sensitive` / `sensitive_values` trees that say `true`, the
/// outputs marked sensitive, the values of variables (every one is redacted), the defaults of
/// sensitive variables and the configuration's literal `constant_value`s. Copies of secrets
/// also appear in places nothing marks sensitive (whole, or inside longer strings): redaction
/// must scrub those too.
pub struct PlanGen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    secrets: Vec<String>,
    /// Whether new markers are secrets the plan itself reveals as such (so that copies of them
    /// elsewhere must be scrubbed): not for values redacted only because of where they are
    /// (every variable value, configuration literals).
    register: bool,
}

const KEYS: &[&str] = &[
    "id",
    "name",
    "tags",
    "password",
    "value",
    "values",
    "list",
    "nested",
    "a",
    "b",
    "c",
    "0",
    "before",
    "after",
    "sensitive",
    "type",
    "x.y",
    "k\"q",
    "k/s",
    "k~t",
    "é",
    "",
];
const WORDS: &[&str] = &[
    "",
    "abc",
    "us-east-1",
    "hello world",
    "line\nbreak",
    "q\"uote",
    "back\\slash",
    "é€😀",
    "\u{0}",
    "(sensitive value)",
    "known after apply",
];

impl<'a, 'b> PlanGen<'a, 'b> {
    /// A generator drawing its choices from `u`.
    pub fn new(u: &'a mut Unstructured<'b>) -> Self {
        PlanGen {
            u,
            secrets: Vec::new(),
            register: true,
        }
    }

    fn secret(&mut self) -> Result<String> {
        let n = self.u.int_in_range(0..=6)?;
        let mut s = String::from(MARKER);
        for _ in 0..n {
            s.push(*self.u.choose(&['A', 'B', '7', '9', '-', ' ', 'x'])?);
        }
        // Another marker's prefix or suffix, now and then (overlapping secrets).
        if !self.secrets.is_empty() && self.u.ratio(1, 8)? {
            let other = self.u.choose(&self.secrets)?.clone();
            s.push_str(&other);
        }
        if self.register {
            self.secrets.push(s.clone());
        }
        Ok(s)
    }

    fn plain_string(&mut self) -> Result<String> {
        // Copies of secrets found elsewhere, whole or inside other text (at least
        // MIN_SCRUB_LEN characters: shorter ones are, by design, only redacted where marked).
        let long: Vec<&String> = self.secrets.iter().filter(|s| s.len() >= 4).collect();
        if !long.is_empty() && self.u.ratio(1, 6)? {
            let s = (*self.u.choose(&long)?).clone();
            let pre = *self.u.choose(WORDS)?;
            let post = *self.u.choose(WORDS)?;
            return Ok(format!("{pre}{s}{post}"));
        }
        Ok(self.u.choose(WORDS)?.to_string())
    }

    fn key(&mut self) -> Result<String> {
        Ok(self.u.choose(KEYS)?.to_string())
    }

    /// A value in which everything is secret: string leaves and object keys are markers.
    fn secret_tree(&mut self, depth: u32) -> Result<Value> {
        let pick = if depth == 0 {
            0
        } else {
            self.u.int_in_range(0..=5)?
        };
        Ok(match pick {
            0 | 1 => Value::String(self.secret()?),
            2 => {
                let mut m = Map::new();
                for _ in 0..self.u.int_in_range(0..=3)? {
                    let k = self.secret()?;
                    // A repeated key would drop the first value, and with it secrets that
                    // copies elsewhere may hold.
                    if !m.contains_key(&k) {
                        let v = self.secret_tree(depth - 1)?;
                        m.insert(k, v);
                    }
                }
                Value::Object(m)
            }
            3 => {
                let n = self.u.int_in_range(0..=3)?;
                Value::Array(
                    (0..n)
                        .map(|_| self.secret_tree(depth - 1))
                        .collect::<Result<_>>()?,
                )
            }
            // Other secret scalars: redacted, but not checked (a number or `true` may well
            // appear in the output for other reasons).
            4 => json!(self.u.int_in_range(0..=99_999u32)?),
            _ => Value::Null,
        })
    }

    /// A value and its sensitivity tree (`true` over every part holding markers).
    pub fn value_and_sens(&mut self, depth: u32) -> Result<(Value, Value)> {
        let pick = if depth == 0 {
            self.u.int_in_range(0..=2)?
        } else {
            self.u.int_in_range(0..=6)?
        };
        Ok(match pick {
            0 => (Value::String(self.plain_string()?), self.not_sensitive()?),
            1 => (
                json!(self.u.int_in_range(0..=1000u32)?),
                self.not_sensitive()?,
            ),
            2 => (
                self.u
                    .choose(&[Value::Null, Value::Bool(true), Value::Bool(false)])?
                    .clone(),
                self.not_sensitive()?,
            ),
            3 | 4 => (self.secret_tree(depth)?, Value::Bool(true)),
            5 => {
                let mut v = Map::new();
                let mut s = Map::new();
                for _ in 0..self.u.int_in_range(0..=4)? {
                    let k = self.key()?;
                    if v.contains_key(&k) {
                        continue;
                    }
                    let (cv, cs) = self.value_and_sens(depth - 1)?;
                    v.insert(k.clone(), cv);
                    if cs != Value::Bool(false) || self.u.ratio(1, 2)? {
                        s.insert(k, cs);
                    }
                }
                (Value::Object(v), Value::Object(s))
            }
            _ => {
                let mut v = Vec::new();
                let mut s = Vec::new();
                for _ in 0..self.u.int_in_range(0..=4)? {
                    let (cv, cs) = self.value_and_sens(depth - 1)?;
                    v.push(cv);
                    s.push(cs);
                }
                (Value::Array(v), Value::Array(s))
            }
        })
    }

    fn output_side(&mut self) -> Result<(Value, Value)> {
        if self.u.ratio(1, 2)? {
            Ok((self.secret_tree(2)?, Value::Bool(true)))
        } else {
            self.value_and_sens(2)
        }
    }

    fn not_sensitive(&mut self) -> Result<Value> {
        Ok(if self.u.ratio(1, 2)? {
            Value::Bool(false)
        } else {
            Value::Object(Map::new())
        })
    }

    fn unknown_tree(&mut self, depth: u32) -> Result<Value> {
        Ok(match self.u.int_in_range(0..=3)? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            2 if depth > 0 => {
                let mut m = Map::new();
                for _ in 0..self.u.int_in_range(0..=3)? {
                    m.insert(self.key()?, self.unknown_tree(depth - 1)?);
                }
                Value::Object(m)
            }
            _ => Value::Object(Map::new()),
        })
    }

    fn actions(&mut self) -> Result<Value> {
        const ACTIONS: &[&[&str]] = &[
            &["create"],
            &["update"],
            &["delete"],
            &["no-op"],
            &["read"],
            &["forget"],
            &["delete", "create"],
            &["create", "delete"],
        ];
        Ok(json!(self.u.choose(ACTIONS)?))
    }

    fn resource_change(&mut self, i: usize) -> Result<Value> {
        let (before, before_sens) = self.value_and_sens(3)?;
        let (after, after_sens) = self.value_and_sens(3)?;
        let mut change = json!({
            "actions": self.actions()?,
            "before": before,
            "after": after,
            "after_unknown": self.unknown_tree(2)?,
            "before_sensitive": before_sens,
            "after_sensitive": after_sens,
        });
        if self.u.ratio(1, 8)? {
            change["importing"] = json!({"id": self.plain_string()?});
        }
        if self.u.ratio(1, 8)? {
            change["replace_paths"] = json!([[self.key()?]]);
        }
        Ok(json!({
            "address": format!("t_res.r{i}"),
            "mode": "managed",
            "type": "t_res",
            "name": format!("r{i}"),
            "provider_name": "registry.terraform.io/hashicorp/t",
            "change": change,
        }))
    }

    fn module_values(&mut self) -> Result<Value> {
        let mut resources = Vec::new();
        for i in 0..self.u.int_in_range(0..=2)? {
            let (values, sens) = self.value_and_sens(3)?;
            resources.push(json!({
                "address": format!("t_res.r{i}"),
                "values": values,
                "sensitive_values": sens,
            }));
        }
        Ok(json!({ "resources": resources }))
    }

    fn outputs(&mut self) -> Result<Value> {
        let mut m = Map::new();
        for i in 0..self.u.int_in_range(0..=2)? {
            let sensitive = self.u.ratio(1, 2)?;
            let value = if sensitive {
                self.secret_tree(2)?
            } else {
                Value::String(self.plain_string()?)
            };
            m.insert(
                format!("out{i}"),
                json!({"sensitive": sensitive, "value": value}),
            );
        }
        Ok(Value::Object(m))
    }

    /// The whole plan.
    pub fn plan(&mut self) -> Result<Value> {
        let mut variables = Map::new();
        let mut declared = Map::new();
        for i in 0..self.u.int_in_range(0..=3)? {
            let name = format!("var{i}");
            let sensitive = self.u.ratio(1, 2)?;
            self.register = sensitive;
            variables.insert(name.clone(), json!({"value": self.secret_tree(2)?}));
            self.register = true;
            let mut decl = json!({"sensitive": sensitive});
            if sensitive && self.u.ratio(1, 2)? {
                decl["default"] = self.secret_tree(2)?;
            }
            declared.insert(name, decl);
        }
        let mut resource_changes = Vec::new();
        for i in 0..self.u.int_in_range(0..=3)? {
            resource_changes.push(self.resource_change(i)?);
        }
        let mut resource_drift = Vec::new();
        for i in 0..self.u.int_in_range(0..=1)? {
            resource_drift.push(self.resource_change(i)?);
        }
        let mut output_changes = Map::new();
        for i in 0..self.u.int_in_range(0..=2)? {
            // Each side sensitive or not on its own (an output can become sensitive, or stop
            // being so): only a side marked sensitive holds markers.
            let (before, bs) = self.output_side()?;
            let (after, as_) = self.output_side()?;
            output_changes.insert(
                format!("out{i}"),
                json!({
                    "actions": self.actions()?,
                    "before": before,
                    "after": after,
                    "after_unknown": false,
                    "before_sensitive": bs,
                    "after_sensitive": as_,
                }),
            );
        }
        self.register = false;
        let constant = self.secret_tree(2)?;
        self.register = true;
        let count = self.u.int_in_range(0..=3u32)?;
        Ok(json!({
            "format_version": "1.2",
            "terraform_version": "1.9.8",
            "variables": variables,
            "planned_values": {
                "outputs": self.outputs()?,
                "root_module": self.module_values()?,
            },
            "resource_drift": resource_drift,
            "resource_changes": resource_changes,
            "output_changes": output_changes,
            "prior_state": {
                "format_version": "1.0",
                "values": {"outputs": self.outputs()?, "root_module": self.module_values()?},
            },
            "configuration": {
                "root_module": {
                    "variables": declared,
                    "resources": [{
                        "address": "t_res.r0",
                        "expressions": {"password": {"constant_value": constant}},
                        "count_expression": {"constant_value": count},
                    }],
                },
            },
            "errored": false,
            "applyable": true,
            "complete": true,
            "timestamp": "2026-12-02T17:00:00Z",
        }))
    }
}
