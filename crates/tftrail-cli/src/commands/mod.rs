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
mod quorum;
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
mod serve;
mod storage;

mod token;

mod evidence;
mod export;
mod monitor;

mod witness;

/// Options every command accepts before or after its name (`tftrail --store S log` and
/// `tftrail log --store S` are the same). The environment variables are read by
/// [`Global::location`] and [`Global::signing_key`], not by clap, so that a value from the
/// environment never shows in a usage line as if it had been typed.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Global {
    /// The log's store: a directory, or s3://bucket/prefix, gs://bucket/prefix,
    /// az://container/prefix [env: TFTRAIL_STORE] [default: $XDG_DATA_HOME/tftrail/log]
    #[arg(long, global = true, value_name = "STORE")]
    pub store: Option<String>,
    /// A tftrail server (`tftrail serve`) to read and write the log through instead of a
    /// store: https://host[:port][/base]; its credential is TFTRAIL_TOKEN [env: TFTRAIL_SERVER]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// The log's key. Commands that sign (init, append, run, key): the signing-key file
    /// [env: TFTRAIL_KEY] [default: $XDG_CONFIG_HOME/tftrail/signing.key]. Commands that read:
    /// the verifier key (name+id+base64), a file holding it, or the signing-key file [default:
    /// TFTRAIL_KEY, else the key `init` remembered for this store, else derived from the
    /// default signing key]
    #[arg(long, global = true, value_name = "KEY")]
    pub key: Option<String>,
    /// Print the result as JSON (commands with a JSON form)
    #[arg(long, global = true)]
    pub json: bool,
}

fn given(flag: &Option<String>) -> Option<&str> {
    flag.as_deref().filter(|s| !s.is_empty())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

impl Global {
    /// Refuses a store and a server named together: `--store` with `--server` or
    /// TFTRAIL_SERVER, or TFTRAIL_STORE with TFTRAIL_SERVER (`--server` overrides
    /// TFTRAIL_STORE, as a flag overrides the environment). Checked before any command runs.
    pub fn check(&self) -> Result<(), CliError> {
        let store = match (given(&self.store), env("TFTRAIL_STORE")) {
            (Some(_), _) => Some("--store"),
            (None, Some(_)) => Some("TFTRAIL_STORE"),
            _ => None,
        };
        let server = match (given(&self.server), env("TFTRAIL_SERVER")) {
            (Some(s), _) => Some(("--server", s.to_string())),
            (None, Some(s)) => Some(("TFTRAIL_SERVER", s)),
            _ => None,
        };
        if let Some((name, url)) = &server {
            if !crate::context::is_server(url) {
                return Err(CliError::usage(format!(
                    "{name} takes a tftrail server's URL (https://host[:port][/base]), not {url:?}"
                ))
                .hint("name a store with --store or TFTRAIL_STORE"));
            }
            tftrail_store::Location::parse(url)
                .map_err(|e| CliError::usage(format!("{name}: {e}")))?;
        }
        let server = server.map(|(name, _)| name);
        match (store, server) {
            (Some("TFTRAIL_STORE"), Some("--server")) | (None, _) | (_, None) => Ok(()),
            (Some(store), Some(server)) => Err(CliError::usage(format!(
                "{store} and {server} both name the log: a store, or a server, not both"
            ))
            .hint(format!(
                "drop {store} to go through the server, or {server} to use the store directly"
            ))),
        }
    }

    /// The log's location: --server, else --store, else TFTRAIL_SERVER, else TFTRAIL_STORE,
    /// else the XDG data directory. A server's location is its URL.
    pub fn location(&self) -> String {
        let server = match given(&self.server) {
            Some(s) => Some(s.to_string()),
            None if given(&self.store).is_none() => env("TFTRAIL_SERVER"),
            None => None,
        };
        let l = match server {
            Some(s) => s,
            None => {
                let env = std::env::var("TFTRAIL_STORE").ok();
                crate::context::store_location(self.store.as_deref().or(env.as_deref()))
            }
        };
        // A server's URL as the store layer writes it (lower-case, no trailing `/`), so that
        // its remembered key and index do not depend on how it was typed.
        match tftrail_store::Location::parse(&l) {
            Ok(tftrail_store::Location::Server(url)) => url,
            _ => l,
        }
    }

    /// The server's URL when the log is reached through a server (`--server`,
    /// TFTRAIL_SERVER, or an http(s):// location).
    pub fn server(&self) -> Option<String> {
        let l = self.location();
        crate::context::is_server(&l).then_some(l)
    }

    /// Refuses a server for `command`, which works on a store itself (`why` says what it
    /// does that a client of a server cannot).
    pub fn refuse_server(&self, command: &str, why: &str) -> Result<(), CliError> {
        match self.server() {
            Some(url) => Err(CliError::usage(format!(
                "`tftrail {command}` does not work through a tftrail server ({url}): {why}"
            ))
            .hint(
                "run it where the server runs, with --store naming the server's store; \
                 unset TFTRAIL_SERVER or drop --server here",
            )),
            None => Ok(()),
        }
    }

    /// The signing-key path and where it came from.
    pub fn signing_key(&self) -> (PathBuf, KeySource) {
        if let Some(k) = self.key.as_deref().filter(|k| !k.is_empty()) {
            return (PathBuf::from(k), KeySource::Flag);
        }
        if let Some(k) = std::env::var_os("TFTRAIL_KEY").filter(|k| !k.is_empty()) {
            return (PathBuf::from(k), KeySource::Env);
        }
        let p = crate::context::key_path(None);
        (p.clone(), KeySource::Default(p))
    }

    /// The signing-key path.
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key().0
    }

    /// The key that checkpoints of the store at `location` must be signed by, and where it
    /// came from: --key, TFTRAIL_KEY, the key remembered for this store by `init`, or the one
    /// derived from the default signing key.
    pub fn trusted_key(&self, location: &str) -> Result<TrustedKey, CliError> {
        crate::context::trusted_key(self.key.as_deref(), location)
    }

    /// Refuses the options that `command` has no use for, rather than ignore them.
    pub fn refuse(
        &self,
        command: &str,
        store: bool,
        key: bool,
        json: bool,
    ) -> Result<(), CliError> {
        let given = [
            (store && self.store.is_some(), "--store"),
            (store && self.server.is_some(), "--server"),
            (key && self.key.is_some(), "--key"),
            (json && self.json, "--json"),
        ];
        match given.iter().find(|(g, _)| *g) {
            Some((_, flag)) => Err(CliError::usage(format!(
                "`tftrail {command}` does not take {flag}"
            ))
            .hint(format!("see `tftrail {command} --help`"))),
            None => Ok(()),
        }
    }
}

