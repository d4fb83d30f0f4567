//! Helpers shared by the CLI integration tests: an isolated environment (temporary HOME and
//! XDG directories, a store path, a key path) and a runner for the `tftrail` binary.
//!
//! Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod server;
pub mod witness;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The `tftrail` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_tftrail");

/// Environment variables that would leak the caller's setup into a test.
const SCRUB: &[&str] = &[
    "TFTRAIL_STORE",
    "TFTRAIL_KEY",
    "TFTRAIL_TOKENS",
    "TFTRAIL_SERVER",
    "TFTRAIL_TOKEN",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "HOME",
];

/// An isolated environment: everything lives under one temporary directory.
pub struct Env {
    /// Owns the directory; removed on drop.
    pub dir: tempfile::TempDir,
    /// `$HOME`.
    pub home: PathBuf,
    /// `$XDG_DATA_HOME`.
    pub data: PathBuf,
    /// `$XDG_CONFIG_HOME`.
    pub config: PathBuf,
    /// `$XDG_STATE_HOME` (where `verify` remembers the last verified checkpoint).
    pub state: PathBuf,
    /// The log's store directory (`TFTRAIL_STORE`).
    pub store: PathBuf,
    /// The signing-key file (`TFTRAIL_KEY`).
    pub key: PathBuf,
}

impl Env {
    /// A fresh environment; no log is created yet (see [`Env::init`]).
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        let data = root.join("xdg-data");
        let config = root.join("xdg-config");
        let state = root.join("xdg-state");
        for d in [&home, &data, &config, &state] {
            std::fs::create_dir_all(d).expect("create dir");
        }
        Env {
            store: root.join("log"),
            key: root.join("signing.key"),
            dir,
            home,
            data,
            config,
            state,
        }
    }

    /// A path inside the environment's temporary directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A `tftrail` command with a clean environment pointing at this one's directories,
    /// store and key.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        for k in SCRUB {
            c.env_remove(k);
        }
        c.env("HOME", &self.home)
            .env("XDG_DATA_HOME", &self.data)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("XDG_STATE_HOME", &self.state)
            .env("TFTRAIL_STORE", &self.store)
            .env("TFTRAIL_KEY", &self.key)
            .env("USER", "tester")
            .args(args);
        c
    }

    /// Runs `tftrail args…` with `stdin` (empty when `None`) and returns its output.
    pub fn tftrail(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(self.command(args), stdin)
    }

    /// Runs `tftrail args…` and panics unless it exits 0; returns stdout.
    pub fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.tftrail(args, stdin);
        assert_eq!(code(&out), 0, "tftrail {args:?} failed\n{}", describe(&out));
        stdout(&out)
    }

    /// `tftrail init` with an explicit origin; returns the verifier key.
    pub fn init(&self) -> String {
        self.init_with_origin("test.example/log")
    }

    /// `tftrail init --origin ORIGIN`; returns the verifier key.
    pub fn init_with_origin(&self, origin: &str) -> String {
        self.ok(&["init", "--origin", origin], None)
            .trim()
            .to_string()
    }

    /// Appends one JSON object; returns its index.
    pub fn append(&self, json: &str) -> u64 {
        self.ok(&["append"], Some(json.as_bytes()))
            .trim()
            .parse()
            .expect("append prints the index")
    }

    /// Appends JSON Lines with `append --batch --json`; returns (first, count, size).
    pub fn append_batch(&self, lines: &str) -> (u64, u64, u64) {
        let out = self.ok(&["append", "--batch", "--json"], Some(lines.as_bytes()));
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON result");
        (
            v["first"].as_u64().unwrap(),
            v["count"].as_u64().unwrap(),
            v["size"].as_u64().unwrap(),
        )
    }

    /// The stored checkpoint's bytes.
    pub fn checkpoint_bytes(&self) -> Vec<u8> {
        std::fs::read(self.store.join("checkpoint")).expect("checkpoint")
    }

    /// Path of an object in the store.
    pub fn object(&self, rel: &str) -> PathBuf {
        self.store.join(rel)
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

/// Runs a prepared command, feeding `stdin`.
pub fn run(mut c: Command, stdin: Option<&[u8]>) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = c.spawn().expect("spawn tftrail");
    {
        let mut sin = child.stdin.take().expect("stdin");
        if let Some(data) = stdin {
            // The command may exit before reading everything (bad input): ignore EPIPE.
            let _ = sin.write_all(data);
        }
    }
    child.wait_with_output().expect("wait for tftrail")
}

/// Exit code (-1 when killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit code, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        code(out),
        stdout(out),
        stderr(out)
    )
}

/// Asserts the exit code, and that stderr has an `error: ` line containing every one of
/// `needles`; returns stderr.
pub fn assert_fails(out: &Output, want_code: i32, needles: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(
        code(out),
        want_code,
        "unexpected exit code\n{}",
        describe(out)
    );
    assert!(
        err.lines().any(|l| l.starts_with("error: ")),
        "no `error: ` line\n{}",
        describe(out)
    );
    for n in needles {
        assert!(
            err.contains(n),
            "stderr does not mention {n:?}\n{}",
            describe(out)
        );
    }
    err
}

