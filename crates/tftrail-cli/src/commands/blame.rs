//! `tftrail blame`

use super::{history, Global};
use crate::error::CliError;

/// The last recorded change to a resource: who, when, what action, which record, outcome.
///
/// Failed attempts that left no trace in the state are skipped (see `tftrail history`). When
/// ADDR has several instances (ADDR[0], ADDR["k"]), the last change of each is shown.
///
/// Exit 0 whether or not a change is found; none found prints nothing on stdout (with --json,
/// `[]`) and a note on stderr.
#[derive(clap::Args)]
pub struct Args {
    /// Resource address, e.g. terraform_data.web
    address: String,
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    let last = tftrail_index::last_applied(history::load(g, &a.address)?);
    history::print(last, g.json, &a.address);
    Ok(0)
}
