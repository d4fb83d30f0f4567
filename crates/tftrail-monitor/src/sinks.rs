//! Where alerts go: signed webhooks, Slack-compatible incoming webhooks, JSON Lines.
//!
//! A delivery's body is made once, when the alert is raised ([`body`]), and kept in the
//! outbox until the sink took it: a retry next round sends the same bytes (a webhook signs
//! them again at each try, with the secret as configured then). HTTP sinks retry within the
//! round with backoff ([`RETRY_DELAYS`]); a 2xx answer is delivery, anything else a failure.

use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::alert::Alert;

/// The header that carries a webhook body's signature: `sha256=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "X-Tftrail-Signature-256";

/// Waits between the tries of one HTTP delivery within a round (3 tries).
pub const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(1)];

/// How long one HTTP try may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A secret from the config file: never printed (`Debug` shows `<redacted>`).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One `[[sink]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    /// A generic webhook: the alert as JSON, signed with a shared secret.
    Webhook(Webhook),
    /// A Slack-compatible incoming webhook: `{"text": …}`.
    Slack(Slack),
    /// JSON Lines, one alert a line, to a file (appended, fsynced) or `-` for stdout.
    Jsonl(Jsonl),
}

/// `type = "webhook"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where to POST.
    pub url: String,
    /// The shared secret the body is signed with (HMAC-SHA256).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Or the name of an environment variable holding it (keeps it out of the file).
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// `type = "slack"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    /// The incoming webhook's URL.
    pub url: String,
}

/// `type = "jsonl"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jsonl {
    /// A file to append to, or `-` for stdout.
    pub path: String,
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("url {url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("url {url:?} has no host"));
    }
    Ok(())
}

impl SinkConfig {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), String> {
        match self {
            SinkConfig::Webhook(w) => {
                check_url(&w.url)?;
                if w.secret.is_some() && w.secret_env.is_some() {
                    return Err("give `secret` or `secret_env`, not both".into());
                }
                if w.secret.as_ref().is_some_and(|s| s.0.is_empty()) {
                    return Err("`secret` is empty".into());
                }
                Ok(())
            }
            SinkConfig::Slack(s) => check_url(&s.url),
            SinkConfig::Jsonl(j) if j.path.is_empty() => {
                Err("`path` is empty (a file, or \"-\" for stdout)".into())
            }
            SinkConfig::Jsonl(_) => Ok(()),
        }
    }

    /// What identifies the sink in the monitor's memory: its type and a hash of where it
    /// delivers (not of its secret: a new secret is the same sink, and not its position in the
    /// file). Alerts it received are remembered under this id.
    pub fn id(&self) -> String {
        let (t, at) = match self {
            SinkConfig::Webhook(w) => ("webhook", w.url.as_str()),
            SinkConfig::Slack(s) => ("slack", s.url.as_str()),
            SinkConfig::Jsonl(j) => ("jsonl", j.path.as_str()),
        };
        format!("{t}:{}", hex::encode(&Sha256::digest(at.as_bytes())[..8]))
    }

    /// Where it delivers, for messages (no secret in it).
    pub fn describe(&self) -> String {
        match self {
            SinkConfig::Webhook(w) => format!("webhook {}", shown(&w.url)),
            SinkConfig::Slack(s) => format!("slack {}", shown(&s.url)),
            SinkConfig::Jsonl(j) if j.path == "-" => "jsonl stdout".into(),
            SinkConfig::Jsonl(j) => format!("jsonl {}", j.path),
        }
    }

    /// Whether it writes to the monitor's stdout.
    pub fn is_stdout(&self) -> bool {
        matches!(self, SinkConfig::Jsonl(j) if j.path == "-")
    }

    fn secret(&self) -> Result<Option<String>, String> {
        let SinkConfig::Webhook(w) = self else {
            return Ok(None);
        };
        if let Some(s) = &w.secret {
            return Ok(Some(s.0.clone()));
        }
        match &w.secret_env {
            None => Ok(None),
            Some(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Some(v)),
                _ => Err(format!(
                    "the environment variable {name} (secret_env of {}) is not set",
                    self.describe()
                )),
            },
        }
    }
}

/// What a delivery says about where the alert comes from.
#[derive(Debug, Clone)]
pub struct Context {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint's size.
    pub size: u64,
    /// The checkpoint's root, base64.
    pub root: String,
    /// The web UI's base URL, for links to records.
    pub ui_url: Option<String>,
    /// The monitor's host name.
    pub host: String,
    /// When the alert was raised (RFC 3339).
    pub time: String,
}

