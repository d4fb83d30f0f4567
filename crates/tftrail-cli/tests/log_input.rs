//! Bad input: every case gives a clear `error: …` with exit 2 (1 for integrity failures), and
//! leaves the log exactly as it was.

mod common;

use std::path::Path;

use common::{assert_fails, code, describe, snapshot, Env};

/// A log with a few records.
fn small_log() -> Env {
    let env = Env::new();
    env.init();
    env.append_batch("{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
    env
}

/// Runs `args` with `stdin`, expects `want` and the needles in stderr, and checks that the log
/// did not change and still verifies.
fn rejected(env: &Env, args: &[&str], stdin: &[u8], want: i32, needles: &[&str]) -> String {
    let before = snapshot(&env.store);
    let out = env.tftrail(args, Some(stdin));
    let err = assert_fails(&out, want, needles);
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    assert_eq!(snapshot(&env.store), before, "{args:?} changed the log");
    env.ok(&["verify"], None);
    err
}

#[test]
fn bad_append_input_changes_nothing() {
    let env = small_log();
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(70_000));
    let long_kind = "k".repeat(65);
    let cases: Vec<(Vec<&str>, Vec<u8>, Vec<&str>)> = vec![
        (vec!["append"], b"{\"a\": ".to_vec(), vec!["not valid JSON"]),
        (vec!["append"], b"".to_vec(), vec!["no JSON on stdin"]),
        (vec!["append"], b"  \n\t".to_vec(), vec!["no JSON on stdin"]),
        (
            vec!["append"],
            b"[1,2]".to_vec(),
            vec!["JSON object", "an array"],
        ),
        (
            vec!["append"],
            b"\"text\"".to_vec(),
            vec!["JSON object", "a string"],
        ),
        (vec!["append"], b"{} {}".to_vec(), vec!["not valid JSON"]),
        (
            vec!["append"],
            big.clone().into_bytes(),
            vec!["bytes", "65535"],
        ),
        (
            vec!["append", "--kind", "Bad Kind"],
            b"{}".to_vec(),
            vec!["invalid record kind", "Bad Kind"],
        ),
        (
            vec!["append", "--kind", ""],
            b"{}".to_vec(),
            vec!["invalid record kind"],
        ),
        (
            vec!["append", "--kind", &long_kind],
            b"{}".to_vec(),
            vec!["invalid record kind"],
        ),
        (
            vec!["append", "--batch"],
            b"".to_vec(),
            vec!["nothing appended"],
        ),
        (
            vec!["append", "--batch"],
            b"{\"a\":1}\n{oops\n{\"a\":3}\n".to_vec(),
            vec!["line 2", "invalid JSON"],
        ),
        (
            vec!["append", "--batch"],
            b"{\"a\":1}\n[1]\n".to_vec(),
            vec!["line 2", "an array"],
        ),
        (
            vec!["append", "--batch"],
            format!("{{\"a\":1}}\n{{\"a\":2}}\n{big}\n").into_bytes(),
            vec!["line 3", "65535"],
        ),
        (
            vec!["append", "--batch"],
            b"{\"a\":1}\n\xff\xfe\n".to_vec(),
            vec!["line 2"],
        ),
    ];
    for (args, stdin, needles) in cases {
        rejected(&env, &args, &stdin, 2, &needles);
    }
    // The log still takes input, at the next index.
    assert_eq!(env.append("{\"n\":3}"), 3);
}

#[test]
fn entry_at_the_size_limit() {
    let env = small_log();
    // The encoded record adds the envelope; find the largest payload that fits by asking.
    let fixed = {
        let out = env.ok(&["append"], Some(b"{\"x\":\"\"}"));
        let i: u64 = out.trim().parse().unwrap();
        let rec = env.ok(&["show", &i.to_string(), "--json"], None);
        let v: serde_json::Value = serde_json::from_str(rec.trim()).unwrap();
        let r: tftrail_core::record::Record = serde_json::from_value(v["record"].clone()).unwrap();
        r.to_entry().unwrap().len()
    };
    // Timestamps have a fixed width, so the envelope is the same for the next records.
    let fits = format!("{{\"x\":\"{}\"}}", "a".repeat(65_535 - fixed));
    env.ok(&["append"], Some(fits.as_bytes()));
    let over = format!("{{\"x\":\"{}\"}}", "a".repeat(65_536 - fixed));
    rejected(
        &env,
        &["append"],
        over.as_bytes(),
        2,
        &["65536 bytes", "65535"],
    );
}

