//! `--server`: group commit through the team server against direct writers, in one run.
//!
//! For each store (a local directory, and S3 on a local moto_server with Object Lock) and for
//! 1, 16 and 64 concurrent clients, each client appending one record (~300-byte payload) at a
//! time, sending the next as soon as the previous one is answered, for a fixed time:
//! - **direct**: every client slot runs `tftrail append` processes one after another, each
//!   appending one record with the signing key (what CI runners do without a server);
//! - **server**: one `tftrail serve` (the `tftrail` binary beside this one), and every client
//!   is a thread of this process with a keep-alive HTTP/1.1 connection posting
//!   `POST /v1/records` with one record.
//!
//! Every measurement gets a new log. Each acknowledged record's index is collected and must be
//! unique (a duplicate is a failure of the run, not a figure). Where the time goes comes from
//! the server's `/metrics` (records per group commit, time per group commit, time per HTTP
//! request) and from the CPU time of the server, of this process and of the `tftrail append`
//! children, read from `/proc`.
//!
//! Env: `TFTRAIL_BENCH_SERVE_CONFIG` (a `--config` file for the server, to compare settings),
//! `TFTRAIL_BENCH_SECS` (seconds per measurement, default 10; `--quick`: 3),
//! `TFTRAIL_BENCH_CLIENTS` (default `1,16,64`), `TFTRAIL_BENCH_STORES` (default `local,s3`),
//! `TFTRAIL_BENCH_DIR` (where the local stores go), `TFTRAIL_MOTO_SERVER` (for S3).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tftrail_store::testing::Moto;

/// The token the server's temporary authentication accepts as a writer (before `tftrail token`
/// exists).
/// Payload bytes of every record (the JSON object as sent).
const PAYLOAD_BYTES: usize = 300;

/// A payload of [`PAYLOAD_BYTES`] bytes (the digits of `client` and `i` vary the padding).
fn payload(client: usize, i: u64) -> String {
    let head = format!("{{\"client\":{client},\"i\":{i},\"pad\":\"");
    let pad = PAYLOAD_BYTES.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "x".repeat(pad))
}

/// What one measurement gives.
struct Run {
    /// Records acknowledged.
    count: usize,
    /// From the first request to the last answer.
    secs: f64,
    /// Latency of every acknowledged record, sorted, in seconds.
    latencies: Vec<f64>,
    /// CPU seconds (user + system) of the server, this process, the `tftrail append` children.
    cpu: Cpu,
    /// Deltas of the server's metrics over the measurement (server runs only).
    metrics: Option<MetricsDelta>,
    /// Appends that failed (direct writers only; a failed request to the server is fatal).
    failures: usize,
}

#[derive(Default, Clone, Copy)]
struct Cpu {
    server: f64,
    bench: f64,
    children: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.count as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        let n = self.latencies.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        self.latencies[i]
    }
}

/// The stores measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Local,
    S3,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::S3 => "S3 (moto)",
        }
    }
}

/// Where new logs are made: a local directory per log, or a prefix per log in one bucket.
struct Stores {
    moto: Option<Moto>,
    next: usize,
}

const BUCKET: &str = "tftrail-bench";

impl Stores {
    /// A new, empty store location of `kind`.
    fn fresh(&mut self, kind: Kind, home: &Path) -> String {
        self.next += 1;
        match kind {
            Kind::Local => home.join("log").display().to_string(),
            Kind::S3 => {
                if self.moto.is_none() {
                    let m = Moto::start();
                    m.apply_env();
                    m.create_audit_bucket(BUCKET, 1);
                    self.moto = Some(m);
                }
                format!("s3://{BUCKET}/log{}", self.next)
            }
        }
    }
}

/// A `tftrail` command in `home` (its own config, state and cache directories) for `store`,
/// signing with `home/key`.
pub(crate) fn tftrail(exe: &Path, home: &Path, store: &str) -> Command {
    let mut c = Command::new(exe);
    c.env("HOME", home)
        .env("TFTRAIL_STORE", store)
        .env("TFTRAIL_KEY", home.join("key"))
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("TFTRAIL_SERVER")
        .env_remove("TFTRAIL_TOKEN")
        .env_remove("TFTRAIL_TOKENS");
    c
}

