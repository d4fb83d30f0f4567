//! `tftrail key`

use super::KeyArg;
use crate::context;
use crate::error::CliError;

/// Print the log's verifier key.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArg,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let key = context::load_signing_key(&a.key.path())?;
    println!("{}", key.verifier_key());
    Ok(0)
}
