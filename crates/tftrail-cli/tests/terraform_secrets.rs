//! No secret reaches the store or the index: sensitive variables (default, -var, TF_VAR_*),
//! sensitive outputs and sensitive() values, through plan, apply and destroy. Every byte of
//! every file is searched for each secret, raw, base64 and JSON-escaped.

mod common;

use std::path::Path;

use base64::Engine;
use common::{code, Env};

const SECRETS: &[&str] = &[
    "default-Secret-4c1e9a",
    "cli-var-Secret-77b2f0",
    "tf-var-Secret-91d3aa",
    "sensitive-fn-Secret-5e60",
    "quote\"d-Secret-2f1b",
];

fn config() -> String {
    format!(
        r#"
variable "from_default" {{
  type      = string
  sensitive = true
  default   = "{}"
}}
variable "from_cli" {{
  type      = string
  sensitive = true
}}
variable "from_env" {{
  type      = string
  sensitive = true
}}
variable "plain_but_secret" {{
  type    = string
  default = "x"
}}
resource "terraform_data" "app" {{
  input = {{
    a    = var.from_default
    b    = var.from_cli
    c    = var.from_env
    d    = sensitive("{}")
    name = "app"
  }}
}}
resource "terraform_data" "quoted" {{
  input = sensitive(var.plain_but_secret)
}}
output "token" {{
  value     = var.from_cli
  sensitive = true
}}
output "name" {{
  value = terraform_data.app.output.name
}}
"#,
        SECRETS[0], SECRETS[3]
    )
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn secrets_never_reach_store_or_index() {
    let env = Env::new();
    env.init();
    let dir = env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), config()).unwrap();
    let cli = format!("from_cli={}", SECRETS[1]);
    let quoted = format!("plain_but_secret={}", SECRETS[4]);
    let tfvar = [("TF_VAR_from_env", SECRETS[2])];
    let steps: Vec<Vec<&str>> = vec![
        vec!["init", "-input=false"],
        vec![
            "plan",
            "-input=false",
            "-var",
            &cli,
            "-var",
            &quoted,
            "-out",
            "tf.plan",
        ],
        vec!["apply", "-input=false", "tf.plan"],
        vec![
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            &cli,
            "-var",
            &quoted,
        ],
        vec!["output", "-json"],
        vec![
            "destroy",
            "-input=false",
            "-auto-approve",
            "-var",
            &cli,
            "-var",
            &quoted,
        ],
    ];
    for s in &steps {
        let (out, _) = env.tf_run(&dir, s, &tfvar);
        assert_eq!(code(&out), 0, "{s:?}\n{}", common::describe(&out));
    }
    // Recorded read-only command printing the sensitive output.
    let (out, rec) = env.tf_run(&dir, &["output", "-json"], &tfvar);
    assert_eq!(code(&out), 0);
    assert!(
        rec.is_empty(),
        "read-only commands are not recorded by default"
    );
    // Query commands fill the index.
    env.ok(&["log", "--resource", "terraform_data.app"], None);
    env.ok(&["history", "terraform_data.app"], None);
    assert!(env.ok(&["verify"], None).starts_with("OK:"));

    let mut all = Vec::new();
    files(&env.store, &mut all);
    let n_store = all.len();
    files(&env.cache(), &mut all);
    assert!(n_store > 10, "store files: {n_store}");
    assert!(
        all.len() > n_store,
        "the index was written under the cache dir"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    for s in SECRETS {
        let forms = [
            s.to_string(),
            b64.encode(s),
            serde_json::to_string(s)
                .unwrap()
                .trim_matches('"')
                .to_string(),
            s.replace('"', "\\u0022"),
        ];
        for f in &all {
            let bytes = std::fs::read(f).unwrap();
            for form in &forms {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                    "secret {s:?} (as {form:?}) found in {}",
                    f.display()
                );
            }
        }
    }
}
