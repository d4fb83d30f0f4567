//! `tftrail export`

use std::io::Write;
use std::time::Duration;

use tftrail_monitor::export::{ExportError, Exporter, Format, Selection};

use super::log::time_bounds;
use super::Global;
use crate::context;
use crate::error::CliError;

/// Write every record (or a selection) for a SIEM or a data lake, each read from the log and
/// checked against the signed checkpoint.
///
/// `jsonl`: first the signed checkpoint note (`{"checkpoint_note": …}`), then one line per
/// record with its index, its RFC 6962 leaf hash and the checkpoint that covers it, so that
/// each line can be proven (`tftrail prove INDEX`). `ocsf`: OCSF 1.3.0 events, one API
/// Activity event per resource change of a run or state write, one Authentication event per
/// refused access. docs/EXPORT.md has the field mapping.
#[derive(clap::Args)]
pub struct Args {
    /// The output format
    #[arg(long, value_parser = ["jsonl", "ocsf"])]
    format: String,
    /// Only records at or after this time (RFC 3339, or YYYY-MM-DD for the start of that day, UTC)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only records before this time (RFC 3339, or YYYY-MM-DD for the whole of that day, UTC)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only records whose kind starts with KIND, or of a Terraform kind without its
    /// `terraform.` (`apply`, `state`), as `tftrail log --kind`
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Keep exporting as the log grows (the checkpoint is read every second; each new one
    /// must be consistent with the last); stop with SIGINT or SIGTERM
    #[arg(long)]
    follow: bool,
    /// Write to FILE (created or truncated) instead of stdout
    #[arg(long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

fn export_err(e: ExportError) -> CliError {
    match e {
        ExportError::Log(e) => e.into(),
        ExportError::Write(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            // The reader went away (`| head`): end as a process killed by SIGPIPE would.
            std::process::exit(141)
        }
        e if e.is_integrity() => CliError::integrity(e.to_string()),
        e => CliError::failure(e.to_string()),
    }
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("export", false, false, true)?;
    let format = match a.format.as_str() {
        "jsonl" => Format::Jsonl,
        _ => Format::Ocsf,
    };
    let (since_ns, until_ns) = time_bounds(a.since.as_deref(), a.until.as_deref())?;
    let selection = Selection {
        since_ns,
        until_ns,
        kind: a.kind.clone(),
    };
    if let (Some(s), Some(u)) = (selection.since_ns, selection.until_ns) {
        if s >= u {
            return Err(CliError::usage(format!(
                "--since {} is not before --until {}: nothing could match",
                a.since.as_deref().unwrap_or_default(),
                a.until.as_deref().unwrap_or_default()
            )));
        }
    }
    let location = g.location();
    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| CliError::failure(format!("cannot create {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut ex = Exporter::new(format, selection);
    let stop = a.follow.then(stop_flag).transpose()?;
    loop {
        let head = log.head()?;
        ex.export(&log, &head.checkpoint, &head.note, &mut out)
            .map_err(export_err)?;
        let Some(stop) = &stop else {
            return Ok(0);
        };
        // Poll every second, waking early to stop.
        for _ in 0..10 {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A flag raised by SIGINT or SIGTERM, so that `--follow` ends after a complete line.
fn stop_flag() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, CliError> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| CliError::failure(format!("cannot handle signals: {e}")))?;
    }
    Ok(flag)
}
