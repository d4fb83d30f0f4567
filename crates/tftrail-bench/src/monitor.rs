//! `--monitor`: one `tftrail monitor` round over 100,000 new records, and a round with nothing
//! new, on a local store and on S3 (moto), against `tftrail verify` of the same log (the
//! baseline, measured in the same run).
//!
//! Each store gets a log of N records of about 1 KiB (`TFTRAIL_BENCH_MONITOR_RECORDS`, default
//! 100,000; `--quick`: 10,000), appended in batches of 10,000; a tenth of them are Terraform
//! apply intents and as many outcomes with a small state diff, so the rules and the change extraction have work.
//! Then, on a fresh handle of the log whose store counts the requests it makes:
//! - **first round**: the monitor's round with an empty state directory, so all N records are
//!   new (checkpoint, entries authenticated against it, records parsed, changes extracted,
//!   rules evaluated, memory written);
//! - **idle round**: the next round, nothing new (the steady state between runs);
//! - **verify**: `Log::verify` of the whole log (every tile recomputed, every entry and blob).
//!
//! Each is run `TFTRAIL_BENCH_MONITOR_RUNS` times (default 3) in turn; the median is shown.
//! Env: `TFTRAIL_BENCH_MONITOR_STORES` (default `local,s3`), `TFTRAIL_MOTO_SERVER` (for S3).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tftrail_core::checkpoint::{Origin, SigningKey};
use tftrail_core::record::{Actor, Record};
use tftrail_log::{Log, VerifyOptions};
use tftrail_monitor::memory::Memory;
use tftrail_monitor::MonitorConfig;
use tftrail_store::testing::Moto;
use tftrail_store::{NewObject, Store, StoreError, Swap, Version, WriterLock};

/// A store that counts the requests made through it.
struct Counting {
    inner: Box<dyn Store>,
    n: Arc<AtomicU64>,
}

impl Counting {
    fn count(&self) {
        self.n.fetch_add(1, Ordering::Relaxed);
    }
}

impl Store for Counting {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.count();
        self.inner.get(path)
    }
    fn get_into(&self, path: &str, buf: &mut Vec<u8>) -> Result<Option<Range<usize>>, StoreError> {
        self.count();
        self.inner.get_into(path, buf)
    }
    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        self.count();
        self.inner.exists(path)
    }
    fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError> {
        self.count();
        self.inner.create_all(objects)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.count();
        self.inner.list(prefix)
    }
    fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        self.count();
        self.inner.get_checkpoint()
    }
    fn swap_checkpoint(&self, expected: Option<&Version>, new: &[u8]) -> Result<Swap, StoreError> {
        self.count();
        self.inner.swap_checkpoint(expected, new)
    }
    fn lock_writers(&self) -> Result<Option<WriterLock>, StoreError> {
        self.inner.lock_writers()
    }
}

/// Record `i`: a Terraform apply outcome with a state diff (one in ten), else an event of
/// about 1 KiB.
fn record(i: u64) -> Vec<u8> {
    let actor = Actor {
        authenticated: None,
        user: "bench".into(),
        host: "bench-host".into(),
        ci: None,
    };
    let time = "2026-01-05T10:00:00Z";
    let r = if i % 10 == 8 {
        Record::new(
            "terraform.apply.intent",
            time,
            actor,
            serde_json::json!({
                "command": {"operation": "apply", "args": ["apply", "-auto-approve"]},
                "context": {"dir": "/work/app", "workspace": "default", "backend": "local"},
                "plan": {"saved": false},
            }),
            vec![],
        )
    } else if i % 10 == 9 {
        Record::new(
            "terraform.apply.outcome",
            time,
            actor,
            serde_json::json!({
                "intent_index": i - 1,
                "outcome": "success",
                "exit_code": 0,
                "context": {"dir": "/work/app", "workspace": "default", "backend": "local"},
                "state_diff": {
                    "added": [format!("terraform_data.r{i}")],
                    "removed": [],
                    "changed": [{"address": "terraform_data.web", "paths": ["input", "output"]}],
                    "serial": i,
                },
            }),
            vec![],
        )
    } else {
        Record::new(
            "bench",
            time,
            actor,
            serde_json::json!({"i": i, "pad": "x".repeat(900)}),
            vec![],
        )
    };
    r.unwrap().to_entry().unwrap()
}

