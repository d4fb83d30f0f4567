//! Crashes: `append --batch` killed with SIGKILL at random moments, and (at the library level)
//! a store that fails after K object writes, either keeping or losing the failed write. After
//! every crash the next append succeeds, the log verifies, and every acknowledged record is
//! there with exactly its content; an interrupted batch is all in or all out.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{code, describe, Env};
use tftrail_core::checkpoint::{Origin, SigningKey};
use tftrail_core::record::{Actor, Record};
use tftrail_log::{Blob, Log, VerifyOptions};
use tftrail_store::{LocalStore, NewObject, Store, StoreError, Swap, Version, WriterLock};

/// xorshift64*, seeded from the clock (the seed is printed for reproduction).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("TFTRAIL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("seed: TFTRAIL_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

const BATCH: u64 = 2000;

fn batch_lines(it: u64) -> Vec<u8> {
    (0..BATCH)
        .map(|j| format!("{{\"it\":{it},\"n\":{j}}}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Starts `append --batch --json` on `it`'s lines; kills it after `delay` (if still running);
/// returns (first, count) when it printed its result.
fn killed_append(env: &Env, it: u64, delay: Duration) -> Option<(u64, u64)> {
    let mut c = env.command(&["append", "--batch", "--json"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut sin = child.stdin.take().unwrap();
    let data = batch_lines(it);
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&data);
    });
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    assert_eq!(
        code(&out),
        0,
        "printed a result but failed\n{}",
        describe(&out)
    );
    Some((v["first"].as_u64()?, v["count"].as_u64()?))
}

#[test]
fn sigkill_during_batch_append() {
    let env = Env::new();
    env.init();
    let mut rng = Rng::new();
    // How long an uninterrupted batch takes, to spread the kills over it.
    let t = Instant::now();
    let (first, count, _) = env.append_batch(&String::from_utf8(batch_lines(0)).unwrap());
    let runtime = t.elapsed();
    let mut acked: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    for j in 0..count {
        acked.insert(first + j, serde_json::json!({"it": 0, "n": j}));
    }
    let started = Instant::now();
    let mut it = 1u64;
    let (mut completed, mut killed) = (0, 0);
    while it <= 30 || (started.elapsed() < Duration::from_secs(20) && it <= 40) {
        let delay = Duration::from_micros(rng.below(runtime.as_micros() as u64 * 13 / 10 + 1));
        match killed_append(&env, it, delay) {
            Some((first, count)) => {
                completed += 1;
                assert_eq!(count, BATCH);
                for j in 0..count {
                    acked.insert(first + j, serde_json::json!({"it": it, "n": j}));
                }
            }
            None => killed += 1,
        }
        // A normal append right after the crash must succeed (rolling forward what it left).
        let payload = serde_json::json!({"after": it});
        let i = env.append(&payload.to_string());
        assert!(!acked.contains_key(&i), "index {i} handed out twice");
        acked.insert(i, payload);
        it += 1;
    }
    eprintln!(
        "{} iterations in {:.1}s: {completed} completed, {killed} killed (batch takes {runtime:?})",
        it - 1,
        started.elapsed().as_secs_f64()
    );

    env.ok(&["verify"], None);
    // Every record, authenticated against the checkpoint.
    let all: Vec<(u64, serde_json::Value)> = env
        .ok(&["log", "--limit", "0", "--json"], None)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["index"].as_u64().unwrap(), v["record"]["payload"].clone())
        })
        .collect();
    let by_index: BTreeMap<u64, serde_json::Value> = all.into_iter().collect();
    for (i, want) in &acked {
        assert_eq!(by_index.get(i), Some(want), "acknowledged record {i}");
    }
    // Interrupted batches are all in, contiguous and in order, or all out.
    let mut per_batch: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for (i, p) in &by_index {
        if let (Some(b), Some(n)) = (p["it"].as_u64(), p["n"].as_u64()) {
            per_batch.entry(b).or_default().push((*i, n));
        }
    }
    for (b, recs) in per_batch {
        assert_eq!(recs.len() as u64, BATCH, "batch {b} is partly in the log");
        let first = recs[0].0;
        assert!(
            recs.iter()
                .enumerate()
                .all(|(k, &(i, n))| i == first + k as u64 && n == k as u64),
            "batch {b} is not contiguous"
        );
    }
    // `show` agrees for a sample.
    let last = *by_index.keys().last().unwrap();
    for i in [0, 1, last / 2, last] {
        let v: serde_json::Value =
            serde_json::from_str(env.ok(&["show", &i.to_string(), "--json"], None).trim()).unwrap();
        assert_eq!(&v["record"]["payload"], &by_index[&i]);
    }
}

