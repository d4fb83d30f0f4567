//! The witness flags of `verify`, `verify-receipt` and `monitor`: a C2SP tlog-policy file, or
//! the shorthand `--witness VKEY … --min-witnesses N`; and the check of a checkpoint's
//! cosignatures against them.

use std::path::{Path, PathBuf};

use tftrail_core::checkpoint::VerifierKey;
use tftrail_core::policy::{Policy, QuorumReport};

use crate::error::CliError;

/// Which witnesses must have cosigned the checkpoint.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WitnessArgs {
    /// A C2SP tlog-policy file (`witness NAME VKEY [URL]`, `group …`, `quorum …`): the
    /// checkpoint must carry its quorum of valid cosignatures; its `log` lines, if any, must
    /// include the log's key
    #[arg(long, value_name = "FILE", conflicts_with = "witness")]
    pub witness_policy: Option<PathBuf>,
    /// A witness's cosignature verifier key (name+id+base64 with type 0x04); repeatable
    #[arg(long, value_name = "VKEY")]
    pub witness: Vec<String>,
    /// How many of the --witness keys must have cosigned [default: all of them]
    #[arg(long, value_name = "N", requires = "witness")]
    pub min_witnesses: Option<usize>,
}

impl WitnessArgs {
    /// The policy the flags describe (`None`: no witness flag given). `log`: the key the
    /// checkpoint is verified with, which a policy's `log` lines must include.
    pub fn policy(&self, log: &VerifierKey) -> Result<Option<Policy>, CliError> {
        if let Some(p) = &self.witness_policy {
            return load_policy(p, log).map(Some);
        }
        if self.witness.is_empty() {
            return Ok(None);
        }
        let min = self.min_witnesses.unwrap_or(self.witness.len());
        Policy::from_witnesses(&self.witness, min)
            .map(Some)
            .map_err(|e| CliError::usage(e.to_string()))
    }
}

/// Reads a policy file; its `log` lines, if any, must include `log`.
pub fn load_policy(path: &Path, log: &VerifierKey) -> Result<Policy, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(format!(
            "cannot read the witness policy {}: {e}",
            path.display()
        ))
    })?;
    let policy =
        Policy::parse(&text).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    if !policy.logs().is_empty()
        && !policy
            .logs()
            .iter()
            .any(|l| l.verifier.as_str() == log.as_str())
    {
        let listed: Vec<String> = policy
            .logs()
            .iter()
            .map(|l| l.verifier.display_id())
            .collect();
        return Err(CliError::usage(format!(
            "the witness policy {} is for another log: it lists {}, not the key in use {}",
            path.display(),
            listed.join(", "),
            log.display_id()
        )));
    }
    Ok(policy)
}

/// One line saying who cosigned and who is missing.
pub fn describe(policy: &Policy, r: &QuorumReport) -> String {
    let by: Vec<&str> = r.cosigned_by.iter().map(|c| c.name.as_str()).collect();
    format!(
        "witness quorum {}: required {}; cosigned by: {}; missing: {}",
        if r.satisfied { "met" } else { "NOT met" },
        policy.describe_quorum(),
        if by.is_empty() {
            "nobody".into()
        } else {
            by.join(", ")
        },
        if r.missing.is_empty() {
            "nobody".into()
        } else {
            r.missing.join(", ")
        },
    )
}

/// The report as JSON.
pub fn json(r: &QuorumReport) -> serde_json::Value {
    serde_json::json!({
        "quorum": r.satisfied,
        "cosigned_by": r.cosigned_by.iter().map(|c| serde_json::json!({"name": c.name, "time": c.time})).collect::<Vec<_>>(),
        "missing": r.missing,
        "explanation": r.explanation,
    })
}
