//! `tftrail serve`

use std::path::PathBuf;

use tftrail_core::checkpoint::{Origin, SigningKey};
use tftrail_server::ServerConfig;

use super::{init, Global};
use crate::context;
use crate::error::CliError;

/// Run the team server: it alone holds the signing key, authenticates every caller (tokens
/// from `tftrail token create`, CI OIDC ID tokens), records who they are in every record,
/// appends all writers' records with group commit, and serves the log over HTTP (docs/API.md).
///
/// Clients point at it with TFTRAIL_SERVER=URL (or --server) and TFTRAIL_TOKEN. It is also
/// Terraform's `http` state backend at /state/NAME (every state change recorded with who
/// made it; README "The server as the state backend"). Stops on SIGTERM or SIGINT after the
/// requests in flight finish.
///
/// Example: tftrail serve --init --tokens tokens.toml
#[derive(clap::Args)]
pub struct Args {
    /// A TOML file with these settings, [limits] and [[oidc]] issuers (flags win)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The tokens file (`tftrail token create --tokens FILE`) [env: TFTRAIL_TOKENS]
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Let anyone read the log without a credential (appending always needs one)
    #[arg(long)]
    public_read: bool,
    /// TLS certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where Terraform state written through /state/ is kept: a directory or a bucket URL,
    /// not the log's store [default: $XDG_DATA_HOME/tftrail/server-states]
    #[arg(long, value_name = "S")]
    state_store: Option<String>,
    /// Create the log (and its signing key, if the key file does not exist) when the store
    /// holds none
    #[arg(long)]
    init: bool,
    /// A C2SP tlog-policy file: every checkpoint is sent to its witnesses that have a URL
    /// (`witness NAME VKEY URL`) to cosign, and published with their cosignatures; an append
    /// waits up to limits.quorum_wait_millis (2000) for the quorum
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    g.refuse("serve", false, false, true)?;
    let mut c = match &a.config {
        Some(p) => ServerConfig::load(p).map_err(|e| CliError::usage(e.to_string()))?,
        None => ServerConfig::default(),
    };
    if let Some(l) = a.listen {
        c.listen = Some(l);
    }
    if let Some(t) = a
        .tokens
        .or_else(|| std::env::var_os("TFTRAIL_TOKENS").map(PathBuf::from))
    {
        c.tokens = Some(t);
    }
    c.public_read |= a.public_read;
    if let Some(p) = a.witness_policy {
        c.witness_policy = Some(p);
    }
    if let Some(s) = a.state_store {
        c.state_store = Some(s);
    }
    if a.tls_cert.is_some() {
        c.tls_cert = a.tls_cert;
        c.tls_key = a.tls_key;
    }
    // --store and --key (or their variables) win over the file; the defaults are the CLI's.
    let env_store = std::env::var("TFTRAIL_STORE")
        .ok()
        .filter(|s| !s.is_empty());
    if g.store.is_some() || env_store.is_some() || c.store.is_none() {
        c.store = Some(g.location());
    }
    if g.key.is_some() || std::env::var_os("TFTRAIL_KEY").is_some() || c.key.is_none() {
        c.key = Some(g.signing_key_path());
    }
    let location = c.store.clone().expect("set above");
    let key_path = c.key.clone().expect("set above");
    // A settings mistake is reported before --init creates anything.
    if let Some(t) = c.tokens.as_ref().filter(|t| !t.exists()) {
        return Err(
            CliError::usage(format!("token file {} does not exist", t.display()))
                .hint("create a token with `tftrail token create --tokens FILE`"),
        );
    }
    if a.init {
        init_if_empty(&location, &key_path)?;
    }
    if c.tokens.is_none() && c.oidc.is_empty() && !c.public_read {
        eprintln!(
            "warning: no --tokens file and no [[oidc]] issuer: every request but /healthz will be refused"
        );
    }
    tftrail_server::run(c).map_err(|e| match e {
        tftrail_server::ServerError::Log(e) => CliError::from(e),
        tftrail_server::ServerError::Store(e) => CliError::from(e),
        tftrail_server::ServerError::Config(m) => CliError::usage(m),
        e => CliError::failure(e.to_string()),
    })?;
    Ok(0)
}

/// `--init`: a log in an empty store, signed with the key file (created when missing).
fn init_if_empty(location: &str, key_path: &std::path::Path) -> Result<(), CliError> {
    let store = tftrail_store::create(location)?;
    if store.get_checkpoint()?.is_some() {
        return Ok(());
    }
    let key = if key_path.exists() {
        context::load_signing_key(key_path)?
    } else {
        let origin =
            Origin::new(&init::default_origin()).map_err(|e| CliError::usage(e.to_string()))?;
        let key = SigningKey::generate(&origin);
        context::write_signing_key(key_path, &key)?;
        eprintln!(
            "signing key: {} (created; keep it secret)",
            key_path.display()
        );
        key
    };
    tftrail_log::init(store.as_ref(), &key)?;
    let _ = context::remember_key(location, &key.verifier());
    eprintln!("created log {} in {}", key.name(), store.location());
    eprintln!("verifier key (give it to auditors): {}", key.verifier_key());
    Ok(())
}