/// Links to the alert's records in the UI (`<ui>/records/<index>`).
pub fn links(alert: &Alert, ui_url: Option<&str>) -> Vec<String> {
    match ui_url {
        None => Vec::new(),
        Some(u) => {
            let u = u.trim_end_matches('/');
            alert
                .records
                .iter()
                .map(|i| format!("{u}/records/{i}"))
                .collect()
        }
    }
}

/// The JSON document of an alert as webhooks and JSON Lines receive it: the alert's fields
/// and `log`, `links`, `monitor`, `time`.
pub fn document(alert: &Alert, cx: &Context) -> Value {
    let mut v = serde_json::to_value(alert).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert(
            "log".into(),
            json!({"origin": cx.origin, "size": cx.size, "root": cx.root}),
        );
        m.insert("links".into(), json!(links(alert, cx.ui_url.as_deref())));
        m.insert(
            "monitor".into(),
            json!({"version": env!("CARGO_PKG_VERSION"), "host": cx.host}),
        );
        m.insert("time".into(), json!(cx.time));
    }
    v
}

/// The body delivered to `sink` for `alert`.
pub fn body(sink: &SinkConfig, alert: &Alert, cx: &Context) -> String {
    match sink {
        SinkConfig::Webhook(_) | SinkConfig::Jsonl(_) => document(alert, cx).to_string(),
        SinkConfig::Slack(_) => {
            let mut text = format!(
                "*[{}] {}*: {}\n{}",
                severity(alert),
                alert.rule,
                alert.summary,
                alert.why
            );
            let ls = links(alert, cx.ui_url.as_deref());
            if ls.is_empty() && !alert.records.is_empty() {
                let rs: Vec<String> = alert.records.iter().map(|i| format!("#{i}")).collect();
                text.push_str(&format!("\nrecords: {}", rs.join(", ")));
            }
            if !ls.is_empty() {
                let rs: Vec<String> = alert
                    .records
                    .iter()
                    .zip(&ls)
                    .map(|(i, l)| format!("<{l}|#{i}>"))
                    .collect();
                text.push_str(&format!("\nrecords: {}", rs.join(", ")));
            }
            text.push_str(&format!("\nlog {} at size {}", cx.origin, cx.size));
            json!({ "text": text }).to_string()
        }
    }
}

fn severity(a: &Alert) -> &'static str {
    match a.severity {
        crate::Severity::Info => "info",
        crate::Severity::Warning => "warning",
        crate::Severity::Critical => "critical",
    }
}

/// HMAC-SHA256 (RFC 2104) of `msg` with `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The value of [`SIGNATURE_HEADER`] for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    )
}

/// Delivers bodies: one HTTP client and a small runtime for it.
pub struct Sender {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    /// Waits between tries within a round (tests shorten them).
    pub retry_delays: Vec<Duration>,
}

impl Sender {
    /// A sender with the default retries.
    pub fn new() -> Result<Sender, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tftrail-monitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the HTTP client: {e}"))?;
        Ok(Sender {
            rt,
            client,
            retry_delays: RETRY_DELAYS.to_vec(),
        })
    }

    /// Delivers `body` to `sink`; HTTP sinks try `retry_delays.len() + 1` times. Returns how
    /// many tries it took, or the last failure.
    pub fn send(&self, sink: &SinkConfig, body: &str) -> Result<u32, String> {
        match sink {
            SinkConfig::Jsonl(j) => write_line(&j.path, body).map(|_| 1),
            SinkConfig::Webhook(Webhook { url, .. }) | SinkConfig::Slack(Slack { url }) => {
                let secret = sink.secret()?;
                let mut tries = 0;
                loop {
                    tries += 1;
                    match self.post(url, body, secret.as_deref()) {
                        Ok(()) => return Ok(tries),
                        Err(e) => match self.retry_delays.get(tries as usize - 1) {
                            Some(d) => std::thread::sleep(*d),
                            None => {
                                let n = if tries == 1 { "try" } else { "tries" };
                                return Err(format!("{e} ({tries} {n})"));
                            }
                        },
                    }
                }
            }
        }
    }

    fn post(&self, url: &str, body: &str, secret: Option<&str>) -> Result<(), String> {
        let mut req = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(s) = secret {
            req = req.header(SIGNATURE_HEADER, signature(s, body.as_bytes()));
        }
        self.rt.block_on(async {
            let resp = req.send().await.map_err(|e| {
                // reqwest's message names the URL; its source says why.
                let mut why = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    why = s.to_string();
                    src = s.source();
                }
                format!("POST {}: {why}", shown(url))
            })?;
            let status = resp.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("POST {}: answered {status}", shown(url)))
            }
        })
    }
}

