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

use crate::location::{Cloud, Location};
use crate::s3::admin::{RawResponse, S3Admin};
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
            out.push_str(&format!("  {:<26} {:<16} {}\n", f.property, s, f.detail));
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
/// tftrail replaces `checkpoint` on every append and creates every other object once, so what
/// keeps the log on GCS is Object Retention Lock: object retention enabled on the bucket, and
/// the label `tftrail-retention-days` telling writers for how many days to lock each object
/// they create (Locked mode: it can be extended, never shortened or removed). The checkpoint
/// carries no retention: versioning keeps its replaced versions, soft delete its deleted ones.
/// A bucket retention policy (Bucket Lock) refuses to replace the checkpoint, so it fails the
/// `checkpoint` property, locked or not.
pub fn evaluate_gcs(bucket_json: &str, min_days: u32) -> Vec<Finding> {
    use crate::object::{gcs_label_days, gcs_object_retention_enabled, GCS_RETENTION_LABEL};
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
    const OR: &str = "object-retention";
    out.push(if gcs_object_retention_enabled(&v) {
        finding(OR, Status::Pass, "Object Retention Lock is enabled")
    } else {
        finding(
            OR,
            Status::Fail,
            "object retention (Object Retention Lock) is not enabled: objects can be replaced \
             and deleted (enable_object_retention at bucket creation; see `tftrail bootstrap gcp`)",
        )
    });
    const RD: &str = "retention-days";
    out.push(match gcs_label_days(&v) {
        None => finding(
            RD,
            Status::Fail,
            format!("no {GCS_RETENTION_LABEL} label: writers create objects without retention"),
        ),
        Some(Err(why)) => finding(RD, Status::Fail, why),
        Some(Ok(d)) if d < min_days => finding(
            RD,
            Status::Fail,
            format!(
                "writers lock objects for {d} days ({GCS_RETENTION_LABEL}), shorter than the \
                 required {min_days}"
            ),
        ),
        Some(Ok(d)) => finding(
            RD,
            Status::Pass,
            format!(
                "writers lock each new object for {d} days ({GCS_RETENTION_LABEL}; at least \
                 {min_days} required)"
            ),
        ),
    });
    let policy_days: Option<u64> = v
        .pointer("/retentionPolicy/retentionPeriod")
        .and_then(|p| {
            p.as_str()
                .map(str::to_string)
                .or_else(|| p.as_u64().map(|n| n.to_string()))
        })
        .and_then(|s| s.parse::<u64>().ok())
        .map(|secs| secs / 86_400);
    out.push(match policy_days {
        Some(d) => finding(
            "checkpoint",
            Status::Fail,
            format!(
                "the bucket retention policy ({d} days) refuses to replace `checkpoint`: every \
                 append fails, so the bucket can only keep a log that no longer grows"
            ),
        ),
        None => finding(
            "checkpoint",
            Status::Pass,
            "no bucket retention policy stops the checkpoint from moving",
        ),
    });
    let versioning = v
        .pointer("/versioning/enabled")
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    out.push(if versioning {
        finding(
            "versioning",
            Status::Pass,
            "versioning is enabled: replaced checkpoints stay as noncurrent versions",
        )
    } else {
        finding(
            "versioning",
            Status::Fail,
            "versioning is off: a replaced or deleted checkpoint keeps no old version",
        )
    });
    let soft_delete_secs = v
        .pointer("/softDeletePolicy/retentionDurationSeconds")
        .and_then(|p| {
            p.as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .or_else(|| p.as_u64())
        })
        .unwrap_or(0);
    out.push(if soft_delete_secs > 0 {
        finding(
            "soft-delete",
            Status::Pass,
            format!(
                "deleted objects stay restorable for {} days",
                soft_delete_secs / 86_400
            ),
        )
    } else {
        finding(
            "soft-delete",
            Status::Fail,
            "soft delete is off: a deleted checkpoint version cannot be restored",
        )
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

/// Evaluates one sample log object of a GCS store: a JSON-API object listing
/// (`GET storage/v1/b/B/o?prefix=<prefix>/tile/&maxResults=1`), whose first item should carry
/// a Locked retention of at least `min_days` after its creation. `Err(reason)`: the listing
/// could not be read.
pub fn evaluate_gcs_sample(listing: Result<&str, &str>, min_days: u32) -> Finding {
    use crate::object::parse_rfc3339;
    const P: &str = "sample-object";
    let body = match listing {
        Ok(b) => b,
        Err(why) => return finding(P, Status::CouldNotCheck, why.to_string()),
    };
    let v: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            return finding(
                P,
                Status::CouldNotCheck,
                format!("unreadable object listing: {e}"),
            )
        }
    };
    let Some(item) = v.pointer("/items/0") else {
        return finding(
            P,
            Status::CouldNotCheck,
            "no tile yet: nothing to sample (append a record, then check again)",
        );
    };
    let name = item.get("name").and_then(|n| n.as_str()).unwrap_or("?");
    let mode = item.pointer("/retention/mode").and_then(|m| m.as_str());
    let until_text = item
        .pointer("/retention/retainUntilTime")
        .and_then(|t| t.as_str())
        .unwrap_or("");
    let until = parse_rfc3339(until_text);
    let created = item
        .get("timeCreated")
        .and_then(|t| t.as_str())
        .and_then(parse_rfc3339);
    match (mode, until, created) {
        (None, _, _) => finding(
            P,
            Status::Fail,
            format!(
                "{name} carries no retention: it was created before the bucket had object \
                 retention and the label, or not by tftrail"
            ),
        ),
        (Some("Locked"), Some(u), Some(c)) => {
            // Rounded: the writer's clock and GCS's may differ by a few seconds.
            let days = (u - c + 43_200).div_euclid(86_400);
            if days >= i64::from(min_days) {
                finding(
                    P,
                    Status::Pass,
                    format!("{name} is Locked until {until_text} ({days} days after creation)"),
                )
            } else {
                finding(
                    P,
                    Status::Fail,
                    format!(
                        "{name} is Locked for {days} days only, shorter than the required \
                         {min_days}"
                    ),
                )
            }
        }
        (Some("Locked"), _, _) => finding(
            P,
            Status::CouldNotCheck,
            format!("{name} is Locked, but its retain-until or creation time is unreadable"),
        ),
        (Some(m), _, _) => finding(
            P,
            Status::Fail,
            format!(
                "{name} has a retention in mode {m}, not Locked: it can be shortened or removed"
            ),
        ),
    }
}

/// Evaluates Azure's management-plane (ARM) view of a store for version-level immutability:
/// the storage account (`Microsoft.Storage/storageAccounts/NAME`), the container
/// (`…/blobServices/default/containers/NAME`, with its `immutabilityPolicies/default` merged in
/// as `properties.immutabilityPolicy`, as `$expand=immutabilityPolicy` does) and the blob service
/// (`…/blobServices/default`).
///
/// tftrail replaces `checkpoint` on every append, so what keeps the log is version-level
/// immutability (`immutableStorageWithVersioning` on the account or the container, which needs
/// blob versioning) with a Locked default time-based retention policy: each overwrite creates
/// a new version and every version is retained. A container-level policy *without* version-level
/// immutability refuses to overwrite the checkpoint, so it fails here even when Locked.
/// The container's default policy, when it has one, takes precedence over the account's.
pub fn evaluate_azure(
    account_json: &str,
    container_json: &str,
    blob_service_json: &str,
    min_days: u32,
) -> Vec<Finding> {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s);
    let (a, c, b) = match (
        parse(account_json),
        parse(container_json),
        parse(blob_service_json),
    ) {
        (Ok(a), Ok(c), Ok(b)) => (a, c, b),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return vec![finding(
                "container",
                Status::CouldNotCheck,
                format!("unreadable response: {e}"),
            )]
        }
    };
    let flag = |v: &serde_json::Value, p: &str| v.pointer(p).and_then(|x| x.as_bool());
    let account_vlw = flag(&a, "/properties/immutableStorageWithVersioning/enabled") == Some(true);
    let container_vlw =
        flag(&c, "/properties/immutableStorageWithVersioning/enabled") == Some(true);
    let vlw = account_vlw || container_vlw;
    let container_pol = c
        .pointer("/properties/immutabilityPolicy/properties")
        .or_else(|| c.pointer("/properties/immutabilityPolicy"))
        .filter(|p| p.get("immutabilityPeriodSinceCreationInDays").is_some());
    let account_pol = a.pointer("/properties/immutableStorageWithVersioning/immutabilityPolicy");
    let mut out = Vec::new();
    out.push(match (vlw, container_pol.is_some()) {
        (true, _) => finding(
            "version-level-immutability",
            Status::Pass,
            if account_vlw {
                "enabled on the storage account"
            } else {
                "enabled on the container"
            },
        ),
        (false, true) => finding(
            "version-level-immutability",
            Status::Fail,
            "the container has a container-level retention policy without version-level \
             immutability: it refuses to overwrite the checkpoint, so the log cannot move \
             (see `tftrail bootstrap azure`)",
        ),
        (false, false) => finding(
            "version-level-immutability",
            Status::Fail,
            "version-level immutability (immutable storage with versioning) is not enabled",
        ),
    });
    let (pol, scope) = match (container_pol, account_pol) {
        (Some(p), _) => (Some(p), "container"),
        (None, Some(p)) => (Some(p), "account"),
        (None, None) => (None, ""),
    };
    let state = pol.and_then(|p| p.get("state")).and_then(|s| s.as_str());
    let days = pol
        .and_then(|p| p.get("immutabilityPeriodSinceCreationInDays"))
        .and_then(|d| d.as_u64());
    const R: &str = "retention-policy";
    out.push(match (state, days) {
        (None, _) | (_, None) => finding(
            R,
            Status::Fail,
            "no default time-based retention policy on the account or the container",
        ),
        (Some("Locked"), Some(d)) if d >= u64::from(min_days) => finding(
            R,
            Status::Pass,
            format!("{scope} default policy locked, {d} days"),
        ),
        (Some("Locked"), Some(d)) => finding(
            R,
            Status::Fail,
            format!("retention of {d} days is shorter than the required {min_days}"),
        ),
        (Some(s), Some(d)) => finding(
            R,
            Status::Fail,
            format!("the {scope} default policy ({d} days) is {s}, not Locked: it can be removed"),
        ),
    });
    out.push(
        if flag(&b, "/properties/isVersioningEnabled") == Some(true) {
            finding("versioning", Status::Pass, "blob versioning is enabled")
        } else {
            finding(
                "versioning",
                Status::Fail,
                "blob versioning is off: an overwrite or a delete keeps nothing",
            )
        },
    );
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

