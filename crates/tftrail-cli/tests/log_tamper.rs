//! Tampering with a stored log: every alteration must make `tftrail verify` exit 1 and name
//! the object and/or entry index concerned, in text and in `--json`; `log` and `show` must
//! refuse to print data that does not match the signed checkpoint.
//!
//! Every test works on its own copy of one template log of 304 records: a full and a partial
//! entry bundle (with older partial versions beside it), full and partial hash tiles on two
//! levels, and one record referencing a blob.

mod common;

use std::sync::OnceLock;

use common::{assert_fails, code, describe, flip_byte, overwrite, stderr, stdout, Env};
use tftrail_core::bundle;
use tftrail_core::checkpoint::SigningKey;
use tftrail_core::record::{Actor, Record};
use tftrail_log::{Blob, Log};

/// Index of the record that references the blob.
const BLOB_INDEX: u64 = 200;
/// Size of the template log.
const SIZE: u64 = 304;
/// The current partial bundle and level-0 tile of the template log.
const PARTIAL_BUNDLE: &str = "tile/entries/001.p/48";
const PARTIAL_TILE0: &str = "tile/0/001.p/48";
const TILE1: &str = "tile/1/000.p/1";

struct Template {
    env: Env,
    /// The checkpoint at size 200, saved before the later appends.
    early_checkpoint: Vec<u8>,
    /// Path of the blob, relative to the store.
    blob: String,
}

fn lines(range: std::ops::Range<u64>) -> String {
    range.map(|i| format!("{{\"n\":{i}}}\n")).collect()
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let env = Env::new();
        env.init();
        assert_eq!(env.append_batch(&lines(0..200)), (0, 200, 200));
        let early_checkpoint = env.checkpoint_bytes();

        // A record with a blob, through the library (the CLI writes blobs only in `run`).
        let key = SigningKey::parse(&std::fs::read_to_string(&env.key).unwrap()).unwrap();
        let store = tftrail_store::open(env.store.to_str().unwrap()).unwrap();
        let log = Log::open(store, key.verifier()).unwrap();
        let blob = Blob {
            name: "plan.json".into(),
            data: (0..5000u32).flat_map(|i| i.to_le_bytes()).collect(),
        };
        let entry = Record::new(
            "test.blob",
            "2026-01-01T00:00:00Z",
            Actor {
                authenticated: None,
                user: "tester".into(),
                host: "box".into(),
                ci: None,
            },
            serde_json::json!({"n": BLOB_INDEX}),
            vec![blob.reference()],
        )
        .unwrap()
        .to_entry()
        .unwrap();
        let out = log
            .append(
                &key,
                vec![entry],
                std::slice::from_ref(&blob),
                &mut |_, _| {},
            )
            .unwrap();
        assert_eq!(out.first, BLOB_INDEX);
        let blob_path = tftrail_core::layout::blob_path(&blob.reference().sha256);

        assert_eq!(env.append_batch(&lines(201..301)), (201, 100, 301));
        for i in 301..SIZE {
            assert_eq!(env.append(&format!("{{\"n\":{i}}}")), i);
        }
        for p in [
            PARTIAL_BUNDLE,
            PARTIAL_TILE0,
            TILE1,
            "tile/entries/001.p/45",
            &blob_path,
        ] {
            assert!(env.object(p).is_file(), "template lacks {p}");
        }
        let out = env.tftrail(&["verify"], None);
        assert_eq!(
            code(&out),
            0,
            "template does not verify\n{}",
            describe(&out)
        );
        Template {
            env,
            early_checkpoint,
            blob: blob_path,
        }
    })
}

/// A fresh copy of the template log.
fn fresh() -> Env {
    template().env.clone_log()
}

/// Byte offset of the first payload byte of entry `k` in bundle data.
fn entry_offset(data: &[u8], k: usize) -> usize {
    let mut off = 0;
    for _ in 0..k {
        off += 2 + usize::from(u16::from_be_bytes([data[off], data[off + 1]]));
    }
    off + 2
}

/// Changes one digit of the `"n":<i>` payload of entry `k` of the bundle at `rel`, keeping the
/// record valid JSON (so only the hashes can tell).
fn alter_entry(env: &Env, rel: &str, k: usize) {
    let p = env.object(rel);
    let mut d = std::fs::read(&p).unwrap();
    let start = entry_offset(&d, k);
    let len = usize::from(u16::from_be_bytes([d[start - 2], d[start - 1]]));
    let e = &d[start..start + len];
    let at = e
        .windows(4)
        .position(|w| w == b"\"n\":")
        .expect("payload n")
        + 4;
    let i = start + at;
    d[i] = if d[i] == b'9' { b'8' } else { d[i] + 1 };
    overwrite(&p, &d);
}

/// `verify` (text): exit 1, an `error:` line naming every needle.
fn verify_fails(env: &Env, needles: &[&str]) -> String {
    let out = env.tftrail(&["verify"], None);
    assert!(stdout(&out).is_empty() || !stdout(&out).starts_with("OK"));
    assert_fails(&out, 1, needles)
}

