//! `cargo run --release -p tftrail-bench [-- --quick]`: measures, in one run,
//! - the machine's single-core SHA-256 throughput (the baseline),
//! - durable append throughput to a local store for 128-byte and 1 KiB records at batch sizes
//!   1, 100 and 1,000,
//! - full-verification throughput,
//! - the wall time of one `tftrail append` process,
//!
//! and prints a Markdown table with each figure next to the baseline as a ratio.
//!
//! `--append-only` measures the baseline and 1 KiB appends at batch 1,000 only, alternating
//! the local store's leaf-hash claims with the entry-carrying claims of the object-storage
//! protocol and with the disk's floor (the same entries written as bundles and fsynced, with
//! nothing else), batch by batch (`TFTRAIL_BENCH_APPEND_RUNS=n` rounds, default 3).
//! `--big-batch` measures one `tftrail append --batch` process given 100,000 JSON lines that
//! make 1 KiB records (how users import history), into a new store each time, alternating
//! with the disk's floor for the same entries (their bundles written and fsynced, nothing else)
//! and with one in-process `Log::append` of the same 100,000 entries
//! (`TFTRAIL_BENCH_BIG_RUNS=n` rounds, default 3; medians reported).
//! `--verify-only` measures the baseline and verification only (same table format), for
//! iterating on verification speed; `TFTRAIL_BENCH_VERIFY_RUNS=n` times n verifications
//! instead of one and reports the median.
//! `--server` measures group commit through `tftrail serve` against direct `tftrail append`
//! processes, on a local store and on S3 (moto): see `server.rs`.
//! `--monitor` measures one `tftrail monitor` round over 100,000 new records and a round with
//! nothing new, with `verify` of the same log as the baseline, on a local store and on S3
//! (moto): see `monitor.rs`.
//! `--witness` measures one add-checkpoint to `tftrail witness serve` against the disk's floor
//! for the same durable write: see `witness.rs`.
#![forbid(unsafe_code)]

mod monitor;
mod server;
mod witness;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tftrail_core::checkpoint::{Origin, SigningKey};
use tftrail_core::record::{Actor, Record};
use tftrail_log::{Log, VerifyOptions};
use tftrail_store::{LocalStore, NewObject, Store, StoreError, Swap, Version, WriterLock};

fn sha256_mb_s() -> f64 {
    let buf = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut n = 0u64;
    let mut acc = 0u8;
    while start.elapsed() < Duration::from_millis(1500) {
        acc ^= Sha256::digest(&buf)[0];
        n += 1;
    }
    std::hint::black_box(acc);
    n as f64 / start.elapsed().as_secs_f64()
}

/// A canonical record entry of about `size` bytes.
fn entry(size: usize, i: u64) -> Vec<u8> {
    let actor = Actor {
        authenticated: None,
        user: "bench".into(),
        host: "bench".into(),
        ci: None,
    };
    let base = Record::new(
        "bench",
        "2026-01-01T00:00:00Z",
        actor.clone(),
        serde_json::json!({"i": i, "pad": ""}),
        vec![],
    )
    .unwrap()
    .to_entry()
    .unwrap()
    .len();
    let pad = "x".repeat(size.saturating_sub(base));
    Record::new(
        "bench",
        "2026-01-01T00:00:00Z",
        actor,
        serde_json::json!({"i": i, "pad": pad}),
        vec![],
    )
    .unwrap()
    .to_entry()
    .unwrap()
}

/// The local store as object storage sees the protocol: no staging, so batch claims carry
/// the entries (v1) instead of their leaf hashes (v2). For the comparison in `--append-only`.
struct WithoutStaging(LocalStore);

impl Store for WithoutStaging {
    fn location(&self) -> String {
        self.0.location()
    }
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(path)
    }
    fn get_into(
        &self,
        path: &str,
        buf: &mut Vec<u8>,
    ) -> Result<Option<std::ops::Range<usize>>, StoreError> {
        self.0.get_into(path, buf)
    }
    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        self.0.exists(path)
    }
    fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError> {
        self.0.create_all(objects)
    }
    fn create_after(&self, first: &[NewObject], then: &[NewObject]) -> Result<(), StoreError> {
        self.0.create_after(first, then)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.0.list(prefix)
    }
    fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        self.0.get_checkpoint()
    }
    fn swap_checkpoint(&self, expected: Option<&Version>, new: &[u8]) -> Result<Swap, StoreError> {
        self.0.swap_checkpoint(expected, new)
    }
    fn lock_writers(&self) -> Result<Option<WriterLock>, StoreError> {
        self.0.lock_writers()
    }
}

