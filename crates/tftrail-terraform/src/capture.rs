//! The whole `tftrail run` flow: classify, record intent, run, record outcome.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use serde_json::{json, Map, Value};
use sha2::Digest;
use time::OffsetDateTime;

use crate::context::{Context, Env};
use crate::early_show::{
    EarlyShow, PlanWatch, Released, PLAN_FAILED, PLAN_RUNNING, PLAN_SUCCEEDED,
};
use crate::error::{Error, Result, SinkError};
use crate::invocation::{Invocation, Operation};
use crate::plan::PlanSummary;
use crate::redact::Scrubber;
use crate::runner::{self, rfc3339, CommandSpec, RunOptions, RunResult};
use crate::state::{diff_values, StateSnapshot};
use crate::values;

/// Where records go. Implemented by the CLI on top of the log.
///
/// Contract: [`Sink::append`] MUST store the record durably before returning `Ok` (an
/// apply starts only after its intent record is stored). Blobs are `(name, bytes)`; the
/// sink stores them content-addressed; the payload already names each blob with its
/// SHA-256 and size (see `"output"` and `"plan_json"` fragments).
pub trait Sink {
    /// Appends one record durably; returns its index in the log.
    fn append(
        &mut self,
        kind: &str,
        payload: Value,
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<u64, SinkError>;

    /// Finds the recorded `terraform.plan` whose plan-file SHA-256 (hex) is `plan_sha256`.
    fn find_plan(&mut self, plan_sha256: &str) -> Result<Option<RecordedPlan>, SinkError>;
}

/// A `terraform.plan` record found by [`Sink::find_plan`].
#[derive(Debug, Clone)]
pub struct RecordedPlan {
    /// Its index in the log.
    pub index: u64,
    /// Its `plan` fragment, with `summary` whole (put back from its blob if it was moved
    /// there) and `plan_json` naming the redacted plan blob.
    pub plan: Value,
    /// Its `command` fragment: which variables the plan was given on the command line
    /// (`var_names`) or in the environment (`tf_var_names`, `tf_cli_args_env`), whose
    /// values the outcome of its apply scrubs as the plan's own record did.
    pub command: Value,
    /// That redacted plan blob (`plan.json`), if the record has one: the intent names it too.
    pub plan_json: Option<Vec<u8>>,
}

/// Options of [`run_recorded`].
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The directory `tftrail` was started in (before `-chdir`).
    pub cwd: PathBuf,
    /// Environment for the tool and for context lookups.
    pub env: Env,
    /// Run even when the intent record cannot be stored (said so in the outcome).
    pub fail_open: bool,
    /// Record read-only commands too (as `terraform.command`).
    pub record_read_only: bool,
    /// Stream the tool's output live (the CLI wants `true`; tests may want `false`).
    pub stream: bool,
    /// Handle signals while the tool runs (see [`runner::run`]).
    pub handle_signals: bool,
    /// Limit of captured output.
    pub capture_limit: usize,
}

impl RecordOptions {
    /// Defaults for the CLI: inherited environment, streaming, signals handled.
    pub fn new(cwd: impl Into<PathBuf>) -> Self {
        RecordOptions {
            cwd: cwd.into(),
            env: Env::inherit(),
            fail_open: false,
            record_read_only: false,
            stream: true,
            handle_signals: true,
            capture_limit: runner::DEFAULT_CAPTURE_LIMIT,
        }
    }
}

/// What [`run_recorded`] did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The exit code `tftrail` should exit with (Terraform's).
    pub exit_code: i32,
    /// The tool's exit status.
    pub status: ExitStatus,
    /// Indices of the records appended, in order.
    pub records: Vec<u64>,
    /// Things the user should be told (e.g. fail-open use, plan not found).
    pub warnings: Vec<String>,
}

