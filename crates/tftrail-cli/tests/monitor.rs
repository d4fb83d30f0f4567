//! `tftrail monitor` against logs made by real Terraform runs (`tftrail run`, and plain
//! applies through the server's state backend), delivering to a real HTTP receiver on
//! loopback that the test starts (a std::net server thread recording every request, which
//! can answer 500 or be down): each rule fires and stays silent on a clean log, integrity
//! failures (a tampered entry bundle, an old checkpoint put back) exit 1, webhook signatures
//! verify with the shared secret, a receiver down then up gets every alert exactly once, and a
//! restarted monitor repeats nothing.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{code, describe, stderr, Env};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SECRET: &str = "shared-hmac-secret";

// ---- the receiver ----

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Req {
    path: String,
    /// Header lines, names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The status it was answered.
    status: u16,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// A webhook receiver on loopback: records every request and answers `status`.
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Req>>>,
    status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Listens on a free port.
    fn start() -> Receiver {
        Receiver::on(0)
    }

    /// Listens on `port` (0: any).
    fn on(port: u16) -> Receiver {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, status, stop) = (requests.clone(), status.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => serve_one(s, &requests, &status),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        Receiver {
            port,
            requests,
            status,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The requests answered 2xx.
    fn delivered(&self) -> Vec<Req> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status < 300)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    /// Stops listening (the port is closed).
    fn shut(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(s: TcpStream, requests: &Mutex<Vec<Req>>, status: &AtomicU16) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let st = status.load(Ordering::Relaxed);
    requests.lock().unwrap().push(Req {
        path,
        headers,
        body,
        status: st,
    });
    let mut s = s;
    let _ = write!(
        s,
        "HTTP/1.1 {st} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}

// ---- helpers ----

/// HMAC-SHA256 (RFC 2104), computed here rather than with the monitor's code.
fn hmac(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize();
    hex::encode(outer)
}

/// Every delivered request carries a valid signature of its exact body.
fn assert_signed(reqs: &[Req]) {
    for r in reqs {
        let sig = r
            .header("x-tftrail-signature-256")
            .unwrap_or_else(|| panic!("no signature header: {r:?}"));
        assert_eq!(
            sig,
            format!("sha256={}", hmac(SECRET.as_bytes(), &r.body)),
            "signature of {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_ne!(
            sig,
            format!("sha256={}", hmac(b"another secret", &r.body)),
            "the signature depends on the secret"
        );
        assert_eq!(r.path, "/hook");
    }
}

fn webhook(url: &str) -> String {
    format!("[[sink]]\ntype = \"webhook\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\n")
}

fn write_config(env: &Env, name: &str, text: &str) -> PathBuf {
    let p = env.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `tftrail monitor --once --config CFG --state-dir DIR` on the env's store.
fn once(env: &Env, cfg: &Path, state: &Path) -> Output {
    let mut c = env.command(&[
        "monitor",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    c.stdin(Stdio::null());
    common::run(c, None)
}

/// The alerts delivered, as JSON.
fn alerts(reqs: &[Req]) -> Vec<Value> {
    reqs.iter().map(Req::json).collect()
}

fn rules_of(alerts: &[Value]) -> Vec<String> {
    let mut r: Vec<String> = alerts
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_string())
        .collect();
    r.sort();
    r.dedup();
    r
}

fn of_rule<'a>(alerts: &'a [Value], rule: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["rule"] == rule).collect()
}

fn records_of(alerts: &[&Value]) -> Vec<u64> {
    let mut v: Vec<u64> = alerts
        .iter()
        .flat_map(|a| a["records"].as_array().unwrap().clone())
        .map(|i| i.as_u64().unwrap())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every delivered document has the shape the spec gives.
fn assert_documents(alerts: &[Value], size: u64) {
    for a in alerts {
        for k in ["rule", "severity", "summary", "why", "key", "time"] {
            assert!(a[k].is_string(), "{k} in {a:#}");
        }
        assert!(a["records"].is_array(), "{a:#}");
        assert!(a["links"].is_array(), "{a:#}");
        assert_eq!(a["log"]["size"], size, "{a:#}");
        assert!(a["log"]["root"].is_string() && a["log"]["origin"].is_string());
        assert!(a["monitor"]["version"].is_string() && a["monitor"]["host"].is_string());
    }
}

const CONFIG: &str = r#"
variable "ver" {
  type    = string
  default = "1"
}
variable "fail" {
  type    = bool
  default = false
}
resource "terraform_data" "prod_db" {
  input = "db"
}
resource "terraform_data" "web" {
  input = var.ver
  lifecycle {
    precondition {
      condition     = !var.fail
      error_message = "failure requested by the test"
    }
  }
}
resource "terraform_data" "cache" {
  input = "cache"
}
"#;

/// `tftrail run -- terraform ARGS` in `dir`; returns the records it made.
fn tf(env: &Env, dir: &Path, args: &[&str], want: i32) -> Vec<u64> {
    let (out, rec) = env.tf_run(dir, args, &[]);
    assert_eq!(code(&out), want, "{args:?}\n{}", describe(&out));
    assert!(!rec.is_empty(), "{args:?} recorded nothing");
    rec
}

/// A log with Terraform's init and a reviewed apply (saved plan, recorded): nothing a rule
/// should object to.
fn clean_log() -> (Env, PathBuf, u64) {
    let env = Env::new();
    env.init();
    let dir = env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), CONFIG).unwrap();
    tf(&env, &dir, &["init", "-input=false"], 0);
    tf(&env, &dir, &["plan", "-input=false", "-out", "p1"], 0);
    let r = tf(&env, &dir, &["apply", "-input=false", "p1"], 0);
    let size = r.iter().max().unwrap() + 1;
    (env, dir, size)
}

/// The rules' settings for the clean log: `tester` is allowed, prod deletes are watched.
const RULES: &str = r#"
[rules.destroy]
resources = ["*.prod_*"]
max_deletes = 1

[rules.actors]
allowed = ["tester"]
"#;

// ---- tests ----

#[test]
fn rules_fire_on_real_runs_once_each_and_are_silent_on_a_clean_log() {
    let (env, dir, clean_size) = clean_log();
    let rx = Receiver::start();
    let cfg = write_config(&env, "m.toml", &format!("{}{RULES}", webhook(&rx.url())));
    let state = env.path("mstate");

    // A clean log: nothing fires.
    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(rx.all().is_empty(), "{:#?}", alerts(&rx.all()));
    assert!(
        stderr(&out).contains(&format!("{clean_size} records verified")),
        "{}",
        describe(&out)
    );

    // An apply without a saved plan, a failing apply, a destroy of a prod_ resource (and of
    // more than max_deletes resources).
    let unreviewed = tf(
        &env,
        &dir,
        &["apply", "-input=false", "-auto-approve", "-var", "ver=2"],
        0,
    );
    let failed = tf(
        &env,
        &dir,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            "ver=3",
            "-var",
            "fail=true",
        ],
        1,
    );
    let destroyed = tf(&env, &dir, &["destroy", "-input=false", "-auto-approve"], 0);
    let size = destroyed.iter().max().unwrap() + 1;

    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 4, "{}", describe(&out));
    let got = rx.delivered();
    assert_signed(&got);
    let a = alerts(&got);
    assert_documents(&a, size);
    let rules = rules_of(&a);
    for r in ["unreviewed_apply", "failed_apply", "destroy"] {
        assert!(rules.contains(&r.to_string()), "{r} did not fire: {a:#?}");
    }
    // Nothing about the clean records.
    for x in &a {
        for i in x["records"].as_array().unwrap() {
            assert!(i.as_u64().unwrap() >= clean_size, "{x:#}");
        }
    }
    assert!(
        records_of(&of_rule(&a, "unreviewed_apply"))
            .iter()
            .any(|i| unreviewed.contains(i)),
        "{a:#?}"
    );
    assert!(
        records_of(&of_rule(&a, "failed_apply"))
            .iter()
            .any(|i| failed.contains(i)),
        "{a:#?}"
    );
    assert!(
        records_of(&of_rule(&a, "destroy"))
            .iter()
            .any(|i| destroyed.contains(i)),
        "{a:#?}"
    );
    // Each alert once: keys are unique.
    let mut keys: Vec<&str> = a.iter().map(|x| x["key"].as_str().unwrap()).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "{keys:?}");
    // Printed too.
    assert!(
        common::stdout(&out).contains("alert: ") && common::stdout(&out).contains("failed_apply"),
        "{}",
        describe(&out)
    );

    // A restarted monitor (a new process, same state directory) repeats nothing.
    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(rx.all().len(), got.len(), "{:#?}", alerts(&rx.all()));

    // Another monitor that allows only an authenticated CI token, in a change window on
    // another day: every state change is outside it, every record's actor is not allowed.
    let today = time::OffsetDateTime::now_utc().weekday();
    let other = match today {
        time::Weekday::Monday => "tue",
        _ => "mon",
    };
    let rx2 = Receiver::start();
    let cfg2 = write_config(
        &env,
        "m2.toml",
        &format!(
            "{}[rules.actors]\nallowed = [\"token:ci\"]\nrequire_authenticated = true\n\n[rules.change_window]\nenabled = true\ndays = [\"{other}\"]\nhours = \"00:00-23:59\"\ntimezone = \"UTC\"\n",
            webhook(&rx2.url())
        ),
    );
    let out = once(&env, &cfg2, &env.path("mstate2"));
    assert_eq!(code(&out), 4, "{}", describe(&out));
    let a2 = alerts(&rx2.delivered());
    assert_signed(&rx2.delivered());
    let rules2 = rules_of(&a2);
    for r in ["actors", "change_window"] {
        assert!(
            rules2.contains(&r.to_string()),
            "{r} did not fire: {rules2:?}"
        );
    }
    // The clean apply, too, was outside the window.
    assert!(
        records_of(&of_rule(&a2, "change_window"))
            .iter()
            .any(|i| *i < clean_size),
        "{a2:#?}"
    );
}

