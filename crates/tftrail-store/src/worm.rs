//! `storage check`: does the bucket behind a store really keep what is written (write once,
//! read many)?
//!
//! Each property is reported as pass, fail or could-not-check, with the reason. The evaluation
//! is pure (functions of the service's API responses) and unit-tested; [`check`] fetches the
//! responses. S3 is checked live. Azure is checked live through the data plane with the
//! store's own credentials ([`evaluate_azure_data_plane`]: version-level immutability, the
//! checkpoint's retention and version id, anonymous access); the management-plane view
//! (policy state and period, [`evaluate_azure`]) needs a subscription and resource group and
//! is reported as could-not-check unless the checkpoint's own retention shows it. GCS is
//! checked live through the JSON API: the bucket resource ([`evaluate_gcs`]) and one sample
//! tile's retention ([`evaluate_gcs_sample`]).
//!
//! Bucket-policy rule (S3): a statement fails the check when it has `Effect: Allow`, a public
//! principal (`"*"`, `{"AWS": "*"}`, or any `NotPrincipal`), an action that matches a write or
//! delete action (`s3:PutObject`, `s3:DeleteObject*`, `s3:Put*`, `s3:*`, `*`, or any
//! `NotAction`), and no condition that limits who can call: `aws:SourceVpc`,
//! `aws:SourceVpce`, `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`, `aws:PrincipalAccount`,
//! `aws:PrincipalArn`, `aws:SourceAccount`, `aws:SourceArn`, `aws:SourceIp`, `aws:userid`,
//! `aws:username`. Conditions such as `aws:SecureTransport` or `s3:x-amz-acl` do not make a
//! statement private. Account-level Block Public Access is not consulted.

use serde::Serialize;

use crate::connector::RawResponse;
use crate::location::{Cloud, Location};
use crate::s3::admin::S3Admin;
use crate::StoreError;

use crate::azure::worm::check_azure;
pub use crate::azure::worm::{evaluate_azure, evaluate_azure_data_plane, Headers};
use crate::gcs::worm::check_gcs;
pub use crate::gcs::worm::{evaluate_gcs, evaluate_gcs_sample};
pub use crate::s3::worm::{
    check_s3, evaluate_s3_object_lock, evaluate_s3_policy, evaluate_s3_public_access_block,
    evaluate_s3_versioning, public_write_statements,
};

/// Outcome of one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The property holds.
    Pass,
    /// The property does not hold.
    Fail,
    /// The property could not be read (permission denied, unsupported …).
    CouldNotCheck,
}

/// One checked property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier (`versioning`, `object-lock`, `default-retention`,
    /// `block-public-access`, `bucket-policy`, `retention-policy`, …).
    pub property: &'static str,
    /// Outcome.
    pub status: Status,
    /// Why, in words for the user.
    pub detail: String,
}

/// What the check requires.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Minimum default retention in days (COMPLIANCE mode on S3).
    pub min_retention_days: u32,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            min_retention_days: 365,
        }
    }
}

/// The result of a storage check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The location checked.
    pub location: String,
    /// Which cloud.
    pub cloud: Cloud,
    /// One finding per property.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Whether every property passed.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.status == Status::Pass)
    }

    /// The finding for one property.
    pub fn finding(&self, property: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.property == property)
    }

    /// Plain-text rendering, one line per property.
    pub fn to_text(&self) -> String {
        let mut out = format!("storage check {}\n", self.location);
        for f in &self.findings {
            let s = match f.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::CouldNotCheck => "could not check",
            };
            out.push_str(&format!("  {:<26} {:<16} {}\n", f.property, s, f.detail));
        }
        out
    }
}

pub(crate) fn finding(
    property: &'static str,
    status: Status,
    detail: impl Into<String>,
) -> Finding {
    Finding {
        property,
        status,
        detail: detail.into(),
    }
}

/// A fetched bucket sub-resource, as the evaluation sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// 2xx with this body.
    Body(String),
    /// The service says the configuration does not exist (its error code).
    Missing(String),
    /// Could not read it (permission denied, error …): the reason.
    Unreadable(String),
}

impl Fetched {
    pub(crate) fn from_response(r: &RawResponse, missing_codes: &[&str]) -> Fetched {
        if (200..300).contains(&r.status) {
            return Fetched::Body(String::from_utf8_lossy(&r.body).into_owned());
        }
        let code = r.error_code().unwrap_or_default();
        if missing_codes.contains(&code.as_str()) {
            return Fetched::Missing(code);
        }
        let why = match r.status {
            403 => format!("permission denied ({code})"),
            _ => format!("HTTP {} {code}", r.status),
        };
        Fetched::Unreadable(why)
    }
}

/// Runs the storage check on a store location.
pub fn check(location: &str, opts: &CheckOptions) -> Result<CheckReport, StoreError> {
    let loc = Location::parse(location)?;
    let Location::Object { cloud, .. } = &loc else {
        return Err(StoreError::NotAStore {
            location: location.to_string(),
            reason: "storage check applies to object storage (s3://, gs://, az://); a local \
                     directory has no write-once guarantee"
                .into(),
        });
    };
    let findings = match cloud {
        Cloud::S3 => check_s3(&S3Admin::for_location(location)?, opts)?,
        Cloud::Gcs => check_gcs(location, opts)?,
        Cloud::Azure => check_azure(location, opts)?,
    };
    Ok(CheckReport {
        location: loc.to_string(),
        cloud: *cloud,
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_rendering() {
        let r = CheckReport {
            location: "s3://b/p".into(),
            cloud: Cloud::S3,
            findings: vec![
                finding("versioning", Status::Pass, "ok"),
                finding("bucket-policy", Status::CouldNotCheck, "permission denied"),
            ],
        };
        assert!(!r.passed());
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["findings"][1]["status"], "could-not-check");
        assert_eq!(j["cloud"], "s3");
        assert!(r.to_text().contains("could not check"));
    }

    #[test]
    fn local_is_not_checkable() {
        assert!(check("/tmp", &CheckOptions::default()).is_err());
    }
}
