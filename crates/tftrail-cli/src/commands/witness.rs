//! `tftrail witness init|serve`

use std::path::{Path, PathBuf};

use tftrail_core::checkpoint::VerifierKey;
use tftrail_core::policy::Policy;
use tftrail_witness::state::{self, StateDir};
use tftrail_witness::{Witness, WitnessError};

use super::Global;
use crate::context;
use crate::error::CliError;

/// Run a transparency-log witness (C2SP tlog-witness): it cosigns a log's checkpoint only when
/// it is consistent with every checkpoint of that log it cosigned before, so a log cannot show
/// one history to some and another to others, or roll back, without the witness refusing.
/// It works for any C2SP log whose verifier key it is given, not only tftrail's.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Create the witness key (mode 0600, never overwritten); print its verifier key.
    ///
    /// Example: tftrail witness init --origin witness.example.com/w1
    Init(InitArgs),
    /// Answer POST /add-checkpoint for the given logs; the state (the latest cosigned
    /// checkpoint per log) is kept in the directory and survives restarts.
    ///
    /// Example: tftrail witness serve --listen 0.0.0.0:7380 --log "$(tftrail key)"
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct InitArgs {
    /// The witness name (its key name), e.g. witness.example.com/w1
    #[arg(long, value_name = "NAME")]
    origin: String,
    /// The witness directory (key and state) [default: $XDG_DATA_HOME/tftrail/witness]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7380")]
    listen: String,
    /// A log's verifier key (name+id+base64, or a file holding it); repeatable; the key name
    /// is the log's origin
    #[arg(long = "log", value_name = "VKEY")]
    logs: Vec<String>,
    /// A C2SP tlog-policy file whose `log` lines are the logs to witness
    #[arg(long, value_name = "FILE")]
    log_policy: Option<PathBuf>,
    /// The witness directory (key and state) [default: $XDG_DATA_HOME/tftrail/witness]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn default_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| {
                Path::new(&std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
                    .join(".local/share")
            });
        base.join("tftrail/witness")
    })
}

fn cli_err(e: WitnessError) -> CliError {
    match e {
        WitnessError::Config(m) => CliError::usage(m),
        e => CliError::failure(e.to_string()),
    }
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("witness", true, true, true)?;
    match a.command {
        Sub::Init(a) => {
            let dir = default_dir(a.dir);
            let key = state::init_key(&dir, &a.origin).map_err(|e| match e {
                WitnessError::Config(m) if m.contains("refusing to overwrite") => {
                    CliError::usage(m).hint("pass --dir with a new directory for a new witness")
                }
                e => cli_err(e),
            })?;
            eprintln!(
                "created witness {} in {}",
                key.name(),
                dir.join(state::KEY_FILE).display()
            );
            eprintln!("verifier key (give it to the logs and their verifiers):");
            println!("{}", key.verifier_key());
            Ok(0)
        }
        Sub::Serve(a) => {
            let dir = default_dir(a.dir);
            let mut logs: Vec<VerifierKey> = Vec::new();
            for l in &a.logs {
                logs.push(context::verifier_key(l)?);
            }
            if let Some(p) = &a.log_policy {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))?;
                let policy = Policy::parse(&text)
                    .map_err(|e| CliError::usage(format!("{}: {e}", p.display())))?;
                if policy.logs().is_empty() {
                    return Err(CliError::usage(format!(
                        "{} has no `log` lines: the witness would have nothing to cosign",
                        p.display()
                    )));
                }
                logs.extend(policy.logs().iter().map(|l| l.verifier.clone()));
            }
            if logs.is_empty() {
                return Err(CliError::usage("no logs to witness")
                    .hint("pass --log VKEY (the log's verifier key, e.g. from `tftrail key`) or --log-policy FILE"));
            }
            let key = state::load_key(&dir).map_err(cli_err)?;
            let st = StateDir::open(&dir).map_err(cli_err)?;
            let w = Witness::new(key, logs, st).map_err(cli_err)?;
            tftrail_witness::run(w, &a.listen).map_err(cli_err)?;
            Ok(0)
        }
    }
}
