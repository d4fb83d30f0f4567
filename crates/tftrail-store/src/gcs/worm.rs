//! The GCS WORM check: the bucket resource (Object Retention Lock, the retention label,
//! versioning, soft delete) and one sample tile's retention, read through the JSON API.

use crate::location::Location;
use crate::worm::{finding, CheckOptions, Finding, Status};
use crate::StoreError;

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
    use crate::gcs::{gcs_label_days, gcs_object_retention_enabled, GCS_RETENTION_LABEL};
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

/// Reads the bucket resource (`GET storage/v1/b/BUCKET`, GCS's JSON API) with object_store's
/// credential chain and endpoint (`GOOGLE_*`, `GOOGLE_BASE_URL` for an emulator) and evaluates
/// it with [`evaluate_gcs`], then lists one tile of the log and evaluates its retention with
/// [`evaluate_gcs_sample`].
pub(crate) fn check_gcs(location: &str, opts: &CheckOptions) -> Result<Vec<Finding>, StoreError> {
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
    use crate::gcs::GcsJsonApi;
    let bad = |e: object_store::Error| StoreError::NotAStore {
        location: location.to_string(),
        reason: format!("cannot configure the client: {e}"),
    };
    let prefix = match Location::parse(location)? {
        Location::Object { prefix, .. } => prefix,
        Location::Local(_) | Location::Server(_) => String::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
