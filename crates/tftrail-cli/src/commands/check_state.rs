//! `tftrail check-state`

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tftrail_terraform::values::diff_state_values;
use tftrail_terraform::{Context, Env, InstanceValues, OutputValue, Scrubber, StateSnapshot};

use super::{reindex, Global};
use crate::error::CliError;
use crate::remote::{get_state, StateAnswer};
use crate::{context, render};

/// Exit code: the state moved without a record.
pub const EXIT_DRIFT: i32 = 4;

/// Compare the current Terraform state with the last state tftrail recorded for the same
/// directory, workspace and backend, to find changes made outside tftrail.
///
/// Reports: a state that appeared or vanished, a serial or hash that moved without a record,
/// a replaced lineage, resource instances added or removed, and for each changed instance
/// the attributes that changed with both values, redacted (`~ ADDR: path = "a" -> "b"`, or
/// `(a sensitive value changed)`), compared against the redacted state values the last run
/// recorded (`state-values.json`). Runs recorded before those existed allow addresses only.
/// A state that differs only in formatting is in sync.
///
/// The local state file is read directly; other backends through `terraform state pull`
/// (the program after `--`, default `terraform`).
///
/// When the workspace's state lives on a tftrail server (backend `http`, address
/// `https://HOST/state/NAME`) and the log holds that server's writes of it, every write is
/// recorded: the recorded state is the last write or delete of NAME, and the state is read
/// from the server (`GET` with the backend's credentials: the backend's `password`, else
/// `TF_HTTP_PASSWORD`, else `TFTRAIL_TOKEN`). A state that differs from its record can then
/// only mean that the server's state store was altered, which the server detects by hash.
///
/// Exit codes: 0 in sync; 4 drift found (or a state with no recorded run); 1 the log failed
/// an integrity check; 2 usage; 3 operational failure.
#[derive(clap::Args)]
pub struct Args {
    /// The Terraform working directory [default: the current directory]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The program used for `state pull` on non-local backends, with extra options
    #[arg(last = true, value_name = "TERRAFORM")]
    command: Vec<String>,
}

