//! `tftrail serve` as Terraform's (and OpenTofu's) `http` state backend, with real Terraform
//! over loopback: plain `terraform apply` (no wrapper) writes, locks and unlocks state through
//! the server, and every write is a record with the caller's identity and the changed values;
//! concurrent applies, force-unlock, refusals, secrets kept out of the log, `state pull` /
//! `state push`, runs linked to their intent, `check-state`, and a restart with a lock held.
//!
//! Each Terraform test runs twice: with Terraform (`TFTRAIL_TERRAFORM`, else `terraform` on
//! PATH; required) and with OpenTofu when `TFTRAIL_TOFU` names a `tofu` binary (else that
//! variant prints a note and passes without running).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::server::Server;
use common::{code, describe, stderr, stdout, Env};
use serde_json::{json, Value};
use sha2::Digest;

/// Longest a Terraform command may take before the test fails.
const TF_LIMIT: Duration = Duration::from_secs(180);

/// The program under test: Terraform or OpenTofu.
struct Tf {
    bin: PathBuf,
    name: &'static str,
}

impl Tf {
    fn terraform() -> Tf {
        Tf {
            bin: common::terraform_bin(),
            name: "terraform",
        }
    }

    /// `TFTRAIL_TOFU`, when set. A path that does not exist makes the test fail, not skip.
    fn tofu() -> Option<Tf> {
        let p = std::env::var_os("TFTRAIL_TOFU").filter(|p| !p.is_empty())?;
        Some(Tf {
            bin: PathBuf::from(p),
            name: "tofu",
        })
    }
}

/// For each `name`, a module `name` with the tests `terraform` and `tofu`, each calling
/// `name(&Tf)`.
macro_rules! with_terraform_and_tofu {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn terraform() {
                super::$name(&super::Tf::terraform());
            }

            #[test]
            fn tofu() {
                match super::Tf::tofu() {
                    Some(tf) => super::$name(&tf),
                    None => eprintln!(
                        "skipped: TFTRAIL_TOFU names no tofu binary, so {} ran with Terraform only",
                        stringify!($name)
                    ),
                }
            }
        }
    )*};
}

with_terraform_and_tofu!(
    plain_applies_are_recorded_with_identity_and_values,
    concurrent_applies_wait_or_fail_on_the_lock_and_lose_no_write,
    force_unlock_releases_a_killed_applys_lock,
    secrets_reach_the_state_store_but_not_the_log,
    secret_looking_attribute_names_are_redacted,
    state_pull_and_push_as_with_other_http_backends,
    a_recorded_run_links_its_writes_and_a_plain_apply_is_out_of_band,
    check_state_trusts_recorded_writes_and_catches_an_altered_store,
    a_restart_keeps_the_lock_and_the_state,
);

// ---- the server and its records ----

/// A credential for one request.
#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    Bearer(&'a str),
    /// Basic auth with the token as password, as Terraform sends it.
    Basic(&'a str),
}

/// One record about a state, its `state_diff` put back when it was moved to a blob.
#[derive(Debug, Clone)]
struct Rec {
    index: u64,
    /// The part after `terraform.state.`: write, delete, lock, unlock, force_unlock, refused.
    event: String,
    payload: Value,
    actor: Value,
}

/// A log, four tokens and `tftrail serve` on loopback.
struct Backend {
    env: Env,
    server: Server,
    vkey: String,
    admin: String,
    writer: String,
    reader: String,
    /// The state store's directory.
    states: PathBuf,
    /// `tftrail serve`'s arguments (to restart it).
    args: Vec<String>,
}

impl Backend {
    /// A server with the state store under the test's temp dir (`--state-store DIR`).
    fn start(extra: &[&str]) -> Backend {
        let env = Env::new();
        let states = env.path("states");
        let mut args = vec!["--state-store".to_string(), states.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Backend::start_in(env, states, args)
    }

    /// A server with the default state store (`$XDG_DATA_HOME/tftrail/server-states`).
    fn start_default_store() -> Backend {
        let env = Env::new();
        let states = env.data.join("tftrail/server-states");
        Backend::start_in(env, states, Vec::new())
    }

    fn start_in(env: Env, states: PathBuf, args: Vec<String>) -> Backend {
        let vkey = env.init();
        let admin = env.token("admin", "root");
        let writer = env.token("writer", "ci-writer");
        let reader = env.token("reader", "viewer");
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = env.serve(&a, &[]);
        Backend {
            env,
            server,
            vkey,
            admin,
            writer,
            reader,
            states,
            args,
        }
    }

    /// SIGTERM (must exit 0), then the same command again: same log, same state store.
    fn restart(&mut self) {
        let status = self.server.terminate();
        assert!(
            status.success(),
            "tftrail serve exited {status:?} on SIGTERM\n{}",
            self.server.stderr.lock().unwrap()
        );
        let a: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.server = self.env.serve(&a, &[]);
    }

    /// `http://127.0.0.1:PORT/state/NAME`.
    fn address(&self, name: &str) -> String {
        format!("{}/state/{name}", self.server.url)
    }

    /// One request; returns (status, response headers in lower case, body).
    fn http(
        &self,
        method: &str,
        path: &str,
        cred: Cred,
        headers: &str,
        body: &[u8],
    ) -> (u16, String, String) {
        let auth = match cred {
            Cred::None => String::new(),
            Cred::Bearer(t) => format!("authorization: Bearer {t}\r\n"),
            Cred::Basic(t) => format!("authorization: Basic {}\r\n", basic("tftrail", t)),
        };
        self.server
            .exchange(method, path, &format!("{auth}{headers}"), body)
    }

    /// `POST /state/NAME{query}` of `body` with its right Content-MD5; (status, body as JSON
    /// or Null).
    fn post_state(&self, name: &str, query: &str, cred: Cred, body: &[u8]) -> (u16, Value) {
        let h = format!(
            "content-type: application/json\r\ncontent-md5: {}\r\n",
            md5_base64(body)
        );
        let (st, _, b) = self.http("POST", &format!("/state/{name}{query}"), cred, &h, body);
        (st, json_or_null(&b))
    }

    /// `LOCK` or `UNLOCK` of `name` with `body` as a writer; (status, body as JSON or Null).
    fn lock_call(&self, method: &str, name: &str, body: &Value) -> (u16, Value) {
        let text = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let (st, _, b) = self.http(
            method,
            &format!("/state/{name}"),
            Cred::Bearer(&self.writer),
            "content-type: application/json\r\n",
            &text,
        );
        (st, json_or_null(&b))
    }

    /// `GET /state/NAME` as the writer, with basic auth (as Terraform): (status, headers, body).
    fn get_state(&self, name: &str) -> (u16, String, String) {
        self.http(
            "GET",
            &format!("/state/{name}"),
            Cred::Basic(&self.writer),
            "",
            b"",
        )
    }

    /// A GET of a JSON endpoint that must answer 200.
    fn get_json(&self, path: &str, token: &str) -> Value {
        let (st, _, b) = self.http("GET", path, Cred::Bearer(token), "", b"");
        assert_eq!(st, 200, "GET {path}: {b}");
        serde_json::from_str(&b).unwrap_or_else(|_| panic!("GET {path}: not JSON: {b}"))
    }

    /// Every `terraform.state.*` record about `name`, oldest first.
    fn state_log(&self, name: &str) -> Vec<Rec> {
        self.server
            .records(&self.admin)
            .into_iter()
            .filter_map(|r| {
                let kind = r["record"]["kind"].as_str()?;
                let event = kind.strip_prefix("terraform.state.")?;
                if r["record"]["payload"]["state"] != name {
                    return None;
                }
                let mut payload = r["record"]["payload"].clone();
                self.inflate(&mut payload);
                Some(Rec {
                    index: r["index"].as_u64().unwrap(),
                    event: event.to_string(),
                    payload,
                    actor: r["record"]["actor"].clone(),
                })
            })
            .collect()
    }

    /// Records of `name` after index `since` (exclusive; `None`: all).
    fn state_log_since(&self, name: &str, since: Option<u64>) -> Vec<Rec> {
        self.state_log(name)
            .into_iter()
            .filter(|r| since.is_none_or(|s| r.index > s))
            .collect()
    }

    /// The highest record index so far (None: empty log).
    fn last_index(&self) -> Option<u64> {
        self.server
            .records(&self.admin)
            .last()
            .map(|r| r["index"].as_u64().unwrap())
    }

    /// A `state_diff` moved to a blob (records over 4 KiB) put back.
    fn inflate(&self, payload: &mut Value) {
        let Some(sha) = payload
            .pointer("/state_diff/in_blob/sha256")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return;
        };
        let (st, _, b) = self.http(
            "GET",
            &format!("/v1/blobs/{sha}"),
            Cred::Bearer(&self.admin),
            "",
            b"",
        );
        assert_eq!(st, 200, "blob {sha}: {b}");
        payload["state_diff"] = serde_json::from_str(&b).expect("state diff blob is JSON");
    }

