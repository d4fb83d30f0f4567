//! `tftrail history`

use serde_json::Value;

use super::{reindex, Global};
use crate::context;
use crate::error::CliError;

/// Every recorded change to a resource, oldest first.
///
/// A change is what a recorded command did to the resource in the state (created, updated,
/// replaced, deleted, removed from state with `state rm` …), plus planned changes of failed or
/// interrupted commands that left no trace in the state ("attempted"). Plans alone are not
/// changes. ADDR also matches its instances (ADDR[0], ADDR["k"]).
///
/// Exit 0 whether or not a change is found; none found prints nothing on stdout (with --json,
/// `[]`) and a note on stderr.
#[derive(clap::Args)]
pub struct Args {
    /// Resource address, e.g. terraform_data.web or module.net.aws_vpc.main
    address: String,
}

/// A line for people.
pub fn line(v: &Value) -> String {
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        x => x.to_string(),
    };
    let applied = v["applied"].as_bool() == Some(true);
    format!(
        "{:>6}  {}  {:<8} {}  by {}  ({}, {}){}",
        s("index"),
        s("time"),
        s("action"),
        s("address"),
        serde_json::from_value::<tftrail_core::record::Actor>(v["actor"].clone())
            .map_or_else(|_| "-@-".into(), |a| crate::render::who(&a)),
        s("kind"),
        s("outcome"),
        if applied {
            ""
        } else {
            "  ATTEMPTED, not applied"
        }
    )
}

/// Loads the changes of `address` with their records.
pub fn load(g: &Global, address: &str) -> Result<Vec<Value>, CliError> {
    let location = g.location();
    let log = context::open_log(&location, &g.trusted_key(&location)?)?;
    let cp = log.head()?.checkpoint;
    let ix = reindex::open_index(&log, &location, &cp)?;
    tftrail_index::describe_history(&ix, &log, &cp, address).map_err(reindex::index_err)
}

/// The values a change carries, one line each, beneath its line (`    ~ path = a -> b`).
pub fn value_lines(v: &Value) -> Vec<String> {
    let change = match v["action"].as_str().unwrap_or("") {
        "create" | "add" | "import" => "added",
        "delete" | "forget" => "removed",
        _ => "changed",
    };
    crate::render::attribute_lines(&v["values"], change, &[], "    ")
}

/// Prints changes as JSON or one line each (with the changed values beneath); says so on
/// stderr when there are none.
pub fn print(changes: Vec<Value>, json: bool, address: &str) {
    if changes.is_empty() {
        eprintln!("no recorded change to {address}");
    }
    if json {
        println!("{}", Value::Array(changes));
    } else {
        for v in &changes {
            println!("{}", line(v));
            for l in value_lines(v) {
                println!("{l}");
            }
        }
    }
}

pub fn run(a: Args, g: &Global) -> Result<i32, CliError> {
    print(load(g, &a.address)?, g.json, &a.address);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tftrail_core::record::{Actor, Record};

    fn actor(authenticated: Option<Value>) -> Actor {
        Actor {
            authenticated,
            user: "alice".into(),
            host: "box".into(),
            ci: None,
        }
    }

    fn record(kind: &str, a: Actor) -> Record {
        Record::new(kind, "2026-01-01T00:00:00Z", a, json!({}), vec![]).unwrap()
    }

    #[test]
    fn history_lines_show_who() {
        let change = tftrail_index::ChangeRow {
            index: 4,
            address: "terraform_data.a".into(),
            action: "create".into(),
            paths: vec![],
            source: "state".into(),
            state_change: Some("added".into()),
        };
        let oidc = json!({"by": "oidc", "issuer": "https://token.actions.githubusercontent.com",
                          "subject": "repo:acme/infra:ref:refs/heads/main", "role": "writer"});
        let r = record("terraform.apply.outcome", actor(Some(oidc)));
        let l = line(&tftrail_index::describe_change(&change, &r));
        assert!(
            l.contains("  by oidc:repo:acme/infra:ref:refs/heads/main  "),
            "{l}"
        );
        let r = record("terraform.apply.outcome", actor(None));
        let l = line(&tftrail_index::describe_change(&change, &r));
        assert!(l.contains("  by alice@box  "), "{l}");
    }
}