/// The backend's `config` from `<data dir>/terraform.tfstate` (may hold credentials: never
/// printed).
fn backend_config(dir: &Path, env: &Env) -> Value {
    let data = dir.join(env.get("TF_DATA_DIR").unwrap_or(".terraform"));
    let cfg: Value = std::fs::read(data.join("terraform.tfstate"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    cfg.pointer("/backend/config")
        .cloned()
        .unwrap_or(Value::Null)
}

/// The password Terraform's `http` backend sends (a tftrail token or OIDC ID token): the
/// backend's `password`, else `TF_HTTP_PASSWORD` (Terraform's order: the environment is the
/// default of the setting), else `TFTRAIL_TOKEN`. The user name is not needed: the server
/// ignores it.
fn state_credential(config: &Value, env: &Env) -> Option<String> {
    config
        .get("password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .or_else(|| env.get("TF_HTTP_PASSWORD"))
        .or_else(|| env.get(tftrail_store::http::TOKEN_ENV))
        .map(String::from)
}

fn local_state_path(dir: &Path, env: &Env, workspace: &str) -> PathBuf {
    let cfg = backend_config(dir, env);
    if workspace == "default" {
        dir.join(
            cfg.get("path")
                .and_then(Value::as_str)
                .unwrap_or("terraform.tfstate"),
        )
    } else {
        dir.join(
            cfg.get("workspace_dir")
                .and_then(Value::as_str)
                .unwrap_or("terraform.tfstate.d"),
        )
        .join(workspace)
        .join("terraform.tfstate")
    }
}

fn current_state(
    a: &Args,
    dir: &Path,
    ctx: &Context,
    env: &Env,
) -> Result<Option<StateSnapshot>, CliError> {
    let bytes = if ctx.backend == "local" {
        let p = local_state_path(dir, env, &ctx.workspace);
        match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CliError::failure(format!(
                    "cannot read {}: {e}",
                    p.display()
                )))
            }
        }
    } else {
        let (prog, extra) = match a.command.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => ("terraform".to_string(), vec![]),
        };
        let out = std::process::Command::new(&prog)
            .args(&extra)
            .args(["state", "pull"])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| CliError::usage(format!("cannot run `{prog} state pull`: {e}")))?;
        if !out.status.success() {
            return Err(CliError::failure(format!(
                "`{prog} state pull` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        out.stdout
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    StateSnapshot::from_state_json(&bytes)
        .map(Some)
        .map_err(|e| CliError::usage(e.to_string()))
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("cannot read the current directory: {e}")))?;
    let dir = cwd.join(a.dir.clone().unwrap_or_default());
    let env = Env::inherit();
    let ctx = Context::capture(&dir, &env);
    let location = g.location();
    if let Some(name) = server_state_name(&ctx) {
        let log = context::open_log(&location, &g.trusted_key(&location)?)?;
        let cp = log.head()?.checkpoint;
        let ix = reindex::open_index(&log, &location, &cp)?;
        let events = ix.state_events(&name).map_err(reindex::index_err)?;
        if events.iter().any(|e| is_version(&e.event)) {
            drop(ix);
            return server_backed(g, &dir, &ctx, &env, &name, &log, &location);
        }
    }
    let current = current_state(&a, &dir, &ctx, &env)?;

    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
    let cp = log.head()?.checkpoint;
    let ix = reindex::open_index(&log, &location, &cp)?;
    let outcomes = ix
        .outcomes_in(&ctx.dir, &ctx.workspace, &ctx.backend)
        .map_err(reindex::index_err)?;
    let mut recs = reindex::read_records(&log, &cp, &outcomes)?;
    for (_, r) in recs.iter_mut() {
        tftrail_index::inflate(&log, &mut r.payload)?;
    }
    // The last outcome whose state after is known, and the addresses the records account for.
    let mut last: Option<(u64, Value)> = None;
    let mut last_values: Option<String> = None;
    let mut addrs: BTreeSet<String> = BTreeSet::new();
    let list = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    for (i, r) in &recs {
        let after = r.payload.get("state_after").cloned().unwrap_or(Value::Null);
        if after.get("present").and_then(Value::as_bool).is_none() {
            continue; // unknown (unreadable) state after this run
        }
        if let Some(d) = r.payload.get("state_diff") {
            for x in list(d, "added") {
                addrs.insert(x);
            }
            for x in list(d, "removed") {
                addrs.remove(&x);
            }
        }
        last = Some((*i, after));
        // The redacted values of the state this run left, when its record keeps them.
        last_values = r
            .payload
            .pointer("/state_values/sha256")
            .and_then(Value::as_str)
            .filter(|sha| r.blobs.iter().any(|b| b.sha256 == *sha))
            .map(String::from);
    }
    let mut findings: Vec<String> = Vec::new();
    let cur_fp = current.as_ref().map(|s| s.fingerprint());
    let report_base = json!({
        "dir": ctx.dir, "workspace": ctx.workspace, "backend": ctx.backend,
    });
    let (record, recorded) = match &last {
        Some((i, v)) => (Some(*i), v.clone()),
        None => (None, json!({"present": false})),
    };
    let rec_present = recorded.get("present").and_then(Value::as_bool) == Some(true);
    let mut reformatted = false;
    let mut added = vec![];
    let mut removed = vec![];
    let mut values: Option<(Vec<InstanceValues>, Vec<OutputValue>)> = None;
    match (&current, rec_present) {
        (None, false) => {}
        (None, true) => findings.push("the recorded state is gone: no state now".into()),
        (Some(s), false) => {
            findings.push(if record.is_none() {
                "a state exists but no run in this directory/workspace was ever recorded".into()
            } else {
                "a state appeared after the last recorded run".into()
            });
            added = s.addresses().map(String::from).collect();
        }
        (Some(s), true) => {
            let rs = |k: &str| recorded.get(k).cloned().unwrap_or(Value::Null);
            // Same bytes, or the same JSON written differently (records before content_sha256
            // existed can only compare bytes).
            let same = rs("sha256").as_str() == Some(s.sha256())
                || rs("content_sha256").as_str() == Some(s.content_sha256());
            if same && rs("sha256").as_str() != Some(s.sha256()) {
                reformatted = true;
            }
            if !same {
                if rs("lineage").as_str() != s.lineage() {
                    findings.push(format!(
                        "lineage replaced: recorded {}, now {}",
                        rs("lineage").as_str().unwrap_or("-"),
                        s.lineage().unwrap_or("-")
                    ));
                }
                let (rser, cser) = (rs("serial").as_u64(), s.serial());
                if rser != cser {
                    findings.push(format!(
                        "serial moved without a record: recorded {}, now {}",
                        rser.map_or("-".into(), |n| n.to_string()),
                        cser.map_or("-".into(), |n| n.to_string())
                    ));
                }
                findings.push(format!(
                    "state content changed: recorded sha256 {}, now {}",
                    rs("sha256").as_str().unwrap_or("-"),
                    s.sha256()
                ));
                let now: BTreeSet<String> = s.addresses().map(String::from).collect();
                if let Some(sha) = &last_values {
                    let recorded_values: Value =
                        serde_json::from_slice(&log.blob(sha)?).map_err(|e| {
                            CliError::integrity(format!(
                                "blob {} of record {} is not JSON: {e}",
                                tftrail_terraform::values::STATE_VALUES_BLOB,
                                record.unwrap_or_default()
                            ))
                        })?;
                    let (inst, outs) = diff_state_values(
                        &recorded_values,
                        &s.values(&Scrubber::new(Vec::<String>::new())),
                    );
                    added = inst
                        .iter()
                        .filter(|v| v.change == "added")
                        .map(|v| v.address.clone())
                        .collect();
                    removed = inst
                        .iter()
                        .filter(|v| v.change == "removed")
                        .map(|v| v.address.clone())
                        .collect();
                    values = Some((inst, outs));
                } else if rs("resources").as_u64() == Some(addrs.len() as u64) {
                    added = now.difference(&addrs).cloned().collect();
                    removed = addrs.difference(&now).cloned().collect();
                } else {
                    findings.push(
                        "the recorded runs do not account for every recorded resource (recording started late); added/removed addresses cannot be listed".into(),
                    );
                }
            }
        }
    }
    let drift = !findings.is_empty();
    if g.json {
        let mut v = report_base;
        v["in_sync"] = json!(!drift);
        v["recorded"] = json!(record.is_some());
        v["reformatted"] = json!(reformatted);
        v["record"] = json!(record);
        v["recorded_state"] = recorded;
        v["current_state"] = cur_fp.unwrap_or(json!({"present": false}));
        v["findings"] = json!(findings);
        v["added"] = json!(added);
        v["removed"] = json!(removed);
        match &values {
            Some((inst, outs)) => {
                v["values"] = json!(inst);
                v["outputs"] = json!(outs);
            }
            None if drift && current.is_some() && rec_present => {
                v["values_note"] = json!(VALUES_NOTE);
            }
            None => {}
        }
        println!("{v}");
    } else if !drift {
        match record {
            None => println!(
                "nothing recorded: {} (workspace {}) has no state, and no run there was ever recorded",
                ctx.dir, ctx.workspace
            ),
            Some(i) if current.is_none() => println!(
                "in sync: {} (workspace {}) has no state, as record {i} left it",
                ctx.dir, ctx.workspace
            ),
            Some(i) if reformatted => println!(
                "in sync: the state of {} (workspace {}) has the content record {i} left (only its formatting differs)",
                ctx.dir, ctx.workspace
            ),
            Some(i) => println!(
                "in sync: the state of {} (workspace {}) matches record {i}",
                ctx.dir, ctx.workspace
            ),
        }
    } else {
        println!(
            "DRIFT: the state of {} (workspace {}, backend {}) changed outside tftrail",
            ctx.dir, ctx.workspace, ctx.backend
        );
        if let Some(i) = record {
            println!("last recorded state: record {i}");
        }
        for f in &findings {
            println!("  {f}");
        }
        match &values {
            Some((inst, outs)) => print_values(inst, outs),
            None => {
                for x in &added {
                    println!("  + {x}  (not created by a recorded run)");
                }
                for x in &removed {
                    println!("  - {x}  (not removed by a recorded run)");
                }
                if current.is_some() && rec_present {
                    println!("  ({VALUES_NOTE})");
                }
            }
        }
    }
    Ok(if drift { EXIT_DRIFT } else { 0 })
}

/// Said when the last recorded run keeps no state values (recorded before they existed).
const VALUES_NOTE: &str = "the last recorded run keeps no state values (recorded by an older tftrail): only fingerprints and addresses can be compared";

/// What changed outside tftrail, with values (redacted): `~ ADDR: path = a -> b`, `+ ADDR`
/// and `- ADDR` with their attributes beneath, then outputs.
fn print_values(inst: &[InstanceValues], outs: &[OutputValue]) {
    for v in inst {
        let attrs = serde_json::to_value(&v.attributes).unwrap_or_default();
        match v.change.as_str() {
            "added" => {
                println!("  + {}  (not created by a recorded run)", v.address);
                for l in render::attribute_lines(&attrs, "added", &[], "      ") {
                    println!("{l}");
                }
            }
            "removed" => {
                println!("  - {}  (not removed by a recorded run)", v.address);
                for l in render::attribute_lines(&attrs, "removed", &[], "      ") {
                    println!("{l}");
                }
            }
            _ => {
                for l in render::attribute_lines(&attrs, "changed", &[], "") {
                    // `~ path = a -> b` becomes `~ ADDR: path = a -> b`.
                    let (sign, rest) = l.split_at(1);
                    println!("  {sign} {}:{rest}", v.address);
                }
            }
        }
    }
    for o in outs {
        let (b, a) = (render::value_text(&o.before), render::value_text(&o.after));
        match (o.before.is_null(), o.after.is_null()) {
            (true, _) => println!("  + output {} = {a}", o.name),
            (_, true) => println!("  - output {} = {b}", o.name),
            _ => println!("  ~ output {} = {b} -> {a}", o.name),
        }
    }
}

/// The name of the state on a tftrail server that the workspace's `http` backend uses.
fn server_state_name(ctx: &Context) -> Option<String> {
    if ctx.backend != "http" {
        return None;
    }
    tftrail_index::state_name_from_address(ctx.state_address.as_deref()?)
}

/// Whether a state event records a version of the state (a write or a delete).
fn is_version(event: &str) -> bool {
    matches!(event, "write" | "delete")
}

/// The last recorded version of a server-held state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecordedVersion {
    /// Log index of the `terraform.state.write` or `.delete` record.
    index: u64,
    /// SHA-256 of the bytes written; `None` after a delete.
    sha256: Option<String>,
}

