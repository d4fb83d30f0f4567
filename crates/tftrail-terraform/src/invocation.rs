//! Classifying and sanitising a Terraform/OpenTofu command line.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::redact::REDACTED;

/// Which tool is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// HashiCorp Terraform.
    Terraform,
    /// OpenTofu.
    OpenTofu,
}

impl Tool {
    /// `"terraform"` or `"tofu"`.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Terraform => "terraform",
            Tool::OpenTofu => "tofu",
        }
    }

    /// Recognises the tool from a program path (`terraform`, `/usr/bin/tofu`, `terraform-1.11`,
    /// `terraform.exe`); `None` for anything else.
    pub fn from_program(program: &Path) -> Option<Tool> {
        let name = program.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".exe").unwrap_or(&name);
        let rest_ok = |rest: &str| {
            rest.is_empty()
                || rest.starts_with(['-', '_', '.'])
                || rest.starts_with(|c: char| c.is_ascii_digit())
        };
        if let Some(rest) = name.strip_prefix("terraform") {
            rest_ok(rest).then_some(Tool::Terraform)
        } else if let Some(rest) = name.strip_prefix("opentofu") {
            rest_ok(rest).then_some(Tool::OpenTofu)
        } else if let Some(rest) = name.strip_prefix("tofu") {
            rest_ok(rest).then_some(Tool::OpenTofu)
        } else {
            None
        }
    }
}

/// What a command does, as far as auditing is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// `plan` (any mode).
    Plan,
    /// `apply` (normal mode, with or without a saved plan).
    Apply,
    /// `destroy` or `apply -destroy`.
    Destroy,
    /// `refresh` or `apply -refresh-only`.
    Refresh,
    /// `import`.
    Import,
    /// `state rm|mv|push|replace-provider` (the subcommand).
    State(String),
    /// `taint`.
    Taint,
    /// `untaint`.
    Untaint,
    /// `force-unlock`.
    ForceUnlock,
    /// `init` (backend, state migration, lock file).
    Init,
    /// `workspace new|delete` (the subcommand).
    Workspace(String),
    /// `providers lock` (writes the dependency lock file).
    ProvidersLock,
    /// `test` (creates and destroys real infrastructure).
    Test,
    /// A command that changes nothing (show, output, validate, fmt, version, state list, ...).
    ReadOnly,
    /// A command this crate does not know; recorded like a state-changing one, to be safe.
    Unknown(String),
}

impl Operation {
    /// The record-kind stem: `terraform.apply`, `terraform.state`, ...; records are
    /// `<stem>.intent` / `<stem>.outcome`, or `terraform.plan` / `terraform.command`.
    pub fn kind_stem(&self) -> &'static str {
        match self {
            Operation::Plan => "terraform.plan",
            Operation::Apply => "terraform.apply",
            Operation::Destroy => "terraform.destroy",
            Operation::Refresh => "terraform.refresh",
            Operation::Import => "terraform.import",
            Operation::State(_) => "terraform.state",
            Operation::Taint => "terraform.taint",
            Operation::Untaint => "terraform.untaint",
            Operation::ForceUnlock => "terraform.force_unlock",
            Operation::Init => "terraform.init",
            Operation::Workspace(_) => "terraform.workspace",
            Operation::ProvidersLock => "terraform.providers_lock",
            Operation::Test => "terraform.test",
            Operation::ReadOnly | Operation::Unknown(_) => "terraform.command",
        }
    }

    /// Whether the command may change state, the lock file, or infrastructure (recorded
    /// with an intent before and an outcome after).
    pub fn is_mutating(&self) -> bool {
        !matches!(self, Operation::Plan | Operation::ReadOnly)
    }

    /// Whether the command is recorded by default.
    pub fn is_recorded(&self) -> bool {
        !matches!(self, Operation::ReadOnly)
    }
}

