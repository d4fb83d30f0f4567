//! `tftrail append`

use std::io::Read;

use tftrail_core::record::{validate_kind, Actor, EntryTemplate, Record};

use super::{Global, TrustedKey};
use crate::context;
use crate::error::CliError;
use crate::remote::{self, Appended, RequestBuilder};

/// Append a record whose payload is the JSON object on stdin; print its index.
///
/// Through a server (--server), the server signs: no signing key is needed, TFTRAIL_TOKEN
/// must be a writer's token, and --batch sends requests of at most 10,000 records and 4 MiB,
/// each appended atomically.
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
    let server = g.server();
    let signing = match server {
        Some(_) => None,
        None => {
            let (key_path, source) = g.signing_key();
            Some((context::load_signing_key(&key_path)?, source))
        }
    };
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut input)
        .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
    let time = context::now_utc();
    let actor = context::actor();
    let Some((key, source)) = signing else {
        let url = server.expect("no signing key only with a server");
        return append_remote(&a, g, &url, &input, &time, &actor);
    };
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
        vec![make(parse_stdin(&input)?, "stdin")?]
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

/// `tftrail append --server URL`: the same records, appended by the server.
fn append_remote(
    a: &Args,
    g: &Global,
    url: &str,
    input: &[u8],
    time: &str,
    actor: &Actor,
) -> Result<i32, CliError> {
    // Each payload is checked as the direct path checks it (the time is the server's, of the
    // same length), so that a bad line is reported with its number before anything is sent.
    let check = |payload: serde_json::Value, what: &str| {
        Record::new(&a.kind, time, actor.clone(), payload, vec![])
            .and_then(|r| r.to_entry().map(|_| r.payload))
            .map_err(|e| CliError::usage(format!("{what}: {e}")))
    };
    let payloads: Vec<(usize, serde_json::Value)> = if a.batch {
        let mut out = Vec::new();
        for (i, line) in input.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            if let Some(v) = parse_line(n, line)? {
                out.push((n, check(v, &format!("line {n}"))?));
            }
        }
        if out.is_empty() {
            return Err(CliError::usage("no JSON lines on stdin; nothing appended"));
        }
        out
    } else {
        vec![(1, check(parse_stdin(input)?, "stdin")?)]
    };
    let server = remote::Server::connect(url, g.key.as_deref())?;
    let total = payloads.len() as u64;
    let show = context::progress_allowed(g.json) && total >= 100_000;
    let mut done: Vec<Appended> = Vec::new();
    let mut acked = 0u64;
    let mut request = RequestBuilder::default();
    // The input line of the request's first record, for messages.
    let mut request_line = 1;
    let mut send = |request: &mut RequestBuilder, line: usize| -> Result<(), CliError> {
        let (body, count) = request.take();
        let out = server.append(body, count).map_err(|e| {
            if done.is_empty() {
                return e;
            }
            let ranges: Vec<String> = done.iter().map(range).collect();
            let hint = format!(
                "append the input from line {line} on again; the lines before it are in the log"
            );
            CliError {
                message: format!(
                    "{}; the {acked} records before line {line} were appended (indexes {}), \
                     those from line {line} on were not",
                    e.message,
                    ranges.join(", ")
                ),
                hint: Some(e.hint.map_or(hint.clone(), |h| format!("{h}; {hint}"))),
                ..e
            }
        })?;
        acked += out.count;
        done.push(out);
        if show {
            eprint!("\rappending: {acked}/{total} records");
            if acked == total {
                eprintln!();
            }
        }
        Ok(())
    };
    for (line, payload) in &payloads {
        let record = remote::record_json(&a.kind, payload, &[], actor);
        if !request.fits(&record) {
            send(&mut request, request_line)?;
            request_line = *line;
        }
        request.push(&record);
    }
    send(&mut request, request_line)?;
    let first = done[0].first;
    let size = done.iter().map(|d| d.size).max().unwrap_or(0);
    let contiguous = done
        .windows(2)
        .all(|w| w[1].first == w[0].first + w[0].count);
    if g.json {
        let mut v = serde_json::json!({"first": first, "count": acked, "size": size});
        if !contiguous {
            // Other writers' records came between the requests.
            v["ranges"] = done
                .iter()
                .map(|d| serde_json::json!([d.first, d.count]))
                .collect();
        }
        println!("{v}");
    } else if !a.batch {
        println!("{first}");
    } else if contiguous {
        println!(
            "appended {acked} records (indexes {first}..{}); tree size {size}",
            first + acked - 1
        );
    } else {
        let ranges: Vec<String> = done.iter().map(range).collect();
        println!(
            "appended {acked} records in {} requests (indexes {}); tree size {size}",
            done.len(),
            ranges.join(", ")
        );
    }
    Ok(0)
}

/// `first..last` of appended records.
fn range(a: &Appended) -> String {
    format!("{}..{}", a.first, a.first + a.count - 1)
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
        if let Some(entry) = template.canonical_entry(line.strip_suffix(b"\r").unwrap_or(line)) {
            out.push(entry);
            continue;
        }
        if let Some(v) = parse_line(n, line)? {
            out.push(make(v, &format!("line {n}"))?);
        }
    }
    Ok(out)
}

/// Line `n` of JSON Lines input (without its `\n`): its value, or `None` when blank.
fn parse_line(n: usize, line: &[u8]) -> Result<Option<serde_json::Value>, CliError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line)
        .map_err(|_| CliError::usage(format!("line {n}: stream did not contain valid UTF-8")))?;
    if line.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(line)
        .map(Some)
        .map_err(|e| CliError::usage(format!("line {n}: invalid JSON: {e}")))
}

/// The one JSON value on stdin (without --batch).
fn parse_stdin(input: &[u8]) -> Result<serde_json::Value, CliError> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(CliError::usage("no JSON on stdin; nothing appended")
            .hint("pipe one JSON object, e.g. echo '{\"msg\":\"hi\"}' | tftrail append"));
    }
    serde_json::from_slice(input).map_err(|e| {
        CliError::usage(format!("stdin is not valid JSON: {e}")).hint(not_json_hint(input))
    })
}