/// `{ "blob": name, "sha256": hex, "size": n }`.
pub fn blob_ref(name: &str, bytes: &[u8]) -> Value {
    json!({
        "blob": name,
        "sha256": hex::encode(sha2::Sha256::digest(bytes)),
        "size": bytes.len(),
    })
}

fn outcome_word(inv: &Invocation, r: &RunResult) -> &'static str {
    if r.interrupted {
        "interrupted"
    } else if r.exit_code == 0
        || (r.exit_code == 2
            && matches!(inv.operation(), Operation::Plan)
            && inv.has_flag("-detailed-exitcode"))
    {
        "success"
    } else {
        "failed"
    }
}

/// Secrets that may hide in `TF_CLI_ARGS*` (`-var` values).
fn cli_args_env_secrets(inv: &Invocation, env: &Env) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut secrets = Vec::new();
    for (k, v) in env.iter() {
        if k == "TF_CLI_ARGS" || k.starts_with("TF_CLI_ARGS_") {
            names.push(k.to_string());
            let toks: Vec<String> = std::iter::once("plan".to_string())
                .chain(
                    v.split_whitespace()
                        .map(|t| t.trim_matches(['\'', '"']).to_string()),
                )
                .collect();
            secrets.extend(
                Invocation::parse_as(inv.program(), inv.tool(), &toks)
                    .secret_values()
                    .iter()
                    .cloned(),
            );
        }
    }
    (names, secrets)
}

struct StateRead {
    snapshot: Option<StateSnapshot>,
    info: Value,
}

fn read_state(inv: &Invocation, ctx: &Context, program: &Path, env: &Env) -> StateRead {
    let dir = ctx.abs_dir();
    let local_path = if let Some(p) = inv.state_flag() {
        Some(dir.join(p))
    } else if ctx.backend == "local" {
        let cfg = ctx.backend_config();
        let ws = &ctx.workspace;
        if ws == "default" {
            Some(
                dir.join(
                    cfg.get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("terraform.tfstate"),
                ),
            )
        } else {
            let wsdir = cfg
                .get("workspace_dir")
                .and_then(Value::as_str)
                .unwrap_or("terraform.tfstate.d");
            Some(dir.join(wsdir).join(ws).join("terraform.tfstate"))
        }
    } else {
        None
    };
    let (bytes, source) = match &local_path {
        Some(p) => match std::fs::read(p) {
            Ok(b) => (
                Ok(b),
                format!("file:{}", p.strip_prefix(dir).unwrap_or(p).display()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return StateRead {
                    snapshot: None,
                    info: json!({"present": false, "source": format!("file:{}", p.strip_prefix(dir).unwrap_or(p).display())}),
                }
            }
            Err(e) => (Err(e.to_string()), "file".into()),
        },
        None => (
            runner::run_helper(program, &["state", "pull"], dir, env).map_err(|e| e.to_string()),
            "state pull".into(),
        ),
    };
    match bytes {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => StateRead {
            snapshot: None,
            info: json!({"present": false, "source": source}),
        },
        Ok(b) => match StateSnapshot::from_state_json(&b) {
            Ok(s) => {
                let mut info = s.fingerprint();
                info["source"] = json!(source);
                StateRead {
                    snapshot: Some(s),
                    info,
                }
            }
            Err(e) => StateRead {
                snapshot: None,
                info: json!({"present": null, "source": source, "error": e.to_string()}),
            },
        },
        Err(e) => StateRead {
            snapshot: None,
            info: json!({"present": null, "source": source, "error": e}),
        },
    }
}

/// Where `version -json` output is cached for a given binary (identified by its resolved
/// path, size and modification time), so each run does not start the tool one extra time.
fn version_cache_path(program: &Path, env: &Env) -> Option<std::path::PathBuf> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let real = std::fs::canonicalize(program).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    let id = format!(
        "{}|{}|{}|{}",
        real.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    let base = match env.get("XDG_CACHE_HOME") {
        Some(d) if Path::new(d).is_absolute() => std::path::PathBuf::from(d),
        _ => std::path::PathBuf::from(env.get("HOME")?).join(".cache"),
    };
    Some(
        base.join("tftrail/tool-version")
            .join(hex::encode(Sha256::digest(id.as_bytes()))),
    )
}

fn tool_version(program: &Path, dir: &Path, env: &Env) -> Value {
    let cache = version_cache_path(program, env);
    let cached = cache
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .filter(|b| serde_json::from_slice::<Value>(b).is_ok());
    let output = match cached {
        Some(b) => Ok(b),
        None => runner::run_helper(program, &["version", "-json"], dir, env).inspect(|b| {
            if let Some(p) = &cache {
                // Best effort: a cache that cannot be written only costs time.
                if let Some(d) = p.parent() {
                    let _ = std::fs::create_dir_all(d);
                }
                let tmp = p.with_extension(format!("tmp{}", std::process::id()));
                if std::fs::write(&tmp, b).is_ok() {
                    let _ = std::fs::rename(&tmp, p);
                }
            }
        }),
    };
    match output
        .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| Error::Plan(e.to_string())))
    {
        Ok(v) => json!({
            "version": v.get("terraform_version"),
            "platform": v.get("platform"),
        }),
        Err(e) => json!({"version": null, "error": e.to_string()}),
    }
}