/// Appends `count` records to a new log at `location`; returns its signing key.
fn build(location: &str, count: u64) -> SigningKey {
    let key = SigningKey::generate(&Origin::new("bench.example/monitor").unwrap());
    let store = tftrail_store::create(location).unwrap();
    tftrail_log::init(store.as_ref(), &key).unwrap();
    let log = Log::open(store, key.verifier()).unwrap();
    let mut i = 0;
    while i < count {
        let n = 10_000.min(count - i);
        let batch: Vec<Vec<u8>> = (i..i + n).map(record).collect();
        log.append(&key, batch, &[], &mut |_, _| {}).unwrap();
        i += n;
    }
    key
}

fn counted(location: &str, key: &SigningKey) -> (Log, Arc<AtomicU64>) {
    let n = Arc::new(AtomicU64::new(0));
    let store = Counting {
        inner: tftrail_store::open(location).unwrap(),
        n: n.clone(),
    };
    let log = Log::open(Box::new(store), key.verifier()).unwrap();
    n.store(0, Ordering::Relaxed);
    (log, n)
}

/// (milliseconds, requests) of the first round, the idle round, and verify.
fn measure(location: &str, key: &SigningKey, count: u64) -> [(f64, u64); 3] {
    let cfg = MonitorConfig::default();
    let dir = crate::scratch();
    let mut mem = Memory::open(&dir, location).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let sender = tftrail_monitor::sinks::Sender::new().unwrap();

    let (log, n) = counted(location, key);
    let t = Instant::now();
    let rep = tftrail_monitor::round::round_with(&log, &cfg, &mut mem, now, &sender);
    let first = (t.elapsed().as_secs_f64() * 1e3, n.load(Ordering::Relaxed));
    assert_eq!(rep.records, count, "{rep:?}");
    assert!(!rep.integrity && rep.failure.is_none(), "{rep:?}");

    let (log, n) = counted(location, key);
    let t = Instant::now();
    let rep = tftrail_monitor::round::round_with(&log, &cfg, &mut mem, now, &sender);
    let idle = (t.elapsed().as_secs_f64() * 1e3, n.load(Ordering::Relaxed));
    assert_eq!(rep.records, 0, "{rep:?}");

    let (log, n) = counted(location, key);
    let t = Instant::now();
    let v = log
        .verify(&VerifyOptions::default(), &mut |_, _| {})
        .unwrap();
    let verify = (t.elapsed().as_secs_f64() * 1e3, n.load(Ordering::Relaxed));
    assert!(v.ok(), "{:?}", v.problems);
    [first, idle, verify]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the benchmark and prints a Markdown table.
pub fn run(quick: bool) {
    let count: u64 = std::env::var("TFTRAIL_BENCH_MONITOR_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 10_000 } else { 100_000 });
    let runs: usize = std::env::var("TFTRAIL_BENCH_MONITOR_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let stores = std::env::var("TFTRAIL_BENCH_MONITOR_STORES").unwrap_or("local,s3".into());
    let mut moto: Option<Moto> = None;
    println!("| store | what | records | median ms | requests | ratio to verify (time) |");
    println!("|---|---|---|---|---|---|");
    for kind in stores.split(',') {
        let location = match kind {
            "local" => crate::scratch().join("log").display().to_string(),
            "s3" => {
                let m = moto.get_or_insert_with(|| {
                    let m = Moto::start();
                    m.apply_env();
                    m.create_audit_bucket("tftrail-bench-monitor", 1);
                    m
                });
                let _ = m;
                "s3://tftrail-bench-monitor/log".to_string()
            }
            other => panic!("unknown store {other:?} in TFTRAIL_BENCH_MONITOR_STORES"),
        };
        let t = Instant::now();
        let key = build(&location, count);
        eprintln!(
            "{kind}: {count} records appended in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let all: Vec<[(f64, u64); 3]> =
            (0..runs).map(|_| measure(&location, &key, count)).collect();
        let ms = |k: usize| median(all.iter().map(|m| m[k].0).collect());
        let reqs = |k: usize| all[0][k].1;
        let verify = ms(2);
        let name = if kind == "s3" { "S3 (moto)" } else { "local" };
        for (k, what, records) in [
            (0, "monitor round, all records new", count),
            (1, "monitor round, nothing new", 0),
            (2, "baseline: verify of the whole log", count),
        ] {
            println!(
                "| {name} | {what} | {records} | {:.1} | {} | {:.3} |",
                ms(k),
                reqs(k),
                ms(k) / verify
            );
        }
    }
}