#[test]
fn store_that_is_not_a_log() {
    let env = Env::new();
    env.init();
    let empty = env.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let file = env.path("file");
    std::fs::write(&file, b"hello").unwrap();
    let missing = env.path("missing");
    let cases: [(&Path, &str); 3] = [
        (&empty, "is not a tftrail log"),
        (&file, "is not a directory"),
        (&missing, "does not exist"),
    ];
    for (store, why) in cases {
        let s = store.to_str().unwrap();
        for (args, stdin) in [
            (vec!["append", "--store", s], &b"{}"[..]),
            (vec!["append", "--batch", "--store", s], &b"{}\n"[..]),
            (vec!["verify", "--store", s], &b""[..]),
            (vec!["verify", "--json", "--store", s], &b""[..]),
            (vec!["log", "--store", s], &b""[..]),
            (vec!["show", "0", "--store", s], &b""[..]),
            (vec!["prove", "0", "--store", s], &b""[..]),
            (vec!["checkpoint", "--store", s], &b""[..]),
        ] {
            let out = env.tftrail(&args, Some(stdin));
            assert_fails(&out, 2, &[s, why]);
        }
    }
    // Nothing was created anywhere.
    assert!(
        std::fs::read_dir(&empty).unwrap().next().is_none(),
        "files appeared in {empty:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"hello");
    assert!(!missing.exists());
}

#[test]
fn wrong_keys() {
    let env = small_log();
    let other = Env::new();
    let other_vkey = other.init_with_origin("other.example/log");
    let same_origin = Env::new();
    let same_origin_vkey = same_origin.init();

    // verify with another log's verifier key: an integrity failure naming the checkpoint.
    for vkey in [&other_vkey, &same_origin_vkey] {
        let before = snapshot(&env.store);
        let out = env.tftrail(&["verify", "--key", vkey], None);
        assert_fails(&out, 1, &["checkpoint"]);
        assert_eq!(snapshot(&env.store), before);
        for args in [vec!["show", "0", "--key", vkey], vec!["log", "--key", vkey]] {
            let out = env.tftrail(&args, None);
            assert_fails(&out, 1, &["checkpoint"]);
            assert!(out.stdout.is_empty());
        }
    }
    // append signed with another log's key.
    for key in [&other.key, &same_origin.key] {
        let before = snapshot(&env.store);
        let out = env
            .command(&["append"])
            .env("TFTRAIL_KEY", key)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(code(&out) == 1 || code(&out) == 2, "{}", describe(&out));
        // (stdin was empty: use a real payload too)
        let mut c = env.command(&["append", "--key", key.to_str().unwrap()]);
        c.env("TFTRAIL_KEY", key);
        let out = common::run(c, Some(b"{\"evil\":true}"));
        let err = assert_fails(&out, 1, &["checkpoint"]);
        assert!(
            err.contains("is not signed by the key given with --key"),
            "{err}"
        );
        assert_eq!(
            snapshot(&env.store),
            before,
            "append with a foreign key wrote"
        );
    }
    // A verifier key that does not parse, and a key file that is not a key.
    let out = env.tftrail(&["verify", "--key", "nonsense"], None);
    assert_fails(&out, 2, &["nonsense"]);
    let junk = env.path("junk.key");
    std::fs::write(&junk, "PRIVATE+KEY+junk\n").unwrap();
    let out = env.tftrail(&["append", "--key", junk.to_str().unwrap()], Some(b"{}"));
    assert_fails(&out, 2, &["junk.key"]);
    let out = env.tftrail(
        &["append", "--key", env.path("nokey").to_str().unwrap()],
        Some(b"{}"),
    );
    assert_fails(&out, 2, &["nokey"]);
    env.ok(&["verify"], None);
}

#[test]
fn garbled_checkpoint() {
    let env = small_log();
    let cp = env.object("checkpoint");
    for garbage in [
        b"".to_vec(),
        b"garbage\n".to_vec(),
        std::fs::read(&cp).unwrap()[..40].to_vec(),
        vec![0xff; 100],
    ] {
        common::overwrite(&cp, &garbage);
        let before = snapshot(&env.store);
        let out = env.tftrail(&["append"], Some(b"{\"n\":9}"));
        assert_fails(&out, 1, &["checkpoint"]);
        let out = env.tftrail(&["verify"], None);
        assert_fails(&out, 1, &["checkpoint"]);
        let out = env.tftrail(&["verify", "--json"], None);
        assert_eq!(code(&out), 1);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], false);
        let out = env.tftrail(&["show", "0"], None);
        assert_fails(&out, 1, &["checkpoint"]);
        assert_eq!(
            snapshot(&env.store),
            before,
            "a command changed a log with a bad checkpoint"
        );
    }
}

#[test]
fn init_refuses_to_overwrite() {
    let env = small_log();
    let before = snapshot(&env.store);
    let key_before = std::fs::read(&env.key).unwrap();

    // Existing log and key.
    let out = env.tftrail(&["init", "--origin", "test.example/log"], None);
    assert_fails(&out, 2, &["already exists"]);
    // Existing log, new key path: refused, and no key is left behind.
    let new_key = env.path("new.key");
    let out = env.tftrail(&["init", "--key", new_key.to_str().unwrap()], None);
    assert_fails(&out, 2, &["already holds a log"]);
    assert!(!new_key.exists(), "a refused init left a key behind");
    // Existing key, new store: refused, and the store is not created.
    let new_store = env.path("new-log");
    let out = env.tftrail(&["init", "--store", new_store.to_str().unwrap()], None);
    assert_fails(&out, 2, &["signing key", "already exists"]);
    assert!(!new_store.exists(), "a refused init created the store");
    // A bad origin.
    let out = env.tftrail(
        &[
            "init",
            "--origin",
            "has space",
            "--store",
            new_store.to_str().unwrap(),
            "--key",
            new_key.to_str().unwrap(),
        ],
        None,
    );
    assert_fails(&out, 2, &["origin"]);
    assert!(!new_store.exists() && !new_key.exists());

    assert_eq!(snapshot(&env.store), before);
    assert_eq!(std::fs::read(&env.key).unwrap(), key_before);
    env.ok(&["verify"], None);
}
