//! A store in a local directory.
//!
//! Objects are files below the root, written create-only: temp file, fsync, rename without
//! replace, fsync of the directory, mode 0444. The checkpoint is replaced by rename under an
//! advisory lock, which also serialises writers on this machine.
//!
//! There is no WORM check for a local directory: a local filesystem gives no write-once
//! guarantee (mode 0444 and the create-only protocol stop accidents, not an administrator), so
//! `storage check` refuses a local location ([`crate::worm::check`]).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{flock, FlockOperation};
use sha2::{Digest, Sha256};

use crate::{NewObject, Store, StoreError, Swap, Version, WriterLock, CHECKPOINT};

/// Directory (inside the root) for temporary files; never part of the log.
const TMP_DIR: &str = ".tmp";
/// Lock file serialising writers.
const WRITER_LOCK: &str = ".lock";
/// Lock file guarding the checkpoint's compare-and-swap.
const CHECKPOINT_LOCK: &str = ".lock-checkpoint";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Threads fsyncing the temp files of one `create_all` at once.
const PARALLEL_WRITES: usize = 8;
/// Temp files open at once while staging.
const STAGE_GROUP: usize = 256;

/// How [`LocalStore::stage_all`] names the files it writes.
#[derive(Clone, Copy)]
enum Naming<'a> {
    /// A fresh temp name, unique to this process.
    Temp,
    /// The staging name of the object under this stage ([`LocalStore::staged_path`]).
    Staged(&'a str),
}

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

fn io_err(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: path.as_ref().display().to_string(),
        source,
    }
}

