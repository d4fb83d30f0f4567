//! The S3 WORM check: versioning, Object Lock default retention, Block Public Access and the
//! bucket policy, evaluated from the bucket's configuration (rules in [`crate::worm`]).

use crate::s3::admin::S3Admin;
use crate::worm::{finding, CheckOptions, Fetched, Finding, Status};
use crate::StoreError;

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
}
