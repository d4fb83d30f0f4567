//! `tftrail export` over logs made by real Terraform: JSON Lines whose every line proves
//! (its leaf hash is the entry's, `tftrail prove` gives a receipt against the same signed
//! checkpoint, and the receipt verifies offline); OCSF events validated against JSON Schemas
//! written from the OCSF 1.3.0 schema (tests/data/ocsf); `--since`, `--until` and `--kind`
//! select; `--follow` picks up records appended after it started and refuses a rolled-back
//! checkpoint; through a team server, plain applies on the state backend and refused requests
//! become OCSF events.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{code, describe, stderr, stdout, Env};
use serde_json::Value;
use tftrail_core::merkle::{hash_b64, leaf_hash};
use tftrail_core::receipt::Receipt;
use tftrail_core::record::Record;

const CONFIG: &str = r#"
variable "ver" {
  type    = string
  default = "1"
}
variable "trigger" {
  type    = string
  default = "a"
}
resource "terraform_data" "keep" {
  input = "keep"
}
resource "terraform_data" "web" {
  input = var.ver
}
resource "terraform_data" "db" {
  input            = "db"
  triggers_replace = [var.trigger]
}
variable "fail" {
  type    = bool
  default = false
}
# Created, then its provisioner fails: the apply fails and leaves it (tainted) in the state.
resource "terraform_data" "broken" {
  count = var.fail ? 1 : 0
  provisioner "local-exec" {
    command = "exit 1"
  }
}
"#;

fn lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn run_ok(env: &Env, dir: &Path, args: &[&str]) -> Vec<u64> {
    let (out, rec) = env.tf_run(dir, args, &[]);
    assert_eq!(code(&out), 0, "{args:?}\n{}", describe(&out));
    rec
}

/// The OCSF schemas, compiled.
struct Ocsf {
    api: jsonschema::Validator,
    auth: jsonschema::Validator,
}

impl Ocsf {
    fn load() -> Ocsf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ocsf");
        let compile = |f: &str| {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            let schema: Value = serde_json::from_str(&text).unwrap();
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{f}: {e}"))
        };
        Ocsf {
            api: compile("api_activity.schema.json"),
            auth: compile("authentication.schema.json"),
        }
    }

    /// Every event must be valid for its class (and of a class we know).
    fn check(&self, events: &[Value]) {
        for e in events {
            let v = match e["class_uid"].as_u64() {
                Some(6003) => &self.api,
                Some(3002) => &self.auth,
                other => panic!("event of class {other:?}: {e}"),
            };
            let errors: Vec<String> = v.iter_errors(e).map(|x| x.to_string()).collect();
            assert!(
                errors.is_empty(),
                "invalid OCSF event {e}:\n{}",
                errors.join("\n")
            );
        }
    }
}

