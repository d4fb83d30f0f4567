//! The log on S3 (a real moto_server started by the tests): the everyday commands, Object Lock
//! in COMPLIANCE mode (delete markers, refused version deletes, `verify` naming hidden objects,
//! `recover`), concurrent writer processes, `storage check`, and `tftrail run`.
//!
//! One moto_server is shared by the tests that run at the same time and stopped when the last
//! of them ends; every test uses its own bucket.

mod common;

use common::{code, describe, stderr, stdout, Env, ServerSlot, Shared};
use tftrail_store::s3admin::S3Admin;
use tftrail_store::testing::{object_lock_xml, Moto, PUBLIC_ACCESS_BLOCK_ALL};

static SLOT: ServerSlot<Moto> = std::sync::Mutex::new((None, 0));

type MotoGuard = Shared<Moto>;

/// The shared moto_server.
fn moto() -> MotoGuard {
    Shared::acquire(
        &SLOT,
        || {
            let m = Moto::start();
            m.apply_env();
            Some(m)
        },
        Moto::env,
    )
    .expect("moto starts")
}

/// Every version id of `key`, newest first (delete markers excluded).
fn data_versions(admin: &S3Admin, key: &str) -> Vec<String> {
    let kv = admin.versions(key).unwrap();
    let kv = kv.iter().find(|k| k.path == key).expect("key listed");
    kv.data_versions().map(|v| v.version_id.clone()).collect()
}

#[test]
fn s3_everyday_commands() {
    let g = moto();
    g.with(|m| m.create_audit_bucket("everyday", 1));
    let env = Env::new();
    let loc = "s3://everyday/team/log";
    let vkey = g.init_and_append(&env, loc, "test.example/s3", 3);
    let recs = g.log_json(&env, loc);
    assert_eq!(recs.len(), 3);
    let shown = g.ok(&env, loc, &["show", "1", "--json"], None);
    assert!(shown.contains("\"i\":1"), "{shown}");
    let v = g.ok(&env, loc, &["verify"], None);
    assert!(
        v.starts_with("OK: log test.example/s3 verified: 3 records"),
        "{v}"
    );
    g.receipt_verifies_offline(&env, loc, 2, &vkey);
    // storage check on the log's own store passes.
    let out = g.tftrail(
        &env,
        loc,
        &["storage", "check", "--min-retention-days", "1"],
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

#[test]
fn compliance_lock_delete_markers_and_recover() {
    let g = moto();
    g.with(|m| m.create_audit_bucket("locked", 1));
    let env = Env::new();
    let loc = "s3://locked/log";
    g.ok(
        &env,
        loc,
        &["init", "--origin", "test.example/locked"],
        None,
    );
    let lines: String = (0..300).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    g.ok(&env, loc, &["append", "--batch"], Some(lines.as_bytes()));
    g.ok(&env, loc, &["append"], Some(b"{\"n\":300}"));
    g.ok(&env, loc, &["verify"], None);

    let admin = S3Admin::new("locked", "").unwrap();
    let bundle = "log/tile/entries/000";
    let tile = "log/tile/0/000";
    let partial = "log/tile/entries/001.p/45";
    // Deleting a locked version is refused, through the aws CLI and the API alike.
    let v_bundle = data_versions(&admin, bundle)[0].clone();
    let aws = std::process::Command::new("aws")
        .envs(g.env.iter().map(|(k, v)| (*k, v)))
        .args([
            "--endpoint-url",
            &g.with(Moto::endpoint),
            "s3api",
            "delete-object",
            "--bucket",
            "locked",
            "--key",
            bundle,
            "--version-id",
            &v_bundle,
        ])
        .output()
        .expect("aws CLI");
    assert!(!aws.status.success(), "{}", describe(&aws));
    assert!(
        String::from_utf8_lossy(&aws.stderr).contains("AccessDenied"),
        "{}",
        describe(&aws)
    );
    let r = admin
        .send(
            "DELETE",
            Some(tile),
            &[("versionId", &data_versions(&admin, tile)[0])],
            &[("x-amz-bypass-governance-retention", "true")],
            Vec::new(),
        )
        .unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    // A plain DELETE only adds a delete marker; a PUT adds a newer version.
    for key in [bundle, tile] {
        let r = admin
            .send("DELETE", Some(key), &[], &[], Vec::new())
            .unwrap();
        assert!(r.status < 300, "{r:?}");
        assert_eq!(r.header("x-amz-delete-marker"), Some("true"), "{r:?}");
    }
    let r = admin
        .send("PUT", Some(partial), &[], &[], b"rewritten".to_vec())
        .unwrap();
    assert!(r.status < 300, "{r:?}");
    assert_eq!(data_versions(&admin, partial).len(), 2);

    let out = g.tftrail(&env, loc, &["verify"], None);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = stderr(&out);
    for (key, state) in [
        ("tile/entries/000", "hidden by a delete marker"),
        ("tile/0/000", "hidden by a delete marker"),
        ("tile/entries/001.p/45", "shadowed by a newer version"),
    ] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("error: {key}: {state}")))
            .unwrap_or_else(|| panic!("no line for {key}\n{err}"));
        assert!(
            line.contains("an intact retained version exists (version id"),
            "{line}"
        );
        assert!(line.contains("tftrail recover"), "{line}");
    }
    let json = g.tftrail(&env, loc, &["verify", "--json"], None);
    assert_eq!(code(&json), 1);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ok"], false);

    let dest = env.path("recovered");
    let out = g.tftrail(
        &env,
        loc,
        &["recover", "--to", dest.to_str().unwrap()],
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains("restored tile/entries/000 (hidden by a delete marker)"),
        "{text}"
    );
    assert!(
        text.contains("restored tile/entries/001.p/45 (shadowed by a newer version)"),
        "{text}"
    );
    assert!(
        text.contains("OK: recovered log test.example/locked"),
        "{text}"
    );
    let dest = dest.to_str().unwrap();
    let v = g.ok(&env, dest, &["verify"], None);
    assert!(v.contains("verified: 301 records"), "{v}");
    let recs = g.log_json(&env, dest);
    assert_eq!(recs.len(), 301);
    let mut ns: Vec<u64> = recs
        .iter()
        .map(|r| r["record"]["payload"]["n"].as_u64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, (0..301).collect::<Vec<_>>());
    // The source was only read: still damaged.
    assert_eq!(code(&g.tftrail(&env, loc, &["verify"], None)), 1);
}