/// Flags that take a value (so `-flag VALUE` consumes the next argument).
const VALUE_FLAGS: &[&str] = &[
    "var",
    "var-file",
    "out",
    "state",
    "state-out",
    "backup",
    "target",
    "target-file",
    "exclude",
    "exclude-file",
    "replace",
    "lock-timeout",
    "parallelism",
    "backend-config",
    "from-module",
    "plugin-dir",
    "config",
    "provider",
    "lockfile",
    "platform",
    "generate-config-out",
    "test-directory",
    "filter",
    "chdir",
    "net-mirror",
    "fs-mirror",
    "enable-plugin-cache",
];

/// One parsed Terraform command line.
///
/// Holds the original arguments (which may contain secrets) privately; everything it
/// serialises ([`Invocation::to_json`], [`Invocation::sanitized_args`]) is secret-free.
#[derive(Debug, Clone)]
pub struct Invocation {
    program: PathBuf,
    tool: Tool,
    args: Vec<String>,
    chdir: Option<String>,
    subcommand: Vec<String>,
    operation: Operation,
    saved_plan: Option<String>,
    plan_out: Option<String>,
    state_flag: Option<String>,
    var_names: Vec<String>,
    secret_values: Vec<String>,
    var_files: Vec<String>,
    no_color: bool,
    plan_mode: &'static str,
}

fn split_flag(arg: &str) -> Option<(&str, Option<&str>)> {
    if arg == "-" || arg == "--" || !arg.starts_with('-') {
        return None;
    }
    let body = arg.trim_start_matches('-');
    Some(match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    })
}

impl Invocation {
    /// Parses `program args...`. Fails with [`Error::NotTerraform`] unless the program is
    /// Terraform or OpenTofu (recognised by file name).
    pub fn parse(program: impl AsRef<Path>, args: &[String]) -> Result<Self> {
        let program = program.as_ref();
        if program.as_os_str().is_empty() {
            return Err(Error::EmptyCommand);
        }
        let tool = Tool::from_program(program).ok_or_else(|| Error::NotTerraform {
            program: program.display().to_string(),
        })?;
        Ok(Self::parse_as(program, tool, args))
    }

    /// Parses a command line for a tool already known (e.g. a wrapper script name).
    pub fn parse_as(program: impl AsRef<Path>, tool: Tool, args: &[String]) -> Self {
        let mut inv = Invocation {
            program: program.as_ref().to_path_buf(),
            tool,
            args: args.to_vec(),
            chdir: None,
            subcommand: Vec::new(),
            operation: Operation::ReadOnly,
            saved_plan: None,
            plan_out: None,
            state_flag: None,
            var_names: Vec::new(),
            secret_values: Vec::new(),
            var_files: Vec::new(),
            no_color: false,
            plan_mode: "normal",
        };
        // Global options before the subcommand.
        let mut i = 0;
        while i < args.len() {
            match split_flag(&args[i]) {
                Some(("chdir", Some(v))) => inv.chdir = Some(v.to_string()),
                Some(("chdir", None)) if i + 1 < args.len() => {
                    i += 1;
                    inv.chdir = Some(args[i].clone());
                }
                Some(_) => {}
                None => break,
            }
            i += 1;
        }
        if i >= args.len() {
            return inv; // -version, -help, or nothing: read-only.
        }
        let cmd = args[i].as_str();
        i += 1;
        inv.subcommand.push(cmd.to_string());
        let sub = |j: usize| -> Option<&str> {
            args[j..]
                .iter()
                .find(|a| !a.starts_with('-'))
                .map(|s| s.as_str())
        };
        let op = match cmd {
            "plan" => Operation::Plan,
            "apply" => Operation::Apply,
            "destroy" => Operation::Destroy,
            "refresh" => Operation::Refresh,
            "import" => Operation::Import,
            "taint" => Operation::Taint,
            "untaint" => Operation::Untaint,
            "force-unlock" => Operation::ForceUnlock,
            "init" => Operation::Init,
            "test" => Operation::Test,
            "state" => match sub(i) {
                Some(s @ ("rm" | "mv" | "push" | "replace-provider")) => {
                    inv.subcommand.push(s.into());
                    Operation::State(s.into())
                }
                Some(s @ ("list" | "show" | "pull" | "identities")) => {
                    inv.subcommand.push(s.into());
                    Operation::ReadOnly
                }
                Some(s) => {
                    inv.subcommand.push(s.into());
                    Operation::Unknown(format!("state {s}"))
                }
                None => Operation::ReadOnly,
            },
            "workspace" | "env" => match sub(i) {
                Some(s @ ("new" | "delete")) => {
                    inv.subcommand.push(s.into());
                    Operation::Workspace(s.into())
                }
                Some(s) => {
                    inv.subcommand.push(s.into());
                    Operation::ReadOnly
                }
                None => Operation::ReadOnly,
            },
            "providers" => match sub(i) {
                Some("lock") => {
                    inv.subcommand.push("lock".into());
                    Operation::ProvidersLock
                }
                Some(s) => {
                    inv.subcommand.push(s.into());
                    Operation::ReadOnly
                }
                None => Operation::ReadOnly,
            },
            "show" | "output" | "validate" | "fmt" | "version" | "graph" | "console" | "get"
            | "login" | "logout" | "metadata" | "modules" | "help" | "-help" => Operation::ReadOnly,
            other => Operation::Unknown(other.to_string()),
        };
        inv.operation = op;
        // Subcommand flags and positional arguments.
        let mut positional = Vec::new();
        let mut flags_done = false;
        let mut j = i;
        while j < args.len() {
            let a = &args[j];
            if !flags_done {
                if let Some((name, val)) = split_flag(a) {
                    let val = match val {
                        Some(v) => Some(v.to_string()),
                        None if VALUE_FLAGS.contains(&name) && j + 1 < args.len() => {
                            j += 1;
                            Some(args[j].clone())
                        }
                        None => None,
                    };
                    inv.note_flag(name, val.as_deref());
                    j += 1;
                    continue;
                }
                flags_done = true;
            }
            positional.push(a.clone());
            j += 1;
        }
        if matches!(
            inv.operation,
            Operation::Apply | Operation::Destroy | Operation::Refresh
        ) && cmd == "apply"
        {
            inv.saved_plan = positional.first().cloned();
        }
        if cmd == "apply" {
            match inv.plan_mode {
                "destroy" => inv.operation = Operation::Destroy,
                "refresh-only" => inv.operation = Operation::Refresh,
                _ => {}
            }
        }
        inv
    }

