//! TEMPORARY STAND-IN (helper M) for helper R's rules.rs, with the spec's signatures, so the
//! round compiles and its delivery paths can be tested; deleted before M's last commit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Severity};

/// One authenticated record the round hands to the rules.
pub struct Event<'a> {
    /// Log index.
    pub index: u64,
    /// The record.
    pub record: &'a tftrail_core::record::Record,
    /// Its resource changes.
    pub changes: &'a [tftrail_index::ChangeRow],
}

/// What rules remember between rounds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleMemory {
    /// Records seen (stand-in).
    pub seen: u64,
}

/// The integrity rule's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct IntegrityRule {
    /// On or off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Stale after.
    #[serde(default, deserialize_with = "duration")]
    pub stale_after: Option<std::time::Duration>,
}

fn yes() -> bool {
    true
}

impl Default for IntegrityRule {
    fn default() -> Self {
        IntegrityRule {
            enabled: true,
            stale_after: None,
        }
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    let s = String::deserialize(d)?;
    let (n, unit) = s.split_at(s.len() - 1);
    let n: u64 = n.parse().map_err(serde::de::Error::custom)?;
    let k = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(serde::de::Error::custom("bad unit")),
    };
    Ok(Some(std::time::Duration::from_secs(n * k)))
}

impl IntegrityRule {
    /// Whether a checkpoint last seen advancing at `last_advance` is stale at `now`.
    pub fn is_stale(&self, last_advance: time::OffsetDateTime, now: time::OffsetDateTime) -> bool {
        let Some(after) = self.stale_after.filter(|_| self.enabled) else {
            return false;
        };
        let waited = now - last_advance;
        waited.is_positive() && waited.unsigned_abs() > after
    }
}

/// The rules' settings (`[rules.<name>]`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RulesConfig {
    #[serde(default)]
    integrity: IntegrityRule,
    #[serde(flatten)]
    _other: BTreeMap<String, toml::Value>,
}

impl RulesConfig {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Alerts for `events`.
    pub fn evaluate(
        &self,
        events: &[Event],
        memory: &mut RuleMemory,
        _now: time::OffsetDateTime,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for e in events {
            memory.seen += 1;
            let o = e.record.payload.get("outcome").and_then(|v| v.as_str());
            if matches!(o, Some("failed" | "interrupted")) {
                out.push(Alert {
                    rule: "failed_apply".into(),
                    severity: Severity::Warning,
                    records: vec![e.index],
                    summary: format!(
                        "{} {} by {}",
                        e.record.kind,
                        o.unwrap_or(""),
                        e.record.actor.user
                    ),
                    why: "failed applies are watched".into(),
                    details: serde_json::json!({}),
                    key: format!("failed_apply:{}", e.index),
                });
            }
        }
        out
    }

    /// The integrity rule's settings.
    pub fn integrity(&self) -> &IntegrityRule {
        &self.integrity
    }
}

/// The commented `[rules.*]` part of `--example-config`.
pub const EXAMPLE: &str = "";
