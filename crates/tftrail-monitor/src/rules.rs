//! (being written by helper R: see /work/briefs/s14-spec.md)

use serde::Deserialize;

/// The rules' settings (`[rules.<name>]`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RulesConfig {}

impl RulesConfig {
    /// Checks the settings (patterns, windows, time zones).
    pub fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The commented `[rules.*]` part of `--example-config`.
pub const EXAMPLE: &str = "";
