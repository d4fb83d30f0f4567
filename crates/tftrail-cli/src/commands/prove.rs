//! `tftrail prove`

use std::io::Write;

use super::Global;
use crate::context;
use crate::error::CliError;

/// Write a C2SP tlog-proof receipt for record N to stdout: the entry, its inclusion proof
/// and the signed checkpoint. Check it with `tftrail verify-receipt`.
#[derive(clap::Args)]
pub struct Args {
    /// The record's index
    index: u64,
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("prove", false, false, true)?;
    let location = g.location();
    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
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
