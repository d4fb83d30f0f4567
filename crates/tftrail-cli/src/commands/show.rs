//! `tftrail show`

use super::{reindex, Global};
use crate::error::CliError;
use crate::{context, render};

/// Show record N, checked against the signed checkpoint.
///
/// Terraform records are rendered for a reader: who, when, where (repo, commit, branch, dir,
/// workspace), the outcome, each resource change, output changes, links between intent,
/// outcome and plan records, and the state before/after. --json prints the record as stored.
#[derive(clap::Args)]
pub struct Args {
    /// The record's index
    index: u64,
    /// Print the raw payload instead of the reader's rendering
    #[arg(long, conflicts_with = "json")]
    raw: bool,
    /// Write the record's blob NAME (e.g. output.txt, plan.json) to stdout, after checking
    /// its SHA-256 and size against the record
    #[arg(long, value_name = "NAME", conflicts_with_all = ["json", "raw"])]
    blob: Option<String>,
    /// Show values whole: a record keeps long values truncated (with their SHA-256) and the
    /// whole diff in its blob state-diff-full.json, read and checked here
    #[arg(long, conflicts_with_all = ["json", "raw", "blob"])]
    full: bool,
}

/// Puts the whole state diff of `r` (blob `state-diff-full.json`, named by
/// `state_diff.full`) in place of its truncated one; false when it has none.
fn whole_diff(
    log: &tftrail_log::Log,
    index: u64,
    r: &mut tftrail_core::record::Record,
) -> Result<bool, CliError> {
    let Some(sha) = r
        .payload
        .pointer("/state_diff/full/sha256")
        .and_then(|v| v.as_str())
        .map(String::from)
    else {
        return Ok(false);
    };
    let name = tftrail_terraform::values::FULL_DIFF_BLOB;
    let Some(b) = r.blobs.iter().find(|b| b.sha256 == sha && b.name == name) else {
        return Err(CliError::integrity(format!(
            "record {index} names a whole diff (sha256 {sha}) that is not among its blobs"
        )));
    };
    let size = b.size;
    let data = log.blob(&sha)?;
    if data.len() as u64 != size {
        return Err(CliError::integrity(format!(
            "blob {name} of record {index}: {} bytes stored, the record says {size}",
            data.len()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| {
        CliError::integrity(format!("blob {name} of record {index} is not JSON: {e}"))
    })?;
    r.payload["state_diff"] = v;
    Ok(true)
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    let location = g.location();
    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
    let head = log.head()?;
    let cp = &head.checkpoint;
    if a.index >= cp.size {
        return Err(CliError::usage(format!(
            "no record {}: the log has {} records",
            a.index, cp.size
        )));
    }
    let r = reindex::read_record(&log, cp, a.index)?;
    if let Some(name) = &a.blob {
        let Some(b) = r.blobs.iter().find(|b| &b.name == name) else {
            let names: Vec<&str> = r.blobs.iter().map(|b| b.name.as_str()).collect();
            return Err(CliError::usage(format!(
                "record {} has no blob named {name:?}{}",
                a.index,
                if names.is_empty() {
                    " (it has no blobs)".to_string()
                } else {
                    format!(" (it has: {})", names.join(", "))
                }
            )));
        };
        let data = log.blob(&b.sha256)?;
        if data.len() as u64 != b.size {
            return Err(CliError::integrity(format!(
                "blob {name} of record {}: {} bytes stored, the record says {}",
                a.index,
                data.len(),
                b.size
            )));
        }
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(&data)
            .and_then(|()| out.flush())
            .map_err(|e| CliError::failure(format!("cannot write to stdout: {e}")))?;
        return Ok(0);
    }
    if g.json {
        println!("{}", serde_json::json!({"index": a.index, "record": r}));
        return Ok(0);
    }
    if !a.raw && r.kind.starts_with("terraform.") {
        let mut full = r.clone();
        tftrail_index::inflate(&log, &mut full.payload)?;
        if a.full && !whole_diff(&log, a.index, &mut full)? {
            eprintln!(
                "tftrail: record {} has no truncated values: it is shown whole",
                a.index
            );
        }
        let mut links = render::Links::default();
        let ix = reindex::open_index(&log, &location, cp)?;
        if r.kind.ends_with(".intent") {
            links.outcome = ix.outcome_of(a.index).map_err(reindex::index_err)?;
        }
        if r.kind.ends_with(".plan") {
            links.applied_by = ix.applies_of_plan(a.index).map_err(reindex::index_err)?;
        }
        if let Some(i) = r.payload.get("intent_index").and_then(|v| v.as_u64()) {
            if i < a.index {
                let mut intent = reindex::read_record(&log, cp, i)?;
                tftrail_index::inflate(&log, &mut intent.payload)?;
                links.intent = Some(intent.payload);
            }
        }
        if let Some(text) = render::terraform(a.index, &full, &links) {
            print!("{text}");
            return Ok(0);
        }
    }
    print!("{}", render::full(a.index, &r));
    Ok(0)
}
