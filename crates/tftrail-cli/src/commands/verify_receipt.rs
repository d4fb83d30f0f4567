//! `tftrail verify-receipt`

use std::path::PathBuf;

use tftrail_core::receipt::Receipt;
use tftrail_core::record::Record;

use crate::context;
use crate::error::CliError;

/// Check a receipt offline, with nothing but the file and the verifier key.
#[derive(clap::Args)]
pub struct Args {
    /// The receipt (`-` for stdin)
    file: PathBuf,
    /// The log's verifier key (name+id+base64, or a file holding it)
    #[arg(long, value_name = "VKEY")]
    key: String,
    /// A copy of the entry to check against the receipt
    #[arg(long, value_name = "FILE")]
    entry: Option<PathBuf>,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

fn read(p: &PathBuf) -> Result<Vec<u8>, CliError> {
    if p.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
        return Ok(b);
    }
    std::fs::read(p).map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))
}

pub fn run(a: Args) -> Result<i32, CliError> {
    let key = context::verifier_key(Some(&a.key))?;
    let data = read(&a.file)?;
    let receipt =
        Receipt::parse(&data).map_err(|e| CliError::usage(format!("{}: {e}", a.file.display())))?;
    let entry = a.entry.as_ref().map(read).transpose()?;
    let (cp, entry) = receipt
        .verify(&key, entry.as_deref())
        .map_err(|e| CliError::integrity(format!("{}: {e}", a.file.display())))?;
    let record = Record::from_entry(&entry).ok();
    if a.json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "index": receipt.index, "origin": cp.origin, "size": cp.size,
                "record": record})
        );
    } else {
        println!(
            "OK: record {} is in log {} (tree size {})",
            receipt.index, cp.origin, cp.size
        );
        if let Some(r) = record {
            println!("{}", crate::render::line(receipt.index, &r));
        }
    }
    Ok(0)
}