struct PlanFile {
    info: Value,
    summary: Option<PlanSummary>,
}

/// Fingerprints and summarises a plan file via `show -json`: `early`'s output when it was
/// started before the plan ended, succeeded and read the file as it is now, else a
/// `show -json` run now.
fn inspect_plan_file(
    path: &Path,
    program: &Path,
    dir: &Path,
    env: &Env,
    early: Option<Released>,
) -> PlanFile {
    let mut info = match fingerprint(path) {
        Ok(info) => info,
        Err(info) => {
            return PlanFile {
                info,
                summary: None,
            }
        }
    };
    let summary = match early.and_then(|e| e.output_for(path)) {
        Some(json) => PlanSummary::from_show_json(&json),
        // Any failure of the early process: the ordinary way, which reports its own errors.
        None => show_plan(path, program, dir, env),
    };
    let summary = match summary {
        Ok(s) => Some(s),
        Err(e) => {
            info["error"] = json!(format!("cannot read the plan file: {e}"));
            None
        }
    };
    PlanFile { info, summary }
}

/// A plan file's `{"sha256", "size"}`, or `{"error"}` when it cannot be read.
fn fingerprint(path: &Path) -> std::result::Result<Value, Value> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(json!({
            "sha256": hex::encode(sha2::Sha256::digest(&bytes)),
            "size": bytes.len(),
        })),
        Err(e) => Err(json!({"error": format!("cannot read the plan file: {e}")})),
    }
}

/// `show -json` of a plan file, summarised and redacted.
fn show_plan(path: &Path, program: &Path, dir: &Path, env: &Env) -> Result<PlanSummary> {
    let path_s = path.to_string_lossy().into_owned();
    runner::run_helper(program, &["show", "-json", &path_s], dir, env)
        .and_then(|j| PlanSummary::from_show_json(&j))
}

/// Fingerprints a saved plan about to be applied (`sha256`, `size`, or `error`) and starts
/// reading it with `show -json` on another thread.
fn start_plan_read(
    path: &Path,
    program: &Path,
    dir: &Path,
    env: &Env,
) -> (Value, Option<std::thread::JoinHandle<Result<PlanSummary>>>) {
    let info = match fingerprint(path) {
        Ok(info) => info,
        Err(info) => return (info, None),
    };
    let (path, program, dir, env) = (
        path.to_path_buf(),
        program.to_path_buf(),
        dir.to_path_buf(),
        env.clone(),
    );
    let reader = std::thread::spawn(move || show_plan(&path, &program, &dir, &env));
    (info, Some(reader))
}

