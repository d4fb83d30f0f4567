//! `tftrail append`

use std::io::Read;

use tftrail_core::record::{validate_kind, EntryTemplate, Record};

use super::{KeyArg, StoreArg};
use crate::context;
use crate::error::CliError;

/// Append a record whose payload is the JSON object on stdin; print its index.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    key: KeyArg,
    /// Record kind (lower-case letters, digits, '.', '_', '-')
    #[arg(long, default_value = "event")]
    kind: String,
    /// Read JSON Lines (one object per line) and append them all under one checkpoint;
    /// print how many and the new tree size
    #[arg(long)]
    batch: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    validate_kind(&a.kind).map_err(|e| CliError::usage(e.to_string()))?;
    let key = context::load_signing_key(&a.key.path())?;
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
        // Lines already in canonical form (what programs usually write) become entries as
        // they are; others are parsed and encoded.
        let template = EntryTemplate::new(&a.kind, &time, actor.clone(), vec![])
            .map_err(|e| CliError::usage(e.to_string()))?;
        let mut out = Vec::new();
        for (i, line) in input.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(entry) = template.canonical_entry(line) {
                out.push(entry);
                continue;
            }
            let line = std::str::from_utf8(line).map_err(|_| {
                CliError::usage(format!(
                    "line {}: stream did not contain valid UTF-8",
                    i + 1
                ))
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)
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
            CliError::usage(format!("stdin is not valid JSON: {e}"))
                .hint("use --batch for JSON Lines")
        })?;
        vec![make(v, "stdin")?]
    };
    let log = context::open_log(&a.store.location(), key.verifier())?;
    let show = context::progress_allowed(a.json) && entries.len() >= 100_000;
    let mut progress = |done: u64, total: u64| {
        if show {
            eprint!("\rappending: {done}/{total} records");
            if done == total {
                eprintln!();
            }
        }
    };
    let out = log.append(&key, entries, &[], &mut progress)?;
    if a.json {
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
