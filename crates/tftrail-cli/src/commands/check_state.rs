//! `tftrail check-state`

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tftrail_terraform::{Context, Env, StateSnapshot};

use super::{reindex, Global};
use crate::context;
use crate::error::CliError;

/// Exit code: the state moved without a record.
pub const EXIT_DRIFT: i32 = 4;

/// Compare the current Terraform state with the last state tftrail recorded for the same
/// directory, workspace and backend, to find changes made outside tftrail.
///
/// Reports: a state that appeared or vanished, a serial or hash that moved without a record,
/// a replaced lineage, resource instances added or removed (addresses). The log keeps
/// fingerprints, not state, so for instances present on both sides only "something changed"
/// can be said.
///
/// The local state file is read directly; other backends through `terraform state pull`
/// (the program after `--`, default `terraform`).
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

fn local_state_path(dir: &Path, env: &Env, workspace: &str) -> PathBuf {
    let data = dir.join(env.get("TF_DATA_DIR").unwrap_or(".terraform"));
    let cfg: Value = std::fs::read(data.join("terraform.tfstate"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let cfg = cfg
        .pointer("/backend/config")
        .cloned()
        .unwrap_or(Value::Null);
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
    let current = current_state(&a, &dir, &ctx, &env)?;

    let location = g.location();
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
                if rs("resources").as_u64() == Some(addrs.len() as u64) {
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
        for x in &added {
            println!("  + {x}  (not created by a recorded run)");
        }
        for x in &removed {
            println!("  - {x}  (not removed by a recorded run)");
        }
    }
    Ok(if drift { EXIT_DRIFT } else { 0 })
}
