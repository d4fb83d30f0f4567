//! `storage check`: does the bucket behind a store really keep what is written (write once,
//! read many)?
//!
//! Each property is reported as pass, fail or could-not-check, with the reason. The evaluation
//! is pure (functions of the service's API responses) and unit-tested; [`check`] fetches the
//! responses. S3 is checked live; for GCS and Azure the evaluation takes the JSON of their
//! APIs ([`evaluate_gcs`], [`evaluate_azure`]) and the live check reports could-not-check.
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

use crate::location::{Cloud, Location};
use crate::s3admin::{RawResponse, S3Admin};
use crate::StoreError;

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
            out.push_str(&format!("  {:<20} {:<16} {}\n", f.property, s, f.detail));
        }
        out
    }
}

fn finding(property: &'static str, status: Status, detail: impl Into<String>) -> Finding {
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
    fn from_response(r: &RawResponse, missing_codes: &[&str]) -> Fetched {
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

/// Extracts the text of the first `<tag>…</tag>` (S3 configuration documents are small and
/// flat; namespaces and attributes are ignored).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].trim())
}

/// Evaluates `GET ?versioning`.
pub fn evaluate_s3_versioning(v: &Fetched) -> Finding {
    const P: &str = "versioning";
    match v {
        Fetched::Body(b) => match xml_text(b, "Status") {
            Some("Enabled") => finding(P, Status::Pass, "versioning is enabled"),
            Some(s) => finding(P, Status::Fail, format!("versioning is {s}, not Enabled")),
            None => finding(P, Status::Fail, "versioning has never been enabled"),
        },
        Fetched::Missing(c) => finding(P, Status::Fail, format!("no versioning ({c})")),
        Fetched::Unreadable(why) => finding(P, Status::CouldNotCheck, why.clone()),
    }
}

/// Evaluates `GET ?object-lock`: Object Lock itself, and the default retention.
pub fn evaluate_s3_object_lock(v: &Fetched, min_days: u32) -> [Finding; 2] {
    const L: &str = "object-lock";
    const R: &str = "default-retention";
    match v {
        Fetched::Body(b) => {
            let lock = if xml_text(b, "ObjectLockEnabled") == Some("Enabled") {
                finding(L, Status::Pass, "Object Lock is enabled")
            } else {
                finding(L, Status::Fail, "Object Lock is not enabled on the bucket")
            };
            let mode = xml_text(b, "Mode");
            let days: Option<u64> =
                xml_text(b, "Days")
                    .and_then(|d| d.parse().ok())
                    .or_else(|| {
                        xml_text(b, "Years")
                            .and_then(|y| y.parse::<u64>().ok())
                            .map(|y| y * 365)
                    });
            let ret = match (mode, days) {
                (None, _) | (_, None) => finding(
                    R,
                    Status::Fail,
                    "no default retention rule: new objects are not locked",
                ),
                (Some("COMPLIANCE"), Some(d)) if d >= u64::from(min_days) => finding(
                    R,
                    Status::Pass,
                    format!("COMPLIANCE mode, {d} days (at least {min_days} required)"),
                ),
                (Some("COMPLIANCE"), Some(d)) => finding(
                    R,
                    Status::Fail,
                    format!("retention of {d} days is shorter than the required {min_days}"),
                ),
                (Some(m), Some(d)) => finding(
                    R,
                    Status::Fail,
                    format!(
                        "default retention is in {m} mode ({d} days): it can be bypassed; \
                         COMPLIANCE mode is required"
                    ),
                ),
            };
            [lock, ret]
        }
        Fetched::Missing(c) => [
            finding(L, Status::Fail, format!("Object Lock is not enabled ({c})")),
            finding(
                R,
                Status::Fail,
                "no default retention: Object Lock is not enabled",
            ),
        ],
        Fetched::Unreadable(why) => [
            finding(L, Status::CouldNotCheck, why.clone()),
            finding(R, Status::CouldNotCheck, why.clone()),
        ],
    }
}

/// Evaluates `GET ?publicAccessBlock` (bucket level).
pub fn evaluate_s3_public_access_block(v: &Fetched) -> Finding {
    const P: &str = "block-public-access";
    const FLAGS: [&str; 4] = [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    ];
    match v {
        Fetched::Body(b) => {
            let off: Vec<&str> = FLAGS
                .iter()
                .copied()
                .filter(|f| !xml_text(b, f).is_some_and(|v| v.eq_ignore_ascii_case("true")))
                .collect();
            if off.is_empty() {
                finding(
                    P,
                    Status::Pass,
                    "all four Block Public Access settings are on",
                )
            } else {
                finding(
                    P,
                    Status::Fail,
                    format!("Block Public Access not on: {}", off.join(", ")),
                )
            }
        }
        Fetched::Missing(_) => finding(
            P,
            Status::Fail,
            "the bucket has no Block Public Access configuration",
        ),
        Fetched::Unreadable(why) => finding(P, Status::CouldNotCheck, why.clone()),
    }
}

const WRITE_ACTIONS: [&str; 12] = [
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectAcl",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:DeleteBucket",
];

const RESTRICTING_CONDITION_KEYS: [&str; 11] = [
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceip",
    "aws:userid",
    "aws:username",
];

/// Case-insensitive glob with `*` and `?` (IAM action matching).
fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let s: Vec<char> = s.to_ascii_lowercase().chars().collect();
    fn rec(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len()).any(|i| rec(&p[1..], &s[i..])),
            Some('?') => !s.is_empty() && rec(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && rec(&p[1..], &s[1..]),
        }
    }
    rec(&p, &s)
}

fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn principal_is_public(p: &serde_json::Value) -> bool {
    match p {
        serde_json::Value::String(s) => s == "*",
        serde_json::Value::Object(m) => m
            .get("AWS")
            .map(|a| strings(Some(a)).iter().any(|s| s == "*"))
            .unwrap_or(false),
        _ => false,
    }
}

fn condition_restricts(c: Option<&serde_json::Value>) -> bool {
    let Some(serde_json::Value::Object(ops)) = c else {
        return false;
    };
    ops.values().any(|keys| match keys {
        serde_json::Value::Object(k) => k
            .keys()
            .any(|k| RESTRICTING_CONDITION_KEYS.contains(&k.to_ascii_lowercase().as_str())),
        _ => false,
    })
}

/// Finds statements of a bucket policy that let anyone write or delete; returns a description
/// of each (empty: none). See the module documentation for the rule.
pub fn public_write_statements(policy_json: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(policy_json).map_err(|e| format!("unreadable policy: {e}"))?;
    let stmts = match v.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(o @ serde_json::Value::Object(_)) => vec![o.clone()],
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        if s.get("Effect").and_then(|e| e.as_str()) != Some("Allow") {
            continue;
        }
        let public =
            s.get("NotPrincipal").is_some() || s.get("Principal").is_some_and(principal_is_public);
        if !public {
            continue;
        }
        let writes: Vec<String> = if s.get("NotAction").is_some() {
            vec!["NotAction (everything else)".into()]
        } else {
            strings(s.get("Action"))
                .into_iter()
                .filter(|a| WRITE_ACTIONS.iter().any(|w| glob(a, w)))
                .collect()
        };
        if writes.is_empty() || condition_restricts(s.get("Condition")) {
            continue;
        }
        let sid = s
            .get("Sid")
            .and_then(|x| x.as_str())
            .map(|x| format!("{x:?}"))
            .unwrap_or_else(|| format!("#{}", i + 1));
        out.push(format!(
            "statement {sid} allows anyone {}",
            writes.join(", ")
        ));
    }
    Ok(out)
}

/// Evaluates `GET ?policy`.
pub fn evaluate_s3_policy(v: &Fetched) -> Finding {
    const P: &str = "bucket-policy";
    match v {
        Fetched::Body(b) => match public_write_statements(b) {
            Ok(bad) if bad.is_empty() => finding(
                P,
                Status::Pass,
                "no policy statement lets the public write or delete",
            ),
            Ok(bad) => finding(
                P,
                Status::Fail,
                format!("public write access: {}", bad.join("; ")),
            ),
            Err(e) => finding(P, Status::CouldNotCheck, e),
        },
        Fetched::Missing(_) => finding(P, Status::Pass, "no bucket policy"),
        Fetched::Unreadable(why) => finding(P, Status::CouldNotCheck, why.clone()),
    }
}

/// Checks the bucket of an S3 store live.
pub fn check_s3(admin: &S3Admin, opts: &CheckOptions) -> Result<Vec<Finding>, StoreError> {
    let get = |sub: &str, missing: &[&str]| -> Result<Fetched, StoreError> {
        let r = admin.get_bucket_config(sub)?;
        if r.error_code().as_deref() == Some("NoSuchBucket") {
            return Err(StoreError::NotAStore {
                location: format!("s3://{}", admin.bucket()),
                reason: "the bucket does not exist".into(),
            });
        }
        Ok(Fetched::from_response(&r, missing))
    };
    let versioning = get("versioning", &[])?;
    let lock = get("object-lock", &["ObjectLockConfigurationNotFoundError"])?;
    let pab = get(
        "publicAccessBlock",
        &["NoSuchPublicAccessBlockConfiguration"],
    )?;
    let policy = get("policy", &["NoSuchBucketPolicy"])?;
    let mut out = vec![evaluate_s3_versioning(&versioning)];
    out.extend(evaluate_s3_object_lock(&lock, opts.min_retention_days));
    out.push(evaluate_s3_public_access_block(&pab));
    out.push(evaluate_s3_policy(&policy));
    Ok(out)
}

