//! `tftrail recover`: copy the intact log out of a damaged store, choosing for every object
//! the retained version that verifies, then verify the copy.
//!
//! On `s3://` the source's object versions are consulted (S3 Object Lock keeps versions, not
//! keys): for a create-only object (tile, bundle, blob, batch claim) the ORIGINAL (oldest)
//! data version is taken, whatever delete marker or newer version hides it; for the
//! checkpoint, the newest version that verifies with the key and whose whole tree verifies.
//! Other stores are copied as they are. The source is only read.
//!
//! The same machinery gives `verify` its report of hidden and shadowed objects
//! ([`s3_damage`]).

use super::Global;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tftrail_core::checkpoint::VerifierKey;
use tftrail_core::layout::{classify, ObjectKind};
use tftrail_log::{Log, Problem, VerifyOptions, VerifyReport};
use tftrail_store::s3admin::{KeyState, KeyVersions, S3Admin};
use tftrail_store::{NewObject, Store, StoreError, Swap, Version, CHECKPOINT};

use crate::context;
use crate::error::{CliError, EXIT_INTEGRITY};

/// Copy the log to DEST, taking for each object the retained version that verifies, and
/// verify the copy.
///
/// On s3:// every object version is consulted: objects hidden by a delete marker or shadowed
/// by a newer version are restored from their original (oldest) version; the checkpoint is
/// the newest version that verifies with the key and whose tree verifies. Other stores are
/// copied as they are. The source is never written.
///
/// Exit status: 0 the copy verifies; 1 it does not (the report says what is damaged);
/// 2 usage (DEST already holds a log, bad key); 3 storage failure.
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the recovered log: a new directory or an empty store (s3://, gs://, az://)
    #[arg(long, value_name = "DEST")]
    to: String,
}

/// An in-memory store holding a candidate log.
#[derive(Clone, Default)]
pub(crate) struct MemStore {
    objects: Arc<BTreeMap<String, Vec<u8>>>,
    checkpoint: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Store for MemStore {
    fn location(&self) -> String {
        "(retained versions)".into()
    }
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if path == CHECKPOINT {
            return Ok(self.checkpoint.lock().expect("lock").clone());
        }
        Ok(self.objects.get(path).cloned())
    }
    fn create_all(&self, _: &[NewObject]) -> Result<(), StoreError> {
        Err(StoreError::Backend {
            op: "write",
            path: "(retained versions)".into(),
            message: "read-only".into(),
        })
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }
    fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        Ok(self
            .checkpoint
            .lock()
            .expect("lock")
            .clone()
            .map(|c| (c, Version("mem".into()))))
    }
    fn swap_checkpoint(&self, _: Option<&Version>, _: &[u8]) -> Result<Swap, StoreError> {
        Ok(Swap::Lost)
    }
}

/// One restored object, for the report.
#[derive(serde::Serialize, Clone, Debug)]
pub(crate) struct Restored {
    /// Store path.
    pub path: String,
    /// What had happened to it.
    pub state: &'static str,
    /// The version taken.
    pub version_id: String,
}

/// The log rebuilt from retained versions.
pub(crate) struct Rebuilt {
    /// Create-only objects, by path.
    pub objects: BTreeMap<String, Vec<u8>>,
    /// The chosen checkpoint (None: no version verifies with the key).
    pub checkpoint: Option<Vec<u8>>,
    /// Version id of the chosen checkpoint (S3).
    pub checkpoint_version: Option<String>,
    /// The verification of the rebuilt log with the chosen checkpoint.
    pub report: Option<VerifyReport>,
    /// Objects taken from a version other than the current view.
    pub restored: Vec<Restored>,
    /// Keys with nothing retained, or other remarks.
    pub notes: Vec<String>,
}

fn state_name(s: KeyState) -> &'static str {
    match s {
        KeyState::Intact => "intact",
        KeyState::Deleted => "hidden by a delete marker",
        KeyState::DeletedNothingRetained => "deleted, nothing retained",
        KeyState::Overwritten => "shadowed by a newer version",
    }
}

fn verify_mem(
    objects: &Arc<BTreeMap<String, Vec<u8>>>,
    note: &[u8],
    key: &VerifierKey,
) -> Option<VerifyReport> {
    let mem = MemStore {
        objects: objects.clone(),
        checkpoint: Arc::new(Mutex::new(Some(note.to_vec()))),
    };
    let log = Log::open(Box::new(mem), key.clone()).ok()?;
    log.verify(&VerifyOptions { previous: None }, &mut |_, _| {})
        .ok()
}

