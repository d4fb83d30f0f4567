//! (being written by helper M: see /work/briefs/s14-spec.md)

use serde::Deserialize;

/// One `[[sink]]`.
#[derive(Debug, Clone, Deserialize)]
pub struct SinkConfig {}

impl SinkConfig {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The commented `[[sink]]` part of `--example-config`.
pub const EXAMPLE: &str = "";