/// `verify --json`: exit 1, ok=false, and a problem naming `object` (with `index` if given).
fn verify_json_fails(env: &Env, object: &str, index: Option<u64>) -> serde_json::Value {
    let out = env.tftrail(&["verify", "--json"], None);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e})\n{}", describe(&out)));
    assert_eq!(v["ok"], false, "{v}");
    let problems = v["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems list: {v}"));
    assert!(
        problems.iter().any(|p| p["object"] == object
            && index.is_none_or(|i| p["index"] == i)
            && p["message"].as_str().is_some_and(|m| !m.is_empty())),
        "no problem for {object} (index {index:?}) in {v}"
    );
    v
}

#[test]
fn flipped_byte_in_full_entry_bundle() {
    let env = fresh();
    alter_entry(&env, "tile/entries/000", 5);
    verify_fails(&env, &["tile/entries/000", "entry 5"]);
    verify_json_fails(&env, "tile/entries/000", Some(5));
}

#[test]
fn flipped_byte_in_partial_entry_bundle() {
    let env = fresh();
    alter_entry(&env, PARTIAL_BUNDLE, 4);
    verify_fails(&env, &[PARTIAL_BUNDLE, "entry 260"]);
    verify_json_fails(&env, PARTIAL_BUNDLE, Some(260));
}

#[test]
fn flipped_length_prefix_in_entry_bundle() {
    let env = fresh();
    let p = env.object("tile/entries/000");
    let d = std::fs::read(&p).unwrap();
    // The high byte of entry 7's length: the bundle no longer splits into 256 entries.
    flip_byte(&p, (entry_offset(&d, 7) - 2) as isize);
    verify_fails(&env, &["tile/entries/000"]);
    verify_json_fails(&env, "tile/entries/000", None);
}

#[test]
fn flipped_byte_in_old_partial_bundle() {
    let env = fresh();
    alter_entry(&env, "tile/entries/001.p/45", 2);
    verify_fails(&env, &["tile/entries/001.p/45"]);
    verify_json_fails(&env, "tile/entries/001.p/45", None);
}

#[test]
fn flipped_byte_in_hash_tiles() {
    for (tile, offset, index) in [
        ("tile/0/000", 7 * 32 + 3, 7),
        (PARTIAL_TILE0, 10 * 32, 266),
        (TILE1, 31, 0),
    ] {
        let env = fresh();
        flip_byte(&env.object(tile), offset);
        verify_fails(&env, &[tile, &format!("entry {index}")]);
        verify_json_fails(&env, tile, Some(index));
    }
}

#[test]
fn flipped_byte_in_blob() {
    let env = fresh();
    let blob = &template().blob;
    flip_byte(&env.object(blob), 100);
    verify_fails(&env, &[blob, &format!("entry {BLOB_INDEX}"), "SHA-256"]);
    verify_json_fails(&env, blob, Some(BLOB_INDEX));
}

#[test]
fn flipped_byte_in_checkpoint_body() {
    let env = fresh();
    let cp = env.checkpoint_bytes();
    // The tree-size line "304": make it "305".
    let at = cp.windows(4).position(|w| w == b"304\n").unwrap() + 2;
    flip_byte(&env.object("checkpoint"), at as isize);
    verify_fails(&env, &["checkpoint", "signature"]);
    verify_json_fails(&env, "checkpoint", None);
}

#[test]
fn flipped_byte_in_checkpoint_signature() {
    let env = fresh();
    let mut cp = env.checkpoint_bytes();
    // A base64 character in the middle of the Ed25519 signature (past the 4-byte key ID).
    let i = cp.len() - 20;
    cp[i] = if cp[i] == b'A' { b'B' } else { b'A' };
    overwrite(&env.object("checkpoint"), &cp);
    verify_fails(&env, &["checkpoint", "signature"]);
    verify_json_fails(&env, "checkpoint", None);
}

#[test]
fn deleted_entry_bundles() {
    for (bundle, index) in [("tile/entries/000", 0), (PARTIAL_BUNDLE, 256)] {
        let env = fresh();
        std::fs::remove_file(env.object(bundle)).unwrap();
        verify_fails(&env, &[bundle, &format!("entry {index}"), "missing"]);
        verify_json_fails(&env, bundle, Some(index));
    }
}

#[test]
fn deleted_hash_tiles() {
    for (tile, index) in [("tile/0/000", 0), (PARTIAL_TILE0, 256), (TILE1, 0)] {
        let env = fresh();
        std::fs::remove_file(env.object(tile)).unwrap();
        verify_fails(&env, &[tile, &format!("entry {index}"), "missing"]);
        verify_json_fails(&env, tile, Some(index));
    }
}

#[test]
fn deleted_blob() {
    let env = fresh();
    let blob = &template().blob;
    std::fs::remove_file(env.object(blob)).unwrap();
    verify_fails(&env, &[blob, &format!("entry {BLOB_INDEX}"), "missing"]);
    verify_json_fails(&env, blob, Some(BLOB_INDEX));
}

