//! The log on Azure Blob Storage, against Azurite (the Azure Storage emulator, started by the
//! tests): the everyday commands through az://, create-only objects (identical bytes succeed,
//! different bytes are an integrity error), the checkpoint's compare-and-swap with concurrent
//! writer processes, tampering detected by `verify`, and `storage check`.
//!
//! The `tftrail` processes find the emulator through object_store's standard variables
//! (`AZURE_STORAGE_USE_EMULATOR`, `AZURITE_BLOB_STORAGE_URL`), nothing tftrail-specific.
//! One Azurite is shared by the tests that run at the same time and stopped when the last of
//! them ends; every test uses its own container. Without `TFTRAIL_AZURITE` (set by
//! `scripts/test`) every test here prints why and skips.

mod common;

use common::{code, describe, stderr, stdout, Env, ServerSlot, Shared};
use tftrail_store::testing::Azurite;
use tftrail_store::{NewObject, StoreError, Swap, CHECKPOINT};

static SLOT: ServerSlot<Azurite> = std::sync::Mutex::new((None, 0));

type AzGuard = Shared<Azurite>;

/// The shared emulator, or `None` (the test skips) when `TFTRAIL_AZURITE` is unset.
fn azurite() -> Option<AzGuard> {
    Shared::acquire(
        &SLOT,
        || {
            let a = Azurite::start()?;
            a.apply_env();
            Some(a)
        },
        Azurite::env,
    )
}

/// Flips one bit of a blob in the emulator, behind tftrail's back.
fn tamper(g: &AzGuard, container: &str, blob: &str, offset: usize) {
    g.with(|a| {
        let mut d = a.get_blob(container, blob).expect("blob exists");
        d[offset] ^= 0x01;
        a.put_blob(container, blob, &d);
    });
}

#[test]
fn azure_everyday_commands() {
    let Some(g) = azurite() else { return };
    g.with(|a| a.create_container("everyday"));
    let env = Env::new();
    let loc = "az://everyday/team/log";
    let vkey = g.init_and_append(&env, loc, "test.example/az", 3);
    // 300 more in one batch: crosses a full tile (256) and leaves partial ones.
    let lines: String = (3..303).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let out = g.ok(
        &env,
        loc,
        &["append", "--batch", "--json"],
        Some(lines.as_bytes()),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON result");
    assert_eq!(
        (v["first"].as_u64(), v["count"].as_u64()),
        (Some(3), Some(300))
    );
    assert_eq!(v["size"].as_u64(), Some(303));

    let recs = g.log_json(&env, loc);
    assert_eq!(recs.len(), 303);
    let mut is: Vec<u64> = recs
        .iter()
        .map(|r| r["record"]["payload"]["i"].as_u64().unwrap())
        .collect();
    is.sort();
    assert_eq!(is, (0..303).collect::<Vec<_>>());
    let shown = g.ok(&env, loc, &["show", "1", "--json"], None);
    assert!(shown.contains("\"i\":1"), "{shown}");
    let shown = g.ok(&env, loc, &["show", "300"], None);
    assert!(shown.contains("300"), "{shown}");
    let v = g.ok(&env, loc, &["verify"], None);
    assert!(
        v.starts_with("OK: log test.example/az verified: 303 records"),
        "{v}"
    );
    // The tiles are where tlog-tiles puts them, below the prefix.
    g.with(|a| {
        for blob in [
            "team/log/checkpoint",
            "team/log/tile/0/000",
            "team/log/tile/entries/000",
            "team/log/tile/entries/001.p/47",
        ] {
            assert!(a.get_blob("everyday", blob).is_some(), "{blob} missing");
        }
    });
    g.receipt_verifies_offline(&env, loc, 2, &vkey);
}

#[test]
fn azure_missing_container_is_named() {
    let Some(g) = azurite() else { return };
    let env = Env::new();
    let out = g.tftrail(
        &env,
        "az://nosuchcontainer/log",
        &["init", "--origin", "test.example/none"],
        None,
    );
    assert_ne!(code(&out), 0, "{}", describe(&out));
    assert!(
        stderr(&out).contains("does not exist"),
        "{}",
        describe(&out)
    );
}

#[test]
fn azure_create_only_objects() {
    let Some(g) = azurite() else { return };
    g.with(|a| a.create_container("createonly"));

    // The store contract, directly.
    let store = tftrail_store::open("az://createonly/direct").expect("open");
    let obj = NewObject::new("tile/0/000", b"original".to_vec());
    store.create_all(std::slice::from_ref(&obj)).unwrap();
    store
        .create_all(std::slice::from_ref(&obj))
        .expect("identical bytes are success");
    let other = NewObject::new("tile/0/000", b"different".to_vec());
    match store.create_all(&[other]) {
        Err(StoreError::Conflict { path }) => assert_eq!(path, "tile/0/000"),
        r => panic!("expected a conflict, got {r:?}"),
    }
    assert_eq!(store.get("tile/0/000").unwrap().unwrap(), b"original");
    // Many at once, some already there with the same bytes.
    let many: Vec<NewObject> = (0..40)
        .map(|i| NewObject::new(format!("tftrail/blobs/sha256/{i:02}"), vec![i; 100]))
        .collect();
    store.create_all(&many[..10]).unwrap();
    store.create_all(&many).unwrap();
    assert_eq!(store.list("tftrail/blobs/").unwrap().len(), 40);
    assert!(store
        .create_all(&[NewObject::new(CHECKPOINT, b"x".to_vec())])
        .is_err());

    // Through tftrail: an object planted with different bytes where the next append writes
    // is an integrity error (exit 1), and the log that was there still verifies.
    let env = Env::new();
    let loc = "az://createonly/log";
    g.ok(&env, loc, &["init", "--origin", "test.example/co"], None);
    for i in 0..2 {
        g.ok(
            &env,
            loc,
            &["append"],
            Some(format!("{{\"i\":{i}}}").as_bytes()),
        );
    }
    g.with(|a| a.put_blob("createonly", "log/tile/entries/000.p/3", b"planted"));
    let out = g.tftrail(&env, loc, &["append"], Some(b"{\"i\":2}"));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains("tile/entries/000.p/3 already exists with different content"),
        "{}",
        describe(&out)
    );
    let v = g.ok(&env, loc, &["verify"], None);
    assert!(v.contains("verified: 2 records"), "{v}");

    // Identical bytes succeed through tftrail too: roll the checkpoint back behind its back;
    // the next append finds the batch claim past it and rewrites that batch's tiles and
    // bundles, which all exist with the same bytes.
    let env = Env::new();
    let loc = "az://createonly/rollforward";
    g.ok(&env, loc, &["init", "--origin", "test.example/rf"], None);
    g.ok(&env, loc, &["append"], Some(b"{\"i\":0}"));
    let old = g.with(|a| a.get_blob("createonly", "rollforward/checkpoint").unwrap());
    let lines: String = (1..11).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    g.ok(&env, loc, &["append", "--batch"], Some(lines.as_bytes()));
    g.with(|a| a.put_blob("createonly", "rollforward/checkpoint", &old));
    let idx = g.ok(&env, loc, &["append"], Some(b"{\"i\":11}"));
    assert_eq!(idx.trim(), "11");
    let v = g.ok(&env, loc, &["verify"], None);
    assert!(v.contains("verified: 12 records"), "{v}");
}

