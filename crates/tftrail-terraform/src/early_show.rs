//! `terraform show -json PLANFILE`, started while the plan still runs.
//!
//! Reading a plan as JSON needs a second Terraform process, and about half of its wall time
//! is the process starting (Go package initialisation in a 90 MB binary), before it reads
//! anything. [`EarlyShow`] starts that process next to `terraform plan` and holds it at its
//! first read of the CLI configuration: `TF_CLI_CONFIG_FILE` names a FIFO whose write end
//! only tftrail holds, so Terraform's read blocks until [`EarlyShow::finish`], called once
//! the plan file is complete, writes the configuration Terraform would have read
//! (`TF_CLI_CONFIG_FILE`, `TERRAFORM_CONFIG` or `~/.terraformrc`) and closes it.
//!
//! The release comes as soon as the plan file is closed after writing ([`PlanWatch`], inotify),
//! while Terraform still prints the plan and exits; the output counts only if the plan then
//! succeeds and the file is unchanged since the release ([`Released::output_for`]).
//!
//! The plan path Terraform is given is a symbolic link created only at that moment, so a
//! process that reached the plan before its configuration finds nothing and fails; every
//! failure falls back to an ordinary `show -json` after the plan (the caller's job). Should a
//! Terraform version open the configuration again after the release, a probe loop opens the
//! FIFO for writing and closes it at once, so such a read sees an empty file instead of
//! waiting forever.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::context::Env;

/// A `show -json` process waiting for the plan file.
pub(crate) struct EarlyShow {
    child: Option<Child>,
    /// Holds the FIFO and the link; removed on drop.
    _tmp: tempfile::TempDir,
    fifo: PathBuf,
    link: PathBuf,
    /// Both ends of the FIFO (`O_RDWR`), so Terraform's open never blocks and its read does.
    gate: Option<File>,
    config: Vec<u8>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// The plan is still running (see [`EarlyShow::follow`]).
pub(crate) const PLAN_RUNNING: u8 = 0;
/// The plan ended successfully.
pub(crate) const PLAN_SUCCEEDED: u8 = 1;
/// The plan failed or was interrupted.
pub(crate) const PLAN_FAILED: u8 = 2;

/// Watches the plan file's directory for the file being closed after writing.
pub(crate) struct PlanWatch {
    fd: OwnedFd,
    name: std::ffi::OsString,
}

impl PlanWatch {
    /// Starts watching; `None` when inotify is unavailable (the release then waits for the
    /// plan to end).
    pub(crate) fn new(plan: &Path) -> Option<PlanWatch> {
        use rustix::fs::inotify;
        let name = plan.file_name()?.to_os_string();
        let dir = plan
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let fd =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
        inotify::add_watch(&fd, dir, inotify::WatchFlags::CLOSE_WRITE).ok()?;
        Some(PlanWatch { fd, name })
    }

    /// Whether the plan file was closed after writing since the last call.
    fn closed(&self) -> bool {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut events = rustix::fs::inotify::Reader::new(&self.fd, &mut buf);
        let mut seen = false;
        // Until no event is pending (EAGAIN).
        while let Ok(e) = events.next() {
            seen |= e.file_name().map(|n| n.to_bytes()) == Some(self.name.as_bytes());
        }
        seen
    }
}

/// A file's identity and last change, to tell whether it changed after the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// What a released [`EarlyShow`] printed, and the plan file as it was at the release.
pub(crate) struct Released {
    output: Result<Vec<u8>, String>,
    stamp: Option<Stamp>,
}

impl Released {
    /// The `show -json` output, if it is the output for `plan` as it is now: the process
    /// succeeded and the file has not changed since it was released.
    pub(crate) fn output_for(self, plan: &Path) -> Option<Vec<u8>> {
        match (self.output, self.stamp) {
            (Ok(out), Some(st)) if stamp(plan) == Some(st) => Some(out),
            _ => None,
        }
    }
}

/// The CLI configuration Terraform reads when `TF_CLI_CONFIG_FILE` is not ours: `None`
/// when it cannot be read (then no early start: Terraform would report the problem itself).
fn cli_config(env: &Env) -> Option<Vec<u8>> {
    let path = match env
        .get("TF_CLI_CONFIG_FILE")
        .or_else(|| env.get("TERRAFORM_CONFIG"))
        .filter(|p| !p.is_empty())
    {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env.get("HOME")?).join(".terraformrc"),
    };
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Vec::new()),
        Err(_) => None,
    }
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

