//! `tftrail token create|list|revoke`, run as the real binary against a token file, and the
//! file read back by the server's own `TokenSet`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::{assert_fails, code, describe, stderr, stdout, Env};
use tftrail_server::tokens::{fingerprint, is_well_formed, TokenSet};

fn token(env: &Env, args: &[&str]) -> Output {
    let mut c = env.command(args);
    c.env_remove("TFTRAIL_TOKENS");
    common::run(c, None)
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = token(env, args);
    assert_eq!(code(&out), 0, "tftrail {args:?}\n{}", describe(&out));
    stdout(&out)
}

#[test]
fn create_list_revoke() {
    let env = Env::new();
    let file = env.path("tokens.toml");
    let f = file.to_str().unwrap();

    let out = token(
        &env,
        &[
            "token", "create", "--tokens", f, "--role", "writer", "--name", "ci",
        ],
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let ci = stdout(&out);
    // stdout is exactly the token and a newline.
    assert!(
        ci.ends_with('\n') && ci.matches('\n').count() == 1,
        "{ci:?}"
    );
    let ci = ci.trim_end().to_string();
    assert!(is_well_formed(&ci), "{ci:?}");
    let err = stderr(&out);
    assert!(err.contains("shown only this once"), "{err}");
    assert!(err.contains(&fingerprint(&ci)), "{err}");
    assert!(!err.contains(&ci), "token on stderr");

    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&ci) && !text.contains(&ci["tftrail_".len()..]),
        "token in file"
    );

    let aud = ok(
        &env,
        &[
            "token",
            "create",
            "--tokens",
            f,
            "--role",
            "auditor",
            "--name",
            "audit",
            "--expires",
            "30",
        ],
    );
    let aud = aud.trim_end();
    assert_ne!(aud, ci);

    let dup = token(
        &env,
        &[
            "token", "create", "--tokens", f, "--role", "reader", "--name", "ci",
        ],
    );
    assert_fails(&dup, 2, &["a token named ci already exists"]);
    assert!(stdout(&dup).is_empty());
    let bad = token(
        &env,
        &[
            "token", "create", "--tokens", f, "--role", "boss", "--name", "x",
        ],
    );
    assert_fails(&bad, 2, &["writer, reader, auditor or admin"]);
    let bad = token(
        &env,
        &[
            "token", "create", "--tokens", f, "--role", "reader", "--name", "a b",
        ],
    );
    assert_fails(&bad, 2, &["bad token name \"a b\""]);

    // The text listing, then JSON.
    let listing = ok(&env, &["token", "list", "--tokens", f]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].ends_with("FINGERPRINT"),
        "{listing}"
    );
    assert!(
        lines[1].starts_with("ci ")
            && lines[1].contains(" writer ")
            && lines[1].ends_with(&fingerprint(&ci)),
        "{listing}"
    );
    assert!(
        lines[2].starts_with("audit ") && lines[2].contains(" auditor "),
        "{listing}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&env, &["token", "list", "--tokens", f, "--json"])).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["name"], "ci");
    assert_eq!(arr[0]["role"], "writer");
    assert_eq!(arr[0]["fingerprint"], fingerprint(&ci));
    assert!(arr[0]["expires"].is_null() && arr[0]["revoked"].is_null());
    assert!(arr[1]["expires"].is_string());
    assert!(arr[0].get("sha256").is_none(), "the hash is not listed");

    // The server's view of the same file; then a revocation seen on its next check.
    let set = TokenSet::load(&file).unwrap();
    assert_eq!(set.lookup(&ci).unwrap().name, "ci");
    assert_eq!(set.lookup(aud).unwrap().name, "audit");

    // TFTRAIL_TOKENS instead of --tokens.
    let mut c = env.command(&["token", "revoke", "ci"]);
    c.env("TFTRAIL_TOKENS", &file);
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("revoked token ci"),
        "{}",
        describe(&out)
    );
    let events = set.check().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind(), "revoked");
    let d = set.lookup(&ci).unwrap_err();
    assert!(
        d.reason.starts_with("token ci was revoked at "),
        "{}",
        d.reason
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&env, &["token", "list", "--tokens", f, "--json"])).unwrap();
    assert!(json[0]["revoked"].is_string());

    let again = token(&env, &["token", "revoke", "ci", "--tokens", f]);
    assert_fails(&again, 2, &["token ci was already revoked at "]);
    let unknown = token(&env, &["token", "revoke", "nobody", "--tokens", f]);
    let err = assert_fails(&unknown, 2, &["no token named nobody"]);
    assert!(err.contains("hint: see `tftrail token list"), "{err}");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn needs_a_token_file() {
    let env = Env::new();
    let out = token(&env, &["token", "list"]);
    let err = assert_fails(&out, 2, &["no token file given"]);
    assert!(err.contains("TFTRAIL_TOKENS"), "{err}");
    let missing = env.path("none.toml");
    let out = token(
        &env,
        &["token", "list", "--tokens", missing.to_str().unwrap()],
    );
    assert_fails(&out, 2, &["no token file", "none.toml"]);
    let out = token(
        &env,
        &[
            "token",
            "create",
            "--role",
            "reader",
            "--name",
            "x",
            "--tokens",
            "/nonexistent-dir/t.toml",
        ],
    );
    assert_fails(&out, 3, &["token file /nonexistent-dir/t.toml"]);
    let broken = env.path("broken.toml");
    std::fs::write(&broken, "[[token]]\nname = \"a\"\nrole = \"boss\"\n").unwrap();
    let out = token(
        &env,
        &["token", "list", "--tokens", broken.to_str().unwrap()],
    );
    assert_fails(&out, 2, &["line 3", "boss"]);
}
