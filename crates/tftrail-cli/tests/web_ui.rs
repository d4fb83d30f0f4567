//! The web UI of `tftrail serve` (`crates/tftrail-server/src/ui/`): over real HTTP on
//! loopback (sessions, cookies, CSRF, escaping, blobs, a tampered log), and in a real headless
//! Chromium (Debian's `chromium`, driven by playwright-core: `tests/ui/browser.mjs`) after real
//! Terraform applies through the server. The browser test skips loudly without
//! TFTRAIL_CHROMIUM and TFTRAIL_PLAYWRIGHT (set by scripts/test), and fails without them in CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::server::Server;
use common::{code, describe, Env};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A server with a reader, a writer and an admin token.
struct Ui {
    env: Env,
    server: Server,
    vkey: String,
    reader: String,
    writer: String,
    admin: String,
}

fn start(args: &[&str]) -> Ui {
    let env = Env::new();
    let vkey = env.init();
    let reader = env.token("reader", "alice");
    let writer = env.token("writer", "ci");
    let admin = env.token("admin", "root");
    let server = env.serve(args, &[]);
    Ui {
        env,
        server,
        vkey,
        reader,
        writer,
        admin,
    }
}

fn header<'h>(headers: &'h str, name: &str) -> Vec<&'h str> {
    headers
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// The value a `Set-Cookie` header gives cookie `name`.
fn set_cookie<'h>(headers: &'h str, name: &str) -> Option<&'h str> {
    header(headers, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Waits (at most 10 s) until `f` gives a value.
fn wait_until<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The hidden `csrf` field of a page's form.
fn csrf_field(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[i..i + html[i..].find('"').unwrap()].to_string()
}

impl Ui {
    /// One request; (status, response headers as sent, body): cookie values keep their case.
    fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> (u16, String, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.server.addr).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n{headers}content-length: {}\r\n\r\n",
            self.server.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp).into_owned();
        let (h, b) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = h.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
        (status, h.to_string(), b.to_string())
    }

    fn origin(&self) -> String {
        format!("origin: {}\r\n", self.server.url)
    }

    /// GET /login; returns (pre-session CSRF cookie, form's CSRF).
    fn login_form(&self) -> (String, String) {
        let (s, h, b) = self.exchange("GET", "/login", "", b"");
        assert_eq!(s, 200, "{b}");
        let c = set_cookie(&h, "tftrail_login_csrf").expect("a login CSRF cookie");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"),
            "{c}"
        );
        (cookie_value(c), csrf_field(&b))
    }

    /// Logs in; returns the session cookie's value.
    fn login(&self, token: &str) -> String {
        let (cookie, csrf) = self.login_form();
        let body = form(&[("token", token), ("csrf", &csrf), ("next", "/status")]);
        let (s, h, b) = self.exchange(
            "POST",
            "/login",
            &format!(
                "{}cookie: tftrail_login_csrf={cookie}\r\ncontent-type: application/x-www-form-urlencoded\r\n",
                self.origin()
            ),
            body.as_bytes(),
        );
        assert_eq!(s, 303, "{h}\n{b}");
        assert_eq!(header(&h, "location"), ["/status"]);
        let set = set_cookie(&h, "tftrail_session").expect("a session cookie");
        assert_eq!(
            set.split("; ").skip(1).collect::<Vec<_>>(),
            ["HttpOnly", "SameSite=Strict", "Path=/"],
            "{set}"
        );
        cookie_value(set)
    }

    fn get(&self, path: &str, session: &str) -> (u16, String, String) {
        self.exchange(
            "GET",
            path,
            &format!("cookie: tftrail_session={session}\r\n"),
            b"",
        )
    }

    fn append(&self, records: Value) -> Value {
        let (s, b) = self.server.request(
            "POST",
            "/v1/records",
            Some(&self.writer),
            json!({ "records": records }).to_string().as_bytes(),
        );
        assert_eq!(s, 200, "{b}");
        serde_json::from_str(&b).unwrap()
    }

    fn put_blob(&self, data: &[u8]) -> String {
        let sha = hex::encode(Sha256::digest(data));
        let (s, b) =
            self.server
                .request("PUT", &format!("/v1/blobs/{sha}"), Some(&self.writer), data);
        assert_eq!(s, 201, "{b}");
        sha
    }

    fn denied_records(&self) -> Vec<Value> {
        let (s, b) = self.server.request(
            "GET",
            "/v1/records?kind=server.access.denied",
            Some(&self.reader),
            b"",
        );
        assert_eq!(s, 200, "{b}");
        serde_json::from_str::<Value>(&b).unwrap()["records"]
            .as_array()
            .unwrap()
            .clone()
    }
}

