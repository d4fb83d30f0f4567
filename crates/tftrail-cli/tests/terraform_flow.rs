//! `tftrail run` with real Terraform through a whole life cycle — create, update, replace,
//! a failing apply, state rm, delete, destroy, a change made outside tftrail — and the
//! queries over it: show, log filters, blame, history, check-state, and the index surviving
//! deletion and corruption.

mod common;

use std::path::Path;

use common::{code, stderr, stdout, Env};
use serde_json::Value;

const CONFIG: &str = r#"
variable "ver" {
  type    = string
  default = "1"
}
variable "trigger" {
  type    = string
  default = "a"
}
variable "fail" {
  type    = bool
  default = false
}
resource "terraform_data" "keep" {
  input = "keep"
}
resource "terraform_data" "web" {
  input = var.ver
  lifecycle {
    precondition {
      condition     = !var.fail
      error_message = "failure requested by the test"
    }
  }
}
resource "terraform_data" "db" {
  input            = "db"
  triggers_replace = [var.trigger]
}
output "web" {
  value = terraform_data.web.output
}
"#;

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn indexes(v: &[Value]) -> Vec<u64> {
    v.iter().map(|x| x["index"].as_u64().unwrap()).collect()
}

fn actions(env: &Env, cmd: &str, addr: &str) -> Vec<(u64, String)> {
    let out = env.ok(&[cmd, addr, "--json"], None);
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["index"].as_u64().unwrap(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn run_ok(env: &Env, dir: &Path, args: &[&str]) -> Vec<u64> {
    let (out, rec) = env.tf_run(dir, args, &[]);
    assert_eq!(code(&out), 0, "{args:?}\n{}", common::describe(&out));
    rec
}

#[test]
fn life_cycle_recorded_and_queried() {
    let env = Env::new();
    env.init();
    let dir = env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), CONFIG).unwrap();

    let init = run_ok(&env, &dir, &["init", "-input=false"]);
    assert_eq!(init.len(), 2, "init: intent + outcome");

    // Create, through a saved plan linked to its plan record.
    let plan = run_ok(&env, &dir, &["plan", "-input=false", "-out", "p1"]);
    assert_eq!(plan.len(), 1);
    let apply1 = run_ok(&env, &dir, &["apply", "-input=false", "p1"]);
    assert_eq!(apply1.len(), 2);
    let intent = env.record(apply1[0]);
    assert_eq!(intent["kind"], "terraform.apply.intent");
    assert_eq!(intent["payload"]["plan"]["plan_index"], plan[0]);
    assert_eq!(intent["payload"]["plan"]["recorded"], true);
    let outcome = env.record(apply1[1]);
    assert_eq!(outcome["kind"], "terraform.apply.outcome");
    assert_eq!(outcome["payload"]["intent_index"], apply1[0]);
    assert_eq!(outcome["payload"]["outcome"], "success");
    assert_eq!(outcome["actor"]["user"], "tester");
    let plan_rec = env.record(plan[0]);
    assert_eq!(
        plan_rec["payload"]["plan"]["sha256"],
        intent["payload"]["plan"]["sha256"]
    );
    // The reader's rendering names the links.
    let shown = env.ok(&["show", &apply1[0].to_string()], None);
    assert!(
        shown.contains(&format!("recorded as record {}", plan[0])),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("outcome:   record {}", apply1[1])),
        "{shown}"
    );
    assert!(shown.contains("terraform_data.web"), "{shown}");
    let shown = env.ok(&["show", &plan[0].to_string()], None);
    assert!(
        shown.contains(&format!("applied:   by record {}", apply1[0])),
        "{shown}"
    );
    assert!(shown.contains("3 to add"), "{shown}");

    // Update, without a saved plan.
    let apply2 = run_ok(
        &env,
        &dir,
        &["apply", "-input=false", "-auto-approve", "-var", "ver=2"],
    );
    let intent2 = env.record(apply2[0]);
    assert_eq!(intent2["payload"]["plan"]["saved"], false);
    let shown = env.ok(&["show", &apply2[0].to_string()], None);
    assert!(shown.contains("no saved plan"), "{shown}");

    // Replace, through a saved plan.
    run_ok(
        &env,
        &dir,
        &[
            "plan",
            "-input=false",
            "-var",
            "ver=2",
            "-var",
            "trigger=b",
            "-out",
            "p2",
        ],
    );
    let apply3 = run_ok(&env, &dir, &["apply", "-input=false", "p2"]);

    // A failing apply (precondition): Terraform's exit code, a failed outcome.
    let (out, failed) = env.tf_run(
        &dir,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            "ver=2",
            "-var",
            "trigger=b",
            "-var",
            "fail=true",
        ],
        &[],
    );
    assert_eq!(code(&out), 1, "{}", common::describe(&out));
    assert!(stderr(&out).contains("failure requested by the test"));
    assert_eq!(failed.len(), 2);
    assert_eq!(env.record(failed[1])["payload"]["outcome"], "failed");

    // state rm.
    let rm = run_ok(&env, &dir, &["state", "rm", "terraform_data.keep"]);
    assert_eq!(env.record(rm[1])["kind"], "terraform.state.outcome");

    // Delete: the resource leaves the configuration.
    let without_db = CONFIG.replace(
        "resource \"terraform_data\" \"db\" {\n  input            = \"db\"\n  triggers_replace = [var.trigger]\n}",
        "",
    );
    assert_ne!(without_db, CONFIG);
    std::fs::write(dir.join("main.tf"), &without_db).unwrap();
    let apply4 = run_ok(
        &env,
        &dir,
        &["apply", "-input=false", "-auto-approve", "-var", "ver=2"],
    );

    // Destroy.
    let destroy = run_ok(
        &env,
        &dir,
        &["destroy", "-input=false", "-auto-approve", "-var", "ver=2"],
    );
    assert_eq!(env.record(destroy[1])["kind"], "terraform.destroy.outcome");

    // History and blame.
    assert_eq!(
        actions(&env, "history", "terraform_data.db"),
        vec![
            (apply1[1], "create".into()),
            (apply3[1], "replace".into()),
            (apply4[1], "delete".into())
        ]
    );
    assert_eq!(
        actions(&env, "history", "terraform_data.web"),
        vec![
            (apply1[1], "create".into()),
            (apply2[1], "update".into()),
            (destroy[1], "delete".into())
        ]
    );
    assert_eq!(
        actions(&env, "history", "terraform_data.keep"),
        vec![
            (apply1[1], "create".into()),
            (rm[1], "forget".into()),
            (apply4[1], "create".into()),
            (destroy[1], "delete".into())
        ]
    );
    assert_eq!(
        actions(&env, "blame", "terraform_data.db"),
        vec![(apply4[1], "delete".into())]
    );
    let blame: Value =
        serde_json::from_str(&env.ok(&["blame", "terraform_data.web", "--json"], None)).unwrap();
    assert_eq!(blame[0]["actor"]["user"], "tester");
    assert_eq!(blame[0]["outcome"], "success");
    assert_eq!(blame[0]["kind"], "terraform.destroy.outcome");
    let text = env.ok(&["blame", "terraform_data.db"], None);
    assert!(text.contains("delete") && text.contains("tester"), "{text}");
    // None: exit 0, empty JSON array, a note on stderr.
    let none = env.tftrail(&["blame", "terraform_data.nothing", "--json"], None);
    assert_eq!(code(&none), 0);
    assert_eq!(stdout(&none).trim(), "[]");
    assert!(stderr(&none).contains("no recorded change"));

    // log filters.
    let q = |args: &[&str]| {
        let mut a = vec!["log", "--json", "--limit", "0"];
        a.extend_from_slice(args);
        indexes(&json_lines(&env.ok(&a, None)))
    };
    assert_eq!(q(&["--outcome", "failed"]), vec![failed[1]]);
    let applies = q(&["--kind", "terraform.apply"]);
    assert_eq!(applies.len(), 10, "{applies:?}");
    assert!(q(&["--kind", "terraform.apply.intent"])
        .iter()
        .all(|i| applies.contains(i)));
    let db = q(&["--resource", "terraform_data.db"]);
    assert!(
        db.contains(&plan[0]) && db.contains(&apply3[1]) && db.contains(&apply4[1]),
        "{db:?}"
    );
    assert!(!db.contains(&rm[1]));
    assert_eq!(q(&["--actor", "tester"]).len() as u64, destroy[1] + 1);
    assert!(q(&["--actor", "nobody"]).is_empty());
    assert!(q(&["--until", "2000-01-01"]).is_empty());
    assert_eq!(q(&["--since", "2000-01-01"]).len() as u64, destroy[1] + 1);
    let last = json_lines(&env.ok(
        &[
            "log",
            "--json",
            "--kind",
            "terraform.apply.outcome",
            "--limit",
            "1",
        ],
        None,
    ));
    assert_eq!(indexes(&last), vec![apply4[1]]);
    let bad = env.tftrail(&["log", "--since", "yesterday"], None);
    assert_eq!(code(&bad), 2);

    // The index is a cache: deleted or corrupted, answers stay the same.
    let index_dir = env.cache().join("tftrail/index");
    let files: Vec<_> = std::fs::read_dir(&index_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let before = q(&["--resource", "terraform_data.db"]);
    std::fs::remove_file(&files[0]).unwrap();
    assert_eq!(q(&["--resource", "terraform_data.db"]), before);
    std::fs::write(
        &files[0],
        b"garbage, not sqlite; garbage, not sqlite; garbage!!",
    )
    .unwrap();
    assert_eq!(q(&["--resource", "terraform_data.db"]), before);
    assert_eq!(actions(&env, "history", "terraform_data.db").len(), 3);
    env.ok(&["reindex"], None);
    assert_eq!(q(&["--resource", "terraform_data.db"]), before);

    // check-state: in sync, then a change made outside tftrail.
    let cs = env.tf_tftrail(&dir, &["check-state"], &[]);
    assert_eq!(code(&cs), 0, "{}", common::describe(&cs));
    assert!(stdout(&cs).contains("in sync"));
    let bare = env.bare_terraform(
        &dir,
        &["apply", "-input=false", "-auto-approve", "-var", "ver=9"],
    );
    assert_eq!(code(&bare), 0, "{}", common::describe(&bare));
    let cs = env.tf_tftrail(&dir, &["check-state", "--json"], &[]);
    assert_eq!(code(&cs), 4, "{}", common::describe(&cs));
    let rep: Value = serde_json::from_str(&stdout(&cs)).unwrap();
    assert_eq!(rep["in_sync"], false);
    assert_eq!(rep["record"], destroy[1]);
    let added: Vec<&str> = rep["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        added,
        vec!["terraform_data.keep", "terraform_data.web"],
        "{rep}"
    );
    let text = env.tf_tftrail(&dir, &["check-state"], &[]);
    assert_eq!(code(&text), 4);
    assert!(stdout(&text).contains("DRIFT"), "{}", stdout(&text));
    assert!(
        stdout(&text).contains("serial moved without a record"),
        "{}",
        stdout(&text)
    );

    // After it all, the log verifies.
    let v = env.ok(&["verify"], None);
    assert!(v.starts_with("OK:"), "{v}");
}

