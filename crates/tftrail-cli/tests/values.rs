//! Values in every view, with real Terraform: `show` renders changes as Terraform users read
//! them (`~ input.size = "small" -> "large"`, `+`, `-`, `-/+`, `# forces replacement`,
//! `(sensitive value)`, `(known after apply)`), `blame` and `history` show the changed values,
//! `check-state` names the resource and attribute changed by hand with both values (and a
//! state only reformatted is no drift), long values are truncated in the record and whole in
//! a blob, and no secret appears in any output or stored byte.

mod common;

use std::path::Path;

use common::{code, stdout, Env};
use serde_json::{json, Value};
use sha2::Digest;

/// The sensitive variable's value (`-var`), a `sensitive()` literal, a value written into the
/// state by hand, and a variable not declared sensitive but given with `-var` to the plan
/// (scrubbed as every `-var` value is, also from the outcome of the plan's apply).
const SECRETS: &[&str] = &[
    "cli-pw-Secret-99f1",
    "literal-Secret-4242",
    "hand-Secret-7e3a",
    "cmdline-Label-5b1c",
];

fn big() -> String {
    "B".repeat(1000)
}

fn config(size: &str, gen: &str, keep: bool) -> String {
    format!(
        r#"
variable "pw" {{
  type      = string
  sensitive = true
}}
resource "terraform_data" "app" {{
  input = {{ size = "{size}", pw = var.pw, token = sensitive("{}") }}
}}
resource "terraform_data" "box" {{
  triggers_replace = "{gen}"
  input            = "box-{gen}"
}}
resource "terraform_data" "gone" {{
  count = {}
  input = "bye"
}}
variable "label" {{
  type    = string
  default = "none"
}}
resource "terraform_data" "label" {{
  input = var.label
}}
resource "terraform_data" "big" {{
  input = "{}"
}}
output "pw" {{
  value     = var.pw
  sensitive = true
}}
"#,
        SECRETS[1],
        if keep { 1 } else { 0 },
        big()
    )
}

struct T {
    env: Env,
    dir: std::path::PathBuf,
    /// Everything any view printed, searched for secrets at the end.
    seen: std::cell::RefCell<String>,
}

impl T {
    fn tf(&self, args: &[&str]) -> Vec<u64> {
        let (out, rec) = self.env.tf_run(&self.dir, args, &[]);
        assert_eq!(code(&out), 0, "{args:?}\n{}", common::describe(&out));
        rec
    }

    /// `tftrail args…` in the working directory: (exit code, stdout), recorded for the
    /// secret search.
    fn view(&self, args: &[&str]) -> (i32, String) {
        let out = self.env.tf_tftrail(&self.dir, args, &[]);
        let text = format!("{}{}", stdout(&out), common::stderr(&out));
        self.seen.borrow_mut().push_str(&text);
        (code(&out), stdout(&out))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (c, out) = self.view(args);
        assert_eq!(c, 0, "{args:?}: {out}");
        out
    }

    /// `show N` in text and as JSON.
    fn show(&self, n: u64) -> (String, Value) {
        let text = self.ok(&["show", &n.to_string()]);
        let j: Value = serde_json::from_str(&self.ok(&["show", &n.to_string(), "--json"])).unwrap();
        (text, j["record"].clone())
    }

    fn pw_var(&self) -> String {
        format!("pw={}", SECRETS[0])
    }

    fn write_config(&self, size: &str, gen: &str, keep: bool) {
        std::fs::write(self.dir.join("main.tf"), config(size, gen, keep)).unwrap();
    }
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Edits the state file: `f` on its JSON, then the serial bumped.
fn edit_state(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    v["serial"] = json!(v["serial"].as_u64().unwrap() + 1);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn instance<'a>(state: &'a mut Value, name: &str) -> &'a mut Value {
    state["resources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no resource {name}"))
        .pointer_mut("/instances/0")
        .unwrap()
}