impl LocalStore {
    /// Opens an existing directory as a store.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(LocalStore { root }),
            Ok(_) => Err(StoreError::NotAStore {
                location: root.display().to_string(),
                reason: "is not a directory".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotAStore {
                location: root.display().to_string(),
                reason: "does not exist".into(),
            }),
            Err(e) => Err(io_err("open", &root, e)),
        }
    }

    /// Creates the directory (and its parents) if needed and opens it. The directory must
    /// not already hold a checkpoint: that is checked by the log layer.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io_err("create directory", &root, e))?;
        Self::open(root)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn object_path(&self, path: &str) -> Result<PathBuf, StoreError> {
        let ok = !path.is_empty()
            && !path.starts_with('/')
            && path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".." && !c.starts_with(".tmp"));
        if !ok {
            return Err(StoreError::Backend {
                op: "resolve",
                path: path.to_string(),
                message: "invalid object path".into(),
            });
        }
        Ok(self.root.join(path))
    }

    fn tmp_file(&self) -> Result<(PathBuf, File), StoreError> {
        let dir = self.root.join(TMP_DIR);
        if let Err(e) = fs::create_dir(&dir) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(io_err("create directory", &dir, e));
            }
        }
        loop {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let p = dir.join(format!("{}-{}", std::process::id(), n));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&p)
            {
                Ok(f) => return Ok((p, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create", &p, e)),
            }
        }
    }

    /// Where the object `path` is staged under `stage`: `.tmp/<stage>+<path, '/' as '+'>`.
    fn staged_path(&self, stage: &str, path: &str) -> Result<PathBuf, StoreError> {
        self.object_path(path)?;
        let stage_ok = !stage.is_empty()
            && stage.len() <= 64
            && stage
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-');
        if !stage_ok || path.contains('+') {
            return Err(StoreError::Backend {
                op: "stage",
                path: path.to_string(),
                message: format!("cannot stage under {stage:?}"),
            });
        }
        Ok(self
            .root
            .join(TMP_DIR)
            .join(format!("{stage}+{}", path.replace('/', "+"))))
    }

    /// Creates the staging file for `path` under `stage` (in `.tmp`, which [`Store::stage`]
    /// has created).
    fn staged_file(&self, stage: &str, path: &str) -> Result<(PathBuf, File), StoreError> {
        let p = self.staged_path(stage, path)?;
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&p)
        };
        let f = match open() {
            // Left by an earlier attempt under the same name that never got its claim: a
            // temp file, not part of the log.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::remove_file(&p).and_then(|()| open())
            }
            r => r,
        }
        .map_err(|e| io_err("create", &p, e))?;
        Ok((p, f))
    }

    /// Writes `data` to a durable temp file and returns its path.
    fn write_tmp(&self, data: &[u8]) -> Result<PathBuf, StoreError> {
        let (p, mut f) = self.tmp_file()?;
        let res = f.write_all(data).and_then(|_| f.sync_all());
        if let Err(e) = res {
            let _ = fs::remove_file(&p);
            return Err(io_err("write", &p, e));
        }
        Ok(p)
    }

    /// Creates the directories leading to `target`; returns the directories whose entries
    /// changed and must be fsynced.
    fn ensure_parents(
        &self,
        target: &Path,
        dirty: &mut BTreeSet<PathBuf>,
    ) -> Result<(), StoreError> {
        let parent = target.parent().expect("object paths have a parent");
        if parent.is_dir() {
            return Ok(());
        }
        // Create missing ancestors one by one so that each new entry's parent gets fsynced.
        let mut missing = Vec::new();
        let mut p = parent;
        while !p.is_dir() {
            missing.push(p.to_path_buf());
            p = p.parent().expect("root exists");
        }
        for d in missing.into_iter().rev() {
            match fs::create_dir(&d) {
                Ok(()) => {
                    dirty.insert(d.parent().expect("has parent").to_path_buf());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("create directory", &d, e)),
            }
        }
        Ok(())
    }

    /// Writes each object that does not exist yet to a durable temp file. `None`: the object
    /// exists. Files are created and written on this thread (creating inodes in parallel only
    /// contends on the filesystem's allocation locks) and made durable by fsyncs on several
    /// threads at once, which the filesystem can commit together. `dir`, when given, is
    /// fsynced beside the last files (after every name exists), making the names durable too.
    fn stage_all(
        &self,
        objects: &[NewObject],
        naming: Naming,
        dir: Option<&Path>,
    ) -> Result<Vec<Option<PathBuf>>, StoreError> {
        // A bounded number of open temp files at a time.
        let mut out = Vec::with_capacity(objects.len());
        let groups = objects.len().div_ceil(STAGE_GROUP).max(1);
        for (k, group) in objects.chunks(STAGE_GROUP).enumerate() {
            let dir = dir.filter(|_| k + 1 == groups);
            match self.stage_group(group, naming, dir) {
                Ok(paths) => out.extend(paths),
                Err(e) => {
                    for p in out.into_iter().flatten() {
                        let _ = fs::remove_file(p);
                    }
                    return Err(e);
                }
            }
        }
        if objects.is_empty() {
            if let Some(d) = dir {
                sync_dir(d)?;
            }
        }
        Ok(out)
    }

    fn stage_group(
        &self,
        objects: &[NewObject],
        naming: Naming,
        dir: Option<&Path>,
    ) -> Result<Vec<Option<PathBuf>>, StoreError> {
        let mut staged: Vec<Option<(PathBuf, File)>> = Vec::with_capacity(objects.len());
        let cleanup = |staged: Vec<Option<(PathBuf, File)>>| {
            for (p, _) in staged.into_iter().flatten() {
                let _ = fs::remove_file(p);
            }
        };
        for o in objects {
            let written = (|| {
                // An object that exists is not written again (it is compared when named); the
                // checkpoint, the one object that changes, is always staged.
                if o.path != CHECKPOINT && self.object_path(&o.path)?.exists() {
                    return Ok(None);
                }
                let (p, mut f) = match naming {
                    Naming::Temp => self.tmp_file()?,
                    Naming::Staged(stage) => self.staged_file(stage, &o.path)?,
                };
                match f.write_all(&o.data) {
                    Ok(()) => Ok(Some((p, f))),
                    Err(e) => {
                        let _ = fs::remove_file(&p);
                        Err(io_err("write", &p, e))
                    }
                }
            })();
            match written {
                Ok(x) => staged.push(x),
                Err(e) => {
                    cleanup(staged);
                    return Err(e);
                }
            }
        }
        let sync = |part: &[Option<(PathBuf, File)>]| -> Result<(), StoreError> {
            for (p, f) in part.iter().flatten() {
                f.sync_all().map_err(|e| io_err("write", p, e))?;
            }
            Ok(())
        };
        let pending = staged.iter().filter(|x| x.is_some()).count();
        let threads = pending.clamp(1, PARALLEL_WRITES);
        let synced = if threads == 1 && dir.is_none() {
            sync(&staged)
        } else {
            let chunk = staged.len().div_ceil(threads).max(1);
            std::thread::scope(|s| {
                let mut handles: Vec<_> = staged
                    .chunks(chunk)
                    .map(|part| s.spawn(move || sync(part)))
                    .collect();
                if let Some(d) = dir {
                    handles.push(s.spawn(move || sync_dir(d)));
                }
                handles
                    .into_iter()
                    .map(|h| h.join().expect("sync thread panicked"))
                    .collect::<Result<Vec<()>, _>>()
                    .map(|_| ())
            })
        };
        if let Err(e) = synced {
            cleanup(staged);
            return Err(e);
        }
        Ok(staged.into_iter().map(|x| x.map(|(p, _)| p)).collect())
    }

    /// Gives staged temp files their names (never replacing anything) and compares objects
    /// that already existed; returns the directories to fsync. On failure the temp files not
    /// yet renamed are removed, unless `keep` (staged objects a durable claim commits to must
    /// stay findable).
    fn commit_staged(
        &self,
        objects: &[NewObject],
        staged: Vec<Option<PathBuf>>,
        keep: bool,
    ) -> Result<BTreeSet<PathBuf>, StoreError> {
        let discard = |tmp: &Path| {
            if !keep {
                let _ = fs::remove_file(tmp);
            }
        };
        let mut dirty = BTreeSet::new();
        let mut result = Ok(());
        for (obj, tmp) in objects.iter().zip(staged) {
            if result.is_err() {
                if let Some(t) = tmp {
                    discard(&t);
                }
                continue;
            }
            result = (|| {
                let target = self.object_path(&obj.path)?;
                let Some(tmp) = tmp else {
                    return self.compare_existing(&target, obj);
                };
                if let Err(e) = self.ensure_parents(&target, &mut dirty) {
                    discard(&tmp);
                    return Err(e);
                }
                match rename_noreplace(&tmp, &target) {
                    Ok(()) => {
                        // The new name must survive a crash; the temp name's removal need not.
                        dirty.insert(target.parent().expect("has parent").to_path_buf());
                        Ok(())
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let same = self.compare_existing(&target, obj);
                        if same.is_ok() {
                            let _ = fs::remove_file(&tmp);
                        } else {
                            discard(&tmp);
                        }
                        same
                    }
                    Err(e) => {
                        discard(&tmp);
                        Err(io_err("write", &target, e))
                    }
                }
            })();
        }
        if result.is_err() {
            // Names given before the failure must still be made durable.
            let _ = sync_dirs(&dirty);
        }
        result.map(|()| dirty)
    }

    fn compare_existing(&self, target: &Path, obj: &NewObject) -> Result<(), StoreError> {
        let existing = fs::read(target).map_err(|e| io_err("read", target, e))?;
        if existing == obj.data {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                path: obj.path.clone(),
            })
        }
    }

    fn lock_file(&self, name: &str) -> Result<WriterLock, StoreError> {
        let p = self.root.join(name);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&p)
            .map_err(|e| io_err("open lock", &p, e))?;
        flock(&f, FlockOperation::LockExclusive).map_err(|e| io_err("lock", &p, e.into()))?;
        Ok(WriterLock::new(f))
    }
}

