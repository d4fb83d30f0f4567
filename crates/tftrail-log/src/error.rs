//! Errors of the log layer, classified for the CLI's exit codes.

use tftrail_core::checkpoint::CheckpointError;
use tftrail_store::StoreError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The store holds no log.
    #[error("{location} is not a tftrail log: {reason}")]
    NotALog {
        /// Where.
        location: String,
        /// Why.
        reason: String,
    },
    /// The checkpoint is gone but the store holds a log's tiles: it was deleted.
    #[error("integrity: {location} has no checkpoint, but it holds a log's objects ({found} …): the checkpoint was deleted. It is the one object write-once storage cannot lock, so this is how a log is attacked or lost")]
    CheckpointMissing {
        /// Where.
        location: String,
        /// One of the log's objects that is still there.
        found: String,
    },
    /// `init` on a store that already has a log.
    #[error("{0} already holds a log; refusing to overwrite it")]
    AlreadyExists(String),
    /// The stored log fails an integrity check (tampering, corruption, rollback).
    #[error("integrity: {0}")]
    Integrity(String),
    /// The checkpoint does not verify.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// Bad input from the caller (oversized entry, index beyond the tree …).
    #[error("{0}")]
    Input(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(StoreError),
    /// Gave up after too many lost races with other writers.
    #[error("gave up after {0} attempts: other writers kept winning")]
    Contention(u32),
}

impl From<StoreError> for LogError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { path } => LogError::Integrity(format!(
                "object {path} already exists with different content"
            )),
            StoreError::NotAStore { location, reason } => LogError::NotALog { location, reason },
            other => LogError::Store(other),
        }
    }
}

impl LogError {
    /// Whether this is an integrity failure (exit code 1 in the CLI).
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            LogError::Integrity(_)
                | LogError::CheckpointMissing { .. }
                | LogError::Checkpoint(
                    CheckpointError::BadSignature(_)
                        | CheckpointError::NotSignedByKey { .. }
                        | CheckpointError::WrongOrigin { .. }
                        | CheckpointError::Malformed(_)
                )
        )
    }
}
