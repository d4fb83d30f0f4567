//! `tftrail blame`

use serde_json::Value;

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
    let all = history::load(g, &a.address)?;
    let mut last: std::collections::BTreeMap<String, Value> = Default::default();
    for v in all {
        if v["applied"].as_bool() == Some(true) {
            last.insert(v["address"].as_str().unwrap_or("").to_string(), v);
        }
    }
    history::print(last.into_values().collect(), g.json, &a.address);
    Ok(0)
}