#[test]
fn azure_checkpoint_compare_and_swap() {
    let Some(g) = azurite() else { return };
    g.with(|a| a.create_container("cas"));

    // The primitive: If-None-Match on the first checkpoint, If-Match (ETag) afterwards.
    let store = tftrail_store::open("az://cas/direct").expect("open");
    assert!(store.get_checkpoint().unwrap().is_none());
    assert_eq!(store.swap_checkpoint(None, b"one").unwrap(), Swap::Done);
    assert_eq!(store.swap_checkpoint(None, b"two").unwrap(), Swap::Lost);
    let (bytes, v1) = store.get_checkpoint().unwrap().unwrap();
    assert_eq!(bytes, b"one");
    assert_eq!(
        store.swap_checkpoint(Some(&v1), b"two").unwrap(),
        Swap::Done
    );
    assert_eq!(
        store.swap_checkpoint(Some(&v1), b"three").unwrap(),
        Swap::Lost
    );
    let (bytes, v2) = store.get_checkpoint().unwrap().unwrap();
    assert_eq!(bytes, b"two");
    assert_ne!(v1, v2);

    // Concurrent writer processes: every record lands exactly once.
    let env = Env::new();
    let loc = "az://cas/log";
    g.ok(&env, loc, &["init", "--origin", "test.example/cas"], None);
    g.concurrent_appends(&env, loc, 4, 20);
}

