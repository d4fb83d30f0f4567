//! CLI errors: a message, an optional hint, and the exit code they map to.
//!
//! Exit codes (a contract for scripts): 0 success; 1 the log failed an integrity check;
//! 2 usage error or unreadable/bad input; 3 operational failure (storage, I/O, network).
//! `tftrail run` exits with Terraform's own code instead, and with codes Terraform never uses
//! for its own failures (see [`CliError::in_run`]).

use tftrail_log::LogError;
use tftrail_store::StoreError;

/// Exit code: integrity failure.
pub const EXIT_INTEGRITY: i32 = 1;
/// Exit code: usage error or bad input.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: operational failure.
pub const EXIT_FAILURE: i32 = 3;

/// `tftrail run`: the log failed an integrity check; the command did not run.
pub const EXIT_RUN_INTEGRITY: i32 = 121;
/// `tftrail run`: usage error or bad input (tftrail's options, not Terraform's).
pub const EXIT_RUN_USAGE: i32 = 122;
/// `tftrail run`: operational failure (the log cannot be written: storage, I/O, key).
pub const EXIT_RUN_FAILURE: i32 = 123;
/// `tftrail run`: the Terraform/OpenTofu program was not found (as a shell says).
pub const EXIT_RUN_NOT_FOUND: i32 = 127;

/// An error as the user sees it.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub code: i32,
    /// `error: …`
    pub message: String,
    /// `hint: …`
    pub hint: Option<String>,
}

impl CliError {
    /// A usage / bad-input error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
            hint: None,
        }
    }

    /// An integrity error (exit 1).
    pub fn integrity(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_INTEGRITY,
            message: message.into(),
            hint: None,
        }
    }

    /// An operational failure (exit 3).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_FAILURE,
            message: message.into(),
            hint: None,
        }
    }

    /// The same error as `tftrail run` reports it: Terraform exits 1 on its own errors and 2
    /// for "changes present" with -detailed-exitcode, so tftrail's own failures there take
    /// codes Terraform never uses (121 integrity, 122 usage, 123 operational).
    pub fn in_run(mut self) -> Self {
        self.code = match self.code {
            EXIT_INTEGRITY => EXIT_RUN_INTEGRITY,
            EXIT_USAGE => EXIT_RUN_USAGE,
            EXIT_FAILURE => EXIT_RUN_FAILURE,
            other => other,
        };
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<LogError> for CliError {
    fn from(e: LogError) -> Self {
        let msg = e.to_string();
        match e {
            LogError::NotALog { .. } => CliError::usage(msg)
                .hint("create a log with `tftrail init`, or point --store / TFTRAIL_STORE at an existing one"),
            LogError::AlreadyExists(_) => CliError::usage(msg)
                .hint("use another --store, or keep appending to this log"),
            LogError::Input(_) => CliError::usage(msg),
            LogError::CheckpointMissing { ref location, .. } => {
                let hint = if location.starts_with("s3://")
                    || location.starts_with("gs://")
                    || location.starts_with("az://")
                    || location.starts_with("azure://")
                {
                    format!("the bucket keeps the checkpoint's old versions: `tftrail recover --store {location} --to NEW` copies the intact log out of them")
                } else {
                    "a local directory keeps no old versions: restore `checkpoint` from a backup, or from a copy an auditor verified; `tftrail recover --to NEW` on a bucket with versions".into()
                };
                CliError::integrity(msg).hint(hint)
            }
            LogError::Store(StoreError::NotAStore { .. }) => CliError::usage(msg),
            e if e.is_integrity() => CliError::integrity(msg)
                .hint("run `tftrail verify` for a full report"),
            LogError::Checkpoint(_) => CliError::usage(msg),
            _ => CliError::failure(msg),
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::from(LogError::from(e))
    }
}