/// How a failing write behaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The write happens, then an error is returned.
    Persisted,
    /// The write is lost and an error is returned.
    Lost,
}

/// A local store whose object write number `fail_at` (counting objects and checkpoint swaps
/// from 0; with staging, each object's staging and its publication count separately) fails, as
/// does every later one: the writer is dead from then on. Without `staging` the log writes
/// claims that carry the entries (as on object storage), with it claims of leaf hashes.
struct FaultStore {
    inner: LocalStore,
    writes: Arc<AtomicU64>,
    fail_at: u64,
    fault: Fault,
    staging: bool,
    /// Set once a batch claim is durable.
    claimed: Arc<AtomicBool>,
}

impl FaultStore {
    /// Counts one write; `gives_name`: it gives `what` its path (not only staging it).
    fn write<T>(
        &self,
        what: &str,
        gives_name: bool,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        let claim = gives_name && what.starts_with("tftrail/batches/");
        if n < self.fail_at {
            let r = f()?;
            self.claimed.fetch_or(claim, Ordering::SeqCst);
            return Ok(r);
        }
        if n == self.fail_at {
            if let Fault::Persisted = self.fault {
                f()?;
                self.claimed.fetch_or(claim, Ordering::SeqCst);
            }
        }
        Err(StoreError::Backend {
            op: "write",
            path: what.to_string(),
            message: format!("injected fault ({:?}) at write {n}", self.fault),
        })
    }
}

impl Store for FaultStore {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(path)
    }
    fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError> {
        for o in objects {
            self.write(&o.path, true, || {
                self.inner.create_all(std::slice::from_ref(o))
            })?;
        }
        Ok(())
    }
    fn can_stage(&self) -> bool {
        self.staging
    }
    fn stage(&self, stage: &str, objects: &[NewObject]) -> Result<(), StoreError> {
        for o in objects {
            self.write(&o.path, false, || {
                self.inner.stage(stage, std::slice::from_ref(o))
            })?;
        }
        Ok(())
    }
    fn publish_staged(&self, stage: &str, objects: &[NewObject]) -> Result<(), StoreError> {
        for o in objects {
            self.write(&o.path, true, || {
                self.inner.publish_staged(stage, std::slice::from_ref(o))
            })?;
        }
        Ok(())
    }
    fn get_staged(&self, stage: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_staged(stage, path)
    }
    fn swap_staged_checkpoint(
        &self,
        stage: &str,
        expected: Option<&Version>,
        new: &[u8],
    ) -> Result<Swap, StoreError> {
        self.write("checkpoint", true, || {
            self.inner.swap_staged_checkpoint(stage, expected, new)
        })
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix)
    }
    fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        self.inner.get_checkpoint()
    }
    fn swap_checkpoint(&self, expected: Option<&Version>, new: &[u8]) -> Result<Swap, StoreError> {
        self.write("checkpoint", true, || {
            self.inner.swap_checkpoint(expected, new)
        })
    }
    fn lock_writers(&self) -> Result<Option<WriterLock>, StoreError> {
        self.inner.lock_writers()
    }
}

fn entry(tag: &str, n: u64, blobs: Vec<tftrail_core::record::BlobRef>) -> Vec<u8> {
    let actor = Actor {
        authenticated: None,
        user: "tester".into(),
        host: "box".into(),
        ci: None,
    };
    Record::new(
        "test",
        "2026-01-01T00:00:00Z",
        actor,
        serde_json::json!({"tag": tag, "n": n}),
        blobs,
    )
    .unwrap()
    .to_entry()
    .unwrap()
}

fn open(dir: &std::path::Path, key: &SigningKey) -> Log {
    Log::open(Box::new(LocalStore::open(dir).unwrap()), key.verifier()).unwrap()
}

fn entries_of(log: &Log) -> Vec<Vec<u8>> {
    let head = log.head().unwrap();
    log.entries(&head.checkpoint, 0, head.checkpoint.size)
        .unwrap()
}

