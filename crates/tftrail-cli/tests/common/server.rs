//! A real `tftrail serve` on loopback for the server tests, tokens made with `tftrail token
//! create`, and a minimal HTTP/1.1 client (one request per connection) for asserting
//! statuses and bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Env;

/// A running server; killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Everything it wrote on stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Env {
    /// The tokens file of this environment.
    pub fn tokens_file(&self) -> PathBuf {
        self.path("tokens.toml")
    }

    /// `tftrail token create`: returns the token.
    pub fn token(&self, role: &str, name: &str) -> String {
        let f = self.tokens_file();
        let out = self.ok(
            &[
                "token",
                "create",
                "--tokens",
                f.to_str().unwrap(),
                "--role",
                role,
                "--name",
                name,
            ],
            None,
        );
        out.trim().to_string()
    }

    /// Starts `tftrail serve` on a free port with this environment's store, key and tokens
    /// file, plus `args`; waits until it listens.
    pub fn serve(&self, args: &[&str], envs: &[(&str, String)]) -> Server {
        let f = self.tokens_file();
        let mut all = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            f.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let mut c = self.command(&all);
        c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("start tftrail serve");
        let err = child.stderr.take().unwrap();
        let text = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let text = text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    {
                        let mut t = text.lock().unwrap();
                        t.push_str(&line);
                        t.push('\n');
                    }
                    if let Some(rest) = line
                        .strip_prefix("listening on http://")
                        .or_else(|| line.strip_prefix("listening on https://"))
                    {
                        let _ = tx.send(rest.split(' ').next().unwrap_or("").to_string());
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tftrail serve did not start:\n{}", text.lock().unwrap());
            }
        };
        Server {
            child,
            url: format!("http://{addr}"),
            addr,
            stderr: text,
        }
    }

    /// A `tftrail` command that talks to `server` with `token`: no store, no signing key.
    pub fn client(&self, server: &Server, token: &str, args: &[&str]) -> std::process::Command {
        let mut c = self.command(args);
        c.env_remove("TFTRAIL_STORE")
            .env_remove("TFTRAIL_KEY")
            .env("TFTRAIL_SERVER", &server.url)
            .env("TFTRAIL_TOKEN", token);
        c
    }
}

impl Server {
    /// SIGTERM, then waits (at most 30 s) and returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// One request; returns (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        self.raw(method, path, &auth, body)
    }

    /// One request with these extra header lines (each ending in `\r\n`).
    pub fn raw(&self, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
        let (status, _, body) = self.exchange(method, path, headers, body);
        (status, body)
    }

    /// One request; returns (status, response headers in lower case, body).
    pub fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> (u16, String, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect to the server");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n{headers}content-length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp).into_owned();
        let (h, b) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = h
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
        (status, h.to_ascii_lowercase(), b.to_string())
    }

    /// `POST /v1/records` of one record with `payload`; returns (status, body as JSON).
    pub fn append(&self, token: &str, payload: serde_json::Value) -> (u16, serde_json::Value) {
        let body = serde_json::json!({"records": [{"kind": "test.event", "payload": payload}]});
        let (s, b) = self.request(
            "POST",
            "/v1/records",
            Some(token),
            body.to_string().as_bytes(),
        );
        (
            s,
            serde_json::from_str(&b).unwrap_or_else(|_| panic!("not JSON: {b:?}")),
        )
    }

    /// Every record (`GET /v1/records`, up to 10,000), oldest first.
    pub fn records(&self, token: &str) -> Vec<serde_json::Value> {
        let (s, b) = self.request("GET", "/v1/records?limit=10000", Some(token), b"");
        assert_eq!(s, 200, "{b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        let mut r = v["records"].as_array().unwrap().clone();
        r.sort_by_key(|r| r["index"].as_u64());
        r
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