/// Response headers (lower-case names) of a data-plane request.
pub type Headers = [(String, String)];

fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())
}

/// Evaluates what Azure's data plane (the blob endpoint, with the store's own credentials)
/// shows: the container's properties (`GET ?restype=container`) and, when the log has one,
/// the checkpoint blob's (`HEAD …/checkpoint`, `None` when there is none yet).
///
/// Whether the default retention policy is Locked, and for how long, is management-plane
/// information ([`evaluate_azure`]); the data plane shows it only through the per-version
/// policy it reports on a blob (`x-ms-immutability-policy-mode` / `-until-date`). When a blob
/// reports none, the retention is "could not check", not a failure.
pub fn evaluate_azure_data_plane(
    container: &Headers,
    checkpoint: Option<&Headers>,
    min_days: u32,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let vlw = header(container, "x-ms-immutable-storage-with-versioning-enabled");
    let has_policy = header(container, "x-ms-has-immutability-policy") == Some("true");
    const V: &str = "version-level-immutability";
    out.push(match vlw {
        Some(v) if v.eq_ignore_ascii_case("true") => finding(
            V,
            Status::Pass,
            "immutable storage with versioning is enabled for the container",
        ),
        Some(_) if has_policy => finding(
            V,
            Status::Fail,
            "the container has a container-level retention policy without version-level \
             immutability: it refuses to overwrite the checkpoint, so the log cannot move \
             (see `tftrail bootstrap azure`)",
        ),
        Some(_) => finding(
            V,
            Status::Fail,
            "immutable storage with versioning is not enabled: blobs can be overwritten and \
             deleted",
        ),
        None => finding(
            V,
            Status::CouldNotCheck,
            "the service does not report x-ms-immutable-storage-with-versioning-enabled",
        ),
    });
    const R: &str = "retention-policy";
    const VER: &str = "versioning";
    match checkpoint {
        None => {
            out.push(finding(
                R,
                Status::CouldNotCheck,
                "no checkpoint blob yet to read its retention from; the default policy is \
                 visible through the management API only (e.g. `az storage account show`)",
            ));
            out.push(finding(
                VER,
                Status::CouldNotCheck,
                "no checkpoint blob yet to read its version id from",
            ));
        }
        Some(h) => {
            let mode = header(h, "x-ms-immutability-policy-mode");
            let until = header(h, "x-ms-immutability-policy-until-date").and_then(parse_http_date);
            let since = header(h, "last-modified").and_then(parse_http_date);
            out.push(match (mode, until) {
                (Some(m), Some(u)) if m.eq_ignore_ascii_case("locked") => {
                    let days = since.map(|s| (u - s).max(0) / 86_400);
                    match days {
                        Some(d) if d >= i64::from(min_days) => finding(
                            R,
                            Status::Pass,
                            format!("the checkpoint's version is locked for {d} days"),
                        ),
                        Some(d) => finding(
                            R,
                            Status::Fail,
                            format!(
                                "the checkpoint's version is retained {d} days, shorter than \
                                 the required {min_days}"
                            ),
                        ),
                        None => finding(
                            R,
                            Status::CouldNotCheck,
                            "locked, but the blob's Last-Modified is missing",
                        ),
                    }
                }
                (Some(m), _) if m.eq_ignore_ascii_case("unlocked") => finding(
                    R,
                    Status::Fail,
                    "the checkpoint's retention policy is Unlocked: it can be shortened or removed",
                ),
                _ => finding(
                    R,
                    Status::CouldNotCheck,
                    "the checkpoint reports no version-level retention; whether the default \
                     policy is Locked is visible through the management API only (e.g. \
                     `az storage account show`)",
                ),
            });
            out.push(if header(h, "x-ms-version-id").is_some() {
                finding(
                    VER,
                    Status::Pass,
                    "blobs have version ids: versioning is on",
                )
            } else {
                finding(
                    VER,
                    Status::Fail,
                    "the checkpoint has no version id: blob versioning is off, so an overwrite \
                     or a delete keeps nothing",
                )
            });
        }
    }
    out.push(match header(container, "x-ms-blob-public-access") {
        None => finding("public-access", Status::Pass, "no anonymous access"),
        Some(level) => finding(
            "public-access",
            Status::Fail,
            format!("anonymous access level is {level}"),
        ),
    });
    out
}