#[test]
fn integrity_tampered_and_rolled_back_copies_exit_1_and_alert_once() {
    let (env, dir, _) = clean_log();
    let rx = Receiver::start();
    let cfg = write_config(&env, "m.toml", &format!("{}{RULES}", webhook(&rx.url())));
    let state = env.path("mstate");
    assert_eq!(code(&once(&env, &cfg, &state)), 0);
    let old_checkpoint = env.checkpoint_bytes();
    let seen = rx.all().len();

    // More runs, then a copy of the log with one byte of the newest entry changed.
    tf(
        &env,
        &dir,
        &["plan", "-input=false", "-out", "p2", "-var", "ver=2"],
        0,
    );
    tf(&env, &dir, &["apply", "-input=false", "p2"], 0);
    let tampered = env.clone_log();
    let tstate = tampered.path("mstate");
    // The widest partial bundle: the one readers of the current tree use.
    let last = common::list_files(&tampered.store)
        .into_iter()
        .filter(|f| f.starts_with("tile/entries/000.p/"))
        .max_by_key(|f| f.rsplit('/').next().unwrap().parse::<u64>().unwrap())
        .unwrap();
    common::flip_byte(&tampered.object(&last), -40);
    let tcfg = write_config(
        &tampered,
        "m.toml",
        &format!("{}{RULES}", webhook(&rx.url())),
    );
    let out = once(&tampered, &tcfg, &tstate);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let got = rx.delivered();
    assert_eq!(got.len(), seen + 1, "{:#?}", alerts(&got));
    assert_signed(&got);
    let a = got.last().unwrap().json();
    assert_eq!(a["rule"], "integrity", "{a:#}");
    assert_eq!(a["severity"], "critical", "{a:#}");
    assert_eq!(a["details"]["check"], "verification_failed", "{a:#}");
    // Again: still exit 1 (the last good checkpoint was kept), the same alert not delivered
    // twice.
    let out = once(&tampered, &tcfg, &tstate);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(stderr(&out).contains("integrity"), "{}", describe(&out));
    assert_eq!(rx.delivered().len(), seen + 1);

    // The intact log: the monitor advances, then an older checkpoint is put back.
    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    common::overwrite(&env.object("checkpoint"), &old_checkpoint);
    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let got = rx.delivered();
    assert_eq!(got.len(), seen + 2, "{:#?}", alerts(&got));
    let a = got.last().unwrap().json();
    assert_eq!(a["rule"], "integrity", "{a:#}");
    assert_eq!(a["details"]["check"], "rollback", "{a:#}");
    assert!(
        a["summary"].as_str().unwrap().contains("rolled back"),
        "{a:#}"
    );
    // A monitor that never saw the newer checkpoint has nothing to object to: the rollback
    // is caught only by what was remembered.
    let fresh = env.path("fresh");
    let out = once(&env, &cfg, &fresh);
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

#[test]
fn a_receiver_down_then_failing_then_up_gets_every_alert_exactly_once() {
    let (env, dir, _) = clean_log();
    tf(
        &env,
        &dir,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            "fail=true",
        ],
        1,
    );
    // A port with nothing listening.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let jsonl = env.path("alerts.jsonl");
    let cfg = write_config(
        &env,
        "m.toml",
        &format!(
            "{}[[sink]]\ntype = \"jsonl\"\npath = \"{}\"\n{RULES}",
            webhook(&url),
            jsonl.display()
        ),
    );
    let state = env.path("mstate");

    // Down: the alerts fire (exit 4), the JSON Lines sink has them, the webhook's are owed.
    let started = Instant::now();
    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 4, "{}", describe(&out));
    assert!(
        stderr(&out).contains("delivery failed, kept for the next round"),
        "{}",
        describe(&out)
    );
    // Retried within the round with backoff (0.5 s, 1 s).
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    let keys: Vec<String> = lines
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect();
    let mem: Value =
        serde_json::from_slice(&std::fs::read(state.join("memory.json")).unwrap()).unwrap();
    assert_eq!(
        mem["outbox"].as_array().unwrap().len(),
        keys.len(),
        "{mem:#}"
    );

    // Up but failing (500): still owed, exit 3 (a delivery failed), nothing new raised.
    let rx = Receiver::on(port);
    rx.status.store(500, Ordering::Relaxed);
    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 3, "{}", describe(&out));
    assert_eq!(
        rx.all().len(),
        3,
        "one delivery tried 3 times, then the sink is left alone"
    );
    assert!(rx.delivered().is_empty());

    // Up: every alert delivered, in order, once; the JSON Lines file unchanged.
    rx.status.store(200, Ordering::Relaxed);
    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let got = rx.delivered();
    assert_signed(&got);
    let got_keys: Vec<String> = alerts(&got)
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got_keys, keys);
    // The webhook got the same document as the JSON Lines file.
    assert_eq!(alerts(&got), lines);
    let out = once(&env, &cfg, &state);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(rx.delivered().len(), keys.len());
    assert_eq!(
        std::fs::read_to_string(&jsonl).unwrap().lines().count(),
        keys.len()
    );
    rx.shut();
}

