//! Regenerates the seed corpora in `fuzz/corpus/<target>/` from the repository's test fixtures
//! and from objects tftrail itself writes (signed with the fixed fuzz key):
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`. Existing seeds are replaced;
//! the set stays small (a few hundred kB).

use std::path::{Path, PathBuf};

use serde_json::json;
use tftrail_core::batch;
use tftrail_core::bundle;
use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::merkle::{leaf_hash, node_hash, root_of};
use tftrail_core::receipt::Receipt;
use tftrail_core::record::{Actor, BlobRef, Record};

fn write(root: &Path, target: &str, seeds: &[Vec<u8>]) {
    let dir = root.join(target);
    if dir.is_dir() {
        std::fs::remove_dir_all(&dir).expect("remove old seeds");
    }
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), s).expect("write a seed");
    }
    println!("{target}: {} seeds", seeds.len());
}

fn records() -> Vec<Vec<u8>> {
    let actor = Actor {
        authenticated: None,
        user: "alice".into(),
        host: "ci-7".into(),
        ci: None,
    };
    let ci = Actor {
        authenticated: None,
        ci: Some(json!({"provider": "github", "run": 42, "ref": "refs/heads/main"})),
        ..actor.clone()
    };
    let blob = BlobRef {
        name: "plan.json".into(),
        sha256: "a".repeat(64),
        size: 81234,
    };
    let rows = [
        (
            "init",
            "2026-11-26T05:00:00Z",
            actor.clone(),
            json!({}),
            vec![],
        ),
        (
            "terraform.plan",
            "2026-11-26T05:00:00.123Z",
            ci,
            json!({"counts": {"add": 1, "change": 0}, "ok": true, "n": -1.5e-7,
                   "s": "é\u{1f}\"\\\u{2028}😀", "a": [null, [], {}]}),
            vec![blob.clone()],
        ),
        (
            "terraform.apply",
            "2026-02-28T23:59:60Z",
            actor,
            json!({"exit": 0, "big": 12345678901234567890u64, "f": 0.1}),
            vec![blob.clone(), blob],
        ),
    ];
    rows.into_iter()
        .map(|(k, t, a, p, b)| Record::new(k, t, a, p, b).unwrap().to_entry().unwrap())
        .collect()
}

/// Records a team server writes: an authenticated identity of each shape beside the
/// self-asserted actor (kept apart from [`records`], whose entries the other corpora hold).
fn server_records() -> Vec<Vec<u8>> {
    let actor = |authenticated| Actor {
        authenticated: Some(authenticated),
        user: "alice".into(),
        host: "ci-7".into(),
        ci: Some(json!({"provider": "github", "run": 42})),
    };
    let rows = [
        actor(json!({"by": "token", "name": "ci-deploy", "role": "writer",
                     "token": "0123456789abcdef"})),
        actor(
            json!({"by": "oidc", "issuer": "https://token.actions.githubusercontent.com",
                     "subject": "repo:acme/infra:ref:refs/heads/main", "repository": "acme/infra",
                     "ref": "refs/heads/main", "workflow": "deploy", "run_id": "42",
                     "actor": "alice", "role": "writer"}),
        ),
        Actor {
            ci: None,
            ..actor(json!({"by": "server"}))
        },
    ];
    rows.into_iter()
        .map(|a| {
            Record::new(
                "server.event",
                "2026-11-26T05:00:00Z",
                a,
                json!({"n": 1}),
                vec![],
            )
            .unwrap()
            .to_entry()
            .unwrap()
        })
        .collect()
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = repo.join("fuzz/corpus");
    let testdata = repo.join("crates/tftrail-terraform/testdata");
    let read = |name: &str| std::fs::read(testdata.join(name)).expect("read a fixture");
    let sk = tftrail_fuzz::signing_key();
    let origin = sk.name().to_string();
    let entries = records();

    // Checkpoints: bodies, signed notes (also with an extension line), key texts.
    let cp = |size, root| Checkpoint {
        origin: origin.clone(),
        size,
        root,
    };
    let c1 = cp(1, leaf_hash(&entries[0]));
    let c3 = cp(
        3,
        root_of(&entries.iter().map(|e| leaf_hash(e)).collect::<Vec<_>>()),
    );
    let mut ext = c3.body();
    ext.extend_from_slice(b"extension line\n");
    write(
        &corpus,
        "checkpoint",
        &[
            c1.body(),
            sk.sign_checkpoint(&c1),
            sk.sign_checkpoint(&c3),
            sk.sign_note(&ext),
            tftrail_fuzz::SKEY.as_bytes().to_vec(),
            tftrail_fuzz::VKEY.as_bytes().to_vec(),
        ],
    );

    // Batch claims, behind the flags byte of the batch target (3: sign, fix the digest).
    let hashes: Vec<_> = entries.iter().map(|e| leaf_hash(e)).collect();
    let claims = [
        batch::encode(&sk, 0, &entries),
        batch::encode(&sk, 254, &entries[..1]),
        batch::encode_hashes(&sk, 255, "stage-1", &hashes),
        batch::encode_hashes(&sk, 18_446_744_073_709_551_000, "s", &hashes[..1]),
        batch::encode_hashes(&sk, u64::MAX, "s", &hashes[..1]),
    ];
    let mut seeds = Vec::new();
    for c in &claims {
        // As stored (flags 0), and as the header's text for the target to sign (flags 3).
        seeds.push([&[0u8][..], c].concat());
        let nul = c.iter().position(|&b| b == 0).expect("a claim has a NUL");
        let text_end = c
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("a signed note")
            + 1;
        seeds.push([&[3u8][..], &c[..text_end], &c[nul..]].concat());
    }
    write(&corpus, "batch", &seeds);

    write(
        &corpus,
        "bundle",
        &[
            bundle::encode(&entries),
            bundle::encode(&[b"".as_slice(), b"x"]),
            Vec::new(),
        ],
    );
    write(
        &corpus,
        "record",
        &[entries.clone(), server_records()].concat(),
    );

    // Receipts: the entry carried or not, proofs of length 0 to 2.
    let h = &hashes;
    let two = cp(2, node_hash(&h[0], &h[1]));
    let receipts = [
        Receipt {
            index: 0,
            proof: vec![],
            entry: Some(entries[0].clone()),
            checkpoint: sk.sign_checkpoint(&c1),
        },
        Receipt {
            index: 1,
            proof: vec![h[0]],
            entry: Some(entries[1].clone()),
            checkpoint: sk.sign_checkpoint(&two),
        },
        Receipt {
            index: 2,
            proof: vec![node_hash(&h[0], &h[1])],
            entry: None,
            checkpoint: sk.sign_checkpoint(&c3),
        },
    ];
    write(
        &corpus,
        "receipt",
        &receipts.iter().map(Receipt::encode).collect::<Vec<_>>(),
    );

    let plans = [read("plan_create.json"), read("plan_update.json")];
    write(&corpus, "plan", &plans);
    // The generator reads choices from the bytes: a few patterns give it a start.
    write(
        &corpus,
        "plan_secrets",
        &[
            vec![0xff; 64],
            (0..=255u8).collect(),
            (0..512u32).map(|i| (i * 37 % 251) as u8).collect(),
        ],
    );

    let state = read("state_a.json");
    let mut pair = state.clone();
    pair.push(0);
    pair.extend_from_slice(
        &String::from_utf8_lossy(&state)
            .replace("\"serial\": 5", "\"serial\": 6")
            .into_bytes(),
    );
    write(&corpus, "state", &[state, pair]);

    write(
        &corpus,
        "redact",
        &[
            b"hunter22\0the password is hunter22, really".to_vec(),
            b"multi\nline secret\0a multi line secret\nin output".to_vec(),
            b"q\"uote\\d\0json: {\"p\": \"q\\\"uote\\\\d\"}".to_vec(),
            b"abcd\0bcde\0abcdefg".to_vec(),
            b"1234\0{\"a\": true, \"b\": {\"c\": true}}".to_vec(),
        ],
    );

    write(
        &corpus,
        "location",
        &[
            "s3://my-bucket/audit/log",
            "gs://bucket",
            "az://container/prefix/deeper",
            "azure://container",
            "S3A://bucket.with.dots/p",
            "file:///var/lib/tftrail",
            "./relative/dir",
            "s3://bucket/a//b",
            "s3://bucket/p?x=1",
        ]
        .map(|s| s.as_bytes().to_vec()),
    );
}