/// Seconds since the Unix epoch of an RFC 7231 date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, hms, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mon = MONTHS.iter().position(|m| m == mon)? as i64 + 1;
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mon <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mon + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Checks an Azure store live through the data plane, with the store's own credentials.
fn check_azure(location: &str, opts: &CheckOptions) -> Result<Vec<Finding>, StoreError> {
    let Location::Object { bucket, prefix, .. } = Location::parse(location)? else {
        return Err(StoreError::NotAStore {
            location: location.to_string(),
            reason: "not an az:// location".into(),
        });
    };
    let admin = AzureDataPlane::new(location, &bucket)?;
    let c = admin.send("GET", None, "restype=container")?;
    match c.status {
        200..=299 => {}
        404 => {
            return Err(StoreError::NotAStore {
                location: location.to_string(),
                reason: "the bucket or container does not exist".into(),
            })
        }
        403 => {
            return Ok(vec![finding(
                "container",
                Status::CouldNotCheck,
                format!(
                    "permission denied reading the container's properties (HTTP 403 {})",
                    c.error_code
                ),
            )])
        }
        s => {
            return Ok(vec![finding(
                "container",
                Status::CouldNotCheck,
                format!(
                    "HTTP {s} {} reading the container's properties",
                    c.error_code
                ),
            )])
        }
    }
    let key = if prefix.is_empty() {
        crate::CHECKPOINT.to_string()
    } else {
        format!("{prefix}/{}", crate::CHECKPOINT)
    };
    let cp = admin.send("HEAD", Some(&key), "")?;
    let cp_headers = match cp.status {
        200..=299 => Some(cp.headers),
        404 => None,
        s => {
            let mut out = evaluate_azure_data_plane(&c.headers, None, opts.min_retention_days);
            for f in &mut out {
                if f.property == "retention-policy" || f.property == "versioning" {
                    f.detail = format!("HTTP {s} reading the checkpoint's properties");
                }
            }
            return Ok(out);
        }
    };
    let mut out =
        evaluate_azure_data_plane(&c.headers, cp_headers.as_deref(), opts.min_retention_days);
    let retained = out
        .iter()
        .any(|f| f.property == "retention-policy" && f.status == Status::Pass);
    if !retained {
        out.push(finding(
            "management-plane",
            Status::CouldNotCheck,
            "the account's and container's immutability policies (Locked or not, period) are read \
         through Azure Resource Manager, which needs a subscription and resource group: check \
         them with `az storage account show` and `az storage container immutability-policy show`",
        ));
    }
    Ok(out)
}

