//! Spawning the tool transparently: live streaming, capture, stdin pass-through, signals.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use time::OffsetDateTime;

use crate::context::Env;
use crate::error::{Error, Result};

/// Default limit of captured output kept in memory (the live stream is never limited).
pub const DEFAULT_CAPTURE_LIMIT: usize = 64 * 1024 * 1024;

/// A command to run.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Program (resolved path or name looked up on `PATH`).
    pub program: PathBuf,
    /// Arguments (may contain secrets: never recorded from here).
    pub args: Vec<String>,
    /// Working directory.
    pub dir: PathBuf,
}

/// How to run it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Environment (inherited plus overrides).
    pub env: Env,
    /// Copy the child's output live to this process's stdout/stderr.
    pub stream: bool,
    /// Maximum bytes of output kept in the capture.
    pub capture_limit: usize,
    /// Handle SIGINT/SIGTERM/SIGHUP while the child runs (see [`run`]).
    pub handle_signals: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            env: Env::inherit(),
            stream: true,
            capture_limit: DEFAULT_CAPTURE_LIMIT,
            handle_signals: true,
        }
    }
}

/// What happened.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The child's exit status.
    pub status: ExitStatus,
    /// Exit code as a shell reports it (128+N when killed by signal N).
    pub exit_code: i32,
    /// Signal that killed the child, if any.
    pub signal: Option<i32>,
    /// Whether an interrupt or termination signal was received or forwarded while running.
    pub interrupted: bool,
    /// stdout and stderr interleaved in arrival order (unscrubbed: may hold secrets).
    pub output: Vec<u8>,
    /// Whether the capture hit the limit.
    pub truncated: bool,
    /// Start time (UTC).
    pub started: OffsetDateTime,
    /// End time (UTC).
    pub ended: OffsetDateTime,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// Finds the program: a path containing `/` is checked as is, a bare name is looked up on
/// the environment's `PATH`.
pub fn resolve_program(program: &Path, env: &Env) -> Result<PathBuf> {
    let not_found = || Error::ToolNotFound {
        program: program.display().to_string(),
    };
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 || program.is_absolute() {
        return if is_exec(program) {
            Ok(program.to_path_buf())
        } else {
            Err(not_found())
        };
    }
    let path = env.path_var().ok_or_else(not_found)?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_exec(p))
        .ok_or_else(not_found)
}

fn exit_code_of(status: &ExitStatus) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        _ => (1, None),
    }
}

/// Runs the command with stdin inherited, stdout/stderr piped through (streamed live when
/// `opts.stream`) and captured.
///
/// Signals while the child runs (when `opts.handle_signals`): this process does not die on
/// SIGINT, SIGTERM or SIGHUP, so the caller can still write its record. A terminal's Ctrl-C
/// already reaches the child (same process group) and is not sent twice (Terraform would
/// take a second interrupt as "exit immediately"); a SIGINT, SIGTERM or SIGHUP sent to this
/// process by another process (`kill`) is forwarded to the child.
///
/// Colours and prompts are Terraform's own; the child sees pipes, not a terminal, on
/// stdout/stderr (this only affects line wrapping of some diagnostics).
pub fn run(cmd: &CommandSpec, opts: &RunOptions) -> Result<RunResult> {
    let mut command = Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .current_dir(&cmd.dir)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    opts.env.apply_to(&mut command);

    // Register handlers before spawning so no signal is lost in between.
    let signals = if opts.handle_signals {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        use signal_hook::iterator::exfiltrator::WithOrigin;
        Some(
            signal_hook::iterator::SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(|e| Error::io("cannot install signal handlers", e))?,
        )
    } else {
        None
    };

    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let mut child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::ToolNotFound {
                program: cmd.program.display().to_string(),
            }
        } else {
            Error::Spawn {
                program: cmd.program.display().to_string(),
                source: e,
            }
        }
    })?;

    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut sig_thread = None;
    let mut sig_handle = None;
    if let Some(mut signals) = signals {
        sig_handle = Some(signals.handle());
        let pid = rustix::process::Pid::from_child(&child);
        let flag = interrupted.clone();
        sig_thread = Some(std::thread::spawn(move || {
            use signal_hook::low_level::siginfo::{Cause, Sent};
            for info in signals.forever() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                // Kernel-generated (terminal) signals already reached the child's group.
                let from_process = matches!(
                    info.cause,
                    Cause::Sent(Sent::User | Sent::TKill | Sent::Queue)
                );
                if !from_process {
                    continue;
                }
                let sig = match info.signal {
                    signal_hook::consts::SIGINT => rustix::process::Signal::INT,
                    signal_hook::consts::SIGHUP => rustix::process::Signal::HUP,
                    _ => rustix::process::Signal::TERM,
                };
                let _ = rustix::process::kill_process(pid, sig);
            }
        }));
    }

    let capture = Arc::new(Mutex::new((Vec::<u8>::new(), false)));
    let limit = opts.capture_limit;
    let pump = |mut src: Box<dyn Read + Send>, to_stderr: bool| {
        let capture = capture.clone();
        let stream = opts.stream;
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                if stream {
                    if to_stderr {
                        let mut e = std::io::stderr().lock();
                        let _ = e.write_all(&buf[..n]);
                        let _ = e.flush();
                    } else {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(&buf[..n]);
                        let _ = o.flush();
                    }
                }
                let mut c = capture.lock().unwrap_or_else(|p| p.into_inner());
                let room = limit.saturating_sub(c.0.len());
                if room < n {
                    c.1 = true;
                }
                let take = room.min(n);
                c.0.extend_from_slice(&buf[..take]);
            }
        })
    };
    let out_t = pump(Box::new(child.stdout.take().expect("piped stdout")), false);
    let err_t = pump(Box::new(child.stderr.take().expect("piped stderr")), true);
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for the child process", e))?;
    let _ = out_t.join();
    let _ = err_t.join();
    let ended = OffsetDateTime::now_utc();
    if let Some(h) = sig_handle {
        h.close();
    }
    if let Some(t) = sig_thread {
        let _ = t.join();
    }
    let (exit_code, signal) = exit_code_of(&status);
    let (output, truncated) =
        std::mem::take(&mut *capture.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(RunResult {
        status,
        exit_code,
        signal,
        interrupted: interrupted.load(std::sync::atomic::Ordering::SeqCst) || signal.is_some(),
        output,
        truncated,
        started,
        ended,
        duration_ms: clock.elapsed().as_millis() as u64,
    })
}

