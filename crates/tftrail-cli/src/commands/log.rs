//! `tftrail log`

use tftrail_core::record::Record;

use super::StoreArg;
use crate::error::CliError;
use crate::{context, render};

/// List records, newest first, each checked against the signed checkpoint.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArg,
    /// Verifier key (name+id+base64, or a file holding it) [default: derived from the signing key]
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
    /// At most this many records (0: all)
    #[arg(long, default_value_t = 20)]
    limit: u64,
    /// Print JSON Lines: {"index":N,"record":{…}}
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let log = context::open_log(
        &a.store.location(),
        context::verifier_key(a.key.as_deref())?,
    )?;
    let head = log.head()?;
    let size = head.checkpoint.size;
    let start = if a.limit == 0 {
        0
    } else {
        size.saturating_sub(a.limit)
    };
    let entries = log.entries(&head.checkpoint, start, size)?;
    if size == 0 && !a.json {
        eprintln!("the log is empty");
    }
    for (k, e) in entries.iter().enumerate().rev() {
        let index = start + k as u64;
        let r = Record::from_entry(e)
            .map_err(|err| CliError::integrity(format!("entry {index}: {err}")))?;
        if a.json {
            println!("{}", serde_json::json!({"index": index, "record": r}));
        } else {
            println!("{}", render::line(index, &r));
        }
    }
    Ok(0)
}
