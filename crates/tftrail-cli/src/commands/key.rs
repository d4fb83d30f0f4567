//! `tftrail key`

use super::Global;
use crate::context;
use crate::error::CliError;

/// Print the log's verifier key.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("key", true, false, true)?;
    let key = context::load_signing_key(&g.signing_key_path())?;
    println!("{}", key.verifier_key());
    Ok(0)
}
