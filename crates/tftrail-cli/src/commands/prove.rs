//! `tftrail prove`

use std::io::Write;

use super::StoreArg;
use crate::context;
use crate::error::CliError;

/// Write a C2SP tlog-proof receipt for record N to stdout: the entry, its inclusion proof
/// and the signed checkpoint. Check it with `tftrail verify-receipt`.
#[derive(clap::Args)]
pub struct Args {
    /// The record's index
    index: u64,
    #[command(flatten)]
    store: StoreArg,
    /// Verifier key (name+id+base64, or a file holding it) [default: derived from the signing key]
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let log = context::open_log(
        &a.store.location(),
        context::verifier_key(a.key.as_deref())?,
    )?;
    let head = log.head()?;
    let receipt = log.prove(&head, a.index)?;
    // Never hand out a receipt that does not verify.
    receipt
        .verify(log.key(), None)
        .map_err(|e| CliError::integrity(e.to_string()))?;
    std::io::stdout()
        .write_all(&receipt.encode())
        .map_err(|e| CliError::failure(e.to_string()))?;
    Ok(0)
}