#[test]
fn store_faults_at_every_write_of_an_append() {
    let key = SigningKey::generate(&Origin::new("test.example/faults").unwrap());
    let base = tempfile::tempdir().unwrap();
    tftrail_log::init(&LocalStore::open(base.path()).unwrap(), &key).unwrap();
    let before: Vec<Vec<u8>> = (0..300).map(|n| entry("base", n, vec![])).collect();
    open(base.path(), &key)
        .append(&key, before.clone(), &[], &mut |_, _| {})
        .unwrap();
    // The append under test: fills bundle 1, starts bundle 2, and brings a blob.
    let blob = Blob {
        name: "plan.json".into(),
        data: b"some plan".repeat(100),
    };
    let new: Vec<Vec<u8>> = (0..260)
        .map(|n| {
            entry(
                "new",
                n,
                if n == 0 {
                    vec![blob.reference()]
                } else {
                    vec![]
                },
            )
        })
        .collect();

    let run = |staging: bool,
               fail_at: u64,
               fault: Fault|
     -> (Result<tftrail_log::AppendOutcome, String>, u64, bool) {
        let dir = tempfile::tempdir().unwrap();
        common::copy_tree(base.path(), dir.path());
        let writes = Arc::new(AtomicU64::new(0));
        let claimed = Arc::new(AtomicBool::new(false));
        let store = FaultStore {
            inner: LocalStore::open(dir.path()).unwrap(),
            writes: writes.clone(),
            fail_at,
            fault,
            staging,
            claimed: claimed.clone(),
        };
        let log = Log::open(Box::new(store), key.verifier()).unwrap();
        let res = log
            .append(
                &key,
                new.clone(),
                std::slice::from_ref(&blob),
                &mut |_, _| {},
            )
            .map_err(|e| e.to_string());
        drop(log);
        // Bundles the dead writer left staged (not yet at their paths).
        let staged_bundles = std::fs::read_dir(dir.path().join(".tmp"))
            .map(|d| {
                d.filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    let name = name.to_string_lossy();
                    (name.contains("+tile+entries+") || name.contains("+tftrail+blobs+"))
                        && !dir
                            .path()
                            .join(name.split_once('+').unwrap().1.replace('+', "/"))
                            .exists()
                })
                .count()
            })
            .unwrap_or(0);
        // Recovery: the next writer appends normally.
        let log = open(dir.path(), &key);
        let next = entry("next", 0, vec![]);
        let out = log
            .append(&key, vec![next.clone()], &[], &mut |_, _| {})
            .unwrap_or_else(|e| {
                panic!(
                    "append after a fault at write {fail_at} ({fault:?}, staging: {staging}): {e}"
                )
            });
        let rep = log
            .verify(&VerifyOptions::default(), &mut |_, _| {})
            .unwrap();
        assert!(
            rep.ok(),
            "fault at write {fail_at} ({fault:?}): {:?}",
            rep.problems
        );
        let all = entries_of(&log);
        assert_eq!(
            all[..300],
            before[..],
            "fault at write {fail_at} ({fault:?})"
        );
        // The interrupted append is all in (right after the base) or all out.
        let tail = &all[300..all.len() - 1];
        if res.is_ok() {
            assert_eq!(
                tail,
                &new[..],
                "acknowledged append lost (fault at {fail_at})"
            );
        } else if claimed.load(Ordering::SeqCst) {
            assert!(
                tail == &new[..],
                "durably claimed batch not rolled forward (fault at {fail_at}, {fault:?}, staging: {staging}): {} of {} entries",
                tail.len(),
                new.len()
            );
        } else {
            assert!(
                tail.is_empty() || tail == &new[..],
                "partial append (fault at {fail_at}, {fault:?})"
            );
        }
        assert_eq!(all.last(), Some(&next));
        assert_eq!(out.first, all.len() as u64 - 1);
        if !tail.is_empty() {
            assert_eq!(log.blob(&blob.reference().sha256).unwrap(), blob.data);
        }
        let from_staging = claimed.load(Ordering::SeqCst) && staged_bundles > 0;
        (res, writes.load(Ordering::SeqCst), from_staging)
    };

    for staging in [false, true] {
        // Count the writes of an undisturbed append, then fail at each one in turn.
        let (res, total, _) = run(staging, u64::MAX, Fault::Lost);
        res.unwrap();
        assert!(total >= 6, "only {total} writes");
        let mut recovered_from_staging = 0;
        for fail_at in 0..total {
            for fault in [Fault::Lost, Fault::Persisted] {
                let (res, _, from_staging) = run(staging, fail_at, fault);
                assert!(
                    res.is_err(),
                    "write {fail_at} failed but the append reported success (staging: {staging})"
                );
                recovered_from_staging += usize::from(from_staging);
            }
        }
        // With staging, the writes between the claim and the last bundle's publication
        // leave a durable claim whose bundles are only staged: recovery took them from there.
        if staging {
            assert!(recovered_from_staging >= 2, "{recovered_from_staging}");
        } else {
            assert_eq!(recovered_from_staging, 0);
        }
    }
}
