//! [`HttpStore`] against a small HTTP/1.1 server on loopback that serves a local store's
//! directory as `tftrail serve` does (`/log/<path>`, `/v1/objects?prefix=`), with keep-alive
//! and bearer tokens.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::test_http::{read_request, Request};
use crate::LocalStore;

const READER: &str = "reader-token";
/// A valid token whose role may not list.
const NO_LIST: &str = "no-list-token";

struct TestServer {
    url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

fn respond(out: &mut TcpStream, status: u16, body: &[u8], extra: &str, head: bool) {
    let reason = match status {
        200 => "OK",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let mut msg = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        msg.extend_from_slice(body);
    }
    let _ = out.write_all(&msg);
}

fn list(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            list(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.display().to_string());
        }
    }
}

fn unescape(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Serves one connection's requests until the client closes it.
fn serve(conn: TcpStream, root: &Path, base: &str, requests: &AtomicUsize) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    while let Some(Request {
        method,
        target,
        headers,
        ..
    }) = read_request(&mut r)
    {
        requests.fetch_add(1, Ordering::SeqCst);
        let auth = headers.get("authorization").map(String::as_str);
        let head = method == "HEAD";
        let token = auth.and_then(|a| a.strip_prefix("Bearer "));
        if token != Some(READER) && token != Some(NO_LIST) {
            respond(
                &mut out,
                401,
                br#"{"error":"unknown credential"}"#,
                "www-authenticate: Bearer realm=\"tftrail\"\r\n",
                head,
            );
            continue;
        }
        let Some(rest) = target.strip_prefix(base) else {
            respond(&mut out, 404, br#"{"error":"no such route"}"#, "", head);
            continue;
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if let Some(obj) = path.strip_prefix("/log/") {
            match std::fs::read(root.join(obj)) {
                Ok(b) => respond(&mut out, 200, &b, "", head),
                Err(_) => respond(&mut out, 404, br#"{"error":"no such object"}"#, "", head),
            }
        } else if path == "/v1/objects" && method == "GET" {
            if token == Some(NO_LIST) {
                respond(
                    &mut out,
                    403,
                    br#"{"error":"role reader cannot list"}"#,
                    "",
                    head,
                );
                continue;
            }
            let prefix = unescape(query.strip_prefix("prefix=").unwrap_or(""));
            let mut all = Vec::new();
            list(root, root, &mut all);
            // Unsorted, and with a path outside the prefix: the client must not rely on it.
            all.retain(|p| p.starts_with(&prefix) || p == "checkpoint");
            all.reverse();
            let b = serde_json::to_vec(&serde_json::json!({ "paths": all })).unwrap();
            respond(
                &mut out,
                200,
                &b,
                "content-type: application/json\r\n",
                head,
            );
        } else if path == "/v1/moved" {
            respond(
                &mut out,
                302,
                b"",
                "location: http://127.0.0.1:1/elsewhere\r\n",
                head,
            );
        } else {
            respond(&mut out, 500, b"internal\n", "", head);
        }
    }
}

fn start(root: PathBuf, base: &'static str) -> TestServer {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{base}", l.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (n, r) = (connections.clone(), requests.clone());
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            n.fetch_add(1, Ordering::SeqCst);
            let (root, r) = (root.clone(), r.clone());
            std::thread::spawn(move || serve(c, &root, base, &r));
        }
    });
    TestServer {
        url,
        connections,
        requests,
    }
}

/// A local store holding a few objects and a checkpoint.
fn local_log() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::create(dir.path()).unwrap();
    s.create_all(&[
        NewObject::new("tile/0/000", vec![7; 64]),
        NewObject::new("tile/entries/000.p/2", b"\x00\x02{}\x00\x02[]".to_vec()),
        NewObject::new("tftrail/batches/000", b"claim".to_vec()),
        NewObject::new("tftrail/blobs/sha256/ab", b"blob".to_vec()),
    ])
    .unwrap();
    s.swap_checkpoint(None, b"origin\n2\nroot\n").unwrap();
    (dir, s)
}

