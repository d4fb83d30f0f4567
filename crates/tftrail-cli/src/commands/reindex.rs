//! `tftrail reindex`, and the index helpers the query commands share.

use std::path::PathBuf;

use tftrail_core::checkpoint::Checkpoint;
use tftrail_core::record::Record;
use tftrail_index::{Index, IndexError};
use tftrail_log::Log;

use super::Global;
use crate::context;
use crate::error::CliError;

/// Rebuild the local query index of this log from scratch.
///
/// The index is a cache kept under $XDG_CACHE_HOME/tftrail/index/ (never in the store). Queries
/// (`log` filters, `blame`, `history`, `check-state`, links in `show`) bring it up to date by
/// themselves, and rebuild it when it is missing, damaged or does not match the log; this
/// command forces a rebuild, e.g. after the cache file was edited by hand.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("reindex", false, false, true)?;
    let location = g.location();
    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
    let cp = log.head()?.checkpoint;
    let path = index_path(&log, &location);
    Index::rebuild_file(&path, &log, &cp).map_err(index_err)?;
    eprintln!(
        "indexed {} records of {} into {}",
        cp.size,
        location,
        path.display()
    );
    Ok(0)
}

/// Where the index of this log lives.
pub fn index_path(log: &Log, location: &str) -> PathBuf {
    tftrail_index::cache_home()
        .join("tftrail/index")
        .join(tftrail_index::file_name(log.key().as_str(), location))
}

/// Maps index errors to CLI errors.
pub fn index_err(e: IndexError) -> CliError {
    match e {
        IndexError::Log(e) => e.into(),
        e @ IndexError::BadRecord { .. } => {
            CliError::integrity(e.to_string()).hint("run `tftrail verify` for a full report")
        }
        e => {
            CliError::failure(e.to_string()).hint("remove the index file, or run `tftrail reindex`")
        }
    }
}

/// Opens the index of `log`, up to date with its verified checkpoint `cp`. When no cache file
/// can be kept, builds one in memory (and says so).
pub fn open_index(log: &Log, location: &str, cp: &Checkpoint) -> Result<Index, CliError> {
    let path = index_path(log, location);
    match Index::open(&path, log, cp) {
        Ok((ix, _)) => Ok(ix),
        Err(e @ (IndexError::Db { .. } | IndexError::Io { .. })) => {
            eprintln!(
                "note: cannot keep the index at {}: {e}; using a temporary one",
                path.display()
            );
            Index::in_memory(log, cp).map_err(index_err)
        }
        Err(e) => Err(index_err(e)),
    }
}

/// Reads record `index` from the log, authenticated against `cp`.
pub fn read_record(log: &Log, cp: &Checkpoint, index: u64) -> Result<Record, CliError> {
    let e = log.entries(cp, index, index + 1)?.remove(0);
    Record::from_entry(&e).map_err(|err| CliError::integrity(format!("entry {index}: {err}")))
}

/// Reads records (any order), authenticated against `cp`, grouping reads by tile.
pub fn read_records(
    log: &Log,
    cp: &Checkpoint,
    indexes: &[u64],
) -> Result<Vec<(u64, Record)>, CliError> {
    tftrail_index::read_records(log, cp, indexes).map_err(index_err)
}
