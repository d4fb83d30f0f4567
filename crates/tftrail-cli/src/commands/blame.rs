//! `tftrail blame`

use serde_json::Value;

use super::{history, StoreArg};
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
    #[command(flatten)]
    store: StoreArg,
    /// Verifier key (name+id+base64, or a file holding it) [default: derived from the signing key]
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
    /// Print a JSON array (one object per instance; empty when none)
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let all = history::load(&a.store, a.key.as_deref(), &a.address)?;
    let mut last: std::collections::BTreeMap<String, Value> = Default::default();
    for v in all {
        if v["applied"].as_bool() == Some(true) {
            last.insert(v["address"].as_str().unwrap_or("").to_string(), v);
        }
    }
    let out: Vec<Value> = last.into_values().collect();
    if a.json {
        println!("{}", Value::Array(out.clone()));
    } else {
        for v in &out {
            println!("{}", history::line(v));
        }
    }
    if out.is_empty() {
        eprintln!("no recorded change to {}", a.address);
    }
    Ok(0)
}