/// Runs `c` to completion; panics with its stderr when it fails.
pub(crate) fn must(mut c: Command, what: &str) -> String {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new log in a new home: (home, store location).
fn new_log(exe: &Path, stores: &mut Stores, kind: Kind) -> (PathBuf, String) {
    let home = crate::scratch();
    let store = stores.fresh(kind, &home);
    let mut c = tftrail(exe, &home, &store);
    c.args(["init", "--origin", "bench.example/server"]);
    must(c, "tftrail init");
    (home, store)
}

/// CPU seconds (user + system) of process `pid` (`self` for this one): its own and, with
/// `children`, that of its waited-for children.
fn cpu_secs(pid: &str, children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|s| s.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime are fields 14–17 of stat: 11–14 after the name (0-based).
    let ticks = if children {
        f[13] + f[14]
    } else {
        f[11] + f[12]
    };
    ticks / 100.0
}

/// `clients` slots, each running one `tftrail append` process after another until `secs`
/// have passed.
fn direct(exe: &Path, home: &Path, store: &str, clients: usize, secs: f64) -> Run {
    let cpu0 = (cpu_secs("self", false), cpu_secs("self", true));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let failures = AtomicUsize::new(0);
    let failures = &failures;
    let results: Vec<(Vec<f64>, Vec<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut idx = Vec::new();
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let mut c = tftrail(exe, home, store);
                        c.args(["append", "--kind", "bench"])
                            .stdin(Stdio::piped())
                            .stdout(Stdio::piped())
                            .stderr(Stdio::piped());
                        let mut child = c.spawn().expect("cannot start tftrail append");
                        child
                            .stdin
                            .take()
                            .unwrap()
                            .write_all(payload(client, i).as_bytes())
                            .unwrap();
                        let out = child.wait_with_output().unwrap();
                        i += 1;
                        if !out.status.success() {
                            // Counted, not fatal: writers giving up under contention is a
                            // result of the direct baseline.
                            let n = failures.fetch_add(1, Ordering::Relaxed);
                            if n == 0 {
                                eprintln!(
                                    "a direct tftrail append failed ({}): {}",
                                    out.status,
                                    String::from_utf8_lossy(&out.stderr).trim()
                                );
                            }
                            continue;
                        }
                        lat.push(t.elapsed().as_secs_f64());
                        idx.push(parse_index(&out.stdout));
                    }
                    (lat, idx)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu = Cpu {
        server: 0.0,
        bench: cpu_secs("self", false) - cpu0.0,
        children: cpu_secs("self", true) - cpu0.1,
    };
    let mut run = finish(results, secs, cpu, None);
    run.failures = failures.load(Ordering::Relaxed);
    run
}

/// The index `tftrail append` printed (its last number).
fn parse_index(stdout: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(stdout);
    text.split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("tftrail append printed no index: {text:?}"))
}

/// Merges the clients' results; every acknowledged index must be unique.
fn finish(
    results: Vec<(Vec<f64>, Vec<u64>)>,
    secs: f64,
    cpu: Cpu,
    metrics: Option<MetricsDelta>,
) -> Run {
    let mut latencies = Vec::new();
    let mut indexes = Vec::new();
    for (l, i) in results {
        latencies.extend(l);
        indexes.extend(i);
    }
    let count = indexes.len();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(
        indexes.len(),
        count,
        "two acknowledged records share an index"
    );
    latencies.sort_by(f64::total_cmp);
    Run {
        count,
        secs,
        latencies,
        cpu,
        metrics,
        failures: 0,
    }
}

/// A running `tftrail serve`, stopped with SIGTERM on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
    pub(crate) token: String,
    /// Its stderr after the `listening on` line (for failures).
    log: Arc<Mutex<String>>,
}

impl Server {
    pub(crate) fn start(exe: &Path, home: &Path, store: &str) -> Server {
        let tokens = home.join("tokens");
        let token = writer_token(exe, home, store, &tokens);
        let mut c = tftrail(exe, home, store);
        c.args(["serve", "--listen", "127.0.0.1:0"]);
        // A server config to compare settings (e.g. `[limits] gather_micros`).
        if let Some(cfg) = std::env::var_os("TFTRAIL_BENCH_SERVE_CONFIG") {
            c.arg("--config").arg(cfg);
        }
        c.arg("--tokens").arg(&tokens);
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start tftrail serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut before = String::new();
        let addr = loop {
            match lines.next() {
                Some(Ok(l)) => match l.strip_prefix("listening on http://") {
                    Some(rest) => break rest.split_whitespace().next().unwrap().to_string(),
                    None => {
                        before.push_str(&l);
                        before.push('\n');
                    }
                },
                _ => {
                    let status = child.wait().unwrap();
                    panic!("tftrail serve ended ({status}) before listening: {before}");
                }
            }
        };
        let log = Arc::new(Mutex::new(before));
        let sink = log.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        Server {
            child,
            addr,
            token,
            log,
        }
    }

    fn get(&self, path: &str) -> String {
        let mut c = Client::connect(&self.addr);
        let (status, body) = c.request("GET", path, &self.token, b"");
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        String::from_utf8(body).expect("metrics are UTF-8")
    }

    fn cpu(&self) -> f64 {
        cpu_secs(&self.child.id().to_string(), false)
    }