fn new_log(dir: &std::path::Path, staging: bool) -> (Log, SigningKey) {
    let key = SigningKey::generate(&Origin::new("bench.example/log").unwrap());
    let store = LocalStore::create(dir).unwrap();
    tftrail_log::init(&store, &key).unwrap();
    let store: Box<dyn Store> = if staging {
        Box::new(store)
    } else {
        Box::new(WithoutStaging(store))
    };
    let log = Log::open(store, key.verifier()).unwrap();
    (log, key)
}

/// Appends `total` records of `size` bytes in batches of `batch`; returns records/s.
fn append_rate(size: usize, batch: usize, total: usize) -> f64 {
    let dir = scratch();
    let (log, key) = new_log(&dir, true);
    let batches: Vec<Vec<Vec<u8>>> = (0..total / batch)
        .map(|b| {
            (0..batch)
                .map(|i| entry(size, (b * batch + i) as u64))
                .collect()
        })
        .collect();
    let start = Instant::now();
    for b in batches {
        log.append(&key, b, &[], &mut |_, _| {}).unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Like [`append_rate`], for a log with staging (leaf-hash claims), one without (entry claims), and
/// the disk's floor: the batch's entries written as entry bundles (256 entries a file) and made
/// durable the way the local store does it (each file fsynced, on parallel threads, then the
/// directory), with nothing else: no tiles, claim or checkpoint. The three are appended to in
/// turn, batch by batch, so that all see the same disk. Returns records/s and the median
/// batch in ms for each.
fn append_alternating(size: usize, batch: usize, total: usize) -> [(f64, f64); 3] {
    let logs = [new_log(&scratch(), true), new_log(&scratch(), false)];
    let raw = scratch();
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for b in 0..total / batch {
        let entries: Vec<Vec<u8>> = (0..batch)
            .map(|i| entry(size, (b * batch + i) as u64))
            .collect();
        for (k, (log, key)) in logs.iter().enumerate() {
            let t = Instant::now();
            log.append(key, entries.clone(), &[], &mut |_, _| {})
                .unwrap();
            times[k].push(t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        write_bundles(&raw, b, &entries);
        times[2].push(t.elapsed().as_secs_f64());
    }
    times.map(|mut t| {
        let rate = total as f64 / t.iter().sum::<f64>();
        t.sort_by(f64::total_cmp);
        (rate, t[t.len() / 2] * 1e3)
    })
}

/// The disk's floor for one batch (see [`append_alternating`]).
fn write_bundles(dir: &std::path::Path, batch: usize, entries: &[Vec<u8>]) {
    use std::io::Write;
    let files: Vec<std::fs::File> = entries
        .chunks(256)
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = std::fs::File::create_new(dir.join(format!("{batch}-{i}"))).unwrap();
            f.write_all(&tftrail_core::bundle::encode(chunk)).unwrap();
            f
        })
        .collect();
    std::thread::scope(|s| {
        for f in &files {
            s.spawn(move || f.sync_all().unwrap());
        }
    });
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}

/// A `tftrail` command whose home, store and key are under `home`, output discarded.
fn tftrail_in(exe: &std::path::Path, home: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(exe);
    c.args(args)
        .env("HOME", home)
        .env("TFTRAIL_STORE", home.join("log"))
        .env("TFTRAIL_KEY", home.join("key"))
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Seconds of one `tftrail append --batch` process on `lines` into a new store.
fn big_batch_process(exe: &std::path::Path, lines: &[u8]) -> f64 {
    let home = scratch();
    let cmd = |args: &[&str]| tftrail_in(exe, home.as_path(), args);
    assert!(cmd(&["init", "--origin", "bench.example/big"])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    let mut c = cmd(&["append", "--batch"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = c.stdin.take().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            use std::io::Write;
            sin.write_all(lines).unwrap();
        });
        assert!(c.wait().unwrap().success());
    });
    t.elapsed().as_secs_f64()
}

/// The `--big-batch` rounds: (process, in-process append, disk floor) seconds of each round.
fn big_batch(count: usize, rounds: usize) -> Option<Vec<[f64; 3]>> {
    let exe = std::env::current_exe().ok()?.with_file_name("tftrail");
    if !exe.exists() {
        return None;
    }
    // The same JSON lines the process is given, as entries (padding to about 1 KiB each).
    let pad = "x".repeat(entry(1024, 0).len() - entry(0, 0).len());
    let lines: Vec<u8> = (0..count)
        .flat_map(|i| format!("{{\"i\":{i},\"pad\":\"{pad}\"}}\n").into_bytes())
        .collect();
    let entries: Vec<Vec<u8>> = (0..count).map(|i| entry(1024, i as u64)).collect();
    Some(
        (0..rounds)
            .map(|_| {
                let process = big_batch_process(&exe, &lines);
                let (log, key) = new_log(&scratch(), true);
                let batch = entries.clone();
                let t = Instant::now();
                log.append(&key, batch, &[], &mut |_, _| {}).unwrap();
                let in_process = t.elapsed().as_secs_f64();
                let raw = scratch();
                let t = Instant::now();
                write_bundles(&raw, 0, &entries);
                [process, in_process, t.elapsed().as_secs_f64()]
            })
            .collect(),
    )
}

/// The directory of this run: every benchmark's files stay until the whole run ends. Deleting
/// thousands of files makes ext4 slower to create new ones for a while (new inodes skip
/// recently deleted ones, reading the inode table for each), which would otherwise be charged
/// to the next benchmark.
static RUN_DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();

/// A new directory for one benchmark, removed with the run's directory at the end.
pub(crate) fn scratch() -> PathBuf {
    let run = RUN_DIR.get_or_init(|| tempfile::tempdir_in(bench_dir()).unwrap());
    tempfile::tempdir_in(run.path()).unwrap().keep()
}

fn bench_dir() -> PathBuf {
    std::env::var_os("TFTRAIL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// Builds a log of `count` 1 KiB records and verifies it; returns (entry MB/s, seconds).
fn verify_rate(count: usize) -> (f64, f64) {
    let dir = scratch();
    let (log, key) = new_log(&dir, true);
    let mut i = 0u64;
    while (i as usize) < count {
        let n = 10_000.min(count - i as usize);
        let batch: Vec<Vec<u8>> = (0..n).map(|k| entry(1024, i + k as u64)).collect();
        log.append(&key, batch, &[], &mut |_, _| {}).unwrap();
        i += n as u64;
    }
    // Warm the page cache once, then time a second run (or the median of
    // `TFTRAIL_BENCH_VERIFY_RUNS` runs).
    let _ = log
        .verify(&VerifyOptions::default(), &mut |_, _| {})
        .unwrap();
    let runs: usize = std::env::var("TFTRAIL_BENCH_VERIFY_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut timed: Vec<(f64, u64)> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let rep = log
                .verify(&VerifyOptions::default(), &mut |_, _| {})
                .unwrap();
            let secs = start.elapsed().as_secs_f64();
            assert!(rep.ok(), "{:?}", rep.problems);
            (secs, rep.entry_bytes)
        })
        .collect();
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (secs, bytes) = timed[timed.len() / 2];
    (bytes as f64 / 1e6 / secs, secs)
}

/// Median wall time of one `tftrail append` process, in ms.
fn process_ms(runs: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?.with_file_name("tftrail");
    if !exe.exists() {
        return None;
    }
    let home = scratch();
    let run = |args: &[&str], input: &str| {
        let mut c = tftrail_in(&exe, home.as_path(), args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success());
    };
    run(&["init", "--origin", "bench.example/proc"], "");
    let mut times: Vec<f64> = (0..runs)
        .map(|i| {
            let t = Instant::now();
            run(&["append"], &format!("{{\"run\":{i}}}"));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Some(times[times.len() / 2])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let verify_only = std::env::args().any(|a| a == "--verify-only");
    let append_only = std::env::args().any(|a| a == "--append-only");
    let big_only = std::env::args().any(|a| a == "--big-batch");
    if std::env::args().any(|a| a == "--monitor") {
        monitor::run(quick);
        if let Some(run) = RUN_DIR.get() {
            let _ = std::fs::remove_dir_all(run.path());
        }
        return;
    }
    if std::env::args().any(|a| a == "--witness") {
        witness::run(quick);
        if let Some(run) = RUN_DIR.get() {
            let _ = std::fs::remove_dir_all(run.path());
        }
        return;
    }
    if std::env::args().any(|a| a == "--server") {
        server::run(quick);
        if let Some(run) = RUN_DIR.get() {
            let _ = std::fs::remove_dir_all(run.path());
        }
        return;
    }
    let scale = if quick { 10 } else { 1 };
    let sha = sha256_mb_s();
    println!(
        "SHA-256, one core: {sha:.0} MB/s (baseline; two cores: {:.0} MB/s)\n",
        2.0 * sha
    );
    println!("| benchmark | result | data rate | ratio to baseline |");
    println!("|---|---|---|---|");
    if append_only {
        // Leaf-hash claims (what the local store uses) against claims that carry the entries
        // (the object-storage protocol) and the disk's floor, in turn, batch by batch.
        let runs: usize = std::env::var("TFTRAIL_BENCH_APPEND_RUNS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3);
        for _ in 0..runs {
            let [(hash_rate, hash_ms), (entry_rate, entry_ms), (floor_rate, floor_ms)] =
                append_alternating(1024, 1000, 200_000 / scale);
            for (what, rate, ms) in [
                ("durable append, leaf-hash claims", hash_rate, hash_ms),
                ("durable append, entry claims", entry_rate, entry_ms),
                (
                    "disk floor: the entry bundles alone, fsynced",
                    floor_rate,
                    floor_ms,
                ),
            ] {
                println!(
                    "| {what}, 1024 B records, batch 1000 | {rate:.0} records/s (median batch {ms:.1} ms) | {:.1} MB/s | {:.3} of 1-core SHA-256; {:.2} of the disk floor |",
                    rate * 1024.0 / 1e6,
                    rate * 1024.0 / 1e6 / sha,
                    rate / floor_rate
                );
            }
        }
    }
    if big_only {
        let rounds: usize = std::env::var("TFTRAIL_BENCH_BIG_RUNS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3)
            .max(1);
        let count = 100_000 / scale;
        match big_batch(count, rounds) {
            None => println!("| one big batch | not measured: build the tftrail binary in the same profile first | | |"),
            Some(runs) => {
                let median = |k: usize| {
                    let mut t: Vec<f64> = runs.iter().map(|r| r[k]).collect();
                    t.sort_by(f64::total_cmp);
                    t[t.len() / 2]
                };
                let floor = count as f64 / median(2);
                for (k, what) in [
                    (0, "one `tftrail append --batch` process"),
                    (1, "one `Log::append` in process"),
                    (2, "disk floor: the entry bundles alone, fsynced"),
                ] {
                    let rate = count as f64 / median(k);
                    let all: Vec<String> =
                        runs.iter().map(|r| format!("{:.0}", count as f64 / r[k])).collect();
                    println!(
                        "| {what}, {count} × 1 KiB records, one batch (median of {rounds}: {}) | {rate:.0} records/s | {:.1} MB/s | {:.3} of 1-core SHA-256; {:.2} of the disk floor |",
                        all.join(", "),
                        rate * 1024.0 / 1e6,
                        rate * 1024.0 / 1e6 / sha,
                        rate / floor
                    );
                }
            }
        }
    }
    let sizes: &[usize] = if verify_only || append_only || big_only {
        &[]
    } else {
        &[128, 1024]
    };
    for &size in sizes {
        for batch in [1usize, 100, 1000] {
            let total = match batch {
                1 => 2_000,
                100 => 50_000,
                _ => 200_000,
            } / scale;
            let rate = append_rate(size, batch, total);
            let mb = rate * size as f64 / 1e6;
            println!(
                "| durable append, {size} B records, batch {batch} | {rate:.0} records/s | {mb:.1} MB/s | {:.3} of 1-core SHA-256 |",
                mb / sha
            );
        }
    }
    if !append_only && !big_only {
        let (mbs, secs) = verify_rate(200_000 / scale);
        println!(
            "| verify, {} × 1 KiB records ({secs:.2} s) | {mbs:.0} MB/s | {mbs:.0} MB/s | {:.2} of 2-core SHA-256 |",
            200_000 / scale,
            mbs / (2.0 * sha)
        );
    }
    if !verify_only && !append_only && !big_only {
        match process_ms(if quick { 10 } else { 50 }) {
            Some(ms) => println!("| one `tftrail append` process, start to exit (median) | {ms:.1} ms | | |"),
            None => println!("| one `tftrail append` process | not measured: build the tftrail binary in the same profile first | | |"),
        }
    }
    if let Some(run) = RUN_DIR.get() {
        let _ = std::fs::remove_dir_all(run.path());
    }
}
