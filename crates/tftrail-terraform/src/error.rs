//! The crate's error type: one structured enum with a user-facing message and a hint.

use std::fmt;

/// An error reported by a [`crate::Sink`]: the record could not be stored.
#[derive(Debug)]
pub struct SinkError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SinkError {
    /// A sink error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A sink error wrapping an underlying cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Everything that can go wrong in this crate.
///
/// `Display` is the one-line user-facing message; [`Error::hint`] adds what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No command was given after `--`.
    #[error("no command given")]
    EmptyCommand,
    /// The command is not Terraform or OpenTofu.
    #[error("`{program}` is not Terraform or OpenTofu")]
    NotTerraform {
        /// The program as given.
        program: String,
    },
    /// The tool binary could not be found.
    #[error("cannot find the program `{program}`")]
    ToolNotFound {
        /// The program as given.
        program: String,
    },
    /// The tool could not be started.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// The program as given.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A helper invocation (`version -json`, `show -json`, `state pull`) failed.
    #[error("`{command}` failed with exit code {code:?}: {stderr}")]
    ToolFailed {
        /// The helper command line (no secrets: helper commands carry none).
        command: String,
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The first part of its standard error.
        stderr: String,
    },
    /// `terraform show -json` output (or a plan file) could not be understood.
    #[error("cannot read the plan: {0}")]
    Plan(String),
    /// A state file could not be understood.
    #[error("cannot read the state: {0}")]
    State(String),
    /// The intent record could not be stored, so the command was not run.
    #[error("the intent record could not be stored, so `{operation}` was NOT run: {source}")]
    IntentNotStored {
        /// The operation that was refused (`apply`, `destroy`, ...).
        operation: String,
        /// The sink's error.
        source: SinkError,
    },
    /// The command ran but its record could not be stored.
    #[error("{tool} exited with code {exit_code} but its record could not be stored: {source}")]
    RecordNotStored {
        /// Tool name.
        tool: String,
        /// The tool's exit code (the CLI may still want to return it).
        exit_code: i32,
        /// Index of the intent record, if one was stored.
        intent_index: Option<u64>,
        /// The sink's error.
        source: SinkError,
    },
    /// An I/O error on a local file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// A hint for the user, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::EmptyCommand => "use `tftrail run -- terraform <args...>`".into(),
            Error::NotTerraform { .. } => {
                "tftrail records Terraform and OpenTofu runs only: `tftrail run -- terraform plan` or `tftrail run -- tofu apply`".into()
            }
            Error::ToolNotFound { .. } => {
                "install Terraform or OpenTofu, put it on PATH, or give its full path".into()
            }
            Error::Spawn { .. } => "check that the program is executable".into(),
            Error::ToolFailed { .. } => return None,
            Error::Plan(_) => {
                "the plan file may be damaged or from another Terraform version; create it again with `terraform plan -out=FILE`".into()
            }
            Error::State(_) => "the state may be damaged or encrypted".into(),
            Error::IntentNotStored { .. } => {
                "fix the audit log, or pass --fail-open to run anyway (the run is then recorded as unaudited at start)".into()
            }
            Error::RecordNotStored { .. } => {
                "the command did run; check the audit log and record this run manually".into()
            }
            Error::Io { .. } => return None,
        })
    }

    /// The exit code of the tool, when the error happened after the tool ran.
    pub fn tool_exit_code(&self) -> Option<i32> {
        match self {
            Error::RecordNotStored { exit_code, .. } => Some(*exit_code),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