/// Runs a helper command quietly (stdin null, output captured), e.g. `version -json`.
pub(crate) fn run_helper(program: &Path, args: &[&str], dir: &Path, env: &Env) -> Result<Vec<u8>> {
    let mut c = Command::new(program);
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    env.apply_to(&mut c);
    helper_gc(env, &mut c);
    let out = c.output().map_err(|e| Error::Spawn {
        program: program.display().to_string(),
        source: e,
    })?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        stderr.truncate(2000);
        return Err(Error::ToolFailed {
            command: format!(
                "{} {}",
                program.file_name().unwrap_or_default().to_string_lossy(),
                args.join(" ")
            ),
            code: out.status.code(),
            stderr: stderr.trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Go's garbage collector settings for the Terraform processes tftrail runs for itself
/// (`show -json`, `version`, `state pull`; never the user's command): no collection until the
/// heap reaches [`HELPER_HEAP`]. They live a fraction of a second and allocate a few MB to tens
/// of MB (`show -json` of a 100-resource plan: 4 collections, ~10 MB); the collector's work
/// takes processor time from the user's plan running beside the early `show`, which on two
/// cores made the plan itself slower. Left alone when the user's environment sets `GOGC` or
/// `GOMEMLIMIT`.
pub(crate) fn helper_gc(env: &Env, cmd: &mut Command) {
    if env.get("GOGC").is_none() && env.get("GOMEMLIMIT").is_none() {
        cmd.env("GOGC", "off").env("GOMEMLIMIT", HELPER_HEAP);
    }
}

/// Heap at which the collector of a helper process starts after all ([`helper_gc`]).
pub(crate) const HELPER_HEAP: &str = "256MiB";

/// RFC 3339 UTC text of a timestamp.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn helpers_run_with_the_collector_deferred_unless_the_user_tunes_it() {
        let d = tempfile::tempdir().unwrap();
        let tool = d.path().join("tool");
        std::fs::write(
            &tool,
            "#!/bin/sh\necho \"GOGC=$GOGC GOMEMLIMIT=$GOMEMLIMIT\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let base = Env::empty().set("PATH", "/usr/bin:/bin");
        let out =
            |env: &Env| String::from_utf8(run_helper(&tool, &[], d.path(), env).unwrap()).unwrap();
        assert_eq!(
            out(&base).trim(),
            format!("GOGC=off GOMEMLIMIT={HELPER_HEAP}")
        );
        assert_eq!(
            out(&base.clone().set("GOGC", "50")).trim(),
            "GOGC=50 GOMEMLIMIT="
        );
        assert_eq!(
            out(&base.set("GOMEMLIMIT", "64MiB")).trim(),
            "GOGC= GOMEMLIMIT=64MiB"
        );
    }
}