/// Writes `data` to `p` even when the file is read-only (the store writes 0444 files),
/// restoring its mode afterwards.
pub fn overwrite(p: &Path, data: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o444);
    if p.exists() {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::write(p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7777)).unwrap();
}

/// Flips one bit of the byte at `offset` of file `p` (negative: from the end).
pub fn flip_byte(p: &Path, offset: isize) {
    let mut d = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    let i = if offset < 0 {
        d.len() - offset.unsigned_abs()
    } else {
        offset as usize
    };
    d[i] ^= 0x01;
    overwrite(p, &d);
}

/// Every file below `dir` (relative paths, sorted), skipping dot-files and dot-directories
/// (locks and temporary files).
pub fn list_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Everything in a store (dot-files such as locks excluded) with its bytes.
pub fn snapshot(store: &Path) -> Vec<(String, Vec<u8>)> {
    list_files(store)
        .into_iter()
        .map(|p| {
            let d = std::fs::read(store.join(&p)).unwrap();
            (p, d)
        })
        .collect()
}

/// Copies a directory tree (files keep their content; modes are not preserved).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

impl Env {
    /// A fresh environment holding a copy of this one's log and signing key (not its
    /// remembered verification state).
    pub fn clone_log(&self) -> Env {
        let e = Env::new();
        copy_tree(&self.store, &e.store);
        std::fs::copy(&self.key, &e.key).expect("copy key");
        e
    }
}

// ---- Terraform helpers (tests/terraform_*.rs) ----

/// Real Terraform: `TFTRAIL_TERRAFORM`, else `terraform` on PATH. Panics (the test FAILS, it
/// does not skip) when there is none.
pub fn terraform_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TFTRAIL_TERRAFORM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("terraform"))
        .find(|p| p.is_file())
        .expect("real Terraform is required: set TFTRAIL_TERRAFORM or put `terraform` on PATH")
}

impl Env {
    /// `$XDG_CACHE_HOME` as these commands see it (the index lives below it).
    pub fn cache(&self) -> PathBuf {
        self.home.join(".cache")
    }

    /// Terraform's environment for a test: an empty CLI config, no checkpoint calls, no color.
    pub fn tf_env(&self, c: &mut Command) {
        let rc = self.path("terraformrc");
        if !rc.exists() {
            std::fs::write(&rc, b"").expect("write terraformrc");
        }
        c.env("TF_CLI_CONFIG_FILE", rc)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("NO_COLOR", "1");
        for (k, _) in std::env::vars() {
            if k.starts_with("TF_VAR_") || k.starts_with("TF_CLI_ARGS") {
                c.env_remove(k);
            }
        }
    }

    /// `tftrail args…` run in `dir` with Terraform's test environment.
    pub fn tf_tftrail(&self, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut c = self.command(args);
        self.tf_env(&mut c);
        c.current_dir(dir).envs(envs.iter().copied());
        run(c, None)
    }

