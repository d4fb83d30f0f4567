//! `--witness-policy FILE` | `--witness VKEY…` `--min-witnesses N`, as `evidence verify`
//! takes them (the same flags as `verify`, `verify-receipt` and `monitor`).

use std::path::Path;

use tftrail_core::checkpoint::VerifierKey;

use crate::error::CliError;

/// The witnesses a checkpoint must be cosigned by.
pub struct Witnesses {}

impl Witnesses {
    /// The valid cosigners of `note` (name, key id hex, time) and whether the quorum is met.
    #[allow(clippy::type_complexity)]
    pub fn check(&self, _note: &[u8]) -> (Vec<(String, String, u64)>, Option<Result<(), String>>) {
        (Vec::new(), None)
    }
}

/// Parses the flags; `None` when none was given.
pub fn parse(
    policy: Option<&Path>,
    witness: &[String],
    _min: Option<usize>,
    _log_key: &VerifierKey,
) -> Result<Option<Witnesses>, CliError> {
    if policy.is_none() && witness.is_empty() {
        return Ok(None);
    }
    Err(CliError::usage("witness checks are not built yet"))
}
