//! Terraform/OpenTofu side of tftrail: runs the tool transparently and builds redacted
//! audit record payloads. It knows nothing of the log.
//!
//! # Scope
//! In: classifying and sanitising command lines ([`Invocation`]); the run context — git,
//! workspace, backend, actor, CI identity ([`Context`]); redacted plan summaries from
//! `show -json` ([`PlanSummary`]); state fingerprints and resource-level diffs
//! ([`StateSnapshot`]); spawning the tool with live output, stdin pass-through, signal
//! handling and capture ([`runner`]); scrubbing known secrets from text ([`Scrubber`]); and
//! the whole `tftrail run` flow against a two-method [`Sink`] ([`run_recorded`]).
//!
//! Out: storing records and blobs, hashing them into the log, signing, exit-code policy and
//! printing of errors/hints (the CLI does those; [`Error::hint`] helps).
//!
//! # Records
//! Kinds: `terraform.plan` (one record after the plan); for every state-changing command a
//! `<stem>.intent` before the tool starts and a `<stem>.outcome` after, with stems
//! `terraform.apply`, `terraform.destroy`, `terraform.refresh`, `terraform.import`,
//! `terraform.state`, `terraform.taint`, `terraform.untaint`, `terraform.force_unlock`,
//! `terraform.init`, `terraform.workspace`, `terraform.providers_lock`, `terraform.test`,
//! `terraform.command` (unknown subcommands); read-only commands are `terraform.command` when
//! recorded on request. Blobs: `plan.json` (redacted `show -json`), `state-values.json` (the
//! redacted values of the state an outcome left), `state-diff-full.json` (an outcome's whole
//! diff when values were truncated, see [`values`]), `output.txt` (captured
//! stdout+stderr, scrubbed).
//!
//! # Secrets
//! Payloads and blobs never carry: `-var` / `-backend-config` values, `TF_VAR_*` values,
//! values Terraform marks sensitive, sensitive outputs, values of variables declared
//! sensitive, any input variable value in the plan blob, literal constants in the plan's
//! configuration. Captured text is scrubbed of every known secret of at least
//! [`redact::MIN_SCRUB_LEN`] characters (shorter ones would shred unrelated text). The
//! marker is [`REDACTED`]. State itself is never stored, only redacted values of it.

#![forbid(unsafe_code)]

pub mod capture;
pub mod context;
mod early_show;
pub mod error;
pub mod invocation;
pub mod plan;
pub mod redact;
pub mod runner;
pub mod state;
pub mod values;

pub use capture::{blob_ref, run_recorded, RecordOptions, RecordedPlan, RunReport, Sink};
pub use context::{Context, Env};
pub use error::{Error, Result, SinkError};
pub use invocation::{Invocation, Operation, Tool};
pub use plan::PlanSummary;
pub use redact::{Scrubber, REDACTED};
pub use state::{
    diff_values, AttributeValue, InstanceValues, OutputValue, StateDiff, StateSnapshot,
};