    /// `tftrail run -- terraform args…` in `dir`; returns the output and the record indexes
    /// it reported on stderr.
    pub fn tf_run(&self, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> (Output, Vec<u64>) {
        let tf = terraform_bin();
        let mut all = vec!["run", "--", tf.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        let out = self.tf_tftrail(dir, &all, envs);
        let err = stderr(&out);
        let recorded = err
            .lines()
            .find_map(|l| l.strip_prefix("tftrail: recorded "))
            .map(|l| {
                l.split(", ")
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        (out, recorded)
    }

    /// Bare `terraform args…` in `dir` (not recorded).
    pub fn bare_terraform(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = Command::new(terraform_bin());
        c.env("HOME", &self.home);
        self.tf_env(&mut c);
        c.current_dir(dir).args(args);
        run(c, None)
    }

    /// `tftrail show N --json`'s record.
    pub fn record(&self, n: u64) -> serde_json::Value {
        let out = self.ok(&["show", &n.to_string(), "--json"], None);
        let v: serde_json::Value = serde_json::from_str(&out).expect("show --json");
        v["record"].clone()
    }
}

// ---- Storage servers shared by the tests of one binary (tests/storage_*.rs) ----

/// Where a shared server lives: the server (while some test uses it) and how many use it.
pub type ServerSlot<T> = std::sync::Mutex<(Option<T>, usize)>;

/// A test's handle on a server shared by the tests that run at the same time (moto,
/// Azurite); the last handle dropped stops the server.
pub struct Shared<T: 'static> {
    slot: &'static ServerSlot<T>,
    /// The variables that point `tftrail` at the server.
    pub env: Vec<(&'static str, String)>,
}

fn lock_slot<T>(
    slot: &'static ServerSlot<T>,
) -> std::sync::MutexGuard<'static, (Option<T>, usize)> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: 'static> Shared<T> {
    /// The running server, started with `start` if no test uses one; `None` when `start`
    /// gives none (the test skips). `env` gives the variables `tftrail` needs.
    pub fn acquire(
        slot: &'static ServerSlot<T>,
        start: impl FnOnce() -> Option<T>,
        env: impl FnOnce(&T) -> Vec<(&'static str, String)>,
    ) -> Option<Self> {
        let mut s = lock_slot(slot);
        if s.0.is_none() {
            s.0 = Some(start()?);
        }
        s.1 += 1;
        let env = env(s.0.as_ref().expect("started"));
        Some(Shared { slot, env })
    }

    /// Uses the server directly (behind tftrail's back).
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let s = lock_slot(self.slot);
        f(s.0.as_ref().expect("a handle keeps the server running"))
    }

    /// `tftrail args…` on the log at `loc`.
    pub fn tftrail(&self, env: &Env, loc: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut c = env.command(args);
        c.env("TFTRAIL_STORE", loc)
            .envs(self.env.iter().map(|(k, v)| (*k, v)));
        run(c, stdin)
    }

    /// Like [`Shared::tftrail`], asserting exit 0; returns stdout.
    pub fn ok(&self, env: &Env, loc: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.tftrail(env, loc, args, stdin);
        assert_eq!(code(&out), 0, "tftrail {args:?}\n{}", describe(&out));
        stdout(&out)
    }

    /// `tftrail log --json` of the log at `loc`, all records, newest first.
    pub fn log_json(&self, env: &Env, loc: &str) -> Vec<serde_json::Value> {
        self.ok(env, loc, &["log", "--limit", "0", "--json"], None)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }
}

impl<T: 'static> Shared<T> {
    /// `init --origin ORIGIN` of a log at `loc`, then `n` single appends `{"i":0}`…, each
    /// printing its index. Returns the verifier key.
    pub fn init_and_append(&self, env: &Env, loc: &str, origin: &str, n: u64) -> String {
        let vkey = self
            .ok(env, loc, &["init", "--origin", origin], None)
            .trim()
            .to_string();
        for i in 0..n {
            let idx = self.ok(
                env,
                loc,
                &["append"],
                Some(format!("{{\"i\":{i}}}").as_bytes()),
            );
            assert_eq!(idx.trim(), i.to_string());
        }
        vkey
    }

    /// `prove N` on the log at `loc`, then `verify-receipt` offline: no store, nothing but
    /// the verifier key.
    pub fn receipt_verifies_offline(&self, env: &Env, loc: &str, n: u64, vkey: &str) {
        let receipt = self.ok(env, loc, &["prove", &n.to_string()], None);
        let file = env.path("r.txt");
        std::fs::write(&file, &receipt).unwrap();
        let out = env.tftrail(
            &["verify-receipt", file.to_str().unwrap(), "--key", vkey],
            None,
        );
        assert_eq!(code(&out), 0, "{}", describe(&out));
    }

    /// `writers` processes at once, each appending `each` records `{"w":W,"n":N}` one by one
    /// to the log at `loc`; then `verify` must pass and every record be there exactly once.
    pub fn concurrent_appends(&self, env: &Env, loc: &str, writers: u64, each: u64)
    where
        T: Send,
    {
        std::thread::scope(|s| {
            for w in 0..writers {
                s.spawn(move || {
                    for n in 0..each {
                        let payload = format!("{{\"w\":{w},\"n\":{n}}}");
                        self.ok(env, loc, &["append"], Some(payload.as_bytes()));
                    }
                });
            }
        });
        let v = self.ok(env, loc, &["verify"], None);
        assert!(
            v.contains(&format!("verified: {} records", writers * each)),
            "{v}"
        );
        let mut seen: Vec<(u64, u64)> = self
            .log_json(env, loc)
            .iter()
            .map(|r| {
                let p = &r["record"]["payload"];
                (p["w"].as_u64().unwrap(), p["n"].as_u64().unwrap())
            })
            .collect();
        seen.sort();
        let want: Vec<(u64, u64)> = (0..writers)
            .flat_map(|w| (0..each).map(move |n| (w, n)))
            .collect();
        assert_eq!(seen, want);
    }

    /// Runs `terraform <args>` for each of `runs` through `tftrail run` on the log at `loc`
    /// (a one-resource configuration in a fresh directory); each must succeed and be recorded.
    /// Then `verify` must count every record. Returns how many records were made.
    pub fn terraform_runs(&self, env: &Env, loc: &str, runs: &[&[&str]]) -> usize {
        let dir = env.path("work");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("main.tf"),
            "resource \"terraform_data\" \"x\" {\n  input = \"hello\"\n}\n",
        )
        .unwrap();
        let mut envs: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        envs.push(("TFTRAIL_STORE", loc));
        let mut total = 0;
        for args in runs {
            let (out, rec) = env.tf_run(&dir, args, &envs);
            assert_eq!(code(&out), 0, "{args:?}\n{}", describe(&out));
            assert!(
                !rec.is_empty(),
                "{args:?} recorded nothing\n{}",
                describe(&out)
            );
            total += rec.len();
        }
        let v = self.ok(env, loc, &["verify"], None);
        assert!(v.contains(&format!("verified: {total} records")), "{v}");
        total
    }
}

impl<T: 'static> Drop for Shared<T> {
    fn drop(&mut self) {
        let mut s = lock_slot(self.slot);
        s.1 -= 1;
        if s.1 == 0 {
            s.0 = None;
        }
    }
}
