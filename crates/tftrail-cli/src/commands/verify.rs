//! `tftrail verify`

use std::time::Instant;

use tftrail_log::VerifyOptions;

use super::StoreArg;
use crate::context;
use crate::error::{CliError, EXIT_INTEGRITY};

/// Verify the whole log with nothing but the verifier key and the stored objects.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArg,
    /// Verifier key (name+id+base64, or a file holding it) [default: derived from the signing key]
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let key = context::verifier_key(a.key.as_deref())?;
    let log = context::open_log(&a.store.location(), key.clone())?;
    let previous = context::last_verified(&key)?;
    let show = context::progress_allowed(a.json);
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
            let e: CliError = e.into();
            // A checkpoint that does not verify is an integrity failure.
            let e = if e.code == crate::error::EXIT_USAGE && e.message.starts_with("checkpoint:") {
                CliError::integrity(e.message)
            } else {
                e
            };
            if a.json {
                let mut v = serde_json::json!({"ok": false, "error": e.message});
                if e.code == EXIT_INTEGRITY {
                    // The same shape as a report's problems, naming the object at fault.
                    let object = if e.message.starts_with("checkpoint:") {
                        "checkpoint"
                    } else {
                        ""
                    };
                    v["problems"] = serde_json::json!([{"object": object, "message": e.message}]);
                }
                println!("{v}");
            }
            return Err(e);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if rep.ok() {
        if let Some(head) = &rep.head {
            context::remember_verified(&key, &head.note)?;
        }
    }
    if a.json {
        let mut v = serde_json::to_value(&rep).map_err(|e| CliError::failure(e.to_string()))?;
        v["ok"] = rep.ok().into();
        v["previous_size"] = previous.as_ref().map(|p| p.size).into();
        v["seconds"] = secs.into();
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
    }
    Ok(if rep.ok() { 0 } else { EXIT_INTEGRITY })
}
