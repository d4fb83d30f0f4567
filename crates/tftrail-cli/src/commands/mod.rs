//! One module per command; each has a clap `Args` struct whose doc comments are the help.

use std::path::PathBuf;

use clap::Subcommand;

use crate::error::CliError;

mod append;
mod checkpoint;
mod init;
mod key;
mod log;
mod prove;
mod show;
mod verify;
mod verify_receipt;

mod blame;
mod check_state;
mod history;
mod reindex;
mod run;

mod bootstrap;
mod recover;
mod storage;

/// Where the log is.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArg {
    /// The log's store: a directory, or s3://bucket/prefix, gs://bucket/prefix,
    /// az://container/prefix [default: $XDG_DATA_HOME/tftrail/log]
    #[arg(long, env = "TFTRAIL_STORE", value_name = "STORE")]
    pub store: Option<String>,
}

impl StoreArg {
    /// The resolved location.
    pub fn location(&self) -> String {
        crate::context::store_location(self.store.as_deref())
    }
}

/// The signing key.
#[derive(clap::Args, Debug, Clone)]
pub struct KeyArg {
    /// The log's private signing key file [default: $XDG_CONFIG_HOME/tftrail/signing.key]
    #[arg(long, env = "TFTRAIL_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

impl KeyArg {
    /// The resolved path.
    pub fn path(&self) -> PathBuf {
        crate::context::key_path(self.key.as_deref())
    }
}

/// The verifier key for commands that only read the log.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifierKeyArg {
    /// Verifier key (name+id+base64, or a file holding it) [default: derived from the signing key]
    #[arg(long = "key", value_name = "VKEY")]
    pub key: Option<String>,
}

impl VerifierKeyArg {
    /// The key given, or the one derived from the signing key.
    pub fn resolve(&self) -> Result<tftrail_core::checkpoint::VerifierKey, CliError> {
        crate::context::verifier_key(self.key.as_deref())
    }
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Create a new log and its signing key; print the verifier key.
    Init(init::Args),
    /// Append a JSON record (or JSON Lines with --batch) read from stdin.
    Append(append::Args),
    /// List records, newest first.
    Log(log::Args),
    /// Show one record.
    Show(show::Args),
    /// Verify the whole log: signature, every tile, every record and blob, and consistency
    /// with the last checkpoint verified on this machine.
    Verify(verify::Args),
    /// Write an offline receipt (C2SP tlog-proof) for record N to stdout.
    Prove(prove::Args),
    /// Check an offline receipt with nothing but the verifier key.
    VerifyReceipt(verify_receipt::Args),
    /// Print the signed checkpoint.
    Checkpoint(checkpoint::Args),
    /// Print the log's verifier key.
    Key(key::Args),
    /// Run Terraform or OpenTofu and record it: `tftrail run -- terraform apply tf.plan`.
    Run(run::Args),
    /// The last recorded change to a resource.
    Blame(blame::Args),
    /// Every recorded change to a resource.
    History(history::Args),
    /// Find changes to the Terraform state made outside tftrail (exit 4 when found).
    CheckState(check_state::Args),
    /// Rebuild the local query index from the log.
    Reindex(reindex::Args),
    /// Check that the storage behind the log is write-once (S3 Object Lock …).
    Storage(storage::Args),
    /// Copy the intact log out of a damaged store, from retained object versions.
    Recover(recover::Args),
    /// Print the Terraform configuration of a write-once audit bucket: aws, gcp or azure.
    Bootstrap(bootstrap::Args),
}

/// Runs a command; returns the exit code.
pub fn run(cmd: Command) -> Result<i32, CliError> {
    match cmd {
        Command::Init(a) => init::run(a),
        Command::Append(a) => append::run(a),
        Command::Log(a) => log::run(a),
        Command::Show(a) => show::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Prove(a) => prove::run(a),
        Command::VerifyReceipt(a) => verify_receipt::run(a),
        Command::Checkpoint(a) => checkpoint::run(a),
        Command::Key(a) => key::run(a),
        Command::Run(a) => run::run(a),
        Command::Blame(a) => blame::run(a),
        Command::History(a) => history::run(a),
        Command::CheckState(a) => check_state::run(a),
        Command::Reindex(a) => reindex::run(a),
        Command::Storage(a) => storage::run(a),
        Command::Recover(a) => recover::run(a),
        Command::Bootstrap(a) => bootstrap::run(a),
    }
}