#[test]
fn concurrent_writer_processes() {
    let g = moto();
    g.with(|m| m.create_audit_bucket("concurrent", 1));
    let env = Env::new();
    let loc = "s3://concurrent/log";
    g.ok(
        &env,
        loc,
        &["init", "--origin", "test.example/concurrent"],
        None,
    );
    g.concurrent_appends(&env, loc, 8, 50);
}

/// A writer killed (SIGKILL) at any moment of a batch append on S3 leaves nothing that blocks
/// the next writer: its batch is all in or all out, nothing acknowledged is lost, and the log
/// verifies.
#[test]
fn killed_writer_does_not_block_others() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    const BATCH: u64 = 400;
    let g = moto();
    g.with(|m| m.create_audit_bucket("killed", 1));
    let env = Env::new();
    let loc = "s3://killed/log";
    g.ok(
        &env,
        loc,
        &["init", "--origin", "test.example/killed"],
        None,
    );
    let lines = |it: u64| -> Vec<u8> {
        (0..BATCH)
            .map(|n| format!("{{\"it\":{it},\"n\":{n}}}\n"))
            .collect::<String>()
            .into_bytes()
    };
    // How long an uninterrupted batch takes, to spread the kills over it.
    let t = Instant::now();
    g.ok(&env, loc, &["append", "--batch"], Some(&lines(0)));
    let runtime = t.elapsed();
    let mut acked = vec![0u64];
    let mut seed = u64::from(std::process::id()) | 1;
    for it in 1..=6u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % (runtime.as_micros() as u64 + 1));
        let mut c = env.command(&["append", "--batch", "--json"]);
        c.env("TFTRAIL_STORE", loc)
            .envs(g.env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&lines(it)).unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        if code(&out) == 0 && !out.stdout.is_empty() {
            acked.push(it);
        }
        // The next writer is not blocked by what the killed one left.
        let after = format!("{{\"after\":{it}}}");
        g.ok(&env, loc, &["append"], Some(after.as_bytes()));
    }
    let v = g.ok(&env, loc, &["verify"], None);
    assert!(v.starts_with("OK:"), "{v}");
    let mut per_batch = std::collections::BTreeMap::<u64, u64>::new();
    let mut afters = 0;
    for r in g.log_json(&env, loc) {
        let p = &r["record"]["payload"];
        match p["it"].as_u64() {
            Some(it) => *per_batch.entry(it).or_default() += 1,
            None => afters += 1,
        }
    }
    assert_eq!(afters, 6);
    for (it, n) in &per_batch {
        assert_eq!(*n, BATCH, "batch {it} is partly in the log");
    }
    for it in &acked {
        assert!(per_batch.contains_key(it), "acknowledged batch {it} lost");
    }
    eprintln!(
        "batch takes {runtime:?}; acknowledged {acked:?}; in the log {:?}",
        per_batch.keys().collect::<Vec<_>>()
    );
}