#[test]
fn runs_until_sigterm_and_serves_metrics() {
    let (env, dir, _) = clean_log();
    let jsonl = env.path("alerts.jsonl");
    let cfg = write_config(
        &env,
        "m.toml",
        &format!(
            "[[sink]]\ntype = \"jsonl\"\npath = \"{}\"\n{RULES}",
            jsonl.display()
        ),
    );
    let state = env.path("mstate");
    let mut c = env.command(&[
        "monitor",
        "--config",
        cfg.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--interval",
        "1s",
        "--metrics",
        "127.0.0.1:0",
    ]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let text = Arc::new(Mutex::new(String::new()));
    {
        let text = text.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut t = text.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
            }
        });
    }
    let wait = |what: &str, f: &dyn Fn() -> Option<String>| -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}\n{}",
                text.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let addr = wait("no metrics address", &|| {
        text.lock()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("metrics: http://"))
            .map(|a| a.trim_end_matches("/metrics").to_string())
    });
    let get = |path: &str| -> (u16, String) {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut b = String::new();
        s.read_to_string(&mut b).unwrap();
        let st = b.split(' ').nth(1).unwrap().parse().unwrap();
        (st, b)
    };
    let metric = |body: &str, name: &str| -> Option<f64> {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
    };
    // A failing apply while it runs: the next round raises it.
    tf(
        &env,
        &dir,
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-var",
            "fail=true",
        ],
        1,
    );
    wait("failed_apply not raised", &|| {
        let (_, b) = get("/metrics");
        b.contains("tftrail_monitor_alerts_total{rule=\"failed_apply\"} 1")
            .then_some(b)
    });
    let (st, body) = get("/metrics");
    assert_eq!(st, 200);
    assert!(
        body.contains("content-type: application/openmetrics-text")
            || body.contains("Content-Type: application/openmetrics-text"),
        "{body}"
    );
    assert!(
        metric(&body, "tftrail_monitor_rounds_total").unwrap() >= 2.0,
        "{body}"
    );
    assert!(
        metric(&body, "tftrail_monitor_checkpoint_size").unwrap() > 0.0,
        "{body}"
    );
    assert_eq!(
        metric(&body, "tftrail_monitor_deliveries_failed_total"),
        Some(0.0)
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    assert_eq!(get("/other").0, 404);
    assert!(std::fs::read_to_string(&jsonl)
        .unwrap()
        .contains("failed_apply"));

    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", text.lock().unwrap());
}