impl EarlyShow {
    /// Starts `program show -json <link>` in `dir`, held before it reads anything. `None`
    /// when it cannot be set up; the caller then runs `show -json` after the plan.
    pub(crate) fn start(program: &Path, dir: &Path, env: &Env) -> Option<EarlyShow> {
        let mut config = cli_config(env)?;
        // Never empty, so that its consumption can be observed (FIONREAD).
        config.extend_from_slice(b"\n# CLI configuration relayed by tftrail\n");
        let tmp = tempfile::Builder::new()
            .prefix("tftrail-show-")
            .tempdir()
            .ok()?;
        let fifo = tmp.path().join("cli.tfrc");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .ok()?;
        let gate = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&fifo)
            .ok()?;
        let link = tmp.path().join("plan.tfplan");
        let mut c = Command::new(program);
        c.arg("show")
            .arg("-json")
            .arg(&link)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        env.apply_to(&mut c);
        c.env("TF_CLI_CONFIG_FILE", &fifo)
            .env_remove("TERRAFORM_CONFIG");
        crate::runner::helper_gc(env, &mut c);
        let mut child = c.spawn().ok()?;
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        Some(EarlyShow {
            child: Some(child),
            _tmp: tmp,
            fifo,
            link,
            gate: Some(gate),
            config,
            stdout,
            stderr,
        })
    }

    /// Waits for the plan file: released when `watch` sees it closed after writing or when
    /// `plan` says the plan succeeded, whichever comes first; stopped (`None`) when the plan
    /// failed first.
    pub(crate) fn follow(
        self,
        plan_file: &Path,
        watch: Option<PlanWatch>,
        plan: &AtomicU8,
    ) -> Option<Released> {
        let released = loop {
            match plan.load(Ordering::SeqCst) {
                PLAN_SUCCEEDED => break true,
                PLAN_FAILED => break false,
                _ => {}
            }
            if watch.as_ref().is_some_and(PlanWatch::closed) {
                break true;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // Closing an inotify descriptor waits for the kernel to retire its watch (an RCU
        // grace period: 10-25 ms measured here), which would otherwise come after the show
        // or at exit: it is closed on a thread of its own, while the show runs.
        if let Some(w) = watch {
            std::thread::spawn(move || drop(w));
        }
        if !released {
            return None;
        }
        let stamp = stamp(plan_file);
        Some(Released {
            output: self.finish(plan_file),
            stamp,
        })
    }

    /// Lets the process read `plan` (complete by now) and returns its standard output, or an
    /// error saying why it failed (the caller falls back to an ordinary `show -json`).
    pub(crate) fn finish(mut self, plan: &Path) -> Result<Vec<u8>, String> {
        let plan = std::fs::canonicalize(plan).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(&plan, &self.link).map_err(|e| e.to_string())?;
        // The process stays in `self` until it has exited, so that any early return kills it.
        let mut gate = self.gate.take().ok_or("already finished")?;
        let child = self.child.as_mut().ok_or("already finished")?;
        // Release: the configuration into the pipe, then wait until Terraform has read all of
        // it (or is gone) before closing, so the close reaches it as end of file.
        let mut rest: &[u8] = &self.config;
        let exited = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break Some(status);
            }
            if !rest.is_empty() {
                match gate.write(rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("cannot relay the CLI configuration: {e}")),
                }
            }
            if rest.is_empty() && rustix::io::ioctl_fionread(&gate).unwrap_or(0) == 0 {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        drop(gate);
        let status = match exited {
            Some(s) => s,
            None => loop {
                let child = self.child.as_mut().ok_or("already finished")?;
                if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                    break s;
                }
                // A later open of the configuration (none in the Terraform versions tested)
                // would wait for a writer forever: give it one that closes at once.
                let _ = OpenOptions::new()
                    .write(true)
                    .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                    .open(&self.fifo);
                std::thread::sleep(Duration::from_millis(1));
            },
        };
        self.child = None; // exited and reaped
        let out = self
            .stdout
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        let err = self
            .stderr
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        if status.success() {
            Ok(out)
        } else {
            Err(format!(
                "exit status {status}: {}",
                String::from_utf8_lossy(&err).trim()
            ))
        }
    }
}

