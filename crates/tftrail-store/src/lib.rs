//! Storage layer of tftrail.
//!
//! A log lives in a *store*: a flat namespace of objects addressed by `/`-separated paths
//! (`checkpoint`, `tile/0/000`, `tile/entries/001.p/7`, `tftrail/blobs/<sha256>` …).
//!
//! The contract every backend MUST honour (see [`Store`]):
//! - every object except `checkpoint` is **create-only**: once written it never changes, and
//!   this crate never deletes anything;
//! - writing an object that already exists with identical bytes is success; with different
//!   bytes it is an [`StoreError::Conflict`], an integrity alarm;
//! - the checkpoint moves only through [`Store::swap_checkpoint`], a compare-and-swap;
//! - a write is durable when it returns.
//!
//! Out of scope: what the objects mean (that is `tftrail-core`), and the order in which they
//! are written (that is `tftrail-log`).

mod azure;
pub mod bootstrap;
pub mod connector;
mod gcs;
pub mod http;
mod local;
mod location;
mod object;
pub mod s3;
#[cfg(test)]
mod test_http;
#[cfg(feature = "testing")]
pub mod testing;
pub mod worm;

/// Raw HTTP requests and responses, under their historical path (they live in [`connector`]).
pub use connector as request;
pub use local::LocalStore;
pub use location::{Cloud, Location};
pub use object::{ObjectStoreBackend, MAX_IN_FLIGHT};
/// The S3 administrative client, under its historical path (it lives in [`s3::admin`]).
pub use s3::admin as s3admin;

use std::fmt;
use std::ops::Range;

/// Path of the one mutable object.
pub const CHECKPOINT: &str = "checkpoint";

/// Opaque version of the checkpoint object, used for compare-and-swap.
///
/// For a local directory it is the SHA-256 of the bytes; for object storage, the ETag (S3,
/// Azure) or the generation (GCS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version(pub String);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Result of a compare-and-swap on the checkpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum Swap {
    /// The new checkpoint is in place.
    Done,
    /// Somebody else moved the checkpoint first; read it again.
    Lost,
}

/// Errors of the storage layer, classified so callers can decide what is fatal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An object exists with bytes different from those being written: tampering, or a
    /// writer that broke the protocol. Never retried.
    #[error("object {path} already exists with different content")]
    Conflict {
        /// The object's path.
        path: String,
    },
    /// The location does not exist or is not usable as a store.
    #[error("{location}: {reason}")]
    NotAStore {
        /// The location as the user gave it.
        location: String,
        /// Why.
        reason: String,
    },
    /// I/O failure on one object (permissions, disk full, network …).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `list` …).
        op: &'static str,
        /// The object's path or the store location.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A backend error that is worth retrying (throttling, a transient network fault).
    #[error("{op} {path}: {message} (transient)")]
    Transient {
        /// What was being done.
        op: &'static str,
        /// The object's path.
        path: String,
        /// What the backend said.
        message: String,
    },
    /// A server refused the request: it did not accept the credential (`status` 401), or the
    /// credential's role does not allow it (403). Not retried.
    #[error("{op} {path}: {message}")]
    Denied {
        /// What was being done.
        op: &'static str,
        /// The object's path or the request's.
        path: String,
        /// 401 or 403.
        status: u16,
        /// What went wrong, with the server's message.
        message: String,
    },
    /// Any other backend error.
    #[error("{op} {path}: {message}")]
    Backend {
        /// What was being done.
        op: &'static str,
        /// The object's path.
        path: String,
        /// What the backend said.
        message: String,
    },
}

impl StoreError {
    /// Whether retrying the same operation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient { .. })
    }
}

/// One object to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewObject {
    /// Its path in the store.
    pub path: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl NewObject {
    /// Convenience constructor.
    pub fn new(path: impl Into<String>, data: Vec<u8>) -> Self {
        NewObject {
            path: path.into(),
            data,
        }
    }
}

/// A store holding one log. Synchronous: asynchronous backends run their own executor.
///
/// Implementations MUST:
/// - make [`Store::create_all`] durable before returning, and never overwrite an existing
///   object (identical bytes: success; different bytes: [`StoreError::Conflict`]);
/// - make [`Store::swap_checkpoint`] atomic: it replaces the checkpoint only when the current
///   version equals `expected` (`None`: only when there is no checkpoint yet);
/// - never delete anything.
pub trait Store: Send + Sync {
    /// Where the store is, for messages (`/home/u/.local/share/tftrail`, `s3://bucket/prefix`).
    fn location(&self) -> String;

    /// Reads an object; `Ok(None)` when it does not exist.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads an object into `buf` and returns where its bytes lie in it; `Ok(None)` when it
    /// does not exist. `buf` grows as needed; what it holds outside that range is unspecified.
    /// For callers reading many objects one after another: a backend may reuse the buffer
    /// without allocating or clearing it, and place the bytes where copying them in is fastest
    /// (the local store does both); the default takes [`Store::get`]'s buffer.
    fn get_into(&self, path: &str, buf: &mut Vec<u8>) -> Result<Option<Range<usize>>, StoreError> {
        Ok(self.get(path)?.map(|data| {
            *buf = data;
            0..buf.len()
        }))
    }

