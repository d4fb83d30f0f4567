//! Evidence bundles: `tftrail evidence` writes one tar file that `tftrail evidence verify`
//! checks offline with nothing but the verifier key; any alteration, a record left out of
//! its range, another key or a damaged file is refused (exit 1) naming the problem. Real
//! logs, real Terraform runs, a real team server.

mod common;

use std::path::{Path, PathBuf};

use common::witness::Witness;
use common::{assert_fails, code, describe, stdout, Env};

/// The files of a bundle, in order.
fn read_bundle(p: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let data = std::fs::read(p).unwrap();
    let mut ar = tar::Archive::new(&data[..]);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_str().unwrap().to_string();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            (name, b)
        })
        .collect()
}

fn write_bundle(p: &Path, files: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    std::fs::write(p, b.into_inner().unwrap()).unwrap();
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files.iter().find(|(n, _)| n == name).unwrap().1
}

fn manifest(files: &[(String, Vec<u8>)]) -> serde_json::Value {
    serde_json::from_slice(file(files, "manifest.json")).unwrap()
}

/// A copy of the bundle with `edit` applied to its files.
fn tampered(
    env: &Env,
    bundle: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
) -> PathBuf {
    let mut files = read_bundle(bundle);
    edit(&mut files);
    let p = env.path(name);
    write_bundle(&p, &files);
    p
}

fn set_manifest(files: &mut [(String, Vec<u8>)], m: &serde_json::Value) {
    let f = files
        .iter_mut()
        .find(|(n, _)| n == "manifest.json")
        .unwrap();
    f.1 = serde_json::to_vec_pretty(m).unwrap();
}

fn remove(files: &mut Vec<(String, Vec<u8>)>, names: &[String]) {
    files.retain(|(n, _)| !names.contains(n));
}

fn verify(env: &Env, bundle: &Path, vkey: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "evidence",
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        vkey,
    ];
    args.extend_from_slice(extra);
    env.tftrail(&args, None)
}

/// Every record's time, by index.
fn times(env: &Env) -> Vec<String> {
    let out = env.ok(&["log", "--json", "--limit", "0"], None);
    let mut v: Vec<(u64, String)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["index"].as_u64().unwrap(),
                v["record"]["time"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, t)| t).collect()
}

