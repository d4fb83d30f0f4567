//! Google Cloud Storage: what the shared object_store backend (`object`) needs beyond
//! object_store (the JSON API client, Object Retention Lock on the objects a writer creates,
//! the bucket's retention label), the WORM check (`worm`, re-exported from [`crate::worm`]),
//! and, in tests, a loopback fake GCS server (`fake`).

pub(crate) mod worm;

use object_store::client::HttpClient;

use std::sync::OnceLock;

use crate::connector::{execute, GcsLock, RawResponse};
use crate::object::rfc3339_utc;
use crate::{ObjectStoreBackend, Store, StoreError};

/// Label on a GCS bucket that tells writers for how many days to lock each object they
/// create (Object Retention Lock). Set by `tftrail bootstrap gcp`; checked by `storage check`.
pub(crate) const GCS_RETENTION_LABEL: &str = "tftrail-retention-days";

/// The longest retention GCS accepts: 100 years.
const GCS_MAX_RETENTION_DAYS: u32 = 36_500;

/// Whether a GCS bucket resource has Object Retention Lock enabled (`objectRetention.mode`).
pub(crate) fn gcs_object_retention_enabled(bucket: &serde_json::Value) -> bool {
    bucket
        .pointer("/objectRetention/mode")
        .and_then(|m| m.as_str())
        == Some("Enabled")
}

/// The [`GCS_RETENTION_LABEL`] of a GCS bucket resource: `None` without the label, an error
/// for a value that is not a number of days GCS accepts (1 to 36,500).
pub(crate) fn gcs_label_days(bucket: &serde_json::Value) -> Option<Result<u32, String>> {
    let raw = bucket.get("labels")?.get(GCS_RETENTION_LABEL)?;
    let text = raw.as_str().unwrap_or_default().trim();
    Some(match text.parse::<u32>() {
        Ok(d) if (1..=GCS_MAX_RETENTION_DAYS).contains(&d) => Ok(d),
        _ => Err(format!(
            "the bucket label {GCS_RETENTION_LABEL}={raw} is not a number of days from 1 to \
             {GCS_MAX_RETENTION_DAYS}"
        )),
    })
}

/// The retention a writer gives new objects in a GCS bucket: `Ok(Some(days))` with object
/// retention enabled and the label set, `Ok(None)` when either is missing (objects are then
/// created without retention), an error for a bad label.
pub(crate) fn gcs_writer_retention(bucket: &serde_json::Value) -> Result<Option<u32>, String> {
    if !gcs_object_retention_enabled(bucket) {
        return Ok(None);
    }
    gcs_label_days(bucket).transpose()
}

/// What a GCS writer needs beyond object_store: the bucket's retention setting, read once.
pub(crate) struct GcsWriter {
    pub(crate) api: crate::gcs::GcsJsonApi,
    /// `Some(days)`: lock new objects for that long; `None`: the bucket asks for no retention.
    pub(crate) retention_days: OnceLock<Option<u32>>,
}

/// The GCS part of the object_store backend: Object Retention Lock on the objects it creates.
impl ObjectStoreBackend {
    /// GCS: for how many days to lock the objects this writer creates, from the bucket
    /// resource, read on the first write and kept for the life of the process. `None` on
    /// other clouds and on a bucket without object retention or without the label.
    ///
    /// A bucket whose settings cannot be read fails the write (fail closed): without them
    /// the writer cannot know whether the bucket expects its objects locked.
    fn gcs_retention_days(&self) -> Result<Option<u32>, StoreError> {
        let Some(g) = &self.gcs else {
            return Ok(None);
        };
        if let Some(days) = g.retention_days.get() {
            return Ok(*days);
        }
        const OP: &str = "read the bucket's retention settings";
        let location = self.location();
        let r = self.rt.block_on(g.api.get(
            &format!("b/{}?fields=objectRetention,labels", self.bucket),
            &location,
        ))?;
        let days = match r.status {
            200..=299 => {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.body).map_err(|e| StoreError::Backend {
                        op: OP,
                        path: location.clone(),
                        message: format!("unreadable bucket resource: {e}"),
                    })?;
                gcs_writer_retention(&v).map_err(|message| StoreError::Backend {
                    op: OP,
                    path: location.clone(),
                    message,
                })?
            }
            404 => {
                return Err(StoreError::NotAStore {
                    location,
                    reason: "the bucket or container does not exist".into(),
                })
            }
            s @ (408 | 429 | 500..=599) => {
                return Err(StoreError::Transient {
                    op: OP,
                    path: location,
                    message: format!("HTTP {s}"),
                })
            }
            s => {
                return Err(StoreError::Backend {
                    op: OP,
                    path: location,
                    message: format!(
                        "HTTP {s}{}: a writer reads the bucket's object retention and its \
                         {GCS_RETENTION_LABEL} label before creating objects",
                        if s == 403 {
                            " (permission denied: writers need storage.buckets.get, see \
                             `tftrail bootstrap gcp`)"
                        } else {
                            ""
                        }
                    ),
                })
            }
        };
        Ok(*g.retention_days.get_or_init(|| days))
    }

    /// The lock to put on the objects created now, if the bucket asks for one.
    pub(crate) fn gcs_lock(&self) -> Result<Option<GcsLock>, StoreError> {
        let Some(days) = self.gcs_retention_days()? else {
            return Ok(None);
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Ok(Some(GcsLock {
            retain_until: rfc3339_utc(now + i64::from(days) * 86_400),
        }))
    }
}

