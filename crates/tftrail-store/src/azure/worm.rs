//! The Azure WORM check: the management-plane view ([`evaluate_azure`]) and the data-plane
//! check with the store's own credentials ([`evaluate_azure_data_plane`]).

use crate::location::Location;
use crate::worm::{finding, CheckOptions, Finding, Status};
use crate::StoreError;

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
pub(crate) fn check_azure(location: &str, opts: &CheckOptions) -> Result<Vec<Finding>, StoreError> {
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
            let r = crate::connector::execute(&self.http, req, &what).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
