//! Bad input around `tftrail run`: a missing Terraform, a non-Terraform command, a broken
//! plan file, an unusable log — clear errors, and Terraform's own behaviour unchanged where it
//! ran. Also the quickstart script, end to end.

mod common;

use common::{code, stderr, stdout, terraform_bin, Env};

const CONFIG: &str = r#"
resource "terraform_data" "a" {
  input = "a"
}
"#;

fn workdir(env: &Env) -> std::path::PathBuf {
    let dir = env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), CONFIG).unwrap();
    dir
}

#[test]
fn bad_commands_and_plan_files() {
    let env = Env::new();
    env.init();
    let dir = workdir(&env);

    // Not Terraform.
    let out = env.tf_tftrail(&dir, &["run", "--", "ls", "-la"], &[]);
    common::assert_fails(&out, 122, &["not Terraform or OpenTofu", "hint:"]);
    // No such Terraform binary.
    let out = env.tf_tftrail(
        &dir,
        &["run", "--", "/nonexistent/bin/terraform", "plan"],
        &[],
    );
    common::assert_fails(&out, 127, &["cannot find", "hint:"]);
    // Nothing after --.
    let out = env.tf_tftrail(&dir, &["run"], &[]);
    assert_eq!(code(&out), 122);

    // A broken plan file: Terraform's own exit code and message; the attempt is recorded.
    let (out, _) = env.tf_run(&dir, &["init", "-input=false"], &[]);
    assert_eq!(code(&out), 0, "{}", common::describe(&out));
    std::fs::write(dir.join("broken.plan"), b"PK\x03\x04 this is not a plan").unwrap();
    let bare = env.bare_terraform(&dir, &["apply", "-input=false", "broken.plan"]);
    let (out, rec) = env.tf_run(&dir, &["apply", "-input=false", "broken.plan"], &[]);
    assert_eq!(code(&out), code(&bare), "{}", common::describe(&out));
    assert_ne!(code(&out), 0);
    assert_eq!(rec.len(), 2, "{}", common::describe(&out));
    let intent = env.record(rec[0]);
    assert!(
        intent["payload"]["plan"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("cannot read the plan file"),
        "{intent}"
    );
    assert_eq!(env.record(rec[1])["payload"]["outcome"], "failed");
    assert!(!dir.join("terraform.tfstate").exists());
    assert!(env.ok(&["verify"], None).starts_with("OK:"));
}

#[test]
fn unusable_log_stops_state_changes_unless_fail_open() {
    let env = Env::new();
    let dir = workdir(&env);
    let tf = terraform_bin();
    let tf = tf.to_str().unwrap();
    // A store path below a regular file: it cannot exist, nor be created (root or not).
    let blocker = env.path("not-a-dir");
    std::fs::write(&blocker, b"file").unwrap();
    let bad_store = blocker.join("log");
    let bad_store = bad_store.to_str().unwrap();
    let init = env.bare_terraform(&dir, &["init", "-input=false"]);
    assert_eq!(code(&init), 0, "{}", common::describe(&init));

    for args in [
        vec![
            "run",
            "--store",
            bad_store,
            "--",
            tf,
            "apply",
            "-auto-approve",
            "-input=false",
        ],
        vec![
            "run",
            "--key",
            "/nonexistent/key",
            "--",
            tf,
            "apply",
            "-auto-approve",
            "-input=false",
        ],
        vec!["run", "--", tf, "apply", "-auto-approve", "-input=false"], // no log at all
    ] {
        let out = env.tf_tftrail(&dir, &args, &[]);
        assert_ne!(code(&out), 0, "{args:?}\n{}", common::describe(&out));
        let err = stderr(&out);
        assert!(err.contains("was NOT run"), "{args:?}\n{err}");
        assert!(err.contains("--fail-open"), "{err}");
        assert!(
            !dir.join("terraform.tfstate").exists(),
            "{args:?} applied anyway"
        );
    }
    // Read-only commands pass through without a log.
    let out = env.tf_tftrail(
        &dir,
        &["run", "--store", bad_store, "--", tf, "validate"],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", common::describe(&out));
    assert!(stdout(&out).contains("valid"));

    // A log whose writes fail after opening: the claim directory is a regular file.
    env.init();
    let claims = env.store.join("tftrail/batches");
    let _ = std::fs::remove_dir_all(&claims);
    std::fs::create_dir_all(claims.parent().unwrap()).unwrap();
    std::fs::write(&claims, b"blocks writes").unwrap();
    let out = env.tf_tftrail(
        &dir,
        &["run", "--", tf, "apply", "-auto-approve", "-input=false"],
        &[],
    );
    assert_eq!(code(&out), 123, "{}", common::describe(&out));
    assert!(stderr(&out).contains("NOT run"), "{}", stderr(&out));
    assert!(!dir.join("terraform.tfstate").exists());

    // --fail-open runs it, loudly, with Terraform's exit code.
    let out = env.tf_tftrail(
        &dir,
        &[
            "run",
            "--store",
            bad_store,
            "--fail-open",
            "--",
            tf,
            "apply",
            "-auto-approve",
            "-input=false",
        ],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", common::describe(&out));
    assert!(stderr(&out).contains("UNRECORDED") || stderr(&out).contains("could not be stored"));
    assert!(dir.join("terraform.tfstate").exists());
}

#[test]
fn quickstart_script_runs_from_a_fresh_environment() {
    let env = Env::new();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/run.sh"
    );
    let mut c = std::process::Command::new("bash");
    c.arg(script)
        .env("TFTRAIL", common::BIN)
        .env("QUICKSTART_DIR", env.path(""))
        .env("HOME", &env.home)
        .env("XDG_DATA_HOME", &env.data)
        .env("XDG_CONFIG_HOME", &env.config)
        .env("XDG_STATE_HOME", &env.state)
        .env("XDG_CACHE_HOME", env.cache())
        .env_remove("TFTRAIL_STORE")
        .env_remove("TFTRAIL_KEY")
        .env("PATH", {
            let tf = terraform_bin();
            let mut p = vec![tf.parent().unwrap().to_path_buf()];
            p.extend(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            ));
            std::env::join_paths(p).unwrap()
        });
    env.tf_env(&mut c);
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", common::describe(&out));
    let text = stdout(&out);
    assert!(text.contains("terraform.apply.outcome"), "{text}");
    assert!(text.contains("OK: log"), "{text}");
    assert!(
        env.data.join("tftrail/log").is_dir(),
        "the default store was used"
    );
}
