//! `tftrail bootstrap`: the Terraform configuration of a write-once audit bucket.

use tftrail_store::bootstrap::bootstrap_config;
use tftrail_store::Cloud;

use super::Global;
use crate::error::CliError;

/// Print a Terraform configuration that creates a write-once bucket for the log.
///
/// Save it as main.tf in an empty directory, review it, `terraform init && terraform apply`,
/// then `tftrail storage check <STORE>` and `tftrail init --store <STORE>`.
#[derive(clap::Args)]
pub struct Args {
    /// Which cloud
    #[arg(value_enum)]
    cloud: Target,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum Target {
    /// S3 bucket with Object Lock (COMPLIANCE), versioning, Block Public Access
    Aws,
    /// GCS bucket with Object Retention Lock: writers lock every object they create except
    /// the checkpoint; versioning, soft delete, public access prevention
    Gcp,
    /// Azure storage account and container with version-level immutability: every blob
    /// version retained, the checkpoint still able to move
    Azure,
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("bootstrap", true, true, true)?;
    let cloud = match a.cloud {
        Target::Aws => Cloud::S3,
        Target::Gcp => Cloud::Gcs,
        Target::Azure => Cloud::Azure,
    };
    print!("{}", bootstrap_config(cloud));
    Ok(0)
}