/// A sink's URL as messages show it: scheme and host only. The path and query of an incoming
/// webhook are its secret (`https://hooks.slack.com/services/T…/B…/<token>`), and messages
/// reach logs.
pub fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let more = if host_end < rest.len() { "/…" } else { "" };
    format!("{scheme}://{host}{more}")
}

fn write_line(path: &str, body: &str) -> Result<(), String> {
    if path == "-" {
        let mut out = std::io::stdout().lock();
        return writeln!(out, "{body}")
            .and_then(|_| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    f.write_all(format!("{body}\n").as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(|e| format!("cannot write {path}: {e}"))
}

/// The commented `[[sink]]` part of `--example-config`.
pub const EXAMPLE: &str = r#"# Where alerts go: any number of [[sink]] tables (none: alerts are printed, and the exit
# code of `--once` says whether one fired). A delivery that fails is retried within the
# round (3 tries, after 0.5 s and 1 s), then kept in the monitor's state directory and
# retried every round until it succeeds: never dropped. Each sink receives each alert once.

# A generic webhook: POST of the alert as JSON (rule, severity, records, summary, why,
# details, key, log {origin, size, root}, links, monitor {version, host}, time), signed:
# header X-Tftrail-Signature-256: sha256=<hex HMAC-SHA256 of the body with the secret>.
# Any 2xx answer is a delivery.
[[sink]]
type = "webhook"
url = "https://hooks.example.com/tftrail"
# The shared secret (no default: without one, no signature header is sent) …
secret = "shared-hmac-secret"
# … or the name of an environment variable holding it, instead of `secret`.
# secret_env = "TFTRAIL_WEBHOOK_SECRET"

# A Slack-compatible incoming webhook: POST {"text": "…"}.
# [[sink]]
# type = "slack"
# url = "https://hooks.slack.com/services/T000/B000/XXXX"

# JSON Lines: one alert a line (the webhook's JSON), appended to a file and fsynced, or
# "-" for stdout.
# [[sink]]
# type = "jsonl"
# path = "/var/log/tftrail-alerts.jsonl"
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn messages_show_no_webhook_secret() {
        assert_eq!(
            super::shown("https://hooks.slack.com/services/T000/B000/XXXXsecret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            super::shown("http://u:pw@127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(super::shown("https://h?token=abc"), "https://h/…");
        let c = crate::MonitorConfig::parse(
            "[[sink]]\ntype = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/topsecret\"\n",
        )
        .unwrap();
        assert!(!c.sinks[0].describe().contains("topsecret"));
    }

    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1.
        let h = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex::encode(h),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 6: a key longer than the block.
        let h = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(h),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn parse(text: &str) -> Result<Vec<SinkConfig>, String> {
        let c = crate::MonitorConfig::parse(text)?;
        Ok(c.sinks)
    }

    #[test]
    fn settings_are_checked() {
        let s =
            parse("[[sink]]\ntype = \"webhook\"\nurl = \"https://h/x\"\nsecret = \"s\"\n").unwrap();
        assert!(matches!(&s[0], SinkConfig::Webhook(w) if w.url == "https://h/x"));
        // The secret never shows in debug output.
        assert!(!format!("{s:?}").contains("\"s\""));
        for (text, want) in [
            ("type = \"webhook\"\nurl = \"ftp://h\"", "not an http"),
            ("type = \"slack\"\nurl = \"https://\"", "has no host"),
            ("type = \"jsonl\"\npath = \"\"", "`path` is empty"),
            (
                "type = \"webhook\"\nurl = \"https://h\"\nsecret = \"\"",
                "`secret` is empty",
            ),
            (
                "type = \"webhook\"\nurl = \"https://h\"\nsekret = \"x\"",
                "sekret",
            ),
            ("type = \"pager\"\nurl = \"https://h\"", "pager"),
        ] {
            let e = parse(&format!("[[sink]]\n{text}\n")).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn ids_ignore_the_secret() {
        let a =
            parse("[[sink]]\ntype = \"webhook\"\nurl = \"https://h/x\"\nsecret = \"a\"\n").unwrap();
        let b =
            parse("[[sink]]\ntype = \"webhook\"\nurl = \"https://h/x\"\nsecret = \"b\"\n").unwrap();
        let c = parse("[[sink]]\ntype = \"slack\"\nurl = \"https://h/x\"\n").unwrap();
        assert_eq!(a[0].id(), b[0].id());
        assert_ne!(a[0].id(), c[0].id());
    }

    #[test]
    fn example_parses() {
        let s = parse(EXAMPLE).unwrap();
        assert_eq!(s.len(), 1);
    }

    fn alert() -> Alert {
        Alert {
            rule: "destroy".into(),
            severity: crate::Severity::Critical,
            records: vec![7, 9],
            summary: "2 resources deleted by token:ci".into(),
            why: "deletes of *.prod_* are watched".into(),
            details: json!({"addresses": ["terraform_data.prod_db"]}),
            key: "destroy:7".into(),
        }
    }

    fn cx(ui: Option<&str>) -> Context {
        Context {
            origin: "o.example/log".into(),
            size: 10,
            root: "cm9vdA==".into(),
            ui_url: ui.map(String::from),
            host: "watcher".into(),
            time: "2026-01-05T10:00:00Z".into(),
        }
    }

    /// One HTTP request received on loopback: (request head, body); answers `status`.
    fn receive_one(status: u16) -> (String, std::thread::JoinHandle<(String, String)>) {
        use std::io::{BufRead, BufReader, Read};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/slack", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut s = s;
            write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n").unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        (url, h)
    }

    #[test]
    fn slack_gets_text_with_links_and_no_signature() {
        let (url, h) = receive_one(200);
        let sink = SinkConfig::Slack(Slack { url: url.clone() });
        let b = body(&sink, &alert(), &cx(Some("https://ui.example/")));
        Sender::new().unwrap().send(&sink, &b).unwrap();
        let (head, got) = h.join().unwrap();
        assert!(head.starts_with("post /slack "), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(!head.contains("x-tftrail-signature-256"), "{head}");
        let v: Value = serde_json::from_str(&got).unwrap();
        let text = v["text"].as_str().unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        for want in [
            "*[critical] destroy*: 2 resources deleted by token:ci",
            "deletes of *.prod_* are watched",
            "<https://ui.example/records/7|#7>, <https://ui.example/records/9|#9>",
            "log o.example/log at size 10",
        ] {
            assert!(text.contains(want), "{want:?} not in {text}");
        }
        // Without a UI, the records by index.
        let b = body(&sink, &alert(), &cx(None));
        assert!(b.contains("records: #7, #9"), "{b}");
    }

    #[test]
    fn a_webhook_answering_500_fails_after_its_tries() {
        let (url, h) = receive_one(500);
        let sink = SinkConfig::Webhook(Webhook {
            url,
            secret: Some(Secret("s".into())),
            secret_env: None,
        });
        let mut sender = Sender::new().unwrap();
        sender.retry_delays = vec![];
        let e = sender.send(&sink, "{}").unwrap_err();
        assert!(e.contains("answered 500") && e.contains("(1 try)"), "{e}");
        let (head, _) = h.join().unwrap();
        assert!(
            head.contains(&format!(
                "x-tftrail-signature-256: {}",
                signature("s", b"{}")
            )),
            "{head}"
        );
    }

    #[test]
    fn the_document_carries_the_alert_and_where_it_comes_from() {
        let d = document(&alert(), &cx(Some("https://ui.example")));
        assert_eq!(d["rule"], "destroy");
        assert_eq!(d["severity"], "critical");
        assert_eq!(d["records"], json!([7, 9]));
        assert_eq!(d["key"], "destroy:7");
        assert_eq!(
            d["log"],
            json!({"origin": "o.example/log", "size": 10, "root": "cm9vdA=="})
        );
        assert_eq!(
            d["links"],
            json!([
                "https://ui.example/records/7",
                "https://ui.example/records/9"
            ])
        );
        assert_eq!(d["monitor"]["host"], "watcher");
        assert_eq!(d["time"], "2026-01-05T10:00:00Z");
    }

    #[test]
    fn jsonl_appends_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jsonl");
        let sink = SinkConfig::Jsonl(Jsonl {
            path: p.to_string_lossy().into(),
        });
        let s = Sender::new().unwrap();
        s.send(&sink, "{\"a\":1}").unwrap();
        s.send(&sink, "{\"a\":2}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
    }
}