#[test]
fn values_in_show_blame_history_and_check_state() {
    let env = Env::new();
    env.init();
    let dir = env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    let t = T {
        env,
        dir,
        seen: Default::default(),
    };
    let pw = t.pw_var();
    t.write_config("small", "1", true);
    t.tf(&["init", "-input=false"]);

    // Create: every attribute with its value; secrets redacted.
    let rec = t.tf(&["apply", "-input=false", "-auto-approve", "-var", &pw]);
    let created = *rec.last().unwrap();
    let (text, r) = t.show(created);
    has(&text, "  +   terraform_data.app");
    has(
        &text,
        r#"      + input = {"pw":"(sensitive value)","size":"small","token":"(sensitive value)"}"#,
    );
    has(&text, r#"      + input = "bye""#);
    has(&text, "  +   pw = (sensitive value)");
    // The long value: truncated in the record with its SHA-256, whole in a blob.
    let marker = format!(
        "{}…(truncated, sha256 {}, 1000 bytes)",
        "B".repeat(64),
        sha256_hex(big().as_bytes())
    );
    has(&text, &format!("      + input = \"{marker}\""));
    assert!(
        text.contains("`tftrail show N --full` prints them whole"),
        "{text}"
    );
    assert!(!text.contains(&big()), "{text}");
    let d = &r["payload"]["state_diff"];
    let d = if d.get("in_blob").is_some() {
        let b = t.ok(&["show", &created.to_string(), "--blob", "state-diff.json"]);
        serde_json::from_str(&b).unwrap()
    } else {
        d.clone()
    };
    assert_eq!(d["truncated"], json!(true));
    assert_eq!(d["full"]["blob"], "state-diff-full.json");
    let whole = t.ok(&[
        "show",
        &created.to_string(),
        "--blob",
        "state-diff-full.json",
    ]);
    assert_eq!(d["full"]["sha256"], json!(sha256_hex(whole.as_bytes())));
    assert!(whole.contains(&big()));
    let full = t.ok(&["show", &created.to_string(), "--full"]);
    has(&full, &format!("      + input = \"{}\"", big()));
    // Every entry stays small.
    let entry = serde_json::to_vec(&r).unwrap();
    assert!(entry.len() < 8192, "{} bytes", entry.len());

    // Update in place.
    t.write_config("large", "1", true);
    let updated = *t
        .tf(&["apply", "-input=false", "-auto-approve", "-var", &pw])
        .last()
        .unwrap();
    let (text, _) = t.show(updated);
    has(&text, "  ~   terraform_data.app");
    has(&text, r#"      ~ input.size = "small" -> "large""#);
    has(&text, r#"      ~ output.size = "small" -> "large""#);
    let blame = t.ok(&["blame", "terraform_data.app"]);
    assert!(
        blame
            .lines()
            .next()
            .unwrap()
            .contains(&format!("{updated:>6}  ")),
        "{blame}"
    );
    has(&blame, r#"    ~ input.size = "small" -> "large""#);
    let history = t.ok(&["history", "terraform_data.app"]);
    has(
        &history,
        r#"    + input = {"pw":"(sensitive value)","size":"small","token":"(sensitive value)"}"#,
    );
    has(&history, r#"    ~ input.size = "small" -> "large""#);
    let bj: Value =
        serde_json::from_str(&t.ok(&["blame", "terraform_data.app", "--json"])).unwrap();
    let values = &bj[0]["values"];
    assert!(
        values
            .as_array()
            .unwrap()
            .contains(&json!({"path": "input.size", "before": "small", "after": "large"})),
        "{bj}"
    );
    let hj: Value =
        serde_json::from_str(&t.ok(&["history", "terraform_data.app", "--json"])).unwrap();
    assert_eq!(hj.as_array().unwrap().len(), 2, "{hj}");

    // A saved plan with a replacement and a deletion: the plan shows values and unknowns.
    t.write_config("large", "2", false);
    let label = format!("label={}", SECRETS[3]);
    let plan = t.tf(&[
        "plan",
        "-input=false",
        "-out",
        "tf.plan",
        "-var",
        &pw,
        "-var",
        &label,
    ])[0];
    let (text, _) = t.show(plan);
    has(
        &text,
        "  -/+ terraform_data.box [replace_because_cannot_update]",
    );
    has(
        &text,
        r#"      ~ triggers_replace = "1" -> "2" # forces replacement"#,
    );
    has(&text, r#"      ~ input = "box-1" -> "box-2""#);
    has(&text, r#"      ~ output = "box-1" -> (known after apply)"#);
    has(
        &text,
        "  -   terraform_data.gone[0] [delete_because_count_index]",
    );
    has(&text, r#"      - input = "bye""#);
    let rec = t.tf(&["apply", "-input=false", "tf.plan"]);
    let (intent, applied) = (rec[0], rec[1]);
    let (text, _) = t.show(intent);
    has(
        &text,
        r#"      ~ triggers_replace = "1" -> "2" # forces replacement"#,
    );
    let (text, _) = t.show(applied);
    has(&text, "  -/+ terraform_data.box");
    has(
        &text,
        r#"      ~ triggers_replace = "1" -> "2" # forces replacement"#,
    );
    has(&text, "  -   terraform_data.gone[0]");
    has(&text, r#"      - input = "bye""#);
    has(&text, r#"      ~ input = "none" -> (sensitive value)"#);
    let gone = t.ok(&["history", "terraform_data.gone"]);
    has(&gone, r#"    - input = "bye""#);
    assert!(gone.lines().any(|l| l.contains(" delete ")), "{gone}");

    // check-state: in sync, then only reformatted (not drift), then edited by hand.
    let state = t.dir.join("terraform.tfstate");
    let (c, out) = t.view(&["check-state"]);
    assert_eq!(c, 0, "{out}");
    let original = std::fs::read(&state).unwrap();
    let v: Value = serde_json::from_slice(&original).unwrap();
    std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_ne!(std::fs::read(&state).unwrap(), original);
    let (c, out) = t.view(&["check-state"]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("only its formatting differs"), "{out}");

    edit_state(&state, |s| {
        let app = instance(s, "app");
        app["attributes"]["input"]["value"]["size"] = json!("huge");
        app["attributes"]["output"]["value"]["size"] = json!("huge");
        let mut extra = s["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "box")
            .unwrap()
            .clone();
        extra["name"] = json!("extra");
        s["resources"].as_array_mut().unwrap().push(extra);
    });
    let (c, out) = t.view(&["check-state"]);
    assert_eq!(c, 4, "{out}");
    has(
        &out,
        r#"  ~ terraform_data.app: input.size = "large" -> "huge""#,
    );
    has(
        &out,
        r#"  ~ terraform_data.app: output.size = "large" -> "huge""#,
    );
    has(
        &out,
        "  + terraform_data.extra  (not created by a recorded run)",
    );
    has(&out, r#"      + input = "box-2""#);
    let (c, out) = t.view(&["check-state", "--json"]);
    assert_eq!(c, 4);
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["added"], json!(["terraform_data.extra"]));
    let app = j["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["address"] == "terraform_data.app")
        .unwrap();
    assert!(app["attributes"]
        .as_array()
        .unwrap()
        .contains(&json!({"path": "input.size", "before": "large", "after": "huge"})));

    // Only a sensitive value changed: reported, not shown.
    std::fs::write(&state, &original).unwrap();
    edit_state(&state, |s| {
        instance(s, "app")["attributes"]["input"]["value"]["pw"] = json!(SECRETS[2]);
    });
    let (c, out) = t.view(&["check-state"]);
    assert_eq!(c, 4, "{out}");
    has(&out, "  ~ terraform_data.app: (a sensitive value changed)");
    t.view(&["check-state", "--json"]);
    std::fs::write(&state, &original).unwrap();

    // No secret in any view, nor in any stored byte.
    for n in 0..=applied {
        t.show(n);
        t.view(&["show", &n.to_string(), "--full"]);
    }
    for a in [
        "terraform_data.app",
        "terraform_data.box",
        "terraform_data.gone",
    ] {
        for cmd in ["blame", "history"] {
            t.ok(&[cmd, a]);
            t.ok(&[cmd, a, "--json"]);
        }
    }
    let seen = t.seen.borrow();
    assert!(seen.contains("(sensitive value)"));
    let mut all = Vec::new();
    files(&t.env.store, &mut all);
    files(&t.env.cache(), &mut all);
    for s in SECRETS {
        assert!(!seen.contains(s), "secret {s} shown");
        for f in &all {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "secret {s} in {}",
                f.display()
            );
        }
    }
}