/// (log index, activity_id, resource address) of each API Activity event.
fn activities(events: &[Value]) -> Vec<(u64, u64, String)> {
    events
        .iter()
        .filter(|e| e["class_uid"] == 6003)
        .map(|e| {
            (
                e["metadata"]["correlation_uid"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
                e["activity_id"].as_u64().unwrap(),
                e["resources"][0]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_schemas_reject_what_ocsf_requires() {
    // The validators can fail: a valid event passes, and losing a required attribute, a
    // wrong type_uid or an unknown activity does not.
    let ocsf = Ocsf::load();
    let good: Value = serde_json::json!({
        "class_uid": 6003, "category_uid": 6, "activity_id": 1, "type_uid": 600301,
        "time": 1, "severity_id": 1,
        "metadata": {"product": {"name": "tftrail", "vendor_name": "tftrail"}, "version": "1.3.0"},
        "actor": {"user": {"name": "alice"}}, "api": {"operation": "terraform apply"},
        "src_endpoint": {"hostname": "h"}
    });
    assert!(ocsf.api.is_valid(&good));
    for (ptr, bad) in [
        ("/api", Value::Null),
        ("/type_uid", 600303.into()),
        ("/activity_id", 7.into()),
        ("/time", "2026-01-01".into()),
        ("/metadata/version", "1.1.0".into()),
        ("/src_endpoint", serde_json::json!({})),
        ("/actor", serde_json::json!({"user": {}})),
    ] {
        let mut e = good.clone();
        if bad.is_null() {
            e.as_object_mut().unwrap().remove(&ptr[1..]);
        } else {
            *e.pointer_mut(ptr).unwrap() = bad;
        }
        assert!(!ocsf.api.is_valid(&e), "{ptr} changed, still valid: {e}");
    }
}

#[test]
fn runs_export_as_proven_lines_and_ocsf_events() {
    let env = Env::new();
    let vkey = env.init();
    let dir = env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), CONFIG).unwrap();
    run_ok(&env, &dir, &["init", "-input=false"]);
    let create = run_ok(&env, &dir, &["apply", "-input=false", "-auto-approve"]);
    let change = run_ok(
        &env,
        &dir,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            "ver=2",
            "-var",
            "trigger=b",
        ],
    );
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
    assert_eq!(code(&out), 1, "the provisioner fails\n{}", describe(&out));
    assert_eq!(failed.len(), 2, "{}", describe(&out));
    let destroy = run_ok(&env, &dir, &["destroy", "-input=false", "-auto-approve"]);
    let size = destroy[1] + 1;

    // JSON Lines: the signed note, then every record, each with what proves it.
    let out = env.ok(&["export", "--format", "jsonl"], None);
    let all = lines(&out);
    assert_eq!(all.len() as u64, size + 1, "{out}");
    let note = all[0]["checkpoint_note"]
        .as_str()
        .expect("first line: the note");
    assert_eq!(note.as_bytes(), env.checkpoint_bytes());
    let body: Vec<&str> = note.lines().take(3).collect();
    for (i, l) in all[1..].iter().enumerate() {
        let i = i as u64;
        assert_eq!(l["index"], i);
        assert_eq!(l["checkpoint"]["origin"], body[0]);
        assert_eq!(l["checkpoint"]["size"].to_string(), body[1]);
        assert_eq!(l["checkpoint"]["root"], body[2]);
        // The line's record is the entry: its canonical form hashes to the leaf hash.
        let r: Record = serde_json::from_value(l["record"].clone()).unwrap();
        let entry = r.to_entry().unwrap();
        assert_eq!(l["leaf_hash"], hash_b64(&leaf_hash(&entry)), "line {i}");
        // And `tftrail prove` gives a receipt against the same checkpoint for that entry.
        let p = env.tftrail(&["prove", &i.to_string()], None);
        assert_eq!(code(&p), 0, "{}", describe(&p));
        let receipt = Receipt::parse(&p.stdout).unwrap();
        assert_eq!(receipt.checkpoint, note.as_bytes());
        assert_eq!(receipt.entry.as_deref(), Some(&entry[..]));
        if i == create[1] || i == size - 1 {
            let f = env.path(&format!("receipt-{i}"));
            std::fs::write(&f, &p.stdout).unwrap();
            env.ok(
                &["verify-receipt", f.to_str().unwrap(), "--key", &vkey],
                None,
            );
        }
    }

    // OCSF: one API Activity event per resource change of a run, valid for OCSF 1.3.0.
    let ocsf = Ocsf::load();
    let file = env.path("events.ocsf.jsonl");
    let out = env.ok(
        &[
            "export",
            "--format",
            "ocsf",
            "--output",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.is_empty(), "--output leaves stdout empty: {out}");
    let events = lines(&std::fs::read_to_string(&file).unwrap());
    ocsf.check(&events);
    let mut got = activities(&events);
    got.sort();
    let s = |x: &str| x.to_string();
    let mut want = vec![
        (create[1], 1, s("terraform_data.db")),
        (create[1], 1, s("terraform_data.keep")),
        (create[1], 1, s("terraform_data.web")),
        // The replacement: a delete then a create of the same address.
        (change[1], 1, s("terraform_data.db")),
        (change[1], 4, s("terraform_data.db")),
        (change[1], 3, s("terraform_data.web")),
        (failed[1], 1, s("terraform_data.broken[0]")),
        (destroy[1], 4, s("terraform_data.broken[0]")),
        (destroy[1], 4, s("terraform_data.db")),
        (destroy[1], 4, s("terraform_data.keep")),
        (destroy[1], 4, s("terraform_data.web")),
    ];
    want.sort();
    assert_eq!(
        got,
        want,
        "{}",
        events
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let replace: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["resources"][0]["name"] == "terraform_data.db"
                && e["metadata"]["correlation_uid"].as_str() == Some(&change[1].to_string())
        })
        .collect();
    assert_eq!(
        replace
            .iter()
            .map(|e| e["activity_id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [4, 1],
        "a replace is a delete, then a create"
    );
    let leaf_of = |i: u64| all[i as usize + 1]["leaf_hash"].clone();
    for e in &events {
        let i: u64 = e["metadata"]["correlation_uid"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(e["type_uid"], 600300 + e["activity_id"].as_u64().unwrap());
        assert_eq!(e["unmapped"]["tftrail"]["index"], i);
        assert_eq!(e["unmapped"]["tftrail"]["leaf_hash"], leaf_of(i));
        assert_eq!(e["actor"]["user"]["name"], "tester");
        let (status, severity) = match (i == failed[1], e["activity_id"].as_u64()) {
            (true, _) => ("Failure", 3),
            (false, Some(4)) => ("Success", 2),
            _ => ("Success", 1),
        };
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["severity_id"], severity, "{e}");
        assert_eq!(e["resources"][0]["type"], "terraform_data");
        let r = &all[i as usize + 1]["record"];
        let ms = tftrail_index::time_ns(r["time"].as_str().unwrap()).unwrap() / 1_000_000;
        assert_eq!(e["time"], ms);
        assert_eq!(e["src_endpoint"]["hostname"], r["actor"]["host"]);
        let op = if i == destroy[1] {
            "terraform destroy"
        } else {
            "terraform apply"
        };
        assert_eq!(e["api"]["operation"], op);
        assert_eq!(e["api"]["service"]["name"], "terraform");
        assert_eq!(e["metadata"]["product"]["name"], "tftrail");
        assert_eq!(e["metadata"]["version"], "1.3.0");
    }

    // --kind as `tftrail log --kind`.
    let picked = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["export", "--format", "jsonl"];
        a.extend_from_slice(args);
        lines(&env.ok(&a, None))[1..]
            .iter()
            .map(|l| l["index"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(picked(&["--kind", "destroy"]), destroy);
    assert_eq!(
        picked(&["--kind", "terraform.apply.outcome"]),
        [create[1], change[1], failed[1]]
    );
    let ocsf_destroy = lines(&env.ok(&["export", "--format", "ocsf", "--kind", "destroy"], None));
    assert_eq!(activities(&ocsf_destroy).len(), 4);
    assert!(picked(&["--kind", "no.such.kind"]).is_empty());

    // --since is inclusive, --until exclusive, both on the record's time.
    let time = |i: u64| {
        all[i as usize + 1]["record"]["time"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let t_change = time(change[0]);
    let since = picked(&["--since", &t_change]);
    assert_eq!(since.first(), Some(&change[0]), "{since:?}");
    assert_eq!(since.last(), Some(&(size - 1)));
    let until = picked(&["--until", &t_change]);
    assert_eq!(until.last(), Some(&(change[0] - 1)), "{until:?}");
    assert_eq!(since.len() + until.len(), size as usize);
    let between = picked(&["--since", &time(create[0]), "--until", &t_change]);
    assert_eq!(between, (create[0]..change[0]).collect::<Vec<_>>());
    assert!(picked(&["--since", "2200-01-01"]).is_empty());
    let out = env.tftrail(
        &["export", "--format", "jsonl", "--since", "2999-01-01"],
        None,
    );
    common::assert_fails(&out, 2, &["time \"2999-01-01\" is out of range"]);

    // Bad input names the problem.
    let out = env.tftrail(
        &["export", "--format", "jsonl", "--since", "yesterday"],
        None,
    );
    common::assert_fails(&out, 2, &["invalid time \"yesterday\""]);
    let out = env.tftrail(&["export", "--format", "csv"], None);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    let out = env.tftrail(
        &[
            "export",
            "--format",
            "jsonl",
            "--since",
            "2026-02-01",
            "--until",
            "2026-01-01",
        ],
        None,
    );
    common::assert_fails(
        &out,
        2,
        &["--since 2026-02-01 is not before --until 2026-01-01"],
    );

    // A tampered entry bundle is an integrity failure, not an export.
    let tampered = env.clone_log();
    // The bundle of the current size (older partial bundles stay in the store, unread).
    let bundle = tampered.object(&format!("tile/entries/000.p/{size}"));
    common::flip_byte(&bundle, 40);
    let out = tampered.tftrail(&["export", "--format", "jsonl"], None);
    common::assert_fails(&out, 1, &["entry"]);
    assert!(
        stdout(&out).lines().all(|l| !l.contains("\"index\"")),
        "{}",
        describe(&out)
    );
}

/// Reads a child's stdout lines into a channel.
fn line_reader(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines until one satisfies `f` (which is returned), failing after 30 s.
fn wait_for(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<Value>,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"));
                seen.push(v.clone());
                if f(&v) {
                    return v;
                }
            }
            Err(_) => panic!("no such line within 30 s; lines so far:\n{seen:#?}"),
        }
    }
}

#[test]
fn follow_picks_up_new_records_and_refuses_a_rollback() {
    let env = Env::new();
    env.init();
    env.append(r#"{"kind":"note","payload":{"n":0}}"#);
    let old_checkpoint = env.checkpoint_bytes();
    let mut c = env.command(&["export", "--format", "jsonl", "--follow"]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let rx = line_reader(&mut child);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, |v| v["index"] == 0);
    // Appended after the export started: a new signed note, then the record, against it.
    let i = env.append(r#"{"kind":"note","payload":{"n":1}}"#);
    let line = wait_for(&rx, &mut seen, |v| v["index"] == i);
    let notes: Vec<&Value> = seen
        .iter()
        .filter(|v| v.get("checkpoint_note").is_some())
        .collect();
    assert_eq!(notes.len(), 2, "{seen:#?}");
    assert_eq!(
        notes[1]["checkpoint_note"].as_str().unwrap().as_bytes(),
        env.checkpoint_bytes()
    );
    assert_eq!(line["checkpoint"]["size"], 2);
    assert_eq!(line["record"]["payload"]["payload"]["n"], 1);
    // Each record once.
    assert_eq!(seen.iter().filter(|v| v["index"] == 0).count(), 1);

    // An older checkpoint put back while following: refused as an integrity failure.
    common::overwrite(&env.object("checkpoint"), &old_checkpoint);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("export --follow did not stop on a rolled-back checkpoint");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("rolled back"), "{err}");

    // SIGTERM ends a follow cleanly (exit 0).
    let mut c = env.command(&["export", "--format", "ocsf", "--follow"]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

/// A Terraform working directory whose backend is the server's `/state/NAME`.
fn backend_dir(env: &Env, url: &str, name: &str) -> std::path::PathBuf {
    let dir = env.path(&format!("ws-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let addr = format!("{url}/state/{name}");
    let block = format!(
        "terraform {{\n  backend \"http\" {{\n    address        = \"{addr}\"\n    lock_address   = \"{addr}\"\n    unlock_address = \"{addr}\"\n    username       = \"tftrail\"\n  }}\n}}\n"
    );
    std::fs::write(dir.join("main.tf"), format!("{block}{CONFIG}")).unwrap();
    dir
}

fn bare_terraform(env: &Env, dir: &Path, password: &str, args: &[&str]) -> Output {
    let mut c = Command::new(common::terraform_bin());
    c.env("HOME", &env.home);
    env.tf_env(&mut c);
    for k in [
        "TF_HTTP_ADDRESS",
        "TF_HTTP_USERNAME",
        "TF_HTTP_LOCK_ADDRESS",
        "TF_HTTP_UNLOCK_ADDRESS",
        "TF_LOG",
        "TF_DATA_DIR",
    ] {
        c.env_remove(k);
    }
    c.env("TF_HTTP_PASSWORD", password)
        .current_dir(dir)
        .args(args);
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "terraform {args:?}\n{}", describe(&out));
    out
}

#[test]
fn state_writes_and_refusals_through_a_server_export_as_ocsf() {
    let env = Env::new();
    let vkey = env.init();
    let writer = env.token("writer", "ci-writer");
    let reader = env.token("reader", "viewer");
    let states = env.path("states");
    let server = env.serve(&["--state-store", states.to_str().unwrap()], &[]);
    let dir = backend_dir(&env, &server.url, "prod");
    bare_terraform(&env, &dir, &writer, &["init", "-input=false"]);
    bare_terraform(
        &env,
        &dir,
        &writer,
        &["apply", "-input=false", "-auto-approve"],
    );
    bare_terraform(
        &env,
        &dir,
        &writer,
        &["apply", "-input=false", "-auto-approve", "-var", "ver=2"],
    );
    // A refused request: an unknown token.
    let bogus = format!("tftrail_{}", "A".repeat(43));
    let (st, _) = server.request("GET", "/v1/records", Some(&bogus), b"");
    assert_eq!(st, 401);

    // Exported through the server with a reader's token and only the verifier key.
    let export = |args: &[&str]| -> Vec<Value> {
        let mut a = vec!["export", "--format", "ocsf"];
        a.extend_from_slice(args);
        let mut c = env.client(&server, &reader, &a);
        c.env("TFTRAIL_KEY", &vkey);
        let out = common::run(c, None);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        lines(&stdout(&out))
    };
    // The refusal is recorded by the server on its own time: wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let ev = export(&[]);
        if ev.iter().any(|e| e["class_uid"] == 3002) {
            break ev;
        }
        assert!(
            Instant::now() < deadline,
            "no Authentication event: {ev:#?}\n{}",
            server.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    Ocsf::load().check(&events);
    let writes: Vec<&Value> = events.iter().filter(|e| e["class_uid"] == 6003).collect();
    let mut got: Vec<(u64, String)> = writes
        .iter()
        .map(|e| {
            (
                e["activity_id"].as_u64().unwrap(),
                e["resources"][0]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        [
            (1, s("terraform_data.db")),
            (1, s("terraform_data.keep")),
            (1, s("terraform_data.web")),
            (3, s("terraform_data.web")),
        ],
        "{writes:#?}"
    );
    for e in &writes {
        assert_eq!(e["api"]["operation"], "state write");
        assert_eq!(e["actor"]["user"]["uid"], "token:ci-writer");
        assert_eq!(e["actor"]["user"]["name"], "ci-writer");
        assert_eq!(e["status_id"], 1);
        assert_eq!(
            e["unmapped"]["tftrail"]["out_of_band"], true,
            "a plain apply, no recorded run"
        );
    }
    let denied: Vec<&Value> = events.iter().filter(|e| e["class_uid"] == 3002).collect();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    let d = denied[0];
    assert_eq!(d["status"], "Failure");
    assert_eq!(d["status_code"], "401");
    assert_eq!(d["src_endpoint"]["ip"], "127.0.0.1");
    assert_eq!(d["type_uid"], 300201);
    assert!(
        !d["user"]["name"].as_str().unwrap().contains(&bogus),
        "the token itself is never exported: {d}"
    );

    // The JSON Lines of the same log, through the server, hold the refusal record too.
    let mut c = env.client(
        &server,
        &reader,
        &["export", "--format", "jsonl", "--kind", "server.access"],
    );
    c.env("TFTRAIL_KEY", &vkey);
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let l = lines(&stdout(&out));
    assert_eq!(l.len(), 2, "{l:#?}");
    assert_eq!(l[1]["record"]["kind"], "server.access.denied");
}
