//! The CLI as a client of a tftrail server (`--server`, TFTRAIL_SERVER): what it refuses
//! before sending anything, and failing closed when the server cannot be reached.

mod common;

use std::process::Output;

use common::{assert_fails, Env};

/// `tftrail args…` as a client that names no store and no key, through `server`.
fn client(env: &Env, args: &[&str], server: &str, stdin: Option<&[u8]>) -> Output {
    let mut c = env.command(args);
    c.env_remove("TFTRAIL_KEY")
        .env_remove("TFTRAIL_STORE")
        .env("TFTRAIL_SERVER", server);
    common::run(c, stdin)
}

/// A loopback URL nothing listens on (the port was just free).
fn dead_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
}

#[test]
fn a_store_and_a_server_together_are_a_usage_error_naming_both() {
    let env = Env::new();
    let url = dead_server();
    let out = env.tftrail(&["log", "--store", "/tmp/x", "--server", &url], None);
    assert_fails(&out, 2, &["--store and --server both name the log"]);
    let mut c = env.command(&["log", "--store", "/tmp/x"]);
    c.env("TFTRAIL_SERVER", &url);
    let out = common::run(c, None);
    assert_fails(&out, 2, &["--store and TFTRAIL_SERVER both name the log"]);
    // In `run`, tftrail's usage errors take 122, a code Terraform never uses.
    let out = env.tftrail(
        &[
            "run",
            "--store",
            "/tmp/x",
            "--server",
            &url,
            "--",
            "terraform",
            "plan",
        ],
        None,
    );
    assert_fails(&out, 122, &["--store and --server"]);
    // --server overrides TFTRAIL_STORE (the helper always sets it), as a flag overrides the
    // environment: the server is what is tried.
    let mut c = env.command(&["log", "--server", &url]);
    c.env_remove("TFTRAIL_KEY");
    let out = common::run(c, None);
    assert_fails(
        &out,
        3,
        &[&format!("cannot reach the tftrail server at {url}")],
    );
}

#[test]
fn server_takes_only_a_server_url() {
    let env = Env::new();
    let out = env.tftrail(&["log", "--server", "s3://bucket/x"], None);
    assert_fails(
        &out,
        2,
        &["--server takes a tftrail server's URL", "s3://bucket/x"],
    );
    let out = env.tftrail(&["log", "--server", "https://u:p@host"], None);
    assert_fails(&out, 2, &["credentials do not go in the URL"]);
}

#[test]
fn commands_that_work_on_a_store_refuse_a_server() {
    let env = Env::new();
    let url = dead_server();
    for (args, needle) in [
        (
            vec!["init"],
            "`tftrail init` does not work through a tftrail server",
        ),
        (
            vec!["recover", "--to", "/tmp/r"],
            "`tftrail recover` does not work",
        ),
        (
            vec!["storage", "check"],
            "`tftrail storage check` does not work",
        ),
        (vec!["key"], "`tftrail key` does not take --server"),
        (
            vec!["bootstrap", "aws"],
            "`tftrail bootstrap` does not take --server",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--server", &url]);
        let out = env.tftrail(&all, None);
        assert_fails(&out, 2, &[needle]);
    }
    // Through the environment too, for the commands that would use the log.
    let out = client(&env, &["init"], &url, None);
    assert_fails(&out, 2, &["`tftrail init` does not work"]);
    assert!(!env.key.exists(), "init created no key");
    let out = env.tftrail(&["storage", "check", &url], None);
    assert_fails(&out, 2, &["inspects a store, not a tftrail server"]);
}

#[test]
fn an_unreachable_server_means_no_write_and_no_run() {
    let env = Env::new();
    let url = dead_server();
    let out = client(&env, &["append"], &url, Some(b"{\"a\":1}"));
    assert_fails(
        &out,
        3,
        &[
            &format!("cannot reach the tftrail server at {url}"),
            "hint: check that the server is running",
        ],
    );
    // Bad input is reported before anything is sent, with its line.
    let out = client(
        &env,
        &["append", "--batch"],
        &url,
        Some(b"{\"a\":1}\nnot json\n"),
    );
    assert_fails(&out, 2, &["line 2: invalid JSON"]);

    // `run` fails closed: the command does not start (it would create `ran`).
    let dir = env.path("tf");
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("ran");
    let tf = env.path("terraform");
    std::fs::write(&tf, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = env.command(&["run", "--", tf.to_str().unwrap(), "apply", "-auto-approve"]);
    c.env_remove("TFTRAIL_KEY")
        .env_remove("TFTRAIL_STORE")
        .env("TFTRAIL_SERVER", &url)
        .current_dir(&dir);
    let out = common::run(c, None);
    assert_fails(
        &out,
        123,
        &[
            "was NOT run",
            &format!("cannot reach the tftrail server at {url}"),
        ],
    );
    assert!(!marker.exists(), "the command ran");
    // No signing key was needed to get that far, and none was created.
    assert!(!env.key.exists());
}
