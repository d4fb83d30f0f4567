//! `tftrail log`

use tftrail_core::record::Record;
use tftrail_index::Filter;

use super::{reindex, Global};
use crate::error::CliError;
use crate::{context, render};

/// List records, newest first, each checked against the signed checkpoint.
///
/// Filters are answered from a local index that is brought up to date (or rebuilt) against
/// the verified checkpoint first; the records listed are read from the log and checked.
#[derive(clap::Args)]
pub struct Args {
    /// At most this many records (0: all)
    #[arg(long, default_value_t = 20)]
    limit: u64,
    /// Only records that plan or make a change to this resource address (or its instances,
    /// ADDR[…])
    #[arg(long, value_name = "ADDR")]
    resource: Option<String>,
    /// Only records by this actor: an OS user, user@host, a CI actor, or the name a team
    /// server authenticated (a token's name, an OIDC subject)
    #[arg(long, value_name = "USER")]
    actor: Option<String>,
    /// Only records a team server authenticated the writer of (yes), or that carry only what
    /// their writer said of itself (no)
    #[arg(long, value_name = "yes|no", value_parser = ["yes", "no"])]
    authenticated: Option<String>,
    /// Only records whose kind starts with KIND (`terraform.apply` matches
    /// `terraform.apply.intent` and `terraform.apply.outcome`), or of a Terraform kind
    /// without its `terraform.` (`apply`, `plan`, `destroy.intent`, `state`)
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Only records at or after this time (RFC 3339, or YYYY-MM-DD for the start of that day, UTC)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only records before this time (RFC 3339, or YYYY-MM-DD for the whole of that day, UTC)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only records with this outcome
    #[arg(long, value_parser = ["success", "failed", "interrupted"])]
    outcome: Option<String>,
}

/// `--since` and `--until` as Unix nanoseconds (`--until` of a date is the end of that day).
pub fn time_bounds(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), CliError> {
    Ok((
        since.map(|s| parse_time(s, false)).transpose()?,
        until.map(|s| parse_time(s, true)).transpose()?,
    ))
}

/// Parses RFC 3339 or YYYY-MM-DD (UTC) into Unix nanoseconds; `end_of_day` turns a date into
/// the start of the next day.
pub fn parse_time(s: &str, end_of_day: bool) -> Result<i64, CliError> {
    if let Some(t) = tftrail_index::time_ns(s) {
        return Ok(t);
    }
    let f = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &f).map_err(|_| {
        CliError::usage(format!("invalid time {s:?}"))
            .hint("use RFC 3339 (2026-01-31T12:00:00Z) or a date (2026-01-31)")
    })?;
    let d = if end_of_day {
        d.next_day().unwrap_or(d)
    } else {
        d
    };
    // Nanoseconds in an i64 reach the year 2262.
    d.midnight()
        .assume_utc()
        .unix_timestamp()
        .checked_mul(1_000_000_000)
        .ok_or_else(|| {
            CliError::usage(format!("time {s:?} is out of range"))
                .hint("give a date between 1678 and 2262")
        })
}

fn print(index: u64, r: &Record, json: bool) {
    if json {
        println!("{}", serde_json::json!({"index": index, "record": r}));
    } else {
        println!("{}", render::line(index, r));
    }
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    let location = g.location();
    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
    let head = log.head()?;
    let size = head.checkpoint.size;
    let filtered = a.resource.is_some()
        || a.actor.is_some()
        || a.authenticated.is_some()
        || a.kind.is_some()
        || a.since.is_some()
        || a.until.is_some()
        || a.outcome.is_some();
    if filtered {
        let (since_ns, until_ns) = time_bounds(a.since.as_deref(), a.until.as_deref())?;
        let f = Filter {
            kind: a.kind.clone(),
            actor: a.actor.clone(),
            authenticated: a.authenticated.as_deref().map(|y| y == "yes"),
            outcome: a.outcome.clone(),
            since_ns,
            until_ns,
            resource: a.resource.clone(),
            limit: a.limit,
            ..Default::default()
        };
        let ix = reindex::open_index(&log, &location, &head.checkpoint)?;
        let found = ix.find(&f).map_err(reindex::index_err)?;
        if found.is_empty() && !g.json {
            eprintln!("no record matches");
        }
        for (i, r) in reindex::read_records(&log, &head.checkpoint, &found)? {
            // The index is a cache: check what it can cheaply be checked against.
            let kind_ok = f
                .kind
                .as_ref()
                .is_none_or(|k| tftrail_index::kind_matches(k, &r.kind));
            let outcome_ok = f.outcome.as_ref().is_none_or(|o| {
                r.payload.get("outcome").and_then(|v| v.as_str()) == Some(o.as_str())
            });
            let authenticated_ok = f
                .authenticated
                .is_none_or(|yes| r.actor.authenticated.is_some() == yes);
            if !(kind_ok && outcome_ok && authenticated_ok) {
                return Err(CliError::failure(format!(
                    "the local index disagrees with record {i}"
                ))
                .hint("run `tftrail reindex`"));
            }
            print(i, &r, g.json);
        }
        return Ok(0);
    }
    let start = if a.limit == 0 {
        0
    } else {
        size.saturating_sub(a.limit)
    };
    let entries = log.entries(&head.checkpoint, start, size)?;
    if size == 0 && !g.json {
        eprintln!("the log is empty");
    }
    for (k, e) in entries.iter().enumerate().rev() {
        let index = start + k as u64;
        let r = Record::from_entry(e)
            .map_err(|err| CliError::integrity(format!("entry {index}: {err}")))?;
        print(index, &r, g.json);
    }
    Ok(0)
}
