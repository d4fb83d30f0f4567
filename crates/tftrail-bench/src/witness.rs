//! `--witness`: the latency of one `POST /add-checkpoint` to a real `tftrail witness serve`
//! process (parse, log signature, consistency proof, the durable state write, the cosignature,
//! and the loopback HTTP round trip, one connection per request), against the disk's floor for
//! the same durability measured in the same run: a ~600-byte file written to a temporary
//! file, fsynced, renamed over the previous one and the directory fsynced, with nothing else.
//! The two alternate in rounds of `TFTRAIL_BENCH_WITNESS_N` (default 50) requests, 4 rounds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use tftrail_core::merkle::hash_b64;

use crate::{entry, new_log, scratch};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn post(addr: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.set_nodelay(true);
    let head = format!(
        "POST /add-checkpoint HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw[9..12]).parse().unwrap()
}

fn floor_write(dir: &Path, data: &[u8]) {
    let mut t = tempfile::NamedTempFile::new_in(dir).unwrap();
    t.write_all(data).unwrap();
    t.as_file().sync_all().unwrap();
    t.persist(dir.join("state.json")).unwrap();
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}

/// Prints one Markdown table.
pub fn run(_quick: bool) {
    let Some(exe) = std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name("tftrail"))
        .filter(|p| p.exists())
    else {
        println!("not measured: build the tftrail binary in the same profile first (cargo build --release -p tftrail-cli)");
        return;
    };
    let n: usize = std::env::var("TFTRAIL_BENCH_WITNESS_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let rounds = 4;
    // A log with one checkpoint per request, and each step's body (old, proof, checkpoint).
    let dir = scratch();
    let (log, key) = new_log(&dir.join("log"), true);
    let mut bodies = Vec::new();
    let mut old = 0u64;
    for i in 0..(n * rounds) as u64 {
        log.append(&key, vec![entry(1024, i)], &[], &mut |_, _| {})
            .unwrap();
        let head = log.head().unwrap();
        let proof = if old == 0 {
            vec![]
        } else {
            log.consistency(&head.checkpoint, old).unwrap()
        };
        let mut b = format!("old {old}\n").into_bytes();
        for h in &proof {
            b.extend_from_slice(hash_b64(h).as_bytes());
            b.push(b'\n');
        }
        b.push(b'\n');
        b.extend_from_slice(&head.note);
        bodies.push(b);
        old = head.checkpoint.size;
    }
    let wdir = dir.join("witness");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let st = Command::new(&exe)
        .args(["witness", "init", "--origin", "bench.example/w", "--dir"])
        .arg(&wdir)
        .env("HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = Command::new(&exe)
        .args(["witness", "serve", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&wdir)
        .arg("--log")
        .arg(key.verifier_key())
        .env("HOME", &home)
        .env("TFTRAIL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        use std::io::BufRead as _;
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "witness did not start"
        );
        if let Some(a) = line.trim().strip_prefix("listening on http://") {
            break a.to_string();
        }
    };
    let floor_dir = dir.join("floor");
    std::fs::create_dir_all(&floor_dir).unwrap();
    let record = vec![b'x'; 600];
    let (mut wit, mut flo) = (Vec::new(), Vec::new());
    let mut next = bodies.iter();
    for _ in 0..rounds {
        for _ in 0..n {
            let b = next.next().unwrap();
            let t = Instant::now();
            assert_eq!(post(&addr, b), 200);
            wit.push(t.elapsed().as_secs_f64() * 1e3);
        }
        for _ in 0..n {
            let t = Instant::now();
            floor_write(&floor_dir, &record);
            flo.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let (mw, mf) = (median(&mut wit), median(&mut flo));
    let p90 = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() * 9 / 10]
    };
    println!("| one add-checkpoint ({} requests, 1 KiB records, log size up to {}) | median | p90 | ratio to floor |", n * rounds, n * rounds);
    println!("|---|---:|---:|---:|");
    println!(
        "| durable state write alone (floor) | {mf:.2} ms | {:.2} ms | 1 |",
        p90(&mut flo)
    );
    println!(
        "| `tftrail witness serve`, over loopback HTTP | {mw:.2} ms | {:.2} ms | {:.2} |",
        p90(&mut wit),
        mw / mf
    );
}
