//! `tftrail evidence` and `tftrail evidence verify`

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use tftrail_core::record::Record;
use tftrail_log::{AuthTiles, StoreTiles};

use super::log::time_bounds;
use super::Global;
use crate::context;
use crate::error::{CliError, EXIT_INTEGRITY};
use crate::evidence::{self, Selection};

/// Write an evidence bundle: one tar file that proves itself offline. It holds every record
/// of the index range a time window covers (with the entries bounding it), the blobs the
/// selected records name, the newest (cosigned) checkpoint, an inclusion proof per entry, a
/// consistency proof from the tree before the range, a manifest and report.html (who changed
/// what and when). Check it with `tftrail evidence verify BUNDLE --key VKEY`.
/// docs/EVIDENCE.md has the format.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Records at or after this time (RFC 3339, or YYYY-MM-DD for the start of that day, UTC)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Records before this time (RFC 3339, or YYYY-MM-DD for the whole of that day, UTC)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only records that plan or make a change to this resource address (or its instances)
    #[arg(long, value_name = "ADDR")]
    resource: Option<String>,
    /// Only records whose kind starts with KIND, or of a Terraform kind without its
    /// `terraform.` (`apply`, `state`), as `tftrail log --kind`
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Write the bundle to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Check a bundle offline with the log's verifier key; say what it proves and what not.
    Verify(VerifyArgs),
}

/// Check an evidence bundle offline: the checkpoint's signature (and cosignatures when
/// asked), every entry against its inclusion proof, every blob's hash, the consistency proof,
/// that the manifest matches the files, that no record of the range was left out, and that
/// report.html is what the records render to. Exit 0 verified, 1 a problem (each listed),
/// 2 usage, 3 the file cannot be read.
#[derive(clap::Args)]
struct VerifyArgs {
    /// The bundle (`-` for stdin)
    bundle: PathBuf,
    #[command(flatten)]
    witnesses: super::quorum::WitnessArgs,
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    match a.command {
        Some(Sub::Verify(v)) => verify(v, g),
        None => create(Args { command: None, ..a }, g),
    }
}

