//! `tftrail checkpoint`

use std::io::Write;

use super::StoreArg;
use crate::context;
use crate::error::CliError;

/// Print the signed checkpoint (after checking its signature).
#[derive(clap::Args)]
pub struct Args {
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
    std::io::stdout()
        .write_all(&head.note)
        .map_err(|e| CliError::failure(e.to_string()))?;
    Ok(0)
}