#[test]
fn pages_need_a_session_whose_cookie_is_strict_and_whose_token_stays_valid() {
    let ui = start(&[]);
    // No session: every page is a redirect to the login page (assets are public).
    for path in [
        "/",
        "/records/0",
        "/status",
        "/resources/x.y",
        "/records/0/receipt",
    ] {
        let (s, h, _) = ui.exchange("GET", path, "", b"");
        assert_eq!(s, 303, "{path}");
        let loc = header(&h, "location");
        assert!(loc[0].starts_with("/login?next="), "{path}: {loc:?}");
    }
    let (_, _, page) = ui.exchange("GET", "/login", "", b"");
    let css = page
        .split("href=\"")
        .find_map(|p| {
            p.strip_prefix("/assets/")
                .map(|r| r[..r.find('"').unwrap()].to_string())
        })
        .unwrap();
    let (s, h, _) = ui.exchange("GET", &format!("/assets/{css}"), "", b"");
    assert_eq!(s, 200);
    assert_eq!(
        header(&h, "cache-control"),
        ["public, max-age=31536000, immutable"]
    );

    let session = ui.login(&ui.reader);
    let (s, h, b) = ui.get("/", &session);
    assert_eq!(s, 200, "{b}");
    assert!(
        b.contains("Signed in as <strong>alice</strong> (reader)"),
        "{b}"
    );
    for (k, want) in [
        ("content-security-policy", "script-src 'self'"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        assert!(header(&h, k).iter().any(|v| v.contains(want)), "{k}: {h}");
    }
    assert!(!b.contains("<script>"), "no inline script: {b}");

    // A session cookie does not authorise the API: appends need a bearer credential.
    let (s, b) = ui.server.raw(
        "POST",
        "/v1/records",
        &format!("cookie: tftrail_session={session}\r\n{}", ui.origin()),
        json!({"records": [{"kind": "test.event", "payload": {}}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(s, 401, "{b}");

    // A revoked token's session ends on its next request.
    let other = ui.env.token("reader", "bob");
    let bob = ui.login(&other);
    assert_eq!(ui.get("/", &bob).0, 200);
    ui.env.ok(
        &[
            "token",
            "revoke",
            "--tokens",
            ui.env.tokens_file().to_str().unwrap(),
            "bob",
        ],
        None,
    );
    let (s, h, _) = ui.get("/", &bob);
    assert_eq!(s, 303);
    assert!(header(&h, "location")[0].contains("why=ended"), "{h}");
    assert_eq!(ui.get("/", &bob).0, 303, "the session is gone");
    // Alice's session lives on; a forged cookie is no session.
    assert_eq!(ui.get("/", &session).0, 200);
    assert_eq!(ui.get("/", &format!("{session}x")).0, 303);
}

#[test]
fn every_post_needs_its_csrf_token_and_this_servers_origin() {
    let ui = start(&[]);
    let (cookie, csrf) = ui.login_form();
    let post = |headers: String, body: String| {
        ui.exchange(
            "POST",
            "/login",
            &format!("{headers}content-type: application/x-www-form-urlencoded\r\n"),
            body.as_bytes(),
        )
    };
    let with_cookie = format!("cookie: tftrail_login_csrf={cookie}\r\n");
    let good = form(&[("token", &ui.reader), ("csrf", &csrf)]);
    for (what, headers, body) in [
        (
            "no CSRF field",
            format!("{with_cookie}{}", ui.origin()),
            form(&[("token", &ui.reader)]),
        ),
        (
            "a wrong CSRF field",
            format!("{with_cookie}{}", ui.origin()),
            form(&[("token", &ui.reader), ("csrf", &format!("{csrf}x"))]),
        ),
        ("no CSRF cookie", ui.origin(), good.clone()),
        (
            "another origin",
            format!("{with_cookie}origin: http://evil.example\r\n"),
            good.clone(),
        ),
        ("no origin or referer", with_cookie.clone(), good.clone()),
    ] {
        let (s, h, b) = post(headers, body);
        assert_eq!(s, 403, "{what}: {b}");
        assert!(b.contains("The form was refused"), "{what}: {b}");
        assert!(set_cookie(&h, "tftrail_session").is_none(), "{what}");
    }
    // A referer of this server will do instead of an origin.
    let (s, h, _) = post(
        format!("{with_cookie}referer: {}/login\r\n", ui.server.url),
        good,
    );
    assert_eq!(s, 303);
    let session = cookie_value(set_cookie(&h, "tftrail_session").unwrap());

    // Logout: a POST with the session's CSRF token.
    let (_, _, page) = ui.get("/", &session);
    let token = csrf_field(&page);
    assert_ne!(token, csrf, "the session has its own token");
    let logout = |csrf: &str, origin: &str| {
        ui.exchange(
            "POST",
            "/logout",
            &format!(
                "cookie: tftrail_session={session}\r\n{origin}content-type: application/x-www-form-urlencoded\r\n"
            ),
            form(&[("csrf", csrf)]).as_bytes(),
        )
    };
    assert_eq!(logout("", &ui.origin()).0, 403);
    assert_eq!(logout("wrong", &ui.origin()).0, 403);
    assert_eq!(logout(&token, "origin: http://evil.example\r\n").0, 403);
    assert_eq!(
        ui.get("/", &session).0,
        200,
        "refused logouts leave the session"
    );
    let (s, h, _) = logout(&token, &ui.origin());
    assert_eq!(s, 303);
    assert!(set_cookie(&h, "tftrail_session")
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(ui.get("/", &session).0, 303, "logged out");

    // Only an admin may ask for a full verification, with the session's CSRF token.
    let alice = ui.login(&ui.reader);
    let (_, _, page) = ui.get("/", &alice);
    let post_verify = |session: &str, csrf: &str| {
        ui.exchange(
            "POST",
            "/status/verify",
            &format!(
                "cookie: tftrail_session={session}\r\n{}content-type: application/x-www-form-urlencoded\r\n",
                ui.origin()
            ),
            form(&[("csrf", csrf)]).as_bytes(),
        )
    };
    assert_eq!(post_verify(&alice, &csrf_field(&page)).0, 403);
    let root = ui.login(&ui.admin);
    let (_, _, status) = ui.get("/status", &root);
    assert!(status.contains("Verify the whole log now"), "{status}");
    assert_eq!(post_verify(&root, "").0, 403);
    assert_eq!(post_verify(&root, &csrf_field(&status)).0, 303);
}

#[test]
fn a_wrong_token_is_refused_with_a_page_and_recorded() {
    let ui = start(&[]);
    let before = ui.denied_records().len();
    let (cookie, csrf) = ui.login_form();
    let wrong = format!("tftrail_{}", "A".repeat(43));
    for (token, want) in [
        (wrong.as_str(), "unknown token"),
        ("not-a-token", "not a tftrail token"),
        ("", "no token given"),
    ] {
        let (s, h, b) = ui.exchange(
            "POST",
            "/login",
            &format!(
                "cookie: tftrail_login_csrf={cookie}\r\n{}content-type: application/x-www-form-urlencoded\r\n",
                ui.origin()
            ),
            form(&[("token", token), ("csrf", &csrf)]).as_bytes(),
        );
        assert_eq!(s, 401, "{token}: {b}");
        assert!(
            b.contains("Login refused") && b.contains(want),
            "{token}: {b}"
        );
        assert!(b.contains("id=\"token\""), "the form again");
        assert!(set_cookie(&h, "tftrail_session").is_none());
        assert!(
            token.is_empty() || !b.contains(token),
            "the token is not echoed"
        );
    }
    // Recorded as refused (the first at once; the others of the minute coalesced later).
    let denied = wait_until(|| {
        let d = ui.denied_records();
        (d.len() > before).then_some(d)
    });
    let p = &denied[0]["record"]["payload"];
    assert_eq!(p["path"], "/login");
    assert_eq!(p["status"], 401);
    assert!(!serde_json::to_string(&denied).unwrap().contains(&wrong));
}

#[test]
fn values_are_escaped_blobs_are_only_the_records_and_a_tampered_log_shows_an_error() {
    let ui = start(&[]);
    let named = ui.put_blob(b"the plan as JSON");
    let other = ui.put_blob(b"some other blob");
    let evil = "aws_instance.x<script>alert(1)</script>";
    let landed = ui.append(json!([{
        "kind": "terraform.apply.outcome",
        "payload": {
            "outcome": "success",
            "marker": "ORIGINAL-MARKER",
            "context": {"dir": ".", "workspace": "<img src=x onerror=alert(2)>", "backend": "local"},
            "state_diff": {"added": [], "removed": [], "changed": [{"address": evil, "paths": ["size"]}],
                "values": [{"address": evil, "change": "changed",
                    "attributes": [{"path": "size", "before": "small", "after": "</td><script>alert(3)</script>"}]}]},
        },
        "blobs": [{"name": "plan.json", "sha256": named, "size": 16}],
    }]));
    let n = landed["first"].as_u64().unwrap();
    let session = ui.login(&ui.reader);
    for path in [
        format!("/records/{n}"),
        "/".to_string(),
        format!("/?resource={}", enc(evil)),
        format!("/resources/{}", enc(evil)),
    ] {
        let (s, _, b) = ui.get(&path, &session);
        assert_eq!(s, 200, "{path}: {b}");
        assert!(!b.contains("<script>"), "{path}: {b}");
        assert!(!b.contains("<img"), "{path}: {b}");
    }
    let (_, _, page) = ui.get(&format!("/records/{n}"), &session);
    assert!(
        page.contains("aws_instance.x&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("&lt;/td&gt;&lt;script&gt;alert(3)"), "{page}");
    let (_, _, list) = ui.get(&format!("/?resource={}", enc(evil)), &session);
    assert!(
        list.contains(&format!("href=\"/records/{n}\"")),
        "the filter finds it: {list}"
    );

    // Blobs: the record's own, checked; another stored blob is not served through it.
    let (s, h, b) = ui.get(&format!("/records/{n}/blobs/{named}"), &session);
    assert_eq!((s, b.as_str()), (200, "the plan as JSON"));
    assert_eq!(
        header(&h, "content-disposition"),
        ["attachment; filename=\"plan.json\""]
    );
    for sha in [other.as_str(), "nothex", &"0".repeat(64)] {
        let (s, _, b) = ui.get(&format!("/records/{n}/blobs/{sha}"), &session);
        assert_eq!(s, 404, "{sha}: {b}");
        assert!(!b.contains("some other blob"));
    }
    // A blob whose bytes changed in the store is refused, not served.
    let blob_file = ui.env.object(&format!("tftrail/blobs/sha256/{named}"));
    assert!(blob_file.exists(), "{}", blob_file.display());
    common::overwrite(&blob_file, b"the plan as JSOX");
    let (s, _, b) = ui.get(&format!("/records/{n}/blobs/{named}"), &session);
    assert_eq!(s, 500, "{b}");
    assert!(!b.contains("JSOX"), "{b}");

    // A forged entry: one byte of the bundle changed. The page says so and shows nothing of
    // the record.
    let mut forged = 0;
    for bundle in files_under(&ui.env.store.join("tile/entries")) {
        let mut bytes = std::fs::read(&bundle).unwrap();
        if let Some(at) = bytes.windows(15).position(|w| w == b"ORIGINAL-MARKER") {
            bytes[at] = b'F';
            common::overwrite(&bundle, &bytes);
            forged += 1;
        }
    }
    assert!(forged > 0, "the marker in an entry bundle");
    let (s, _, b) = ui.get(&format!("/records/{n}"), &session);
    assert_eq!(s, 500, "{b}");
    assert!(b.contains("Integrity error"), "{b}");
    assert!(
        !b.contains("FRIGINAL") && !b.contains("ORIGINAL-MARKER"),
        "{b}"
    );
    assert!(!b.contains("alert(3)"), "nothing of the record: {b}");
}

/// Every file below `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}

/// The record indexes a timeline page lists, and its older/newer links.
fn listed(page: &str) -> (Vec<u64>, Option<String>, Option<String>) {
    let rows = page
        .split("<th scope=\"row\" data-label=\"#\"><a href=\"/records/")
        .skip(1)
        .map(|r| r[..r.find('"').unwrap()].parse().unwrap())
        .collect();
    let link = |rel: &str| {
        let k = format!("rel=\"{rel}\" href=\"");
        page.find(&k).map(|i| {
            let r = &page[i + k.len()..];
            r[..r.find('"').unwrap()].replace("&amp;", "&")
        })
    };
    (rows, link("next"), link("prev"))
}

#[test]
fn public_read_shows_the_pages_without_login() {
    let ui = start(&["--public-read"]);
    ui.append(json!([{"kind": "test.event", "payload": {"n": 1}}]));
    // Keyset paging, 50 a page: records 0..=121, newest first, with and without a filter.
    for _ in 0..2 {
        let batch: Vec<Value> = (0..60)
            .map(|n| json!({"kind": "test.page", "payload": {"n": n}}))
            .collect();
        ui.append(Value::Array(batch));
    }
    let (s, _, page) = ui.exchange("GET", "/", "", b"");
    assert_eq!(s, 200);
    let (rows, older, newer) = listed(&page);
    assert_eq!(rows, (72..=121).rev().collect::<Vec<u64>>());
    assert_eq!((older.as_deref(), newer), (Some("/?before=72"), None));
    let (_, _, page) = ui.exchange("GET", "/?before=72", "", b"");
    let (rows, older, newer) = listed(&page);
    assert_eq!(rows, (22..=71).rev().collect::<Vec<u64>>());
    assert_eq!(
        (older.as_deref(), newer.as_deref()),
        (Some("/?before=22"), Some("/?after=71"))
    );
    let (_, _, page) = ui.exchange("GET", "/?after=71", "", b"");
    assert_eq!(listed(&page).0, (72..=121).rev().collect::<Vec<u64>>());
    let (_, _, page) = ui.exchange("GET", "/?kind=test.page&before=30", "", b"");
    let (rows, older, _) = listed(&page);
    assert_eq!(rows, (2..=29).rev().collect::<Vec<u64>>());
    assert_eq!(older, None, "the last page");
    let (s, _, page) = ui.exchange("GET", "/?before=x&since=yesterday", "", b"");
    assert_eq!(s, 400);
    assert!(
        page.contains("before=&quot;x&quot; is not a record index"),
        "{page}"
    );

    let (s, _, b) = ui.exchange("GET", "/", "", b"");
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("Public read") && b.contains("test.page"), "{b}");
    // The status page: the full verification at start, then the grown log checked against it.
    wait_until(|| {
        let (_, _, b) = ui.exchange("GET", "/status", "", b"");
        (b.contains("Last verification") && !b.contains("is running")).then_some(())
    });
    ui.append(json!([{"kind": "test.event", "payload": {"n": 2}}]));
    let (s, b) = ui.server.request("GET", "/v1/checkpoint", None, b"");
    assert_eq!(s, 200);
    let size = serde_json::from_str::<Value>(&b).unwrap()["size"]
        .as_u64()
        .unwrap();
    let (s, _, b) = ui.exchange("GET", "/status", "", b"");
    assert_eq!(s, 200, "{b}");
    assert!(
        b.contains(&format!("<dd id=\"log-size\">{size} records")),
        "{b}"
    );
    assert!(
        b.contains("intact") && b.contains("<dd>incremental</dd>"),
        "{b}"
    );
    assert!(
        b.contains(&format!("<dt>Tree size</dt><dd>{size}</dd>")),
        "{b}"
    );
    // Still no admin action without an admin's session.
    let (s, _, _) = ui.exchange(
        "POST",
        "/status/verify",
        &format!(
            "{}content-type: application/x-www-form-urlencoded\r\n",
            ui.origin()
        ),
        b"csrf=x",
    );
    assert_eq!(s, 403);
    // A receipt, as `tftrail prove` writes it, that `verify-receipt` accepts offline.
    let (s, h, receipt) = ui.exchange("GET", "/records/1/receipt", "", b"");
    assert_eq!(s, 200);
    assert_eq!(
        header(&h, "content-disposition"),
        ["attachment; filename=\"tftrail-receipt-1.txt\""]
    );
    let file = ui.env.path("receipt.txt");
    std::fs::write(&file, receipt).unwrap();
    let out = ui.env.tftrail(
        &["verify-receipt", file.to_str().unwrap(), "--key", &ui.vkey],
        None,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

// ---- The browser test ----

const SECRET: &str = "hunter2-Secret-7d41c9";

fn config(size: &str) -> String {
    format!(
        r#"
variable "db_password" {{
  type      = string
  sensitive = true
  default   = "{SECRET}"
}}
resource "terraform_data" "web" {{
  input = "{size}"
}}
resource "terraform_data" "other" {{
  input = "stays"
}}
resource "terraform_data" "db" {{
  input = var.db_password
}}
"#
    )
}

/// Where Debian's chromium and the installed playwright-core are, or why the test skips.
fn browser_tools() -> Option<(String, String)> {
    let c = std::env::var("TFTRAIL_CHROMIUM")
        .ok()
        .filter(|s| !s.is_empty());
    let p = std::env::var("TFTRAIL_PLAYWRIGHT")
        .ok()
        .filter(|s| !s.is_empty());
    match (c, p) {
        (Some(c), Some(p)) => Some((c, p)),
        _ => {
            let msg = "TFTRAIL_CHROMIUM and TFTRAIL_PLAYWRIGHT are not set (scripts/test sets them after scripts/deps installs playwright-core and .ci/run Debian's chromium)";
            if std::env::var_os("CI").is_some() {
                panic!("{msg}: the browser test must run in CI");
            }
            eprintln!("\n*** SKIPPED: the web UI browser test: {msg} ***\n");
            None
        }
    }
}

fn tf_run(ui: &Ui, dir: &Path, args: &[&str]) -> Vec<u64> {
    let tf = common::terraform_bin();
    let mut all = vec!["run", "--", tf.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut c = ui.env.client(&ui.server, &ui.writer, &all);
    ui.env.tf_env(&mut c);
    c.current_dir(dir);
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    common::stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("tftrail: recorded "))
        .map(|l| {
            l.split(", ")
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn node(script: &Path, playwright: &str, chromium: &str, envs: &[(&str, String)]) -> Value {
    let mut c = Command::new("node");
    c.arg(script)
        .env("NODE_PATH", playwright)
        .env("TFTRAIL_CHROMIUM", chromium)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "browser script failed:\n{}", describe(&out));
    let last = common::stdout(&out)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    serde_json::from_str(&last).unwrap_or_else(|_| panic!("no JSON result: {}", describe(&out)))
}

#[test]
fn in_a_real_browser_an_auditor_logs_in_filters_reads_values_and_downloads_a_receipt() {
    let Some((chromium, playwright)) = browser_tools() else {
        return;
    };
    let ui = start(&[]);
    let dir = ui.env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    // Plan, then apply the saved plan, twice: size small, then large. The plan records carry
    // the planned values (redacted), the outcomes what changed in the state.
    let (mut plans, mut applies) = (Vec::new(), Vec::new());
    for size in ["small", "large"] {
        std::fs::write(dir.join("main.tf"), config(size)).unwrap();
        let plan = tf_run(&ui, &dir, &["plan", "-input=false", "-out=plan.tfplan"]);
        plans.push(plan[0]);
        let apply = tf_run(&ui, &dir, &["apply", "-input=false", "plan.tfplan"]);
        applies.push(*apply.last().unwrap());
    }
    let (created, changed) = (plans[0], plans[1]);
    // The apply outcome of the change: its state diff carries the values too.
    let applied = applies[1];
    let (s, b) = ui.server.request(
        "GET",
        &format!("/v1/records/{applied}"),
        Some(&ui.reader),
        b"",
    );
    assert_eq!(s, 200, "{b}");
    let kind = serde_json::from_str::<Value>(&b).unwrap()["record"]["kind"].clone();
    assert_eq!(kind, "terraform.apply.outcome", "record {applied}: {b}");
    // Which records touch terraform_data.web, as the API says.
    let (s, b) = ui.server.request(
        "GET",
        "/v1/records?address=terraform_data.web",
        Some(&ui.reader),
        b"",
    );
    assert_eq!(s, 200, "{b}");
    let web: Vec<u64> = serde_json::from_str::<Value>(&b).unwrap()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert!(web.contains(&changed), "{web:?}");
    let (s, b) = ui
        .server
        .request("GET", "/v1/records", Some(&ui.reader), b"");
    assert_eq!(s, 200);
    let all = serde_json::from_str::<Value>(&b).unwrap()["records"]
        .as_array()
        .unwrap()
        .len();
    assert!(all > web.len(), "the filter must drop some records");

    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let downloads = ui.env.path("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/browser.mjs");
    let result = node(
        &script,
        &playwright,
        &chromium,
        &[
            ("TFTRAIL_UI_URL", ui.server.url.clone()),
            ("TFTRAIL_UI_TOKEN", ui.reader.clone()),
            ("TFTRAIL_UI_RESOURCE", "terraform_data.web".into()),
            (
                "TFTRAIL_UI_EXPECT",
                web.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
            ),
            ("TFTRAIL_UI_CHANGED", changed.to_string()),
            ("TFTRAIL_UI_APPLIED", applied.to_string()),
            ("TFTRAIL_UI_CREATED", created.to_string()),
            ("TFTRAIL_UI_SECRET", SECRET.into()),
            ("TFTRAIL_UI_SCREENSHOTS", screenshots.display().to_string()),
            ("TFTRAIL_UI_DOWNLOADS", downloads.display().to_string()),
            (
                "TFTRAIL_UI_PROFILE",
                ui.env.path("chromium-profile").display().to_string(),
            ),
        ],
    );
    // The receipt the browser downloaded verifies offline.
    let receipt = result["receipt"].as_str().expect("a receipt path");
    let out = ui
        .env
        .tftrail(&["verify-receipt", receipt, "--key", &ui.vkey], None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        common::stdout(&out).contains(&format!("record {changed} ")),
        "{}",
        describe(&out)
    );
    // No page of any record, nor any blob it names, holds the secret.
    let (_, b) = ui
        .server
        .request("GET", "/v1/checkpoint", Some(&ui.reader), b"");
    let size = serde_json::from_str::<Value>(&b).unwrap()["size"]
        .as_u64()
        .unwrap();
    let bearer = format!("authorization: Bearer {}\r\n", ui.reader);
    for n in 0..size {
        let (s, _, page) = ui.exchange("GET", &format!("/records/{n}"), &bearer, b"");
        assert_eq!(s, 200);
        assert!(!page.contains(SECRET), "record {n}");
        for part in page.split(&format!("href=\"/records/{n}/blobs/")).skip(1) {
            let sha = &part[..64];
            let (s, _, blob) =
                ui.exchange("GET", &format!("/records/{n}/blobs/{sha}"), &bearer, b"");
            assert_eq!(s, 200);
            assert!(!blob.contains(SECRET), "record {n}, blob {sha}");
        }
    }
    for path in ["/", "/resources/terraform_data.db", "/status"] {
        let (_, _, page) = ui.exchange("GET", path, &bearer, b"");
        assert!(!page.contains(SECRET), "{path}");
    }
    // What the browser saw held no secret.
    for page in result["pages"].as_array().unwrap() {
        assert!(!page.as_str().unwrap().contains(SECRET));
    }

    // --public-read: the same pages without login.
    drop(ui.server);
    let public = ui.env.serve(&["--public-read"], &[]);
    let result = node(
        &script,
        &playwright,
        &chromium,
        &[
            ("TFTRAIL_UI_MODE", "public".into()),
            ("TFTRAIL_UI_URL", public.url.clone()),
            ("TFTRAIL_UI_SECRET", SECRET.into()),
            (
                "TFTRAIL_UI_PROFILE",
                ui.env.path("chromium-profile-2").display().to_string(),
            ),
        ],
    );
    assert_eq!(result["public"], true, "{result}");
}

#[test]
fn a_state_write_outside_a_recorded_run_shows_as_out_of_band() {
    let ui = start(&[]);
    let state = json!({"version": 4, "terraform_version": "1.11.4", "serial": 3,
        "lineage": "6a4f0e2c-lineage", "outputs": {}, "resources": []});
    let (s, _, b) = ui.exchange(
        "POST",
        "/state/team/prod",
        &format!(
            "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
            ui.writer
        ),
        state.to_string().as_bytes(),
    );
    assert_eq!(s, 200, "{b}");
    let n = serde_json::from_str::<Value>(&b).unwrap()["index"]
        .as_u64()
        .unwrap();
    let session = ui.login(&ui.reader);
    let (s, _, page) = ui.get(&format!("/records/{n}"), &session);
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("terraform.state.write"), "{page}");
    assert!(
        page.contains("<dt>State</dt><dd><code>team/prod</code></dd>"),
        "{page}"
    );
    assert!(
        page.contains("out of band</span> no recorded run"),
        "{page}"
    );
    assert!(page.contains("<dt>Serial</dt><dd>3</dd>"), "{page}");
}

/// `GET path` over TLS with node's https client trusting `ca`; the response's headers as
/// JSON (node is there wherever the browser test runs; CI has it).
fn tls_get_headers(url: &str, path: &str, ca: &str) -> Option<Value> {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "node is needed in CI");
        eprintln!("\n*** SKIPPED: the TLS cookie check: node not found ***\n");
        return None;
    }
    let script = r#"
const https = require("node:https");
const fs = require("node:fs");
const [url, path, ca] = process.argv.slice(1);
https.get(url + path, { ca: fs.readFileSync(ca) }, (r) => {
  r.resume();
  console.log(JSON.stringify({ status: r.statusCode, headers: r.headers }));
}).on("error", (e) => { console.error(e.message); process.exit(1); });
"#;
    let mut c = Command::new("node");
    c.args(["-e", script, url, path, ca]);
    let out = common::run(c, None);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    Some(serde_json::from_str(common::stdout(&out).trim()).unwrap())
}

#[test]
fn over_tls_the_cookies_are_secure() {
    let dir = format!("{}/../tftrail-server/testdata", env!("CARGO_MANIFEST_DIR"));
    let (cert, key, ca) = (
        format!("{dir}/tls-cert.pem"),
        format!("{dir}/tls-key.pem"),
        format!("{dir}/tls-ca.pem"),
    );
    let ui = start(&["--tls-cert", &cert, "--tls-key", &key]);
    let url = ui.server.url.replace("http://", "https://");
    let Some(r) = tls_get_headers(&url, "/login", &ca) else {
        return;
    };
    assert_eq!(r["status"], 200, "{r}");
    let cookie = r["headers"]["set-cookie"][0].as_str().unwrap();
    assert!(cookie.starts_with("tftrail_login_csrf="), "{cookie}");
    assert!(
        cookie.contains("; HttpOnly; SameSite=Strict; Path=/; Secure"),
        "{cookie}"
    );
}