/// Renames `from` to `to`, failing with `AlreadyExists` instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            // Filesystems without RENAME_NOREPLACE: link() never replaces either.
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Fsyncs directories, in parallel when there are several.
fn sync_dirs(dirs: &BTreeSet<PathBuf>) -> Result<(), StoreError> {
    if dirs.len() <= 1 {
        return dirs.iter().try_for_each(|d| sync_dir(d));
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = dirs.iter().map(|d| s.spawn(move || sync_dir(d))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sync thread panicked"))
            .collect::<Result<Vec<()>, _>>()
    })?;
    Ok(())
}

/// Reads the rest of `f` into `buf` and returns where it lies. The buffer is used as it is
/// (never cleared) and grows only when the file does not fit, so that reading many objects into
/// one buffer costs one read each, plus the one that sees the end. The bytes start at a
/// 64-byte boundary: the kernel copies into a destination aligned only to 16 bytes at a third
/// of the speed (measured here: 1.3 against 4 GB/s).
fn read_reusing(f: &mut File, buf: &mut Vec<u8>) -> io::Result<Range<usize>> {
    /// The first size of a new buffer: most objects (tiles, bundles of small entries) fit.
    const FIRST: usize = 64 * 1024;
    const ALIGN: usize = 64;
    if buf.len() < FIRST + ALIGN {
        buf.resize(FIRST + ALIGN, 0);
    }
    let mut start = buf.as_ptr().align_offset(ALIGN);
    let mut end = start;
    loop {
        if end == buf.len() {
            // Full: room for the whole file and the read that sees its end.
            let size = f.metadata().map_or(0, |m| m.len());
            let want = usize::try_from(size)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let len = end - start;
            buf.resize(ALIGN + want.max(len + FIRST), 0);
            // A new allocation may be aligned differently.
            let moved = buf.as_ptr().align_offset(ALIGN);
            buf.copy_within(start..end, moved);
            (start, end) = (moved, moved + len);
        }
        match f.read(&mut buf[end..]) {
            Ok(0) => return Ok(start..end),
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("sync directory", dir, e))
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let p = self.object_path(path)?;
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => Ok(None),
            Err(e) => Err(io_err("read", &p, e)),
        }
    }

    fn get_into(&self, path: &str, buf: &mut Vec<u8>) -> Result<Option<Range<usize>>, StoreError> {
        let p = self.object_path(path)?;
        match File::open(&p).and_then(|mut f| read_reusing(&mut f, buf)) {
            Ok(range) => Ok(Some(range)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => Ok(None),
            Err(e) => Err(io_err("read", &p, e)),
        }
    }

    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        let p = self.object_path(path)?;
        match fs::metadata(&p) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("read", &p, e)),
        }
    }

    fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError> {
        let staged = self.stage_all(objects, Naming::Temp, None)?;
        let dirty = self.commit_staged(objects, staged, false)?;
        sync_dirs(&dirty)
    }

    fn create_after(&self, first: &[NewObject], then: &[NewObject]) -> Result<(), StoreError> {
        // `then` is written to durable temp files while `first` is created; no object of
        // `then` gets its name before `first` is durable.
        let (first_done, staged) = std::thread::scope(|s| {
            let h = s.spawn(|| self.create_all(first));
            let staged = self.stage_all(then, Naming::Temp, None);
            (h.join().expect("writer thread panicked"), staged)
        });
        let staged = staged?;
        if let Err(e) = first_done {
            for p in staged.into_iter().flatten() {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
        let dirty = self.commit_staged(then, staged, false)?;
        sync_dirs(&dirty)
    }

    fn can_stage(&self) -> bool {
        true
    }

    fn stage(&self, stage: &str, objects: &[NewObject]) -> Result<(), StoreError> {
        // The staging names must be durable too (a claim that commits to these objects is
        // created only after this returns): `.tmp` is fsynced beside the files.
        let tmp = self.root.join(TMP_DIR);
        if let Err(e) = fs::create_dir(&tmp) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(io_err("create directory", &tmp, e));
            }
        }
        self.stage_all(objects, Naming::Staged(stage), Some(&tmp))?;
        Ok(())
    }

    fn publish_staged(&self, stage: &str, objects: &[NewObject]) -> Result<(), StoreError> {
        let mut staged = Vec::with_capacity(objects.len());
        for o in objects {
            let p = self.staged_path(stage, &o.path)?;
            if p.exists() {
                staged.push(Some(p));
            } else if self.object_path(&o.path)?.exists() {
                staged.push(None);
            } else {
                return Err(StoreError::Backend {
                    op: "publish",
                    path: o.path.clone(),
                    message: format!("neither stored nor staged under {stage}"),
                });
            }
        }
        let dirty = self.commit_staged(objects, staged, true)?;
        sync_dirs(&dirty)
    }

    fn get_staged(&self, stage: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let p = self.staged_path(stage, path)?;
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &p, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // The directory holding the prefix, and the part of the name that must match.
        let (dir_part, name_part) = match prefix.rfind('/') {
            Some(i) => (&prefix[..i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.object_path(dir_part)?
        };
        let mut out = Vec::new();
        let mut stack = vec![(start, dir_part.to_string(), true)];
        while let Some((dir, rel, top)) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(io_err("list", &dir, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| io_err("list", &dir, e))?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                if top && !name.starts_with(name_part) {
                    continue;
                }
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let ft = ent.file_type().map_err(|e| io_err("list", ent.path(), e))?;
                if ft.is_dir() {
                    stack.push((ent.path(), child, false));
                } else {
                    out.push(child);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        Ok(self.get(CHECKPOINT)?.map(|b| {
            let v = Version(hex::encode(Sha256::digest(&b)));
            (b, v)
        }))
    }

    fn swap_checkpoint(&self, expected: Option<&Version>, new: &[u8]) -> Result<Swap, StoreError> {
        self.swap_checkpoint_from(None, expected, new)
    }

    fn swap_staged_checkpoint(
        &self,
        stage: &str,
        expected: Option<&Version>,
        new: &[u8],
    ) -> Result<Swap, StoreError> {
        let staged = self.staged_path(stage, CHECKPOINT)?;
        self.swap_checkpoint_from(Some(staged), expected, new)
    }

    fn lock_writers(&self) -> Result<Option<WriterLock>, StoreError> {
        self.lock_file(WRITER_LOCK).map(Some)
    }
}

impl LocalStore {
    /// Replaces the checkpoint with `new` if its version is `expected`, moving the durable
    /// file `staged` into place when it holds exactly `new` (saving a round of fsyncs), else
    /// writing `new` afresh.
    fn swap_checkpoint_from(
        &self,
        staged: Option<PathBuf>,
        expected: Option<&Version>,
        new: &[u8],
    ) -> Result<Swap, StoreError> {
        let _guard = self.lock_file(CHECKPOINT_LOCK)?;
        let current = self.get_checkpoint()?.map(|(_, v)| v);
        if current.as_ref() != expected {
            return Ok(Swap::Lost);
        }
        let tmp = match staged {
            Some(p) if fs::read(&p).is_ok_and(|b| b == new) => p,
            _ => self.write_tmp(new)?,
        };
        let target = self.root.join(CHECKPOINT);
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write", &target, e));
        }
        sync_dir(&self.root)?;
        Ok(Swap::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn create_only_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        let a = NewObject::new("tile/0/000", b"abc".to_vec());
        s.create_all(std::slice::from_ref(&a)).unwrap();
        // identical bytes: success
        s.create_all(std::slice::from_ref(&a)).unwrap();
        // different bytes: conflict, original kept
        let b = NewObject::new("tile/0/000", b"xyz".to_vec());
        match s.create_all(&[b]) {
            Err(StoreError::Conflict { path }) => assert_eq!(path, "tile/0/000"),
            other => panic!("expected conflict, got {other:?}"),
        }
        assert_eq!(s.get("tile/0/000").unwrap().unwrap(), b"abc");
        let mode = fs::metadata(dir.path().join("tile/0/000"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o444);
        assert_eq!(s.get("tile/0/001").unwrap(), None);
    }

    #[test]
    fn staged_objects_are_invisible_until_published() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert!(s.can_stage());
        let old = NewObject::new("tile/0/000", b"old".to_vec());
        s.create_all(std::slice::from_ref(&old)).unwrap();
        let objs = vec![
            NewObject::new("tile/entries/000.p/3", b"bundle".to_vec()),
            NewObject::new("tftrail/batches/000", b"claim".to_vec()),
            old.clone(),
        ];
        s.stage("12ab-3", &objs).unwrap();
        // Staged, findable under the stage only, not part of the log.
        assert_eq!(s.get("tile/entries/000.p/3").unwrap(), None);
        assert_eq!(
            s.get_staged("12ab-3", "tile/entries/000.p/3")
                .unwrap()
                .unwrap(),
            b"bundle"
        );
        assert_eq!(s.get_staged("other", "tile/entries/000.p/3").unwrap(), None);
        // An object already at its path is not staged again.
        assert_eq!(s.get_staged("12ab-3", "tile/0/000").unwrap(), None);
        assert!(s.list("").unwrap().iter().all(|p| !p.contains("bundle")));
        assert_eq!(s.list("tile/entries/").unwrap().len(), 0);
        // Publishing gives them their paths, create-only, and empties the stage.
        s.publish_staged("12ab-3", &objs[1..2]).unwrap();
        s.publish_staged("12ab-3", &objs).unwrap();
        for o in &objs {
            assert_eq!(s.get(&o.path).unwrap().unwrap(), o.data);
            assert_eq!(s.get_staged("12ab-3", &o.path).unwrap(), None);
        }
        // Publishing again is idempotent; something neither stored nor staged is an error.
        s.publish_staged("12ab-3", &objs).unwrap();
        let e = s
            .publish_staged("12ab-3", &[NewObject::new("tile/1/000", vec![1])])
            .unwrap_err();
        assert!(e.to_string().contains("neither stored nor staged"), "{e}");
        // A staged object whose path was taken meanwhile by other bytes is a conflict, and
        // stays staged.
        let late = NewObject::new("x/y", b"mine".to_vec());
        s.stage("s2", std::slice::from_ref(&late)).unwrap();
        s.create_all(&[NewObject::new("x/y", b"theirs".to_vec())])
            .unwrap();
        assert!(matches!(
            s.publish_staged("s2", std::slice::from_ref(&late)),
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(s.get_staged("s2", "x/y").unwrap().unwrap(), b"mine");
        // Staging only objects that exist already, in a fresh store, is fine.
        let fresh = tempfile::tempdir().unwrap();
        let f = LocalStore::open(fresh.path()).unwrap();
        f.create_all(std::slice::from_ref(&old)).unwrap();
        f.stage("s3", std::slice::from_ref(&old)).unwrap();
        f.stage("s4", &[]).unwrap();
        f.publish_staged("s3", std::slice::from_ref(&old)).unwrap();
        // Bad staging names and paths are refused.
        for (stage, path) in [("../x", "a/b"), ("", "a/b"), ("UP", "a/b"), ("ok", "a+b")] {
            assert!(s.stage(stage, &[NewObject::new(path, vec![])]).is_err());
            assert!(s.get_staged(stage, path).is_err());
        }
    }

    #[test]
    fn list_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        for p in [
            "tile/entries/000.p/3",
            "tile/entries/000.p/5",
            "tile/0/000.p/5",
            "x/y",
        ] {
            s.create_all(&[NewObject::new(p, vec![1])]).unwrap();
        }
        assert_eq!(
            s.list("tile/entries/000.p/").unwrap(),
            vec!["tile/entries/000.p/3", "tile/entries/000.p/5"]
        );
        assert_eq!(s.list("tile/e").unwrap().len(), 2);
        assert_eq!(s.list("").unwrap().len(), 4);
        assert!(s.list("nope/").unwrap().is_empty());
    }

    #[test]
    fn checkpoint_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert!(s.get_checkpoint().unwrap().is_none());
        assert_eq!(s.swap_checkpoint(None, b"one").unwrap(), Swap::Done);
        assert_eq!(s.swap_checkpoint(None, b"two").unwrap(), Swap::Lost);
        let (b, v) = s.get_checkpoint().unwrap().unwrap();
        assert_eq!(b, b"one");
        assert_eq!(s.swap_checkpoint(Some(&v), b"two").unwrap(), Swap::Done);
        assert_eq!(s.swap_checkpoint(Some(&v), b"three").unwrap(), Swap::Lost);
        assert_eq!(s.get_checkpoint().unwrap().unwrap().0, b"two");
    }

    #[test]
    fn a_staged_checkpoint_is_moved_into_place_only_when_it_holds_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        assert_eq!(s.swap_checkpoint(None, b"one").unwrap(), Swap::Done);
        let v1 = s.get_checkpoint().unwrap().unwrap().1;
        s.stage("st", &[NewObject::new(CHECKPOINT, b"two".to_vec())])
            .unwrap();
        let staged = s.staged_path("st", CHECKPOINT).unwrap();
        assert_eq!(
            fs::read(&staged).unwrap(),
            b"two",
            "staged beside the checkpoint"
        );
        let staged_ino = fs::metadata(&staged).unwrap().ino();
        // Still compare-and-swap.
        assert_eq!(
            s.swap_staged_checkpoint("st", None, b"two").unwrap(),
            Swap::Lost
        );
        assert_eq!(
            s.swap_staged_checkpoint("st", Some(&v1), b"two").unwrap(),
            Swap::Done
        );
        assert_eq!(s.get_checkpoint().unwrap().unwrap().0, b"two");
        assert!(!staged.exists(), "the staged file was moved");
        let placed = fs::metadata(dir.path().join(CHECKPOINT)).unwrap().ino();
        assert_eq!(placed, staged_ino, "moved into place, not written again");
        // A staged file with other bytes is not used; nor is a missing one.
        let v2 = s.get_checkpoint().unwrap().unwrap().1;
        s.stage("st2", &[NewObject::new(CHECKPOINT, b"stale".to_vec())])
            .unwrap();
        assert!(s.staged_path("st2", CHECKPOINT).unwrap().exists());
        assert_eq!(
            s.swap_staged_checkpoint("st2", Some(&v2), b"three")
                .unwrap(),
            Swap::Done
        );
        assert_eq!(s.get_checkpoint().unwrap().unwrap().0, b"three");
        let v3 = s.get_checkpoint().unwrap().unwrap().1;
        assert_eq!(
            s.swap_staged_checkpoint("none", Some(&v3), b"four")
                .unwrap(),
            Swap::Done
        );
        assert_eq!(s.get_checkpoint().unwrap().unwrap().0, b"four");
    }

    #[test]
    fn get_into_reuses_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        // Sizes around the first buffer size and the buffer's length.
        let sizes = [
            0usize, 1, 100, 65_535, 65_536, 65_537, 200_000, 3, 200_001, 70_000,
        ];
        let objects: Vec<NewObject> = sizes
            .iter()
            .map(|&n| {
                let data = (0..n).map(|i| (i * 7 + n) as u8).collect();
                NewObject::new(format!("o/{n}"), data)
            })
            .collect();
        s.create_all(&objects).unwrap();
        let mut buf = vec![9u8; 10];
        for o in objects.iter().chain(objects.iter().rev()) {
            let at = s.get_into(&o.path, &mut buf).unwrap().unwrap();
            assert_eq!(buf[at.clone()], o.data, "{}", o.path);
            assert_eq!(buf[at].as_ptr().align_offset(64), 0);
        }
        // Grown to hold the largest object and the read that sees its end, not much more.
        assert!(buf.len() <= 200_001 + 65_536 + 64, "{}", buf.len());
        assert_eq!(s.get_into("o/none", &mut buf).unwrap(), None);
        // A directory is not an object.
        assert_eq!(s.get_into("o", &mut buf).unwrap(), None);
        assert!(s.get_into("../x", &mut buf).is_err());
    }

    #[test]
    fn rejects_escaping_paths() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        for p in ["../x", "/etc/passwd", "a//b", ".tmp/x", ""] {
            assert!(s.get(p).is_err(), "{p}");
        }
    }
}
