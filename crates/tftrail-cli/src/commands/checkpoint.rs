//! `tftrail checkpoint`

use std::io::Write;

use super::Global;
use crate::context;
use crate::error::CliError;

/// Print the signed checkpoint (after checking its signature).
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("checkpoint", false, false, true)?;
    let location = g.location();
    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
    let head = log.head()?;
    std::io::stdout()
        .write_all(&head.note)
        .map_err(|e| CliError::failure(e.to_string()))?;
    Ok(0)
}
