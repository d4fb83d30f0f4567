//! `tftrail storage check`: is the store write-once storage?

use tftrail_store::worm::{self, CheckOptions, CheckReport, Finding, Status};
use tftrail_store::{Cloud, Location};

use super::Global;
use crate::error::{CliError, EXIT_FAILURE, EXIT_INTEGRITY};

/// Inspect the storage behind a log.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(clap::Subcommand)]
enum StorageCommand {
    /// Check that the store keeps what is written. S3: Object Lock in COMPLIANCE mode with a
    /// default retention of at least --min-retention-days, versioning, Block Public Access,
    /// and no bucket-policy statement that lets the public write or delete. Azure:
    /// version-level immutability on the container, no anonymous access, the checkpoint
    /// versioned and under retention (whether the policy is locked, and for how long, needs
    /// the management API: could not check). GCS: Object Retention Lock enabled, the
    /// `tftrail-retention-days` label (how long writers lock each object) of at least
    /// --min-retention-days, no bucket retention policy (it would stop the checkpoint from
    /// moving), versioning, soft delete, public access prevention, uniform access, and one
    /// sample tile Locked (needs storage.buckets.get and storage.objects.list).
    ///
    /// Each property is printed as pass, FAIL or could not check, with the reason.
    /// Exit status: 0 every property passes; 1 at least one fails (a local directory always
    /// fails: it is not write-once storage); 3 nothing fails but some property could not be
    /// checked (permission denied, unsupported). A store that cannot be reached exits 2 (no
    /// such bucket, bad location) or 3 (network, credentials), as for every command.
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The store to check [default: --store / TFTRAIL_STORE / $XDG_DATA_HOME/tftrail/log]
    #[arg(value_name = "STORE")]
    location: Option<String>,
    /// Minimum default retention, in days
    #[arg(long, value_name = "N", default_value_t = 365)]
    min_retention_days: u32,
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    match a.command {
        StorageCommand::Check(c) => check(c, g),
    }
}

fn check(a: CheckArgs, g: &Global) -> Result<i32, CliError> {
    g.refuse("storage check", false, true, false)?;
    let location = match a.location.filter(|l| !l.is_empty()) {
        Some(l) => l,
        None => {
            g.refuse_server(
                "storage check",
                "it inspects the bucket's settings, which a server does not expose",
            )?;
            g.location()
        }
    };
    let loc = Location::parse(&location)?;
    let local = matches!(loc, Location::Local(_));
    let report = match loc {
        Location::Local(_) => CheckReport {
            location: loc.to_string(),
            // Not meaningful for a directory; the JSON `cloud` field is null below.
            cloud: Cloud::S3,
            findings: vec![Finding {
                property: "write-once",
                status: Status::Fail,
                detail: "a local directory is not write-once storage: anyone with write access \
                         to it can delete or rewrite the log (use s3://, gs:// or az:// with a \
                         retention lock; see `tftrail bootstrap`)"
                    .into(),
            }],
        },
        Location::Object { .. } => worm::check(
            &location,
            &CheckOptions {
                min_retention_days: a.min_retention_days,
            },
        )?,
        Location::Server(url) => {
            return Err(CliError::usage(format!(
                "`tftrail storage check` inspects a store, not a tftrail server ({url})"
            ))
            .hint("run it where the server runs, on the store given to `tftrail serve --store`"))
        }
    };
    if g.json {
        let mut v = serde_json::to_value(&report).map_err(|e| CliError::failure(e.to_string()))?;
        if local {
            v["cloud"] = serde_json::Value::Null;
        }
        v["passed"] = report.passed().into();
        v["min_retention_days"] = a.min_retention_days.into();
        println!("{v}");
    } else {
        print!("{}", report.to_text());
    }
    let failed = report.findings.iter().any(|f| f.status == Status::Fail);
    Ok(if report.passed() {
        0
    } else if failed {
        EXIT_INTEGRITY
    } else {
        EXIT_FAILURE
    })
}