/// Rebuilds the log from the retained versions of an s3:// store.
pub(crate) fn rebuild_s3(
    admin: &S3Admin,
    keys: &[KeyVersions],
    key: &VerifierKey,
) -> Result<Rebuilt, CliError> {
    let mut objects = BTreeMap::new();
    let mut restored = Vec::new();
    let mut notes = Vec::new();
    let mut cp_versions: Vec<String> = Vec::new();
    let mut cp_state = KeyState::Intact;
    for kv in keys {
        let Some(kind) = classify(&kv.path) else {
            continue;
        };
        if kind == ObjectKind::Checkpoint {
            cp_versions = kv.data_versions().map(|v| v.version_id.clone()).collect();
            cp_state = kv.state;
            continue;
        }
        let Some(orig) = kv.original() else {
            notes.push(format!("{}: deleted and no version is retained", kv.path));
            continue;
        };
        let data = admin
            .get_version(&kv.path, &orig.version_id)?
            .ok_or_else(|| {
                CliError::failure(format!(
                    "{}: version {} vanished while reading",
                    kv.path, orig.version_id
                ))
            })?;
        if kv.state != KeyState::Intact {
            restored.push(Restored {
                path: kv.path.clone(),
                state: state_name(kv.state),
                version_id: orig.version_id.clone(),
            });
        }
        objects.insert(kv.path.clone(), data);
    }
    let objects = Arc::new(objects);
    // The checkpoint: newest version that opens with the key and whose tree verifies; else
    // the newest that opens with the key (its verification then says what is wrong).
    let mut fallback: Option<(Vec<u8>, String, Option<VerifyReport>)> = None;
    let mut chosen: Option<(Vec<u8>, String, VerifyReport)> = None;
    for (i, vid) in cp_versions.iter().enumerate() {
        let Some(note) = admin.get_version(CHECKPOINT, vid)? else {
            continue;
        };
        if key.open_checkpoint(&note).is_err() {
            notes.push(format!(
                "checkpoint version {vid} does not verify with the key; skipped"
            ));
            continue;
        }
        let rep = verify_mem(&objects, &note, key);
        if rep.as_ref().is_some_and(|r| r.ok()) {
            if i > 0 || cp_state == KeyState::Deleted {
                restored.push(Restored {
                    path: CHECKPOINT.into(),
                    state: if cp_state == KeyState::Deleted {
                        state_name(KeyState::Deleted)
                    } else {
                        "newer versions do not verify"
                    },
                    version_id: vid.clone(),
                });
            }
            chosen = Some((note, vid.clone(), rep.expect("checked")));
            break;
        }
        if fallback.is_none() {
            fallback = Some((note, vid.clone(), rep));
        }
    }
    let (checkpoint, checkpoint_version, report) = match (chosen, fallback) {
        (Some((n, v, r)), _) => (Some(n), Some(v), Some(r)),
        (None, Some((n, v, r))) => {
            notes.push(format!(
                "no retained checkpoint version has a tree that verifies; using the newest that \
                 verifies with the key ({v})"
            ));
            (Some(n), Some(v), r)
        }
        (None, None) => {
            notes.push("no retained checkpoint version verifies with the key".into());
            (None, None, None)
        }
    };
    Ok(Rebuilt {
        objects: Arc::try_unwrap(objects).unwrap_or_else(|a| (*a).clone()),
        checkpoint,
        checkpoint_version,
        report,
        restored,
        notes,
    })
}

/// What `verify` adds on s3://: objects hidden by delete markers or shadowed by newer
/// versions, and whether the log rebuilt from retained versions verifies.
pub(crate) struct Damage {
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
}

