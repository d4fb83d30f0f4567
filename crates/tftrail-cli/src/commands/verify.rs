//! `tftrail verify`

use std::time::Instant;

use tftrail_core::checkpoint::CheckpointError;
use tftrail_log::VerifyOptions;

use super::Global;
use crate::context;
use crate::error::{CliError, EXIT_INTEGRITY};

/// Verify the whole log with nothing but the verifier key and the stored objects; with
/// --witness-policy or --witness, also that the checkpoint carries the witnesses' quorum of
/// cosignatures.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    witnesses: super::quorum::WitnessArgs,
}

/// The error of a verification that could not start (or stopped at the checkpoint), printed
/// as a JSON report too with --json.
fn failed(e: CliError, at_checkpoint: bool, json: bool) -> CliError {
    // A checkpoint that does not verify is an integrity failure.
    let e = if e.code == crate::error::EXIT_USAGE && at_checkpoint {
        CliError {
            code: EXIT_INTEGRITY,
            ..e
        }
    } else {
        e
    };
    if json {
        let mut v = serde_json::json!({"ok": false, "error": e.message});
        if e.code == EXIT_INTEGRITY {
            // The same shape as a report's problems, naming the object at fault.
            let object = if at_checkpoint { "checkpoint" } else { "" };
            v["problems"] = serde_json::json!([{"object": object, "message": e.message}]);
        }
        println!("{v}");
    }
    e
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    let location = g.location();
    let trusted = g.trusted_key(&location)?;
    let key = trusted.key.clone();
    let policy = a.witnesses.policy(&key)?;
    // On S3, object versions tell what a plain read cannot: objects hidden by delete markers
    // or shadowed by newer versions, and whether intact versions are retained.
    let damage = location
        .starts_with("s3://")
        .then(|| super::recover::s3_damage(&location, &key));
    let log = match tftrail_store::open(&location)
        .map_err(tftrail_log::LogError::from)
        .and_then(|store| tftrail_log::Log::open(store, key.clone()))
    {
        Ok(l) => l,
        Err(e) => {
            let at_checkpoint = matches!(e, tftrail_log::LogError::CheckpointMissing { .. });
            let e = crate::remote::log_error(e);
            if let Some(d) = damage.as_ref().filter(|d| !d.problems.is_empty()) {
                return report_damage_only(d, e, g.json);
            }
            return Err(failed(e, at_checkpoint, g.json));
        }
    };
    let previous = context::last_verified(&key)?;
    let show = context::progress_allowed(g.json);
    let started = Instant::now();
    let mut last_draw = Instant::now();
    let mut progress = |done: u64, total: u64| {
        if show && (last_draw.elapsed().as_millis() > 100 || done == total) {
            last_draw = Instant::now();
            eprint!("\rverifying: {done}/{total} entries");
            if done == total {
                eprintln!();
            }
        }
    };
    let rep = match log.verify(
        &VerifyOptions {
            previous: previous.clone(),
        },
        &mut progress,
    ) {
        Ok(r) => r,
        Err(e) => {
            // Another log's default key (exit 2, see key_mismatch) is not damage.
            let other_default = matches!(
                e,
                tftrail_log::LogError::Checkpoint(CheckpointError::NotSignedByKey { .. })
            ) && !trusted.source.is_explicit();
            let at_checkpoint = !other_default
                && matches!(
                    e,
                    tftrail_log::LogError::Checkpoint(_)
                        | tftrail_log::LogError::CheckpointMissing { .. }
                );
            let e = context::key_mismatch(e, &trusted, &location, false);
            if let Some(d) = damage.as_ref().filter(|d| !d.problems.is_empty()) {
                return report_damage_only(d, e, g.json);
            }
            return Err(failed(e, at_checkpoint, g.json));
        }
    };
    let mut rep = rep;
    let hidden = damage.as_ref().is_some_and(|d| !d.problems.is_empty());
    if let Some(d) = damage {
        rep.problems.extend(d.problems);
        rep.notes.extend(d.notes);
    }
    // The quorum of the checkpoint verified: who cosigned, who is missing.
    let quorum = match (&policy, &rep.head) {
        (Some(p), Some(head)) => {
            let r = p.check(&head.note);
            if !r.satisfied {
                rep.problems.push(tftrail_log::Problem {
                    object: "checkpoint".into(),
                    index: None,
                    message: super::quorum::describe(p, &r),
                });
            }
            Some((super::quorum::describe(p, &r), super::quorum::json(&r)))
        }
        _ => None,
    };
    let secs = started.elapsed().as_secs_f64();
    if rep.ok() {
        if let Some(head) = &rep.head {
            context::remember_verified(&key, &head.note)?;
        }
    }
    if g.json {
        let mut v = serde_json::to_value(&rep).map_err(|e| CliError::failure(e.to_string()))?;
        v["ok"] = rep.ok().into();
        v["previous_size"] = previous.as_ref().map(|p| p.size).into();
        v["seconds"] = secs.into();
        if let Some((_, q)) = &quorum {
            v["witnesses"] = q.clone();
        }
        println!("{v}");
    } else if rep.ok() {
        println!(
            "OK: log {} verified: {} records, root {}, {} blobs",
            rep.origin, rep.size, rep.root, rep.blobs
        );
        if let Some(p) = &previous {
            println!(
                "consistent with the checkpoint of size {} verified before",
                p.size
            );
        }
        if let Some((line, _)) = &quorum {
            println!("{line}");
        }
        for n in &rep.notes {
            println!("note: {n}");
        }
    } else {
        for p in &rep.problems {
            eprintln!("error: {p}");
        }
        for n in &rep.notes {
            eprintln!("note: {n}");
        }
        eprintln!(
            "hint: the log at {} is damaged or was tampered with; keep a copy for investigation",
            log.store().location()
        );
        if hidden {
            eprintln!("hint: `tftrail recover --to DIR` copies the log from its retained versions");
        }
    }
    Ok(if rep.ok() { 0 } else { EXIT_INTEGRITY })
}

/// The log could not be opened or its checkpoint read, and object versions explain why.
fn report_damage_only(
    d: &super::recover::Damage,
    e: CliError,
    json: bool,
) -> Result<i32, CliError> {
    if json {
        let v = serde_json::json!({
            "ok": false,
            "error": e.message,
            "problems": d.problems,
            "notes": d.notes,
        });
        println!("{v}");
    } else {
        eprintln!("error: {}", e.message);
        for p in &d.problems {
            eprintln!("error: {p}");
        }
        for n in &d.notes {
            eprintln!("note: {n}");
        }
        eprintln!("hint: `tftrail recover --to DIR` copies the log from its retained versions");
    }
    Ok(EXIT_INTEGRITY)
}
