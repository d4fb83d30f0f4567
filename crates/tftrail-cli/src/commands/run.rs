//! `tftrail run`

use serde_json::Value;
use tftrail_core::checkpoint::{Checkpoint, SigningKey};
use tftrail_core::record::{Actor, Record};
use tftrail_core::MAX_ENTRY_SIZE;
use tftrail_log::{Blob, Log};
use tftrail_terraform::{run_recorded, Invocation, RecordOptions, RecordedPlan, Sink, SinkError};

use super::{reindex, Global, TrustedKey};
use crate::context;
use crate::error::{CliError, EXIT_FAILURE, EXIT_RUN_NOT_FOUND};
use crate::remote;

/// Run Terraform or OpenTofu and record it in the log.
///
/// `plan` is recorded after it ends (with a redacted plan summary); state-changing commands
/// (apply, destroy, import, state …) get an intent record before Terraform starts and an
/// outcome record after. Read-only commands (show, output, validate, fmt …) pass straight
/// through, unrecorded unless --record-read-only.
///
/// If the log cannot be used (no log, missing key, unwritable store; with --server: the server
/// cannot be reached or refuses TFTRAIL_TOKEN), a recorded command does NOT run, unless
/// --fail-open. Through a server, the server signs: no signing key is read. Exits with Terraform's own exit code; tftrail's own failures
/// exit with codes Terraform never uses: 121 integrity, 122 usage, 123 the log cannot be used,
/// 127 no such program.
///
/// Example: tftrail run -- terraform plan -out tf.plan && tftrail run -- terraform apply tf.plan
#[derive(clap::Args)]
pub struct Args {
    /// Run the command even when it cannot be recorded (said so in the outcome record when
    /// possible, and on stderr)
    #[arg(long)]
    fail_open: bool,
    /// Record read-only commands too (as `terraform.command`)
    #[arg(long)]
    record_read_only: bool,
    /// The command: terraform|tofu followed by its arguments
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// The largest record `tftrail run` keeps whole in its log entry. An entry is rewritten into
/// every partial entry bundle until its tile of 256 fills, so a 30 kB plan summary inline
/// would make each later append rewrite megabytes; moved into a blob, it is written once.
const INLINE_BUDGET: usize = 4096;
const _: () = assert!(INLINE_BUDGET < MAX_ENTRY_SIZE);

/// Where records go: the log in a store (signed here), or a tftrail server (signed there).
/// Both also read the log: `find_plan` looks a plan up in the local index of it.
enum Target {
    Store {
        log: Log,
        key: Box<SigningKey>,
        location: String,
    },
    Server {
        server: remote::Server,
        log: Log,
    },
}

impl Target {
    fn log(&self) -> (&Log, &str) {
        match self {
            Target::Store { log, location, .. } => (log, location),
            Target::Server { server, log } => (log, server.url()),
        }
    }
}

/// Appends records: blobs first (content-addressed), then the entry, durable under a
/// published checkpoint before returning; directly to a store, or through a server.
struct LogSink {
    target: Result<Target, String>,
}

impl LogSink {
    fn target(&self) -> Result<&Target, SinkError> {
        self.target.as_ref().map_err(|e| SinkError::new(e.clone()))
    }
}

fn actor_of(payload: &Value) -> Actor {
    let fallback = context::actor();
    let a = payload.pointer("/context/actor");
    let get = |k: &str| {
        a.and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    Actor {
        authenticated: None,
        user: get("user").unwrap_or(fallback.user),
        host: get("host").unwrap_or(fallback.host),
        ci: a
            .and_then(|a| a.get("ci"))
            .filter(|c| !c.is_null())
            .cloned(),
    }
}

/// The record of `kind` for `payload` and its blobs, kept within [`INLINE_BUDGET`]: a record
/// over it moves its biggest parts into blobs (the record names them by SHA-256; readers and
/// the index put them back). Both targets record through this, so that a record has the same
/// shape whichever wrote it.
fn fit_record(
    kind: &str,
    time: &str,
    actor: &Actor,
    mut payload: Value,
    blobs: Vec<(String, Vec<u8>)>,
) -> Result<(Record, Vec<Blob>), SinkError> {
    let build = |payload: &Value, blobs: &[Blob]| {
        Record::new(
            kind,
            time,
            actor.clone(),
            payload.clone(),
            blobs.iter().map(Blob::reference).collect(),
        )
    };
    let mut blobs: Vec<Blob> = blobs
        .into_iter()
        .map(|(name, data)| Blob { name, data })
        .collect();
    // The size is estimated from the envelope's canonical size plus the payload's compact
    // JSON, which is as long as its canonical form give or take a few bytes: canonicalising
    // a 100 kB plan record for each try cost milliseconds.
    let envelope = build(&Value::Object(Default::default()), &blobs)
        .and_then(|r| r.to_entry())
        .map(|e| e.len())
        .map_err(|e| SinkError::new(format!("cannot build the {kind} record: {e}")))?;
    let fits = |p: &Value| {
        serde_json::to_vec(p).is_ok_and(|b| envelope - "{}".len() + b.len() <= INLINE_BUDGET)
    };
    let moved = tftrail_index::deflate(&mut payload, &fits);
    blobs.extend(moved.into_iter().map(|(name, data)| Blob { name, data }));
    let record = build(&payload, &blobs)
        .map_err(|e| SinkError::new(format!("cannot build the {kind} record: {e}")))?;
    Ok((record, blobs))
}

impl Sink for LogSink {
    fn append(
        &mut self,
        kind: &str,
        payload: Value,
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<u64, SinkError> {
        let target = self.target()?;
        // The actor is what this machine says of itself; a server adds who authenticated.
        let actor = actor_of(&payload);
        let (record, blobs) = fit_record(kind, &context::now_utc(), &actor, payload, blobs)?;
        match target {
            Target::Store { log, key, .. } => {
                let entry = record
                    .to_entry()
                    .map_err(|e| SinkError::new(format!("cannot build the {kind} record: {e}")))?;
                let out = log
                    .append(key, vec![entry], &blobs, &mut |_, _| {})
                    .map_err(|e| {
                        SinkError::new(format!("cannot append to {}: {e}", log.store().location()))
                    })?;
                Ok(out.first)
            }
            Target::Server { server, .. } => {
                let failed = |e: CliError| {
                    let hint = e.hint.map(|h| format!(" ({h})")).unwrap_or_default();
                    SinkError::new(format!(
                        "cannot append to {}: {}{hint}",
                        server.url(),
                        e.message
                    ))
                };
                // The server refuses a record naming a blob it does not hold.
                for b in &blobs {
                    server.put_blob(&b.data).map_err(failed)?;
                }
                let mut request = remote::RequestBuilder::default();
                request.push(&remote::record_json(
                    kind,
                    &record.payload,
                    &record.blobs,
                    &actor,
                ));
                let (body, count) = request.take();
                Ok(server.append(body, count).map_err(failed)?.first)
            }
        }
    }

    fn find_plan(&mut self, plan_sha256: &str) -> Result<Option<RecordedPlan>, SinkError> {
        let (log, location) = self.target()?.log();
        let err = |e: CliError| SinkError::new(e.message);
        let cp: Checkpoint = log
            .head()
            .map_err(|e| SinkError::new(e.to_string()))?
            .checkpoint;
        let ix = reindex::open_index(log, location, &cp).map_err(err)?;
        let Some(i) = ix
            .find_plan(plan_sha256)
            .map_err(|e| SinkError::new(e.to_string()))?
        else {
            return Ok(None);
        };
        // Confirm from the authenticated record, not the cache.
        let mut r = reindex::read_record(log, &cp, i).map_err(err)?;
        let ok = r.kind.ends_with(".plan")
            && r.payload.pointer("/plan/sha256").and_then(Value::as_str) == Some(plan_sha256);
        if !ok {
            return Ok(None);
        }
        tftrail_index::inflate(log, &mut r.payload).map_err(|e| SinkError::new(e.to_string()))?;
        let plan_json = match r.blobs.iter().find(|b| b.name == "plan.json") {
            Some(b) => Some(
                log.blob(&b.sha256)
                    .map_err(|e| SinkError::new(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Some(RecordedPlan {
            index: i,
            plan: r.payload.get("plan").cloned().unwrap_or(Value::Null),
            command: r.payload.get("command").cloned().unwrap_or(Value::Null),
            plan_json,
        }))
    }
}

/// The log to record into. Through a server: its key (trusted on first use), and its
/// checkpoint read and checked, so that a server that cannot be reached or refuses the
/// credential stops the command before it runs; no signing key is read.
fn open_target(g: &Global) -> Result<Target, CliError> {
    if let Some(url) = g.server() {
        let server = remote::Server::connect(&url, g.key.as_deref())?;
        server.check_can_write()?;
        let log = server.open_log()?;
        return Ok(Target::Server { server, log });
    }
    let (path, source) = g.signing_key();
    let key = context::load_signing_key(&path)?;
    let location = g.location();
    let log = context::open_log_with(&location, key.verifier())?;
    let trusted = TrustedKey {
        key: key.verifier(),
        source,
    };
    log.head()
        .map_err(|e| context::key_mismatch(e, &trusted, &location, true))?;
    Ok(Target::Store {
        log,
        key: Box::new(key),
        location,
    })
}

/// Runs the command; tftrail's own failures exit with 121–123 or 127, never with a code
/// Terraform uses.
pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    run_recording(a, g).map_err(CliError::in_run)
}

fn run_recording(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("run", false, false, true)?;
    let (program, args) = a.command.split_first().expect("clap requires a command");
    let inv = Invocation::parse(program, args).map_err(|e| {
        let hint = e.hint();
        let mut c = CliError::usage(e.to_string());
        c.hint = hint;
        c
    })?;
    let recorded = inv.operation().is_recorded() || a.record_read_only;
    let target = if recorded {
        match open_target(g) {
            Ok(t) => Ok(t),
            Err(e) if a.fail_open => {
                eprintln!(
                    "warning: the audit log cannot be used ({}); running anyway because of --fail-open, UNRECORDED",
                    e.message
                );
                Err(e.message)
            }
            Err(e) => {
                let what = inv.subcommand().join(" ");
                return Err(CliError {
                    code: e.code,
                    message: format!(
                        "the audit log cannot be used, so `{} {what}` was NOT run: {}",
                        inv.tool().name(),
                        e.message
                    ),
                    hint: Some(match e.hint {
                        Some(h) => format!("{h}; or pass --fail-open to run unrecorded"),
                        None => "fix the log, or pass --fail-open to run unrecorded".into(),
                    }),
                });
            }
        }
    } else {
        Err("not recorded".to_string())
    };
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("cannot read the current directory: {e}")))?;
    let mut opts = RecordOptions::new(cwd);
    opts.fail_open = a.fail_open;
    opts.record_read_only = a.record_read_only;
    let mut sink = LogSink { target };
    match run_recorded(&inv, &opts, &mut sink) {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            if !report.records.is_empty() {
                let list: Vec<String> = report.records.iter().map(u64::to_string).collect();
                eprintln!("tftrail: recorded {}", list.join(", "));
            }
            Ok(report.exit_code)
        }
        Err(e) => {
            let hint = e.hint();
            let code = e.tool_exit_code();
            let code = match (&e, code) {
                (_, Some(c)) => {
                    eprintln!("error: {e}");
                    if let Some(h) = &hint {
                        eprintln!("hint: {h}");
                    }
                    return Ok(c);
                }
                (tftrail_terraform::Error::IntentNotStored { .. }, _) => EXIT_FAILURE,
                (
                    tftrail_terraform::Error::NotTerraform { .. }
                    | tftrail_terraform::Error::EmptyCommand,
                    _,
                ) => crate::error::EXIT_USAGE,
                (tftrail_terraform::Error::ToolNotFound { .. }, _) => EXIT_RUN_NOT_FOUND,
                _ => EXIT_FAILURE,
            };
            Err(CliError {
                code,
                message: e.to_string(),
                hint,
            })
        }
    }
}
