//! The server collects cosignatures: two real `tftrail witness serve` processes and a real
//! `tftrail serve --witness-policy` on loopback. Checkpoints get cosigned (checked by an
//! implementation of C2SP tlog-cosignature written here from the spec, not the one under
//! test); `verify`, `verify-receipt` and `monitor` require the quorum; a witness down stops no
//! append but the quorum, and catches up when it is back.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use common::server::Server;
use common::witness::Witness;
use common::{assert_fails, code, describe, stdout, Env};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A C2SP tlog-cosignature (cosignature/v1) check written from the spec: the key ID is the
/// first 4 bytes of SHA-256(name || 0x0A || 0x04 || key); the signature is an 8-byte
/// big-endian timestamp then Ed25519 over "cosignature/v1\ntime <T>\n" + the note text.
/// Returns the timestamp of `vkey`'s valid cosignature on `note`.
fn spec_cosignature(note: &str, vkey: &str) -> Option<u64> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = vkey.splitn(3, '+');
    let (name, id_hex, key) = (parts.next()?, parts.next()?, parts.next()?);
    let raw = b64.decode(key).ok()?;
    assert_eq!(raw[0], 0x04, "a cosignature/v1 verifier key has type 0x04");
    let pk: [u8; 32] = raw[1..].try_into().ok()?;
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, 0x04]);
    h.update(pk);
    let id = h.finalize()[..4].to_vec();
    assert_eq!(hex_of(&id), id_hex, "key ID of {vkey}");
    let (text, sigs) = note.split_once("\n\n")?;
    let text = format!("{text}\n");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).ok()?;
    for line in sigs.lines() {
        let Some((n, sig)) = line
            .strip_prefix("\u{2014} ")
            .and_then(|l| l.split_once(' '))
        else {
            continue;
        };
        let Ok(sig) = b64.decode(sig) else { continue };
        if n != name || sig.len() != 4 + 8 + 64 || sig[..4] != id[..] {
            continue;
        }
        let t = u64::from_be_bytes(sig[4..12].try_into().unwrap());
        let msg = format!("cosignature/v1\ntime {t}\n{text}");
        let s = ed25519_dalek::Signature::from_slice(&sig[12..]).ok()?;
        if vk.verify_strict(msg.as_bytes(), &s).is_ok() {
            return Some(t);
        }
    }
    None
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write(env: &Env, name: &str, text: &str) -> PathBuf {
    let p = env.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `POST /v1/records` of one record; (status, headers, body).
fn append(s: &Server, token: &str, n: u64, proofs: bool) -> (u16, String, Value) {
    let body = json!({"records": [{"kind": "test.event", "payload": {"n": n}}], "proofs": proofs});
    let (st, h, b) = s.exchange(
        "POST",
        "/v1/records",
        &format!("authorization: Bearer {token}\r\n"),
        body.to_string().as_bytes(),
    );
    let v = serde_json::from_str(&b).unwrap_or_else(|_| panic!("not JSON: {b}"));
    (st, h, v)
}

fn log_checkpoint(s: &Server, token: &str) -> (String, String) {
    let (st, h, b) = s.exchange(
        "GET",
        "/log/checkpoint",
        &format!("authorization: Bearer {token}\r\n"),
        b"",
    );
    assert_eq!(st, 200, "{b}");
    (h, b)
}

fn client(env: &Env, s: &Server, token: &str, args: &[&str]) -> std::process::Output {
    common::run(env.client(s, token, args), None)
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            x.as_str()
                .map_or_else(|| x["name"].as_str().unwrap().to_string(), String::from)
        })
        .collect()
}