fn append(
    sink: &mut dyn Sink,
    scrubber: &Scrubber,
    kind: &str,
    mut payload: Value,
    blobs: Vec<(String, Vec<u8>)>,
) -> Result<u64, SinkError> {
    // Last line of defence: no known secret anywhere in a payload.
    scrubber.scrub_value(&mut payload);
    sink.append(kind, payload, blobs)
}

/// The last record of a run, and what was recorded before it.
struct Finished {
    kind: String,
    payload: Map<String, Value>,
    /// Blobs besides the captured output.
    blobs: Vec<(String, Vec<u8>)>,
    intent_index: Option<u64>,
    records: Vec<u64>,
    warnings: Vec<String>,
}

/// Appends the record of a finished run, with its scrubbed output as the `output.txt` blob,
/// and returns the report `tftrail` exits with.
fn finish(
    sink: &mut dyn Sink,
    scrubber: &Scrubber,
    inv: &Invocation,
    r: &runner::RunResult,
    mut done: Finished,
) -> Result<RunReport> {
    let out = scrubber.scrub_bytes(&r.output);
    let mut o = blob_ref("output.txt", &out);
    o["truncated"] = json!(r.truncated);
    done.payload.insert("output".into(), o);
    done.blobs.push(("output.txt".into(), out));
    let idx = append(
        sink,
        scrubber,
        &done.kind,
        Value::Object(done.payload),
        done.blobs,
    )
    .map_err(|e| Error::RecordNotStored {
        tool: inv.tool().name().into(),
        exit_code: r.exit_code,
        intent_index: done.intent_index,
        source: e,
    })?;
    done.records.push(idx);
    Ok(RunReport {
        exit_code: r.exit_code,
        status: r.status,
        records: done.records,
        warnings: done.warnings,
    })
}

