//! Every RFC 6962 inclusion and consistency vector from transparency-dev/merkle
//! (committed in tests/vectors/merkle, see its SOURCE.md), including all the cases that must be
//! rejected. TFTRAIL_VECTORS points the tests at another copy.

use std::path::PathBuf;

use base64::Engine;
use serde_json::Value;
use tftrail_core::merkle::{check_consistency_bytes, check_inclusion, parse_hash, Hash};

fn vectors_dir() -> PathBuf {
    if let Ok(d) = std::env::var("TFTRAIL_VECTORS") {
        return PathBuf::from(d);
    }
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/merkle");
    assert!(
        d.is_dir(),
        "test vectors not found at {} (set TFTRAIL_VECTORS)",
        d.display()
    );
    d
}

fn files(dir: PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A hash field; `None` when it is not a valid 32-byte hash (such cases must fail).
fn hash(v: &Value) -> Option<Hash> {
    v.as_str().and_then(parse_hash)
}

fn proof(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(vec![]),
        Value::Array(a) => a.iter().map(hash).collect(),
        _ => None,
    }
}

#[test]
fn inclusion_vectors() {
    let all = files(vectors_dir().join("inclusion"));
    assert!(all.len() > 50, "only {} inclusion vectors", all.len());
    let mut failures = Vec::new();
    for f in &all {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let ok = (|| {
            let p = proof(&v["proof"])?;
            let root = hash(&v["root"])?;
            let leaf = hash(&v["leafHash"])?;
            let idx = v["leafIdx"].as_i64()?;
            let size = v["treeSize"].as_i64()?;
            if idx < 0 || size < 0 {
                return None;
            }
            check_inclusion(&p, size as u64, root, idx as u64, leaf).ok()
        })()
        .is_some();
        if ok == want_err {
            failures.push(format!(
                "{}: wantErr={want_err} but verified={ok}",
                f.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn consistency_vectors() {
    let all = files(vectors_dir().join("consistency"));
    assert!(all.len() > 50, "only {} consistency vectors", all.len());
    let mut failures = Vec::new();
    for f in &all {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let ok = (|| {
            let p = proof(&v["proof"])?;
            let raw = |v: &Value| {
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or(""))
                    .ok()
            };
            let r1 = raw(&v["root1"])?;
            let r2 = raw(&v["root2"])?;
            let s1 = v["size1"].as_i64()?;
            let s2 = v["size2"].as_i64()?;
            if s1 < 0 || s2 < 0 {
                return None;
            }
            check_consistency_bytes(&p, s1 as u64, &r1, s2 as u64, &r2).ok()
        })()
        .is_some();
        if ok == want_err {
            failures.push(format!(
                "{}: wantErr={want_err} but verified={ok}",
                f.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
