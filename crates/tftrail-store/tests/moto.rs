//! Stores and storage checks against a real S3 server (moto_server, started by the tests).
//!
//! Needs `moto_server` on PATH or in TFTRAIL_MOTO_SERVER; fails (does not skip) without it.

use std::sync::{Arc, OnceLock};

use tftrail_store::s3admin::{KeyState, S3Admin};
use tftrail_store::testing::{object_lock_xml, Moto, PUBLIC_ACCESS_BLOCK_ALL};
use tftrail_store::worm::{check, CheckOptions, Status};
use tftrail_store::{NewObject, Store, StoreError, Swap};

fn moto() -> &'static Moto {
    static M: OnceLock<Moto> = OnceLock::new();
    M.get_or_init(|| {
        let m = Moto::start();
        m.apply_env();
        m
    })
}

/// The contract every store must honour.
fn conformance(s: &dyn Store) {
    // get missing
    assert_eq!(s.get("tile/0/000").unwrap(), None);
    assert!(s.get_checkpoint().unwrap().is_none());
    // create-only
    let objs: Vec<NewObject> = (0..40)
        .map(|i| NewObject::new(format!("tile/0/{i:03}"), vec![i as u8; 64]))
        .chain([
            NewObject::new("tile/entries/000.p/3", b"e3".to_vec()),
            NewObject::new("tile/entries/000.p/5", b"e5".to_vec()),
            NewObject::new("x/y", b"xy".to_vec()),
        ])
        .collect();
    s.create_all(&objs).unwrap();
    s.create_all(&objs).unwrap(); // identical: success
    match s.create_all(&[NewObject::new("tile/0/007", b"other".to_vec())]) {
        Err(StoreError::Conflict { path }) => assert_eq!(path, "tile/0/007"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(s.get("tile/0/007").unwrap().unwrap(), vec![7u8; 64]);
    // list
    assert_eq!(
        s.list("tile/entries/000.p/").unwrap(),
        vec!["tile/entries/000.p/3", "tile/entries/000.p/5"]
    );
    assert_eq!(s.list("tile/e").unwrap().len(), 2);
    assert_eq!(s.list("tile/0/").unwrap().len(), 40);
    assert_eq!(s.list("").unwrap().len(), 43);
    assert!(s.list("nope/").unwrap().is_empty());
    let l = s.list("tile/").unwrap();
    assert!(l.windows(2).all(|w| w[0] < w[1]), "sorted");
    // compare-and-swap
    assert_eq!(s.swap_checkpoint(None, b"one").unwrap(), Swap::Done);
    assert_eq!(s.swap_checkpoint(None, b"two").unwrap(), Swap::Lost);
    let (b, v1) = s.get_checkpoint().unwrap().unwrap();
    assert_eq!(b, b"one");
    assert_eq!(s.swap_checkpoint(Some(&v1), b"two").unwrap(), Swap::Done);
    assert_eq!(s.swap_checkpoint(Some(&v1), b"three").unwrap(), Swap::Lost);
    assert_eq!(s.get_checkpoint().unwrap().unwrap().0, b"two");
    // bad paths
    for p in ["../x", "/etc/passwd", "a//b", ""] {
        assert!(s.get(p).is_err(), "{p}");
    }
}

#[test]
fn local_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let s = tftrail_store::create(dir.path().to_str().unwrap()).unwrap();
    conformance(&*s);
}

#[test]
fn s3_store_conformance() {
    let m = moto();
    m.create_bucket("conformance", false);
    let s = tftrail_store::open("s3://conformance/logs/prod").unwrap();
    assert_eq!(s.location(), "s3://conformance/logs/prod");
    conformance(&*s);
    // the prefix is honoured
    let root = tftrail_store::open("s3://conformance").unwrap();
    assert!(root
        .list("")
        .unwrap()
        .iter()
        .all(|p| p.starts_with("logs/prod/")));
}

#[test]
fn s3_missing_bucket_is_not_a_store() {
    moto();
    match tftrail_store::open("s3://no-such-bucket/x") {
        Err(StoreError::NotAStore { reason, .. }) => assert!(reason.contains("does not exist")),
        Err(e) => panic!("expected NotAStore, got {e:?}"),
        Ok(_) => panic!("expected NotAStore, got a store"),
    }
}

#[test]
fn object_lock_keeps_versions_and_reports_them() {
    let m = moto();
    m.create_audit_bucket("locked", 1);
    let s = tftrail_store::open("s3://locked/log").unwrap();
    // PUTs into a bucket with default retention succeed (Content-MD5 is sent).
    conformance(&*s);
    let admin = S3Admin::for_location("s3://locked/log").unwrap();

    // A DELETE without version id only adds a delete marker.
    let r = admin
        .send("DELETE", Some("log/tile/0/003"), &[], &[], Vec::new())
        .unwrap();
    assert!(r.status < 300, "{r:?}");
    assert_eq!(
        s.get("tile/0/003").unwrap(),
        None,
        "hidden by the delete marker"
    );

    let versions = admin.versions("tile/0/003").unwrap();
    assert_eq!(versions.len(), 1);
    let kv = &versions[0];
    assert_eq!(kv.path, "tile/0/003");
    assert_eq!(kv.state, KeyState::Deleted);
    assert!(kv.versions[0].delete_marker);
    let original = kv.original().unwrap().clone();
    assert_eq!(
        admin
            .get_version("tile/0/003", &original.version_id)
            .unwrap(),
        Some(vec![3u8; 64])
    );

    // Deleting the locked version is refused.
    let r = admin
        .send(
            "DELETE",
            Some("log/tile/0/003"),
            &[("versionId", &original.version_id)],
            &[],
            Vec::new(),
        )
        .unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        admin
            .get_version("tile/0/003", &original.version_id)
            .unwrap(),
        Some(vec![3u8; 64])
    );

    // The checkpoint's history is kept as versions.
    let all = admin.versions("").unwrap();
    let cp = all.iter().find(|k| k.path == "checkpoint").unwrap();
    assert_eq!(cp.state, KeyState::Overwritten);
    assert_eq!(cp.data_versions().count(), 2);
    let first = cp.original().unwrap();
    assert_eq!(
        admin.get_version("checkpoint", &first.version_id).unwrap(),
        Some(b"one".to_vec())
    );
    let intact = all.iter().find(|k| k.path == "tile/0/004").unwrap();
    assert_eq!(intact.state, KeyState::Intact);
    assert_eq!(
        admin.get_version("tile/0/004", "no-such-version").unwrap(),
        None
    );
}