/// Runs `inv` the way `tftrail run` does and appends its records to `sink`.
///
/// * Read-only commands run straight through, unrecorded (unless
///   `opts.record_read_only`: then one `terraform.command` record).
/// * `plan`: one `terraform.plan` record after the run. Without `-out`, a temporary plan
///   file is added (and removed afterwards) so the plan can be fingerprinted and summarised.
/// * State-changing commands: `<stem>.intent` appended before the tool starts (if it cannot
///   be stored the tool does not run and [`Error::IntentNotStored`] is returned, unless
///   `opts.fail_open`), then `<stem>.outcome` after it ends.
///
/// The returned [`RunReport::exit_code`] is Terraform's. If the tool ran but its final
/// record could not be stored, [`Error::RecordNotStored`] carries the exit code.
pub fn run_recorded(
    inv: &Invocation,
    opts: &RecordOptions,
    sink: &mut dyn Sink,
) -> Result<RunReport> {
    let dir = inv.working_dir(&opts.cwd);
    let run_opts = RunOptions {
        env: opts.env.clone(),
        stream: opts.stream,
        capture_limit: opts.capture_limit,
        handle_signals: opts.handle_signals,
    };
    let op = inv.operation().clone();
    if !op.is_recorded() && !opts.record_read_only {
        let spec = CommandSpec {
            program: inv.program().to_path_buf(),
            args: inv.raw_args().to_vec(),
            dir: opts.cwd.clone(),
        };
        let r = runner::run(
            &spec,
            &RunOptions {
                capture_limit: 0,
                ..run_opts
            },
        )?;
        return Ok(RunReport {
            exit_code: r.exit_code,
            status: r.status,
            records: vec![],
            warnings: vec![],
        });
    }
    let program = runner::resolve_program(inv.program(), &opts.env)?;
    let env = &opts.env;
    let version = tool_version(&program, &opts.cwd, env);
    // Git runs in the background: until the context is needed in a record (the intent, or
    // the plan record after the plan), only its local part is read.
    let pending_ctx = Context::begin(&dir, env);
    let (cli_env_names, cli_env_secrets) = cli_args_env_secrets(inv, env);
    let mut secrets: Vec<String> = inv.secret_values().to_vec();
    secrets.extend(env.tf_var_values());
    secrets.extend(cli_env_secrets);

    let mut command = inv.to_json();
    command["tf_var_names"] = json!(env.tf_var_names());
    if !cli_env_names.is_empty() {
        command["tf_cli_args_env"] = json!(cli_env_names);
    }
    let mut base = Map::new();
    base.insert(
        "tool".into(),
        json!({"name": inv.tool().name(), "version": version["version"], "platform": version["platform"], "version_error": version.get("error")}),
    );
    base.insert("command".into(), command);
    let with_context = |base: &mut Map<String, Value>, ctx: &Context| {
        base.insert(
            "context".into(),
            serde_json::to_value(ctx).unwrap_or(Value::Null),
        );
    };

    let mut report_warnings = Vec::new();
    let mut records = Vec::new();
    let spec_with = |args: Vec<String>| CommandSpec {
        program: program.clone(),
        args,
        dir: opts.cwd.clone(),
    };
    let run_fields = |r: &RunResult, payload: &mut Map<String, Value>| {
        payload.insert("started_at".into(), json!(rfc3339(r.started)));
        payload.insert("ended_at".into(), json!(rfc3339(r.ended)));
        payload.insert("duration_ms".into(), json!(r.duration_ms));
        payload.insert("exit_code".into(), json!(r.exit_code));
        payload.insert("signal".into(), json!(r.signal));
        payload.insert("outcome".into(), json!(outcome_word(inv, r)));
    };

    match op {
        Operation::Plan => {
            let env_has_out = env.iter().any(|(k, v)| {
                (k == "TF_CLI_ARGS" || k == "TF_CLI_ARGS_plan") && v.contains("-out")
            });
            let mut temp_dir = None;
            let (args, plan_path, temporary) = match inv.plan_out() {
                Some(out) => (inv.raw_args().to_vec(), Some(dir.join(out)), false),
                None if pending_ctx.partial().backend != "remote" && !env_has_out => {
                    let td = tempfile::Builder::new()
                        .prefix("tftrail-plan-")
                        .tempdir()
                        .map_err(|e| Error::io("cannot create a temporary directory", e))?;
                    let p = td.path().join("plan.tfplan");
                    temp_dir = Some(td);
                    (
                        inv.args_with_inserted(&format!("-out={}", p.display())),
                        Some(p),
                        true,
                    )
                }
                None => (inv.raw_args().to_vec(), None, false),
            };
            // `show -json` of the plan starts now and waits for the plan file (Terraform only:
            // OpenTofu reads its CLI configuration from other places).
            // Started from another thread so that the plan itself starts first; released as
            // soon as the plan file is written.
            let plan_state = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(PLAN_RUNNING));
            let early = match &plan_path {
                Some(p) if inv.tool() == crate::invocation::Tool::Terraform => {
                    let watch = PlanWatch::new(p);
                    let (program, dir, env) = (program.clone(), dir.clone(), env.clone());
                    let (p, st) = (p.clone(), plan_state.clone());
                    Some(std::thread::spawn(move || {
                        EarlyShow::start(&program, &dir, &env)?.follow(&p, watch, &st)
                    }))
                }
                _ => None,
            };
            let r = runner::run(&spec_with(args), &run_opts);
            let succeeded = matches!(&r, Ok(r) if outcome_word(inv, r) == "success");
            plan_state.store(
                if succeeded {
                    PLAN_SUCCEEDED
                } else {
                    PLAN_FAILED
                },
                std::sync::atomic::Ordering::SeqCst,
            );
            // Joined even when the plan could not run, so the process is not left behind.
            let mut early = early.and_then(|t| t.join().ok().flatten());
            let r = r?;
            let mut plan = None;
            let mut plan_info = json!({"saved": false});
            if let Some(p) = &plan_path {
                if outcome_word(inv, &r) == "success" && p.exists() {
                    let pf = inspect_plan_file(p, &program, &dir, env, early.take());
                    plan_info = pf.info;
                    plan_info["saved"] = json!(!temporary);
                    plan_info["temporary"] = json!(temporary);
                    if !temporary {
                        plan_info["path"] = json!(inv.plan_out());
                    }
                    plan = pf.summary;
                }
            }
            drop(early); // not used (the plan failed): stopped
            drop(temp_dir); // removes the temporary plan file
            if let Some(p) = &plan {
                secrets.extend(p.secrets().iter().cloned());
            }
            let scrubber = Scrubber::new(&secrets);
            let mut payload = base.clone();
            with_context(&mut payload, &pending_ctx.finish());
            payload.insert("plan_mode".into(), json!(inv.plan_mode()));
            run_fields(&r, &mut payload);
            let mut blobs = Vec::new();
            if let Some(mut p) = plan {
                p.scrub_with(&scrubber);
                plan_info["summary"] = serde_json::to_value(&p).unwrap_or(Value::Null);
                plan_info["plan_json"] = blob_ref("plan.json", p.redacted_json());
                blobs.push(("plan.json".to_string(), p.redacted_json().to_vec()));
            }
            payload.insert("plan".into(), plan_info);
            let done = Finished {
                kind: "terraform.plan".into(),
                payload,
                blobs,
                intent_index: None,
                records,
                warnings: report_warnings,
            };
            finish(sink, &scrubber, inv, &r, done)
        }
        op if op.is_mutating() => {
            let stem = op.kind_stem();
            let state_before = read_state(inv, pending_ctx.partial(), &program, env);
            if let Some(s) = &state_before.snapshot {
                secrets.extend(s.secrets());
            }
            let mut intent = base.clone();
            let mut intent_blobs = Vec::new();
            // `show -json` of a recorded plan being applied, still running.
            let mut plan_reader = None;
            // The variables the recorded plan was given on the command line or in the
            // environment (`Some(None)`: all of them, through `TF_CLI_ARGS`).
            let mut plan_vars: Option<Option<Vec<String>>> = None;
            if matches!(
                op,
                Operation::Apply | Operation::Destroy | Operation::Refresh
            ) {
                let plan_v = match inv.saved_plan() {
                    Some(file) => {
                        let (mut info, reader) =
                            start_plan_read(&dir.join(file), &program, &dir, env);
                        info["saved"] = json!(true);
                        info["path"] = json!(file);
                        let found = match info.get("sha256").and_then(Value::as_str) {
                            Some(sha) => sink.find_plan(sha),
                            None => Ok(None),
                        };
                        let mut reader = reader;
                        match found {
                            Ok(Some(rec)) => {
                                info["plan_index"] = json!(rec.index);
                                info["recorded"] = json!(true);
                                plan_vars = Some(given_variables(&rec.command));
                                // What is about to be applied is the recorded plan: its
                                // summary goes into the intent now, and the plan is read
                                // again while Terraform applies it (for the secrets to
                                // scrub from the output).
                                if let Some(v) = rec.plan.get("summary") {
                                    info["summary"] = v.clone();
                                }
                                if let Some(b) = rec.plan_json {
                                    info["plan_json"] = blob_ref("plan.json", &b);
                                    intent_blobs.push(("plan.json".to_string(), b));
                                }
                                plan_reader = reader.take();
                            }
                            Ok(None) => {
                                info["plan_index"] = Value::Null;
                                info["recorded"] = json!(false);
                                info["note"] = json!("no recorded plan has this SHA-256: this plan was not recorded by tftrail");
                                report_warnings.push(
                                    "the saved plan being applied was not recorded by tftrail"
                                        .into(),
                                );
                            }
                            Err(e) => {
                                info["recorded"] = Value::Null;
                                info["note"] = json!(format!("plan lookup failed: {e}"));
                            }
                        }
                        // Not recorded: the intent carries the plan's summary itself.
                        if let Some(r) = reader {
                            match r.join().unwrap_or_else(|_| {
                                Err(Error::Plan("the plan reader panicked".into()))
                            }) {
                                Ok(mut p) => {
                                    secrets.extend(p.secrets().iter().cloned());
                                    p.scrub_with(&Scrubber::new(&secrets));
                                    info["summary"] =
                                        serde_json::to_value(&p).unwrap_or(Value::Null);
                                    info["plan_json"] = blob_ref("plan.json", p.redacted_json());
                                    intent_blobs.push((
                                        "plan.json".to_string(),
                                        p.redacted_json().to_vec(),
                                    ));
                                }
                                Err(e) => {
                                    info["error"] =
                                        json!(format!("cannot read the plan file: {e}"));
                                }
                            }
                        }
                        info
                    }
                    None => json!({
                        "saved": false,
                        "reviewed": false,
                        "note": unsaved_plan_note(inv),
                        "auto_approve": inv.has_flag("-auto-approve"),
                    }),
                };
                intent.insert("plan".into(), plan_v);
            }
            let ctx = pending_ctx.finish();
            with_context(&mut intent, &ctx);
            intent.insert("state_before".into(), state_before.info.clone());
            intent.insert(
                "started_at".into(),
                json!(rfc3339(OffsetDateTime::now_utc())),
            );
            let scrubber = Scrubber::new(&secrets);
            let intent_idx = match append(
                sink,
                &scrubber,
                &format!("{stem}.intent"),
                Value::Object(intent),
                intent_blobs,
            ) {
                Ok(i) => {
                    records.push(i);
                    Some(i)
                }
                Err(e) if opts.fail_open => {
                    report_warnings.push(format!(
                        "the intent record could not be stored ({e}); running anyway because of --fail-open"
                    ));
                    None
                }
                Err(e) => {
                    if let Some(r) = plan_reader.take() {
                        let _ = r.join();
                    }
                    return Err(Error::IntentNotStored {
                        operation: inv.subcommand().join(" "),
                        source: e,
                    });
                }
            };
            let r = runner::run(&spec_with(inv.raw_args().to_vec()), &run_opts);
            let plan_read = plan_reader.map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(Error::Plan("the plan reader panicked".into())))
            });
            let r = r?;
            let mut plan_read_error = None;
            match plan_read {
                Some(Ok(p)) => {
                    secrets.extend(p.secrets().iter().cloned());
                    // The values the plan's own run scrubbed (`-var`, `TF_VAR_*`) are kept
                    // out of its apply's outcome too: the plan file holds them.
                    if let Some(names) = &plan_vars {
                        secrets.extend(p.variable_values(names.as_deref()));
                    }
                }
                Some(Err(e)) => plan_read_error = Some(e.to_string()),
                None => {}
            }
            let ctx_after = ctx.after_command(env);
            let state_after = read_state(inv, &ctx_after, &program, env);
            if let Some(s) = &state_after.snapshot {
                secrets.extend(s.secrets());
            }
            let scrubber = Scrubber::new(&secrets);
            let mut payload = base.clone();
            with_context(&mut payload, &ctx);
            payload.insert("intent_index".into(), json!(intent_idx));
            if intent_idx.is_none() {
                payload.insert(
                    "fail_open".into(),
                    json!({"intent_stored": false, "note": "the intent record could not be stored; the command ran because of --fail-open"}),
                );
            }
            run_fields(&r, &mut payload);
            if let Some(e) = plan_read_error {
                payload.insert(
                    "plan_read_error".into(),
                    json!(format!("the applied plan file could not be read again to learn its sensitive values: {e}")),
                );
            }
            let (diff, outcome_blobs) = outcome_values(
                state_before.snapshot.as_ref(),
                state_after.snapshot.as_ref(),
                &scrubber,
            );
            payload.insert("state_before".into(), state_before.info);
            payload.insert("state_after".into(), state_after.info);
            payload.insert("state_diff".into(), diff);
            if let Some((_, b)) = outcome_blobs
                .iter()
                .find(|(n, _)| n == values::STATE_VALUES_BLOB)
            {
                payload.insert(
                    "state_values".into(),
                    blob_ref(values::STATE_VALUES_BLOB, b),
                );
            }
            if ctx_after.workspace != ctx.workspace || ctx_after.backend != ctx.backend {
                payload.insert(
                    "context_after".into(),
                    json!({"workspace": ctx_after.workspace, "backend": ctx_after.backend}),
                );
            }
            let done = Finished {
                kind: format!("{stem}.outcome"),
                payload,
                blobs: outcome_blobs,
                intent_index: intent_idx,
                records,
                warnings: report_warnings,
            };
            finish(sink, &scrubber, inv, &r, done)
        }
        _ => {
            // Read-only command recorded on request.
            let r = runner::run(&spec_with(inv.raw_args().to_vec()), &run_opts)?;
            let ctx = pending_ctx.finish();
            // Read-only commands (`output`, `show`, `state pull`) may print state secrets.
            if let Some(s) = read_state(inv, &ctx, &program, env).snapshot {
                secrets.extend(s.secrets());
            }
            let scrubber = Scrubber::new(&secrets);
            let mut payload = base;
            with_context(&mut payload, &ctx);
            run_fields(&r, &mut payload);
            let done = Finished {
                kind: "terraform.command".into(),
                payload,
                blobs: Vec::new(),
                intent_index: None,
                records,
                warnings: report_warnings,
            };
            finish(sink, &scrubber, inv, &r, done)
        }
    }
}