#[test]
fn usage_errors_name_the_problem_and_the_example_config_works() {
    let env = Env::new();
    env.init();
    let ex = env.ok(&["monitor", "--example-config"], None);
    assert!(
        ex.contains("[[sink]]") && ex.contains("X-Tftrail-Signature-256"),
        "{ex}"
    );
    // The example, with its webhook on a closed port: accepted; an empty log raises nothing.
    let cfg = write_config(&env, "ex.toml", &ex);
    let out = once(&env, &cfg, &env.path("s"));
    assert_eq!(code(&out), 0, "{}", describe(&out));

    let bad = write_config(&env, "bad.toml", "[[sink]]\ntype = \"pager\"\n");
    let out = once(&env, &bad, &env.path("s"));
    common::assert_fails(&out, 2, &["bad.toml", "pager"]);
    let out = env.tftrail(&["monitor"], None);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    let out = env.tftrail(
        &[
            "monitor",
            "--config",
            cfg.to_str().unwrap(),
            "--metrics",
            "0.0.0.0:9464",
        ],
        None,
    );
    common::assert_fails(&out, 2, &["not a loopback address"]);
    let out = env.tftrail(
        &[
            "monitor",
            "--config",
            cfg.to_str().unwrap(),
            "--interval",
            "soon",
        ],
        None,
    );
    common::assert_fails(&out, 2, &["invalid duration \"soon\""]);
    // A state directory of another log is refused.
    let other = Env::new();
    other.init();
    let out = once(&other, &cfg, &env.path("s"));
    common::assert_fails(&out, 3, &["memory.json", "not of"]);
}

