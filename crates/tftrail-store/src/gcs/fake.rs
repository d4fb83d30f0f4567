//! A minimal GCS server for the requests tftrail's GCS store makes. No emulator in a
//! package registry implements them (docs/decisions/0004-object-storage.md), so this
//! loopback fake stands in for GCS, strict where the store contract depends on it:
//! - XML API (object_store's client): `PUT` honouring `x-goog-if-generation-match` (412
//!   when it fails) and the Object Retention Lock headers `x-goog-object-lock-mode` and
//!   `x-goog-object-lock-retain-until-date` (400 on a bucket without object retention or
//!   for a bad value); an object under an unexpired retention can be neither replaced nor
//!   deleted (403), as on GCS; `GET` returning `x-goog-generation`; `DELETE`;
//!   `list-type=2` listings.
//! - JSON API: `GET storage/v1/b/B`, the bucket resource, whose settings follow the
//!   bucket's name ([`bucket`]).
//!
//! Every request is recorded with its retention headers. It is not GCS: header names and
//! status codes follow GCS's documentation, and nothing here has run against GCS itself.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::test_http::{read_request, Request};

/// A bucket's settings in the fake.
#[derive(Clone, Copy, Default)]
pub struct Bucket {
    /// `objectRetention.mode: Enabled`.
    pub object_retention: bool,
    /// The `tftrail-retention-days` label.
    pub label: Option<&'static str>,
    /// Uploads with retention headers are refused (a writer without
    /// storage.objects.setRetention).
    pub deny_set_retention: bool,
    /// An object under retention is refused (403) before the generation precondition
    /// is evaluated.
    pub retention_first: bool,
    /// The bucket resource is readable (else 403: no storage.buckets.get).
    pub readable: bool,
}

/// The buckets the fake knows, by name.
pub fn bucket(name: &str) -> Option<Bucket> {
    let worm = Bucket {
        object_retention: true,
        label: Some("30"),
        readable: true,
        ..Default::default()
    };
    Some(match name {
        "bkt" => Bucket {
            readable: true,
            ..Default::default()
        },
        "worm" => worm,
        "worm403" => Bucket {
            retention_first: true,
            ..worm
        },
        "nolabel" => Bucket {
            label: None,
            ..worm
        },
        "badlabel" => Bucket {
            label: Some("forever"),
            ..worm
        },
        "norole" => Bucket {
            deny_set_retention: true,
            ..worm
        },
        "private" => Bucket {
            readable: false,
            ..worm
        },
        _ => return None,
    })
}

/// An object's retention, with the JSON API's mode names (`Locked`, `Unlocked`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    pub mode: String,
    pub until: String,
}

pub struct Obj {
    pub data: Vec<u8>,
    pub generation: u64,
    pub retention: Option<Retention>,
}

/// A request as received: method, target, and its retention headers (mode, date).
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub lock: Option<(String, String)>,
}

#[derive(Default)]
pub struct State {
    /// By (bucket, object name).
    pub objects: BTreeMap<(String, String), Obj>,
    pub requests: Vec<Seen>,
}

pub type Shared = Arc<Mutex<State>>;

/// Starts the server on a free loopback port; returns its base URL and its state.
pub fn start() -> (String, Shared) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let state: Shared = Arc::default();
    let shared = state.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || serve(conn, &state));
        }
    });
    (url, shared)
}

