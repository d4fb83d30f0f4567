//! `tftrail init`

use tftrail_core::checkpoint::{Origin, SigningKey};

use super::Global;
use crate::context;
use crate::error::CliError;

/// Create a new log and its signing key.
#[derive(clap::Args)]
pub struct Args {
    /// The log's origin: the checkpoint's first line and the key name
    /// [default: tftrail.local/<host>/<user>]
    #[arg(long)]
    origin: Option<String>,
}

/// `tftrail.local/<host>/<user>`, with characters an origin cannot hold replaced by `-`.
pub fn default_origin() -> String {
    let actor = context::actor();
    format!("tftrail.local/{}/{}", actor.host, actor.user)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '+' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("init", false, false, true)?;
    g.refuse_server(
        "init",
        "a server's log and signing key are created where it runs, by `tftrail init` on its store",
    )?;
    let location = g.location();
    let key_path = g.signing_key_path();
    let origin = a.origin.clone().unwrap_or_else(default_origin);
    let origin = Origin::new(&origin).map_err(|e| CliError::usage(e.to_string()))?;
    if key_path.exists() {
        return Err(CliError::usage(format!(
            "signing key {} already exists; refusing to overwrite it",
            key_path.display()
        ))
        .hint("pass --key with a new path for a new log"));
    }
    let store = tftrail_store::create(&location)?;
    // Check before creating the key so a refused init leaves nothing behind.
    if store.get_checkpoint()?.is_some() || !store.list("tile/")?.is_empty() {
        return Err(tftrail_log::LogError::AlreadyExists(store.location()).into());
    }
    let key = SigningKey::generate(&origin);
    context::write_signing_key(&key_path, &key)?;
    if let Err(e) = tftrail_log::init(store.as_ref(), &key) {
        let _ = std::fs::remove_file(&key_path);
        return Err(e.into());
    }
    eprintln!("created log {} in {}", origin.as_str(), store.location());
    eprintln!("signing key: {} (keep it secret)", key_path.display());
    // Readers on this machine then need no --key for this store.
    match context::remember_key(&location, &key.verifier()) {
        Ok(p) => eprintln!("verifier key remembered for this store in {}", p.display()),
        Err(e) => eprintln!(
            "warning: the verifier key was not remembered: {}",
            e.message
        ),
    }
    eprintln!("verifier key (give it to auditors):");
    println!("{}", key.verifier_key());
    Ok(0)
}
