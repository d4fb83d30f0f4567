//! `tftrail append`

use std::io::{BufRead, Read};

use tftrail_core::record::{validate_kind, Record};

use super::{Global, TrustedKey};
use crate::context;
use crate::error::CliError;

/// Append a record whose payload is the JSON object on stdin; print its index.
#[derive(clap::Args)]
pub struct Args {
    /// Record kind (lower-case letters, digits, '.', '_', '-')
    #[arg(long, default_value = "event")]
    kind: String,
    /// Read JSON Lines (one object per line) and append them all under one checkpoint;
    /// print how many and the new tree size
    #[arg(long)]
    batch: bool,
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    validate_kind(&a.kind).map_err(|e| CliError::usage(e.to_string()))?;
    let (key_path, source) = g.signing_key();
    let key = context::load_signing_key(&key_path)?;
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut input)
        .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
    let time = context::now_utc();
    let actor = context::actor();
    let make = |payload: serde_json::Value, what: &str| -> Result<Vec<u8>, CliError> {
        Record::new(&a.kind, &time, actor.clone(), payload, vec![])
            .and_then(|r| r.to_entry())
            .map_err(|e| CliError::usage(format!("{what}: {e}")))
    };
    let entries: Vec<Vec<u8>> = if a.batch {
        let mut out = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let line = line.map_err(|e| CliError::usage(format!("line {}: {e}", i + 1)))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| CliError::usage(format!("line {}: invalid JSON: {e}", i + 1)))?;
            out.push(make(v, &format!("line {}", i + 1))?);
        }
        if out.is_empty() {
            return Err(CliError::usage("no JSON lines on stdin; nothing appended"));
        }
        out
    } else {
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(CliError::usage("no JSON on stdin; nothing appended")
                .hint("pipe one JSON object, e.g. echo '{\"msg\":\"hi\"}' | tftrail append"));
        }
        let v: serde_json::Value = serde_json::from_slice(&input).map_err(|e| {
            CliError::usage(format!("stdin is not valid JSON: {e}")).hint(not_json_hint(&input))
        })?;
        vec![make(v, "stdin")?]
    };
    let location = g.location();
    let log = context::open_log_with(&location, key.verifier())?;
    let show = context::progress_allowed(g.json) && entries.len() >= 100_000;
    let mut progress = |done: u64, total: u64| {
        if show {
            eprint!("\rappending: {done}/{total} records");
            if done == total {
                eprintln!();
            }
        }
    };
    let trusted = TrustedKey {
        key: key.verifier(),
        source,
    };
    let out = log
        .append(&key, entries, &[], &mut progress)
        .map_err(|e| context::key_mismatch(e, &trusted, &location, true))?;
    if g.json {
        println!(
            "{}",
            serde_json::json!({"first": out.first, "count": out.count, "size": out.size})
        );
    } else if a.batch {
        println!(
            "appended {} records (indexes {}..{}); tree size {}",
            out.count,
            out.first,
            out.first + out.count - 1,
            out.size
        );
    } else {
        println!("{}", out.first);
    }
    Ok(0)
}

/// The hint for stdin that is not one JSON value: JSON Lines want --batch; anything else
/// wants wrapping in an object.
fn not_json_hint(input: &[u8]) -> String {
    let lines: Vec<&[u8]> = input
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    let all_json = lines
        .iter()
        .all(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok());
    if lines.len() > 1 && all_json {
        "stdin holds one JSON value per line: pass --batch to append each line as a record".into()
    } else {
        "the record's payload must be a JSON object, e.g. echo '{\"msg\":\"deploy approved\"}' | tftrail append --kind change.approval".into()
    }
}