/// A response of [`AzureDataPlane::send`].
struct AzResponse {
    status: u16,
    headers: Vec<(String, String)>,
    error_code: String,
}

/// Signed requests to the blob endpoint of an Azure store, with object_store's credential chain
/// (the same environment as the store: `AZURE_*`, Entra ID, the emulator).
struct AzureDataPlane {
    container_url: String,
    account: String,
    creds: object_store::azure::AzureCredentialProvider,
    http: object_store::client::HttpClient,
    rt: tokio::runtime::Runtime,
}

impl AzureDataPlane {
    fn new(location: &str, container: &str) -> Result<Self, StoreError> {
        use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
        use object_store::client::{HttpConnector, ReqwestConnector};
        let bad = |e: object_store::Error| StoreError::NotAStore {
            location: location.to_string(),
            reason: format!("cannot configure the client: {e}"),
        };
        let rt = crate::object::runtime()?;
        let b = MicrosoftAzureBuilder::from_env().with_container_name(container);
        let emulator = b
            .get_config_value(&AzureConfigKey::UseEmulator)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
        let endpoint = b.get_config_value(&AzureConfigKey::Endpoint);
        let account = b.get_config_value(&AzureConfigKey::AccountName);
        let (service, account) = if emulator {
            let account = account.unwrap_or_else(|| "devstoreaccount1".into());
            let url = std::env::var("AZURITE_BLOB_STORAGE_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:10000".into());
            (format!("{}/{account}", url.trim_end_matches('/')), account)
        } else {
            let Some(account) = account else {
                return Err(StoreError::NotAStore {
                    location: location.to_string(),
                    reason: "no storage account: set AZURE_STORAGE_ACCOUNT_NAME".into(),
                });
            };
            let url =
                endpoint.unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
            (url.trim_end_matches('/').to_string(), account)
        };
        let creds = {
            let _guard = rt.enter();
            b.build().map_err(bad)?.credentials().clone()
        };
        let http = ReqwestConnector::default()
            .connect(&object_store::ClientOptions::new().with_allow_http(emulator))
            .map_err(bad)?;
        Ok(AzureDataPlane {
            container_url: format!("{service}/{container}"),
            account,
            creds,
            http,
            rt,
        })
    }

