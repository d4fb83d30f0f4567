//! A transparency-log witness (C2SP tlog-witness, cosignatures per C2SP tlog-cosignature
//! `cosignature/v1`).
//!
//! In scope: the `add-checkpoint` protocol for any C2SP log whose verifier key it is given
//! (not only tftrail's), the consistency check against the latest checkpoint it cosigned per
//! origin, that state kept durably in a directory (persisted before the answer, one request
//! per origin at a time, one process per directory), and the HTTP listener.
//!
//! Out of scope: cosignature and Merkle math (`tftrail-core`), fetching checkpoints from logs
//! (a witness here only answers), the monitoring API the spec leaves to be designed, and
//! ML-DSA-44 subtree cosignatures.
#![forbid(unsafe_code)]

pub mod http;
pub mod request;
pub mod state;
pub mod witness;

pub use http::{app, run};
pub use witness::{Refusal, Witness};

/// Errors setting a witness up or keeping its state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// A configuration mistake (keys, flags, files).
    #[error("{0}")]
    Config(String),
    /// The state directory cannot be read or written.
    #[error("witness state: {0}")]
    State(String),
}
