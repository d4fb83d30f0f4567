//! `tftrail append`

use std::io::Read;

use tftrail_core::record::{validate_kind, EntryTemplate, Record};

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
        // Lines already in canonical form (what programs usually write) become entries as
        // they are; others are parsed and encoded.
        let template = EntryTemplate::new(&a.kind, &time, actor.clone(), vec![])
            .map_err(|e| CliError::usage(e.to_string()))?;
        // Large input is parsed on two threads, each half from a line boundary; an error in
        // the first half is reported before one in the second.
        let mid = if input.len() >= 1 << 20 {
            input[input.len() / 2..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(input.len(), |p| input.len() / 2 + p + 1)
        } else {
            input.len()
        };
        let (head, tail) = input.split_at(mid);
        let parse =
            |text: &[u8], first_line: usize| parse_lines(text, first_line, &template, &make);
        let (head, tail) = if tail.is_empty() {
            (parse(head, 1), Ok(Vec::new()))
        } else {
            let tail_line = 1 + head.iter().filter(|&&b| b == b'\n').count();
            std::thread::scope(|s| {
                let t = s.spawn(|| parse(tail, tail_line));
                let h = parse(head, 1);
                (h, t.join().expect("parser thread panicked"))
            })
        };
        let mut out = head?;
        out.extend(tail?);
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

/// Builds the entry of a parsed payload; the `&str` names the input for messages.
type MakeEntry<'a> = dyn Fn(serde_json::Value, &str) -> Result<Vec<u8>, CliError> + Sync + 'a;

/// The entries of the JSON lines in `text`, whose first line is line `first_line` of the input
/// (for messages); blank lines are skipped.
fn parse_lines(
    text: &[u8],
    first_line: usize,
    template: &EntryTemplate,
    make: &MakeEntry<'_>,
) -> Result<Vec<Vec<u8>>, CliError> {
    let mut out = Vec::with_capacity(text.len() / 512);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let n = first_line + i;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(entry) = template.canonical_entry(line) {
            out.push(entry);
            continue;
        }
        let line = std::str::from_utf8(line).map_err(|_| {
            CliError::usage(format!("line {n}: stream did not contain valid UTF-8"))
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| CliError::usage(format!("line {n}: invalid JSON: {e}")))?;
        out.push(make(v, &format!("line {n}"))?);
    }
    Ok(out)
}
