//! `tftrail prove`

use std::io::Write;

use super::{StoreArg, VerifierKeyArg};
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
    #[command(flatten)]
    key: VerifierKeyArg,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let log = context::open_log(&a.store.location(), a.key.resolve()?)?;
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
