//! `tftrail show`

use tftrail_core::record::Record;

use super::StoreArg;
use crate::error::CliError;
use crate::{context, render};

/// Show record N, checked against the signed checkpoint.
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
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let log = context::open_log(
        &a.store.location(),
        context::verifier_key(a.key.as_deref())?,
    )?;
    let head = log.head()?;
    if a.index >= head.checkpoint.size {
        return Err(CliError::usage(format!(
            "no record {}: the log has {} records",
            a.index, head.checkpoint.size
        )));
    }
    let e = log
        .entries(&head.checkpoint, a.index, a.index + 1)?
        .remove(0);
    let r = Record::from_entry(&e)
        .map_err(|err| CliError::integrity(format!("entry {}: {err}", a.index)))?;
    if a.json {
        println!("{}", serde_json::json!({"index": a.index, "record": r}));
    } else {
        print!("{}", render::full(a.index, &r));
    }
    Ok(0)
}
