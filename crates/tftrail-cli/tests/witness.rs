//! `tftrail witness`: real witness processes on loopback, real logs made by `tftrail init` and
//! `append`, consistency proofs from tftrail-log, and every cosignature checked by an
//! independent implementation written from the spec (tests/data/witness/check_cosignature.py,
//! Python's `cryptography`; TFTRAIL_PYTHON or `python3` on PATH).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Env;
use tftrail_core::checkpoint::VerifierKey;
use tftrail_core::merkle::{hash_b64, Hash};

/// A `tftrail witness serve` process.
struct WitnessProc {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl WitnessProc {
    fn start(env: &Env, dir: &Path, logs: &[&str]) -> WitnessProc {
        let mut args = vec![
            "witness".to_string(),
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        for l in logs {
            args.push("--log".into());
            args.push(l.to_string());
        }
        Self::start_args(env, args)
    }

    fn start_args(env: &Env, args: Vec<String>) -> WitnessProc {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = env
            .command(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn witness");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(String::new()));
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
                let _ = child.kill();
                panic!("witness did not start: {}", log.lock().unwrap());
            }
            log.lock().unwrap().push_str(&line);
            if let Some(a) = line.trim().strip_prefix("listening on http://") {
                break a.to_string();
            }
        };
        // Keep draining stderr (the structured logs) so the process never blocks on it.
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        WitnessProc { child, addr, log }
    }

    fn post(&self, body: &[u8]) -> Resp {
        http(&self.addr, "POST", "/add-checkpoint", body)
    }

