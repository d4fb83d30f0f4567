//! The request side of the small HTTP/1.1 servers this crate's unit tests start on loopback
//! (the fake GCS server, the fake tftrail server of the `http` store's tests).

use std::collections::BTreeMap;
use std::io::BufRead;

/// One request as read from a connection.
pub struct Request {
    /// `GET`, `PUT` …
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body (Content-Length or chunked).
    pub body: Vec<u8>,
}

/// Reads the next request; `None` when the client closed the connection.
pub fn read_request(r: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = headers.get("content-length") {
        body = vec![0; n.parse().unwrap()];
        r.read_exact(&mut body).unwrap();
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}