// ---- through the server: out-of-band state writes, denied access, links ----

const WEB_ONLY: &str = r#"
variable "ver" {
  type    = string
  default = "v1"
}

resource "terraform_data" "web" {
  input = var.ver
}
"#;

fn run_bounded(mut c: Command, limit: Duration) -> Output {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{:?} took longer than {limit:?}", c.get_program());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn out_of_band_writes_and_denied_access_through_the_server() {
    let env = Env::new();
    let vkey = env.init();
    let _admin = env.token("admin", "root");
    let writer = env.token("writer", "ci-writer");
    let reader = env.token("reader", "viewer");
    let states = env.path("states");
    let server = env.serve(&["--state-store", states.to_str().unwrap()], &[]);

    // A plain `terraform apply` with the server as its state backend: out of band.
    let dir = env.path("ws");
    std::fs::create_dir_all(&dir).unwrap();
    let addr = format!("{}/state/team/oob", server.url);
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "terraform {{\n  backend \"http\" {{\n    address        = \"{addr}\"\n    lock_address   = \"{addr}\"\n    unlock_address = \"{addr}\"\n    username       = \"tftrail\"\n  }}\n}}\n{WEB_ONLY}"
        ),
    )
    .unwrap();
    let terraform = |args: &[&str]| {
        let mut c = Command::new(common::terraform_bin());
        c.env("HOME", &env.home);
        env.tf_env(&mut c);
        for k in [
            "TF_HTTP_ADDRESS",
            "TF_HTTP_USERNAME",
            "TF_LOG",
            "TF_DATA_DIR",
        ] {
            c.env_remove(k);
        }
        c.env("TF_HTTP_PASSWORD", &writer)
            .current_dir(&dir)
            .args(args);
        let out = run_bounded(c, Duration::from_secs(180));
        assert_eq!(code(&out), 0, "{args:?}\n{}", describe(&out));
    };
    terraform(&["init", "-input=false"]);
    terraform(&["apply", "-input=false", "-auto-approve"]);
    // Refused requests: a wrong token.
    for _ in 0..3 {
        let (st, _) = server.request("GET", "/v1/records", Some("tftrail_wrong"), b"");
        assert_eq!(st, 401);
    }

    let rx = Receiver::start();
    let cfg = write_config(
        &env,
        "m.toml",
        &format!("{}[rules.denied]\nmax_per_hour = 0\n", webhook(&rx.url())),
    );
    let state = env.path("mstate");
    let mut c = env.client(
        &server,
        &reader,
        &[
            "monitor",
            "--once",
            "--config",
            cfg.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    c.env("TFTRAIL_KEY", &vkey);
    let out = run_bounded(c, Duration::from_secs(120));
    assert_eq!(code(&out), 4, "{}", describe(&out));
    let got = rx.delivered();
    assert_signed(&got);
    let a = alerts(&got);
    let rules = rules_of(&a);
    for r in ["out_of_band", "denied"] {
        assert!(rules.contains(&r.to_string()), "{r} did not fire: {a:#?}");
    }
    // Links to the records on the server.
    for x in of_rule(&a, "out_of_band") {
        let i = x["records"][0].as_u64().unwrap();
        assert!(
            x["links"]
                .as_array()
                .unwrap()
                .contains(&Value::from(format!("{}/records/{i}", server.url))),
            "{x:#}"
        );
    }
}