    /// SIGTERM, then waits (SIGKILL after 30 s).
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    assert!(
                        st.success(),
                        "tftrail serve exited with {st}: {}",
                        self.log.lock().unwrap()
                    );
                    return;
                }
                _ if Instant::now() > until => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("tftrail serve did not stop within 30 s of SIGTERM");
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// A writer token from `tftrail token create`.
fn writer_token(exe: &Path, home: &Path, store: &str, tokens: &Path) -> String {
    let mut c = tftrail(exe, home, store);
    c.args(["token", "create", "--role", "writer", "--name", "bench"])
        .arg("--tokens")
        .arg(tokens);
    let out = c
        .stdin(Stdio::null())
        .output()
        .expect("cannot run tftrail token create");
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let t = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!t.is_empty(), "tftrail token create printed no token");
        t
    } else {
        panic!("tftrail token create failed ({}): {err}", out.status);
    }
}

/// A minimal HTTP/1.1 client on one keep-alive connection (Content-Length bodies only).
pub(crate) struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    host: String,
}

impl Client {
    pub(crate) fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Client {
            stream,
            buf: Vec::with_capacity(8192),
            host: addr.to_string(),
        }
    }

    /// Sends one request, reads its answer: (status, body).
    pub(crate) fn request(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n",
            self.host
        )
        .into_bytes();
        if !body.is_empty() {
            req.extend_from_slice(
                format!(
                    "content-type: application/json\r\ncontent-length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        self.stream.write_all(&req).expect("send a request");
        self.buf.clear();
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            self.fill();
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).expect("an ASCII response head");
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"));
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("a response without Content-Length: {head:?}"));
        while self.buf.len() < head_end + len {
            self.fill();
        }
        (status, self.buf[head_end..head_end + len].to_vec())
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).expect("read the response");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The metrics this bench reads, as sums and counts of histograms.
#[derive(Default, Clone, Copy)]
struct Scrape {
    batch_sum: f64,
    batch_count: f64,
    append_sum: f64,
    request_sum: f64,
    request_count: f64,
}

/// What happened on the server during one measurement.
#[derive(Default, Clone, Copy)]
struct MetricsDelta {
    /// Group commits.
    commits: f64,
    /// Records in them.
    records: f64,
    /// Seconds spent appending (the sequencer thread busy).
    append_secs: f64,
    /// HTTP requests answered and seconds spent on them (summed over requests).
    requests: f64,
    request_secs: f64,
}

fn scrape(text: &str) -> Scrape {
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("/metrics has no {name}"))
    };
    Scrape {
        batch_sum: value("tftrail_append_batch_records_sum"),
        batch_count: value("tftrail_append_batch_records_count"),
        append_sum: value("tftrail_append_seconds_sum"),
        request_sum: value("tftrail_http_request_seconds_sum"),
        request_count: value("tftrail_http_request_seconds_count"),
    }
}