#[test]
fn two_witnesses_cosign_and_clients_require_the_quorum() {
    let env = Env::new();
    let vkey = env.init();
    let w1 = Witness::new(&env, "w1.example/witness", &vkey);
    let mut w2 = Witness::new(&env, "w2.example/witness", &vkey);
    let (v1, v2) = (w1.vkey.clone(), w2.vkey.clone());
    let policy = write(
        &env,
        "policy.txt",
        &format!(
            "# both witnesses must cosign\nlog {vkey}\nwitness w1 {} {}\nwitness w2 {} {}\ngroup both all w1 w2\nquorum both\n",
            w1.vkey,
            w1.url(),
            w2.vkey,
            w2.url()
        ),
    );
    let policy_arg = policy.to_str().unwrap();
    let writer = env.token("writer", "ci");
    let reader = env.token("reader", "auditor");
    let s = env.serve(&["--witness-policy", policy_arg], &[]);

    // Appends are answered with the cosigned checkpoint.
    let mut last = Value::Null;
    for n in 0..3 {
        let (st, h, v) = append(&s, &writer, n, false);
        assert_eq!(st, 200, "{v}");
        assert!(h.contains("tftrail-witness-quorum: met"), "{h}");
        assert_eq!(v["witnesses"]["quorum"], true, "{v}");
        assert_eq!(v["witnesses"]["missing"], json!([]), "{v}");
        last = v;
    }
    let note = last["checkpoint"].as_str().unwrap();
    assert!(spec_cosignature(note, &w1.vkey).is_some(), "{note}");
    assert!(spec_cosignature(note, &w2.vkey).is_some(), "{note}");

    // /log/checkpoint and /v1/checkpoint carry both cosignatures, verified independently.
    let (h, cp) = log_checkpoint(&s, &reader);
    assert!(h.contains("tftrail-witness-quorum: met"), "{h}");
    assert_eq!(
        cp.matches("\n\u{2014} ").count(),
        3,
        "log + 2 witnesses:\n{cp}"
    );
    let t1 = spec_cosignature(&cp, &w1.vkey).expect("w1 cosigned /log/checkpoint");
    assert!(spec_cosignature(&cp, &w2.vkey).is_some(), "{cp}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(t1 <= now && now - t1 < 600, "timestamp {t1} vs now {now}");
    // The log's signature is still first: an ordinary checkpoint client verifies it.
    assert!(cp
        .split("\n\n")
        .nth(1)
        .unwrap()
        .starts_with(&format!("\u{2014} {} ", vkey.split('+').next().unwrap())));
    let (st, b) = s.request("GET", "/v1/checkpoint", Some(&reader), b"");
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["note"].as_str().unwrap(), cp);
    // The web UI's status page checks them against the server's policy.
    let (st, page) = s.request("GET", "/status", Some(&reader), b"");
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("quorum met"), "{page}");
    assert_eq!(page.matches(">valid<").count(), 2, "{page}");
    assert_eq!(v["witnesses"]["quorum"], true, "{v}");
    assert_eq!(
        names(&v["witnesses"]["cosigned_by"]),
        ["w1.example/witness", "w2.example/witness"]
    );

    // verify over HTTP with the policy, and with the shorthand.
    let out = client(
        &env,
        &s,
        &reader,
        &["verify", "--key", &vkey, "--witness-policy", policy_arg],
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        stdout(&out).contains("witness quorum met"),
        "{}",
        describe(&out)
    );
    let both = [
        "verify",
        "--key",
        &vkey,
        "--witness",
        &v1,
        "--witness",
        &v2,
        "--min-witnesses",
        "2",
    ];
    let out = client(&env, &s, &reader, &both);
    assert_eq!(code(&out), 0, "{}", describe(&out));

    // A receipt made after the quorum carries the cosigned checkpoint.
    let receipt = env.path("r2.tlog-proof");
    let out = client(&env, &s, &reader, &["prove", "2", "--key", &vkey]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    std::fs::write(&receipt, &out.stdout).unwrap();
    let r = receipt.to_str().unwrap();
    env.ok(
        &[
            "verify-receipt",
            r,
            "--key",
            &vkey,
            "--witness-policy",
            policy_arg,
        ],
        None,
    );
    // Without a policy the cosignatures are ignored.
    env.ok(&["verify-receipt", r, "--key", &vkey], None);
    // A policy naming a witness that never cosigned: refused, naming it.
    let stranger = env
        .ok(
            &[
                "witness",
                "init",
                "--origin",
                "w3.example/witness",
                "--dir",
                env.path("w3").to_str().unwrap(),
            ],
            None,
        )
        .trim()
        .to_string();
    let p3 = write(
        &env,
        "policy3.txt",
        &format!(
            "witness w1 {}\nwitness w3 {stranger}\ngroup g all w1 w3\nquorum g\n",
            v1
        ),
    );
    let out = env.tftrail(
        &[
            "verify-receipt",
            r,
            "--key",
            &vkey,
            "--witness-policy",
            p3.to_str().unwrap(),
        ],
        None,
    );
    assert_fails(&out, 1, &["quorum", "w3"]);
    // The proof receipts of an append carry the cosignatures too.
    let (st, _, v) = append(&s, &writer, 10, true);
    assert_eq!(st, 200, "{v}");
    let rec = v["proofs"][0].as_str().unwrap();
    assert!(
        spec_cosignature(rec.split_once("\n\n").unwrap().1, &v2).is_some(),
        "{rec}"
    );

    // One witness down: appends go on, the answer says the quorum is not met.
    w2.kill();
    let (st, h, v) = append(&s, &writer, 20, false);
    assert_eq!(st, 200, "{v}");
    assert!(h.contains("tftrail-witness-quorum: not-met"), "{h}");
    assert_eq!(v["witnesses"]["quorum"], false, "{v}");
    assert_eq!(v["witnesses"]["missing"], json!(["w2"]), "{v}");
    let note = v["checkpoint"].as_str().unwrap();
    assert!(
        spec_cosignature(note, &v1).is_some(),
        "w1 still cosigns:\n{note}"
    );
    assert!(spec_cosignature(note, &v2).is_none(), "{note}");
    let (h, cp) = log_checkpoint(&s, &reader);
    assert!(h.contains("tftrail-witness-quorum: not-met"), "{h}");
    assert!(spec_cosignature(&cp, &v2).is_none());
    let (_, page) = s.request("GET", "/status", Some(&reader), b"");
    assert!(page.contains("quorum not met"), "{page}");
    assert!(page.contains("Missing: w2"), "{page}");
    // verify --min-witnesses 2 fails naming the missing witness; 1 is enough to pass.
    let out = client(&env, &s, &reader, &both);
    assert_fails(&out, 1, &["quorum NOT met", "missing: w2.example/witness"]);
    let one = [
        "verify",
        "--key",
        &vkey,
        "--witness",
        &v1,
        "--witness",
        &v2,
        "--min-witnesses",
        "1",
    ];
    let out = client(&env, &s, &reader, &one);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // The monitor with the policy raises a `witness` alert (exit 4).
    let mcfg = write(&env, "monitor.toml", "");
    let mon = [
        "monitor",
        "--config",
        mcfg.to_str().unwrap(),
        "--once",
        "--key",
        &vkey,
        "--witness-policy",
        policy_arg,
    ];
    let out = client(&env, &s, &reader, &mon);
    assert_eq!(code(&out), 4, "{}", describe(&out));
    let said = stdout(&out);
    assert!(
        said.contains("witness:") && said.contains("missing w2"),
        "{said}"
    );
    // The same from the config file's `witness_policy` (its own state directory).
    let with_key = write(
        &env,
        "monitor-policy.toml",
        &format!("witness_policy = {:?}\n", policy_arg),
    );
    let sd = env.path("monitor-2");
    let out = client(
        &env,
        &s,
        &reader,
        &[
            "monitor",
            "--config",
            with_key.to_str().unwrap(),
            "--once",
            "--key",
            &vkey,
            "--state-dir",
            sd.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 4, "{}", describe(&out));
    assert!(stdout(&out).contains("missing w2"), "{}", describe(&out));

    // The witness is back: it catches up from the size it had (a consistency proof) and the
    // next append is cosigned by both again.
    w2.restart(&env, &vkey);
    let (st, h, v) = append(&s, &writer, 30, false);
    assert_eq!(st, 200, "{v}");
    assert!(h.contains("tftrail-witness-quorum: met"), "{h}\n{v}");
    let (_, cp) = log_checkpoint(&s, &reader);
    assert!(
        spec_cosignature(&cp, &v1).is_some() && spec_cosignature(&cp, &v2).is_some(),
        "{cp}"
    );
    let out = client(&env, &s, &reader, &both);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = client(&env, &s, &reader, &mon);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // /metrics counts each witness's cosignatures and failures.
    let (_, m) = s.request("GET", "/metrics", Some(&reader), b"");
    assert!(
        m.contains("tftrail_witness_cosignatures_total{witness=\"w2\"}"),
        "{m}"
    );
    assert!(
        m.contains("tftrail_witness_failures_total{witness=\"w2\",reason=\"unreachable\"}"),
        "{m}"
    );
    assert!(m.contains("tftrail_witness_seconds_bucket{"), "{m}");
    // The whole log still verifies without witnesses.
    env.ok(&["verify", "--key", &vkey], None);
    drop(w1);
}

#[test]
fn bad_policies_are_refused_with_the_line() {
    let env = Env::new();
    let vkey = env.init();
    let other = Env::new().init_with_origin("test.example/log");
    let w = env
        .ok(
            &[
                "witness",
                "init",
                "--origin",
                "w1.example/w",
                "--dir",
                env.path("w").to_str().unwrap(),
            ],
            None,
        )
        .trim()
        .to_string();
    let _ = env.token("writer", "ci");
    let serve_fails = |p: &Path, needles: &[&str]| {
        let mut c = env.command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            env.tokens_file().to_str().unwrap(),
            "--witness-policy",
            p.to_str().unwrap(),
        ]);
        c.stdin(Stdio::null());
        let out = common::run(c, None);
        assert_fails(&out, 2, needles);
    };
    // An unknown group member, on line 3.
    let bad = write(
        &env,
        "bad.txt",
        &format!("witness w1 {w} http://127.0.0.1:1\n\ngroup g all w1 w9\nquorum g\n"),
    );
    serve_fails(&bad, &["bad.txt", "line 3"]);
    let out = env.tftrail(&["verify", "--witness-policy", bad.to_str().unwrap()], None);
    assert_fails(&out, 2, &["line 3"]);
    // A malformed witness key, on line 1.
    let garbled = write(&env, "garbled.txt", "witness w1 not-a-key\nquorum w1\n");
    serve_fails(&garbled, &["line 1"]);
    // A policy for another log (same origin, another key).
    let foreign = write(
        &env,
        "foreign.txt",
        &format!("log {other}\nwitness w1 {w} http://127.0.0.1:1\nquorum w1\n"),
    );
    serve_fails(&foreign, &["lists log keys, but not this log's key"]);
    let out = env.tftrail(
        &["verify", "--witness-policy", foreign.to_str().unwrap()],
        None,
    );
    assert_fails(&out, 2, &["another log"]);
    // --min-witnesses beyond the keys given.
    let out = env.tftrail(&["verify", "--witness", &w, "--min-witnesses", "2"], None);
    assert_fails(&out, 2, &["--min-witnesses 2"]);
    // A log signature is not a witness key.
    let out = env.tftrail(&["verify", "--witness", &vkey], None);
    assert_eq!(code(&out), 2, "{}", describe(&out));
}

