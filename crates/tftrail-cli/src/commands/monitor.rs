//! `tftrail monitor`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tftrail_log::{Log, LogError};
use tftrail_monitor::memory::{self, Memory};
use tftrail_monitor::round::{self, RoundReport};
use tftrail_monitor::sinks::Sender;
use tftrail_monitor::MonitorConfig;

use super::Global;
use crate::context;
use crate::error::CliError;

/// Watch the log: each round checks the signed checkpoint against the last one seen (a
/// rollback or fork is an alert), verifies the new entries and their blobs, evaluates the
/// rules on the new records, and delivers the alerts to the config's sinks.
///
/// With --once, one round; the exit code says what it found: 0 nothing, 4 an alert was
/// raised, 1 the log failed an integrity check, 2 usage, 3 operational failure (the store
/// could not be read, a delivery failed and was kept for the next round). Without it, a round
/// every --interval until SIGTERM or SIGINT.
#[derive(clap::Args)]
pub struct Args {
    /// The monitor's config file (TOML: [[sink]] and [rules.*]; see --example-config)
    #[arg(long, value_name = "FILE", required_unless_present = "example_config")]
    config: Option<PathBuf>,
    /// One round, then exit with its code
    #[arg(long)]
    once: bool,
    /// Time between rounds: 90s, 5m, 1h
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    interval: String,
    /// Where the monitor keeps the last checkpoint it verified, the rules' memory, the alerts
    /// already delivered and the deliveries still owed [default:
    /// $XDG_STATE_HOME/tftrail/monitor/<hash of the log's location and key>]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Serve /metrics (OpenMetrics text) on this loopback address, e.g. 127.0.0.1:9464
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Print a commented config file with every setting and its default, then exit
    #[arg(long, conflicts_with_all = ["config", "once", "state_dir", "metrics"])]
    example_config: bool,
    /// The witnesses whose quorum each checkpoint must carry (else a `witness` alert); the
    /// config's witness_policy applies when none of these is given
    #[command(flatten)]
    witnesses: super::quorum::WitnessArgs,
}

/// Parses `90s`, `30m`, `2h`, `1d`, as the config file's durations.
pub fn parse_duration(s: &str) -> Result<Duration, CliError> {
    tftrail_monitor::rules::parse_duration(s)
        .map_err(|e| CliError::usage(e).hint("use a number with s, m, h or d: 90s, 30m, 2h, 1d"))
}

/// What /metrics shows.
#[derive(Default)]
struct Metrics {
    rounds: u64,
    alerts: BTreeMap<String, u64>,
    deliveries_failed: u64,
    integrity_failures: u64,
    failures: u64,
    checkpoint_size: Option<u64>,
    owed: usize,
    last_round_seconds: f64,
}

impl Metrics {
    fn add(&mut self, r: &RoundReport, secs: f64) {
        self.rounds += 1;
        for a in &r.alerts {
            *self.alerts.entry(a.rule.clone()).or_default() += 1;
        }
        self.deliveries_failed += r.delivery_failures.len() as u64;
        self.integrity_failures += u64::from(r.integrity);
        self.failures += u64::from(r.failure.is_some());
        if let Some((_, size, _)) = &r.checkpoint {
            if !r.integrity {
                self.checkpoint_size = Some(*size);
            }
        }
        self.owed = r.owed;
        self.last_round_seconds = secs;
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<String>| {
            s.push_str(&format!("# TYPE {name} {kind}\n# HELP {name} {help}\n"));
            for l in lines {
                s.push_str(&l);
                s.push('\n');
            }
        };
        let m = "tftrail_monitor";
        metric(
            &format!("{m}_rounds"),
            "counter",
            "Rounds run.",
            vec![format!("{m}_rounds_total {}", self.rounds)],
        );
        metric(
            &format!("{m}_alerts"),
            "counter",
            "Alerts raised, by rule.",
            self.alerts
                .iter()
                .map(|(r, n)| format!("{m}_alerts_total{{rule=\"{r}\"}} {n}"))
                .collect(),
        );
        metric(
            &format!("{m}_deliveries_failed"),
            "counter",
            "Deliveries that failed after their retries (kept for the next round).",
            vec![format!(
                "{m}_deliveries_failed_total {}",
                self.deliveries_failed
            )],
        );
        metric(
            &format!("{m}_integrity_failures"),
            "counter",
            "Rounds that found the log failing an integrity check.",
            vec![format!(
                "{m}_integrity_failures_total {}",
                self.integrity_failures
            )],
        );
        metric(
            &format!("{m}_round_failures"),
            "counter",
            "Rounds that could not read the log or write the monitor's memory.",
            vec![format!("{m}_round_failures_total {}", self.failures)],
        );
        metric(
            &format!("{m}_checkpoint_size"),
            "gauge",
            "Size of the last checkpoint verified.",
            self.checkpoint_size
                .map(|n| format!("{m}_checkpoint_size {n}"))
                .into_iter()
                .collect(),
        );
        metric(
            &format!("{m}_outbox"),
            "gauge",
            "Deliveries still owed.",
            vec![format!("{m}_outbox {}", self.owed)],
        );
        metric(
            &format!("{m}_last_round_seconds"),
            "gauge",
            "How long the last round took.",
            vec![format!(
                "{m}_last_round_seconds {}",
                self.last_round_seconds
            )],
        );
        s.push_str("# EOF\n");
        s
    }
}