impl Drop for EarlyShow {
    /// Not finished (the plan failed or was interrupted): the waiting process is killed.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A directory with a user CLI configuration and `program`, a script standing in for a
    /// tool whose startup reads the CLI configuration (as often as `reads`) before the plan.
    fn setup(script: &str) -> (tempfile::TempDir, PathBuf, Env) {
        let d = tempfile::tempdir().unwrap();
        let rc = d.path().join("user.tfrc");
        std::fs::write(&rc, "plugin_cache_dir = \"/cache\"\n").unwrap();
        let program = d.path().join("tool");
        std::fs::write(&program, format!("#!/bin/sh\n{script}")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = Env::empty()
            .set("PATH", "/usr/bin:/bin")
            .set("TF_CLI_CONFIG_FILE", rc.to_str().unwrap());
        (d, program, env)
    }

    fn plan_file(d: &Path) -> PathBuf {
        let p = d.join("t.plan");
        std::fs::write(&p, "PLAN BYTES").unwrap();
        p
    }

    #[test]
    fn relays_the_user_configuration_then_the_plan() {
        // Reads the configuration twice: the second read (no Terraform version tested does
        // that) must see an empty file, not hang.
        let (d, program, env) = setup(
            "test \"$1 $2\" = \"show -json\" || exit 9\n\
             cat \"$TF_CLI_CONFIG_FILE\"; echo '|'; cat \"$TF_CLI_CONFIG_FILE\"; echo '|'\n\
             cat \"$3\"\n",
        );
        let early = EarlyShow::start(&program, d.path(), &env).expect("started");
        // The plan is not there yet: the tool is held at its first read.
        std::thread::sleep(Duration::from_millis(100));
        let out = early.finish(&plan_file(d.path())).expect("finished");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "plugin_cache_dir = \"/cache\"\n\n# CLI configuration relayed by tftrail\n|\n|\nPLAN BYTES"
        );
    }

    #[test]
    fn a_tool_that_starts_late_still_gets_its_configuration() {
        let (d, program, env) =
            setup("sleep 0.3; cat \"$TF_CLI_CONFIG_FILE\" >/dev/null; cat \"$3\"\n");
        let early = EarlyShow::start(&program, d.path(), &env).unwrap();
        let out = early.finish(&plan_file(d.path())).unwrap();
        assert_eq!(out, b"PLAN BYTES");
    }

    #[test]
    fn failures_are_reported_for_the_fallback() {
        let (d, program, env) =
            setup("cat \"$TF_CLI_CONFIG_FILE\" >/dev/null; echo broken >&2; exit 3\n");
        let early = EarlyShow::start(&program, d.path(), &env).unwrap();
        let e = early.finish(&plan_file(d.path())).unwrap_err();
        assert!(e.contains("broken"), "{e}");
        // A tool that reads the plan before its configuration finds no plan: it fails
        // instead of reading an older file of the same name.
        let (d, program, env) = setup("cat \"$3\" || exit 4\n");
        let early = EarlyShow::start(&program, d.path(), &env).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(early.finish(&plan_file(d.path())).is_err());
    }