/// Evaluates a GCS bucket resource (`GET storage/v1/b/BUCKET` JSON).
///
/// GCS keeps objects through a locked retention policy rather than versions: versioning
/// passes when it is enabled or when a locked retention policy makes it unnecessary (the two
/// cannot be combined on GCS).
pub fn evaluate_gcs(bucket_json: &str, min_days: u32) -> Vec<Finding> {
    let v: serde_json::Value = match serde_json::from_str(bucket_json) {
        Ok(v) => v,
        Err(e) => {
            return vec![finding(
                "bucket",
                Status::CouldNotCheck,
                format!("unreadable bucket resource: {e}"),
            )]
        }
    };
    let mut out = Vec::new();
    let rp = v.get("retentionPolicy");
    let secs: Option<u64> = rp
        .and_then(|r| r.get("retentionPeriod"))
        .and_then(|p| {
            p.as_str()
                .map(str::to_string)
                .or_else(|| p.as_u64().map(|n| n.to_string()))
        })
        .and_then(|s| s.parse().ok());
    let locked = rp
        .and_then(|r| r.get("isLocked"))
        .and_then(|l| l.as_bool())
        .unwrap_or(false);
    let need = u64::from(min_days) * 86_400;
    out.push(match secs {
        None => finding("retention-policy", Status::Fail, "no retention policy"),
        Some(s) if s < need => finding(
            "retention-policy",
            Status::Fail,
            format!(
                "retention of {} days is shorter than the required {min_days}",
                s / 86_400
            ),
        ),
        Some(s) => finding(
            "retention-policy",
            Status::Pass,
            format!("retention of {} days", s / 86_400),
        ),
    });
    out.push(if locked {
        finding(
            "bucket-lock",
            Status::Pass,
            "the retention policy is locked",
        )
    } else {
        finding(
            "bucket-lock",
            Status::Fail,
            "the retention policy is not locked: it can be shortened or removed",
        )
    });
    let versioning = v
        .pointer("/versioning/enabled")
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    out.push(match (versioning, locked && secs.is_some()) {
        (true, _) => finding("versioning", Status::Pass, "versioning is enabled"),
        (false, true) => finding(
            "versioning",
            Status::Pass,
            "not needed: the locked retention policy keeps every object",
        ),
        (false, false) => finding(
            "versioning",
            Status::Fail,
            "neither versioning nor a locked retention policy keeps overwritten objects",
        ),
    });
    let pap = v
        .pointer("/iamConfiguration/publicAccessPrevention")
        .and_then(|s| s.as_str())
        .unwrap_or("inherited");
    out.push(if pap == "enforced" {
        finding("public-access-prevention", Status::Pass, "enforced")
    } else {
        finding(
            "public-access-prevention",
            Status::Fail,
            format!("public access prevention is {pap:?}, not \"enforced\""),
        )
    });
    let ubla = v
        .pointer("/iamConfiguration/uniformBucketLevelAccess/enabled")
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    out.push(if ubla {
        finding(
            "uniform-access",
            Status::Pass,
            "uniform bucket-level access is on",
        )
    } else {
        finding(
            "uniform-access",
            Status::Fail,
            "uniform bucket-level access is off: object ACLs can grant access",
        )
    });
    out
}