pub use crate::context::{KeySource, TrustedKey};

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
    /// Run the team server: it holds the key, authenticates writers and serves the log.
    Serve(serve::Args),
    /// Manage the team server's tokens: create, list, revoke.
    Token(token::Args),
    /// Watch the log: verify each new checkpoint and entry, evaluate alert rules, deliver
    /// alerts to webhooks, Slack or JSON Lines.
    Monitor(monitor::Args),
    /// Write the records for a SIEM or data lake: JSON Lines that each prove, or OCSF events.
    Export(export::Args),
    /// Write an evidence bundle (records, blobs, proofs, report) that proves itself offline;
    /// `evidence verify BUNDLE` checks one.
    Evidence(evidence::Args),
    /// Run a transparency-log witness: cosign checkpoints consistent with those it saw (init, serve).
    Witness(witness::Args),
}

/// Runs a command; returns the exit code.
pub fn run(cmd: Command, g: &Global) -> Result<i32, CliError> {
    match cmd {
        Command::Init(a) => init::run(a, g),
        Command::Append(a) => append::run(a, g),
        Command::Log(a) => log::run(a, g),
        Command::Show(a) => show::run(a, g),
        Command::Verify(a) => verify::run(a, g),
        Command::Prove(a) => prove::run(a, g),
        Command::VerifyReceipt(a) => verify_receipt::run(a, g),
        Command::Checkpoint(a) => checkpoint::run(a, g),
        Command::Key(a) => key::run(a, g),
        Command::Run(a) => run::run(a, g),
        Command::Blame(a) => blame::run(a, g),
        Command::History(a) => history::run(a, g),
        Command::CheckState(a) => check_state::run(a, g),
        Command::Reindex(a) => reindex::run(a, g),
        Command::Storage(a) => storage::run(a, g),
        Command::Recover(a) => recover::run(a, g),
        Command::Bootstrap(a) => bootstrap::run(a, g),
        Command::Serve(a) => serve::run(a, g),
        Command::Token(a) => token::run(a, g),
        Command::Monitor(a) => monitor::run(a, g),
        Command::Export(a) => export::run(a, g),
        Command::Evidence(a) => evidence::run(a, g),
        Command::Witness(a) => witness::run(a, g),
    }
}
