//! `--ui`: the web UI's pages at 1,000,000 records (`TFTRAIL_BENCH_UI_RECORDS`; `--quick`:
//! 100,000), served by a real `tftrail serve` on loopback, against `GET /healthz` and
//! `GET /v1/records/N` measured in the same run.
//!
//! The log is built directly through `tftrail-log` (batches of 10,000) in a local store: seven
//! in ten records are small events, and the rest Terraform plans, apply intents and outcomes
//! with state diffs and values, by 50 users on 7 hosts, four in five authenticated as one of
//! 20 tokens, in 5 workspaces; one record in 100,000 also changes `aws_instance.rare`. The
//! server indexes it on the first request (timed once, reported) and verifies it in full at
//! start; both are waited for. Then, round-robin (`TFTRAIL_BENCH_UI_ROUNDS`, default 200),
//! one keep-alive connection times each page; medians and 95th percentiles are reported.

use std::time::{Duration, Instant};

use tftrail_core::checkpoint::SigningKey;
use tftrail_core::record::{Actor, Record};
use tftrail_log::Log;

use crate::server::{must, tftrail, Client, Server};

const WORKSPACES: [&str; 5] = ["default", "staging", "prod", "dev", "qa"];

fn time_of(i: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(1_767_225_600 + i as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Record `i` of the benchmark's log.
fn record(i: u64) -> Vec<u8> {
    let actor = Actor {
        authenticated: (i % 5 != 0).then(|| {
            serde_json::json!({"by": "token", "name": format!("deploy-{}", i % 20), "role": "writer", "token": "0123456789abcdef"})
        }),
        user: format!("user{}", i % 50),
        host: format!("host{}", i % 7),
        ci: None,
    };
    let ws = WORKSPACES[(i % 5) as usize];
    let ctx = serde_json::json!({"dir": "/work/app", "workspace": ws, "backend": "local"});
    let (kind, payload) = match i % 10 {
        7 => (
            "terraform.plan",
            serde_json::json!({
                "command": {"operation": "plan", "args": ["plan", "-out=p"]},
                "context": ctx, "outcome": "success", "exit_code": 0,
                "plan": {"sha256": format!("{i:064x}"), "summary": {
                    "counts": {"add": 0, "change": 1, "destroy": 0, "replace": 0, "import": 0},
                    "resource_changes": [{"address": "terraform_data.web", "action": "update",
                        "changed_paths": ["input"], "before": {"input": "small"}, "after": {"input": "large"}}]}},
            }),
        ),
        8 => (
            "terraform.apply.intent",
            serde_json::json!({
                "command": {"operation": "apply", "args": ["apply", "p"]},
                "context": ctx, "plan": {"saved": true, "sha256": format!("{:064x}", i - 1), "plan_index": i - 1},
            }),
        ),
        9 => {
            let mut added = vec![format!("terraform_data.r{i}")];
            if i % 100_000 == 99_999 {
                added.push("aws_instance.rare".into());
            }
            (
                "terraform.apply.outcome",
                serde_json::json!({
                    "intent_index": i - 1, "outcome": if i % 30 == 29 { "failed" } else { "success" },
                    "exit_code": 0, "context": ctx,
                    "state_diff": {
                        "added": added, "removed": [],
                        "changed": [{"address": "terraform_data.web", "paths": ["input", "output"]}],
                        "serial": [i, i + 1],
                        "values": [{"address": "terraform_data.web", "change": "changed", "attributes": [
                            {"path": "input", "before": "small", "after": "large"},
                            {"path": "password", "before": "(sensitive value)", "after": "(sensitive value)"}]}],
                    },
                }),
            )
        }
        _ => (
            "bench.event",
            serde_json::json!({"i": i, "pad": "x".repeat(200)}),
        ),
    };
    Record::new(kind, &time_of(i), actor, payload, vec![])
        .unwrap()
        .to_entry()
        .unwrap()
}

fn median_p95(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

pub fn run(quick: bool) {
    let exe = std::env::current_exe().unwrap().with_file_name("tftrail");
    assert!(
        exe.exists(),
        "build the tftrail binary first: cargo build --release -p tftrail-cli"
    );
    let count: u64 = std::env::var("TFTRAIL_BENCH_UI_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let rounds: usize = std::env::var("TFTRAIL_BENCH_UI_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 50 } else { 200 });

    let home = crate::scratch();
    let store = home.join("log").display().to_string();
    let mut c = tftrail(&exe, &home, &store);
    c.args(["init", "--origin", "bench.example/ui"]);
    must(c, "tftrail init");
    let key = SigningKey::parse(std::fs::read_to_string(home.join("key")).unwrap().trim()).unwrap();
    let t = Instant::now();
    {
        let log = Log::open(tftrail_store::open(&store).unwrap(), key.verifier()).unwrap();
        let mut i = 0;
        while i < count {
            let n = 10_000.min(count - i);
            let batch: Vec<Vec<u8>> = (i..i + n).map(record).collect();
            log.append(&key, batch, &[], &mut |_, _| {}).unwrap();
            i += n;
        }
    }
    let built = t.elapsed();
    eprintln!(
        "ui: built a log of {count} records in {:.0} s",
        built.as_secs_f64()
    );

    let server = Server::start(&exe, &home, &store);
    let mut client = Client::connect(&server.addr);
    // The first request builds the server's index (its request may time out: the build goes
    // on, and the next request waits for it).
    let t = Instant::now();
    loop {
        let (s, _) = client.request("GET", "/v1/records?limit=1", &server.token, b"");
        if s == 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "the index was not built in 30 min ({s})"
        );
        client = Client::connect(&server.addr);
    }
    let indexed = t.elapsed();
    eprintln!("ui: indexed in {:.0} s", indexed.as_secs_f64());
    // And the full verification at start.
    let t = Instant::now();
    loop {
        let (s, body) = client.request("GET", "/status", &server.token, b"");
        let body = String::from_utf8_lossy(&body);
        assert_eq!(s, 200, "{body}");
        if body.contains("Last verification") && !body.contains("is running") {
            assert!(body.contains("intact"), "the log verifies");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "not verified in 30 min"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "ui: verified at start ({:.0} s more)",
        t.elapsed().as_secs_f64()
    );

    let mid = count / 2 + 9;
    let targets: Vec<(&str, String)> = vec![
        ("`GET /healthz` (baseline)", "/healthz".into()),
        (
            "`GET /v1/records/N` (baseline)",
            format!("/v1/records/{mid}"),
        ),
        ("timeline `/`, no filter", "/".into()),
        (
            "timeline, page at `?before=N/2`",
            format!("/?before={}", count / 2),
        ),
        (
            "timeline, rare resource (1 in 100,000)",
            "/?resource=aws_instance.rare".into(),
        ),
        (
            "timeline, actor + kind",
            "/?actor=deploy-9&kind=apply".into(),
        ),
        (
            "timeline, workspace + outcome",
            "/?workspace=qa&outcome=failed".into(),
        ),
        (
            "record page `/records/N` (outcome)",
            format!("/records/{mid}"),
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); targets.len()];
    let mut sizes = vec![0usize; targets.len()];
    for _ in 0..rounds {
        for (k, (_, path)) in targets.iter().enumerate() {
            let t = Instant::now();
            let (s, body) = client.request("GET", path, &server.token, b"");
            times[k].push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&body));
            sizes[k] = body.len();
        }
    }
    let base = median_p95(times[0].clone()).0;
    let api = median_p95(times[1].clone()).0;
    println!("\n## Web UI at {count} records ({rounds} rounds, one keep-alive connection)\n");
    println!(
        "Log built in {:.0} s, indexed by the server in {:.0} s (once).\n",
        built.as_secs_f64(),
        indexed.as_secs_f64()
    );
    println!("| page | median ms | p95 ms | ×healthz | ×/v1/records/N | bytes |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (k, (name, _)) in targets.iter().enumerate() {
        let (m, p) = median_p95(times[k].clone());
        println!(
            "| {name} | {m:.2} | {p:.2} | {:.1} | {:.1} | {} |",
            m / base,
            m / api,
            sizes[k]
        );
    }
    server.stop();
}
