//! `tftrail token create|list|revoke`: the team server's token file.

use std::path::PathBuf;

use tftrail_server::auth::Role;
use tftrail_server::tokens::{self, TokenError, TokenInfo};

use super::Global;
use crate::error::CliError;

/// Manage the tokens a `tftrail serve` accepts. The file holds only the tokens' SHA-256
/// hashes (mode 0600); the server re-reads it when it changes, so a new or revoked token
/// takes effect on its next request.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Create a token and print it on stdout, once: only its hash is kept.
    Create(CreateArgs),
    /// List the tokens: name, role, created, expires, revoked, fingerprint (never the
    /// token nor its hash).
    List(ListArgs),
    /// Revoke a token: the server refuses it from its next request on, as "revoked".
    Revoke(RevokeArgs),
}

#[derive(clap::Args)]
struct FileArg {
    /// The token file [env: TFTRAIL_TOKENS]
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
}

impl FileArg {
    fn path(&self) -> Result<PathBuf, CliError> {
        if let Some(p) = self.tokens.clone().filter(|p| !p.as_os_str().is_empty()) {
            return Ok(p);
        }
        match std::env::var_os("TFTRAIL_TOKENS").filter(|p| !p.is_empty()) {
            Some(p) => Ok(PathBuf::from(p)),
            None => Err(CliError::usage("no token file given")
                .hint("pass --tokens FILE, or set TFTRAIL_TOKENS")),
        }
    }
}

#[derive(clap::Args)]
struct CreateArgs {
    #[command(flatten)]
    file: FileArg,
    /// What the token may do: writer (append and read), reader, auditor (read and export),
    /// admin (manage tokens and read)
    #[arg(long, value_name = "ROLE", value_parser = str::parse::<Role>)]
    role: Role,
    /// A unique name for the token (1 to 64 of A-Z a-z 0-9 . _ -); it labels the records it
    /// appends
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Days until the token expires [default: never]
    #[arg(long, value_name = "DAYS")]
    expires: Option<u32>,
}

#[derive(clap::Args)]
struct ListArgs {
    #[command(flatten)]
    file: FileArg,
}

#[derive(clap::Args)]
struct RevokeArgs {
    /// The token's name
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    file: FileArg,
}

fn cli_error(e: TokenError, path: &std::path::Path) -> CliError {
    let msg = e.to_string();
    let file = path.display();
    match &e {
        TokenError::Duplicate { name, .. } => CliError::usage(msg).hint(format!(
            "choose another --name, or revoke the old one first: `tftrail token revoke {name} --tokens {file}`"
        )),
        TokenError::UnknownName(_) => CliError::usage(msg)
            .hint(format!("see `tftrail token list --tokens {file}`")),
        TokenError::Invalid { .. } => CliError::usage(msg)
            .hint("fix the file by hand, or restore it from a backup"),
        e if e.is_usage() => CliError::usage(msg),
        _ => CliError::failure(msg),
    }
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    match a.command {
        TokenCommand::Create(c) => create(c, g),
        TokenCommand::List(l) => list(l, g),
        TokenCommand::Revoke(r) => revoke(r, g),
    }
}

fn create(a: CreateArgs, g: &Global) -> Result<i32, CliError> {
    g.refuse("token create", true, true, true)?;
    let path = a.file.path()?;
    let token =
        tokens::create(&path, &a.name, a.role, a.expires).map_err(|e| cli_error(e, &path))?;
    let expires = match a.expires {
        Some(d) => format!("expires in {d} days"),
        None => "does not expire".into(),
    };
    eprintln!(
        "created token {} (role {}, fingerprint {}, {expires}) in {}",
        a.name,
        a.role.as_str(),
        tokens::fingerprint(&token),
        path.display()
    );
    eprintln!("the token is shown only this once: store it now (only its hash is kept)");
    println!("{token}");
    Ok(0)
}

fn list(a: ListArgs, g: &Global) -> Result<i32, CliError> {
    g.refuse("token list", true, true, false)?;
    let path = a.file.path()?;
    if !path.exists() {
        return Err(CliError::usage(format!("no token file {}", path.display()))
            .hint("create a token with `tftrail token create`"));
    }
    let list = tokens::list(&path).map_err(|e| cli_error(e, &path))?;
    if g.json {
        let v = serde_json::to_value(&list).map_err(|e| CliError::failure(e.to_string()))?;
        println!("{v}");
        return Ok(0);
    }
    if list.is_empty() {
        eprintln!("no tokens in {}", path.display());
        return Ok(0);
    }
    let rows: Vec<[String; 6]> = list.iter().map(row).collect();
    let header = [
        "NAME",
        "ROLE",
        "CREATED",
        "EXPIRES",
        "REVOKED",
        "FINGERPRINT",
    ]
    .map(String::from);
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(0)
}

fn row(t: &TokenInfo) -> [String; 6] {
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    [
        t.name.clone(),
        t.role.as_str().into(),
        t.created.clone(),
        dash(&t.expires),
        dash(&t.revoked),
        t.fingerprint.clone(),
    ]
}

fn revoke(a: RevokeArgs, g: &Global) -> Result<i32, CliError> {
    g.refuse("token revoke", true, true, true)?;
    let path = a.file.path()?;
    if !path.exists() {
        return Err(CliError::usage(format!("no token file {}", path.display())));
    }
    let info = tokens::revoke(&path, &a.name).map_err(|e| cli_error(e, &path))?;
    eprintln!(
        "revoked token {} (fingerprint {}); the server refuses it from its next request",
        info.name, info.fingerprint
    );
    Ok(0)
}