    /// `/metrics`' count of answers with `status`.
    fn answered(&self, status: u16) -> u64 {
        let (st, _, m) = self.http("GET", "/metrics", Cred::Bearer(&self.admin), "", b"");
        assert_eq!(st, 200, "{m}");
        let key = format!("tftrail_http_requests_total{{status=\"{status}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// A Terraform working directory using this server's `/state/NAME` as its backend,
    /// initialised (`init -input=false`).
    fn workspace<'a>(&'a self, tf: &'a Tf, name: &str, config: &str) -> Ws<'a> {
        let dir = self
            .env
            .path(&format!("ws-{}-{}", tf.name, name.replace('/', "-")));
        std::fs::create_dir_all(&dir).unwrap();
        let ws = Ws {
            b: self,
            tf,
            dir,
            name: name.to_string(),
            password: self.writer.clone(),
        };
        ws.configure(config);
        ws.ok(&["init", "-input=false"]);
        ws
    }
}

/// A Terraform working directory on the server's backend.
struct Ws<'a> {
    b: &'a Backend,
    tf: &'a Tf,
    dir: PathBuf,
    name: String,
    /// `TF_HTTP_PASSWORD`.
    password: String,
}

impl Ws<'_> {
    /// Writes `main.tf`: the backend block (the server's current address), then `body`.
    fn configure(&self, body: &str) {
        let addr = self.b.address(&self.name);
        let block = format!(
            "terraform {{\n  backend \"http\" {{\n    address        = \"{addr}\"\n    lock_address   = \"{addr}\"\n    unlock_address = \"{addr}\"\n    username       = \"tftrail\"\n  }}\n}}\n"
        );
        std::fs::write(self.dir.join("main.tf"), format!("{block}{body}")).unwrap();
    }

    /// The program with Terraform's test environment and the backend's password.
    fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut c = Command::new(&self.tf.bin);
        c.env("HOME", &self.b.env.home);
        self.b.env.tf_env(&mut c);
        for k in [
            "TF_HTTP_ADDRESS",
            "TF_HTTP_USERNAME",
            "TF_HTTP_LOCK_ADDRESS",
            "TF_HTTP_UNLOCK_ADDRESS",
            "TF_LOG",
            "TF_DATA_DIR",
        ] {
            c.env_remove(k);
        }
        c.env("TF_HTTP_PASSWORD", &self.password)
            .current_dir(&self.dir)
            .args(args)
            .envs(envs.iter().copied());
        c
    }

    /// Runs the program (bounded by [`TF_LIMIT`]).
    fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        run_bounded(self.command(args, envs), TF_LIMIT)
    }

    /// Runs the program; it must exit 0.
    fn ok(&self, args: &[&str]) -> Output {
        self.ok_with(args, &[])
    }

    fn ok_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let out = self.run(args, envs);
        assert_eq!(
            code(&out),
            0,
            "{} {args:?} failed\n{}\n--- server\n{}",
            self.tf.name,
            describe(&out),
            self.b.server.stderr.lock().unwrap()
        );
        out
    }

    /// Starts the program without waiting (stdout and stderr piped), in its own process group.
    fn spawn(&self, args: &[&str]) -> Child {
        use std::os::unix::process::CommandExt;
        let mut c = self.command(args, &[]);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        c.spawn().expect("start terraform")
    }

    /// `tftrail ARGS…` in this directory talking to the server with the writer's token (and
    /// only the verifier key), with Terraform's test environment. Its `USER` (the harness's
    /// "tester") differs from the user in Terraform's lock `Who` (the uid's passwd name), as
    /// it may for real users: the server links a run and a lock by host.
    fn tftrail(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut c = self.b.env.client(&self.b.server, &self.b.writer, args);
        self.b.env.tf_env(&mut c);
        c.env("TFTRAIL_KEY", &self.b.vkey)
            .env("TF_HTTP_PASSWORD", &self.password)
            .current_dir(&self.dir)
            .envs(envs.iter().copied());
        run_bounded(c, TF_LIMIT)
    }
}

// ---- helpers ----

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// Base64 of the MD5 of `data`, computed by coreutils' `md5sum` (independent of the server).
fn md5_base64(data: &[u8]) -> String {
    use base64::Engine as _;
    let mut c = Command::new("md5sum");
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let out = common::run(c, Some(data));
    assert!(out.status.success(), "md5sum failed");
    let hexed = String::from_utf8(out.stdout).unwrap();
    let raw = hex::decode(hexed.split_whitespace().next().unwrap()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn json_or_null(b: &str) -> Value {
    serde_json::from_str(b).unwrap_or(Value::Null)
}

/// A value of a response header (headers as [`Server::exchange`] gives them: all lower case,
/// values too, so a base64 value is compared lower-cased).
fn header<'h>(headers: &'h str, name: &str) -> Option<&'h str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// Runs `c` to its end, killing it (and failing the test) after `limit`.
fn run_bounded(mut c: Command, limit: Duration) -> Output {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", c.get_program()));
    wait_bounded(child, limit)
}

/// Waits for a child started with piped stdout and stderr, at most `limit`.
fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "a command did not finish within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.join().unwrap()),
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Polls `f` every 100 ms until it gives `Some`, at most `limit`; panics with `what`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn of<'r>(recs: &'r [Rec], event: &str) -> Vec<&'r Rec> {
    recs.iter().filter(|r| r.event == event).collect()
}

/// The `state_diff.values` entry for `address` in any of `writes` (the last one found).
fn values_of<'r>(writes: &[&'r Rec], address: &str) -> &'r Value {
    writes
        .iter()
        .rev()
        .find_map(|w| {
            w.payload["state_diff"]["values"]
                .as_array()?
                .iter()
                .find(|v| v["address"] == address)
        })
        .unwrap_or_else(|| panic!("no values for {address} in {writes:#?}"))
}

/// The attribute entry with `path` of one instance's values.
fn attribute<'v>(values: &'v Value, path: &str) -> &'v Value {
    values["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["path"] == path))
        .unwrap_or_else(|| panic!("no attribute {path} in {values:#}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A resource instance's `attributes` in a state document.
fn instance_attributes<'s>(state: &'s Value, name: &str) -> &'s Value {
    state["resources"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["type"] == "terraform_data" && r["name"] == name)
        })
        .map(|r| &r["instances"][0]["attributes"])
        .unwrap_or_else(|| panic!("no terraform_data.{name} in {state:#}"))
}

/// A write's identity checks: the writer token, the lock's Who as the self-asserted user.
fn assert_written_by_writer(w: &Rec) {
    let a = &w.actor["authenticated"];
    assert_eq!(a["by"], "token", "{w:#?}");
    assert_eq!(a["name"], "ci-writer", "{w:#?}");
    assert_eq!(a["role"], "writer", "{w:#?}");
}