/// A plan record keeps its log entry small (entries are rewritten into every partial bundle
/// of their tile): a big plan summary moves into a blob, and every reader puts it back.
#[test]
fn big_plans_keep_their_summary_in_a_blob() {
    let env = Env::new();
    env.init();
    let dir = env.path("big");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        "resource \"terraform_data\" \"many\" {\n  count = 60\n  input = { i = count.index, name = \"item-${count.index}\" }\n}\n",
    )
    .unwrap();
    run_ok(&env, &dir, &["init", "-input=false"]);
    let plan = run_ok(&env, &dir, &["plan", "-input=false", "-out", "big.plan"]);
    let raw = env.ok(&["show", &plan[0].to_string(), "--json"], None);
    let rec: Value = serde_json::from_str(&raw).unwrap();
    let summary = &rec["record"]["payload"]["plan"]["summary"];
    assert_eq!(summary["counts"]["add"], 60, "{summary}");
    assert_eq!(summary["in_blob"]["blob"], "plan-summary.json", "{summary}");
    assert!(summary.get("resource_changes").is_none());
    assert!(raw.len() < 6000, "record of {} bytes", raw.len());
    // Put back for the reader and for queries.
    let shown = env.ok(&["show", &plan[0].to_string()], None);
    assert_eq!(
        shown.matches("+   terraform_data.many[").count(),
        60,
        "{shown}"
    );
    let hits = env.ok(
        &["log", "--resource", "terraform_data.many[59]", "--json"],
        None,
    );
    let hits: Vec<Value> = hits
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["index"], plan[0]);
    // The apply's intent carries the recorded plan's summary, in a blob too.
    let apply = run_ok(&env, &dir, &["apply", "-input=false", "big.plan"]);
    let intent = env.record(apply[0]);
    assert_eq!(
        intent["payload"]["plan"]["summary"]["in_blob"],
        summary["in_blob"]
    );
    let v = env.ok(&["verify"], None);
    assert!(v.starts_with("OK:"), "{v}");
}