    fn send(
        &self,
        method: &str,
        blob: Option<&str>,
        query: &str,
    ) -> Result<AzResponse, StoreError> {
        use object_store::azure::AzureAuthorizer;
        let what = blob.unwrap_or("").to_string();
        let mut url = self.container_url.clone();
        if let Some(b) = blob {
            url.push('/');
            url.push_str(b);
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        self.rt.block_on(async {
            let cred = self
                .creds
                .get_credential()
                .await
                .map_err(|e| crate::object::map_err("sign", &what, e))?;
            let mut req = http::Request::builder()
                .method(method)
                .uri(&url)
                .body(object_store::client::HttpRequestBody::from(Vec::new()))
                .map_err(|e| StoreError::Backend {
                    op: "request",
                    path: what.clone(),
                    message: e.to_string(),
                })?;
            AzureAuthorizer::new(&cred, &self.account)
                .try_authorize(&mut req)
                .map_err(|e| crate::object::map_err("sign", &what, e))?;
            let r = crate::request::execute(&self.http, req, &what).await?;
            let error_code = r.header("x-ms-error-code").unwrap_or_default().to_string();
            let (status, headers) = (r.status, r.headers);
            Ok(AzResponse {
                status,
                headers,
                error_code,
            })
        })
    }
}

/// Reads the bucket resource (`GET storage/v1/b/BUCKET`, GCS's JSON API) with object_store's
/// credential chain and endpoint (`GOOGLE_*`, `GOOGLE_BASE_URL` for an emulator) and evaluates
/// it with [`evaluate_gcs`], then lists one tile of the log and evaluates its retention with
/// [`evaluate_gcs_sample`].
fn check_gcs(location: &str, opts: &CheckOptions) -> Result<Vec<Finding>, StoreError> {
    let Location::Object { bucket, .. } = Location::parse(location)? else {
        return Err(StoreError::NotAStore {
            location: location.to_string(),
            reason: "not a gs:// location".into(),
        });
    };
    let b = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_bucket_name(&bucket);
    check_gcs_with(location, &bucket, b, opts)
}

fn check_gcs_with(
    location: &str,
    bucket: &str,
    b: object_store::gcp::GoogleCloudStorageBuilder,
    opts: &CheckOptions,
) -> Result<Vec<Finding>, StoreError> {
    use crate::request::GcsJsonApi;
    let bad = |e: object_store::Error| StoreError::NotAStore {
        location: location.to_string(),
        reason: format!("cannot configure the client: {e}"),
    };
    let prefix = match Location::parse(location)? {
        Location::Object { prefix, .. } => prefix,
        Location::Local(_) => String::new(),
    };
    let rt = crate::object::runtime()?;
    let base = GcsJsonApi::base_url(&b);
    let creds = {
        let _guard = rt.enter();
        b.build().map_err(bad)?.credentials().clone()
    };
    let api = GcsJsonApi::new(base, creds).map_err(bad)?;
    let r = rt.block_on(api.get(&format!("b/{bucket}"), bucket))?;
    let mut out = match r.status {
        200..=299 => evaluate_gcs(&String::from_utf8_lossy(&r.body), opts.min_retention_days),
        404 => {
            return Err(StoreError::NotAStore {
                location: location.to_string(),
                reason: "the bucket or container does not exist".into(),
            })
        }
        s => {
            return Ok(vec![finding(
                "bucket",
                Status::CouldNotCheck,
                format!(
                    "HTTP {s} reading the bucket's settings{}",
                    if s == 403 {
                        " (permission denied: the check needs storage.buckets.get)"
                    } else {
                        ""
                    }
                ),
            )])
        }
    };
    if out.iter().any(|f| f.status == Status::CouldNotCheck) {
        return Ok(out);
    }
    let tiles = if prefix.is_empty() {
        "tile/".to_string()
    } else {
        format!("{prefix}/tile/")
    };
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("prefix", &tiles)
        .append_pair("maxResults", "1")
        .finish();
    let r = rt.block_on(api.get(&format!("b/{bucket}/o?{query}"), bucket))?;
    let body = String::from_utf8_lossy(&r.body);
    let unreadable = match r.status {
        200..=299 => None,
        403 => Some(format!(
            "HTTP 403 listing {tiles} (permission denied: the sample needs storage.objects.list)"
        )),
        s => Some(format!("HTTP {s} listing {tiles}")),
    };
    out.push(evaluate_gcs_sample(
        unreadable.as_deref().map_or(Ok(body.as_ref()), Err),
        opts.min_retention_days,
    ));
    Ok(out)
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

    /// What `tftrail bootstrap gcp` creates, as the JSON API shows it.
    const GCS_WORM: &str = r#"{"name":"good","objectRetention":{"mode":"Enabled"},
        "labels":{"tftrail-retention-days":"400"},"versioning":{"enabled":true},
        "softDeletePolicy":{"retentionDurationSeconds":"7776000"},
        "iamConfiguration":{"publicAccessPrevention":"enforced",
          "uniformBucketLevelAccess":{"enabled":true}}}"#;

