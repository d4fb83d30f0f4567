//! What a newcomer ran into (issue 16), through the binary as a user sees it: the trusted
//! key's source, one OS identity, options before the command, exit codes that do not overlap
//! Terraform's, check-state's wording and formatting, hints, and the integrity holes found by
//! tampering (a deleted checkpoint, altered or deleted batch claims).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{assert_fails, code, describe, snapshot, stderr, stdout, terraform_bin, Env};

const CONFIG: &str = r#"
resource "terraform_data" "a" {
  input = "a"
}
"#;

/// `tftrail args…` with no TFTRAIL_STORE / TFTRAIL_KEY: the defaults under the test's XDG
/// directories, as a user who set nothing has them.
fn bare(env: &Env, args: &[&str]) -> Command {
    let mut c = env.command(args);
    c.env_remove("TFTRAIL_STORE").env_remove("TFTRAIL_KEY");
    c
}

fn ok(c: Command, stdin: Option<&[u8]>) -> String {
    let o = common::run(c, stdin);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    stdout(&o)
}

/// The passwd name of this process's uid, else `uid:N`: what tftrail must record without
/// $USER.
fn os_user() -> String {
    let uid = std::fs::metadata("/proc/self").unwrap().uid().to_string();
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        })
        .unwrap_or(format!("uid:{uid}"))
}

fn workdir(env: &Env, name: &str) -> std::path::PathBuf {
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), CONFIG).unwrap();
    dir
}

/// `tftrail run -- terraform args…` in `dir`, with Terraform's test environment.
fn tf(env: &Env, dir: &Path, args: &[&str]) -> Output {
    let t = terraform_bin();
    let mut all = vec!["run", "--", t.to_str().unwrap()];
    all.extend_from_slice(args);
    env.tf_tftrail(dir, &all, &[])
}

