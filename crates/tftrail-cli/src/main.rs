//! `tftrail`: a tamper-evident audit trail for Terraform and OpenTofu.
#![forbid(unsafe_code)]

mod commands;
mod context;
mod error;
mod evidence;
mod remote;
mod render;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// A tamper-evident audit trail for Terraform and OpenTofu runs, kept in a C2SP transparency
/// log that anyone holding the public key can verify.
#[derive(Parser)]
#[command(name = "tftrail", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: commands::Global,
    #[command(subcommand)]
    command: commands::Command,
}

/// A hint for clap errors that have a common cause clap cannot name.
fn parse_hint(e: &clap::Error, args: &[String]) -> Option<String> {
    use clap::error::ErrorKind;
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    // `tftrail run terraform plan`: the command must follow `--`.
    if !is_run(args) {
        return None;
    }
    let run = args.iter().skip(1).position(|a| a == "run")?;
    let after = &args[run + 2..];
    if after.iter().any(|a| a == "--") {
        return None;
    }
    let cmd = after
        .iter()
        .position(|a| !a.starts_with('-'))
        .map(|i| after[i..].join(" "))
        .unwrap_or_else(|| "terraform plan".into());
    Some(format!(
        "put `--` before the command, so that its options are not taken for tftrail's: tftrail run -- {cmd}"
    ))
}

/// Whether the command line is `tftrail [global options] run …`.
fn is_run(args: &[String]) -> bool {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" | "--key" | "--server" => {
                it.next();
            }
            a if a.starts_with('-') => {}
            a => return a == "run",
        }
    }
    false
}

/// The exit status of a process ended by SIGPIPE, as shells report it.
const EXIT_BROKEN_PIPE: i32 = 128 + 13;

/// `tftrail log | head`: when the reader goes away, end quietly as Unix tools do (Rust ignores
/// SIGPIPE, so a print to a closed pipe panics instead).
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(EXIT_BROKEN_PIPE);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let args: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let hint = parse_hint(&e, &args);
            let _ = e.print();
            if let Some(h) = hint {
                eprintln!("hint: {h}");
            }
            // tftrail's own usage errors in `run` take a code Terraform never uses.
            let code = match e.exit_code() {
                2 if is_run(&args) => error::EXIT_RUN_USAGE,
                c => c,
            };
            return ExitCode::from(code as u8);
        }
    };
    let result = match cli.global.check() {
        Ok(()) => commands::run(cli.command, &cli.global),
        Err(e) if is_run(&args) => Err(e.in_run()),
        Err(e) => Err(e),
    };
    match result {
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