    /// A listing of one tile, Locked for 400 days after its creation.
    const GCS_LOCKED_TILE: &str = r#"{"kind":"storage#objects","items":[{"name":"log/tile/0/000.p/1",
        "timeCreated":"2026-03-02T10:00:00.120Z",
        "retention":{"mode":"Locked","retainUntilTime":"2027-04-06T10:00:01Z"}}]}"#;

    /// The live GCS check against a loopback server speaking the JSON API (no GCS emulator
    /// exists, docs/decisions/0004-object-storage.md): the requests carry the bearer token,
    /// the bucket resource and one listed tile are evaluated, a missing bucket is named, a
    /// refusal is "could not check".
    #[test]
    fn gcs_live_check_reads_the_bucket_resource() {
        use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let lists = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = lists.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("authorization:") {
                        auth = v.trim().to_string();
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                if path.ends_with("/o") {
                    seen.lock().unwrap().push(query.to_string());
                }
                let (status, body) = match (path, auth.as_str()) {
                    (_, a) if a != "bearer tok" => (401, String::new()),
                    ("/storage/v1/b/good", _) => (200, GCS_WORM.to_string()),
                    ("/storage/v1/b/good/o", _) => (200, GCS_LOCKED_TILE.to_string()),
                    ("/storage/v1/b/fresh", _) => (200, GCS_WORM.to_string()),
                    ("/storage/v1/b/fresh/o", _) => (200, r#"{"kind":"storage#objects"}"#.into()),
                    ("/storage/v1/b/nolist", _) => (200, GCS_WORM.to_string()),
                    ("/storage/v1/b/nolist/o", _) => (403, String::new()),
                    ("/storage/v1/b/locked", _) => (
                        200,
                        r#"{"name":"locked","retentionPolicy":{"retentionPeriod":"8640000","isLocked":true}}"#
                            .to_string(),
                    ),
                    ("/storage/v1/b/locked/o", _) => (200, "{}".to_string()),
                    ("/storage/v1/b/secret", _) => (403, String::new()),
                    _ => (404, String::new()),
                };
                let _ = write!(
                    w,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let opts = CheckOptions {
            min_retention_days: 365,
        };
        let run = |bucket: &str| {
            let b = GoogleCloudStorageBuilder::new()
                .with_bucket_name(bucket)
                .with_config(GoogleConfigKey::BaseUrl, &base)
                .with_config(GoogleConfigKey::BearerToken, "tok");
            check_gcs_with(&format!("gs://{bucket}/log"), bucket, b, &opts)
        };
        let good = run("good").unwrap();
        assert!(good.iter().all(|f| f.status == Status::Pass), "{good:?}");
        let mut expected = evaluate_gcs(GCS_WORM, 365);
        expected.push(evaluate_gcs_sample(Ok(GCS_LOCKED_TILE), 365));
        assert_eq!(good, expected);
        assert!(
            good.last().unwrap().detail.contains("log/tile/0/000.p/1"),
            "{good:?}"
        );
        // The sample is one tile under the store's prefix.
        assert_eq!(
            lists.lock().unwrap()[0],
            "prefix=log%2Ftile%2F&maxResults=1"
        );
        // No tile yet, or no listing allowed: could not check the sample.
        for bucket in ["fresh", "nolist"] {
            let f = run(bucket).unwrap();
            let sample = f.last().unwrap();
            assert_eq!(
                (sample.property, sample.status),
                ("sample-object", Status::CouldNotCheck),
                "{f:?}"
            );
            assert!(f[..f.len() - 1].iter().all(|f| f.status == Status::Pass));
        }
        assert!(run("nolist")
            .unwrap()
            .last()
            .unwrap()
            .detail
            .contains("storage.objects.list"));
        let locked = run("locked").unwrap();
        let cp = locked.iter().find(|f| f.property == "checkpoint").unwrap();
        assert_eq!(cp.status, Status::Fail, "{cp:?}");
        assert!(matches!(run("nope"), Err(StoreError::NotAStore { .. })));
        let denied = run("secret").unwrap();
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].status, Status::CouldNotCheck);
        assert!(denied[0].detail.contains("403"), "{:?}", denied[0]);
    }

    fn gcs_fails(bucket_json: &str, min_days: u32) -> Vec<(&'static str, String)> {
        evaluate_gcs(bucket_json, min_days)
            .into_iter()
            .filter(|f| f.status != Status::Pass)
            .map(|f| {
                assert_eq!(f.status, Status::Fail, "{f:?}");
                (f.property, f.detail)
            })
            .collect()
    }

    /// Each missing piece of the write-once configuration fails its own property, with the
    /// reason.
    #[test]
    fn gcs_evaluation() {
        // What `tftrail bootstrap gcp` creates passes.
        let f = evaluate_gcs(GCS_WORM, 365);
        assert!(f.iter().all(|f| f.status == Status::Pass), "{f:?}");
        let props: Vec<_> = f.iter().map(|f| f.property).collect();
        assert_eq!(
            props,
            [
                "object-retention",
                "retention-days",
                "checkpoint",
                "versioning",
                "soft-delete",
                "public-access-prevention",
                "uniform-access"
            ]
        );
        assert!(f[1].detail.contains("400 days"), "{f:?}");
        let without = |field: &str| {
            let mut v: serde_json::Value = serde_json::from_str(GCS_WORM).unwrap();
            let (parent, key) = field.rsplit_once('/').unwrap_or(("", field));
            let target = if parent.is_empty() {
                &mut v
            } else {
                v.pointer_mut(parent).unwrap()
            };
            target.as_object_mut().unwrap().remove(key);
            v.to_string()
        };
        let with = |patch: &str| {
            let mut v: serde_json::Value = serde_json::from_str(GCS_WORM).unwrap();
            let p: serde_json::Value = serde_json::from_str(patch).unwrap();
            for (k, x) in p.as_object().unwrap() {
                v[k] = x.clone();
            }
            v.to_string()
        };
        let one = |json: &str, min: u32, property: &str, reason: &str| {
            let fails = gcs_fails(json, min);
            assert_eq!(fails.len(), 1, "{fails:?}");
            assert_eq!(fails[0].0, property, "{fails:?}");
            assert!(fails[0].1.contains(reason), "{fails:?}");
        };
        one(
            &without("objectRetention"),
            365,
            "object-retention",
            "not enabled",
        );
        one(
            &with(r#"{"objectRetention":{"mode":"Disabled"}}"#),
            365,
            "object-retention",
            "not enabled",
        );
        one(
            &without("labels"),
            365,
            "retention-days",
            "no tftrail-retention-days label",
        );
        one(
            &with(r#"{"labels":{"tftrail-retention-days":"a-year"}}"#),
            365,
            "retention-days",
            "not a number of days",
        );
        one(
            GCS_WORM,
            500,
            "retention-days",
            "shorter than the required 500",
        );
        // A bucket retention policy, locked or not, stops the checkpoint.
        one(
            &with(r#"{"retentionPolicy":{"retentionPeriod":"31536000","isLocked":true}}"#),
            365,
            "checkpoint",
            "refuses to replace `checkpoint`",
        );
        one(
            &with(r#"{"versioning":{"enabled":false}}"#),
            365,
            "versioning",
            "versioning is off",
        );
        one(
            &without("softDeletePolicy"),
            365,
            "soft-delete",
            "soft delete is off",
        );
        one(
            &with(r#"{"softDeletePolicy":{"retentionDurationSeconds":"0"}}"#),
            365,
            "soft-delete",
            "soft delete is off",
        );
        one(
            &with(
                r#"{"iamConfiguration":{"publicAccessPrevention":"inherited","uniformBucketLevelAccess":{"enabled":true}}}"#,
            ),
            365,
            "public-access-prevention",
            "\"inherited\"",
        );
        one(
            &with(
                r#"{"iamConfiguration":{"publicAccessPrevention":"enforced","uniformBucketLevelAccess":{"enabled":false}}}"#,
            ),
            365,
            "uniform-access",
            "object ACLs",
        );
        // The configuration `tftrail bootstrap gcp` printed before Object Retention Lock:
        // a growing log, but nothing locked.
        let live = r#"{"name":"b","versioning":{"enabled":true},"softDeletePolicy":{"retentionDurationSeconds":"7776000"},
            "iamConfiguration":{"uniformBucketLevelAccess":{"enabled":true},"publicAccessPrevention":"enforced"}}"#;
        let fails: Vec<_> = gcs_fails(live, 365).into_iter().map(|f| f.0).collect();
        assert_eq!(fails, ["object-retention", "retention-days"]);
        // Bucket Lock: write-once, but the checkpoint cannot move.
        let bucket_lock = r#"{"name":"b","retentionPolicy":{"retentionPeriod":"31536000","isLocked":true},
            "iamConfiguration":{"uniformBucketLevelAccess":{"enabled":true},"publicAccessPrevention":"enforced"}}"#;
        let fails: Vec<_> = gcs_fails(bucket_lock, 365)
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(
            fails,
            [
                "object-retention",
                "retention-days",
                "checkpoint",
                "versioning",
                "soft-delete"
            ]
        );
        assert_eq!(evaluate_gcs("nope", 1)[0].status, Status::CouldNotCheck);
    }

    #[test]
    fn gcs_sample_evaluation() {
        let item = |retention: &str| {
            format!(
                r#"{{"items":[{{"name":"log/tile/0/000","timeCreated":"2026-03-02T10:00:00Z"{retention}}}]}}"#
            )
        };
        let st = |json: &str, min: u32| {
            let f = evaluate_gcs_sample(Ok(json), min);
            assert_eq!(f.property, "sample-object");
            (f.status, f.detail)
        };
        let locked =
            item(r#","retention":{"mode":"Locked","retainUntilTime":"2027-03-02T09:59:58.5Z"}"#);
        let (s, d) = st(&locked, 365);
        assert_eq!(s, Status::Pass, "{d}");
        assert!(d.contains("365 days after creation"), "{d}");
        let (s, d) = st(&locked, 366);
        assert!(s == Status::Fail && d.contains("shorter"), "{d}");
        let unlocked =
            item(r#","retention":{"mode":"Unlocked","retainUntilTime":"2030-01-01T00:00:00Z"}"#);
        let (s, d) = st(&unlocked, 1);
        assert!(s == Status::Fail && d.contains("Unlocked"), "{d}");
        let (s, d) = st(&item(""), 1);
        assert!(
            s == Status::Fail && d.contains("log/tile/0/000 carries no retention"),
            "{d}"
        );
        let bad_time = item(r#","retention":{"mode":"Locked","retainUntilTime":"soon"}"#);
        assert_eq!(st(&bad_time, 1).0, Status::CouldNotCheck);
        assert_eq!(
            st(r#"{"kind":"storage#objects"}"#, 1).0,
            Status::CouldNotCheck
        );
        assert_eq!(st("<html>", 1).0, Status::CouldNotCheck);
        let f = evaluate_gcs_sample(Err("HTTP 403 listing log/tile/"), 1);
        assert!(f.status == Status::CouldNotCheck && f.detail.contains("403"));
    }

    #[test]
    fn azure_evaluation() {
        let acct = r#"{"properties":{"immutableStorageWithVersioning":{"enabled":true,"immutabilityPolicy":{"immutabilityPeriodSinceCreationInDays":400,"state":"Locked","allowProtectedAppendWrites":false}}}}"#;
        let c = r#"{"name":"c","properties":{"publicAccess":"None"}}"#;
        let b = r#"{"properties":{"isVersioningEnabled":true}}"#;
        let f = evaluate_azure(acct, c, b, 365);
        assert!(f.iter().all(|f| f.status == Status::Pass), "{f:?}");
        assert!(f[1]
            .detail
            .contains("account default policy locked, 400 days"));
        // Version-level immutability on the container, with its own (default) policy.
        let c_vlw = r#"{"properties":{"immutableStorageWithVersioning":{"enabled":true},"immutabilityPolicy":{"properties":{"immutabilityPeriodSinceCreationInDays":500,"state":"Locked"}}}}"#;
        let f = evaluate_azure("{}", c_vlw, b, 365);
        assert!(f.iter().all(|f| f.status == Status::Pass), "{f:?}");
        assert!(f[0].detail.contains("container"), "{f:?}");
        // A locked container-level policy without version-level immutability: WORM, but the
        // checkpoint can never move.
        let legacy = r#"{"properties":{"publicAccess":"None","immutabilityPolicy":{"properties":{"immutabilityPeriodSinceCreationInDays":400,"state":"Locked"}}}}"#;
        let f = evaluate_azure("{}", legacy, b, 365);
        assert_eq!(f[0].status, Status::Fail);
        assert!(
            f[0].detail.contains("refuses to overwrite the checkpoint"),
            "{f:?}"
        );
        // Unlocked: removable.
        let unlocked = r#"{"properties":{"immutableStorageWithVersioning":{"enabled":true,"immutabilityPolicy":{"immutabilityPeriodSinceCreationInDays":400,"state":"Unlocked"}}}}"#;
        let f = evaluate_azure(unlocked, c, b, 365);
        assert!(
            f[1].status == Status::Fail && f[1].detail.contains("Unlocked"),
            "{f:?}"
        );
        let short = r#"{"properties":{"immutableStorageWithVersioning":{"enabled":true,"immutabilityPolicy":{"immutabilityPeriodSinceCreationInDays":7,"state":"Locked"}}}}"#;
        assert!(evaluate_azure(short, c, b, 365)[1]
            .detail
            .contains("shorter"));
        // Nothing at all, public, no versioning.
        let public = r#"{"properties":{"publicAccess":"Container"}}"#;
        let f = evaluate_azure("{}", public, "{}", 365);
        assert!(f.iter().all(|f| f.status == Status::Fail), "{f:?}");
        assert_eq!(
            evaluate_azure("{", c, b, 1)[0].status,
            Status::CouldNotCheck
        );
    }

    fn hs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn azure_data_plane_evaluation() {
        let container = hs(&[("x-ms-immutable-storage-with-versioning-enabled", "true")]);
        let cp = hs(&[
            ("last-modified", "Mon, 02 Mar 2026 10:00:00 GMT"),
            ("x-ms-version-id", "2026-03-02T10:00:00.0000000Z"),
            ("x-ms-immutability-policy-mode", "locked"),
            (
                "x-ms-immutability-policy-until-date",
                "Wed, 07 Apr 2027 10:00:00 GMT",
            ),
        ]);
        let f = evaluate_azure_data_plane(&container, Some(&cp), 365);
        assert!(f.iter().all(|f| f.status == Status::Pass), "{f:?}");
        assert!(f[1].detail.contains("401 days"), "{f:?}");
        let f = evaluate_azure_data_plane(&container, Some(&cp), 500);
        assert!(f[1].status == Status::Fail && f[1].detail.contains("shorter"));
        // No per-version policy reported, no versioning, public, legacy policy.
        let legacy = hs(&[
            ("x-ms-immutable-storage-with-versioning-enabled", "false"),
            ("x-ms-has-immutability-policy", "true"),
            ("x-ms-blob-public-access", "blob"),
        ]);
        let bare = hs(&[("last-modified", "Mon, 02 Mar 2026 10:00:00 GMT")]);
        let f = evaluate_azure_data_plane(&legacy, Some(&bare), 365);
        let st: Vec<_> = f.iter().map(|f| (f.property, f.status)).collect();
        assert_eq!(
            st,
            [
                ("version-level-immutability", Status::Fail),
                ("retention-policy", Status::CouldNotCheck),
                ("versioning", Status::Fail),
                ("public-access", Status::Fail),
            ]
        );
        assert!(f[0].detail.contains("refuses to overwrite the checkpoint"));
        let unlocked = hs(&[("x-ms-immutability-policy-mode", "unlocked")]);
        let f = evaluate_azure_data_plane(&container, Some(&unlocked), 1);
        assert_eq!(f[1].status, Status::Fail);
        // An emulator that reports nothing; no checkpoint yet.
        let f = evaluate_azure_data_plane(&[], None, 1);
        assert_eq!(f[0].status, Status::CouldNotCheck);
        assert_eq!(f[1].status, Status::CouldNotCheck);
        assert_eq!(f[2].status, Status::CouldNotCheck);
        assert_eq!(f[3].status, Status::Pass);
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(parse_http_date("2026-01-01"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
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