#[test]
fn one_os_identity_without_user() {
    let env = Env::new();
    let who = os_user();
    let strip = |mut c: Command| {
        c.env_remove("USER").env_remove("LOGNAME");
        c
    };
    let o = common::run(strip(bare(&env, &["init"])), None);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    assert!(
        stderr(&o).contains("tftrail.local/") && stderr(&o).contains(&format!("/{who} ")),
        "default origin does not name {who}\n{}",
        describe(&o)
    );
    assert!(!stderr(&o).contains("uid:") || who.starts_with("uid:"));
    let i = ok(strip(bare(&env, &["append"])), Some(b"{\"by\":\"append\"}"));
    assert_eq!(i.trim(), "0");
    let dir = workdir(&env, "work");
    let t = terraform_bin();
    let mut c = strip(bare(&env, &["run", "--", t.to_str().unwrap(), "plan"]));
    env.tf_env(&mut c);
    c.current_dir(&dir);
    let o = common::run(c, None);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    // Both records name the same user, and `log --actor` finds both.
    let found = ok(bare(&env, &["log", "--json", "--actor", &who]), None);
    let lines: Vec<serde_json::Value> = found
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{found}");
    let kinds: Vec<&str> = lines
        .iter()
        .map(|v| v["record"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["terraform.plan", "event"], "{found}");
    for v in &lines {
        assert_eq!(v["record"]["actor"]["user"], who.as_str(), "{v}");
    }
}

#[test]
fn another_stores_key_is_named_not_taken_for_tampering() {
    let env = Env::new();
    // The default log, and a second one with its own key.
    let default_vkey = ok(bare(&env, &["init", "--origin", "a.example/log"]), None);
    let b = env.path("b");
    let bkey = env.path("b.key");
    let (bs, bk) = (b.to_str().unwrap(), bkey.to_str().unwrap());
    let bvkey = ok(
        bare(
            &env,
            &[
                "init",
                "--store",
                bs,
                "--key",
                bk,
                "--origin",
                "b.example/log",
            ],
        ),
        None,
    );
    ok(
        bare(&env, &["append", "--store", bs, "--key", bk]),
        Some(b"{\"n\":1}"),
    );

    // `init` remembered B's verifier key: readers need no --key.
    let listed = ok(bare(&env, &["log", "--store", bs]), None);
    assert!(listed.contains("\"n\":1"), "{listed}");
    ok(bare(&env, &["verify", "--store", bs]), None);

    // A copy elsewhere is not remembered: the default key is another log's. Exit 2, naming
    // where the key came from and who signed, with a hint at --key.
    let copy = env.path("b-copy");
    common::copy_tree(&b, &copy);
    let cs = copy.to_str().unwrap();
    for cmd in ["log", "verify", "show"] {
        let mut args = vec![cmd, "--store", cs];
        if cmd == "show" {
            args.push("0");
        }
        let o = common::run(bare(&env, &args), None);
        let err = assert_fails(
            &o,
            2,
            &[
                "derived from the default signing key",
                "b.example/log+",
                "hint:",
                "--key",
            ],
        );
        assert!(!err.contains("tampered"), "{err}");
    }
    // The right key, given before the command or after it.
    ok(
        bare(&env, &["--store", cs, "--key", bvkey.trim(), "log"]),
        None,
    );
    ok(
        bare(&env, &["verify", "--store", cs, "--key", bvkey.trim()]),
        None,
    );
    // A key the user names for the store is trusted: another signer is an integrity failure.
    let o = common::run(
        bare(
            &env,
            &["verify", "--store", cs, "--key", default_vkey.trim()],
        ),
        None,
    );
    assert_fails(&o, 1, &["the key given with --key", "b.example/log+"]);
    // A writer with the default signing key: exit 2, nothing written.
    let before = snapshot(&copy);
    let o = common::run(bare(&env, &["append", "--store", cs]), Some(b"{\"n\":2}"));
    assert_fails(&o, 2, &["default signing key", "b.example/log+", "--key"]);
    assert_eq!(
        snapshot(&copy),
        before,
        "append with another log's key wrote"
    );
    // A signature that does not verify stays exit 1 with the remembered key.
    let cp = std::fs::read_to_string(b.join("checkpoint")).unwrap();
    let forged = cp.replacen("\n1\n", "\n2\n", 1);
    assert_ne!(forged, cp);
    common::overwrite(&b.join("checkpoint"), forged.as_bytes());
    let o = common::run(bare(&env, &["log", "--store", bs]), None);
    assert_fails(&o, 1, &["does not verify"]);
}

#[test]
fn options_before_the_command_usage_and_suggestions() {
    let env = Env::new();
    env.init();
    env.append("{\"n\":1}");
    let store = env.store.to_str().unwrap().to_string();
    let key = env.key.to_str().unwrap().to_string();
    let before = ok(
        bare(&env, &["--store", &store, "--key", &key, "--json", "log"]),
        None,
    );
    let after = ok(
        bare(&env, &["log", "--store", &store, "--key", &key, "--json"]),
        None,
    );
    assert_eq!(before, after);
    assert!(before.starts_with('{'), "{before}");
    ok(
        bare(&env, &["--store", &store, "--key", &key, "verify"]),
        None,
    );

    // A command without a JSON form refuses --json rather than ignore it.
    let o = env.tftrail(&["--json", "checkpoint"], None);
    assert_fails(&o, 2, &["does not take --json"]);
    let o = env.tftrail(&["bootstrap", "aws", "--store", "s3://b/p"], None);
    assert_fails(&o, 2, &["does not take --store"]);

    // TFTRAIL_STORE and TFTRAIL_KEY are set: the usage line must not show them as required.
    let o = env.tftrail(&["show"], None);
    assert_eq!(code(&o), 2);
    let usage = stderr(&o);
    let line = usage.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(
        !line.contains("--store") && !line.contains("--key"),
        "{line}"
    );

    // Suggestions, and the missing `--` before a Terraform command.
    let o = env.tftrail(&["shwo", "0"], None);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("'show'"), "{}", describe(&o));
    let o = env.tftrail(&["run", "terraform", "plan", "-out", "tf.plan"], None);
    assert_eq!(code(&o), 122, "{}", describe(&o));
    assert!(
        stderr(&o).contains("hint: put `--` before the command")
            && stderr(&o).contains("tftrail run -- terraform plan -out tf.plan"),
        "{}",
        describe(&o)
    );

    // Input that is not one JSON object gets a hint that fits it.
    let o = env.tftrail(&["append"], Some(b"not json\n"));
    assert_fails(&o, 2, &["not valid JSON", "must be a JSON object"]);
    let o = env.tftrail(&["append"], Some(b"{\"a\":1}\n{\"b\":2}\n"));
    assert_fails(&o, 2, &["not valid JSON", "--batch"]);
}

#[test]
fn run_exit_codes_are_never_terraforms() {
    let env = Env::new();
    env.init();
    let dir = workdir(&env, "work");
    let o = tf(&env, &dir, &["init", "-input=false"]);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    // Terraform's own 2 ("changes present") passes through, recorded.
    let o = tf(&env, &dir, &["plan", "-detailed-exitcode", "-input=false"]);
    assert_eq!(code(&o), 2, "{}", describe(&o));
    assert!(stderr(&o).contains("tftrail: recorded"), "{}", describe(&o));
    // tftrail's own bad option: 122.
    let t = terraform_bin();
    let o = env.tf_tftrail(
        &dir,
        &["run", "--bogus", "--", t.to_str().unwrap(), "plan"],
        &[],
    );
    assert_eq!(code(&o), 122, "{}", describe(&o));
    // A log that fails its integrity check: 121, and Terraform did not run.
    let cp = env.object("checkpoint");
    let good = std::fs::read(&cp).unwrap();
    common::overwrite(&cp, b"garbage\n");
    let o = tf(&env, &dir, &["apply", "-auto-approve", "-input=false"]);
    assert_eq!(code(&o), 121, "{}", describe(&o));
    assert!(stderr(&o).contains("NOT run"), "{}", describe(&o));
    assert!(!dir.join("terraform.tfstate").exists());
    common::overwrite(&cp, &good);

    // `log --kind apply` is the short form of terraform.apply*.
    let o = tf(&env, &dir, &["apply", "-auto-approve", "-input=false"]);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    let listed = env.ok(&["log", "--json", "--kind", "apply"], None);
    let kinds: Vec<String> = listed
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["record"]["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        ["terraform.apply.outcome", "terraform.apply.intent"],
        "{listed}"
    );
}