    fn note_flag(&mut self, name: &str, val: Option<&str>) {
        let truthy = val.is_none_or(|v| v == "true" || v == "1");
        match name {
            "var" => {
                if let Some(v) = val {
                    let (n, value) = v.split_once('=').unwrap_or((v, ""));
                    self.var_names.push(n.trim().to_string());
                    self.secret_values.push(value.to_string());
                }
            }
            "backend-config" => {
                if let Some((_, value)) = val.and_then(|v| v.split_once('=')) {
                    self.secret_values.push(value.to_string());
                }
            }
            "var-file" => self.var_files.extend(val.map(String::from)),
            "out" => self.plan_out = val.map(String::from),
            "state" => self.state_flag = val.map(String::from),
            "no-color" if truthy => self.no_color = true,
            "destroy" if truthy => self.plan_mode = "destroy",
            "refresh-only" if truthy => self.plan_mode = "refresh-only",
            _ => {}
        }
    }

    /// The program as given.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Terraform or OpenTofu.
    pub fn tool(&self) -> Tool {
        self.tool
    }

    /// The original arguments, secrets included: only for running the tool.
    pub fn raw_args(&self) -> &[String] {
        &self.args
    }

    /// The classified operation.
    pub fn operation(&self) -> &Operation {
        &self.operation
    }

    /// The subcommand words (`["state", "rm"]`).
    pub fn subcommand(&self) -> &[String] {
        &self.subcommand
    }

    /// The saved plan file given to `apply`, if any.
    pub fn saved_plan(&self) -> Option<&str> {
        self.saved_plan.as_deref()
    }

    /// The `-out` plan file given to `plan`, if any.
    pub fn plan_out(&self) -> Option<&str> {
        self.plan_out.as_deref()
    }

    /// The legacy `-state=PATH` option, if given.
    pub fn state_flag(&self) -> Option<&str> {
        self.state_flag.as_deref()
    }

