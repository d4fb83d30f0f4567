//! The monitor's settings: one TOML file (`tftrail monitor --config FILE`).

use std::path::Path;

use serde::Deserialize;

/// Everything in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Where alerts go (`[[sink]]`, one or more; none: only the exit code and stdout).
    #[serde(default, rename = "sink")]
    pub sinks: Vec<crate::sinks::SinkConfig>,
    /// The rules (`[rules.<name>]`); every rule has a default.
    #[serde(default)]
    pub rules: crate::rules::RulesConfig,
    /// The web UI's base URL, for links to records in alerts (default: the `--server` URL).
    #[serde(default)]
    pub ui_url: Option<String>,
    /// A C2SP tlog-policy file: each round's checkpoint must carry its quorum of witness
    /// cosignatures, else a `witness` alert (`--witness-policy` overrides it).
    #[serde(default)]
    pub witness_policy: Option<std::path::PathBuf>,
    /// The policy in effect (from `witness_policy` or the command line), set by the caller.
    #[serde(skip)]
    pub policy: Option<tftrail_core::policy::Policy>,
}

impl MonitorConfig {
    /// Reads and checks a config file; the error names the file and the problem.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let c: MonitorConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.rules.check()?;
        for (i, s) in c.sinks.iter().enumerate() {
            s.check().map_err(|e| format!("sink {}: {e}", i + 1))?;
        }
        Ok(c)
    }

    /// A commented config holding every setting with its default (`--example-config`).
    pub fn example() -> String {
        format!(
            "# tftrail monitor --config FILE\n\n# A C2SP tlog-policy file: each checkpoint must carry its witnesses' quorum, else a\n# `witness` alert (--witness-policy, --witness and --min-witnesses override it).\n# witness_policy = \"/etc/tftrail/witnesses.policy\"\n\n{}\n{}",
            crate::sinks::EXAMPLE,
            crate::rules::EXAMPLE
        )
    }
}