#[test]
fn check_state_wording_and_formatting() {
    let env = Env::new();
    env.init();
    // No state, no record.
    let empty = env.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = env.tftrail(&["check-state", "--dir", empty.to_str().unwrap()], None);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    assert!(
        stdout(&o).starts_with("nothing recorded:"),
        "{}",
        describe(&o)
    );
    assert!(!stdout(&o).contains("record -"), "{}", describe(&o));
    let o = env.tftrail(
        &["check-state", "--json", "--dir", empty.to_str().unwrap()],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["recorded"], false, "{v}");

    let dir = workdir(&env, "work");
    let d = dir.to_str().unwrap();
    assert_eq!(code(&tf(&env, &dir, &["init", "-input=false"])), 0);
    let o = tf(&env, &dir, &["apply", "-auto-approve", "-input=false"]);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    let o = env.tftrail(&["check-state", "--dir", d], None);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    // The same state, written compactly with sorted keys: not drift.
    let path = dir.join("terraform.tfstate");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let compact = serde_json::to_vec(&state).unwrap();
    assert_ne!(compact, std::fs::read(&path).unwrap());
    std::fs::write(&path, &compact).unwrap();
    let o = env.tftrail(&["check-state", "--dir", d], None);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    assert!(
        stdout(&o).contains("only its formatting differs"),
        "{}",
        describe(&o)
    );
    // A real change is.
    let mut changed = state.clone();
    changed["serial"] = (state["serial"].as_u64().unwrap() + 1).into();
    std::fs::write(&path, serde_json::to_vec_pretty(&changed).unwrap()).unwrap();
    let o = env.tftrail(&["check-state", "--dir", d], None);
    assert_eq!(code(&o), 4, "{}", describe(&o));
    assert!(
        stdout(&o).contains("serial moved without a record"),
        "{}",
        describe(&o)
    );
    std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();

    // A destroy's plan line speaks of destroying, not of "apply time".
    let o = tf(&env, &dir, &["destroy", "-auto-approve", "-input=false"]);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    let listed = env.ok(&["log", "--json", "--kind", "destroy.intent"], None);
    let v: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    let shown = env.ok(&["show", &v["index"].to_string()], None);
    let plan = shown
        .lines()
        .find(|l| l.starts_with("plan:"))
        .unwrap_or_default();
    assert!(plan.contains("plans again when it destroys"), "{shown}");
    assert!(!shown.contains("apply time"), "{shown}");
}

#[test]
fn deleted_checkpoint_and_tampered_claims_are_damage() {
    let env = Env::new();
    env.init();
    for n in 0..3 {
        env.append(&format!("{{\"n\":{n}}}"));
    }
    env.ok(&["verify"], None);
    // A claim with one flipped byte.
    let claim = env.object("tftrail/batches/001");
    let good = std::fs::read(&claim).unwrap();
    common::flip_byte(&claim, -5);
    let o = env.tftrail(&["verify"], None);
    assert_fails(
        &o,
        1,
        &["tftrail/batches/001", "batch claim does not verify"],
    );
    let o = env.tftrail(&["verify", "--json"], None);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["object"] == "tftrail/batches/001"),
        "{v}"
    );
    common::overwrite(&claim, &good);
    env.ok(&["verify"], None);
    // A deleted claim.
    std::fs::remove_file(env.object("tftrail/batches/002")).unwrap();
    let o = env.tftrail(&["verify"], None);
    assert_fails(&o, 1, &["tftrail/batches/002", "the claim was deleted"]);

    // The deleted checkpoint: damage (exit 1) for every command, with a hint at recovery, and
    // nothing written.
    std::fs::remove_file(env.object("checkpoint")).unwrap();
    let before = snapshot(&env.store);
    for (args, stdin) in [
        (vec!["verify"], None),
        (vec!["log"], None),
        (vec!["append"], Some(&b"{\"n\":9}"[..])),
    ] {
        let o = env.tftrail(&args, stdin);
        let err = assert_fails(
            &o,
            1,
            &["no checkpoint", "the checkpoint was deleted", "recover"],
        );
        assert!(!err.contains("not a tftrail log"), "{err}");
    }
    let o = env.tftrail(&["verify", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["problems"][0]["object"], "checkpoint", "{v}");
    assert_eq!(
        snapshot(&env.store),
        before,
        "a command wrote to a log without checkpoint"
    );
    // An empty directory is still simply not a log (exit 2).
    let o = env.tftrail(
        &["log", "--store", env.path("nothing").to_str().unwrap()],
        None,
    );
    assert_eq!(code(&o), 2, "{}", describe(&o));
}