/// Inspects the object versions of an s3:// log.
pub(crate) fn s3_damage(location: &str, key: &VerifierKey) -> Damage {
    let mut d = Damage {
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let listed = S3Admin::for_location(location).and_then(|a| {
        let v = a.versions("")?;
        Ok((a, v))
    });
    let (admin, keys) = match listed {
        Ok(x) => x,
        Err(e) => {
            d.notes.push(format!(
                "could not list object versions ({e}); objects hidden by delete markers or \
                 shadowed by newer versions are not reported"
            ));
            return d;
        }
    };
    let mut damaged: Vec<&KeyVersions> = Vec::new();
    for kv in &keys {
        let Some(kind) = classify(&kv.path) else {
            continue;
        };
        match kv.state {
            KeyState::Intact => {}
            KeyState::Overwritten if kind == ObjectKind::Checkpoint => {}
            KeyState::Overwritten => {
                // A rewrite with identical bytes is harmless.
                let mut etags = kv.data_versions().map(|v| v.etag.clone());
                let first = etags.next();
                if etags.all(|e| Some(e) == first) {
                    d.notes.push(format!(
                        "{}: {} versions with identical content",
                        kv.path,
                        kv.data_versions().count()
                    ));
                } else {
                    damaged.push(kv);
                }
            }
            KeyState::Deleted | KeyState::DeletedNothingRetained => damaged.push(kv),
        }
    }
    if damaged.is_empty() {
        return d;
    }
    let rebuilt = rebuild_s3(&admin, &keys, key);
    let intact = matches!(&rebuilt, Ok(r) if r.report.as_ref().is_some_and(|r| r.ok()));
    for kv in damaged {
        let state = state_name(kv.state);
        let version = if kv.path == CHECKPOINT {
            rebuilt
                .as_ref()
                .ok()
                .and_then(|r| r.checkpoint_version.clone())
        } else {
            kv.original().map(|v| v.version_id.clone())
        };
        let message = match (version, intact) {
            (None, _) => format!("{state}; no retained version exists"),
            (Some(v), true) => format!(
                "{state}; an intact retained version exists (version id {v}) — run `tftrail recover --to DIR`"
            ),
            (Some(v), false) => format!(
                "{state}; a retained version exists (version id {v}), but the log rebuilt from \
                 retained versions does not verify — `tftrail recover --to DIR` shows what can be saved"
            ),
        };
        d.problems.push(Problem {
            object: kv.path.clone(),
            index: None,
            message,
        });
    }
    if let Err(e) = rebuilt {
        d.notes.push(format!(
            "could not read the retained versions: {}",
            e.message
        ));
    }
    d
}

/// Reads a non-S3 store as it is.
fn rebuild_plain(store: &dyn Store, key: &VerifierKey) -> Result<Rebuilt, CliError> {
    let mut objects = BTreeMap::new();
    let mut notes = Vec::new();
    let mut skipped = 0;
    for path in store.list("")? {
        if path == CHECKPOINT {
            continue;
        }
        if classify(&path).is_none() {
            skipped += 1;
            continue;
        }
        if let Some(d) = store.get(&path)? {
            objects.insert(path, d);
        }
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} objects tftrail does not write were not copied"
        ));
    }
    let checkpoint = store.get_checkpoint()?.map(|(c, _)| c);
    let objects = Arc::new(objects);
    let report = checkpoint
        .as_ref()
        .and_then(|c| verify_mem(&objects, c, key));
    Ok(Rebuilt {
        objects: Arc::try_unwrap(objects).unwrap_or_else(|a| (*a).clone()),
        checkpoint,
        checkpoint_version: None,
        report,
        restored: Vec::new(),
        notes,
    })
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse_server(
        "recover",
        "it reads the retained object versions of the server's bucket, which only the bucket shows",
    )?;
    let src = g.location();
    let key = g.trusted_key(&src)?.key;
    if src.trim_end_matches('/') == a.to.trim_end_matches('/') {
        return Err(CliError::usage("--to must differ from the source store"));
    }
    let rebuilt = if src.starts_with("s3://") {
        let admin = S3Admin::for_location(&src)?;
        let keys = admin.versions("")?;
        if keys.is_empty() {
            return Err(CliError::usage(format!("{src}: no objects (not a log?)")));
        }
        rebuild_s3(&admin, &keys, &key)?
    } else {
        let store = tftrail_store::open(&src)?;
        let mut r = rebuild_plain(store.as_ref(), &key)?;
        if src.starts_with("gs://") || src.starts_with("az://") || src.starts_with("azure://") {
            r.notes.push(
                "object versions are consulted on s3:// only; the current objects were copied"
                    .into(),
            );
        }
        r
    };
    let Some(note) = rebuilt.checkpoint.clone() else {
        for n in &rebuilt.notes {
            eprintln!("note: {n}");
        }
        return Err(CliError::integrity(format!(
            "{src}: no checkpoint that verifies with the key; nothing to recover"
        )));
    };

    // Write DEST: every object, then the checkpoint.
    let dest = tftrail_store::create(&a.to)?;
    if dest.get_checkpoint()?.is_some() {
        return Err(CliError::usage(format!(
            "{}: already holds a log; recover into a new directory or an empty store",
            a.to
        )));
    }
    let objs: Vec<NewObject> = rebuilt
        .objects
        .iter()
        .map(|(p, d)| NewObject::new(p.clone(), d.clone()))
        .collect();
    for chunk in objs.chunks(256) {
        dest.create_all(chunk)?;
    }
    if dest.swap_checkpoint(None, &note)? != Swap::Done {
        return Err(CliError::failure(format!(
            "{}: another writer created a checkpoint meanwhile",
            a.to
        )));
    }
    drop(dest);

    // Verify DEST from scratch.
    let log = context::open_log_with(&a.to, key.clone())?;
    let rep = log.verify(&VerifyOptions { previous: None }, &mut |_, _| {})?;
    if g.json {
        let mut v = serde_json::to_value(&rep).map_err(|e| CliError::failure(e.to_string()))?;
        v["ok"] = rep.ok().into();
        v["source"] = src.clone().into();
        v["destination"] = a.to.clone().into();
        v["objects"] = rebuilt.objects.len().into();
        v["restored"] = serde_json::to_value(&rebuilt.restored)
            .map_err(|e| CliError::failure(e.to_string()))?;
        v["checkpoint_version"] = rebuilt.checkpoint_version.clone().into();
        v["recover_notes"] = rebuilt.notes.clone().into();
        println!("{v}");
    } else {
        for r in &rebuilt.restored {
            println!(
                "restored {} ({}) from retained version {}",
                r.path, r.state, r.version_id
            );
        }
        for n in &rebuilt.notes {
            println!("note: {n}");
        }
        if rep.ok() {
            println!(
                "OK: recovered log {} into {}: {} records, root {}, {} objects, {} blobs; verified",
                rep.origin,
                a.to,
                rep.size,
                rep.root,
                rebuilt.objects.len() + 1,
                rep.blobs
            );
        } else {
            for p in &rep.problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "hint: the copy at {} does not verify: no retained version of the objects above is intact",
                a.to
            );
        }
    }
    Ok(if rep.ok() { 0 } else { EXIT_INTEGRITY })
}