/// Requests to the GCS JSON API (`{base}/storage/v1/…`: the bucket resource, object
/// listings) with object_store's GCS credential chain and endpoint (`GOOGLE_*`,
/// `GOOGLE_BASE_URL` for an emulator), authorised by a bearer token.
pub(crate) struct GcsJsonApi {
    base: String,
    creds: object_store::gcp::GcpCredentialProvider,
    http: HttpClient,
}

impl GcsJsonApi {
    /// The endpoint a builder talks to (`https://storage.googleapis.com` unless overridden).
    pub(crate) fn base_url(b: &object_store::gcp::GoogleCloudStorageBuilder) -> String {
        b.get_config_value(&object_store::gcp::GoogleConfigKey::BaseUrl)
            .unwrap_or_else(|| "https://storage.googleapis.com".into())
            .trim_end_matches('/')
            .to_string()
    }

    /// A client for `base` (plain http allowed only when `base` is an http URL).
    pub(crate) fn new(
        base: String,
        creds: object_store::gcp::GcpCredentialProvider,
    ) -> Result<Self, object_store::Error> {
        use object_store::client::{HttpConnector, ReqwestConnector};
        let http = ReqwestConnector::default().connect(
            &object_store::ClientOptions::new().with_allow_http(base.starts_with("http://")),
        )?;
        Ok(GcsJsonApi { base, creds, http })
    }