/// Serves /metrics on `listener` from a thread of its own.
fn serve_metrics(listener: TcpListener, metrics: Arc<Mutex<Metrics>>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let mut reader = BufReader::new(&conn);
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // The rest of the request head.
            loop {
                let mut h = String::new();
                match reader.read_line(&mut h) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if h == "\r\n" || h == "\n" => break,
                    Ok(_) => {}
                }
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, ctype, body) = if method == "GET" && path == "/metrics" {
                let body = metrics.lock().map(|m| m.render()).unwrap_or_default();
                (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                )
            } else {
                ("404 Not Found", "text/plain", "not found\n".to_string())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// Prints what a round raised and found, on stdout (alerts) and stderr (the rest); alerts go
/// to stderr too when a sink writes JSON Lines to stdout.
fn print_report(r: &RoundReport, cfg: &MonitorConfig, once: bool) {
    let to_stderr = cfg.sinks.iter().any(|s| s.is_stdout());
    for a in &r.alerts {
        let mut text = format!(
            "alert: [{}] {}: {}\n  why: {}",
            match a.severity {
                tftrail_monitor::Severity::Info => "info",
                tftrail_monitor::Severity::Warning => "warning",
                tftrail_monitor::Severity::Critical => "critical",
            },
            a.rule,
            a.summary,
            a.why
        );
        if !a.records.is_empty() {
            let ls = tftrail_monitor::sinks::links(a, cfg.ui_url.as_deref());
            if ls.is_empty() {
                let rs: Vec<String> = a.records.iter().map(u64::to_string).collect();
                text.push_str(&format!("\n  records: {}", rs.join(", ")));
            } else {
                text.push_str(&format!("\n  records: {}", ls.join(" ")));
            }
        }
        if to_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
    if let Some(m) = &r.integrity_message {
        if r.alerts.iter().all(|a| a.rule != "integrity") {
            // Raised in an earlier round: still failing.
            eprintln!("error: integrity (still): {m}");
        }
    }
    if let Some(f) = &r.failure {
        eprintln!("error: {f}");
    }
    for d in &r.delivery_failures {
        eprintln!("error: delivery failed, kept for the next round: {d}");
    }
    if once || !r.alerts.is_empty() || r.records > 0 {
        let cp = match &r.checkpoint {
            Some((_, size, _)) => match r.previous_size {
                Some(p) if !r.integrity => {
                    format!("size {size} (+{} records)", size.saturating_sub(p))
                }
                _ => format!("size {size}"),
            },
            None => "not read".into(),
        };
        eprintln!(
            "round: checkpoint {cp}, {} records verified, {} blobs, {} alerts, {} delivered, {} owed",
            r.records,
            r.blobs,
            r.alerts.len(),
            r.delivered,
            r.owed
        );
    }
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    if a.example_config {
        g.refuse("monitor --example-config", true, true, true)?;
        print!("{}", MonitorConfig::example());
        return Ok(0);
    }
    // Alerts are JSON already: a `jsonl` sink with path "-" writes them to stdout.
    g.refuse("monitor", false, false, true)?;
    let path = a.config.as_ref().expect("clap requires --config");
    let mut cfg = MonitorConfig::load(path).map_err(|e| {
        CliError::usage(e).hint("`tftrail monitor --example-config` prints every setting")
    })?;
    let interval = parse_duration(&a.interval)?;
    let metrics_addr = match &a.metrics {
        None => None,
        Some(_) if a.once => {
            return Err(
                CliError::usage("--metrics serves a running monitor, not --once")
                    .hint("drop --once, or --metrics"),
            )
        }
        Some(m) => {
            let addr: SocketAddr = m.parse().map_err(|_| {
                CliError::usage(format!("--metrics {m:?} is not an address (IP:PORT)"))
                    .hint("e.g. --metrics 127.0.0.1:9464")
            })?;
            if !addr.ip().is_loopback() {
                return Err(CliError::usage(format!(
                    "--metrics {m} is not a loopback address: the metrics are served on loopback only"
                ))
                .hint("use 127.0.0.1:PORT or [::1]:PORT, and a proxy to expose them"));
            }
            Some(addr)
        }
    };
    let location = g.location();
    let trusted = g.trusted_key(&location)?;
    cfg.policy = match a.witnesses.policy(&trusted.key)? {
        Some(p) => Some(p),
        None => match &cfg.witness_policy {
            Some(p) => Some(super::quorum::load_policy(p, &trusted.key)?),
            None => None,
        },
    };
    if cfg.ui_url.is_none() {
        cfg.ui_url = g.server();
    }
    let dir = a
        .state_dir
        .clone()
        .unwrap_or_else(|| memory::default_dir(&location, trusted.key.as_str()));
    let mut mem = Memory::open(&dir, &location).map_err(|e| {
        CliError::failure(e).hint("each log has its own state directory (--state-dir)")
    })?;
    let sender = Sender::new().map_err(CliError::failure)?;

    let mut log = open(&location, &trusted)?;

    let metrics = Arc::new(Mutex::new(Metrics::default()));
    if let Some(addr) = metrics_addr {
        let l = TcpListener::bind(addr)
            .map_err(|e| CliError::failure(format!("cannot listen on {addr}: {e}")))?;
        eprintln!("metrics: http://{}/metrics", l.local_addr().unwrap_or(addr));
        serve_metrics(l, metrics.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    if !a.once {
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, stop.clone())
                .map_err(|e| CliError::failure(format!("cannot handle signals: {e}")))?;
        }
    }
    loop {
        let started = Instant::now();
        let now = time::OffsetDateTime::now_utc();
        if log.is_err() {
            log = open(&location, &trusted)?;
        }
        let rep = match &log {
            Ok(l) => round::round_with(l, &cfg, &mut mem, now, &sender),
            Err(e) => round::failed_open(e, &cfg, &mut mem, now, &sender),
        };
        print_report(&rep, &cfg, a.once);
        if let Ok(mut m) = metrics.lock() {
            m.add(&rep, started.elapsed().as_secs_f64());
        }
        if a.once {
            return Ok(rep.exit_code());
        }
        let until = started + interval;
        while !stop.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        if stop.load(Ordering::Relaxed) {
            eprintln!("monitor: stopped");
            return Ok(0);
        }
    }
}

/// Opens the log. `Err` when the monitor cannot start at all: the location is not a log, or
/// its checkpoint is signed by another key than a default one (the wrong log, not an
/// attack). `Ok(Err)` when a round must report why it cannot read the log (an integrity
/// failure such as a deleted checkpoint, or the store being unreachable): tried again each
/// round.
fn open(location: &str, trusted: &context::TrustedKey) -> Result<Result<Log, LogError>, CliError> {
    let store = tftrail_store::open(location).map_err(crate::remote::store_error)?;
    match Log::open(store, trusted.key.clone()) {
        Ok(l) => match l.head() {
            Err(
                e @ LogError::Checkpoint(
                    tftrail_core::checkpoint::CheckpointError::NotSignedByKey { .. },
                ),
            ) if !trusted.source.is_explicit() => {
                Err(context::key_mismatch(e, trusted, location, false))
            }
            _ => Ok(Ok(l)),
        },
        Err(e @ LogError::NotALog { .. }) => Err(crate::remote::log_error(e)),
        Err(e) => Ok(Err(e)),
    }
}