    /// Whether an object exists, without reading it (object stores send a HEAD request).
    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        Ok(self.get(path)?.is_some())
    }

    /// Creates every object (in any order, possibly in parallel), durably.
    fn create_all(&self, objects: &[NewObject]) -> Result<(), StoreError>;

    /// Creates `first` durably, then `then`. No object of `then` may become visible before
    /// all of `first` is durable; backends may overlap the work otherwise (the local store
    /// stages `then` in temp files meanwhile).
    fn create_after(&self, first: &[NewObject], then: &[NewObject]) -> Result<(), StoreError> {
        self.create_all(first)?;
        self.create_all(then)
    }

    /// Whether the store can *stage*: make objects durable under a writer-chosen staging name
    /// without giving them their paths yet ([`Store::stage`]), so that a writer can commit to
    /// them with a small claim and give them their paths afterwards ([`Store::publish_staged`]),
    /// and a recovering writer can still find them ([`Store::get_staged`]). The local store can;
    /// object stores cannot (an object exists under its key or not at all).
    fn can_stage(&self) -> bool {
        false
    }

    /// Writes `objects` durably under the staging name `stage` (`[0-9a-z-]`, chosen unique by
    /// the writer), without giving them their paths: when this returns, each one that does not
    /// already exist at its path (and the checkpoint, which changes, always) can be read with
    /// [`Store::get_staged`] even after a crash. Only for stores that [`Store::can_stage`].
    fn stage(&self, stage: &str, objects: &[NewObject]) -> Result<(), StoreError> {
        let _ = objects;
        Err(StoreError::Backend {
            op: "stage",
            path: stage.to_string(),
            message: "this store cannot stage objects".into(),
        })
    }

    /// Gives objects staged under `stage` their paths, durably and create-only, exactly as
    /// [`Store::create_all`] would create them (an object already at its path is compared).
    /// The default creates them afresh.
    fn publish_staged(&self, stage: &str, objects: &[NewObject]) -> Result<(), StoreError> {
        let _ = stage;
        self.create_all(objects)
    }

    /// Reads an object staged under `stage` and not yet published; `Ok(None)` when there is
    /// none.
    fn get_staged(&self, stage: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (stage, path);
        Ok(None)
    }

    /// [`Store::swap_checkpoint`] for a checkpoint that was also staged under `stage` (with
    /// the rest of an append, [`Store::stage`]): a store that stages may move the staged file
    /// into place instead of writing it again. The default writes `new`.
    fn swap_staged_checkpoint(
        &self,
        stage: &str,
        expected: Option<&Version>,
        new: &[u8],
    ) -> Result<Swap, StoreError> {
        let _ = stage;
        self.swap_checkpoint(expected, new)
    }

    /// Lists the paths of the objects whose path starts with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Reads the checkpoint and its version; `Ok(None)` when there is none.
    fn get_checkpoint(&self) -> Result<Option<(Vec<u8>, Version)>, StoreError>;

    /// Replaces the checkpoint if its version is still `expected`.
    fn swap_checkpoint(&self, expected: Option<&Version>, new: &[u8]) -> Result<Swap, StoreError>;

    /// Takes an exclusive lock that serialises writers on this machine, when the backend has
    /// one (a local directory does); `Ok(None)` otherwise. Held until the guard drops.
    fn lock_writers(&self) -> Result<Option<WriterLock>, StoreError> {
        Ok(None)
    }
}

/// Opens an existing store: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`
/// (or `azure://`), `file:///path` or a plain path; or the log of a tftrail server,
/// `http(s)://host[:port][/base]`, read-only ([`http::HttpStore`]).
///
/// For object storage this lists one key, so a missing bucket or bad credentials fail here
/// ([`StoreError::NotAStore`] for a bucket that does not exist). It does not check that the
/// store holds a log: that is the log layer's business.
pub fn open(location: &str) -> Result<Box<dyn Store>, StoreError> {
    match Location::parse(location)? {
        Location::Local(p) => Ok(Box::new(LocalStore::open(p)?)),
        Location::Object {
            cloud,
            bucket,
            prefix,
        } => {
            let s = ObjectStoreBackend::connect(cloud, &bucket, &prefix)?;
            s.check_reachable()?;
            Ok(Box::new(s))
        }
        Location::Server(url) => Ok(Box::new(http::HttpStore::connect(&url)?)),
    }
}

/// Opens a store for a new log: creates a local directory if needed; for object storage the
/// bucket must already exist (create it with `tftrail bootstrap`), and is checked as in
/// [`open`].
pub fn create(location: &str) -> Result<Box<dyn Store>, StoreError> {
    match Location::parse(location)? {
        Location::Local(p) => Ok(Box::new(LocalStore::create(p)?)),
        Location::Object { .. } => open(location),
        Location::Server(url) => Err(StoreError::NotAStore {
            location: url,
            reason: "a server's log is created by `tftrail serve`, not by a client".into(),
        }),
    }
}

/// A held writer lock; released on drop.
pub struct WriterLock {
    _inner: Box<dyn Send>,
}

impl WriterLock {
    /// Wraps whatever keeps the lock held.
    pub fn new(inner: impl Send + 'static) -> Self {
        WriterLock {
            _inner: Box::new(inner),
        }
    }
}

impl fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriterLock")
    }
}