/// The state diff of an outcome, with the redacted values of what changed, and its blobs:
/// `state-diff-full.json` (the whole diff, when a value had to be truncated in the record;
/// `state_diff.full` names it) and `state-values.json` (every instance of the state after,
/// redacted, for `check-state`; the caller names it as `state_values`). Everything is
/// scrubbed by `scrubber` (the run's secrets) before truncation, so a marker's SHA-256 is that
/// of what the blob holds.
fn outcome_values(
    before: Option<&StateSnapshot>,
    after: Option<&StateSnapshot>,
    scrubber: &Scrubber,
) -> (Value, Vec<(String, Vec<u8>)>) {
    let (diff, full) = values::fit_diff(diff_values(before, after), Some(scrubber));
    let mut blobs: Vec<(String, Vec<u8>)> = full.into_iter().collect();
    if let Some(a) = after {
        let bytes = serde_json::to_vec(&a.values(scrubber)).unwrap_or_default();
        blobs.push((values::STATE_VALUES_BLOB.to_string(), bytes));
    }
    (diff, blobs)
}

/// The variables a recorded plan's `command` fragment says were given outside the
/// configuration: `-var` names and `TF_VAR_*` names; `None` (all) when `TF_CLI_ARGS*` was set.
fn given_variables(command: &Value) -> Option<Vec<String>> {
    let names = |k: &str| -> Vec<String> {
        command
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    };
    if !names("tf_cli_args_env").is_empty() {
        return None;
    }
    let mut all = names("var_names");
    all.extend(names("tf_var_names"));
    Some(all)
}

/// The intent's plan note for a command that runs without a saved plan, in the words of what
/// it does (a destroy destroys; it is not "applied").
fn unsaved_plan_note(inv: &Invocation) -> String {
    let (when, what) = match inv.operation() {
        Operation::Destroy => ("when it destroys", "what is destroyed"),
        Operation::Refresh => ("when it refreshes", "what is refreshed"),
        Operation::Import => ("when it imports", "what is imported"),
        _ => ("at apply time", "what is applied"),
    };
    format!(
        "no saved plan: Terraform plans again {when}, so {what} was not reviewed from a recorded plan"
    )
}