    /// `normal`, `destroy` or `refresh-only`.
    pub fn plan_mode(&self) -> &'static str {
        self.plan_mode
    }

    /// Whether `-no-color` was given.
    pub fn no_color(&self) -> bool {
        self.no_color
    }

    /// The directory Terraform works in: `cwd` joined with `-chdir`, if any.
    pub fn working_dir(&self, cwd: &Path) -> PathBuf {
        match &self.chdir {
            Some(d) => cwd.join(d),
            None => cwd.to_path_buf(),
        }
    }

    /// Values given with `-var` and `-backend-config=KEY=VALUE` (secrets, for scrubbing
    /// only).
    pub fn secret_values(&self) -> &[String] {
        &self.secret_values
    }

    /// Whether an argument equal to `flag` (e.g. `-auto-approve`) was given.
    pub fn has_flag(&self, flag: &str) -> bool {
        let f = flag.trim_start_matches('-');
        self.args.iter().any(|a| {
            split_flag(a).is_some_and(|(n, v)| n == f && v.is_none_or(|v| v == "true" || v == "1"))
        })
    }

    /// The arguments with `extra` inserted right after the subcommand word (used for the
    /// transparent `-out` of plan).
    pub(crate) fn args_with_inserted(&self, extra: &str) -> Vec<String> {
        let mut out = self.args.clone();
        let pos = self
            .args
            .iter()
            .position(|a| Some(a) == self.subcommand.first())
            .map(|p| p + 1)
            .unwrap_or(out.len());
        out.insert(pos, extra.to_string());
        out
    }

    /// The arguments with every `-var` value and `-backend-config` key=value replaced by
    /// the redaction marker (names are kept).
    pub fn sanitized_args(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.args.len());
        let mut j = 0;
        let mut flags_done = false;
        let mut seen_cmd = false;
        while j < self.args.len() {
            let a = &self.args[j];
            if !flags_done {
                if let Some((name, val)) = split_flag(a) {
                    let dashes = &a[..a.len() - a.trim_start_matches('-').len()];
                    let (val, joined) = match val {
                        Some(v) => (Some(v.to_string()), true),
                        None if VALUE_FLAGS.contains(&name) && j + 1 < self.args.len() => {
                            j += 1;
                            (Some(self.args[j].clone()), false)
                        }
                        None => (None, true),
                    };
                    let val = val.map(|v| sanitize_flag_value(name, &v));
                    match (val, joined) {
                        (Some(v), true) => out.push(format!("{dashes}{name}={v}")),
                        (Some(v), false) => {
                            out.push(a.clone());
                            out.push(v);
                        }
                        (None, _) => out.push(a.clone()),
                    }
                    j += 1;
                    continue;
                }
                if seen_cmd && !(self.subcommand.len() > 1 && self.subcommand.get(1) == Some(a)) {
                    flags_done = true;
                }
                seen_cmd = true;
            }
            out.push(a.clone());
            j += 1;
        }
        out
    }

    /// The record fragment describing this command (secret-free).
    pub fn to_json(&self) -> Value {
        json!({
            "program": self.program.file_name().map(|n| n.to_string_lossy().into_owned()),
            "subcommand": self.subcommand.join(" "),
            "operation": self.operation.kind_stem().trim_start_matches("terraform."),
            "args": self.sanitized_args(),
            "var_names": self.var_names,
            "var_files": self.var_files,
            "plan_mode": self.plan_mode,
        })
    }
}

