//! What a rule fired: the alert every sink delivers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Info,
    /// Someone should check.
    Warning,
    /// The log's integrity or a production change: now.
    Critical,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule's name as the config spells it (`destroy`, `out_of_band`, `integrity` …).
    pub rule: String,
    /// How urgent.
    pub severity: Severity,
    /// The log indexes of the records it is about (empty for some integrity alerts).
    pub records: Vec<u64>,
    /// One line: what happened (`3 resources deleted by token:ci in record 812`).
    pub summary: String,
    /// Why the rule fired: the setting it broke (`deletes of aws_s3_bucket.* are watched`).
    pub why: String,
    /// Rule-specific facts (addresses, actor, time, window …).
    pub details: Value,
    /// What makes it the same alert again (for deduplication across rounds and restarts):
    /// unique per rule and subject, e.g. `destroy:812`; `integrity:rollback:<size>:<root>`.
    pub key: String,
}
