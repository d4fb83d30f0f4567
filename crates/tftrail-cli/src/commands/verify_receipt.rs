//! `tftrail verify-receipt`

use std::path::PathBuf;

use tftrail_core::receipt::Receipt;
use tftrail_core::record::Record;

use super::Global;
use crate::context;
use crate::error::CliError;

/// Check a receipt offline, with nothing but the file and the verifier key.
#[derive(clap::Args)]
pub struct Args {
    /// The receipt (`-` for stdin)
    file: PathBuf,
    /// A copy of the entry to check against the receipt
    #[arg(long, value_name = "FILE")]
    entry: Option<PathBuf>,
    #[command(flatten)]
    witnesses: super::quorum::WitnessArgs,
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

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("verify-receipt", true, false, false)?;
    let key = match g.key.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => context::verifier_key(k)?,
        None => {
            return Err(CliError::usage(
                "verify-receipt needs the log's verifier key: --key <name+id+base64> (or a file holding it)",
            ))
        }
    };
    let policy = a.witnesses.policy(&key)?;
    let data = read(&a.file)?;
    let receipt =
        Receipt::parse(&data).map_err(|e| CliError::usage(format!("{}: {e}", a.file.display())))?;
    let entry = a.entry.as_ref().map(read).transpose()?;
    let (cp, entry) = receipt
        .verify(&key, entry.as_deref())
        .map_err(|e| CliError::integrity(format!("{}: {e}", a.file.display())))?;
    // Cosignatures are ignored unless a policy is given; then its quorum is required.
    let quorum = policy.as_ref().map(|p| (p, p.check(&receipt.checkpoint)));
    if let Some((p, r)) = quorum.as_ref().filter(|(_, r)| !r.satisfied) {
        let e = CliError::integrity(format!(
            "{}: the receipt's checkpoint lacks the witnesses' quorum: {}",
            a.file.display(),
            super::quorum::describe(p, r)
        ));
        if g.json {
            println!(
                "{}",
                serde_json::json!({"ok": false, "error": e.message, "witnesses": super::quorum::json(r)})
            );
        }
        return Err(e);
    }
    let record = Record::from_entry(&entry).ok();
    if g.json {
        let mut v = serde_json::json!({"ok": true, "index": receipt.index, "origin": cp.origin, "size": cp.size,
                "record": record});
        if let Some((_, r)) = &quorum {
            v["witnesses"] = super::quorum::json(r);
        }
        println!("{v}");
    } else {
        println!(
            "OK: record {} is in log {} (tree size {})",
            receipt.index, cp.origin, cp.size
        );
        if let Some(r) = record {
            println!("{}", crate::render::line(receipt.index, &r));
        }
        if let Some((p, r)) = &quorum {
            println!("{}", super::quorum::describe(p, r));
        }
    }
    Ok(0)
}