    /// `GET {base}/storage/v1/{path}` (`path` already percent-encoded, query included); `what`
    /// names the bucket or object in errors.
    pub(crate) async fn get(&self, path: &str, what: &str) -> Result<RawResponse, StoreError> {
        let cred = self
            .creds
            .get_credential()
            .await
            .map_err(|e| crate::object::map_err("sign", what, e))?;
        let req = http::Request::builder()
            .method("GET")
            .uri(format!("{}/storage/v1/{path}", self.base))
            .header("authorization", format!("Bearer {}", cred.bearer))
            .body(object_store::client::HttpRequestBody::from(Vec::new()))
            .map_err(|e| StoreError::Backend {
                op: "request",
                path: what.to_string(),
                message: e.to_string(),
            })?;
        execute(&self.http, req, what).await
    }
}

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests {
    use super::fake as fake_gcs;
    use super::*;
    use crate::object::parse_rfc3339;
    use crate::{Cloud, NewObject, ObjectStoreBackend, Store, StoreError, Swap};
    use object_store::path::Path as OsPath;
    use object_store::{ObjectStoreExt, PutMode, PutPayload};

    /// Points object_store's GCS client at the fake. nextest runs each test in its own
    /// process: these variables stay in that test.
    fn gcs_fake() -> fake_gcs::Shared {
        let (url, state) = fake_gcs::start();
        std::env::set_var("GOOGLE_BASE_URL", url);
        // object_store 0.14's GCS PUT fetches a credential even with GOOGLE_SKIP_SIGNATURE: a
        // static bearer token keeps it off the metadata server.
        std::env::set_var("GOOGLE_BEARER_TOKEN", "test");
        state
    }

    fn now_secs() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    /// Requests whose target starts with `prefix` (`GET /storage/v1/b/worm`, `PUT /worm/…`).
    fn seen(state: &fake_gcs::Shared, method: &str, prefix: &str) -> Vec<fake_gcs::Seen> {
        state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.method == method && r.target.starts_with(prefix))
            .cloned()
            .collect()
    }

    #[test]
    fn gcs_create_only_and_generation_compare_and_swap() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "bkt", "log").unwrap();
        s.check_reachable().unwrap();
        let obj = NewObject::new("tile/0/000", b"one".to_vec());
        s.create_all(std::slice::from_ref(&obj)).unwrap();
        s.create_all(std::slice::from_ref(&obj)).unwrap();
        assert!(matches!(
            s.create_all(&[NewObject::new("tile/0/000", b"two".to_vec())]),
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(s.list("tile/").unwrap(), ["tile/0/000"]);
        assert!(s.get_checkpoint().unwrap().is_none());
        assert_eq!(s.swap_checkpoint(None, b"c1").unwrap(), Swap::Done);
        assert_eq!(s.swap_checkpoint(None, b"c1").unwrap(), Swap::Lost);
        let (b, v1) = s.get_checkpoint().unwrap().unwrap();
        assert_eq!(b, b"c1");
        // The version is the generation, not the ETag.
        assert!(v1.0.chars().all(|c| c.is_ascii_digit()), "{v1}");
        assert_eq!(s.swap_checkpoint(Some(&v1), b"c2").unwrap(), Swap::Done);
        assert_eq!(s.swap_checkpoint(Some(&v1), b"c3").unwrap(), Swap::Lost);
        assert_eq!(s.get_checkpoint().unwrap().unwrap().0, b"c2");
        // A bucket without object retention: its settings are read once, no upload is locked.
        assert_eq!(seen(&state, "GET", "/storage/v1/b/bkt").len(), 1);
        let puts = seen(&state, "PUT", "/bkt/");
        assert!(
            puts.len() >= 5 && puts.iter().all(|r| r.lock.is_none()),
            "{puts:?}"
        );
    }

    /// On a bucket with object retention and the label (30 days), every object created but
    /// the checkpoint is uploaded Locked until now + 30 days, and GCS then refuses to replace
    /// or delete it; the checkpoint carries no retention and keeps moving.
    #[test]
    fn gcs_object_retention_locks_every_object_but_the_checkpoint() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "worm", "log").unwrap();
        let before = now_secs();
        s.create_all(&[
            NewObject::new("tile/0/000.p/2", b"tiles".to_vec()),
            NewObject::new("tile/entries/000.p/2", b"bundle".to_vec()),
            NewObject::new("tftrail/blobs/sha256/ab", b"blob".to_vec()),
        ])
        .unwrap();
        s.create_after(
            &[NewObject::new("tftrail/batches/2", b"claim".to_vec())],
            &[NewObject::new("tile/0/000.p/3", b"more".to_vec())],
        )
        .unwrap();
        // Identical bytes again (a roll-forward): success; other bytes: a conflict.
        s.create_all(&[NewObject::new("tile/0/000.p/2", b"tiles".to_vec())])
            .unwrap();
        assert!(matches!(
            s.create_all(&[NewObject::new("tile/0/000.p/2", b"other".to_vec())]),
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(s.swap_checkpoint(None, b"c1").unwrap(), Swap::Done);
        let (_, v1) = s.get_checkpoint().unwrap().unwrap();
        assert_eq!(s.swap_checkpoint(Some(&v1), b"c2").unwrap(), Swap::Done);
        let after = now_secs();

        // Read once per process, however many writes.
        assert_eq!(seen(&state, "GET", "/storage/v1/b/worm").len(), 1);
        {
            let st = state.lock().unwrap();
            let names: Vec<&str> = st.objects.keys().map(|(_, k)| k.as_str()).collect();
            assert_eq!(names.len(), 6, "{names:?}");
            for ((_, k), o) in &st.objects {
                if k == "log/checkpoint" {
                    assert_eq!(o.retention, None, "the checkpoint must stay replaceable");
                    assert_eq!(o.data, b"c2");
                    continue;
                }
                let r = o
                    .retention
                    .as_ref()
                    .unwrap_or_else(|| panic!("{k} not retained"));
                assert_eq!(r.mode, "Locked", "{k}");
                let until = parse_rfc3339(&r.until).unwrap();
                let days = 30 * 86_400;
                assert!(
                    (before + days..=after + days).contains(&until),
                    "{k}: {} is not now + 30 days",
                    r.until
                );
            }
        }
        for r in seen(&state, "PUT", "/worm/") {
            let cp = r
                .target
                .replace("%2F", "/")
                .starts_with("/worm/log/checkpoint");
            match &r.lock {
                Some((mode, _)) => assert!(!cp && mode == "COMPLIANCE", "{r:?}"),
                None => assert!(cp, "{r:?}"),
            }
        }

        // What the retention buys: neither an overwrite nor a delete gets through.
        let key = OsPath::from("log/tile/0/000.p/2");
        let overwrite = s.rt.block_on(s.inner.put_opts(
            &key,
            PutPayload::from(b"forged".to_vec()),
            PutMode::Overwrite.into(),
        ));
        assert!(
            matches!(overwrite, Err(object_store::Error::PermissionDenied { .. })),
            "{overwrite:?}"
        );
        let delete = s.rt.block_on(s.inner.delete(&key));
        assert!(
            matches!(delete, Err(object_store::Error::PermissionDenied { .. })),
            "{delete:?}"
        );
        assert_eq!(s.get("tile/0/000.p/2").unwrap().unwrap(), b"tiles");
        // The checkpoint, unretained, is replaceable by whoever may (writers: through CAS).
        let cp = OsPath::from("log/checkpoint");
        s.rt.block_on(s.inner.put_opts(
            &cp,
            PutPayload::from(b"c3".to_vec()),
            PutMode::Overwrite.into(),
        ))
        .unwrap();
    }

    /// GCS may answer a create-only upload of an object under retention with 403 rather
    /// than 412: identical bytes are still success, other bytes a conflict.
    #[test]
    fn gcs_refusal_of_a_retained_object_still_compares_bytes() {
        let _state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "worm403", "").unwrap();
        let obj = NewObject::new("tile/0/000", b"one".to_vec());
        s.create_all(std::slice::from_ref(&obj)).unwrap();
        s.create_all(std::slice::from_ref(&obj)).unwrap();
        assert!(matches!(
            s.create_all(&[NewObject::new("tile/0/000", b"two".to_vec())]),
            Err(StoreError::Conflict { .. })
        ));
    }

    /// A writer that may not set retention fails the write, naming the object and the
    /// permission; nothing is created.
    #[test]
    fn gcs_retention_refused_fails_the_write_naming_the_object() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "norole", "log").unwrap();
        let err = s
            .create_all(&[NewObject::new("tile/0/000", b"one".to_vec())])
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, StoreError::Backend { path, .. } if path == "tile/0/000"),
            "{err:?}"
        );
        assert!(text.contains("storage.objects.setRetention"), "{text}");
        assert!(state.lock().unwrap().objects.is_empty());
    }

    /// Object retention enabled but no label: objects are created without retention (no
    /// lock header sent), as on a bucket that does not ask for it.
    #[test]
    fn gcs_without_the_label_sends_no_retention() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "nolabel", "log").unwrap();
        s.create_all(&[NewObject::new("tile/0/000", b"one".to_vec())])
            .unwrap();
        let puts = seen(&state, "PUT", "/nolabel/");
        assert!(puts.len() == 1 && puts[0].lock.is_none(), "{puts:?}");
        assert!(state
            .lock()
            .unwrap()
            .objects
            .values()
            .all(|o| o.retention.is_none()));
    }

    /// Unreadable bucket settings (no storage.buckets.get) or a bad label fail the write
    /// before anything is uploaded; reads do not need the settings.
    #[test]
    fn gcs_unreadable_retention_settings_fail_closed() {
        let state = gcs_fake();
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "private", "log").unwrap();
        assert_eq!(s.get("tile/0/000").unwrap(), None);
        let err = s
            .create_all(&[NewObject::new("tile/0/000", b"one".to_vec())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.buckets.get"), "{err}");
        let s = ObjectStoreBackend::connect(Cloud::Gcs, "badlabel", "log").unwrap();
        let err = s
            .create_all(&[NewObject::new("tile/0/000", b"one".to_vec())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tftrail-retention-days=\"forever\""), "{err}");
        assert!(seen(&state, "PUT", "/").is_empty());
    }

    #[test]
    fn gcs_writer_retention_from_the_bucket_resource() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        let on =
            r#"{"objectRetention":{"mode":"Enabled"},"labels":{"tftrail-retention-days":"365"}}"#;
        assert_eq!(gcs_writer_retention(&v(on)), Ok(Some(365)));
        // Object retention off: the label alone asks for nothing GCS would accept.
        let off = r#"{"labels":{"tftrail-retention-days":"365"}}"#;
        assert_eq!(gcs_writer_retention(&v(off)), Ok(None));
        let no_label = r#"{"objectRetention":{"mode":"Enabled"},"labels":{"team":"infra"}}"#;
        assert_eq!(gcs_writer_retention(&v(no_label)), Ok(None));
        for bad in ["0", "36501", "-1", "1y", ""] {
            let j = format!(
                r#"{{"objectRetention":{{"mode":"Enabled"}},"labels":{{"tftrail-retention-days":"{bad}"}}}}"#
            );
            assert!(gcs_writer_retention(&v(&j)).is_err(), "{bad}");
        }
    }
}