/// Every file below `dir`, dot-files included (SQLite's -wal and -shm, stores' temp files).
fn every_file(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Files below `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    every_file(dir)
        .into_iter()
        .filter(|p| {
            let d = std::fs::read(p).unwrap_or_default();
            d.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .collect()
}

/// A value unique to this test run.
fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{n:x}p{}", std::process::id())
}

/// A `local-exec` provisioner's command that waits (at most 120 s) until `file` exists.
fn wait_for_file_command(file: &Path) -> String {
    format!(
        "i=0; while [ ! -e '{}' ]; do i=$((i+1)); if [ $i -gt 1200 ]; then exit 1; fi; sleep 0.1; done",
        file.display()
    )
}

// ---- configurations ----

const WEB_AND_DB: &str = r#"
variable "ver" {
  type    = string
  default = "v1"
}

resource "terraform_data" "web" {
  input = var.ver
}

resource "terraform_data" "db" {
  input = "db"
}
"#;

const WEB_ONLY: &str = r#"
variable "ver" {
  type    = string
  default = "v1"
}

resource "terraform_data" "web" {
  input = var.ver
}
"#;

// ---- tests ----

fn plain_applies_are_recorded_with_identity_and_values(tf: &Tf) {
    // The default state store ($XDG_DATA_HOME/tftrail/server-states).
    let b = Backend::start_default_store();
    let name = "team/prod";
    let ws = b.workspace(tf, name, WEB_AND_DB);
    // Nothing to read yet: 204.
    assert_eq!(b.get_state(name).0, 204);

    // Create.
    let mark = b.last_index();
    ws.ok(&["apply", "-input=false", "-auto-approve"]);
    let create = b.state_log_since(name, mark);
    let w = one_locked_apply(&create);
    let first = w[0];
    assert_eq!(
        first.payload["before"],
        json!({"present": false}),
        "{first:#?}"
    );
    let last = w[w.len() - 1];
    assert_eq!(last.payload["after"]["present"], true, "{last:#?}");
    assert_eq!(last.payload["after"]["resources"], 2, "{last:#?}");
    let added: Vec<String> = w
        .iter()
        .flat_map(|r| strings(&r.payload["state_diff"]["added"]))
        .collect();
    assert_eq!(added, ["terraform_data.db", "terraform_data.web"], "{w:#?}");
    let web = values_of(&w, "terraform_data.web");
    assert_eq!(web["change"], "added", "{web:#}");
    let input = attribute(web, "input");
    assert_eq!(
        (&input["before"], &input["after"]),
        (&Value::Null, &json!("v1"))
    );
    for r in &w {
        assert_eq!(r.payload["out_of_band"], true, "{r:#?}");
        assert_eq!(r.payload["run"], Value::Null, "{r:#?}");
        assert_eq!(r.payload["forced"], false, "{r:#?}");
    }

    // What GET answers is what was written, with its MD5, and the state store holds it.
    let (st, h, body) = b.get_state(name);
    assert_eq!(st, 200, "{body}");
    assert!(
        header(&h, "content-type").is_some_and(|t| t.starts_with("application/json")),
        "{h}"
    );
    assert_eq!(
        header(&h, "content-md5"),
        Some(md5_base64(body.as_bytes()).to_ascii_lowercase().as_str()),
        "{h}"
    );
    let sha = sha256_hex(body.as_bytes());
    assert_eq!(last.payload["after"]["sha256"], sha, "{last:#?}");
    let stored = b.states.join(name).join(format!("{sha}.tfstate"));
    assert_eq!(
        std::fs::read(&stored).unwrap_or_else(|e| panic!("{}: {e}", stored.display())),
        body.as_bytes()
    );

    // Update: an input changes.
    let mark = b.last_index();
    ws.ok(&["apply", "-input=false", "-auto-approve", "-var", "ver=v2"]);
    let update = b.state_log_since(name, mark);
    let w = one_locked_apply(&update);
    let web = values_of(&w, "terraform_data.web");
    assert_eq!(web["change"], "changed", "{web:#}");
    let input = attribute(web, "input");
    assert_eq!(
        (&input["before"], &input["after"]),
        (&json!("v1"), &json!("v2")),
        "{web:#}"
    );
    assert!(
        w.iter().any(|r| r.payload["state_diff"]["changed"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["address"] == "terraform_data.web"
                && strings(&c["paths"]).contains(&"input".to_string())))),
        "{w:#?}"
    );
    // The CLI's views show the values of a write made through the backend.
    let wrote = w
        .iter()
        .find(|r| r.payload["state_diff"]["values"].is_array())
        .unwrap();
    let show = stdout(&ws.tftrail(&["show", &wrote.index.to_string()], &[]));
    assert!(
        show.lines().any(|l| l == r#"      ~ input = "v1" -> "v2""#),
        "{show}"
    );
    let blame = stdout(&ws.tftrail(&["blame", "terraform_data.web"], &[]));
    assert!(
        blame.lines().any(|l| l == r#"    ~ input = "v1" -> "v2""#),
        "{blame}"
    );

    // A long value: truncated in the write's record, whole in its blob.
    let long = "L".repeat(600);
    let mark = b.last_index();
    ws.ok(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-var",
        &format!("ver={long}"),
    ]);
    let long_write = b.state_log_since(name, mark);
    let w = one_locked_apply(&long_write);
    let cut = w
        .iter()
        .find(|r| r.payload["state_diff"]["truncated"] == true)
        .unwrap_or_else(|| panic!("no truncated write: {w:#?}"));
    assert_eq!(
        cut.payload["state_diff"]["full"]["blob"],
        "state-diff-full.json"
    );
    let input = attribute(values_of(&[cut], "terraform_data.web"), "input");
    let after = input["after"].as_str().unwrap();
    assert!(
        after.starts_with(&"L".repeat(64))
            && after.ends_with(&format!(
                "…(truncated, sha256 {}, 600 bytes)",
                sha256_hex(long.as_bytes())
            )),
        "{after}"
    );
    let i = cut.index.to_string();
    assert!(!stdout(&ws.tftrail(&["show", &i], &[])).contains(&long));
    let full = stdout(&ws.tftrail(&["show", &i, "--full"], &[]));
    assert!(
        full.lines()
            .any(|l| l == format!(r#"      ~ input = "v2" -> "{long}""#)),
        "{full}"
    );

    // Delete: a resource leaves the configuration.
    ws.configure(WEB_ONLY);
    let mark = b.last_index();
    ws.ok(&["apply", "-input=false", "-auto-approve", "-var", "ver=v2"]);
    let delete = b.state_log_since(name, mark);
    let w = one_locked_apply(&delete);
    let db = values_of(&w, "terraform_data.db");
    assert_eq!(db["change"], "removed", "{db:#}");
    let input = attribute(db, "input");
    assert_eq!(
        (&input["before"], &input["after"]),
        (&json!("db"), &Value::Null)
    );
    let removed: Vec<String> = w
        .iter()
        .flat_map(|r| strings(&r.payload["state_diff"]["removed"]))
        .collect();
    assert_eq!(removed, ["terraform_data.db"]);

    // Destroy.
    let mark = b.last_index();
    ws.ok(&["destroy", "-input=false", "-auto-approve", "-var", "ver=v2"]);
    let destroy = b.state_log_since(name, mark);
    let w = one_locked_apply(&destroy);
    assert_eq!(values_of(&w, "terraform_data.web")["change"], "removed");
    assert_eq!(w[w.len() - 1].payload["after"]["resources"], 0);

    // Every write: the writer's identity, serials up, each `before` the previous `after`.
    let all = b.state_log(name);
    let writes = of(&all, "write");
    for pair in writes.windows(2) {
        let (p, n) = (&pair[0].payload, &pair[1].payload);
        assert!(
            n["after"]["serial"].as_u64() > p["after"]["serial"].as_u64(),
            "serials do not increase: {p:#} then {n:#}"
        );
        assert_eq!(n["before"]["sha256"], p["after"]["sha256"], "{n:#}");
    }
    // The versions listing is the writes, and each version's bytes are there.
    let versions = b.get_json(&format!("/v1/state/{name}/versions"), &b.writer);
    let listed = versions["versions"].as_array().unwrap();
    assert_eq!(versions["name"], name);
    assert_eq!(
        listed
            .iter()
            .map(|v| v["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        writes.iter().map(|w| w.index).collect::<Vec<_>>(),
        "{versions:#}"
    );
    for (v, w) in listed.iter().zip(&writes) {
        assert_eq!(v["event"], "write", "{v}");
        assert_eq!(v["sha256"], w.payload["after"]["sha256"], "{v}");
        assert_eq!(v["serial"], w.payload["after"]["serial"], "{v}");
        assert_eq!(v["by"]["name"], "ci-writer", "{v}");
        assert_eq!(v["forced"], false, "{v}");
        let sha = v["sha256"].as_str().unwrap();
        let (st, _, bytes) = b.http(
            "GET",
            &format!("/v1/state/{name}/versions/{sha}"),
            Cred::Bearer(&b.admin),
            "",
            b"",
        );
        assert_eq!(st, 200, "{bytes}");
        assert_eq!(sha256_hex(bytes.as_bytes()), sha);
        assert!(b.states.join(name).join(format!("{sha}.tfstate")).is_file());
    }
    let states = b.get_json("/v1/state", &b.writer);
    let entry = states["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{states:#}"));
    assert_eq!(
        entry["serial"],
        writes[writes.len() - 1].payload["after"]["serial"]
    );
    assert_eq!(entry["locked"], Value::Null, "{entry}");

    // blame and history show the changes made by plain Terraform, by the token's name.
    let changes = |cmd: &str, addr: &str| -> Vec<(u64, String)> {
        let v: Value = serde_json::from_str(&b.env.ok(&[cmd, addr, "--json"], None)).expect("JSON");
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert_eq!(c["kind"], "terraform.state.write", "{c}");
                assert_eq!(c["actor"]["authenticated"]["name"], "ci-writer", "{c}");
                (
                    c["index"].as_u64().unwrap(),
                    c["action"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let holding = |recs: &[Rec], addr: &str| -> u64 {
        of(recs, "write")
            .into_iter()
            .find(|w| {
                w.payload["state_diff"]["values"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v["address"] == addr))
            })
            .unwrap_or_else(|| panic!("no write changes {addr}: {recs:#?}"))
            .index
    };
    let web_writes = [
        (holding(&create, "terraform_data.web"), "create".to_string()),
        (holding(&update, "terraform_data.web"), "update".to_string()),
        (
            holding(&long_write, "terraform_data.web"),
            "update".to_string(),
        ),
        // The delete step sets `ver` back.
        (holding(&delete, "terraform_data.web"), "update".to_string()),
        (
            holding(&destroy, "terraform_data.web"),
            "delete".to_string(),
        ),
    ];
    assert_eq!(changes("history", "terraform_data.web"), web_writes);
    assert_eq!(
        changes("history", "terraform_data.db"),
        [
            (holding(&create, "terraform_data.db"), "create".to_string()),
            (holding(&delete, "terraform_data.db"), "delete".to_string()),
        ]
    );
    assert_eq!(
        changes("blame", "terraform_data.web"),
        [web_writes[web_writes.len() - 1].clone()]
    );
    let text = b.env.ok(&["history", "terraform_data.web"], None);
    assert!(text.contains("terraform.state.write"), "{text}");

    // The log verifies.
    b.env.ok(&["verify"], None);
}

/// The records of one apply: exactly one lock and one unlock with the same ID, every write
/// between them under that lock (by the writer, with the lock's Who); returns the writes.
fn one_locked_apply(recs: &[Rec]) -> Vec<&Rec> {
    let locks = of(recs, "lock");
    let unlocks = of(recs, "unlock");
    let writes: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.event == "write" || r.event == "delete")
        .collect();
    assert_eq!(locks.len(), 1, "{recs:#?}");
    assert_eq!(unlocks.len(), 1, "{recs:#?}");
    assert!(!writes.is_empty(), "no write recorded: {recs:#?}");
    let lock = &locks[0].payload["lock"];
    let id = lock["id"].as_str().expect("lock id");
    assert!(!id.is_empty());
    assert_eq!(lock["operation"], "OperationTypeApply", "{lock:#}");
    let who = lock["who"].as_str().unwrap_or("");
    assert!(who.contains('@'), "{lock:#}");
    assert_eq!(unlocks[0].payload["lock"]["id"], id, "{recs:#?}");
    for w in &writes {
        assert!(
            locks[0].index < w.index && w.index < unlocks[0].index,
            "{recs:#?}"
        );
        assert_eq!(w.payload["lock"]["id"], id, "{w:#?}");
        assert_eq!(w.payload["lock"]["who"], who, "{w:#?}");
        assert_written_by_writer(w);
        let (user, host) = who.split_once('@').unwrap();
        assert_eq!(w.actor["user"], user, "{w:#?}");
        assert_eq!(w.actor["host"], host, "{w:#?}");
    }
    assert_written_by_writer(locks[0]);
    writes
}

const TWO_WITH_A_SLOW_CREATE: &str = r#"
variable "a" {
  type    = string
  default = "a0"
}

variable "b" {
  type    = string
  default = "b0"
}

resource "terraform_data" "a" {
  input = var.a
  provisioner "local-exec" {
    command = "WAIT"
  }
}

resource "terraform_data" "b" {
  input = var.b
}
"#;

fn concurrent_applies_wait_or_fail_on_the_lock_and_lose_no_write(tf: &Tf) {
    let b = Backend::start(&[]);
    let name = "team/shared";
    let release = b.env.path("release");
    let config = TWO_WITH_A_SLOW_CREATE.replace("WAIT", &wait_for_file_command(&release));
    let ws = b.workspace(tf, name, &config);

    // A holds the lock: its create waits for the test's signal.
    let mark = b.last_index();
    let a = ws.spawn(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-target=terraform_data.a",
        "-var",
        "a=a1",
    ]);
    let a_lock = wait_for("A's lock record", Duration::from_secs(60), || {
        of(&b.state_log_since(name, mark), "lock")
            .first()
            .map(|r| r.payload["lock"].clone())
    });
    let a_id = a_lock["id"].as_str().unwrap().to_string();
    let locked_answers = b.answered(423);

    // C, without -lock-timeout, fails on the lock and names the holder.
    let c = ws.run(
        &[
            "apply",
            "-input=false",
            "-auto-approve",
            "-target=terraform_data.b",
            "-var",
            "b=bX",
        ],
        &[],
    );
    assert_ne!(code(&c), 0, "{}", describe(&c));
    let text = stdout(&c) + &stderr(&c);
    assert!(text.contains("Error acquiring the state lock"), "{text}");
    assert!(
        text.contains(&a_id),
        "the holder's lock ID is not shown: {text}"
    );

    // B, with -lock-timeout, waits: it was answered 423 at least once before A finished.
    let bproc = ws.spawn(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-lock-timeout=60s",
        "-target=terraform_data.b",
        "-var",
        "b=b2",
    ]);
    wait_for("B to meet the lock", Duration::from_secs(60), || {
        (b.answered(423) >= locked_answers + 2).then_some(())
    });
    std::fs::write(&release, b"go").unwrap();
    let a_out = wait_bounded(a, TF_LIMIT);
    assert_eq!(code(&a_out), 0, "A: {}", describe(&a_out));
    let b_out = wait_bounded(bproc, TF_LIMIT);
    assert_eq!(code(&b_out), 0, "B: {}", describe(&b_out));

    // No write lost: the state holds both changes.
    let (st, _, body) = b.get_state(name);
    assert_eq!(st, 200, "{body}");
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        instance_attributes(&state, "a")["input"]["value"],
        "a1",
        "{state:#}"
    );
    assert_eq!(
        instance_attributes(&state, "b")["input"]["value"],
        "b2",
        "{state:#}"
    );

    // The records: A locks, writes, unlocks; then B; serials strictly increase.
    let recs = b.state_log_since(name, mark);
    let locks = of(&recs, "lock");
    let unlocks = of(&recs, "unlock");
    assert_eq!(locks.len(), 2, "C must not have got the lock: {recs:#?}");
    assert_eq!(unlocks.len(), 2, "{recs:#?}");
    assert_eq!(locks[0].payload["lock"]["id"], a_id.as_str());
    assert_eq!(unlocks[0].payload["lock"]["id"], a_id.as_str());
    let b_id = locks[1].payload["lock"]["id"].as_str().unwrap().to_string();
    assert_ne!(a_id, b_id);
    assert_eq!(unlocks[1].payload["lock"]["id"], b_id.as_str());
    assert!(unlocks[0].index < locks[1].index, "{recs:#?}");
    let writes = of(&recs, "write");
    assert!(writes.len() >= 2, "{recs:#?}");
    for w in &writes {
        let id = w.payload["lock"]["id"].as_str().unwrap();
        let (lock, unlock) = if id == a_id {
            (locks[0], unlocks[0])
        } else {
            assert_eq!(id, b_id, "{w:#?}");
            (locks[1], unlocks[1])
        };
        assert!(lock.index < w.index && w.index < unlock.index, "{recs:#?}");
    }
    assert!(writes
        .iter()
        .any(|w| w.payload["lock"]["id"] == a_id.as_str()));
    assert!(writes
        .iter()
        .any(|w| w.payload["lock"]["id"] == b_id.as_str()));
    let serials: Vec<u64> = writes
        .iter()
        .map(|w| w.payload["after"]["serial"].as_u64().unwrap())
        .collect();
    assert!(serials.windows(2).all(|p| p[0] < p[1]), "{serials:?}");
    assert_eq!(
        writes[writes.len() - 1].payload["after"]["sha256"],
        sha256_hex(body.as_bytes())
    );
}

fn force_unlock_releases_a_killed_applys_lock(tf: &Tf) {
    let b = Backend::start(&[]);
    let name = "team/stuck";
    let release = b.env.path("release");
    let config = TWO_WITH_A_SLOW_CREATE.replace("WAIT", &wait_for_file_command(&release));
    let ws = b.workspace(tf, name, &config);
    ws.ok(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-target=terraform_data.b",
    ]);

    // An apply killed (SIGKILL, its whole process group) while it holds the lock.
    let mark = b.last_index();
    let mut a = ws.spawn(&["apply", "-input=false", "-auto-approve"]);
    let held = wait_for("the apply's lock record", Duration::from_secs(60), || {
        of(&b.state_log_since(name, mark), "lock")
            .first()
            .map(|r| r.payload["lock"].clone())
    });
    let pgid = rustix::process::Pid::from_child(&a);
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    let _ = a.wait();
    std::fs::write(&release, b"go").unwrap();
    let id = held["id"].as_str().unwrap().to_string();
    let who = held["who"].as_str().unwrap().to_string();

    // The lock outlives its holder: another locker gets 423 with the holder's LockInfo.
    let (st, v) = b.lock_call(
        "LOCK",
        name,
        &json!({"ID": "someone-else", "Operation": "OperationTypeApply", "Who": "eve@elsewhere",
                "Version": "1.11.4", "Created": "2026-01-01T00:00:00Z", "Info": "", "Path": ""}),
    );
    assert_eq!(st, 423, "{v}");
    assert_eq!(v["ID"], id.as_str(), "{v}");
    assert_eq!(v["Who"], who.as_str(), "{v}");
    let listed = b.get_json("/v1/state", &b.writer);
    let entry = listed["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{listed:#}"));
    assert_eq!(entry["locked"]["ID"], id.as_str(), "{entry}");

    // A plain apply fails on it; force-unlock releases it, recorded with the holder's Who.
    let out = ws.run(&["apply", "-input=false", "-auto-approve"], &[]);
    assert_ne!(code(&out), 0, "{}", describe(&out));
    let mark = b.last_index();
    ws.ok(&["force-unlock", "-force", &id]);
    let recs = b.state_log_since(name, mark);
    let fu = of(&recs, "force_unlock");
    assert_eq!(fu.len(), 1, "{recs:#?}");
    let p = &fu[0].payload;
    assert_eq!(p["lock"]["id"], id.as_str(), "{p:#}");
    assert_eq!(p["lock"]["who"], who.as_str(), "{p:#}");
    assert_eq!(p["lock"]["operation"], "OperationTypeApply", "{p:#}");
    // Terraform 1.11's force-unlock sends an empty UNLOCK body, so the ID sent is "" (a
    // later version or OpenTofu may send it: either is what was sent).
    assert!(
        p["requested_id"] == "" || p["requested_id"] == id.as_str(),
        "{p:#}"
    );
    assert_written_by_writer(fu[0]);
    assert!(of(&recs, "unlock").is_empty(), "{recs:#?}");
    // Now an apply goes through.
    ws.ok(&["apply", "-input=false", "-auto-approve"]);

    // A lock taken by hand (another tool), force-unlocked by Terraform.
    let info = json!({"ID": "manual-lock-1", "Operation": "OperationTypeApply", "Info": "by hand",
        "Who": "alice@laptop", "Version": "1.11.4", "Created": "2026-01-01T00:00:00Z", "Path": ""});
    assert_eq!(b.lock_call("LOCK", name, &info).0, 200);
    let mark = b.last_index();
    ws.ok(&["force-unlock", "-force", "manual-lock-1"]);
    let recs = b.state_log_since(name, mark);
    let fu = of(&recs, "force_unlock");
    assert_eq!(fu.len(), 1, "{recs:#?}");
    assert_eq!(fu[0].payload["lock"]["who"], "alice@laptop");
    assert_eq!(fu[0].payload["lock"]["info"], "by hand");
    // Released: a new lock is granted.
    let (st, v) = b.lock_call(
        "LOCK",
        name,
        &json!({"ID": "after", "Operation": "OperationTypeApply", "Who": "bob@ci"}),
    );
    assert_eq!(st, 200, "{v}");
}

const SECRETS: &str = r#"
variable "api_key" {
  type      = string
  sensitive = true
}

resource "terraform_data" "svc" {
  input = {
    name = "svc"
    key  = var.api_key
  }
}

output "conn" {
  value     = "https://svc.example/?key=${var.api_key}"
  sensitive = true
}

output "literal" {
  value     = "LITERAL"
  sensitive = true
}

output "plain" {
  value = "plain-output-value"
}
"#;

fn secrets_reach_the_state_store_but_not_the_log(tf: &Tf) {
    let b = Backend::start(&[]);
    let name = "team/secrets";
    let (k1, k2) = (unique("key-one-"), unique("key-two-"));
    let (l1, l2) = (unique("literal-one-"), unique("literal-two-"));
    let ws = b.workspace(tf, name, &SECRETS.replace("LITERAL", &l1));
    ws.ok_with(
        &["apply", "-input=false", "-auto-approve"],
        &[("TF_VAR_api_key", &k1)],
    );
    // An update: the sensitive input and the sensitive output both change.
    ws.configure(&SECRETS.replace("LITERAL", &l2));
    ws.ok_with(
        &["apply", "-input=false", "-auto-approve"],
        &[("TF_VAR_api_key", &k2)],
    );

    // The state store holds them, as any backend does.
    let (st, _, body) = b.get_state(name);
    assert_eq!(st, 200);
    assert!(body.contains(&k2) && body.contains(&l2), "{body}");
    assert!(!files_containing(&b.states, &k1).is_empty());

    // The records: values recorded, secrets redacted.
    let recs = b.state_log(name);
    let writes = of(&recs, "write");
    assert!(writes.len() >= 2, "{recs:#?}");
    let svc = values_of(&writes, "terraform_data.svc");
    assert_eq!(svc["change"], "changed", "{svc:#}");
    let key = attribute(svc, "input.key");
    assert_eq!(key["before"], "(sensitive value)", "{svc:#}");
    assert_eq!(key["after"], "(sensitive value)", "{svc:#}");
    let created = writes
        .iter()
        .find_map(|w| {
            w.payload["state_diff"]["values"]
                .as_array()?
                .iter()
                .find(|v| v["change"] == "added")
        })
        .unwrap_or_else(|| panic!("no added instance: {writes:#?}"));
    // Added: the plain part of the input is there, the sensitive part redacted.
    let input = &attribute(created, "input")["after"];
    assert_eq!(input["name"], "svc", "{created:#}");
    assert_eq!(input["key"], "(sensitive value)", "{created:#}");
    let outputs: Vec<Value> = writes
        .iter()
        .flat_map(|w| {
            w.payload["state_diff"]["outputs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let out = |n: &str| -> Value {
        outputs
            .iter()
            .rev()
            .find(|o| o["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no output {n}: {outputs:#?}"))
    };
    assert_eq!(out("literal")["sensitive"], true);
    assert_eq!(
        out("literal")["before"],
        "(sensitive value)",
        "{outputs:#?}"
    );
    assert_eq!(out("literal")["after"], "(sensitive value)", "{outputs:#?}");
    assert_eq!(out("conn")["after"], "(sensitive value)", "{outputs:#?}");
    assert_eq!(out("plain")["after"], "plain-output-value", "{outputs:#?}");

    // Not one byte of the log, of the server's index or of its own output holds a secret.
    let index_dir = b.env.cache().join("tftrail/server-index");
    assert!(
        !every_file(&index_dir).is_empty(),
        "no server index under {}",
        index_dir.display()
    );
    assert!(!every_file(&b.env.store).is_empty());
    let server_log = b.server.stderr.lock().unwrap().clone();
    for secret in [&k1, &k2, &l1, &l2] {
        for dir in [&b.env.store, &index_dir] {
            let found = files_containing(dir, secret);
            assert!(found.is_empty(), "a secret is stored in {found:?}");
        }
        assert!(
            !server_log.contains(secret.as_str()),
            "a secret is in the server's output"
        );
    }
    // Positive control: the same search finds the plain values.
    assert!(!files_containing(&b.env.store, "plain-output-value").is_empty());
}

const NAMED_LIKE_SECRETS: &str = r#"
variable "pw" {
  type    = string
}

resource "terraform_data" "conf" {
  input = {
    region      = "eu-1"
    db_password = var.pw
  }
}
"#;

fn secret_looking_attribute_names_are_redacted(tf: &Tf) {
    // Values Terraform does not mark sensitive (no `sensitive = true`) but whose attribute
    // name says secret: redacted as defence in depth (s12 spec, "Values in STATE_DIFF").
    let b = Backend::start(&[]);
    let name = "team/named";
    let (p1, p2) = (unique("pw-one-"), unique("pw-two-"));
    let ws = b.workspace(tf, name, NAMED_LIKE_SECRETS);
    ws.ok_with(
        &["apply", "-input=false", "-auto-approve"],
        &[("TF_VAR_pw", &p1)],
    );
    ws.ok_with(
        &["apply", "-input=false", "-auto-approve"],
        &[("TF_VAR_pw", &p2)],
    );
    let recs = b.state_log(name);
    let writes = of(&recs, "write");
    let conf = values_of(&writes, "terraform_data.conf");
    let pw = attribute(conf, "input.db_password");
    assert_eq!(pw["before"], "(sensitive value)", "{conf:#}");
    assert_eq!(pw["after"], "(sensitive value)", "{conf:#}");
    let index_dir = b.env.cache().join("tftrail/server-index");
    for secret in [&p1, &p2] {
        for dir in [&b.env.store, &index_dir] {
            let found = files_containing(dir, secret);
            assert!(found.is_empty(), "a password is stored in {found:?}");
        }
    }
    assert!(!files_containing(&b.env.store, "eu-1").is_empty());
}

fn state_pull_and_push_as_with_other_http_backends(tf: &Tf) {
    let b = Backend::start(&[]);
    let name = "team/pushy";
    let ws = b.workspace(tf, name, WEB_ONLY);
    ws.ok(&["apply", "-input=false", "-auto-approve"]);
    let (_, _, written) = b.get_state(name);

    // pull gives what was written.
    let pulled = ws.ok(&["state", "pull"]);
    let pulled_v: Value = serde_json::from_slice(&pulled.stdout).expect("state pull is JSON");
    assert_eq!(pulled_v, serde_json::from_str::<Value>(&written).unwrap());

    // A modified copy with a higher serial: pushed and recorded with the change.
    let original_serial = pulled_v["serial"].as_u64().unwrap();
    let mut modified = pulled_v.clone();
    modified["serial"] = json!(original_serial + 1);
    let attrs = &mut modified["resources"][0]["instances"][0]["attributes"];
    attrs["input"]["value"] = json!("pushed");
    attrs["output"]["value"] = json!("pushed");
    let file = ws.dir.join("modified.tfstate");
    std::fs::write(&file, serde_json::to_vec_pretty(&modified).unwrap()).unwrap();
    let mark = b.last_index();
    ws.ok(&["state", "push", "modified.tfstate"]);
    let recs = b.state_log_since(name, mark);
    let writes = of(&recs, "write");
    assert_eq!(writes.len(), 1, "{recs:#?}");
    let w = &writes[0].payload;
    assert!(
        w["after"]["serial"].as_u64().unwrap() > original_serial,
        "{w:#}"
    );
    let input = attribute(values_of(&writes, "terraform_data.web"), "input");
    assert_eq!(
        (&input["before"], &input["after"]),
        (&json!("v1"), &json!("pushed"))
    );
    let (_, _, now) = b.get_state(name);
    let now_v: Value = serde_json::from_str(&now).unwrap();
    assert_eq!(
        instance_attributes(&now_v, "web")["input"]["value"],
        "pushed"
    );

    // Pushing the older copy: Terraform itself refuses, nothing is sent.
    let old = ws.dir.join("old.tfstate");
    std::fs::write(&old, &pulled.stdout).unwrap();
    let mark = b.last_index();
    let out = ws.run(&["state", "push", "old.tfstate"], &[]);
    assert_ne!(code(&out), 0, "{}", describe(&out));
    let recs = b.state_log_since(name, mark);
    assert!(
        of(&recs, "write").is_empty() && of(&recs, "refused").is_empty(),
        "{recs:#?}"
    );

    // `push -force` of it: the server refuses (409), records the refusal, keeps the state.
    let out = ws.run(&["state", "push", "-force", "old.tfstate"], &[]);
    assert_ne!(code(&out), 0, "{}", describe(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("409"), "{text}");
    let recs = b.state_log_since(name, mark);
    assert!(of(&recs, "write").is_empty(), "{recs:#?}");
    let refused = of(&recs, "refused");
    assert_eq!(refused.len(), 1, "{recs:#?}");
    assert_eq!(refused[0].payload["operation"], "write");
    assert_eq!(refused[0].payload["status"], 409);
    assert_eq!(refused[0].payload["sent"]["present"], true);
    assert_eq!(
        b.get_state(name).2,
        now,
        "the refused push changed the state"
    );
}

fn a_recorded_run_links_its_writes_and_a_plain_apply_is_out_of_band(tf: &Tf) {
    let b = Backend::start(&[]);
    let name = "team/linked";
    let ws = b.workspace(tf, name, WEB_ONLY);
    let tfbin = tf.bin.to_str().unwrap();
    let mark = b.last_index();
    let out = ws.tftrail(
        &["run", "--", tfbin, "apply", "-input=false", "-auto-approve"],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let all: Vec<Value> = b
        .server
        .records(&b.admin)
        .into_iter()
        .filter(|r| mark.is_none_or(|m| r["index"].as_u64().unwrap() > m))
        .collect();
    let intent = all
        .iter()
        .find(|r| r["record"]["kind"] == "terraform.apply.intent")
        .unwrap_or_else(|| panic!("no intent: {all:#?}"));
    let intent_index = intent["index"].as_u64().unwrap();
    assert_eq!(
        intent["record"]["payload"]["context"]["state_address"],
        b.address(name),
        "{intent:#}"
    );
    let outcome = all
        .iter()
        .find(|r| r["record"]["kind"] == "terraform.apply.outcome")
        .unwrap_or_else(|| panic!("no outcome: {all:#?}"));
    let recs = b.state_log_since(name, mark);
    let writes = one_locked_apply(&recs);
    for w in &writes {
        assert!(w.index > intent_index && w.index < outcome["index"].as_u64().unwrap());
        assert_eq!(w.payload["out_of_band"], false, "{w:#?}");
        assert_eq!(
            w.payload["run"],
            json!({"intent_index": intent_index, "matched_by": "lock"}),
            "{w:#?}"
        );
    }
    let lock = of(&recs, "lock")[0];
    assert_eq!(
        lock.payload["run"]["intent_index"], intent_index,
        "{lock:#?}"
    );

    // A plain apply afterwards: out of band, linked to nothing.
    let mark = b.last_index();
    ws.ok(&["apply", "-input=false", "-auto-approve", "-var", "ver=v2"]);
    let recs = b.state_log_since(name, mark);
    for w in one_locked_apply(&recs) {
        assert_eq!(w.payload["out_of_band"], true, "{w:#?}");
        assert_eq!(w.payload["run"], Value::Null, "{w:#?}");
    }
}

fn check_state_trusts_recorded_writes_and_catches_an_altered_store(tf: &Tf) {
    let b = Backend::start(&[]);
    let name = "team/checked";
    let ws = b.workspace(tf, name, WEB_ONLY);
    ws.ok(&["apply", "-input=false", "-auto-approve"]);
    ws.ok(&["apply", "-input=false", "-auto-approve", "-var", "ver=v2"]);
    let writes = of(&b.state_log(name), "write")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let last = writes.last().expect("writes recorded");

    // In sync: the server's current state is the last recorded write.
    let out = ws.tftrail(&["check-state"], &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains("in sync")
            && text.contains(name)
            && text.contains(&format!("record {}", last.index)),
        "{text}"
    );
    let out = ws.tftrail(&["check-state", "--json"], &[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("check-state --json");
    assert_eq!(v["server_backed"], true, "{v:#}");

    // The state store's current version altered by hand.
    let sha = last.payload["after"]["sha256"].as_str().unwrap();
    let file = b.states.join(name).join(format!("{sha}.tfstate"));
    let original = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let altered = String::from_utf8(original)
        .unwrap()
        .replace("\"v2\"", "\"v9\"");
    common::overwrite(&file, altered.as_bytes());
    let altered_sha = sha256_hex(altered.as_bytes());
    assert_ne!(altered_sha, sha);
    let (st, _, body) = b.get_state(name);
    assert_eq!(st, 500, "{body}");
    let err = json_or_null(&body)["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    for needle in [
        "the state store was altered",
        name,
        &last.index.to_string(),
        sha,
        &altered_sha,
    ] {
        assert!(err.contains(needle), "{needle:?} not in {body}");
    }
    let (st, _, body) = b.http(
        "GET",
        &format!("/v1/state/{name}/versions/{sha}"),
        Cred::Bearer(&b.admin),
        "",
        b"",
    );
    assert_eq!(st, 500, "{body}");
    // check-state names it and exits 4.
    let out = ws.tftrail(&["check-state"], &[]);
    assert_eq!(code(&out), 4, "{}", describe(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("the state store was altered"), "{text}");
}

fn a_restart_keeps_the_lock_and_the_state(tf: &Tf) {
    let mut b = Backend::start(&[]);
    let name = "team/restarted";
    let ws = b.workspace(tf, name, WEB_ONLY);
    ws.ok(&["apply", "-input=false", "-auto-approve"]);
    let (_, _, before) = b.get_state(name);
    let info = json!({"ID": "held-across-restart", "Operation": "OperationTypeApply",
        "Info": "", "Who": "bob@ci", "Version": "1.11.4", "Created": "2026-01-01T00:00:00Z",
        "Path": ""});
    assert_eq!(b.lock_call("LOCK", name, &info).0, 200);
    let dir = ws.dir.clone();
    drop(ws);

    b.restart();
    let (st, v) = b.lock_call(
        "LOCK",
        name,
        &json!({"ID": "another", "Operation": "OperationTypeApply", "Who": "eve@x"}),
    );
    assert_eq!(st, 423, "{v}");
    assert_eq!(v["ID"], "held-across-restart", "{v}");
    assert_eq!(v["Who"], "bob@ci", "{v}");
    let (st, _, now) = b.get_state(name);
    assert_eq!(st, 200);
    assert_eq!(now, before);

    // Terraform, pointed at the restarted server (its port changed), meets the same lock.
    let ws = Ws {
        b: &b,
        tf,
        dir,
        name: name.to_string(),
        password: b.writer.clone(),
    };
    ws.configure(WEB_ONLY);
    ws.ok(&["init", "-input=false", "-reconfigure"]);
    let out = ws.run(
        &["apply", "-input=false", "-auto-approve", "-var", "ver=v2"],
        &[],
    );
    assert_ne!(code(&out), 0, "{}", describe(&out));
    assert!(
        (stdout(&out) + &stderr(&out)).contains("held-across-restart"),
        "{}",
        describe(&out)
    );
    // Released by its holder, the apply goes through.
    assert_eq!(b.lock_call("UNLOCK", name, &info).0, 200);
    ws.ok(&["apply", "-input=false", "-auto-approve", "-var", "ver=v2"]);
    b.env.ok(&["verify"], None);
}

// ---- the protocol, by hand (no Terraform) ----

/// A v4 state document.
fn state_doc(lineage: &str, serial: u64, note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "version": 4, "terraform_version": "1.11.4", "serial": serial, "lineage": lineage,
        "outputs": {"note": {"value": note, "type": "string"}}, "resources": [],
        "check_results": null
    }))
    .unwrap()
}

#[test]
fn the_protocol_refuses_what_it_must_and_records_refusals() {
    // --public-read opens the log, not the states.
    let b = Backend::start(&["--public-read"]);
    let name = "raw/one";
    let w = Cred::Bearer(&b.writer);
    let path = format!("/state/{name}");

    // Credentials and roles.
    assert_eq!(b.http("GET", &path, Cred::None, "", b"").0, 401);
    assert_eq!(b.http("GET", &path, w, "", b"").0, 204);
    let s1 = state_doc("L1", 1, "one");
    assert_eq!(b.post_state(name, "", Cred::None, &s1).0, 401);
    let (st, v) = b.post_state(name, "", Cred::Bearer(&b.reader), &s1);
    assert_eq!(st, 403, "{v}");
    assert_eq!(b.post_state(name, "", w, &s1).0, 200);
    let (st, h, body) = b.http("GET", &path, Cred::Basic(&b.reader), "", b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(body.as_bytes(), s1.as_slice());
    assert_eq!(
        header(&h, "content-md5"),
        Some(md5_base64(&s1).to_ascii_lowercase().as_str())
    );
    assert_eq!(b.http("GET", &path, Cred::None, "", b"").0, 401);
    for p in [
        "/v1/state".to_string(),
        format!("/v1/state/{name}/versions"),
    ] {
        assert_eq!(
            b.http("GET", &p, Cred::Bearer(&b.reader), "", b"").0,
            403,
            "{p}"
        );
        assert_eq!(b.http("GET", &p, Cred::None, "", b"").0, 401, "{p}");
    }

    // Bad names and bad bodies: 400.
    let long = "n".repeat(201);
    for bad in ["a/./b", "a/../b", "a//b", "x;y", long.as_str()] {
        let (st, _, b2) = b.http("GET", &format!("/state/{bad}"), w, "", b"");
        assert_eq!(st, 400, "{bad}: {b2}");
    }
    let s2 = state_doc("L1", 2, "two");
    let (st, _, e) = b.http(
        "POST",
        &path,
        w,
        &format!("content-md5: {}\r\n", md5_base64(b"something else")),
        &s2,
    );
    assert_eq!(st, 400, "{e}");
    assert!(e.to_lowercase().contains("md5"), "{e}");
    for body in [
        b"{not json".to_vec(),
        br#"{"hello":1}"#.to_vec(),
        br#"{"version":3,"serial":5,"lineage":"L1"}"#.to_vec(),
        br#"{"version":4,"lineage":"L1"}"#.to_vec(),
        br#"{"version":4,"serial":5}"#.to_vec(),
    ] {
        let (st, v) = b.post_state(name, "", w, &body);
        assert_eq!(st, 400, "{}: {v}", String::from_utf8_lossy(&body));
        assert!(v["error"].is_string(), "{v}");
    }
    let writes = |b: &Backend| of(&b.state_log(name), "write").len();
    assert_eq!(writes(&b), 1);

    // Serials and lineage.
    let (st, h, e) = b.http(
        "PUT",
        &path,
        w,
        &format!("content-md5: {}\r\n", md5_base64(&s2)),
        &s2,
    );
    assert_eq!(st, 200, "PUT is POST: {h}{e}");
    assert_eq!(b.post_state(name, "", w, &s2).0, 200, "an idempotent retry");
    assert_eq!(writes(&b), 2, "an idempotent retry is not recorded");
    let mark = b.last_index();
    let cases = [
        (state_doc("L1", 2, "other"), "same serial, other content"),
        (state_doc("L1", 1, "older"), "older serial"),
        (state_doc("L2", 3, "lineage"), "other lineage"),
    ];
    for (body, what) in &cases {
        let (st, v) = b.post_state(name, "", w, body);
        assert_eq!(st, 409, "{what}: {v}");
        assert!(v["error"].is_string(), "{what}: {v}");
    }
    let refused = b.state_log_since(name, mark);
    assert_eq!(refused.len(), 3, "{refused:#?}");
    for (r, (_, what)) in refused.iter().zip(&cases) {
        assert_eq!(r.event, "refused", "{what}: {r:#?}");
        assert_eq!(r.payload["operation"], "write", "{what}");
        assert_eq!(r.payload["status"], 409, "{what}");
        assert!(r.payload["reason"].is_string(), "{what}");
        assert_eq!(r.payload["sent"]["present"], true, "{what}: {r:#?}");
    }
    assert_eq!(refused[1].payload["sent"]["serial"], 1);
    assert_eq!(refused[2].payload["sent"]["lineage"], "L2");
    assert_eq!(b.http("GET", &path, w, "", b"").2.as_bytes(), s2.as_slice());

    // Locks.
    let holder = json!({"ID": "lock-A", "Operation": "OperationTypeApply", "Info": "",
        "Who": "alice@laptop", "Version": "1.11.4", "Created": "2026-01-01T00:00:00Z",
        "Path": ""});
    let other = json!({"ID": "lock-B", "Operation": "OperationTypePlan", "Who": "eve@x"});
    let mark = b.last_index();
    assert_eq!(b.lock_call("LOCK", name, &holder).0, 200);
    assert_eq!(
        b.lock_call("LOCK", name, &holder).0,
        200,
        "the same ID again"
    );
    let (st, v) = b.lock_call("LOCK", name, &other);
    assert_eq!(st, 423, "{v}");
    assert_eq!(v["ID"], "lock-A", "{v}");
    assert_eq!(v["Who"], "alice@laptop", "{v}");
    let lock_recs = b.state_log_since(name, mark);
    assert_eq!(
        lock_recs
            .iter()
            .map(|r| r.event.as_str())
            .collect::<Vec<_>>(),
        ["lock"],
        "{lock_recs:#?}"
    );
    assert_eq!(lock_recs[0].payload["lock"]["who"], "alice@laptop");
    assert_eq!(lock_recs[0].actor["user"], "alice");
    assert_eq!(lock_recs[0].actor["host"], "laptop");

    // Writes while locked: no ID → 423, another ID → 409, both with the holder's LockInfo.
    let s3 = state_doc("L1", 3, "three");
    let (st, v) = b.post_state(name, "", w, &s3);
    assert_eq!(st, 423, "{v}");
    assert_eq!(v["ID"], "lock-A", "{v}");
    let (st, v) = b.post_state(name, "?ID=lock-B", w, &s3);
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["ID"], "lock-A", "{v}");
    for (q, want) in [("", 423), ("?ID=lock-B", 409)] {
        let (st, _, e) = b.http("DELETE", &format!("{path}{q}"), w, "", b"");
        assert_eq!(st, want, "DELETE{q}: {e}");
        assert_eq!(json_or_null(&e)["ID"], "lock-A", "{e}");
    }
    assert_eq!(b.post_state(name, "?ID=lock-A", w, &s3).0, 200);
    let listed = b.get_json("/v1/state", &b.writer);
    let entry = &listed["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap();
    assert_eq!(entry["serial"], 3, "{entry}");
    assert_eq!(entry["locked"]["ID"], "lock-A", "{entry}");
    let refusals = b.state_log_since(name, mark);
    let refused = of(&refusals, "refused");
    assert_eq!(
        refused
            .iter()
            .map(|r| r.payload["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [423, 409, 423, 409],
        "{refusals:#?}"
    );
    assert_eq!(
        refused
            .iter()
            .map(|r| r.payload["operation"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["write", "write", "delete", "delete"]
    );
    for r in &refused {
        assert_eq!(r.payload["lock"]["id"], "lock-A", "{r:#?}");
    }
    let locked_write = of(&refusals, "write");
    assert_eq!(locked_write.len(), 1);
    assert_eq!(locked_write[0].payload["lock"]["id"], "lock-A");

    // Unlocks: another lock's ID → 409; the holder's → released; again → 200, nothing.
    let mark = b.last_index();
    let (st, v) = b.lock_call("UNLOCK", name, &json!({"ID": "lock-B"}));
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["ID"], "lock-A", "{v}");
    let recs = b.state_log_since(name, mark);
    let refused = of(&recs, "refused");
    assert_eq!(refused.len(), 1, "{recs:#?}");
    assert_eq!(refused[0].payload["operation"], "unlock");
    assert_eq!(refused[0].payload["status"], 409);
    assert_eq!(refused[0].payload["lock"]["id"], "lock-A");
    let mark = b.last_index();
    assert_eq!(b.lock_call("UNLOCK", name, &holder).0, 200);
    assert_eq!(b.lock_call("UNLOCK", name, &holder).0, 200, "not locked");
    let recs = b.state_log_since(name, mark);
    assert_eq!(
        recs.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
        ["unlock"],
        "{recs:#?}"
    );
    // An ID for a lock no longer held: 409, the error says so.
    let s4 = state_doc("L1", 4, "four");
    let (st, v) = b.post_state(name, "?ID=lock-A", w, &s4);
    assert_eq!(st, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("not held"),
        "{v}"
    );

    // Force-unlocks: the holder's ID alone (Terraform's force-unlock), an empty body
    // (OpenTofu's): released, recorded with the holder's lock and the ID sent.
    let c = json!({"ID": "lock-C", "Operation": "OperationTypeApply", "Info": "",
        "Who": "carol@ci", "Version": "1.11.4", "Created": "2026-01-01T00:00:00Z", "Path": ""});
    for (sent, requested) in [(json!({"ID": "lock-C"}), "lock-C"), (Value::Null, "")] {
        assert_eq!(b.lock_call("LOCK", name, &c).0, 200);
        let mark = b.last_index();
        let (st, v) = b.lock_call("UNLOCK", name, &sent);
        assert_eq!(st, 200, "{sent}: {v}");
        let recs = b.state_log_since(name, mark);
        let fu = of(&recs, "force_unlock");
        assert_eq!(fu.len(), 1, "{sent}: {recs:#?}");
        assert_eq!(fu[0].payload["requested_id"], requested);
        assert_eq!(fu[0].payload["lock"]["who"], "carol@ci");
        assert_eq!(fu[0].payload["lock"]["id"], "lock-C");
    }

    // An admin's forced write of an older serial; a writer may not force.
    let old = state_doc("L1", 1, "forced back");
    assert_eq!(b.post_state(name, "?force=true", w, &old).0, 403);
    let mark = b.last_index();
    let (st, v) = b.post_state(name, "?force=true", Cred::Bearer(&b.admin), &old);
    assert_eq!(st, 200, "{v}");
    let recs = b.state_log_since(name, mark);
    let forced = of(&recs, "write");
    assert_eq!(forced.len(), 1, "{recs:#?}");
    assert_eq!(forced[0].payload["forced"], true);
    assert_eq!(forced[0].payload["after"]["serial"], 1);
    assert_eq!(forced[0].actor["authenticated"]["role"], "admin");
    assert_eq!(
        b.http("GET", &path, w, "", b"").2.as_bytes(),
        old.as_slice()
    );

    // Delete: recorded; GET 204 afterwards; every version kept.
    let mark = b.last_index();
    let (st, _, e) = b.http("DELETE", &path, w, "", b"");
    assert_eq!(st, 200, "{e}");
    let recs = b.state_log_since(name, mark);
    let del = of(&recs, "delete");
    assert_eq!(del.len(), 1, "{recs:#?}");
    assert_eq!(del[0].payload["after"], json!({"present": false}));
    assert_eq!(del[0].payload["before"]["sha256"], sha256_hex(&old));
    assert_eq!(b.http("GET", &path, w, "", b"").0, 204);
    let versions = b.get_json(&format!("/v1/state/{name}/versions"), &b.admin);
    let events: Vec<(String, bool)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap().to_string(),
                v["forced"] == true,
            )
        })
        .collect();
    let want: Vec<(String, bool)> = [
        ("write", false),
        ("write", false),
        ("write", false),
        ("write", true),
        ("delete", false),
    ]
    .iter()
    .map(|(e, f)| (e.to_string(), *f))
    .collect();
    assert_eq!(events, want, "{versions:#}");
    for doc in [&s1, &s2, &s3, &old] {
        let sha = sha256_hex(doc);
        let (st, _, got) = b.http(
            "GET",
            &format!("/v1/state/{name}/versions/{sha}"),
            Cred::Bearer(&b.writer),
            "",
            b"",
        );
        assert_eq!(st, 200, "{got}");
        assert_eq!(got.as_bytes(), doc.as_slice());
        assert!(b.states.join(name).join(format!("{sha}.tfstate")).is_file());
    }
    // A version that does not exist: 404.
    let (st, _, _) = b.http(
        "GET",
        &format!("/v1/state/{name}/versions/{}", "ab".repeat(32)),
        Cred::Bearer(&b.writer),
        "",
        b"",
    );
    assert_eq!(st, 404);
    b.env.ok(&["verify"], None);
}

/// A v4 state of `n` terraform_data instances (as Terraform writes them, `input` dynamic).
fn big_state(n: usize, serial: u64, tag: &str) -> Vec<u8> {
    let instances: Vec<Value> = (0..n)
        .map(|i| {
            json!({"index_key": i, "schema_version": 0, "sensitive_attributes": [],
                "attributes": {"id": format!("id-{i}"), "triggers_replace": null,
                    "input": {"value": {"i": i, "name": format!("resource-{i}-{tag}")},
                              "type": ["object", {"i": "number", "name": "string"}]},
                    "output": {"value": {"i": i, "name": format!("resource-{i}-{tag}")},
                               "type": ["object", {"i": "number", "name": "string"}]}}})
        })
        .collect();
    serde_json::to_vec(&json!({
        "version": 4, "terraform_version": "1.11.4", "serial": serial, "lineage": "BIG",
        "outputs": {}, "check_results": null,
        "resources": [{"mode": "managed", "type": "terraform_data", "name": "r",
            "provider": "provider[\"terraform.io/builtin/terraform\"]", "instances": instances}]
    }))
    .unwrap()
}

#[test]
fn a_large_write_is_recorded_with_its_diff_in_a_blob() {
    // 1,000 instances created in one apply (about 0.3 MB of state): the record's values are
    // far over a log entry's 64 KiB, so its state_diff must move to a blob (as for records
    // over 4 KiB), not fail the write. Terraform gives up on a 500 ("Failed to save state").
    let b = Backend::start(&[]);
    let name = "raw/big";
    let w = Cred::Bearer(&b.writer);
    for (serial, tag) in [(1, "a"), (2, "b")] {
        let doc = big_state(1000, serial, tag);
        let (st, v) = b.post_state(name, "", w, &doc);
        assert_eq!(st, 200, "a {}-byte state: {v}", doc.len());
        assert_eq!(b.get_state(name).2.as_bytes(), doc.as_slice());
    }
    let raw: Vec<Value> = b
        .server
        .records(&b.admin)
        .into_iter()
        .filter(|r| r["record"]["kind"] == "terraform.state.write")
        .collect();
    assert_eq!(raw.len(), 2);
    for r in &raw {
        let stub = &r["record"]["payload"]["state_diff"]["in_blob"];
        assert_eq!(stub["blob"], "state-diff.json", "{r:#}");
        assert!(
            r["record"]["blobs"]
                .as_array()
                .is_some_and(|bl| bl.iter().any(|x| x["sha256"] == stub["sha256"])),
            "{r:#}"
        );
    }
    // Put back, the diff is whole: 1,000 added, then 1,000 changed with their values.
    let writes = of(&b.state_log(name), "write")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        strings(&writes[0].payload["state_diff"]["added"]).len(),
        1000
    );
    let values = writes[1].payload["state_diff"]["values"]
        .as_array()
        .unwrap();
    assert_eq!(values.len(), 1000);
    let seventh = values
        .iter()
        .find(|v| v["address"] == "terraform_data.r[7]")
        .unwrap_or_else(|| panic!("no terraform_data.r[7] in {:#}", values[0]));
    let one = attribute(seventh, "input.name");
    assert_eq!(one["before"], "resource-7-a", "{one}");
    assert_eq!(one["after"], "resource-7-b", "{one}");
    b.env.ok(&["verify"], None);
}

/// Appends one record through `POST /v1/records` as the writer; its index.
fn append_record(b: &Backend, kind: &str, payload: Value, user: &str, host: &str) -> u64 {
    let body = json!({"records": [{
        "kind": kind,
        "payload": payload,
        "actor": {"user": user, "host": host},
    }]})
    .to_string();
    let (st, _, out) = b.http(
        "POST",
        "/v1/records",
        Cred::Bearer(&b.writer),
        "content-type: application/json\r\n",
        body.as_bytes(),
    );
    assert_eq!(st, 200, "append {kind}: {out}");
    json_or_null(&out)["first"].as_u64().unwrap()
}

#[test]
fn runs_link_writes_by_lock_host_and_by_workspace_until_their_outcome() {
    let b = Backend::start(&[]);
    let name = "link/ws";
    let w = Cred::Bearer(&b.writer);
    let intent = append_record(
        &b,
        "terraform.apply.intent",
        json!({"context": {"state_address": b.address(name), "backend": "http"}}),
        "alice",
        "build-7",
    );

    // A write without a lock during the run: linked by workspace.
    assert_eq!(b.post_state(name, "", w, &state_doc("L", 1, "a")).0, 200);
    // A lock from another host while the run is open is not the run's, nor its writes.
    let other = json!({"ID": "lock-other", "Operation": "OperationTypeApply", "Who": "bob@laptop",
        "Version": "1.11.4", "Created": "2026-12-03T10:00:00Z", "Path": "", "Info": ""});
    assert_eq!(b.lock_call("LOCK", name, &other).0, 200);
    assert_eq!(
        b.post_state(name, "?ID=lock-other", w, &state_doc("L", 2, "b"))
            .0,
        200
    );
    assert_eq!(b.lock_call("UNLOCK", name, &other).0, 200);
    // A lock from the run's host (another user name: Terraform's may differ) is the run's.
    let mine = json!({"ID": "lock-mine", "Operation": "OperationTypeApply", "Who": "root@build-7",
        "Version": "1.11.4", "Created": "2026-12-03T10:01:00Z", "Path": "", "Info": ""});
    assert_eq!(b.lock_call("LOCK", name, &mine).0, 200);
    assert_eq!(
        b.post_state(name, "?ID=lock-mine", w, &state_doc("L", 3, "c"))
            .0,
        200
    );
    assert_eq!(b.lock_call("UNLOCK", name, &mine).0, 200);
    // The outcome closes the run: later writes are out of band.
    append_record(
        &b,
        "terraform.apply.outcome",
        json!({"intent_index": intent, "outcome": "success"}),
        "alice",
        "build-7",
    );
    assert_eq!(b.post_state(name, "", w, &state_doc("L", 4, "d")).0, 200);

    let writes: Vec<Rec> = of(&b.state_log(name), "write")
        .into_iter()
        .cloned()
        .collect();
    let links: Vec<(Value, Value)> = writes
        .iter()
        .map(|r| (r.payload["run"].clone(), r.payload["out_of_band"].clone()))
        .collect();
    assert_eq!(
        links,
        vec![
            (
                json!({"intent_index": intent, "matched_by": "workspace"}),
                json!(false)
            ),
            (Value::Null, json!(true)),
            (
                json!({"intent_index": intent, "matched_by": "lock"}),
                json!(false)
            ),
            (Value::Null, json!(true)),
        ],
        "{writes:#?}"
    );
    let all = b.state_log(name);
    let locks = of(&all, "lock");
    assert_eq!(locks[0].payload["run"], Value::Null);
    assert_eq!(locks[1].payload["run"], json!({"intent_index": intent}));

    // A client cannot append the state backend's own kinds (a forged lock would hold after a
    // restart).
    for kind in ["terraform.state.lock", "terraform.state.write"] {
        let body = json!({"records": [{"kind": kind, "payload": {"state": name,
            "lock": {"id": "forged", "who": "x@y"}}}]})
        .to_string();
        let (st, _, out) = b.http(
            "POST",
            "/v1/records",
            w,
            "content-type: application/json\r\n",
            body.as_bytes(),
        );
        assert_eq!(st, 400, "{kind}: {out}");
        assert!(out.contains("only by the server"), "{out}");
    }
}

#[test]
fn the_state_store_can_be_an_object_lock_bucket() {
    let moto = tftrail_store::testing::Moto::start();
    let envs: Vec<(&str, String)> = moto.env();
    moto.apply_env();
    moto.create_audit_bucket("tfstates", 1);
    let env = Env::new();
    env.init();
    let writer = env.token("writer", "ci");
    let server = env.serve(&["--state-store", "s3://tfstates/teams"], &envs);
    let s1 = state_doc("L", 1, "first");
    let s2 = state_doc("L", 2, "second");
    for s in [&s1, &s2] {
        let (st, _, out) = server.exchange(
            "POST",
            "/state/team/prod",
            &format!(
                "authorization: Bearer {writer}\r\ncontent-md5: {}\r\n",
                md5_base64(s)
            ),
            s,
        );
        assert_eq!(st, 200, "{out}\n{}", server.stderr.lock().unwrap());
    }
    let (st, _, got) = server.exchange(
        "GET",
        "/state/team/prod",
        &format!("authorization: Bearer {writer}\r\n"),
        b"",
    );
    assert_eq!((st, got.as_bytes()), (200, s2.as_slice()));
    // Both versions are objects in the bucket, named by their hash.
    let bucket = tftrail_store::open("s3://tfstates/teams").expect("open the bucket");
    for s in [&s1, &s2] {
        let path = format!("team/prod/{}.tfstate", sha256_hex(s));
        assert_eq!(
            bucket.get(&path).unwrap().as_deref(),
            Some(s.as_slice()),
            "{path}"
        );
    }
    // The log holds neither state document (only fingerprints and the redacted diff).
    assert!(files_containing(&env.store, "check_results").is_empty());
}
