//! Watching a tftrail log, and handing what it holds to the tools a team already has.
//!
//! # Scope
//! In: the monitor's settings (`config.rs`, TOML), the alert model (`alert.rs`), the rules
//! that turn authenticated records into alerts (`rules.rs`, pure: records and times in,
//! alerts out), one monitoring round (`round.rs`: checkpoint consistency with the last one
//! seen, incremental verification of new entries and their blobs, rules, delivery), the
//! monitor's own state directory (`memory.rs`: last checkpoint, alerts already sent, deliveries
//! still owed), the sinks (`sinks.rs`: signed webhooks, Slack, JSON Lines), and export
//! (`export.rs`: JSON Lines with proofs' anchors, OCSF events).
//! Out: command-line parsing and exit codes (the CLI's `monitor` and `export` commands).
//!
//! # Trust
//! Every record a rule sees or an export writes was read through `tftrail-log`, authenticated
//! against a signed checkpoint that is consistent with every checkpoint this monitor saw before.

#![forbid(unsafe_code)]

pub mod alert;
pub mod config;
pub mod export;
pub mod memory;
pub mod round;
pub mod rules;
pub mod sinks;

pub use alert::{Alert, Severity};
pub use config::MonitorConfig;