/// What is wrong between the last recorded version and what the server serves now (nothing:
/// in sync). `current` is the SHA-256 of the served bytes.
fn server_findings(recorded: &RecordedVersion, current: &StateAnswer) -> Vec<String> {
    let i = recorded.index;
    match (current, &recorded.sha256) {
        (StateAnswer::Altered(said), _) => vec![format!("the state store was altered: {said}")],
        (StateAnswer::NoState, None) => vec![],
        (StateAnswer::NoState, Some(sha)) => vec![format!(
            "the recorded state is gone: the server has no state, record {i} wrote sha256 {sha}"
        )],
        (StateAnswer::State(bytes), None) => vec![format!(
            "a state appeared after record {i} deleted it: the server serves sha256 {}",
            sha256_hex(bytes)
        )],
        (StateAnswer::State(bytes), Some(sha)) => {
            let now = sha256_hex(bytes);
            if &now == sha {
                vec![]
            } else {
                vec![format!(
                    "state content changed without a record: record {i} wrote sha256 {sha}, the server serves {now}"
                )]
            }
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `check-state` for a workspace whose state a tftrail server holds (see [`Args`]).
fn server_backed(
    g: &Global,
    dir: &Path,
    ctx: &Context,
    env: &Env,
    name: &str,
    log: &tftrail_log::Log,
    location: &str,
) -> Result<i32, CliError> {
    let address = ctx.state_address.as_deref().unwrap_or_default();
    let answer = get_state(address, state_credential(&backend_config(dir, env), env))?;
    // The log read after the state, so a write the server answered before is in it.
    let cp = log.head()?.checkpoint;
    let ix = reindex::open_index(log, location, &cp)?;
    let versions: Vec<u64> = ix
        .state_events(name)
        .map_err(reindex::index_err)?
        .into_iter()
        .filter(|e| is_version(&e.event))
        .map(|e| e.index)
        .collect();
    let mut recs = reindex::read_records(log, &cp, &versions)?;
    for (_, r) in recs.iter_mut() {
        tftrail_index::inflate(log, &mut r.payload)?;
    }
    // The addresses the recorded writes leave, and the last version's fingerprint.
    let mut addrs: BTreeSet<String> = BTreeSet::new();
    let mut last: Option<(RecordedVersion, Value)> = None;
    for (i, r) in &recs {
        let list = |k: &str| -> Vec<String> {
            r.payload
                .pointer(&format!("/state_diff/{k}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        };
        for x in list("added") {
            addrs.insert(x);
        }
        for x in list("removed") {
            addrs.remove(&x);
        }
        let write = r.kind == "terraform.state.write";
        let after = if write {
            r.payload.get("after").cloned().unwrap_or(Value::Null)
        } else {
            json!({"present": false})
        };
        let sha256 = write.then(|| {
            after
                .get("sha256")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        });
        last = Some((RecordedVersion { index: *i, sha256 }, after));
    }
    let (recorded, recorded_state) = last.ok_or_else(|| {
        CliError::integrity(format!(
            "the index lists writes of state {name}, but the log holds none of them"
        ))
        .hint("run `tftrail reindex`")
    })?;
    let mut findings = server_findings(&recorded, &answer);
    let current = match &answer {
        StateAnswer::State(b) => StateSnapshot::from_state_json(b).ok(),
        _ => None,
    };
    let current_state = match (&answer, &current) {
        (_, Some(s)) => s.fingerprint(),
        (StateAnswer::State(b), None) => {
            json!({"present": true, "sha256": sha256_hex(b), "size": b.len(), "error": "not a state (v4)"})
        }
        (StateAnswer::NoState, _) => json!({"present": false}),
        (StateAnswer::Altered(_), _) => json!({"present": null}),
    };
    let (mut added, mut removed) = (vec![], vec![]);
    if !findings.is_empty() {
        let rs = |k: &str| recorded_state.get(k).cloned().unwrap_or(Value::Null);
        if let Some(s) = &current {
            if recorded.sha256.is_some() && rs("lineage").as_str() != s.lineage() {
                findings.push(format!(
                    "lineage replaced: recorded {}, now {}",
                    rs("lineage").as_str().unwrap_or("-"),
                    s.lineage().unwrap_or("-")
                ));
            }
            let (rser, cser) = (rs("serial").as_u64(), s.serial());
            if recorded.sha256.is_some() && rser != cser {
                findings.push(format!(
                    "serial moved without a record: recorded {}, now {}",
                    rser.map_or("-".into(), |n| n.to_string()),
                    cser.map_or("-".into(), |n| n.to_string())
                ));
            }
            let now: BTreeSet<String> = s.addresses().map(String::from).collect();
            let complete = recorded.sha256.is_none() && addrs.is_empty()
                || rs("resources").as_u64() == Some(addrs.len() as u64);
            if complete {
                added = now.difference(&addrs).cloned().collect();
                removed = addrs.difference(&now).cloned().collect();
            }
        }
    }
    let drift = !findings.is_empty();
    if g.json {
        println!(
            "{}",
            json!({
                "dir": ctx.dir, "workspace": ctx.workspace, "backend": ctx.backend,
                "server_backed": true, "state": name, "state_address": address,
                "in_sync": !drift, "recorded": true, "reformatted": false,
                "record": recorded.index, "recorded_state": recorded_state,
                "current_state": current_state, "findings": findings,
                "added": added, "removed": removed,
            })
        );
    } else if !drift {
        if recorded.sha256.is_some() {
            println!(
                "in sync: state {name} on the tftrail server matches record {} (every write is recorded)",
                recorded.index
            );
        } else {
            println!(
                "in sync: state {name} on the tftrail server has no state, as record {} (a delete) left it (every write is recorded)",
                recorded.index
            );
        }
    } else {
        println!("DRIFT: state {name} on the tftrail server does not match its record");
        println!("last recorded state: record {}", recorded.index);
        for f in &findings {
            println!("  {f}");
        }
        for x in &added {
            println!("  + {x}  (not created by a recorded write)");
        }
        for x in &removed {
            println!("  - {x}  (not removed by a recorded write)");
        }
    }
    Ok(if drift { EXIT_DRIFT } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_the_one_terraform_sends() {
        let env = Env::empty()
            .set("TF_HTTP_PASSWORD", "from-env")
            .set("TFTRAIL_TOKEN", "tftrail-token");
        let cfg = json!({"address": "https://h/state/x", "username": "tftrail", "password": "from-config"});
        assert_eq!(state_credential(&cfg, &env).as_deref(), Some("from-config"));
        for cfg in [
            json!({"password": ""}),
            json!({"password": null}),
            Value::Null,
        ] {
            assert_eq!(state_credential(&cfg, &env).as_deref(), Some("from-env"));
            let only_token = Env::empty().set("TFTRAIL_TOKEN", "tftrail-token");
            assert_eq!(
                state_credential(&cfg, &only_token).as_deref(),
                Some("tftrail-token")
            );
            assert_eq!(state_credential(&cfg, &Env::empty()), None);
        }
    }

    #[test]
    fn the_backend_config_is_read_from_the_data_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("data")).unwrap();
        std::fs::write(
            d.path().join("data/terraform.tfstate"),
            r#"{"backend":{"type":"http","config":{"address":"https://h/state/a","password":"pw"}}}"#,
        )
        .unwrap();
        let env = Env::empty().set("TF_DATA_DIR", "data");
        let cfg = backend_config(d.path(), &env);
        assert_eq!(state_credential(&cfg, &env).as_deref(), Some("pw"));
        assert_eq!(backend_config(d.path(), &Env::empty()), Value::Null);
    }

    #[test]
    fn server_state_names_only_for_the_http_backend() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".terraform")).unwrap();
        let write = |t: &str, addr: &str| {
            std::fs::write(
                d.path().join(".terraform/terraform.tfstate"),
                json!({"backend": {"type": t, "config": {"address": addr}}}).to_string(),
            )
            .unwrap();
            Context::capture(d.path(), &Env::empty())
        };
        let ctx = write("http", "https://h/state/team/prod");
        assert_eq!(server_state_name(&ctx).as_deref(), Some("team/prod"));
        assert_eq!(server_state_name(&write("http", "https://h/api/x")), None);
        assert_eq!(server_state_name(&write("s3", "https://h/state/x")), None);
    }

    #[test]
    fn findings_against_the_served_state() {
        let bytes = br#"{"version":4,"serial":3,"lineage":"l"}"#.to_vec();
        let sha = sha256_hex(&bytes);
        let wrote = RecordedVersion {
            index: 7,
            sha256: Some(sha.clone()),
        };
        let deleted = RecordedVersion {
            index: 9,
            sha256: None,
        };
        assert!(server_findings(&wrote, &StateAnswer::State(bytes.clone())).is_empty());
        assert!(server_findings(&deleted, &StateAnswer::NoState).is_empty());
        let other = b"{}".to_vec();
        let f = server_findings(&wrote, &StateAnswer::State(other.clone()));
        assert_eq!(f.len(), 1);
        assert!(
            f[0].contains(&sha) && f[0].contains(&sha256_hex(&other)) && f[0].contains("record 7"),
            "{f:?}"
        );
        let f = server_findings(&wrote, &StateAnswer::NoState);
        assert!(f[0].contains("gone") && f[0].contains(&sha), "{f:?}");
        let f = server_findings(&deleted, &StateAnswer::State(bytes));
        assert!(f[0].contains("appeared after record 9"), "{f:?}");
        let said = "state team/prod record 7: sha256 aa recorded, bb stored";
        for r in [&wrote, &deleted] {
            let f = server_findings(r, &StateAnswer::Altered(said.into()));
            assert_eq!(f, [format!("the state store was altered: {said}")]);
        }
    }
}
