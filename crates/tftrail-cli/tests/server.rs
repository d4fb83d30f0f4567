//! The team server, as a real `tftrail serve` process on loopback: credentials and roles,
//! OIDC from a local issuer, the authenticated actor, refused requests recorded, limits,
//! group commit under concurrent clients, SIGKILL and SIGTERM, two replicas on one S3 bucket.

mod common;

use std::time::Duration;

use common::server::Server;
use common::{code, describe, Env};
use serde_json::{json, Value};
use tftrail_server::testing::{TestIssuer, TestKey};

/// A log in `env` and a server on it; returns (server, verifier key, an admin token).
fn start(env: &Env, args: &[&str]) -> (Server, String, String) {
    let vkey = env.init();
    // The tokens file exists before the server loads it: the admin's token is made first.
    let admin = env.token("admin", "root");
    (env.serve(args, &[]), vkey, admin)
}

/// The `server.access.denied` records, waiting (at most `wait`) until `want` refusals are
/// counted in them.
fn denied(s: &Server, token: &str, want: u64, wait: Duration) -> Vec<Value> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let recs: Vec<Value> = s
            .records(token)
            .into_iter()
            .filter(|r| r["record"]["kind"] == "server.access.denied")
            .collect();
        let n: u64 = recs
            .iter()
            .map(|r| r["record"]["payload"]["count"].as_u64().unwrap_or(0))
            .sum();
        if n >= want || std::time::Instant::now() > deadline {
            return recs;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn roles_and_refusals_each_recorded() {
    let env = Env::new();
    std::fs::write(
        env.path("server.toml"),
        "[limits]\ndenied_window_secs = 1\n",
    )
    .unwrap();
    let cfg = env.path("server.toml");
    let (s, _, admin) = start(&env, &["--config", cfg.to_str().unwrap()]);
    let writer = env.token("writer", "ci");
    let reader = env.token("reader", "auditor-ro");

    // A writer appends, and cannot manage.
    let (st, v) = s.append(&writer, json!({"n": 1}));
    assert_eq!(st, 200, "{v}");
    let i = v["first"].as_u64().unwrap();
    assert_eq!(s.request("GET", "/v1/tokens", Some(&writer), b"").0, 403);
    // An admin manages; the listing holds no secret.
    let (st, body) = s.request("GET", "/v1/tokens", Some(&admin), b"");
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains("\"ci\"") && !body.contains(&writer[8..]),
        "{body}"
    );
    // A reader reads and cannot append.
    assert_eq!(
        s.request("GET", &format!("/v1/records/{i}"), Some(&reader), b"")
            .0,
        200
    );
    let (st, v) = s.append(&reader, json!({"n": 2}));
    assert_eq!(st, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("reader"), "{v}");

    // No credential, a garbled one, an unknown token: 401 with a challenge.
    let (st, h, b) = s.exchange("GET", "/v1/checkpoint", "", b"");
    assert_eq!(st, 401, "{b}");
    assert!(h.contains("www-authenticate: bearer"), "{h}");
    assert_eq!(
        s.raw(
            "GET",
            "/v1/checkpoint",
            "authorization: Bearer %%%garbled\r\n",
            b""
        )
        .0,
        401
    );
    let unknown = format!("tftrail_{}", "A".repeat(43));
    assert_eq!(
        s.request("GET", "/v1/checkpoint", Some(&unknown), b"").0,
        401
    );
    // Basic auth with the token as password (Terraform's http backend) works.
    let basic = base64_basic("terraform", &reader);
    assert_eq!(
        s.raw(
            "GET",
            "/v1/checkpoint",
            &format!("authorization: Basic {basic}\r\n"),
            b""
        )
        .0,
        200
    );

    // Revoked: refused on the next request, no restart.
    env.ok(
        &[
            "token",
            "revoke",
            "ci",
            "--tokens",
            env.tokens_file().to_str().unwrap(),
        ],
        None,
    );
    let (st, v) = s.append(&writer, json!({"n": 3}));
    assert_eq!(st, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");

    // Expired: a token whose expiry has passed (the file edited as time would).
    let late = env.token("writer", "late");
    let f = env.tokens_file();
    let text = std::fs::read_to_string(&f).unwrap();
    let edited = expire(&text, "late");
    std::fs::write(&f, edited).unwrap();
    let (st, v) = s.append(&late, json!({"n": 4}));
    assert_eq!(st, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");

    // Every refusal is in the log: 403 ×2, 401 ×5 (coalesced within the window, counted).
    let recs = denied(&s, &admin, 7, Duration::from_secs(10));
    let total: u64 = recs
        .iter()
        .map(|r| r["record"]["payload"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 7, "{recs:#?}");
    let all = serde_json::to_string(&recs).unwrap();
    for needle in [
        "revoked",
        "expired",
        "unknown token",
        "no credential",
        "reader",
    ] {
        assert!(all.contains(needle), "{needle} not recorded: {all}");
    }
    assert!(
        !all.contains(&unknown[8..]) && !all.contains(&writer[8..]),
        "a secret was recorded"
    );
    // No credential reaches storage: every stored byte (log, blobs, claims, the tokens file).
    for (path, bytes) in common::snapshot(&env.store).into_iter().chain([(
        "tokens.toml".to_string(),
        std::fs::read(env.tokens_file()).unwrap(),
    )]) {
        let text = String::from_utf8_lossy(&bytes);
        for secret in [&writer, &reader, &admin, &late, &unknown] {
            assert!(!text.contains(&secret[8..]), "a token is stored in {path}");
        }
    }
    for r in &recs {
        assert_eq!(r["record"]["actor"]["authenticated"]["by"], "server");
        assert_eq!(r["record"]["payload"]["source"], "127.0.0.1");
    }
    // Token changes are recorded too.
    let kinds: Vec<String> = s
        .records(&admin)
        .iter()
        .map(|r| r["record"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "server.token.revoked"),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| k == "server.token.created"),
        "{kinds:?}"
    );
}

fn base64_basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

/// The tokens file with `name`'s entry expiring in the past.
fn expire(text: &str, name: &str) -> String {
    let mut out = String::new();
    let mut in_entry = false;
    for line in text.lines() {
        if line.trim_start().starts_with("name") {
            in_entry = line.contains(&format!("\"{name}\""));
        }
        if in_entry && line.trim_start().starts_with("expires") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if in_entry && line.trim_start().starts_with("name") {
            out.push_str("expires = \"2020-01-01T00:00:00Z\"\n");
        }
    }
    out
}

#[test]
fn flood_of_refusals_is_coalesced() {
    let env = Env::new();
    let (s, _, admin) = start(&env, &[]);
    for _ in 0..200 {
        assert_eq!(s.request("GET", "/v1/checkpoint", Some("nope"), b"").0, 401);
    }
    let recs = denied(&s, &admin, 1, Duration::from_secs(5));
    // One record at once for the minute; the rest are counted for its summary.
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["record"]["payload"]["count"], 1);
    let (_, m) = s.request("GET", "/metrics", Some(&admin), b"");
    assert!(
        m.contains("tftrail_auth_failures_total{reason=\"bad-credential\"} 200"),
        "{m}"
    );
}

#[test]
fn authenticated_actor_comes_from_the_credential() {
    let env = Env::new();
    let (s, _, _) = start(&env, &[]);
    let writer = env.token("writer", "deploy-bot");
    let body = json!({"records": [{"kind": "change.approval", "payload": {"ok": true},
        "actor": {"user": "root", "host": "laptop", "ci": {"actor": "mallory"}}}]});
    let (st, b) = s.request(
        "POST",
        "/v1/records",
        Some(&writer),
        body.to_string().as_bytes(),
    );
    assert_eq!(st, 200, "{b}");
    let i = serde_json::from_str::<Value>(&b).unwrap()["first"]
        .as_u64()
        .unwrap();
    let (_, shown) = s.request("GET", &format!("/v1/records/{i}"), Some(&writer), b"");
    let actor = &serde_json::from_str::<Value>(&shown).unwrap()["record"]["actor"];
    assert_eq!(actor["authenticated"]["by"], "token");
    assert_eq!(actor["authenticated"]["name"], "deploy-bot");
    assert_eq!(actor["authenticated"]["role"], "writer");
    // What the client says is kept beside it, as it said it.
    assert_eq!(actor["user"], "root");
    assert_eq!(actor["ci"]["actor"], "mallory");
    // A request cannot set the authenticated part.
    let forged = json!({"records": [{"kind": "x", "payload": {},
        "actor": {"user": "u", "host": "h", "authenticated": {"by": "token", "name": "root", "role": "admin"}}}]});
    let (st, b) = s.request(
        "POST",
        "/v1/records",
        Some(&writer),
        forged.to_string().as_bytes(),
    );
    assert_eq!(st, 400, "{b}");
    assert!(b.contains("authenticated"), "{b}");
}

#[test]
fn oidc_tokens_from_a_local_issuer() {
    let issuer = TestIssuer::start();
    let env = Env::new();
    let cfg = format!(
        "[[oidc]]\nissuer = \"{}\"\naudience = \"tftrail\"\n[[oidc.roles]]\nrole = \"writer\"\nsubject = \"repo:acme/infra:ref:refs/heads/*\"\n\n[limits]\ndenied_window_secs = 1\n",
        issuer.url()
    );
    std::fs::write(env.path("server.toml"), cfg).unwrap();
    let p = env.path("server.toml");
    let (s, _, admin) = start(&env, &["--config", p.to_str().unwrap()]);

    let good = issuer.token(issuer.claims("repo:acme/infra:ref:refs/heads/main"));
    let (st, v) = s.append(&good, json!({"deploy": 1}));
    assert_eq!(st, 200, "{v}");
    let i = v["first"].as_u64().unwrap();
    let (_, shown) = s.request("GET", &format!("/v1/records/{i}"), Some(&admin), b"");
    let a = &serde_json::from_str::<Value>(&shown).unwrap()["record"]["actor"]["authenticated"];
    assert_eq!(a["by"], "oidc");
    assert_eq!(a["issuer"], issuer.url());
    assert_eq!(a["subject"], "repo:acme/infra:ref:refs/heads/main");
    assert_eq!(a["repository"], "acme/infra");
    assert_eq!(a["run_id"], "4242");
    assert_eq!(a["role"], "writer");

    let mut expired = issuer.claims("repo:acme/infra:ref:refs/heads/main");
    expired["exp"] = json!(expired["iat"].as_i64().unwrap() - 3600);
    expired["nbf"] = json!(expired["iat"].as_i64().unwrap() - 7200);
    let mut other_aud = issuer.claims("repo:acme/infra:ref:refs/heads/main");
    other_aud["aud"] = json!("someone-else");
    let cases = [
        (issuer.token(expired), 401, "expired"),
        (issuer.token(other_aud), 401, "aud"),
        (
            issuer.token_with(
                TestKey::Stranger,
                issuer.claims("repo:acme/infra:ref:refs/heads/main"),
            ),
            401,
            "key",
        ),
        (
            issuer.token(issuer.claims("repo:evil/fork:ref:refs/heads/main")),
            403,
            "no role",
        ),
    ];
    for (tok, want, needle) in &cases {
        let (st, v) = s.append(tok, json!({"deploy": 2}));
        assert_eq!(st, *want, "{needle}: {v}");
        assert!(
            v["error"].as_str().unwrap().to_lowercase().contains(needle),
            "{needle}: {v}"
        );
    }
    let recs = denied(&s, &admin, 4, Duration::from_secs(10));
    let total: u64 = recs
        .iter()
        .map(|r| r["record"]["payload"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 4, "{recs:#?}");
}

#[test]
fn bad_input_and_limits_answer_json_and_store_nothing() {
    let env = Env::new();
    std::fs::write(
        env.path("server.toml"),
        "[limits]\nmax_body_bytes = 2048\nmax_blob_bytes = 4096\nmax_records_per_request = 3\nheader_timeout_secs = 1\nmax_connections = 4\n",
    )
    .unwrap();
    let p = env.path("server.toml");
    let (s, _, _) = start(&env, &["--config", p.to_str().unwrap()]);
    let w = env.token("writer", "w");
    let size_before = checkpoint_size(&s, &w);
    let post = |body: &[u8]| s.request("POST", "/v1/records", Some(&w), body);
    for (body, want, needle) in [
        (b"{not json".to_vec(), 400, "not a valid append"),
        (br#"{"records":[]}"#.to_vec(), 400, "no records"),
        (br#"{"records":[{"kind":"BAD KIND","payload":{}}]}"#.to_vec(), 400, "record 1"),
        (br#"{"records":[{"kind":"k","payload":[1]}]}"#.to_vec(), 400, "record 1"),
        (br#"{"records":[{"kind":"k","payload":{}}],"extra":1}"#.to_vec(), 400, "unknown field"),
        (format!(r#"{{"records":[{{"kind":"k","payload":{{"pad":"{}"}}}}]}}"#, "x".repeat(4000)).into_bytes(), 413, "limit"),
        (br#"{"records":[{"kind":"k","payload":{}},{"kind":"k","payload":{}},{"kind":"k","payload":{}},{"kind":"k","payload":{}}]}"#.to_vec(), 413, "limit is 3"),
        (format!(r#"{{"records":[{{"kind":"k","payload":{{}},"blobs":[{{"name":"plan.json","sha256":"{}","size":3}}]}}]}}"#, "ab".repeat(32)).into_bytes(), 400, "not stored"),
    ] {
        let (st, b) = post(&body);
        assert_eq!(st, want, "{needle}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap_or_else(|_| panic!("not JSON: {b}"));
        assert!(v["error"].as_str().unwrap().contains(needle), "{needle}: {b}");
    }
    // Blobs: hash checked, size limited.
    let (st, b) = s.request(
        "PUT",
        &format!("/v1/blobs/{}", "ab".repeat(32)),
        Some(&w),
        b"hello",
    );
    assert_eq!(st, 400, "{b}");
    let (st, b) = s.request(
        "PUT",
        &format!("/v1/blobs/{}", sha256_hex(&[7u8; 5000])),
        Some(&w),
        &[7u8; 5000],
    );
    assert_eq!(st, 413, "{b}");
    // Unknown endpoints and bad paths are JSON too.
    let (st, b) = s.request("GET", "/v1/records/notanumber", Some(&w), b"");
    assert!(st == 400 || st == 404, "{st} {b}");
    assert!(serde_json::from_str::<Value>(&b).is_ok(), "{b}");
    assert_eq!(
        s.request("GET", "/log/../../etc/passwd", Some(&w), b"").0,
        404
    );
    assert_eq!(s.request("GET", "/nothing", Some(&w), b"").0, 404);
    // Nothing above was appended.
    assert_eq!(checkpoint_size(&s, &w), size_before);

    // A slow client that never finishes its headers is cut off.
    use std::io::{Read, Write};
    let mut slow = std::net::TcpStream::connect(&s.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "a slow client held its connection"
    );
    // Too many connections: the ones over the limit get a JSON 503.
    let idle: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (st, b) = s.request("GET", "/healthz", None, b"");
    assert_eq!(st, 503, "{b}");
    assert!(b.contains("too many connections"), "{b}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.request("GET", "/healthz", None, b"").0, 200);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn checkpoint_size(s: &Server, token: &str) -> u64 {
    let (st, b) = s.request("GET", "/v1/checkpoint", Some(token), b"");
    assert_eq!(st, 200, "{b}");
    serde_json::from_str::<Value>(&b).unwrap()["size"]
        .as_u64()
        .unwrap()
}

#[test]
fn log_paths_are_served_with_cache_headers_and_blobs_round_trip() {
    let env = Env::new();
    let (s, _, _) = start(&env, &[]);
    let w = env.token("writer", "w");
    let r = env.token("reader", "r");
    let blob = b"plan bytes".to_vec();
    let sha = sha256_hex(&blob);
    let (st, b) = s.request("PUT", &format!("/v1/blobs/{sha}"), Some(&w), &blob);
    assert_eq!(st, 201, "{b}");
    let body = json!({"records": [{"kind": "k", "payload": {}, "blobs": [{"name": "plan.json", "sha256": sha, "size": blob.len()}]}], "proofs": true});
    let (st, b) = s.request("POST", "/v1/records", Some(&w), body.to_string().as_bytes());
    assert_eq!(st, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert!(
        v["proofs"][0]
            .as_str()
            .unwrap()
            .starts_with("c2sp.org/tlog-proof@v1"),
        "{v}"
    );
    // A wrong size for a stored blob is refused.
    let bad = json!({"records": [{"kind": "k", "payload": {}, "blobs": [{"name": "plan.json", "sha256": sha, "size": 3}]}]});
    assert_eq!(
        s.request("POST", "/v1/records", Some(&w), bad.to_string().as_bytes())
            .0,
        400
    );
    assert_eq!(
        s.request("GET", &format!("/v1/blobs/{sha}"), Some(&r), b""),
        (200, "plan bytes".to_string())
    );
    let (st, h, _) = s.exchange(
        "GET",
        "/log/checkpoint",
        &format!("authorization: Bearer {r}\r\n"),
        b"",
    );
    assert_eq!(st, 200);
    assert!(h.contains("cache-control: no-cache"), "{h}");
    let size = checkpoint_size(&s, &r);
    let (st, h, _) = s.exchange(
        "GET",
        &format!("/log/tile/0/000.p/{size}"),
        &format!("authorization: Bearer {r}\r\n"),
        b"",
    );
    assert_eq!(st, 200, "{h}");
    assert!(h.contains("immutable"), "{h}");
    // Reads need a credential unless --public-read.
    assert_eq!(s.request("GET", "/log/checkpoint", None, b"").0, 401);
}

#[test]
fn public_read_needs_no_credential_but_writes_do() {
    let env = Env::new();
    let (s, _, _) = start(&env, &["--public-read"]);
    assert_eq!(s.request("GET", "/log/checkpoint", None, b"").0, 200);
    assert_eq!(s.request("GET", "/v1/records", None, b"").0, 200);
    let body = json!({"records": [{"kind": "k", "payload": {}}]});
    assert_eq!(
        s.request("POST", "/v1/records", None, body.to_string().as_bytes())
            .0,
        401
    );
}

#[test]
fn sigkill_under_load_loses_nothing_acknowledged_and_sigterm_exits_cleanly() {
    let env = Env::new();
    let (mut s, vkey, _) = start(&env, &[]);
    let w = env.token("writer", "w");
    // Load from 8 threads; every acknowledged record is remembered.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u64, u64)>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hs = Vec::new();
    for t in 0..8u64 {
        let (addr, w, acked, stop) = (s.addr.clone(), w.clone(), acked.clone(), stop.clone());
        hs.push(std::thread::spawn(move || {
            let probe = Server::probe(&addr);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = t * 1_000_000 + n;
                n += 1;
                match probe.try_append(&w, json!({"id": id})) {
                    Some(i) => acked.lock().unwrap().push((i, id)),
                    None => break,
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    s.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hs {
        h.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "too little load: {}", acked.len());
    // The log verifies, and every acknowledged record is where the server said.
    let out = env.tftrail(&["verify", "--key", &vkey], None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let mut s = env.serve(&[], &[]);
    let all = s.records(&w);
    for (i, id) in &acked {
        let r = all
            .iter()
            .find(|r| r["index"] == *i)
            .unwrap_or_else(|| panic!("record {i} lost"));
        assert_eq!(r["record"]["payload"]["id"], *id);
    }
    // SIGTERM: exits 0.
    let status = s.terminate();
    assert!(status.success(), "{status:?}\n{}", s.stderr.lock().unwrap());
}

impl Server {
    /// A handle for another thread (no process).
    fn probe(addr: &str) -> Probe {
        Probe {
            addr: addr.to_string(),
        }
    }
}

struct Probe {
    addr: String,
}

impl Probe {
    /// Appends one record; `None` when the server is gone.
    fn try_append(&self, token: &str, payload: Value) -> Option<u64> {
        use std::io::{Read, Write};
        let body = json!({"records": [{"kind": "load", "payload": payload}]}).to_string();
        let mut c = std::net::TcpStream::connect(&self.addr).ok()?;
        let req = format!("POST /v1/records HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        c.write_all(req.as_bytes()).ok()?;
        let mut resp = String::new();
        c.read_to_string(&mut resp).ok()?;
        if !resp.starts_with("HTTP/1.1 200") {
            return None;
        }
        let b = resp.split_once("\r\n\r\n")?.1;
        serde_json::from_str::<Value>(b).ok()?["first"].as_u64()
    }
}

/// `clients` processes of `tftrail append` through the servers (round robin), `each`
/// records apiece; returns their payload ids.
fn append_through(env: &Env, servers: &[&Server], token: &str, clients: u64, each: u64) {
    let mut children = Vec::new();
    for c in 0..clients {
        let s = servers[(c as usize) % servers.len()];
        let script = format!(
            "for i in $(seq 1 {each}); do echo '{{\"client\":{c},\"n\":'$i'}}' | \"$1\" append --kind load || exit 1; done"
        );
        let cmd = env.client(s, token, &[]);
        let prog = cmd.get_program().to_owned();
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", &script, "sh"]).arg(prog);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        sh.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        children.push(sh.spawn().unwrap());
    }
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every (client, n) of `load` records, checking each appears exactly once.
fn loads_exactly_once(s: &Server, token: &str, clients: u64, each: u64) {
    let recs = s.records(token);
    let mut seen = std::collections::BTreeMap::new();
    for r in recs.iter().filter(|r| r["record"]["kind"] == "load") {
        let p = &r["record"]["payload"];
        let k = (p["client"].as_u64().unwrap(), p["n"].as_u64().unwrap());
        *seen.entry(k).or_insert(0) += 1;
        assert_eq!(r["record"]["actor"]["authenticated"]["name"], "ci");
    }
    assert_eq!(seen.len() as u64, clients * each, "records missing");
    assert!(seen.values().all(|&n| n == 1), "a record appears twice");
}

#[test]
fn sixty_four_clients_then_verify_through_the_server() {
    let env = Env::new();
    let (s, vkey, admin) = start(&env, &[]);
    let w = env.token("writer", "ci");
    append_through(&env, &[&s], &w, 64, 20);
    loads_exactly_once(&s, &admin, 64, 20);
    // Verification over HTTP with nothing but the verifier key (no store, no token file).
    let reader = env.token("reader", "auditor");
    let mut c = env.command(&["verify", "--server", &s.url, "--key", &vkey]);
    c.env_remove("TFTRAIL_STORE")
        .env_remove("TFTRAIL_KEY")
        .env("TFTRAIL_TOKEN", &reader)
        .env("XDG_STATE_HOME", env.path("auditor-state"));
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = common::stdout(&out) + &common::stderr(&out);
    assert!(text.contains("verified"), "{text}");
    // Group commit: fewer appends than records.
    let (_, m) = s.request("GET", "/metrics", Some(&admin), b"");
    let appends: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("tftrail_appends_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(appends < 1280, "no batching: {appends} appends\n{m}");
}

#[test]
fn two_replicas_on_one_s3_bucket() {
    let moto = tftrail_store::testing::Moto::start();
    let envs: Vec<(&str, String)> = moto.env();
    moto.apply_env();
    moto.create_audit_bucket("replicas", 1);
    let mut env = Env::new();
    env.store = std::path::PathBuf::from("s3://replicas/log");
    let mut c = env.command(&["init", "--origin", "test.example/replicas"]);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let vkey = common::stdout(&out).trim().to_string();
    let admin = env.token("admin", "root");
    let w = env.token("writer", "ci");
    let a = env.serve(&[], &envs);
    let b = env.serve(&[], &envs);
    append_through(&env, &[&a, &b], &w, 8, 10);
    // Each replica sees every record, appended through either.
    loads_exactly_once(&a, &admin, 8, 10);
    loads_exactly_once(&b, &admin, 8, 10);
    let mut c = env.command(&["verify", "--key", &vkey]);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

#[test]
fn terraform_plan_and_apply_through_the_server() {
    let env = Env::new();
    let (s, vkey, admin) = start(&env, &[]);
    let w = env.token("writer", "ci");
    let dir = env.path("tf");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        "resource \"terraform_data\" \"web\" {\n  input = \"v1\"\n}\n",
    )
    .unwrap();
    let tf = common::terraform_bin();
    let tf = tf.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--", tf];
        all.extend_from_slice(args);
        let mut c = env.client(&s, &w, &all);
        env.tf_env(&mut c);
        // The client holds only the verifier key (to check what it reads), never the signing key.
        c.current_dir(&dir).env("TFTRAIL_KEY", &vkey);
        let out = common::run(c, None);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        out
    };
    run(&["init", "-input=false"]);
    run(&["plan", "-input=false", "-out", "tf.plan"]);
    run(&["apply", "-input=false", "tf.plan"]);
    let recs = s.records(&admin);
    let kinds: Vec<&str> = recs
        .iter()
        .map(|r| r["record"]["kind"].as_str().unwrap())
        .collect();
    let intent = kinds
        .iter()
        .position(|k| *k == "terraform.apply.intent")
        .unwrap_or_else(|| panic!("{kinds:?}"));
    let outcome = kinds
        .iter()
        .position(|k| *k == "terraform.apply.outcome")
        .unwrap_or_else(|| panic!("{kinds:?}"));
    assert!(
        kinds.contains(&"terraform.plan") && intent < outcome,
        "{kinds:?}"
    );
    for r in recs.iter().filter(|r| {
        r["record"]["kind"]
            .as_str()
            .unwrap()
            .starts_with("terraform.")
    }) {
        assert_eq!(r["record"]["actor"]["authenticated"]["name"], "ci", "{r}");
    }
    // Blame through the server names the authenticated writer.
    let mut c = env.client(
        &s,
        &w,
        &["blame", "terraform_data.web", "--json", "--key", &vkey],
    );
    c.env_remove("TFTRAIL_KEY");
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let v: Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    assert_eq!(v[0]["actor"]["authenticated"]["name"], "ci", "{v}");

    // Every read command works through the server with a reader token and the verifier key.
    let r = env.token("reader", "auditor");
    let read = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--server", &s.url, "--key", &vkey]);
        let mut c = env.command(&all);
        c.env_remove("TFTRAIL_STORE")
            .env_remove("TFTRAIL_KEY")
            .env("TFTRAIL_TOKEN", &r);
        let out = common::run(c, None);
        assert_eq!(code(&out), 0, "{args:?}: {}", describe(&out));
        common::stdout(&out)
    };
    let outcome = recs[outcome]["index"].as_u64().unwrap().to_string();
    let history: Value =
        serde_json::from_str(&read(&["history", "terraform_data.web", "--json"])).unwrap();
    assert_eq!(history[0]["action"], "create", "{history}");
    let listed = read(&["log", "--kind", "apply", "--authenticated", "yes"]);
    assert!(listed.contains("token:ci"), "{listed}");
    let shown: Value = serde_json::from_str(&read(&["show", &outcome, "--json"])).unwrap();
    assert_eq!(
        shown["record"]["kind"], "terraform.apply.outcome",
        "{shown}"
    );
    let cp = read(&["checkpoint"]);
    assert!(cp.starts_with("test.example/log\n"), "{cp}");
    let receipt = read(&["prove", &outcome]);
    let rp = env.path("outcome.tlog-proof");
    std::fs::write(&rp, &receipt).unwrap();
    // The receipt checks offline, with nothing but the key.
    let out = env.tftrail(
        &["verify-receipt", rp.to_str().unwrap(), "--key", &vkey],
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

/// The server's test certificates (crates/tftrail-server/testdata/README.md).
fn testdata(name: &str) -> String {
    format!(
        "{}/../tftrail-server/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn tls_with_a_certificate_the_client_trusts() {
    let env = Env::new();
    let (cert, key, ca) = (
        testdata("tls-cert.pem"),
        testdata("tls-key.pem"),
        testdata("tls-ca.pem"),
    );
    let (mut s, vkey, _) = start(&env, &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(s.stderr.lock().unwrap().contains("listening on https://"));
    s.url = s.url.replace("http://", "https://");
    let w = env.token("writer", "w");
    // A client that trusts the CA appends and verifies over TLS.
    let mut c = env.client(&s, &w, &["append", "--key", &vkey]);
    c.env("SSL_CERT_FILE", &ca);
    let out = common::run(c, Some(br#"{"over":"tls"}"#));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let mut c = env.client(&s, &w, &["verify", "--key", &vkey]);
    c.env("SSL_CERT_FILE", &ca);
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // One that does not trust it is refused, and nothing is appended.
    let mut c = env.client(&s, &w, &["append", "--key", &vkey]);
    c.env("SSL_CERT_FILE", testdata("issuer-rsa-1.pem"));
    let out = common::run(c, Some(br#"{"over":"untrusted"}"#));
    assert_ne!(code(&out), 0, "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("certificate"),
        "{}",
        describe(&out)
    );
    // Plain HTTP on the TLS port gets no answer.
    use std::io::{Read, Write};
    let mut plain = std::net::TcpStream::connect(&s.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let _ = plain.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(
        !String::from_utf8_lossy(&buf).contains("\"ok\""),
        "answered in plain HTTP"
    );
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    use std::io::{Read, Write};
    let env = Env::new();
    let (mut s, vkey, _) = start(&env, &[]);
    let w = env.token("writer", "w");
    let blob = vec![42u8; 100_000];
    let sha = sha256_hex(&blob);
    let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        c,
        "PUT /v1/blobs/{sha} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {w}\r\ncontent-length: {}\r\n\r\n",
        blob.len()
    )
    .unwrap();
    c.write_all(&blob[..50_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_child(&s.child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Still being served: the rest of the body is taken and answered.
    c.write_all(&blob[50_000..]).unwrap();
    let mut resp = Vec::new();
    let _ = c.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    let status = s.terminate();
    assert!(status.success(), "{status:?}\n{}", s.stderr.lock().unwrap());
    // The blob is stored and the log verifies.
    assert!(env
        .store
        .join(format!("tftrail/blobs/sha256/{sha}"))
        .exists());
    let out = env.tftrail(&["verify", "--key", &vkey], None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // New connections are refused once it is gone.
    assert!(std::net::TcpStream::connect(&s.addr).is_err());
}

#[test]
fn a_reader_token_does_not_start_a_recorded_terraform_command() {
    let env = Env::new();
    let (s, vkey, _) = start(&env, &[]);
    let r = env.token("reader", "ro");
    let (st, b) = s.request("GET", "/v1/whoami", Some(&r), b"");
    assert_eq!(st, 200, "{b}");
    assert!(
        b.contains("\"write\":false") && b.contains("\"role\":\"reader\""),
        "{b}"
    );
    // A fake terraform that would leave a mark if it ran.
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mark = env.path("ran");
    let fake = bin.join("terraform");
    std::fs::write(&fake, format!("#!/bin/sh\ntouch {}\n", mark.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = env.client(&s, &r, &["run", "--", fake.to_str().unwrap(), "plan"]);
    c.env("TFTRAIL_KEY", &vkey);
    let out = common::run(c, None);
    assert_eq!(code(&out), 123, "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("cannot append"),
        "{}",
        describe(&out)
    );
    assert!(
        !mark.exists(),
        "terraform ran although nothing could be recorded"
    );
}

#[test]
fn bad_settings_are_refused_before_anything_is_created() {
    let env = Env::new();
    // A config file with an unknown setting names it and the file.
    std::fs::write(env.path("bad.toml"), "[limits]\nmax_body = 1\n").unwrap();
    let bad = env.path("bad.toml");
    let out = env.tftrail(
        &["serve", "--init", "--config", bad.to_str().unwrap()],
        None,
    );
    assert_eq!(code(&out), 2, "{}", describe(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("bad.toml") && err.contains("max_body"),
        "{err}"
    );
    // A tokens file that does not exist: refused, and --init created no log and no key.
    let missing = env.path("missing.toml");
    let out = env.tftrail(
        &["serve", "--init", "--tokens", missing.to_str().unwrap()],
        None,
    );
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("missing.toml"),
        "{}",
        describe(&out)
    );
    assert!(!env.store.exists() && !env.key.exists());
    // A limit of 0 is refused.
    std::fs::write(env.path("zero.toml"), "[limits]\nmax_connections = 0\n").unwrap();
    env.init();
    env.token("admin", "root");
    let z = env.path("zero.toml");
    let f = env.tokens_file();
    let out = env.tftrail(
        &[
            "serve",
            "--config",
            z.to_str().unwrap(),
            "--tokens",
            f.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("max_connections"),
        "{}",
        describe(&out)
    );
}