/// `clients` threads, each with its own keep-alive connection, appending one record per
/// request until `secs` have passed.
fn through_server(exe: &Path, home: &Path, store: &str, clients: usize, secs: f64) -> Run {
    let server = Server::start(exe, home, store);
    // Let the server append its own start record before the clock starts.
    let until = Instant::now() + Duration::from_secs(30);
    while scrape(&server.get("/metrics")).batch_count < 1.0 {
        assert!(
            Instant::now() < until,
            "the server appended nothing in 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = scrape(&server.get("/metrics"));
    let cpu0 = (server.cpu(), cpu_secs("self", false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let (addr, token) = (server.addr.as_str(), server.token.as_str());
    let results: Vec<(Vec<f64>, Vec<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                s.spawn(move || {
                    let mut conn = Client::connect(addr);
                    let mut lat = Vec::new();
                    let mut idx = Vec::new();
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let body = format!(
                            "{{\"records\":[{{\"kind\":\"bench\",\"payload\":{}}}]}}",
                            payload(client, i)
                        );
                        let t = Instant::now();
                        let (status, answer) =
                            conn.request("POST", "/v1/records", token, body.as_bytes());
                        let took = t.elapsed().as_secs_f64();
                        assert_eq!(
                            status,
                            200,
                            "POST /v1/records: {}",
                            String::from_utf8_lossy(&answer)
                        );
                        let v: serde_json::Value =
                            serde_json::from_slice(&answer).expect("a JSON answer");
                        assert_eq!(v["count"], 1, "one record per request: {v}");
                        lat.push(took);
                        idx.push(v["first"].as_u64().expect("an index in the answer"));
                        i += 1;
                    }
                    (lat, idx)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu = Cpu {
        server: server.cpu() - cpu0.0,
        bench: cpu_secs("self", false) - cpu0.1,
        children: 0.0,
    };
    let after = scrape(&server.get("/metrics"));
    server.stop();
    let delta = MetricsDelta {
        commits: after.batch_count - before.batch_count,
        records: after.batch_sum - before.batch_sum,
        append_secs: after.append_sum - before.append_sum,
        // The scrape before is counted in `after`, not the one after.
        requests: after.request_count - before.request_count - 1.0,
        request_secs: after.request_sum - before.request_sum,
    };
    finish(results, secs, cpu, Some(delta))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn ms(s: f64) -> String {
    let ms = s * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

/// The `--server` benchmark: prints two Markdown tables.
pub fn run(quick: bool) {
    let Some(exe) = std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name("tftrail"))
        .filter(|p| p.exists())
    else {
        println!("not measured: build the tftrail binary in the same profile first (cargo build --release -p tftrail-cli)");
        return;
    };
    let secs: f64 = env_or("TFTRAIL_BENCH_SECS", if quick { "3" } else { "10" })
        .parse()
        .expect("TFTRAIL_BENCH_SECS must be a number of seconds");
    let clients: Vec<usize> = env_or("TFTRAIL_BENCH_CLIENTS", "1,16,64")
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("TFTRAIL_BENCH_CLIENTS must be numbers separated by commas")
        })
        .collect();
    let kinds: Vec<Kind> = env_or("TFTRAIL_BENCH_STORES", "local,s3")
        .split(',')
        .map(|s| match s.trim() {
            "local" => Kind::Local,
            "s3" => Kind::S3,
            other => panic!("TFTRAIL_BENCH_STORES: unknown store {other:?} (local, s3)"),
        })
        .collect();
    let mut stores = Stores {
        moto: None,
        next: 0,
    };
    let mut rows = Vec::new();
    for &kind in &kinds {
        for &n in &clients {
            let (home, store) = new_log(&exe, &mut stores, kind);
            let d = direct(&exe, &home, &store, n, secs);
            eprintln!(
                "{} {n} direct: {:.0} records/s, p50 {} ms, p99 {} ms, {} failed",
                kind.name(),
                d.rate(),
                ms(d.pct(0.5)),
                ms(d.pct(0.99)),
                d.failures
            );
            let (home, store) = new_log(&exe, &mut stores, kind);
            let s = through_server(&exe, &home, &store, n, secs);
            eprintln!(
                "{} {n} server: {:.0} records/s, p50 {} ms, p99 {} ms",
                kind.name(),
                s.rate(),
                ms(s.pct(0.5)),
                ms(s.pct(0.99))
            );
            rows.push((kind, n, d, s));
        }
    }
    println!(
        "{secs} s per measurement, one record ({PAYLOAD_BYTES}-byte payload) per request or process; server clients authenticate with a writer token from `tftrail token create`\n"
    );
    println!("| store | clients | direct `tftrail append`: records/s | p50 / p99 ms | through `tftrail serve`: records/s | p50 / p99 ms | records/s, server ÷ direct | p99, server ÷ direct |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, n, d, s) in &rows {
        let failed = if d.failures > 0 {
            format!(" ({} failed)", d.failures)
        } else {
            String::new()
        };
        println!(
            "| {} | {n} | {:.0}{failed} | {} / {} | {:.0} | {} / {} | {:.1}× | {:.3} |",
            kind.name(),
            d.rate(),
            ms(d.pct(0.5)),
            ms(d.pct(0.99)),
            s.rate(),
            ms(s.pct(0.5)),
            ms(s.pct(0.99)),
            s.rate() / d.rate(),
            s.pct(0.99) / d.pct(0.99)
        );
    }
    println!();
    println!("Where the time goes (server: its /metrics over the measurement; CPU from /proc, in cores busy on average):\n");
    println!("| store | clients | group commits/s | records per commit | ms per commit | sequencer busy | server ms per request | client ms per request (mean) | server CPU per record | CPU: server + bench clients (of 2) | direct: CPU of `tftrail append` processes + bench |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, n, d, s) in &rows {
        let m = s.metrics.unwrap_or_default();
        let mean_client = s.latencies.iter().sum::<f64>() / s.latencies.len().max(1) as f64;
        println!(
            "| {} | {n} | {:.0} | {:.1} | {} | {:.0} % | {} | {} | {:.0} µs | {:.2} + {:.2} | {:.2} + {:.2} |",
            kind.name(),
            m.commits / s.secs,
            m.records / m.commits.max(1.0),
            ms(m.append_secs / m.commits.max(1.0)),
            100.0 * m.append_secs / s.secs,
            ms(m.request_secs / m.requests.max(1.0)),
            ms(mean_client),
            1e6 * s.cpu.server / s.count.max(1) as f64,
            s.cpu.server / s.secs,
            s.cpu.bench / s.secs,
            d.cpu.children / d.secs,
            d.cpu.bench / d.secs,
        );
    }
}