fn dec(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Whether a retention still protects its object.
fn active(r: &Retention) -> bool {
    crate::object::parse_rfc3339(&r.until).is_some_and(|t| t > now())
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn xml_error(status: u16, code: &str, message: &str) -> Reply {
    (
        status,
        vec![],
        format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>").into_bytes(),
    )
}

fn bucket_resource(name: &str) -> Reply {
    let Some(b) = bucket(name) else {
        return (404, vec![], br#"{"error":{"code":404}}"#.to_vec());
    };
    if !b.readable {
        return (
            403,
            vec![],
            br#"{"error":{"code":403,"message":"does not have storage.buckets.get access"}}"#
                .to_vec(),
        );
    }
    let mut v = serde_json::json!({ "name": name });
    if b.object_retention {
        v["objectRetention"] = serde_json::json!({ "mode": "Enabled" });
    }
    if let Some(l) = b.label {
        v["labels"] = serde_json::json!({ crate::gcs::GCS_RETENTION_LABEL: l });
    }
    (200, vec![], v.to_string().into_bytes())
}

fn put(
    st: &mut State,
    b: Bucket,
    id: (String, String),
    headers: &BTreeMap<String, String>,
    body: Vec<u8>,
) -> Reply {
    let current = st.objects.get(&id);
    let generation = current.map(|o| o.generation).unwrap_or(0);
    let protected = current
        .and_then(|o| o.retention.as_ref())
        .is_some_and(active);
    let precondition_failed = headers
        .get("x-goog-if-generation-match")
        .is_some_and(|want| want.parse::<u64>().unwrap() != generation);
    let under_retention = xml_error(
        403,
        "AccessDenied",
        "Object is under active retention and cannot be deleted or overwritten",
    );
    if b.retention_first && protected {
        return under_retention;
    }
    if precondition_failed {
        return xml_error(412, "PreconditionFailed", "");
    }
    if protected {
        return under_retention;
    }
    let retention = match (
        headers.get("x-goog-object-lock-mode"),
        headers.get("x-goog-object-lock-retain-until-date"),
    ) {
        (None, None) => None,
        (Some(mode), Some(until)) => {
            if !b.object_retention {
                return xml_error(
                    400,
                    "InvalidArgument",
                    "object retention is not enabled on the bucket",
                );
            }
            if b.deny_set_retention {
                return xml_error(
                    403,
                    "AccessDenied",
                    "w@p.iam does not have storage.objects.setRetention access",
                );
            }
            let mode = match mode.as_str() {
                "COMPLIANCE" => "Locked",
                "GOVERNANCE" => "Unlocked",
                _ => return xml_error(400, "InvalidArgument", "bad retention mode"),
            };
            if crate::object::parse_rfc3339(until).is_none_or(|t| t <= now()) {
                return xml_error(400, "InvalidArgument", "bad retain-until date");
            }
            Some(Retention {
                mode: mode.into(),
                until: until.clone(),
            })
        }
        _ => return xml_error(400, "InvalidArgument", "incomplete retention"),
    };
    let g = generation.max(1000) + 1;
    st.objects.insert(
        id,
        Obj {
            data: body,
            generation: g,
            retention,
        },
    );
    (
        200,
        vec![
            ("x-goog-generation".into(), g.to_string()),
            ("etag".into(), format!("\"e{g}\"")),
        ],
        vec![],
    )
}

fn respond(
    st: &mut State,
    method: &str,
    path: &str,
    query: &str,
    headers: &BTreeMap<String, String>,
    body: Vec<u8>,
) -> Reply {
    if let Some(rest) = path.strip_prefix("/storage/v1/b/") {
        return match method {
            "GET" if !rest.contains('/') => bucket_resource(rest),
            _ => (400, vec![], vec![]),
        };
    }
    let (bkt, key) = match path.trim_start_matches('/').split_once('/') {
        Some((b, k)) => (b.to_string(), Some(dec(k))),
        None => (path.trim_start_matches('/').to_string(), None),
    };
    let Some(b) = bucket(&bkt) else {
        return xml_error(404, "NoSuchBucket", "The specified bucket does not exist");
    };
    match (method, key) {
        ("PUT", Some(k)) => put(st, b, (bkt, k), headers, body),
        ("DELETE", Some(k)) => match st.objects.get(&(bkt.clone(), k.clone())) {
            Some(o) if o.retention.as_ref().is_some_and(active) => xml_error(
                403,
                "AccessDenied",
                "Object is under active retention and cannot be deleted or overwritten",
            ),
            Some(_) => {
                st.objects.remove(&(bkt, k));
                (204, vec![], vec![])
            }
            None => xml_error(404, "NoSuchKey", ""),
        },
        ("GET", Some(k)) if !k.is_empty() => match st.objects.get(&(bkt, k)) {
            Some(o) => (
                200,
                vec![
                    ("x-goog-generation".into(), o.generation.to_string()),
                    ("etag".into(), format!("\"e{}\"", o.generation)),
                    (
                        "last-modified".into(),
                        "Thu, 01 Jan 2026 00:00:00 GMT".into(),
                    ),
                ],
                o.data.clone(),
            ),
            None => xml_error(404, "NoSuchKey", ""),
        },
        ("GET", _) => {
            let prefix = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("prefix="))
                .map(dec)
                .unwrap_or_default();
            let mut xml = String::from("<ListBucketResult>");
            for ((_, k), o) in st
                .objects
                .iter()
                .filter(|((ob, k), _)| *ob == bkt && k.starts_with(&prefix))
            {
                xml.push_str(&format!(
                    "<Contents><Key>{k}</Key><Size>{}</Size><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>\"e{}\"</ETag></Contents>",
                    o.data.len(),
                    o.generation
                ));
            }
            xml.push_str("</ListBucketResult>");
            (200, vec![], xml.into_bytes())
        }
        _ => (400, vec![], vec![]),
    }
}

fn serve(conn: TcpStream, state: &Shared) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    while let Some(Request {
        method,
        target,
        headers,
        body,
    }) = read_request(&mut r)
    {
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut st = state.lock().unwrap();
        st.requests.push(Seen {
            method: method.clone(),
            target: target.clone(),
            lock: headers.get("x-goog-object-lock-mode").map(|m| {
                (
                    m.clone(),
                    headers
                        .get("x-goog-object-lock-retain-until-date")
                        .cloned()
                        .unwrap_or_default(),
                )
            }),
        });
        let (status, extra, out) = respond(&mut st, &method, path, query, &headers, body);
        drop(st);
        let mut resp = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", out.len());
        for (k, v) in extra {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        w.write_all(resp.as_bytes()).unwrap();
        w.write_all(&out).unwrap();
    }
}