    #[test]
    fn an_unfinished_start_is_stopped() {
        let (d, program, env) = setup("cat \"$TF_CLI_CONFIG_FILE\" >/dev/null; exec sleep 30\n");
        let early = EarlyShow::start(&program, d.path(), &env).unwrap();
        let pid = early.child.as_ref().unwrap().id();
        let fifo_dir = early._tmp.path().to_path_buf();
        let t = std::time::Instant::now();
        drop(early);
        assert!(t.elapsed() < Duration::from_secs(5));
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "the held process was left running");
        assert!(!fifo_dir.exists(), "the FIFO directory was left behind");
    }

    /// Real Terraform (`TFTRAIL_TERRAFORM` or `terraform` on PATH; fails when missing): held
    /// before the plan exists, released after, it prints what an ordinary `show -json` prints.
    #[test]
    fn real_terraform_prints_the_same_plan_json() {
        let terraform = std::env::var_os("TFTRAIL_TERRAFORM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("terraform"));
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("main.tf"),
            "variable \"s\" {\n  default   = \"hush\"\n  sensitive = true\n}\n\
             resource \"terraform_data\" \"r\" {\n  count = 3\n  input = { i = count.index, s = var.s }\n}\n",
        )
        .unwrap();
        std::fs::write(d.path().join("empty.tfrc"), "").unwrap();
        let env = Env::inherit()
            .set(
                "TF_CLI_CONFIG_FILE",
                d.path().join("empty.tfrc").to_str().unwrap(),
            )
            .set("CHECKPOINT_DISABLE", "1");
        let tf = |args: &[&str]| {
            let mut c = Command::new(&terraform);
            c.args(args).current_dir(d.path()).stdin(Stdio::null());
            env.apply_to(&mut c);
            let out = c
                .output()
                .expect("real Terraform is required (TFTRAIL_TERRAFORM)");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        tf(&["init", "-input=false"]);
        let early = EarlyShow::start(&terraform, d.path(), &env).expect("started");
        tf(&["plan", "-input=false", "-out", "p.tfplan"]);
        let held = early
            .finish(&d.path().join("p.tfplan"))
            .expect("early show");
        let plain = tf(&["show", "-json", "p.tfplan"]);
        let parse = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
        assert_eq!(parse(&held), parse(&plain));
        assert_eq!(
            parse(&held)["resource_changes"].as_array().unwrap().len(),
            3
        );
    }

    #[test]
    fn released_when_the_plan_file_is_written_and_checked_after() {
        let (d, program, env) = setup("cat \"$TF_CLI_CONFIG_FILE\" >/dev/null; cat \"$3\"\n");
        let plan_file = d.path().join("w.plan");
        let state = AtomicU8::new(PLAN_RUNNING);
        let watch = PlanWatch::new(&plan_file).expect("inotify");
        let early = EarlyShow::start(&program, d.path(), &env).unwrap();
        let released = std::thread::scope(|s| {
            let t = s.spawn(|| early.follow(&plan_file, Some(watch), &state));
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(&plan_file, "PLAN V1").unwrap();
            // Released on the close, while the "plan" is still running.
            let r = t.join().unwrap().expect("released");
            assert_eq!(state.load(Ordering::SeqCst), PLAN_RUNNING);
            r
        });
        assert_eq!(released.output.as_deref().ok(), Some(&b"PLAN V1"[..]));
        // Rewritten after the release: the output is not the output for the file any more.
        std::thread::sleep(Duration::from_millis(10));
        std::fs::write(&plan_file, "PLAN V2").unwrap();
        assert_eq!(released.output_for(&plan_file), None);

        // Unchanged: used. And a failed plan stops the process without releasing it.
        let early = EarlyShow::start(&program, d.path(), &env).unwrap();
        state.store(PLAN_SUCCEEDED, Ordering::SeqCst);
        let r = early.follow(&plan_file, None, &state).unwrap();
        assert_eq!(r.output_for(&plan_file).as_deref(), Some(&b"PLAN V2"[..]));
        let early = EarlyShow::start(&program, d.path(), &env).unwrap();
        state.store(PLAN_FAILED, Ordering::SeqCst);
        assert!(early.follow(&plan_file, None, &state).is_none());
    }

    #[test]
    fn an_unreadable_configuration_means_no_early_start() {
        let (d, program, _) = setup("exit 0\n");
        let env = Env::empty()
            .set("PATH", "/usr/bin:/bin")
            .set("TF_CLI_CONFIG_FILE", d.path().to_str().unwrap()); // a directory
        assert!(EarlyShow::start(&program, d.path(), &env).is_none());
    }
}
