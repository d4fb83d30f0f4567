//! `tftrail checkpoint`

use std::io::Write;

use super::{StoreArg, VerifierKeyArg};
use crate::context;
use crate::error::CliError;

/// Print the signed checkpoint (after checking its signature).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    key: VerifierKeyArg,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let log = context::open_log(&a.store.location(), a.key.resolve()?)?;
    let head = log.head()?;
    std::io::stdout()
        .write_all(&head.note)
        .map_err(|e| CliError::failure(e.to_string()))?;
    Ok(0)
}
