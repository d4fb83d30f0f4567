//! The log layer of tftrail: a C2SP tlog-tiles log kept in any [`Store`].
//!
//! Appending, in this order (each step durable before the next):
//! 1. blobs (content-addressed, create-only);
//! 2. the signed **batch claim** `tftrail/batches/<start>` (create-only): creating it sequences
//!    the batch at `start`; losing the race to another writer means "read again and retry";
//! 3. entry bundles and hash tiles (create-only; derived deterministically from the claims, so
//!    a rewrite after a crash produces identical bytes);
//! 4. the signed checkpoint, by compare-and-swap; it never moves backwards.
//!
//! Recovery is rolling forward: before appending, a writer integrates any claim found at the
//! current tree size. A crash at any instant therefore loses no acknowledged record (those are
//! covered by a published checkpoint) and leaves a log that verifies.
//!
//! Out of scope: where the store is and how objects are written (`tftrail-store`), the Merkle
//! math and formats (`tftrail-core`), printing (the CLI).

mod append;
mod claims;
mod error;
mod read;
mod verify;

pub use append::{init, AppendOutcome, Blob};
pub use error::LogError;
pub use read::{AuthTiles, Log, StoreTiles};
pub use verify::{Problem, VerifyOptions, VerifyReport};

pub use tftrail_store::Store;