#[test]
fn a_cosignature_by_another_key_than_the_policys_is_not_used() {
    let env = Env::new();
    let vkey = env.init();
    let w1 = Witness::new(&env, "w1.example/witness", &vkey);
    let w2 = Witness::new(&env, "w2.example/witness", &vkey);
    // The policy expects another key at w2's URL (same name): what w2 returns must not count,
    // nor be attached to the checkpoint.
    let impostor = env
        .ok(
            &[
                "witness",
                "init",
                "--origin",
                "w2.example/witness",
                "--dir",
                env.path("impostor").to_str().unwrap(),
            ],
            None,
        )
        .trim()
        .to_string();
    assert_ne!(impostor, w2.vkey);
    let policy = write(
        &env,
        "policy.txt",
        &format!(
            "witness w1 {} {}\nwitness w2 {impostor} {}\ngroup both all w1 w2\nquorum both\n",
            w1.vkey,
            w1.url(),
            w2.url()
        ),
    );
    let writer = env.token("writer", "ci");
    let s = env.serve(&["--witness-policy", policy.to_str().unwrap()], &[]);
    let (st, h, v) = append(&s, &writer, 1, false);
    assert_eq!(st, 200, "{v}");
    assert!(h.contains("tftrail-witness-quorum: not-met"), "{h}");
    assert_eq!(v["witnesses"]["missing"], json!(["w2"]), "{v}");
    let (_, cp) = log_checkpoint(&s, &writer);
    assert!(spec_cosignature(&cp, &w1.vkey).is_some(), "{cp}");
    assert!(
        spec_cosignature(&cp, &w2.vkey).is_none(),
        "an unverified line was attached:\n{cp}"
    );
    assert_eq!(cp.matches("\n\u{2014} ").count(), 2, "{cp}");
    let (_, m) = s.request("GET", "/metrics", Some(&writer), b"");
    assert!(
        m.contains("tftrail_witness_failures_total{witness=\"w2\",reason=\"bad-cosignature\"}"),
        "{m}"
    );
}