#[test]
fn azure_tampering_is_detected() {
    let Some(g) = azurite() else { return };
    g.with(|a| a.create_container("tamper"));
    let lines: String = (0..300).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let init = |env: &Env, loc: &str| {
        g.ok(env, loc, &["init", "--origin", "test.example/tamper"], None);
        g.ok(env, loc, &["append", "--batch"], Some(lines.as_bytes()));
        let v = g.ok(env, loc, &["verify"], None);
        assert!(v.contains("verified: 300 records"), "{v}");
    };
    // A full entry bundle, a hash tile, a partial bundle, the checkpoint.
    for (n, (blob, offset)) in [
        ("tile/entries/000", 10),
        ("tile/0/000", 100),
        ("tile/entries/001.p/44", 5),
        ("checkpoint", 2),
    ]
    .into_iter()
    .enumerate()
    {
        let prefix = format!("log{n}");
        let loc = format!("az://tamper/{prefix}");
        // One log per environment: each has its own signing key.
        let env = Env::new();
        init(&env, &loc);
        tamper(&g, "tamper", &format!("{prefix}/{blob}"), offset);
        let out = g.tftrail(&env, &loc, &["verify"], None);
        assert_eq!(code(&out), 1, "{blob}\n{}", describe(&out));
        assert!(
            stderr(&out).lines().any(|l| l.starts_with("error: ")),
            "{blob}\n{}",
            describe(&out)
        );
    }
}

#[test]
fn azure_terraform_run_and_blob_tampering() {
    let Some(g) = azurite() else { return };
    g.with(|a| a.create_container("tfrun"));
    let env = Env::new();
    let loc = "az://tfrun/log";
    g.ok(&env, loc, &["init", "--origin", "test.example/aztf"], None);
    g.terraform_runs(
        &env,
        loc,
        &[
            &["init", "-input=false"],
            &["plan", "-input=false", "-out", "p1"],
        ],
    );
    // The plan's artifacts are content-addressed blobs: change one and verify names it.
    let store = tftrail_store::open(loc).unwrap();
    let blobs = store.list("tftrail/blobs/sha256/").unwrap();
    assert!(!blobs.is_empty(), "the plan stored no blob");
    let victim = &blobs[0];
    tamper(&g, "tfrun", &format!("log/{victim}"), 0);
    let out = g.tftrail(&env, loc, &["verify"], None);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let hex = victim.rsplit('/').next().unwrap();
    assert!(stderr(&out).contains(&hex[..12]), "{}", describe(&out));
}

fn line<'a>(text: &'a str, property: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(property))
        .unwrap_or_else(|| panic!("no line for {property}\n{text}"))
}

#[test]
fn azure_storage_check_reports_without_crashing() {
    let Some(g) = azurite() else { return };
    g.with(|a| a.create_container("check"));
    let env = Env::new();
    let loc = "az://check/log";
    // Before the log exists: nothing to read a version id or a retention from.
    let out = g.tftrail(&env, loc, &["storage", "check", loc], None);
    let text = stdout(&out) + &stderr(&out);
    assert_eq!(code(&out), 3, "{}", describe(&out));
    assert!(
        line(&text, "versioning").contains("could not check"),
        "{text}"
    );

    g.ok(&env, loc, &["init", "--origin", "test.example/check"], None);
    let out = g.tftrail(&env, loc, &["storage", "check", loc], None);
    let text = stdout(&out) + &stderr(&out);
    eprintln!("{text}");
    // Azurite has no versioning and no immutability: the checkpoint has no version id (FAIL);
    // what it does not report, and what only the management API shows, is "could not check".
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(text.starts_with("storage check az://check/log"), "{text}");
    assert!(line(&text, "versioning").contains("FAIL"), "{text}");
    assert!(line(&text, "public-access").contains("pass"), "{text}");
    assert!(
        line(&text, "version-level-immutability").contains("could not check"),
        "{text}"
    );
    assert!(
        line(&text, "retention-policy").contains("could not check"),
        "{text}"
    );
    assert!(
        line(&text, "management-plane").contains("could not check"),
        "{text}"
    );
    let out = g.tftrail(&env, loc, &["storage", "check", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["cloud"], "azure");
    assert_eq!(v["passed"], false);

    // A container anyone can read.
    g.with(|a| {
        let r = a.send(
            "PUT",
            "public",
            None,
            "restype=container",
            &[("x-ms-blob-public-access", "container")],
            Vec::new(),
        );
        assert!(r.status < 300, "{r:?}");
    });
    let out = g.tftrail(
        &env,
        "az://public/log",
        &["storage", "check", "az://public/log"],
        None,
    );
    let text = stdout(&out) + &stderr(&out);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(line(&text, "public-access").contains("FAIL"), "{text}");
    assert!(line(&text, "public-access").contains("container"), "{text}");

    // No such container: a usage-level error, not a crash.
    let out = g.tftrail(
        &env,
        "az://nothere/log",
        &["storage", "check", "az://nothere/log"],
        None,
    );
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stderr(&out).contains("does not exist"),
        "{}",
        describe(&out)
    );
}