#[test]
fn concurrent_compare_and_swap_loses_no_update() {
    let m = moto();
    m.create_bucket("cas", true);
    let threads = 8;
    let per_thread = 5;
    let init = tftrail_store::open("s3://cas/c").unwrap();
    assert_eq!(init.swap_checkpoint(None, b"0").unwrap(), Swap::Done);
    let stores: Vec<Arc<dyn Store>> = (0..threads)
        .map(|_| Arc::from(tftrail_store::open("s3://cas/c").unwrap()))
        .collect();
    let handles: Vec<_> = stores
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || {
                let mut lost = 0;
                for _ in 0..per_thread {
                    loop {
                        let (b, v) = s.get_checkpoint().unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&b).unwrap().parse().unwrap();
                        match s.swap_checkpoint(Some(&v), (n + 1).to_string().as_bytes()) {
                            Ok(Swap::Done) => break,
                            Ok(Swap::Lost) => lost += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                lost
            })
        })
        .collect();
    let lost: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let (b, _) = init.get_checkpoint().unwrap().unwrap();
    assert_eq!(
        b,
        (threads * per_thread).to_string().as_bytes(),
        "{lost} lost swaps"
    );
}

fn status_of(location: &str, property: &str) -> (Status, String) {
    let r = check(location, &CheckOptions::default()).unwrap();
    let f = r
        .finding(property)
        .unwrap_or_else(|| panic!("{property} in {r:?}"));
    (f.status, f.detail.clone())
}

#[test]
fn storage_check_passes_on_bootstrap_equivalent_bucket() {
    let m = moto();
    m.create_audit_bucket("good-audit", 365);
    let r = check("s3://good-audit/log", &CheckOptions::default()).unwrap();
    assert!(r.passed(), "{}", r.to_text());
    assert_eq!(r.findings.len(), 5);
    // and requiring more than the bucket has fails
    let r = check(
        "s3://good-audit/log",
        &CheckOptions {
            min_retention_days: 400,
        },
    )
    .unwrap();
    assert!(!r.passed());
}

#[test]
fn storage_check_fails_naming_each_reason() {
    let m = moto();
    // no Object Lock (versioning and Block Public Access on)
    m.create_bucket("no-lock", false);
    m.put_bucket_config(
        "no-lock",
        "versioning",
        "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
    );
    m.put_bucket_config("no-lock", "publicAccessBlock", PUBLIC_ACCESS_BLOCK_ALL);
    let (s, d) = status_of("s3://no-lock", "object-lock");
    assert_eq!(s, Status::Fail, "{d}");
    assert!(d.contains("not enabled"), "{d}");
    assert_eq!(status_of("s3://no-lock", "versioning").0, Status::Pass);
    assert_eq!(
        status_of("s3://no-lock", "block-public-access").0,
        Status::Pass
    );

    // versioning off
    m.create_bucket("no-versioning", false);
    let (s, d) = status_of("s3://no-versioning", "versioning");
    assert_eq!(s, Status::Fail, "{d}");
    let (s, _) = status_of("s3://no-versioning", "block-public-access");
    assert_eq!(s, Status::Fail);

    // GOVERNANCE mode
    m.create_audit_bucket("governance", 365);
    m.put_bucket_config(
        "governance",
        "object-lock",
        &object_lock_xml("GOVERNANCE", 365),
    );
    let (s, d) = status_of("s3://governance", "default-retention");
    assert_eq!(s, Status::Fail);
    assert!(d.contains("GOVERNANCE"), "{d}");

    // retention too short
    m.create_audit_bucket("short", 30);
    let (s, d) = status_of("s3://short", "default-retention");
    assert_eq!(s, Status::Fail);
    assert!(
        d.contains("30 days is shorter than the required 365"),
        "{d}"
    );

    // public write policy
    m.create_audit_bucket("public-write", 365);
    m.put_bucket_config(
        "public-write",
        "policy",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Upload","Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::public-write/*"}]}"#,
    );
    let (s, d) = status_of("s3://public-write", "bucket-policy");
    assert_eq!(s, Status::Fail);
    assert!(
        d.contains("\"Upload\"") && d.contains("s3:PutObject"),
        "{d}"
    );
}