fn create(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("evidence", false, false, true)?;
    let (since_ns, until_ns) = time_bounds(a.since.as_deref(), a.until.as_deref())?;
    if let (Some(s), Some(u)) = (since_ns, until_ns) {
        if s >= u {
            return Err(CliError::usage(format!(
                "--since {} is not before --until {}: nothing could match",
                a.since.as_deref().unwrap_or_default(),
                a.until.as_deref().unwrap_or_default()
            )));
        }
    }
    if a.out.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(CliError::usage(
            "an evidence bundle is a binary (tar) file: not writing it to a terminal",
        )
        .hint("give --out FILE, or redirect stdout: tftrail evidence … > bundle.tar"));
    }
    if let Some(r) = &a.resource {
        if r.is_empty() {
            return Err(CliError::usage("--resource needs a resource address"));
        }
    }
    let selection = Selection {
        since: since_ns.map(evidence::ns_text),
        until: until_ns.map(evidence::ns_text),
        kind: a.kind.clone(),
        resource: a.resource.clone(),
    };
    let location = g.location();
    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
    let head = log.head()?;
    let cp = head.checkpoint.clone();
    // Find the index range the window covers: every entry is read and authenticated.
    let (mut lo, mut hi, mut first_after_since) = (None::<u64>, None::<u64>, None::<u64>);
    const CHUNK: u64 = 4096;
    let mut i = 0;
    while i < cp.size {
        let end = (i + CHUNK).min(cp.size);
        for (k, e) in log.entries(&cp, i, end)?.iter().enumerate() {
            let idx = i + k as u64;
            let r = Record::from_entry(e)
                .map_err(|err| CliError::integrity(format!("entry {idx}: {err}")))?;
            if selection.in_window(&r) {
                lo.get_or_insert(idx);
                hi = Some(idx);
            }
            let t = tftrail_index::time_ns(&r.time);
            if first_after_since.is_none() && since_ns.is_none_or(|s| t.is_some_and(|t| t >= s)) {
                first_after_since = Some(idx);
            }
        }
        i = end;
    }
    // The range: the window's entries and one entry on each side (which lies outside it).
    let (first, end) = match (lo, hi) {
        (Some(lo), Some(hi)) => (lo.saturating_sub(1), (hi + 2).min(cp.size)),
        _ => {
            let p = first_after_since.unwrap_or(cp.size);
            (p.saturating_sub(1), (p + 1).min(cp.size))
        }
    };
    let entries = log.entries(&cp, first, end)?;
    // Blobs: the fragments every record of the range keeps outside itself, then every blob a
    // selected record names (each read checks its SHA-256).
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut records = BTreeMap::new();
    for (k, e) in entries.iter().enumerate() {
        let idx = first + k as u64;
        let r = Record::from_entry(e)
            .map_err(|err| CliError::integrity(format!("entry {idx}: {err}")))?;
        for sha in evidence::fragment_blobs(&r) {
            if !blobs.contains_key(&sha) {
                blobs.insert(sha.clone(), log.blob(&sha)?);
            }
        }
        records.insert(idx, r);
    }
    let full: BTreeMap<u64, Record> = records
        .iter()
        .map(|(i, r)| (*i, evidence::inflate(r, &blobs)))
        .collect();
    for i in evidence::select(&selection, &full) {
        for b in &records[&i].blobs {
            if blobs.contains_key(&b.sha256) {
                continue;
            }
            let data = log.blob(&b.sha256)?;
            if data.len() as u64 != b.size {
                return Err(CliError::integrity(format!(
                    "blob {} of record {i}: {} bytes stored, the record says {}",
                    b.name,
                    data.len(),
                    b.size
                )));
            }
            blobs.insert(b.sha256.clone(), data);
        }
    }
    // Proofs, all against the checkpoint, through one authenticated tile reader.
    let tiles = StoreTiles::new(log.store());
    let reader = AuthTiles::new(cp.size, cp.root, &tiles);
    let tile_err =
        |what: String| CliError::integrity(tiles.failure.borrow().clone().unwrap_or(what));
    let mut proofs = Vec::with_capacity(entries.len());
    for i in first..end {
        proofs.push(
            tlog_tiles::prove_record(cp.size, i, &reader)
                .map_err(|_| tile_err(format!("cannot build an inclusion proof for entry {i}")))?,
        );
    }
    let start = if first > 0 {
        let root = tlog_tiles::tree_hash(first, &reader)
            .map_err(|_| tile_err(format!("cannot compute the tree hash at size {first}")))?;
        let proof = tlog_tiles::prove_tree(cp.size, first, &reader).map_err(|_| {
            tile_err(format!(
                "cannot build a consistency proof from size {first}"
            ))
        })?;
        Some((root, proof))
    } else {
        None
    };
    let contents = evidence::assemble(
        log.key(),
        context::now_utc(),
        selection,
        head.note.clone(),
        &cp,
        first,
        entries,
        proofs,
        start,
        blobs,
    )
    .map_err(CliError::integrity)?;
    let tar = contents
        .to_tar()
        .map_err(|e| CliError::failure(format!("cannot build the bundle: {e}")))?;
    // Never hand out a bundle that does not verify.
    let check = evidence::verify(&tar, log.key(), None);
    if !check.ok {
        return Err(CliError::integrity(format!(
            "the bundle built does not verify: {}",
            check.problems.join("; ")
        )));
    }
    match &a.out {
        Some(p) => write_file(p, &tar)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&tar)
                .and_then(|()| out.flush())
                .map_err(|e| CliError::failure(format!("cannot write to stdout: {e}")))?;
        }
    }
    eprintln!(
        "tftrail: evidence bundle: {} selected record(s) among entries {}..{} of log {} (tree size {}){}",
        check.selected.len(),
        first,
        end.saturating_sub(1),
        cp.origin,
        cp.size,
        a.out
            .as_ref()
            .map(|p| format!(", written to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(0)
}

/// Writes `data` to `p` through a temporary file in the same directory, renamed into place.
fn write_file(p: &std::path::Path, data: &[u8]) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::failure(format!("cannot write {}: {e}", p.display()));
    let name = p
        .file_name()
        .ok_or_else(|| CliError::usage(format!("--out {} is not a file name", p.display())))?;
    let tmp = p.with_file_name(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, p));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

fn verify(a: VerifyArgs, g: &Global) -> Result<i32, CliError> {
    g.refuse("evidence verify", true, false, false)?;
    let key = match g.key.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => context::verifier_key(k)?,
        None => {
            return Err(CliError::usage(
                "evidence verify needs the log's verifier key: --key <name+id+base64> (or a file holding it)",
            ))
        }
    };
    let policy = a.witnesses.policy(&key)?;
    let data = if a.bundle.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| CliError::failure(format!("cannot read stdin: {e}")))?;
        b
    } else {
        std::fs::read(&a.bundle)
            .map_err(|e| CliError::failure(format!("cannot read {}: {e}", a.bundle.display())))?
    };
    // Cosignatures are checked only when witnesses are named; then their quorum is required.
    let check = policy.as_ref().map(|p| {
        move |note: &[u8]| {
            let r = p.check(note);
            let cosigned = r
                .cosigned_by
                .iter()
                .map(|c| (c.name.clone(), format!("{:08x}", c.key_id), c.time))
                .collect();
            let verdict = if r.satisfied {
                Ok(())
            } else {
                Err(super::quorum::describe(p, &r))
            };
            (cosigned, Some(verdict))
        }
    });
    let v = evidence::verify(
        &data,
        &key,
        check.as_ref().map(|c| c as evidence::WitnessCheck<'_>),
    );
    let name = a.bundle.display().to_string();
    if g.json {
        let mut j = serde_json::to_value(&v).map_err(|e| CliError::failure(e.to_string()))?;
        j["bundle"] = name.into();
        println!("{j}");
    } else if v.ok {
        println!(
            "OK: evidence bundle {name}: {} selected record(s), entries {}..{} of log {}",
            v.selected.len(),
            v.range.0,
            v.range.1.saturating_sub(1),
            v.origin
        );
        println!("proves:");
        for p in &v.proves {
            println!("  - {p}");
        }
        println!("does not prove:");
        for p in &v.does_not_prove {
            println!("  - {p}");
        }
    } else {
        for p in &v.problems {
            eprintln!("error: {p}");
        }
        eprintln!(
            "error: evidence bundle {name} does not verify ({} problem{})",
            v.problems.len(),
            if v.problems.len() == 1 { "" } else { "s" }
        );
    }
    Ok(if v.ok { 0 } else { EXIT_INTEGRITY })
}
