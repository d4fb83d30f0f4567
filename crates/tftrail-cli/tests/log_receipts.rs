//! Offline receipts: `prove N` writes one that `verify-receipt` accepts with nothing but the
//! verifier key; any alteration is an integrity failure (exit 1) naming the problem.

mod common;

use common::{assert_fails, stdout, Env};
use tftrail_core::record::Record;

fn setup() -> (Env, String) {
    let env = Env::new();
    let vkey = env.init();
    let lines: String = (0..300).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    env.append_batch(&lines);
    (env, vkey)
}

/// Writes `prove N` to a file; returns its path and bytes.
fn prove(env: &Env, n: u64, name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let out = env.tftrail(&["prove", &n.to_string()], None);
    assert_eq!(common::code(&out), 0, "{}", common::describe(&out));
    let p = env.path(name);
    std::fs::write(&p, &out.stdout).unwrap();
    (p, out.stdout)
}

/// The entry bytes of record N, rebuilt from `show --json` (canonical encoding).
fn entry(env: &Env, n: u64) -> Vec<u8> {
    let v: serde_json::Value =
        serde_json::from_str(env.ok(&["show", &n.to_string(), "--json"], None).trim()).unwrap();
    let r: Record = serde_json::from_value(v["record"].clone()).unwrap();
    r.to_entry().unwrap()
}

fn verify_receipt(
    env: &Env,
    file: &std::path::Path,
    vkey: &str,
    entry: Option<&std::path::Path>,
) -> std::process::Output {
    let mut args = vec!["verify-receipt", file.to_str().unwrap(), "--key", vkey];
    if let Some(e) = entry {
        args.extend(["--entry", e.to_str().unwrap()]);
    }
    env.tftrail(&args, None)
}

/// Rewrites one line of a receipt's head (before the empty line).
fn edit_line(receipt: &[u8], f: impl Fn(usize, &str) -> String) -> Vec<u8> {
    let text = String::from_utf8(receipt.to_vec()).unwrap();
    let (head, cp) = text.split_once("\n\n").unwrap();
    let head: Vec<String> = head.split('\n').enumerate().map(|(i, l)| f(i, l)).collect();
    format!("{}\n\n{cp}", head.join("\n")).into_bytes()
}

#[test]
fn receipts_verify_offline() {
    let (env, vkey) = setup();
    for n in [0u64, 1, 137, 255, 256, 299] {
        let (file, _) = prove(&env, n, &format!("r{n}"));
        let out = verify_receipt(&env, &file, &vkey, None);
        assert_eq!(common::code(&out), 0, "{}", common::describe(&out));
        assert!(stdout(&out).contains(&format!("record {n} is in log test.example/log")));
        let e = env.path(&format!("e{n}"));
        std::fs::write(&e, entry(&env, n)).unwrap();
        let out = verify_receipt(&env, &file, &vkey, Some(&e));
        assert_eq!(common::code(&out), 0, "{}", common::describe(&out));
        // The key may also be given as a file.
        let kf = env.path("vkey");
        std::fs::write(&kf, format!("{vkey}\n")).unwrap();
        let out = verify_receipt(&env, &file, kf.to_str().unwrap(), None);
        assert_eq!(common::code(&out), 0, "{}", common::describe(&out));
    }
    // From stdin.
    let (_, bytes) = prove(&env, 5, "r");
    let out = env.tftrail(
        &["verify-receipt", "-", "--key", &vkey, "--json"],
        Some(&bytes),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["index"], 5);
    assert_eq!(v["record"]["payload"]["n"], 5);
}