    fn stop(mut self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let st = self.child.wait().unwrap();
        assert!(
            st.success(),
            "witness exit {st:?}\n{}",
            self.log.lock().unwrap()
        );
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 client (one request per connection), independent of the server stack.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Resp {
        status,
        content_type,
        body: raw[split + 4..].to_vec(),
    }
}

/// The add-checkpoint body.
fn body(old: u64, proof: &[Hash], checkpoint: &[u8]) -> Vec<u8> {
    let mut b = format!("old {old}\n").into_bytes();
    for h in proof {
        b.extend_from_slice(hash_b64(h).as_bytes());
        b.push(b'\n');
    }
    b.push(b'\n');
    b.extend_from_slice(checkpoint);
    b
}

/// The consistency proof from `old` to the log's current checkpoint, by tftrail-log.
fn proof(env: &Env, old: u64) -> Vec<Hash> {
    let vkey = std::fs::read_to_string(env.path("vkey")).unwrap();
    let key = VerifierKey::parse(&vkey).unwrap();
    let log = tftrail_log::Log::open(
        tftrail_store::open(env.store.to_str().unwrap()).unwrap(),
        key,
    )
    .unwrap();
    let cp = key_open(&vkey, &env.checkpoint_bytes());
    log.consistency(&cp, old).unwrap()
}

fn key_open(vkey: &str, note: &[u8]) -> tftrail_core::checkpoint::Checkpoint {
    VerifierKey::parse(vkey)
        .unwrap()
        .open_checkpoint(note)
        .unwrap()
}

fn new_log(origin: &str, records: u64) -> (Env, String) {
    let env = Env::new();
    let vkey = env.init_with_origin(origin);
    std::fs::write(env.path("vkey"), &vkey).unwrap();
    append_n(&env, records);
    (env, vkey)
}

fn append_n(env: &Env, n: u64) {
    for i in 0..n {
        env.append(&format!("{{\"n\":{i},\"at\":\"{:?}\"}}", Instant::now()));
    }
}

fn python() -> String {
    std::env::var("TFTRAIL_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Checks a witness response with the independent implementation; returns the timestamp.
fn independent_check(
    dir: &Path,
    wvkey: &str,
    checkpoint: &[u8],
    response: &[u8],
) -> Result<u64, String> {
    let cp = dir.join("check-cp");
    let sig = dir.join("check-sig");
    std::fs::write(&cp, checkpoint).unwrap();
    std::fs::write(&sig, response).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/witness/check_cosignature.py");
    let out = Command::new(python())
        .arg(script)
        .arg(wvkey)
        .arg(&cp)
        .arg(&sig)
        .output()
        .expect("run python3 (set TFTRAIL_PYTHON to a python with `cryptography`)");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains("ModuleNotFoundError"),
        "the independent checker needs Python's `cryptography` (TFTRAIL_PYTHON): {err}"
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
    } else {
        Err(err)
    }
}

fn witness_init(env: &Env, dir: &Path, name: &str) -> String {
    let d = dir.display().to_string();
    env.ok(&["witness", "init", "--origin", name, "--dir", &d], None)
        .trim()
        .to_string()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn cosigns_consistent_checkpoints_and_refuses_everything_else() {
    let (env, vkey) = new_log("test.example/log", 3);
    let wdir = env.path("witness");
    let wvkey = witness_init(&env, &wdir, "witness.test/w1");
    assert!(wvkey.starts_with("witness.test/w1+"), "{wvkey}");
    // init refuses to overwrite the key, and leaves it untouched.
    let key_before = std::fs::read(wdir.join("witness.key")).unwrap();
    let d = wdir.display().to_string();
    let out = env.tftrail(
        &["witness", "init", "--origin", "x.test", "--dir", &d],
        None,
    );
    common::assert_fails(&out, 2, &["refusing to overwrite"]);
    assert_eq!(std::fs::read(wdir.join("witness.key")).unwrap(), key_before);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(wdir.join("witness.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // A fork made now: same key and origin, history diverging after record 3.
    let fork = env.clone_log();
    std::fs::write(fork.path("vkey"), &vkey).unwrap();

    let w = WitnessProc::start(&env, &wdir, &[&vkey]);
    assert_eq!(http(&w.addr, "GET", "/healthz", b"").status, 200);

    // First checkpoint (old 0, empty proof): cosigned, and the independent check agrees.
    let cp3 = env.checkpoint_bytes();
    let r = w.post(&body(0, &[], &cp3));
    assert_eq!(r.status, 200, "{}", r.text());
    let t = independent_check(env.dir.path(), &wvkey, &cp3, &r.body).unwrap();
    assert!(t.abs_diff(now()) < 120, "timestamp {t} is not now");
    // The independent checker does fail: on another checkpoint, and with another key.
    let mut altered = cp3.clone();
    let pos = altered.iter().position(|&b| b == b'\n').unwrap() + 1;
    altered[pos] = b'4';
    assert!(independent_check(env.dir.path(), &wvkey, &altered, &r.body).is_err());
    let other = witness_init(&env, &env.path("w-other"), "witness.test/w1");
    assert!(independent_check(env.dir.path(), &other, &cp3, &r.body).is_err());
    // The cosignature merges into the checkpoint and tftrail's own policy counts it.
    let merged =
        tftrail_core::cosignature::add_signatures(&cp3, std::slice::from_ref(&r.body)).unwrap();
    let policy =
        tftrail_core::policy::Policy::from_witnesses(std::slice::from_ref(&wvkey), 1).unwrap();
    assert!(policy.check(&merged).satisfied);

    // The log grows to 5. A stale old size (0) gets 409 text/x.tlog.size with the size.
    append_n(&env, 2);
    let cp5 = env.checkpoint_bytes();
    let r = w.post(&body(0, &[], &cp5));
    assert_eq!(
        (r.status, r.content_type.as_str(), r.text().as_str()),
        (409, "text/x.tlog.size", "3\n")
    );
    // Retried with that size and the proof: cosigned.
    let p35 = proof(&env, 3);
    assert!(!p35.is_empty());
    let r = w.post(&body(3, &p35, &cp5));
    assert_eq!(r.status, 200, "{}", r.text());
    independent_check(env.dir.path(), &wvkey, &cp5, &r.body).unwrap();
    // The same checkpoint again: consistent, cosigned again.
    let r = w.post(&body(5, &[], &cp5));
    assert_eq!(r.status, 200, "{}", r.text());

    // A rollback: the size-3 checkpoint again (old 3 is not the recorded 5) → 409 with 5.
    let r = w.post(&body(3, &[], &cp3));
    assert_eq!(
        (r.status, r.content_type.as_str(), r.text().as_str()),
        (409, "text/x.tlog.size", "5\n")
    );
    // old larger than the checkpoint's size → 400.
    let r = w.post(&body(5, &[], &cp3));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("larger"), "{}", r.text());

    // The fork, same size and another root → 409 (not a size answer).
    append_n(&fork, 2);
    let fork5 = fork.checkpoint_bytes();
    assert_ne!(fork5, cp5);
    let r = w.post(&body(5, &[], &fork5));
    assert_eq!(r.status, 409, "{}", r.text());
    assert_ne!(r.content_type, "text/x.tlog.size");
    assert!(r.text().contains("fork"), "{}", r.text());
    // The fork grown to 6 with its own (valid for the fork) proof from 5 → 422.
    append_n(&fork, 1);
    let fork6 = fork.checkpoint_bytes();
    let r = w.post(&body(5, &proof(&fork, 5), &fork6));
    assert_eq!(r.status, 422, "{}", r.text());
    // A tampered proof for the genuine log → 422.
    append_n(&env, 2);
    let cp7 = env.checkpoint_bytes();
    let mut bad = proof(&env, 5);
    bad[0].0[0] ^= 1;
    assert_eq!(w.post(&body(5, &bad, &cp7)).status, 422);
    // old 0 (with a proof) is still a stale size.
    assert_eq!(w.post(&body(0, &proof(&env, 5), &cp7)).status, 409);

    // Another key for the same origin → 403; another origin → 404.
    let (impostor, _) = new_log("test.example/log", 1);
    let r = w.post(&body(0, &[], &impostor.checkpoint_bytes()));
    assert_eq!(r.status, 403, "{}", r.text());
    let (stranger, _) = new_log("other.example/log", 1);
    assert_eq!(
        w.post(&body(0, &[], &stranger.checkpoint_bytes())).status,
        404
    );
    // A checkpoint with its log signature altered → 403.
    let mut forged = cp7.clone();
    let n = forged.len() - 20; // inside the signature's base64, away from its padding
    forged[n] = if forged[n] == b'A' { b'B' } else { b'A' };
    assert_eq!(w.post(&body(5, &proof(&env, 5), &forged)).status, 403);
    // Garbage → 400; a GET → 405; an oversized body → 413.
    for junk in [
        &b"hello"[..],
        b"old x\n\nfoo",
        b"old 5\nnot-base64!\n\n",
        b"old 5\n\nnot a note",
    ] {
        let r = w.post(junk);
        assert_eq!(r.status, 400, "{junk:?}: {}", r.text());
    }
    assert_eq!(http(&w.addr, "GET", "/add-checkpoint", b"").status, 405);
    assert_eq!(w.post(&vec![b'a'; 100_000]).status, 413);

    // Nothing above moved the state: still 5, and 5 → 7 works.
    let r = w.post(&body(5, &proof(&env, 5), &cp7));
    assert_eq!(r.status, 200, "{}", r.text());
    independent_check(env.dir.path(), &wvkey, &cp7, &r.body).unwrap();

    // Structured logs name the origin and sizes of what was cosigned and refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let logs = w.log.lock().unwrap().clone();
        let want = [
            "cosigned origin=test.example/log old=5 size=7",
            "status=422",
            "status=403",
        ];
        if want.iter().all(|n| logs.contains(n)) {
            break;
        }
        assert!(Instant::now() < deadline, "{logs}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The state survives a restart.
    w.stop();
    let w = WitnessProc::start(&env, &wdir, &[&vkey]);
    let r = w.post(&body(0, &[], &cp7));
    assert_eq!((r.status, r.text().as_str()), (409, "7\n"));
    let r = w.post(&body(7, &[], &fork6));
    assert_eq!(r.status, 400, "the fork's 6 is below 7: {}", r.text());
    // A second witness process on the same directory is refused.
    let out = env.tftrail(
        &[
            "witness",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            &d,
            "--log",
            &vkey,
        ],
        None,
    );
    common::assert_fails(&out, 2, &["another witness"]);
    w.stop();
}

#[test]
fn serve_refuses_bad_configuration() {
    let env = Env::new();
    let wdir = env.path("w");
    let d = wdir.display().to_string();
    let out = env.tftrail(
        &[
            "witness",
            "serve",
            "--dir",
            &d,
            "--log",
            "x.test+01234567+AAAA",
        ],
        None,
    );
    common::assert_fails(&out, 2, &["invalid verifier key"]);
    let vkey = env.init_with_origin("test.example/log");
    let out = env.tftrail(&["witness", "serve", "--dir", &d, "--log", &vkey], None);
    common::assert_fails(&out, 2, &["no witness key", "witness init"]);
    let out = env.tftrail(&["witness", "serve", "--dir", &d], None);
    common::assert_fails(&out, 2, &["no logs"]);
    let out = env.tftrail(
        &["witness", "init", "--origin", "bad name", "--dir", &d],
        None,
    );
    common::assert_fails(&out, 2, &["invalid witness name"]);

    // --log-policy: the policy's `log` lines are the logs; a policy without one, or a bad
    // one, is refused with the file and line.
    let pol = env.path("policy");
    std::fs::write(&pol, "quorum none\n").unwrap();
    let p = pol.display().to_string();
    let out = env.tftrail(&["witness", "serve", "--dir", &d, "--log-policy", &p], None);
    common::assert_fails(&out, 2, &["no `log` lines"]);
    std::fs::write(&pol, format!("log {vkey}\nquorum nobody\n")).unwrap();
    let out = env.tftrail(&["witness", "serve", "--dir", &d, "--log-policy", &p], None);
    common::assert_fails(&out, 2, &["policy line 2"]);
    std::fs::write(
        &pol,
        format!("# the log\nlog {vkey} https://log.example\nquorum none\n"),
    )
    .unwrap();
    witness_init(&env, &wdir, "witness.test/p");
    let w = WitnessProc::start_args(
        &env,
        [
            "witness",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            &d,
            "--log-policy",
            &p,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    let r = w.post(&body(0, &[], &env.checkpoint_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
    w.stop();
}

/// kill -9 in the middle of a burst of consistent checkpoints, three times: after each
/// restart the recorded size is at least every size that was answered 200, and the witness
/// carries on from it.
#[test]
fn a_crash_during_a_burst_loses_nothing_answered() {
    let (env, vkey) = new_log("test.example/log", 1);
    // Checkpoints of sizes 1..=N, each with the proof from the previous size.
    const N: u64 = 40;
    let mut steps: Vec<(u64, Vec<u8>)> = vec![(1, env.checkpoint_bytes())];
    for size in 2..=N {
        append_n(&env, 1);
        steps.push((size, env.checkpoint_bytes()));
    }
    let vk = VerifierKey::parse(&vkey).unwrap();
    let log = tftrail_log::Log::open(
        tftrail_store::open(env.store.to_str().unwrap()).unwrap(),
        vk,
    )
    .unwrap();
    let bodies: Vec<(u64, Vec<u8>)> = steps
        .iter()
        .enumerate()
        .map(|(i, (size, cp))| {
            let old = if i == 0 { 0 } else { steps[i - 1].0 };
            let p = if old == 0 {
                vec![]
            } else {
                log.consistency(&key_open(&vkey, cp), old).unwrap()
            };
            (*size, body(old, &p, cp))
        })
        .collect();

    let wdir = env.path("witness");
    witness_init(&env, &wdir, "witness.test/crash");
    let mut answered = 0u64;
    let mut next = 0usize;
    for round in 0..3 {
        let w = WitnessProc::start(&env, &wdir, &[&vkey]);
        // Where the witness stands now, per its 409.
        let probe = w.post(&body(0, &[], &steps[0].1));
        let recorded: u64 = if probe.status == 200 {
            1
        } else {
            assert_eq!(probe.status, 409, "{}", probe.text());
            probe.text().trim().parse().unwrap()
        };
        eprintln!("round {round}: recorded {recorded}, answered {answered}");
        assert!(
            recorded >= answered,
            "round {round}: recorded {recorded} < answered {answered}"
        );
        if probe.status == 200 {
            answered = answered.max(1);
        }
        next = bodies
            .iter()
            .position(|(s, _)| *s == recorded + 1)
            .unwrap_or(bodies.len());
        if next == bodies.len() {
            break;
        }
        // Fire the rest in order from a thread; kill -9 the witness part-way.
        let addr = w.addr.clone();
        let rest: Vec<(u64, Vec<u8>)> = bodies[next..].to_vec();
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            for (size, b) in rest {
                let Ok(mut s) = TcpStream::connect(&addr) else {
                    break;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let head = format!("POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len());
                if s.write_all(head.as_bytes())
                    .and_then(|()| s.write_all(&b))
                    .is_err()
                {
                    break;
                }
                let mut raw = Vec::new();
                let _ = s.read_to_end(&mut raw);
                if raw.starts_with(b"HTTP/1.1 200") {
                    tx.send(size).unwrap();
                } else {
                    break;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(5 + 5 * round as u64));
        w.kill9();
        sender.join().unwrap();
        for s in rx.try_iter() {
            answered = answered.max(s);
        }
    }
    // Finally the witness carries on to N from wherever it is.
    let w = WitnessProc::start(&env, &wdir, &[&vkey]);
    let probe = w.post(&body(0, &[], &steps[0].1));
    let recorded: u64 = if probe.status == 409 {
        probe.text().trim().parse().unwrap()
    } else {
        1
    };
    eprintln!("final: recorded {recorded}, answered {answered}");
    assert!(
        recorded >= answered,
        "recorded {recorded} < answered {answered}"
    );
    for (size, b) in bodies.iter().filter(|(s, _)| *s > recorded) {
        let r = w.post(b);
        assert_eq!(r.status, 200, "size {size}: {}", r.text());
    }
    let r = w.post(&body(0, &[], &steps[0].1));
    assert_eq!(r.text(), format!("{N}\n"));
    let _ = next;
    w.stop();
}