#[test]
fn concurrent_writers_with_witnesses_all_land_and_the_last_checkpoint_is_cosigned() {
    let env = Env::new();
    let vkey = env.init();
    let w1 = Witness::new(&env, "w1.example/witness", &vkey);
    let w2 = Witness::new(&env, "w2.example/witness", &vkey);
    let policy = write(
        &env,
        "policy.txt",
        &format!(
            "log {vkey}\nwitness w1 {} {}\nwitness w2 {} {}\ngroup both all w1 w2\nquorum both\n",
            w1.vkey,
            w1.url(),
            w2.vkey,
            w2.url()
        ),
    );
    let writer = env.token("writer", "ci");
    let s = env.serve(&["--witness-policy", policy.to_str().unwrap()], &[]);
    // 8 writers × 10 appends: group commits and submission rounds coalesce; every answer
    // covers its record and carries the quorum (each waits for a cosigned checkpoint).
    let firsts: Vec<u64> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8u64)
            .map(|t| {
                let (s, writer) = (&s, &writer);
                sc.spawn(move || {
                    (0..10u64)
                        .map(|i| {
                            let (st, h, v) = append(s, writer, t * 100 + i, false);
                            assert_eq!(st, 200, "{v}");
                            assert!(h.contains("tftrail-witness-quorum: met"), "{h}\n{v}");
                            let first = v["first"].as_u64().unwrap();
                            assert!(v["size"].as_u64().unwrap() > first, "{v}");
                            first
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = firsts.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 80, "every record has its own index");
    let (_, cp) = log_checkpoint(&s, &writer);
    assert!(
        spec_cosignature(&cp, &w1.vkey).is_some() && spec_cosignature(&cp, &w2.vkey).is_some(),
        "{cp}"
    );
    // The log verifies, with the quorum, from the store itself.
    let out = env.tftrail(
        &[
            "verify",
            "--key",
            &vkey,
            "--witness-policy",
            policy.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

#[test]
fn a_witness_that_never_answers_delays_appends_by_the_wait_only() {
    let env = Env::new();
    let vkey = env.init();
    let w1 = Witness::new(&env, "w1.example/witness", &vkey);
    // A peer that accepts connections and never answers (a hung witness).
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_addr = hung.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in hung.incoming().take(4) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let w2 = env
        .ok(
            &[
                "witness",
                "init",
                "--origin",
                "w2.example/witness",
                "--dir",
                env.path("w2").to_str().unwrap(),
            ],
            None,
        )
        .trim()
        .to_string();
    let policy = write(
        &env,
        "policy.txt",
        &format!(
            "witness w1 {} {}\nwitness w2 {w2} http://{hung_addr}\ngroup both all w1 w2\nquorum both\n",
            w1.vkey,
            w1.url()
        ),
    );
    let config = write(
        &env,
        "server.toml",
        "[limits]\nquorum_wait_millis = 300\nwitness_timeout_millis = 1000\n",
    );
    let writer = env.token("writer", "ci");
    let s = env.serve(
        &[
            "--config",
            config.to_str().unwrap(),
            "--witness-policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    for n in 0..3 {
        let (st, h, v) = append(&s, &writer, n, false);
        assert_eq!(st, 200, "{v}");
        assert!(h.contains("tftrail-witness-quorum: not-met"), "{h}");
        assert_eq!(v["witnesses"]["missing"], json!(["w2"]), "{v}");
        // w1 is not held back by w2: its cosignature is in the answer.
        let note = v["checkpoint"].as_str().unwrap();
        assert!(spec_cosignature(note, &w1.vkey).is_some(), "{note}");
    }
    // The hung witness's requests end in its timeout, counted per witness.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, m) = s.request("GET", "/metrics", Some(&writer), b"");
        if m.contains("tftrail_witness_failures_total{witness=\"w2\",reason=\"timeout\"}") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Without the quorum, the cosignatures gathered are attached to the stored checkpoint
    // once every witness has answered or timed out for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, cp) = log_checkpoint(&s, &writer);
        if spec_cosignature(&cp, &w1.vkey).is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{cp}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(s);
    drop(held);
}