fn check(g: &MotoGuard, env: &Env, loc: &str, min_days: &str) -> (i32, String) {
    let out = g.tftrail(
        env,
        loc,
        &["storage", "check", loc, "--min-retention-days", min_days],
        None,
    );
    (code(&out), stdout(&out) + &stderr(&out))
}

fn failing_line<'a>(text: &'a str, property: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(property) && l.contains("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line for {property}\n{text}"))
}

#[test]
fn storage_check_names_what_is_wrong() {
    let g = moto();
    let env = Env::new();
    let versioning_on =
        "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    g.with(|m| {
        m.create_audit_bucket("good", 400);
        // No Object Lock (versioning on, public access blocked).
        m.create_bucket("nolock", false);
        m.put_bucket_config("nolock", "versioning", versioning_on);
        m.put_bucket_config("nolock", "publicAccessBlock", PUBLIC_ACCESS_BLOCK_ALL);
        // GOVERNANCE mode.
        m.create_audit_bucket("governance", 400);
        m.put_bucket_config("governance", "object-lock", &object_lock_xml("GOVERNANCE", 400));
        // Retention too short.
        m.create_audit_bucket("short", 30);
        // Versioning never enabled.
        m.create_bucket("noversioning", false);
        // A public write policy.
        m.create_bucket("public", true);
        m.put_bucket_config("public", "versioning", versioning_on);
        m.put_bucket_config("public", "object-lock", &object_lock_xml("COMPLIANCE", 400));
        m.put_bucket_config(
            "public",
            "policy",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"Drop","Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::public/*"}]}"#,
        );
    });
    let (c, t) = check(&g, &env, "s3://good/log", "365");
    assert_eq!(c, 0, "{t}");
    assert!(!t.contains("FAIL"), "{t}");

    let (c, t) = check(&g, &env, "s3://nolock/log", "365");
    assert_eq!(c, 1, "{t}");
    failing_line(&t, "object-lock");

    let (c, t) = check(&g, &env, "s3://governance/log", "365");
    assert_eq!(c, 1, "{t}");
    assert!(t.contains("GOVERNANCE"), "{t}");

    let (c, t) = check(&g, &env, "s3://short/log", "365");
    assert_eq!(c, 1, "{t}");
    assert!(
        failing_line(&t, "default-retention").contains("shorter"),
        "{t}"
    );
    assert_eq!(check(&g, &env, "s3://short/log", "30").0, 0);

    let (c, t) = check(&g, &env, "s3://noversioning/log", "365");
    assert_eq!(c, 1, "{t}");
    failing_line(&t, "versioning");

    let (c, t) = check(&g, &env, "s3://public/log", "365");
    assert_eq!(c, 1, "{t}");
    assert!(failing_line(&t, "bucket-policy").contains("Drop"), "{t}");

    // JSON, and a local directory, which is never write-once.
    let out = g.tftrail(
        &env,
        "s3://short/log",
        &["storage", "check", "--json"],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["passed"], false);
    let dir = env.path("plain");
    let (c, t) = check(&g, &env, dir.to_str().unwrap(), "1");
    assert_eq!(c, 1, "{t}");
    assert!(t.contains("not write-once storage"), "{t}");
}

#[test]
fn bootstrap_prints_terraform() {
    let env = Env::new();
    for (cloud, needle) in [
        ("aws", "aws_s3_bucket_object_lock_configuration"),
        ("gcp", "google_storage_bucket"),
        ("azure", "azurerm_storage_container"),
    ] {
        let out = env.ok(&["bootstrap", cloud], None);
        assert!(out.contains(needle), "{cloud}: {out}");
    }
    assert_eq!(code(&env.tftrail(&["bootstrap", "oracle"], None)), 2);
}

#[test]
fn terraform_run_on_s3() {
    let g = moto();
    g.with(|m| m.create_audit_bucket("tfrun", 1));
    let env = Env::new();
    let loc = "s3://tfrun/log";
    g.ok(&env, loc, &["init", "--origin", "test.example/tf"], None);
    g.terraform_runs(
        &env,
        loc,
        &[
            &["init", "-input=false"],
            &["plan", "-input=false", "-out", "p1"],
            &["apply", "-input=false", "p1"],
        ],
    );
    let kinds: Vec<String> = g
        .log_json(&env, loc)
        .iter()
        .map(|r| r["record"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "terraform.apply.outcome"),
        "{kinds:?}"
    );
}
