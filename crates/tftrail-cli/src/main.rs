//! `tftrail`: a tamper-evident audit trail for Terraform and OpenTofu.
#![forbid(unsafe_code)]

mod commands;
mod context;
mod error;
mod render;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// A tamper-evident audit trail for Terraform and OpenTofu runs, kept in a C2SP transparency
/// log that anyone holding the public key can verify.
#[derive(Parser)]
#[command(name = "tftrail", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli.command) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "error: {}", e.message);
            if let Some(h) = e.hint {
                let _ = writeln!(err, "hint: {h}");
            }
            ExitCode::from(e.code as u8)
        }
    }
}