fn sanitize_flag_value(name: &str, v: &str) -> String {
    match name {
        "var" => match v.split_once('=') {
            Some((n, _)) => format!("{n}={REDACTED}"),
            None => REDACTED.to_string(),
        },
        "backend-config" => match v.split_once('=') {
            Some((n, _)) => format!("{n}={REDACTED}"),
            None => v.to_string(), // a file path
        },
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Invocation {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Invocation::parse("terraform", &args).unwrap()
    }

    #[test]
    fn tools() {
        assert_eq!(
            Tool::from_program(Path::new("/usr/bin/terraform")),
            Some(Tool::Terraform)
        );
        assert_eq!(
            Tool::from_program(Path::new("terraform1.11")),
            Some(Tool::Terraform)
        );
        assert_eq!(Tool::from_program(Path::new("tofu")), Some(Tool::OpenTofu));
        assert_eq!(Tool::from_program(Path::new("ls")), None);
        assert_eq!(Tool::from_program(Path::new("terraformer")), None);
        assert!(matches!(
            Invocation::parse("ls", &[]),
            Err(Error::NotTerraform { .. })
        ));
    }

    #[test]
    fn classify() {
        assert_eq!(p(&["plan"]).operation(), &Operation::Plan);
        assert_eq!(p(&["apply", "-destroy"]).operation(), &Operation::Destroy);
        assert_eq!(p(&["destroy"]).operation(), &Operation::Destroy);
        assert_eq!(
            p(&["apply", "-refresh-only", "-auto-approve"]).operation(),
            &Operation::Refresh
        );
        assert_eq!(
            p(&["-chdir=infra", "state", "rm", "a.b"]).operation(),
            &Operation::State("rm".into())
        );
        assert_eq!(p(&["state", "list"]).operation(), &Operation::ReadOnly);
        assert_eq!(p(&["state", "pull"]).operation(), &Operation::ReadOnly);
        assert_eq!(
            p(&["workspace", "new", "x"]).operation(),
            &Operation::Workspace("new".into())
        );
        assert_eq!(
            p(&["workspace", "select", "x"]).operation(),
            &Operation::ReadOnly
        );
        assert_eq!(
            p(&["providers", "lock"]).operation(),
            &Operation::ProvidersLock
        );
        assert_eq!(p(&["show", "-json"]).operation(), &Operation::ReadOnly);
        assert_eq!(p(&["-version"]).operation(), &Operation::ReadOnly);
        assert_eq!(p(&["import", "a.b", "id"]).operation(), &Operation::Import);
        assert_eq!(p(&["taint", "a.b"]).operation(), &Operation::Taint);
        assert_eq!(
            p(&["force-unlock", "-force", "x"]).operation(),
            &Operation::ForceUnlock
        );
        assert_eq!(
            p(&["frobnicate"]).operation(),
            &Operation::Unknown("frobnicate".into())
        );
        let a = p(&["apply", "-input=false", "tf.plan"]);
        assert_eq!(a.saved_plan(), Some("tf.plan"));
        let a = p(&["apply", "-var", "x=1", "-auto-approve"]);
        assert_eq!(a.saved_plan(), None);
        let a = p(&["plan", "-out", "x.plan", "-no-color"]);
        assert_eq!(a.plan_out(), Some("x.plan"));
        assert!(a.no_color());
        assert_eq!(
            p(&["-chdir", "sub", "plan"]).working_dir(Path::new("/w")),
            Path::new("/w/sub")
        );
    }

    #[test]
    fn sanitizes() {
        let a = p(&[
            "-chdir=x",
            "apply",
            "-var",
            "password=hunter22",
            "-var=token=abc=def",
            "--var=k=v2v2",
            "-var-file=secret.tfvars",
            "-backend-config=password=pw1234",
            "-backend-config",
            "conf.hcl",
            "plan.tf",
        ]);
        let s = a.sanitized_args();
        assert_eq!(
            s,
            vec![
                "-chdir=x",
                "apply",
                "-var",
                "password=(sensitive value)",
                "-var=token=(sensitive value)",
                "--var=k=(sensitive value)",
                "-var-file=secret.tfvars",
                "-backend-config=password=(sensitive value)",
                "-backend-config",
                "conf.hcl",
                "plan.tf",
            ]
        );
        let j = a.to_json().to_string();
        for secret in ["hunter22", "abc=def", "v2v2", "pw1234"] {
            assert!(!j.contains(secret), "{secret} in {j}");
        }
        assert_eq!(a.secret_values(), ["hunter22", "abc=def", "v2v2", "pw1234"]);
        assert_eq!(a.saved_plan(), Some("plan.tf"));
        let s = p(&["state", "rm", "-dry-run", "a.b"]).sanitized_args();
        assert_eq!(s, vec!["state", "rm", "-dry-run", "a.b"]);
    }
}