#[test]
fn swapped_entries_within_a_bundle() {
    for (rel, k, first) in [
        ("tile/entries/000", 10usize, 0u64),
        (PARTIAL_BUNDLE, 0, 256),
    ] {
        let env = fresh();
        let p = env.object(rel);
        let d = std::fs::read(&p).unwrap();
        let mut entries: Vec<Vec<u8>> = bundle::decode(&d)
            .unwrap()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        entries.swap(k, k + 1);
        let swapped = bundle::encode(&entries);
        assert_eq!(swapped.len(), d.len());
        overwrite(&p, &swapped);
        let index = first + k as u64;
        verify_fails(&env, &[rel, &format!("entry {index}")]);
        verify_json_fails(&env, rel, Some(index));
    }
}

#[test]
fn rolled_back_checkpoint() {
    let env = fresh();
    // This machine verifies the log at size 304 and remembers it.
    env.ok(&["verify"], None);
    // Somebody puts back the checkpoint of size 200 (a validly signed, older one).
    overwrite(&env.object("checkpoint"), &template().early_checkpoint);
    verify_fails(&env, &["checkpoint", "200", "304", "rolled back"]);
    verify_json_fails(&env, "checkpoint", None);
    // A machine that never saw the newer checkpoint cannot tell.
    let other = Env::new();
    let out = other
        .command(&["verify"])
        .env("TFTRAIL_KEY", &env.key)
        .env("TFTRAIL_STORE", &env.store)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

#[test]
fn log_replaced_by_one_with_another_key() {
    let env = fresh();
    let impostor = Env::new();
    // Same origin, same records: only the key differs.
    impostor.init();
    impostor.append_batch(&lines(0..SIZE));
    std::fs::remove_dir_all(&env.store).unwrap();
    common::copy_tree(&impostor.store, &env.store);
    verify_fails(
        &env,
        &[
            "checkpoint",
            "is not signed by the key named by TFTRAIL_KEY",
        ],
    );
    verify_json_fails(&env, "checkpoint", None);
}

#[test]
fn log_and_show_refuse_tampered_bundle() {
    let env = fresh();
    alter_entry(&env, "tile/entries/000", 5);
    let out = env.tftrail(&["show", "5"], None);
    assert_fails(&out, 1, &["tile/entries/000", "entry 5"]);
    assert!(stdout(&out).is_empty(), "{}", describe(&out));
    let out = env.tftrail(&["show", "5", "--json"], None);
    assert_fails(&out, 1, &["entry 5"]);
    assert!(stdout(&out).is_empty());
    // Other records of the same bundle are still authenticated individually.
    env.ok(&["show", "6"], None);
    let out = env.tftrail(&["log", "--limit", "0"], None);
    assert_fails(&out, 1, &["tile/entries/000", "entry 5"]);
    assert!(
        stdout(&out).is_empty(),
        "log printed records\n{}",
        describe(&out)
    );
    // `log` of only the newest records does not read the altered bundle.
    env.ok(&["log", "--limit", "10"], None);
}

#[test]
fn log_and_show_refuse_tampered_hash_tile() {
    let env = fresh();
    flip_byte(&env.object("tile/0/000"), 5 * 32);
    let out = env.tftrail(&["show", "5"], None);
    assert_fails(&out, 1, &[]);
    assert!(stdout(&out).is_empty());
    let out = env.tftrail(&["log", "--limit", "0", "--json"], None);
    assert_fails(&out, 1, &[]);
    assert!(stdout(&out).is_empty());
    let _ = stderr(&out);
}

#[test]
fn entry_forged_together_with_its_hash_tile() {
    // Alter entry 5 and write its new leaf hash into the level-0 tile: only the level-1 tile
    // and the signed root can tell. `show` must not print the forgery.
    let env = fresh();
    alter_entry(&env, "tile/entries/000", 5);
    let d = std::fs::read(env.object("tile/entries/000")).unwrap();
    let forged = bundle::decode(&d).unwrap()[5].to_vec();
    let tile = env.object("tile/0/000");
    let mut t = std::fs::read(&tile).unwrap();
    t[5 * 32..6 * 32].copy_from_slice(&tftrail_core::merkle::leaf_hash(&forged).0);
    overwrite(&tile, &t);
    let out = env.tftrail(&["show", "5", "--json"], None);
    assert_fails(&out, 1, &[]);
    assert!(
        stdout(&out).is_empty(),
        "show printed a forged record\n{}",
        describe(&out)
    );
    let out = env.tftrail(&["log", "--limit", "0"], None);
    assert_fails(&out, 1, &[]);
    assert!(stdout(&out).is_empty(), "{}", describe(&out));
    let out = env.tftrail(&["prove", "5"], None);
    assert_fails(&out, 1, &[]);
    // The full check finds the level-1 tile (and the root) no longer match.
    verify_fails(&env, &[TILE1]);
    verify_json_fails(&env, TILE1, Some(0));
}