#[test]
fn tampered_receipts_fail() {
    let (env, vkey) = setup();
    let (_, good) = prove(&env, 137, "good");
    let write = |name: &str, data: &[u8]| {
        let p = env.path(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    // A flipped proof hash (first proof line: the one after the index line).
    let lines: Vec<String> = String::from_utf8(good.clone())
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let index_line = lines.iter().position(|l| l.starts_with("index ")).unwrap();
    let flipped = edit_line(&good, |i, l| {
        if i == index_line + 1 {
            let mut c: Vec<char> = l.chars().collect();
            c[0] = if c[0] == 'A' { 'B' } else { 'A' };
            c.into_iter().collect()
        } else {
            l.to_string()
        }
    });
    let p = write("flipped", &flipped);
    assert_fails(
        &verify_receipt(&env, &p, &vkey, None),
        1,
        &["inclusion proof", "index 137"],
    );
    // A wrong index.
    let moved = edit_line(&good, |_, l| {
        if l == "index 137" {
            "index 138".into()
        } else {
            l.into()
        }
    });
    let p = write("moved", &moved);
    assert_fails(
        &verify_receipt(&env, &p, &vkey, None),
        1,
        &["inclusion proof", "index 138"],
    );
    // A dropped proof hash.
    let short = edit_line(&good, |i, l| {
        if i == index_line + 1 {
            String::new()
        } else {
            l.into()
        }
    });
    let short = String::from_utf8(short)
        .unwrap()
        .replacen("\n\n", "\n", 1)
        .into_bytes();
    let p = write("short", &short);
    let out = verify_receipt(&env, &p, &vkey, None);
    assert!(
        matches!(common::code(&out), 1 | 2),
        "{}",
        common::describe(&out)
    );
    // Another record's entry in the extra line.
    let other = entry(&env, 138);
    use base64::Engine as _;
    let extra = format!(
        "extra {}",
        base64::engine::general_purpose::STANDARD.encode(&other)
    );
    let swapped = edit_line(&good, |_, l| {
        if l.starts_with("extra ") {
            extra.clone()
        } else {
            l.into()
        }
    });
    let p = write("swapped", &swapped);
    assert_fails(
        &verify_receipt(&env, &p, &vkey, None),
        1,
        &["inclusion proof", "index 137"],
    );
    // --entry with a different entry than the one carried.
    let e = write("other-entry", &other);
    let g = write("good", &good);
    assert_fails(
        &verify_receipt(&env, &g, &vkey, Some(&e)),
        1,
        &["does not match the entry"],
    );
    // Another log's key.
    let stranger = Env::new();
    let stranger_vkey = stranger.init();
    assert_fails(
        &verify_receipt(&env, &g, &stranger_vkey, None),
        1,
        &["not signed by the trusted key"],
    );
    // A flipped checkpoint signature.
    let mut bad_sig = good.clone();
    let i = bad_sig.len() - 20;
    bad_sig[i] = if bad_sig[i] == b'A' { b'B' } else { b'A' };
    let p = write("badsig", &bad_sig);
    assert_fails(&verify_receipt(&env, &p, &vkey, None), 1, &["signature"]);
    // Not a receipt at all.
    let p = write("junk", b"hello\n");
    assert_fails(
        &verify_receipt(&env, &p, &vkey, None),
        2,
        &["junk", "malformed receipt"],
    );
    assert_fails(
        &verify_receipt(&env, &env.path("absent"), &vkey, None),
        2,
        &["absent"],
    );
}

#[test]
fn old_receipt_still_verifies_after_more_appends() {
    let (env, vkey) = setup();
    let (file, _) = prove(&env, 42, "old");
    let lines: String = (300..700).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    env.append_batch(&lines);
    env.append("{\"n\":700}");
    let out = verify_receipt(&env, &file, &vkey, None);
    assert_eq!(common::code(&out), 0, "{}", common::describe(&out));
    assert!(stdout(&out).contains("tree size 300"), "{}", stdout(&out));
    // A new receipt for the same record is against the new size.
    let (file2, _) = prove(&env, 42, "new");
    let out = verify_receipt(&env, &file2, &vkey, None);
    assert!(stdout(&out).contains("tree size 701"), "{}", stdout(&out));
    // Out of range.
    let out = env.tftrail(&["prove", "701"], None);
    assert_fails(&out, 2, &["701"]);
}
