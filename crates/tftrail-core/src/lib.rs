//! The core of tftrail: everything that can be computed without touching a disk, a network or
//! a clock.
//!
//! In scope:
//! - [`merkle`]: RFC 6962 hashing, the right edge of a tiled tree, inclusion and consistency
//!   proofs (the proof algorithms come from the `tlog_tiles` crate, a port of Go's sumdb/tlog);
//! - [`layout`]: C2SP tlog-tiles object paths, plus the two tftrail-specific prefixes (blobs and
//!   batch claims);
//! - [`bundle`]: entry-bundle encoding;
//! - [`integrate`]: the pure "integrate these entries" step that returns the objects to write;
//! - [`checkpoint`]: tlog-checkpoint bodies inside C2SP signed notes with Ed25519 keys;
//! - [`batch`]: signed batch claims, the sequencing step that makes a crash recoverable;
//! - [`record`]: the audit-record format (RFC 8785 canonical JSON, schema-versioned);
//! - [`receipt`]: C2SP tlog-proof receipts;
//! - [`cosignature`]: witness cosignatures (C2SP tlog-cosignature, Ed25519 cosignature/v1);
//! - [`policy`]: witness trust policies (C2SP tlog-policy) and quorum evaluation.
//!
//! Out of scope: reading or writing objects (`tftrail-store`), the order in which objects are
//! written and recovery (`tftrail-log`), Terraform (`tftrail-terraform`), the CLI.
#![forbid(unsafe_code)]

pub mod batch;
pub mod bundle;
mod canonical;
pub mod checkpoint;
pub mod cosignature;
pub mod integrate;
pub mod layout;
pub mod merkle;
pub mod policy;
pub mod receipt;
pub mod record;

pub use merkle::Hash;

/// Largest entry a bundle can hold (its length prefix is a big-endian u16).
pub const MAX_ENTRY_SIZE: usize = 65_535;

/// Entries per full tile (and per full entry bundle).
pub const TILE_WIDTH: u64 = 256;