/// Evaluates an Azure container (ARM `…/blobServices/default/containers/NAME` JSON, with
/// `$expand=immutabilityPolicy` or a separate `immutabilityPolicies/default` merged in) and
/// the blob service (`…/blobServices/default` JSON).
pub fn evaluate_azure(
    container_json: &str,
    blob_service_json: &str,
    min_days: u32,
) -> Vec<Finding> {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s);
    let (c, b) = match (parse(container_json), parse(blob_service_json)) {
        (Ok(c), Ok(b)) => (c, b),
        (Err(e), _) | (_, Err(e)) => {
            return vec![finding(
                "container",
                Status::CouldNotCheck,
                format!("unreadable response: {e}"),
            )]
        }
    };
    let mut out = Vec::new();
    let pol = c
        .pointer("/properties/immutabilityPolicy/properties")
        .or_else(|| c.pointer("/properties/immutabilityPolicy"));
    let state = pol.and_then(|p| p.get("state")).and_then(|s| s.as_str());
    let days = pol
        .and_then(|p| p.get("immutabilityPeriodSinceCreationInDays"))
        .and_then(|d| d.as_u64());
    out.push(match (state, days) {
        (None, _) | (_, None) => finding(
            "immutability-policy",
            Status::Fail,
            "no time-based retention (immutability) policy on the container",
        ),
        (Some("Locked"), Some(d)) if d >= u64::from(min_days) => finding(
            "immutability-policy",
            Status::Pass,
            format!("locked, {d} days"),
        ),
        (Some("Locked"), Some(d)) => finding(
            "immutability-policy",
            Status::Fail,
            format!("retention of {d} days is shorter than the required {min_days}"),
        ),
        (Some(s), Some(d)) => finding(
            "immutability-policy",
            Status::Fail,
            format!("the policy ({d} days) is {s}, not Locked: it can be removed"),
        ),
    });
    let versioning = b
        .pointer("/properties/isVersioningEnabled")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    out.push(if versioning {
        finding("versioning", Status::Pass, "blob versioning is enabled")
    } else {
        finding("versioning", Status::Fail, "blob versioning is off")
    });
    let public = c
        .pointer("/properties/publicAccess")
        .and_then(|v| v.as_str())
        .unwrap_or("None");
    out.push(if public == "None" {
        finding("public-access", Status::Pass, "no anonymous access")
    } else {
        finding(
            "public-access",
            Status::Fail,
            format!("anonymous access level is {public}"),
        )
    });
    out
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
        Cloud::Gcs => vec![finding(
            "bucket",
            Status::CouldNotCheck,
            "live GCS check not implemented yet: retention policy, bucket lock, public access \
             prevention and uniform access are evaluated from the bucket resource",
        )],
        Cloud::Azure => vec![finding(
            "container",
            Status::CouldNotCheck,
            "live Azure check not implemented yet: it needs the management API (subscription, \
             resource group) for the immutability policy and versioning",
        )],
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

    fn st(f: &Finding) -> Status {
        f.status
    }

    #[test]
    fn s3_versioning() {
        let on = Fetched::Body(
            "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>".into(),
        );
        assert_eq!(st(&evaluate_s3_versioning(&on)), Status::Pass);
        let susp = Fetched::Body(
            "<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>".into(),
        );
        assert!(evaluate_s3_versioning(&susp).detail.contains("Suspended"));
        let never = Fetched::Body("<VersioningConfiguration/>".into());
        assert_eq!(st(&evaluate_s3_versioning(&never)), Status::Fail);
        let denied = Fetched::Unreadable("permission denied (AccessDenied)".into());
        assert_eq!(st(&evaluate_s3_versioning(&denied)), Status::CouldNotCheck);
    }

    fn lock(mode: &str, unit: &str, n: u32) -> Fetched {
        Fetched::Body(format!(
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
             <DefaultRetention><Mode>{mode}</Mode><{unit}>{n}</{unit}></DefaultRetention>\
             </Rule></ObjectLockConfiguration>"
        ))
    }

    #[test]
    fn s3_object_lock() {
        let [l, r] = evaluate_s3_object_lock(&lock("COMPLIANCE", "Days", 365), 365);
        assert_eq!((l.status, r.status), (Status::Pass, Status::Pass));
        let [_, r] = evaluate_s3_object_lock(&lock("COMPLIANCE", "Years", 1), 365);
        assert_eq!(r.status, Status::Pass);
        let [_, r] = evaluate_s3_object_lock(&lock("COMPLIANCE", "Days", 30), 365);
        assert!(
            r.status == Status::Fail && r.detail.contains("shorter"),
            "{r:?}"
        );
        let [_, r] = evaluate_s3_object_lock(&lock("GOVERNANCE", "Days", 400), 365);
        assert!(
            r.status == Status::Fail && r.detail.contains("GOVERNANCE"),
            "{r:?}"
        );
        let no_rule = Fetched::Body(
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>".into(),
        );
        let [l, r] = evaluate_s3_object_lock(&no_rule, 365);
        assert_eq!((l.status, r.status), (Status::Pass, Status::Fail));
        let missing = Fetched::Missing("ObjectLockConfigurationNotFoundError".into());
        let [l, _] = evaluate_s3_object_lock(&missing, 365);
        assert!(l.status == Status::Fail && l.detail.contains("not enabled"));
    }

    #[test]
    fn s3_public_access_block() {
        let all = Fetched::Body("<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>".into());
        assert_eq!(st(&evaluate_s3_public_access_block(&all)), Status::Pass);
        let some = Fetched::Body("<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>".into());
        let f = evaluate_s3_public_access_block(&some);
        assert!(f.status == Status::Fail && f.detail.contains("IgnorePublicAcls"));
        let none = Fetched::Missing("NoSuchPublicAccessBlockConfiguration".into());
        assert_eq!(st(&evaluate_s3_public_access_block(&none)), Status::Fail);
    }

    #[test]
    fn s3_policy_rules() {
        let public_put = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Anyone","Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        assert_eq!(public_write_statements(public_put).unwrap().len(), 1);
        let aws_star = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject","s3:Put*"],"Resource":"*"}}"#;
        assert!(public_write_statements(aws_star).unwrap()[0].contains("s3:Put*"));
        for a in ["s3:*", "*", "s3:Delete*", "s3:*Object"] {
            let p =
                format!(r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"{a}"}}]}}"#);
            assert_eq!(public_write_statements(&p).unwrap().len(), 1, "{a}");
        }
        let read_only =
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#;
        assert!(public_write_statements(read_only).unwrap().is_empty());
        let deny = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
        assert!(public_write_statements(deny).unwrap().is_empty());
        let vpc = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}]}"#;
        assert!(public_write_statements(vpc).unwrap().is_empty());
        let org = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:PutObject","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}]}"#;
        assert!(public_write_statements(org).unwrap().is_empty());
        let tls_only = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;
        assert_eq!(public_write_statements(tls_only).unwrap().len(), 1);
        let role = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/w"},"Action":"s3:PutObject"}]}"#;
        assert!(public_write_statements(role).unwrap().is_empty());
        let not_action =
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"s3:GetObject"}]}"#;
        assert_eq!(public_write_statements(not_action).unwrap().len(), 1);
        assert_eq!(
            evaluate_s3_policy(&Fetched::Missing("NoSuchBucketPolicy".into())).status,
            Status::Pass
        );
        assert_eq!(
            evaluate_s3_policy(&Fetched::Body("{".into())).status,
            Status::CouldNotCheck
        );
    }

    #[test]
    fn gcs_evaluation() {
        let good = r#"{"name":"b","retentionPolicy":{"retentionPeriod":"31536000","effectiveTime":"2026-01-01T00:00:00Z","isLocked":true},
            "iamConfiguration":{"uniformBucketLevelAccess":{"enabled":true},"publicAccessPrevention":"enforced"}}"#;
        let f = evaluate_gcs(good, 365);
        assert!(f.iter().all(|f| f.status == Status::Pass), "{f:?}");
        let bad = r#"{"name":"b","retentionPolicy":{"retentionPeriod":"86400"},"versioning":{"enabled":false},
            "iamConfiguration":{"uniformBucketLevelAccess":{"enabled":false},"publicAccessPrevention":"inherited"}}"#;
        let f = evaluate_gcs(bad, 365);
        let fails: Vec<_> = f
            .iter()
            .filter(|f| f.status == Status::Fail)
            .map(|f| f.property)
            .collect();
        assert_eq!(
            fails,
            [
                "retention-policy",
                "bucket-lock",
                "versioning",
                "public-access-prevention",
                "uniform-access"
            ]
        );
        assert_eq!(evaluate_gcs("nope", 1)[0].status, Status::CouldNotCheck);
    }

    #[test]
    fn azure_evaluation() {
        let c = r#"{"name":"c","properties":{"publicAccess":"None","immutabilityPolicy":{"properties":{"immutabilityPeriodSinceCreationInDays":400,"state":"Locked","allowProtectedAppendWrites":false}}}}"#;
        let b = r#"{"properties":{"isVersioningEnabled":true}}"#;
        let f = evaluate_azure(c, b, 365);
        assert!(f.iter().all(|f| f.status == Status::Pass), "{f:?}");
        let unlocked = r#"{"properties":{"publicAccess":"Container","immutabilityPolicy":{"properties":{"immutabilityPeriodSinceCreationInDays":400,"state":"Unlocked"}}}}"#;
        let f = evaluate_azure(unlocked, "{}", 365);
        assert!(f[0].detail.contains("Unlocked"));
        assert!(f.iter().all(|f| f.status == Status::Fail), "{f:?}");
        let short = r#"{"properties":{"immutabilityPolicy":{"properties":{"immutabilityPeriodSinceCreationInDays":7,"state":"Locked"}}}}"#;
        assert!(evaluate_azure(short, b, 365)[0].detail.contains("shorter"));
    }

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