#[test]
fn reads_what_the_server_serves_byte_for_byte() {
    let (dir, local) = local_log();
    let srv = start(dir.path().to_path_buf(), "/tftrail");
    let store = HttpStore::with_client(
        Client::with_token(&format!("{}/", srv.url), Some(READER.into())).unwrap(),
    );
    assert_eq!(store.location(), srv.url);
    for p in [
        "tile/0/000",
        "tile/entries/000.p/2",
        "tftrail/blobs/sha256/ab",
    ] {
        assert_eq!(store.get(p).unwrap(), local.get(p).unwrap(), "{p}");
        assert!(store.exists(p).unwrap(), "{p}");
    }
    assert_eq!(store.get("tile/0/001").unwrap(), None);
    assert!(!store.exists("tile/0/001").unwrap());
    let mut buf = Vec::new();
    let r = store.get_into("tile/0/000", &mut buf).unwrap().unwrap();
    assert_eq!(&buf[r], &[7; 64][..]);

    let (cp, v) = store.get_checkpoint().unwrap().unwrap();
    let (local_cp, local_v) = local.get_checkpoint().unwrap().unwrap();
    assert_eq!(cp, local_cp);
    assert_eq!(
        v, local_v,
        "the version is the SHA-256 of the bytes, as locally"
    );

    assert_eq!(store.list("tile/").unwrap(), local.list("tile/").unwrap());
    assert_eq!(
        store.list("tile/entries/000").unwrap(),
        vec!["tile/entries/000.p/2".to_string()]
    );
    assert_eq!(
        store.list("tftrail/batches/").unwrap(),
        ["tftrail/batches/000"]
    );
    assert!(store.list("tile/9/").unwrap().is_empty());

    // The requests above went over kept-alive connections. Not always one: a request that
    // starts before the pool has the previous connection back opens another (under load, a
    // few times in 14); without keep-alive there would be one per request.
    let (conns, reqs) = (
        srv.connections.load(Ordering::SeqCst),
        srv.requests.load(Ordering::SeqCst),
    );
    assert!(
        reqs >= 14 && conns < reqs / 2,
        "{conns} connections for {reqs} requests"
    );
}

#[test]
fn writes_are_refused_with_the_reason() {
    let (dir, _local) = local_log();
    let srv = start(dir.path().to_path_buf(), "");
    let store = HttpStore::with_client(Client::with_token(&srv.url, Some(READER.into())).unwrap());
    let e = store
        .create_all(&[NewObject::new("tile/0/001", vec![1])])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a server's log is written through its API"),
        "{e}"
    );
    let e = store.swap_checkpoint(None, b"x").unwrap_err().to_string();
    assert!(
        e.contains("a server's log is written through its API"),
        "{e}"
    );
    assert!(crate::create(&srv.url).is_err());
    // Nothing was written.
    assert_eq!(store.get("tile/0/001").unwrap(), None);
}

#[test]
fn a_refused_credential_says_whether_tftrail_token_was_set() {
    let (dir, _local) = local_log();
    let srv = start(dir.path().to_path_buf(), "");
    for (token, says) in [
        (None, "TFTRAIL_TOKEN is not set"),
        (
            Some("wrong"),
            "TFTRAIL_TOKEN is set, but its token is not accepted",
        ),
    ] {
        let store =
            HttpStore::with_client(Client::with_token(&srv.url, token.map(String::from)).unwrap());
        let e = store.get_checkpoint().unwrap_err();
        assert!(matches!(e, StoreError::Denied { status: 401, .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("refused the credential"), "{e}");
        assert!(
            e.contains("unknown credential"),
            "the server's message: {e}"
        );
        assert!(e.contains(says), "{e}");
        assert!(!e.contains("wrong"), "the token is never shown: {e}");
    }
}

#[test]
fn a_role_that_does_not_allow_the_request_is_403() {
    let (dir, _local) = local_log();
    let srv = start(dir.path().to_path_buf(), "");
    let store = HttpStore::with_client(Client::with_token(&srv.url, Some(NO_LIST.into())).unwrap());
    let e = store.list("tile/").unwrap_err();
    assert!(matches!(e, StoreError::Denied { status: 403, .. }), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("does not allow this to the token's role"), "{e}");
    assert!(e.contains("role reader cannot list"), "{e}");
}

#[test]
fn server_errors_are_transient_and_redirects_are_not_followed() {
    let (dir, _local) = local_log();
    let srv = start(dir.path().to_path_buf(), "");
    let c = Client::with_token(&srv.url, Some(READER.into())).unwrap();
    let r = c.get("v1/else").unwrap();
    assert_eq!(r.status, 500);
    let e = c.error("read", "v1/else", &r);
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("HTTP 500: internal"), "{e}");
    let r = c.get("v1/moved").unwrap();
    assert_eq!(r.status, 302, "the redirect is returned, not followed");
    assert!(!c.error("read", "v1/moved", &r).is_transient());
}

#[test]
fn an_unreachable_server_is_a_clear_transient_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let store = HttpStore::with_client(Client::with_token(&url, None).unwrap());
    let e = store.get_checkpoint().unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains(&format!("cannot reach the tftrail server at {url}")),
        "{e}"
    );
}

#[test]
fn a_token_is_never_sent_in_clear_to_another_host() {
    let e = Client::with_token("http://audit.example.com", Some("t".into())).unwrap_err();
    assert!(e.to_string().contains("use https://"), "{e}");
    // Anonymous reads of a public log may use plain HTTP; loopback may carry a token.
    Client::with_token("http://audit.example.com", None).unwrap();
    Client::with_token("http://localhost:8080", Some("t".into())).unwrap();
    let c = Client::with_token("https://audit.example.com", Some("s3cr3t".into())).unwrap();
    assert!(!format!("{c:?}").contains("s3cr3t"));
    let e = Client::with_token("https://h", Some("a\nb".into())).unwrap_err();
    assert!(
        e.to_string().contains("TFTRAIL_TOKEN holds characters"),
        "{e}"
    );
    let e = Client::with_token("s3://bucket", None).unwrap_err();
    assert!(e.to_string().contains("http:// or https://"), "{e}");
}
