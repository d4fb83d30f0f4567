//! Integration tests against the real Terraform binary (`TFTRAIL_TERRAFORM` or `terraform`
//! on PATH). They fail, not skip, when it is missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::Digest;
use tftrail_terraform::{
    run_recorded, Env, Error, Invocation, RecordOptions, RecordedPlan, RunReport, Sink, SinkError,
    REDACTED,
};

fn terraform() -> PathBuf {
    if let Some(p) = std::env::var_os("TFTRAIL_TERRAFORM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("terraform"))
        .find(|p| p.is_file())
        .expect("real Terraform is required: set TFTRAIL_TERRAFORM or put `terraform` on PATH")
}

type Blobs = Vec<(String, Vec<u8>)>;

#[derive(Default)]
struct FakeSink {
    records: Vec<(String, Value, Blobs)>,
    fail_kinds: BTreeSet<String>,
}

impl Sink for FakeSink {
    fn append(
        &mut self,
        kind: &str,
        payload: Value,
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<u64, SinkError> {
        if self.fail_kinds.contains(kind) {
            return Err(SinkError::new("disk full (injected)"));
        }
        // Strict: every blob the payload references must be given with matching hash.
        let text = payload.to_string();
        for (name, bytes) in &blobs {
            let sha = hex::encode(sha2::Sha256::digest(bytes));
            assert!(
                text.contains(&sha),
                "blob {name} not referenced by hash in {kind}"
            );
        }
        self.records.push((kind.to_string(), payload, blobs));
        Ok(self.records.len() as u64 - 1)
    }

    fn find_plan(&mut self, plan_sha256: &str) -> Result<Option<RecordedPlan>, SinkError> {
        Ok(self
            .records
            .iter()
            .position(|(k, p, _)| k == "terraform.plan" && p["plan"]["sha256"] == plan_sha256)
            .map(|i| RecordedPlan {
                index: i as u64,
                plan: self.records[i].1["plan"].clone(),
                command: self.records[i].1["command"].clone(),
                plan_json: self.records[i]
                    .2
                    .iter()
                    .find(|(n, _)| n == "plan.json")
                    .map(|(_, b)| b.clone()),
            }))
    }
}

impl FakeSink {
    fn kinds(&self) -> Vec<&str> {
        self.records.iter().map(|(k, _, _)| k.as_str()).collect()
    }
    fn last(&self) -> &Value {
        &self.records.last().expect("a record").1
    }
    fn blob(&self, idx: usize, name: &str) -> String {
        let b = &self.records[idx]
            .2
            .iter()
            .find(|(n, _)| n == name)
            .expect("blob")
            .1;
        String::from_utf8_lossy(b).into_owned()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    env: Env,
}

impl Fixture {
    fn new(main_tf: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), main_tf).unwrap();
        let rc = dir.path().join("empty.tfrc");
        std::fs::write(&rc, "").unwrap();
        let env = Env::inherit()
            .set("TF_CLI_CONFIG_FILE", rc.to_string_lossy())
            .set("TF_IN_AUTOMATION", "1")
            .set("CHECKPOINT_DISABLE", "1");
        Fixture { dir, env }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn opts(&self) -> RecordOptions {
        let mut o = RecordOptions::new(self.path());
        o.env = self.env.clone();
        o.stream = false;
        o.handle_signals = false;
        o
    }

    fn run_with(
        &self,
        opts: &RecordOptions,
        sink: &mut FakeSink,
        args: &[&str],
    ) -> Result<RunReport, Error> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let inv = Invocation::parse(terraform(), &args)?;
        run_recorded(&inv, opts, sink)
    }

    fn run(&self, sink: &mut FakeSink, args: &[&str]) -> RunReport {
        self.run_with(&self.opts(), sink, args)
            .expect("run_recorded")
    }

    fn init(&self, sink: &mut FakeSink) {
        let r = self.run(sink, &["init", "-input=false"]);
        assert_eq!(r.exit_code, 0);
    }
}

const BASIC: &str = r#"
variable "region" {
  type    = string
  default = "eu-west-1"
}
variable "n" {
  type    = number
  default = 2
}
resource "terraform_data" "a" {
  input = { region = var.region, fixed = "x" }
}
resource "terraform_data" "b" {
  input            = "b"
  triggers_replace = [var.region]
}
resource "terraform_data" "c" {
  count = var.n
  input = count.index
}
"#;

fn addrs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lifecycle_create_update_replace_delete_destroy() {
    let f = Fixture::new(BASIC);
    let mut sink = FakeSink::default();
    f.init(&mut sink);
    assert_eq!(
        sink.kinds(),
        ["terraform.init.intent", "terraform.init.outcome"]
    );
    let init = sink.last();
    assert_eq!(init["outcome"], "success");
    assert_eq!(init["context"]["workspace"], "default");
    assert_eq!(init["context"]["backend"], "local");
    assert_eq!(init["tool"]["name"], "terraform");
    assert!(init["tool"]["version"].as_str().unwrap().starts_with('1'));

    // plan without -out: temporary plan file, fingerprinted and removed
    let r = f.run(&mut sink, &["plan", "-input=false"]);
    assert_eq!(r.exit_code, 0);
    let plan = sink.last().clone();
    assert_eq!(sink.kinds().last(), Some(&"terraform.plan"));
    assert_eq!(plan["plan"]["temporary"], true);
    assert_eq!(plan["plan"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(plan["plan"]["summary"]["counts"]["add"], 4);
    assert_eq!(
        plan["command"]["args"],
        serde_json::json!(["plan", "-input=false"])
    );
    assert!(sink
        .blob(sink.records.len() - 1, "plan.json")
        .contains("resource_changes"));
    assert!(!f.path().join("plan.tfplan").exists());

    // apply (create)
    let r = f.run(&mut sink, &["apply", "-input=false", "-auto-approve"]);
    assert_eq!(r.exit_code, 0);
    let n = sink.records.len();
    assert_eq!(sink.records[n - 2].0, "terraform.apply.intent");
    let intent = &sink.records[n - 2].1;
    assert_eq!(intent["plan"]["saved"], false);
    assert_eq!(intent["plan"]["reviewed"], false);
    assert_eq!(intent["state_before"]["present"], false);
    let out = sink.last();
    assert_eq!(sink.records[n - 1].0, "terraform.apply.outcome");
    assert_eq!(out["intent_index"], (n - 2) as u64);
    assert_eq!(out["outcome"], "success");
    assert_eq!(out["exit_code"], 0);
    assert_eq!(
        addrs(&out["state_diff"]["added"]),
        [
            "terraform_data.a",
            "terraform_data.b",
            "terraform_data.c[0]",
            "terraform_data.c[1]"
        ]
    );
    assert_eq!(out["state_after"]["present"], true);
    assert_eq!(out["state_after"]["source"], "file:terraform.tfstate");
    assert!(sink.blob(n - 1, "output.txt").contains("Apply complete!"));
    let serial1 = out["state_after"]["serial"].as_u64().unwrap();

    // plan an update + replace + delete
    let r = f.run(
        &mut sink,
        &[
            "plan",
            "-input=false",
            "-var",
            "region=us-east-2",
            "-var=n=1",
        ],
    );
    assert_eq!(r.exit_code, 0);
    let p = &sink.last()["plan"]["summary"];
    assert_eq!(p["counts"]["change"], 1, "{p}");
    assert_eq!(p["counts"]["replace"], 1);
    assert_eq!(p["counts"]["destroy"], 1);
    let rcs = p["resource_changes"].as_array().unwrap();
    let b = rcs
        .iter()
        .find(|r| r["address"] == "terraform_data.b")
        .unwrap();
    assert_eq!(b["action"], "replace");
    assert_eq!(b["replace_order"], "delete-before-create");
    assert_eq!(b["replace_paths"], serde_json::json!(["triggers_replace"]));
    let a = rcs
        .iter()
        .find(|r| r["address"] == "terraform_data.a")
        .unwrap();
    assert_eq!(a["action"], "update");
    assert!(
        addrs(&a["changed_paths"]).contains(&"input.region".to_string()),
        "{a}"
    );
    assert_eq!(
        sink.last()["command"]["args"],
        serde_json::json!([
            "plan",
            "-input=false",
            "-var",
            format!("region={REDACTED}"),
            format!("-var=n={REDACTED}")
        ])
    );

    let r = f.run(
        &mut sink,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            "region=us-east-2",
            "-var=n=1",
        ],
    );
    assert_eq!(r.exit_code, 0);
    let out = sink.last();
    let d = &out["state_diff"];
    assert_eq!(addrs(&d["removed"]), ["terraform_data.c[1]"]);
    let changed: Vec<&str> = d["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["terraform_data.a", "terraform_data.b"]);
    let b_paths = addrs(&d["changed"][1]["paths"]);
    assert!(
        b_paths.contains(&"id".to_string()),
        "replace gives a new id: {b_paths:?}"
    );
    assert!(out["state_after"]["serial"].as_u64().unwrap() > serial1);

    // destroy
    let r = f.run(
        &mut sink,
        &[
            "destroy",
            "-input=false",
            "-auto-approve",
            "-var",
            "region=us-east-2",
            "-var=n=1",
        ],
    );
    assert_eq!(r.exit_code, 0);
    let n = sink.records.len();
    assert_eq!(sink.records[n - 2].0, "terraform.destroy.intent");
    assert_eq!(sink.records[n - 1].0, "terraform.destroy.outcome");
    assert_eq!(addrs(&sink.last()["state_diff"]["removed"]).len(), 3);
    assert_eq!(sink.last()["state_after"]["resources"], 0);
}

#[test]
fn saved_plans_are_linked_and_broken_plans_reported() {
    let f = Fixture::new(BASIC);
    let mut sink = FakeSink::default();
    f.init(&mut sink);
    f.run(&mut sink, &["plan", "-input=false", "-out=tf.plan"]);
    let plan_idx = sink.records.len() as u64 - 1;
    let plan_sha = sink.last()["plan"]["sha256"].as_str().unwrap().to_string();
    assert_eq!(sink.last()["plan"]["saved"], true);
    assert_eq!(sink.last()["plan"]["path"], "tf.plan");
    let r = f.run(&mut sink, &["apply", "-input=false", "tf.plan"]);
    assert_eq!(r.exit_code, 0);
    let n = sink.records.len();
    let intent = &sink.records[n - 2].1;
    assert_eq!(intent["plan"]["sha256"], plan_sha.as_str());
    assert_eq!(intent["plan"]["plan_index"], plan_idx);
    assert_eq!(intent["plan"]["recorded"], true);
    assert_eq!(intent["plan"]["summary"]["counts"]["add"], 4);
    // The recorded plan's summary and redacted plan blob, not a second reading of the file.
    let planned = &sink.records[plan_idx as usize];
    assert_eq!(intent["plan"]["summary"], planned.1["plan"]["summary"]);
    assert_eq!(intent["plan"]["plan_json"], planned.1["plan"]["plan_json"]);
    let blob = |r: &(String, Value, Blobs)| r.2.iter().find(|(n, _)| n == "plan.json").cloned();
    assert!(blob(planned).is_some());
    assert_eq!(blob(&sink.records[n - 2]), blob(planned));
    assert_eq!(sink.last()["outcome"], "success");
    assert!(sink.last().get("plan_read_error").is_none());

    // A plan made outside tftrail: applied, but said to be unrecorded.
    let st = std::process::Command::new(terraform())
        .args(["plan", "-input=false", "-out=other.plan", "-var=n=3"])
        .current_dir(f.path())
        .env("TF_CLI_CONFIG_FILE", f.path().join("empty.tfrc"))
        .output()
        .unwrap();
    assert!(st.status.success());
    let r = f.run(&mut sink, &["apply", "-input=false", "other.plan"]);
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.warnings.len(), 1);
    let intent = &sink.records[sink.records.len() - 2].1;
    assert_eq!(intent["plan"]["recorded"], false);
    assert!(intent["plan"]["note"]
        .as_str()
        .unwrap()
        .contains("not recorded"));
    assert_eq!(
        addrs(&sink.last()["state_diff"]["added"]),
        ["terraform_data.c[2]"]
    );

    // A broken plan file: Terraform's own failure, recorded.
    std::fs::write(f.path().join("bad.plan"), b"this is not a plan").unwrap();
    let r = f.run(&mut sink, &["apply", "-input=false", "bad.plan"]);
    assert_ne!(r.exit_code, 0);
    let intent = &sink.records[sink.records.len() - 2].1;
    assert!(intent["plan"]["error"]
        .as_str()
        .unwrap()
        .contains("cannot read the plan"));
    assert_eq!(sink.last()["outcome"], "failed");
    assert_eq!(sink.last()["state_diff"]["added"], serde_json::json!([]));
}

#[test]
fn failing_apply_and_state_rm() {
    let f = Fixture::new(
        r#"
variable "ok" {
  type    = bool
  default = true
}
resource "terraform_data" "a" { input = "a" }
resource "terraform_data" "guarded" {
  input = "g"
  lifecycle {
    precondition {
      condition     = var.ok
      error_message = "The ok variable must be true."
    }
  }
}
"#,
    );
    let mut sink = FakeSink::default();
    f.init(&mut sink);
    let r = f.run(
        &mut sink,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-no-color",
            "-var=ok=false",
        ],
    );
    assert_eq!(r.exit_code, 1);
    let out = sink.last();
    assert_eq!(out["outcome"], "failed");
    assert_eq!(out["exit_code"], 1);
    assert!(sink
        .blob(sink.records.len() - 1, "output.txt")
        .contains("The ok variable must be true."));
    assert_eq!(out["state_diff"]["added"], serde_json::json!([]));

    f.run(&mut sink, &["apply", "-input=false", "-auto-approve"]);
    let serial = sink.last()["state_after"]["serial"].as_u64().unwrap();
    let r = f.run(&mut sink, &["state", "rm", "terraform_data.a"]);
    assert_eq!(r.exit_code, 0);
    let n = sink.records.len();
    assert_eq!(sink.records[n - 2].0, "terraform.state.intent");
    assert_eq!(sink.records[n - 1].0, "terraform.state.outcome");
    let out = sink.last();
    assert_eq!(out["command"]["subcommand"], "state rm");
    assert_eq!(addrs(&out["state_diff"]["removed"]), ["terraform_data.a"]);
    assert!(out["state_after"]["serial"].as_u64().unwrap() > serial);
    assert_eq!(
        out["state_before"]["lineage"],
        out["state_after"]["lineage"]
    );

    // read-only commands pass through unrecorded
    let before = sink.records.len();
    let r = f.run(&mut sink, &["state", "list"]);
    assert_eq!(r.exit_code, 0);
    assert!(r.records.is_empty());
    assert_eq!(sink.records.len(), before);
}

#[test]
fn intent_failure_blocks_apply_unless_fail_open() {
    let f = Fixture::new(BASIC);
    let mut sink = FakeSink::default();
    f.init(&mut sink);
    sink.fail_kinds.insert("terraform.apply.intent".into());
    let err = f
        .run_with(
            &f.opts(),
            &mut sink,
            &["apply", "-input=false", "-auto-approve"],
        )
        .unwrap_err();
    assert!(matches!(err, Error::IntentNotStored { .. }), "{err}");
    assert!(err.to_string().contains("NOT run"));
    assert!(err.hint().unwrap().contains("--fail-open"));
    assert!(
        !f.path().join("terraform.tfstate").exists(),
        "apply must not have run"
    );

    let mut opts = f.opts();
    opts.fail_open = true;
    let r = f
        .run_with(
            &opts,
            &mut sink,
            &["apply", "-input=false", "-auto-approve"],
        )
        .unwrap();
    assert_eq!(r.exit_code, 0);
    assert!(f.path().join("terraform.tfstate").exists());
    let out = sink.last();
    assert_eq!(out["intent_index"], Value::Null);
    assert_eq!(out["fail_open"]["intent_stored"], false);
    assert!(r.warnings[0].contains("--fail-open"));

    // outcome failure: the error carries Terraform's exit code
    sink.fail_kinds.insert("terraform.apply.outcome".into());
    sink.fail_kinds.remove("terraform.apply.intent");
    let err = f
        .run_with(
            &f.opts(),
            &mut sink,
            &["apply", "-input=false", "-auto-approve"],
        )
        .unwrap_err();
    assert_eq!(err.tool_exit_code(), Some(0));
}

#[test]
fn bad_commands_give_clear_errors() {
    let err = Invocation::parse("ls", &["-l".to_string()]).unwrap_err();
    assert!(matches!(err, Error::NotTerraform { .. }));
    assert!(err.hint().unwrap().contains("tftrail run -- terraform"));
    let f = Fixture::new(BASIC);
    let mut sink = FakeSink::default();
    let inv = Invocation::parse("/nonexistent/bin/terraform", &["apply".to_string()]).unwrap();
    let err = run_recorded(&inv, &f.opts(), &mut sink).unwrap_err();
    assert!(matches!(err, Error::ToolNotFound { .. }), "{err}");
    assert!(sink.records.is_empty());
    // passthrough of a read-only command keeps Terraform's exit code
    let r = f.run(&mut sink, &["validate", "-no-color", "-bogus-flag"]);
    assert_ne!(r.exit_code, 0);
    assert!(sink.records.is_empty());
}

const SECRET_TF: &str = r#"
variable "password" {
  type      = string
  sensitive = true
}
variable "dflt" {
  type      = string
  sensitive = true
  default   = "dflt-secret-A1B2"
}
variable "token" {
  type = string
}
resource "terraform_data" "s" {
  input = {
    password = var.password
    dflt     = var.dflt
    literal  = sensitive("literal-secret-C3D4")
    token    = var.token
    plain    = "visible-value"
  }
}
resource "terraform_data" "t" {
  input = var.token
}
output "pw" {
  value     = var.password
  sensitive = true
}
output "tok" {
  value = var.token
}
output "whole" {
  value     = terraform_data.s.output
  sensitive = true
}
"#;

#[test]
fn secrets_never_reach_payloads_or_blobs() {
    let secrets = [
        "cli-password-E5F6",
        "dflt-secret-A1B2",
        "literal-secret-C3D4",
        "env-token-G7H8",
        "cli-password-2-J9K0",
    ];
    let mut f = Fixture::new(SECRET_TF);
    f.env = f.env.clone().set("TF_VAR_token", "env-token-G7H8");
    let mut sink = FakeSink::default();
    f.init(&mut sink);
    let pw = "-var=password=cli-password-E5F6";
    f.run(&mut sink, &["plan", "-input=false", pw]);
    f.run(
        &mut sink,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            "password=cli-password-E5F6",
        ],
    );
    f.run(
        &mut sink,
        &[
            "plan",
            "-input=false",
            "-out=s.plan",
            "-var=password=cli-password-2-J9K0",
        ],
    );
    f.run(&mut sink, &["apply", "-input=false", "s.plan"]);
    f.run(
        &mut sink,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-refresh-only",
            "-var=password=cli-password-2-J9K0",
        ],
    );
    let mut o = f.opts();
    o.record_read_only = true;
    f.run_with(&o, &mut sink, &["output", "-json"]).unwrap();
    f.run(&mut sink, &["destroy", "-input=false", "-auto-approve", pw]);
    assert_eq!(
        sink.kinds(),
        [
            "terraform.init.intent",
            "terraform.init.outcome",
            "terraform.plan",
            "terraform.apply.intent",
            "terraform.apply.outcome",
            "terraform.plan",
            "terraform.apply.intent",
            "terraform.apply.outcome",
            "terraform.refresh.intent",
            "terraform.refresh.outcome",
            "terraform.command",
            "terraform.destroy.intent",
            "terraform.destroy.outcome",
        ]
    );
    // Sanity: the secrets really were in what Terraform produced.
    let state = std::fs::read_to_string(f.path().join("terraform.tfstate.backup")).unwrap();
    assert!(state.contains("literal-secret-C3D4") && state.contains("env-token-G7H8"));
    // Terraform prints the non-sensitive output `tok` in clear; the blob must not.
    let mut all = Vec::new();
    for (kind, payload, blobs) in &sink.records {
        all.push((
            kind.clone(),
            "payload".to_string(),
            serde_json::to_vec(payload).unwrap(),
        ));
        for (n, b) in blobs {
            all.push((kind.clone(), n.clone(), b.clone()));
        }
    }
    for (kind, what, bytes) in &all {
        for s in secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "secret {s} found in {kind} {what}: {}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
    // ...and the records still say useful things.
    let plan = &sink.records[2].1["plan"]["summary"];
    let s = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "terraform_data.s")
        .unwrap();
    assert_eq!(s["after"]["input"]["password"], REDACTED);
    assert_eq!(s["after"]["input"]["plain"], "visible-value");
    let out_blob = sink.blob(4, "output.txt");
    assert!(
        out_blob.contains(&format!("tok = \"{REDACTED}\"")),
        "{out_blob}"
    );
    assert_eq!(
        sink.records[2].1["command"]["tf_var_names"],
        serde_json::json!(["token"])
    );
}