/// A log of 12 records appended one by one (each its own time); a bundle for the window of
/// records 4..7 (since the time of 4, until the time of 8).
fn setup() -> (Env, String, PathBuf) {
    let env = Env::new();
    let vkey = env.init();
    for i in 0..12 {
        env.append(&format!("{{\"n\":{i},\"change\":\"CHG-{i}\"}}"));
        // Distinct millisecond times.
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    let t = times(&env);
    assert_eq!(t.len(), 12);
    let bundle = env.path("q3.tar");
    let out = env.tftrail(
        &[
            "evidence",
            "--since",
            &t[4],
            "--until",
            &t[8],
            "--out",
            bundle.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    (env, vkey, bundle)
}

#[test]
fn a_time_range_bundle_verifies_and_says_what_it_proves() {
    let (env, vkey, bundle) = setup();
    let out = verify(&env, &bundle, &vkey, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains("4 selected record(s), entries 3..8 of log test.example/log"),
        "{text}"
    );
    assert!(
        text.contains("the 4 selected records (4..7) are entries of that tree"),
        "{text}"
    );
    assert!(
        text.contains("entries 3..8 are all in the bundle"),
        "{text}"
    );
    assert!(text.contains("the tree of size 3 (root "), "{text}");
    assert!(text.contains("does not prove:"), "{text}");
    assert!(
        text.contains("records appended after tree size 12"),
        "{text}"
    );
    assert!(text.contains("signing key was not stolen"), "{text}");

    // The files: the range's entries (one before and one after the window), their proofs.
    let files = read_bundle(&bundle);
    assert_eq!(files[0].0, "manifest.json", "the manifest comes first");
    let m = manifest(&files);
    let idx: Vec<u64> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, (3..=8).collect::<Vec<_>>());
    let selected: Vec<u64> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["selected"] == true)
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(selected, vec![4, 5, 6, 7]);
    // Each entry is the log's bytes: the receipt `tftrail prove` gives has the same proof
    // shape, and the entry hashes to the leaf the log holds.
    let entry5 = file(&files, "entries/5").to_vec();
    assert!(String::from_utf8_lossy(&entry5).contains("CHG-5"));
    let receipt = file(&files, "proofs/5.tlog-proof").to_vec();
    let rp = env.path("r5");
    let ep = env.path("e5");
    std::fs::write(&rp, &receipt).unwrap();
    std::fs::write(&ep, &entry5).unwrap();
    // Each proof is a C2SP tlog-proof that `verify-receipt` accepts on its own.
    env.ok(
        &[
            "verify-receipt",
            rp.to_str().unwrap(),
            "--key",
            &vkey,
            "--entry",
            ep.to_str().unwrap(),
        ],
        None,
    );
    // The report names the records.
    let html = String::from_utf8(file(&files, "report.html").to_vec()).unwrap();
    assert!(html.contains("CHG-6") && !html.contains("CHG-9"), "{html}");
    assert!(html.contains("tester@"), "the actor is named");
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));

    // JSON.
    let out = verify(&env, &bundle, &vkey, &["--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["selected"], serde_json::json!([4, 5, 6, 7]));
    assert_eq!(j["range"], serde_json::json!([3, 9]));
    assert!(j["proves"].as_array().unwrap().len() >= 4);
    assert!(!j["does_not_prove"].as_array().unwrap().is_empty());

    // The log grows: the bundle still verifies (it is proven against its own checkpoint).
    env.append("{\"later\":true}");
    assert_eq!(code(&verify(&env, &bundle, &vkey, &[])), 0);
    // The same window later: the same records, from a newer checkpoint.
    let t = times(&env);
    let b2 = env.path("again.tar");
    env.ok(
        &[
            "evidence",
            "--since",
            &t[4],
            "--until",
            &t[8],
            "--out",
            b2.to_str().unwrap(),
        ],
        None,
    );
    let m2 = manifest(&read_bundle(&b2));
    assert_eq!(m2["checkpoint"]["size"], 13);
    assert_eq!(m2["entries"], m["entries"]);
}

#[test]
fn stdout_a_kind_filter_and_an_empty_window() {
    let (env, vkey, _) = setup();
    env.ok(
        &["append", "--kind", "change.approval"],
        Some(b"{\"ticket\":\"<script>alert('CHG-A')</script>\"}"),
    );
    let t = times(&env);
    // To stdout (a pipe here), with --kind.
    let out = env.tftrail(
        &["evidence", "--since", &t[2], "--kind", "change.approval"],
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let p = env.path("kind.tar");
    std::fs::write(&p, &out.stdout).unwrap();
    let out = verify(&env, &p, &vkey, &["--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["selected"], serde_json::json!([12]));
    assert_eq!(
        j["range"],
        serde_json::json!([1, 13]),
        "every entry of the window's range"
    );
    // What a writer chose is escaped in the report.
    let html = String::from_utf8(file(&read_bundle(&p), "report.html").to_vec()).unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;CHG-A&#39;)"),
        "{html}"
    );
    // A window with no record: the bundle proves that (the bounding entries are there).
    let out = env.tftrail(
        &["evidence", "--since", "2001-01-01", "--until", "2001-02-01"],
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    std::fs::write(&p, &out.stdout).unwrap();
    let out = verify(&env, &p, &vkey, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        stdout(&out).contains("0 selected record(s)"),
        "{}",
        stdout(&out)
    );
    // Bad options.
    assert_fails(
        &env.tftrail(
            &["evidence", "--since", "2026-02-01", "--until", "2026-01-01"],
            None,
        ),
        2,
        &["is not before"],
    );
    assert_fails(
        &env.tftrail(&["evidence", "--since", "yesterday"], None),
        2,
        &["invalid time"],
    );
}

#[test]
fn altered_removed_or_left_out_records_are_refused() {
    let (env, vkey, bundle) = setup();
    let m = manifest(&read_bundle(&bundle));

    // A record byte changed (CHG-5 -> CHG-9).
    let p = tampered(&env, &bundle, "t1.tar", |f| {
        let e = f.iter_mut().find(|(n, _)| n == "entries/5").unwrap();
        let s = String::from_utf8(e.1.clone())
            .unwrap()
            .replace("CHG-5", "CHG-9");
        e.1 = s.into_bytes();
    });
    let err = assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["entries/5", "leaf hash"],
    );
    assert!(err.contains("does not verify"), "{err}");

    // The same change with the manifest's leaf hash updated: the inclusion proof fails.
    let p = tampered(&env, &bundle, "t2.tar", |f| {
        let e = f.iter_mut().find(|(n, _)| n == "entries/5").unwrap();
        let s = String::from_utf8(e.1.clone())
            .unwrap()
            .replace("CHG-5", "CHG-9");
        e.1 = s.into_bytes();
        let leaf = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update([0u8]);
            h.update(&e.1);
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h.finalize())
        };
        let mut m = m.clone();
        m["entries"][2]["leaf_hash"] = leaf.into();
        set_manifest(f, &m);
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["entry 5 is not in the log's tree of size 12"],
    );

    // A record removed from the bundle (its files), the manifest untouched.
    let p = tampered(&env, &bundle, "t3.tar", |f| {
        remove(f, &["entries/6".into(), "proofs/6.tlog-proof".into()]);
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["entries/6 is listed in manifest.json but missing from the bundle"],
    );

    // A record dropped from the manifest too: the range has a gap.
    let p = tampered(&env, &bundle, "t4.tar", |f| {
        remove(f, &["entries/6".into(), "proofs/6.tlog-proof".into()]);
        let mut m = m.clone();
        m["entries"].as_array_mut().unwrap().remove(3);
        set_manifest(f, &m);
    });
    assert_fails(&verify(&env, &p, &vkey, &[]), 1, &["the range has a gap"]);

    // The last records of the window and the bounding entry dropped (range cut short).
    let p = tampered(&env, &bundle, "t5.tar", |f| {
        remove(
            f,
            &[
                "entries/7".into(),
                "proofs/7.tlog-proof".into(),
                "entries/8".into(),
                "proofs/8.tlog-proof".into(),
            ],
        );
        let mut m = m.clone();
        m["entries"].as_array_mut().unwrap().truncate(4);
        set_manifest(f, &m);
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["entry 6, the last of the bundle, has a time in the window: records after it may have been left out"],
    );

    // The first records cut (range starts inside the window).
    let p = tampered(&env, &bundle, "t6.tar", |f| {
        remove(f, &["entries/3".into(), "proofs/3.tlog-proof".into()]);
        let mut m = m.clone();
        m["entries"].as_array_mut().unwrap().remove(0);
        m["start"]["size"] = 4.into();
        set_manifest(f, &m);
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["entry 4, the first of the bundle, has a time in the window"],
    );

    // A record kept but marked not selected (hidden from the report).
    let p = tampered(&env, &bundle, "t7.tar", |f| {
        let mut m = m.clone();
        m["entries"][2]["selected"] = false.into();
        set_manifest(f, &m);
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["record 5 matches the selection but manifest.json does not mark it selected"],
    );

    // The window edited in the manifest so that a record falls out of it.
    let p = tampered(&env, &bundle, "t8.tar", |f| {
        let mut m = m.clone();
        m["selection"]["until"] = m["entries"][4]["time"].clone();
        set_manifest(f, &m);
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["marks record 7 selected but it does not match"],
    );

    // An extra file, and an edited report.
    let p = tampered(&env, &bundle, "t9.tar", |f| {
        f.push(("notes.txt".into(), b"trust me".to_vec()));
        let r = f.iter_mut().find(|(n, _)| n == "report.html").unwrap();
        r.1 = String::from_utf8(r.1.clone())
            .unwrap()
            .replace("CHG-6", "CHG-0")
            .into_bytes();
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &[
            "notes.txt is in the bundle but not in manifest.json",
            "report.html is not what the bundle's records render to",
        ],
    );

    // A proof swapped for another entry's.
    let p = tampered(&env, &bundle, "t10.tar", |f| {
        let other = file(f, "proofs/4.tlog-proof").to_vec();
        f.iter_mut()
            .find(|(n, _)| n == "proofs/5.tlog-proof")
            .unwrap()
            .1 = other;
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["proofs/5.tlog-proof proves index 4"],
    );

    // The consistency proof altered.
    let p = tampered(&env, &bundle, "t11.tar", |f| {
        let mut m = m.clone();
        m["start"]["root"] = m["checkpoint"]["root"].clone();
        set_manifest(f, &m);
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["the tree of size 3 is not a prefix of the checkpoint's tree"],
    );
}

#[test]
fn another_key_a_damaged_file_and_bad_usage_are_refused() {
    let (env, vkey, bundle) = setup();
    // Another log's key (same origin).
    let other = Env::new();
    let other_key = other.init();
    assert_fails(
        &verify(&env, &bundle, &other_key, &[]),
        1,
        &["checkpoint", "is not signed by the trusted key"],
    );
    // The checkpoint swapped for one signed by another key.
    let forged = other.checkpoint_bytes();
    let p = tampered(&env, &bundle, "forged.tar", |f| {
        f.iter_mut().find(|(n, _)| n == "checkpoint").unwrap().1 = forged;
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["not signed by the trusted key"],
    );
    let data = std::fs::read(&bundle).unwrap();
    // Truncated: cut in the middle, and at a 512-byte block boundary.
    for cut in [data.len() / 2 + 7, (data.len() / 2) & !511] {
        let p = env.path(&format!("cut{cut}.tar"));
        std::fs::write(&p, &data[..cut]).unwrap();
        let out = verify(&env, &p, &vkey, &[]);
        assert_eq!(code(&out), 1, "{}", describe(&out));
        assert!(
            common::stderr(&out).contains("error: "),
            "{}",
            describe(&out)
        );
    }
    let p = env.path("cut.tar");
    std::fs::write(&p, &data[..data.len() / 2 + 7]).unwrap();
    assert_fails(&verify(&env, &p, &vkey, &[]), 1, &["truncated"]);
    // Not a tar at all.
    std::fs::write(&p, b"hello, auditor").unwrap();
    assert_fails(&verify(&env, &p, &vkey, &[]), 1, &["bundle"]);
    // Missing file: I/O (3); no key: usage (2).
    assert_fails(
        &verify(&env, &env.path("nope.tar"), &vkey, &[]),
        3,
        &["cannot read"],
    );
    assert_fails(
        &env.tftrail(&["evidence", "verify", bundle.to_str().unwrap()], None),
        2,
        &["needs the log's verifier key"],
    );
    assert_fails(
        &env.tftrail(
            &[
                "evidence",
                "verify",
                bundle.to_str().unwrap(),
                "--key",
                &vkey,
                "--store",
                "x",
            ],
            None,
        ),
        2,
        &["does not take --store"],
    );
}

const SECRET: &str = "evidence-Secret-8d41c2";

fn tf_config(app_name: &str) -> String {
    format!(
        r#"
variable "db_password" {{
  type      = string
  sensitive = true
  default   = "{SECRET}"
}}
resource "terraform_data" "app" {{
  input = {{
    name     = "{app_name}"
    password = var.db_password
  }}
}}
resource "terraform_data" "other" {{
  input = "unchanged"
}}
"#
    )
}

#[test]
fn a_resource_bundle_from_real_terraform_runs_names_who_what_and_keeps_secrets_out() {
    let env = Env::new();
    let vkey = env.init();
    let dir = env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), tf_config("app-v1")).unwrap();
    for s in [
        &["init", "-input=false"][..],
        &["plan", "-input=false", "-out", "tf.plan"],
        &["apply", "-input=false", "tf.plan"],
    ] {
        let (out, _) = env.tf_run(&dir, s, &[]);
        assert_eq!(code(&out), 0, "{s:?}\n{}", describe(&out));
    }
    std::fs::write(dir.join("main.tf"), tf_config("app-v2")).unwrap();
    for s in [
        &["plan", "-input=false", "-out", "tf.plan"][..],
        &["apply", "-input=false", "tf.plan"],
        &["apply", "-input=false", "-auto-approve"],
    ] {
        let (out, _) = env.tf_run(&dir, s, &[]);
        assert_eq!(code(&out), 0, "{s:?}\n{}", describe(&out));
    }
    let before = times(&env).len();
    env.append("{\"unrelated\":true}");

    let bundle = env.path("app.tar");
    env.ok(
        &[
            "evidence",
            "--since",
            "2020-01-01",
            "--resource",
            "terraform_data.app",
            "--out",
            bundle.to_str().unwrap(),
        ],
        None,
    );
    let out = verify(&env, &bundle, &vkey, &["--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let selected: Vec<u64> = serde_json::from_value(j["selected"].clone()).unwrap();
    assert!(selected.len() >= 3, "plan, apply outcomes: {selected:?}");
    assert!(
        !selected.contains(&(before as u64)),
        "the unrelated record is not selected"
    );
    assert!(
        j["blobs"].as_u64().unwrap() > 0,
        "output and plan blobs travel with the records"
    );

    let files = read_bundle(&bundle);
    let html = String::from_utf8(file(&files, "report.html").to_vec()).unwrap();
    assert!(html.contains("terraform_data.app"), "resource named");
    assert!(html.contains("tester@"), "actor named");
    assert!(
        html.contains("terraform_data.app.input.name: &quot;app-v1&quot; → &quot;app-v2&quot;"),
        "values shown: {html}"
    );
    assert!(
        html.contains("(sensitive value)"),
        "sensitive values shown as redacted"
    );
    assert!(html.contains("terraform.apply.outcome"));
    // The secret appears nowhere in the bundle, in any form.
    let raw = std::fs::read(&bundle).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    for form in [SECRET.to_string(), base64::Engine::encode(&b64, SECRET)] {
        assert!(
            !raw.windows(form.len()).any(|w| w == form.as_bytes()),
            "{form} found in the bundle"
        );
    }
    // A record that names another resource only is not selected: the bundle for
    // terraform_data.nothing selects none and still verifies.
    let none = env.path("none.tar");
    env.ok(
        &[
            "evidence",
            "--resource",
            "terraform_data.nothing",
            "--out",
            none.to_str().unwrap(),
        ],
        None,
    );
    let out = verify(&env, &none, &vkey, &["--json"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ok"], true, "{}", describe(&out));
    assert_eq!(j["selected"], serde_json::json!([]));

    // A tampered blob is refused, and a blob removed with its manifest line too.
    let m = manifest(&files);
    let blob = m["blobs"][0]["sha256"].as_str().unwrap().to_string();
    let name = format!("blobs/sha256/{blob}");
    let p = tampered(&env, &bundle, "tb.tar", |f| {
        let b = f.iter_mut().find(|(n, _)| *n == name).unwrap();
        b.1[0] ^= 1;
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &[&format!("{name} does not match its SHA-256")],
    );
    let p = tampered(&env, &bundle, "tb2.tar", |f| {
        remove(f, std::slice::from_ref(&name));
        let mut m = m.clone();
        m["blobs"].as_array_mut().unwrap().remove(0);
        set_manifest(f, &m);
    });
    assert_fails(
        &verify(&env, &p, &vkey, &[]),
        1,
        &["which the bundle lacks"],
    );
}

#[test]
fn a_bundle_through_a_team_server_verifies() {
    let env = Env::new();
    let vkey = env.init();
    let writer = env.token("writer", "ci");
    let reader = env.token("reader", "auditor");
    let server = env.serve(&[], &[]);
    for i in 0..5 {
        let (status, _) = server.append(&writer, serde_json::json!({"n": i}));
        assert_eq!(status, 200);
    }
    let bundle = env.path("srv.tar");
    let out = common::run(
        env.client(
            &server,
            &reader,
            &[
                "evidence",
                "--since",
                "2020-01-01",
                "--out",
                bundle.to_str().unwrap(),
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = verify(&env, &bundle, &vkey, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let html = String::from_utf8(file(&read_bundle(&bundle), "report.html").to_vec()).unwrap();
    assert!(
        html.contains("token:ci"),
        "the authenticated writer is named: {html}"
    );
}

#[test]
fn a_cosigned_bundle_meets_the_quorum_and_unknown_witnesses_are_refused() {
    let env = Env::new();
    let vkey = env.init();
    let w1 = Witness::new(&env, "w1.example/witness", &vkey);
    let w2 = Witness::new(&env, "w2.example/witness", &vkey);
    let policy = env.path("policy.txt");
    std::fs::write(
        &policy,
        format!(
            "log {vkey}\nwitness w1 {} {}\nwitness w2 {} {}\ngroup both all w1 w2\nquorum both\n",
            w1.vkey,
            w1.url(),
            w2.vkey,
            w2.url()
        ),
    )
    .unwrap();
    let writer = env.token("writer", "ci");
    let reader = env.token("reader", "auditor");
    let server = env.serve(&["--witness-policy", policy.to_str().unwrap()], &[]);
    for i in 0..4 {
        let (status, v) = server.append(&writer, serde_json::json!({"n": i}));
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["witnesses"]["quorum"], true, "{v}");
    }
    let bundle = env.path("cosigned.tar");
    let out = common::run(
        env.client(
            &server,
            &reader,
            &[
                "evidence",
                "--since",
                "2020-01-01",
                "--out",
                bundle.to_str().unwrap(),
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let files = read_bundle(&bundle);
    let note = String::from_utf8(file(&files, "checkpoint").to_vec()).unwrap();
    assert_eq!(
        note.matches("\n\u{2014} ").count(),
        3,
        "log + 2 cosignatures:\n{note}"
    );
    let m = manifest(&files);
    let mut lines: Vec<String> =
        serde_json::from_value(m["checkpoint"]["cosignature_lines"].clone()).unwrap();
    lines.sort();
    assert_eq!(lines, ["w1.example/witness", "w2.example/witness"]);

    // The policy, and the shorthand, are met; the output names the witnesses.
    let p = policy.to_str().unwrap();
    let out = verify(&env, &bundle, &vkey, &["--witness-policy", p]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains("it is cosigned by w1.example/witness+")
            && text.contains("w2.example/witness+")
            && text.contains("quorum asked for is met"),
        "{text}"
    );
    assert!(
        !text.contains("that everyone was shown this same tree"),
        "{text}"
    );
    let out = verify(
        &env,
        &bundle,
        &vkey,
        &[
            "--witness",
            &w1.vkey,
            "--witness",
            &w2.vkey,
            "--min-witnesses",
            "2",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["quorum"], true);
    assert_eq!(j["cosigned_by"].as_array().unwrap().len(), 2);
    // Without witness flags the cosignatures are not checked, and it says so.
    let out = verify(&env, &bundle, &vkey, &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(stdout(&out).contains("no witness cosignature was checked"));

    // The auditor trusts another witness, which never cosigned: the cosignatures present are
    // by witnesses unknown to the policy, and the bundle is refused.
    let w3 = Witness::new(&env, "w3.example/witness", &vkey);
    let other = env.path("other-policy.txt");
    std::fs::write(&other, format!("witness w3 {}\nquorum w3\n", w3.vkey)).unwrap();
    assert_fails(
        &verify(
            &env,
            &bundle,
            &vkey,
            &["--witness-policy", other.to_str().unwrap()],
        ),
        1,
        &["witness quorum not met", "missing: w3"],
    );
    assert_fails(
        &verify(&env, &bundle, &vkey, &["--witness", &w3.vkey]),
        1,
        &["witness quorum not met"],
    );
    // A cosignature line forged (its bytes altered) in the checkpoint and in every proof:
    // the log's signature still holds, the quorum does not.
    let forged = {
        let (body, sigs) = note.split_once("\n\n").unwrap();
        let lines: Vec<String> = sigs
            .lines()
            .map(|l| {
                if l.starts_with("\u{2014} w1.example/witness ") {
                    let mut b = l.to_string().into_bytes();
                    let n = b.len();
                    b[n - 5] = if b[n - 5] == b'A' { b'B' } else { b'A' };
                    String::from_utf8(b).unwrap()
                } else {
                    l.to_string()
                }
            })
            .collect();
        format!("{body}\n\n{}\n", lines.join("\n"))
    };
    let p2 = tampered(&env, &bundle, "forged-cosig.tar", |f| {
        for (name, data) in f.iter_mut() {
            if name == "checkpoint" {
                *data = forged.clone().into_bytes();
            } else if name.ends_with(".tlog-proof") || name == "proofs/consistency" {
                let s = String::from_utf8(data.clone())
                    .unwrap()
                    .replace(&note, &forged);
                *data = s.into_bytes();
            }
        }
    });
    assert_fails(
        &verify(&env, &p2, &vkey, &["--witness-policy", p]),
        1,
        &["witness quorum not met", "missing: w1"],
    );
    // A policy for another log is a usage error.
    let other_log = Env::new().init();
    let wrong = env.path("wrong-log.txt");
    std::fs::write(
        &wrong,
        format!("log {other_log}\nwitness w1 {}\nquorum w1\n", w1.vkey),
    )
    .unwrap();
    assert_fails(
        &verify(
            &env,
            &bundle,
            &vkey,
            &["--witness-policy", wrong.to_str().unwrap()],
        ),
        2,
        &["is for another log"],
    );
}
