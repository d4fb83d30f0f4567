//! `tftrail show`

use super::{reindex, StoreArg};
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
    #[command(flatten)]
    store: StoreArg,
    /// Verifier key (name+id+base64, or a file holding it) [default: derived from the signing key]
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
    /// Print {"index":N,"record":{…}} as JSON
    #[arg(long)]
    json: bool,
    /// Print the raw payload instead of the reader's rendering
    #[arg(long, conflicts_with = "json")]
    raw: bool,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let location = a.store.location();
    let log = context::open_log(&location, context::verifier_key(a.key.as_deref())?)?;
    let head = log.head()?;
    let cp = &head.checkpoint;
    if a.index >= cp.size {
        return Err(CliError::usage(format!(
            "no record {}: the log has {} records",
            a.index, cp.size
        )));
    }
    let r = reindex::read_record(&log, cp, a.index)?;
    if a.json {
        println!("{}", serde_json::json!({"index": a.index, "record": r}));
        return Ok(0);
    }
    if !a.raw && r.kind.starts_with("terraform.") {
        let mut full = r.clone();
        tftrail_index::inflate(&log, &mut full.payload)?;
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
