//! Turning records into text for people.
//!
//! Who made a record is shown two ways. What a team server authenticated
//! (`actor.authenticated`) is shown as how and who: `token:ci-deploy`, `oidc:<subject>`,
//! `server`. What the writer said of itself (`user@host`, the CI identity) is shown as such,
//! and marked "self-asserted" wherever an authenticated identity is shown beside it.

use serde_json::Value;
use tftrail_core::record::{authenticated_label, Actor, Record};

/// One line for `tftrail log`.
pub fn line(index: u64, r: &Record) -> String {
    format!(
        "{index:>6}  {}  {:<24} {}  {}",
        r.time,
        r.kind,
        who(&r.actor),
        summary(r)
    )
}

/// Text from a record with control characters escaped, so that no value a writer or an
/// identity provider chose can move the cursor or recolour the terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Who made a record, in one short column: the authenticated identity when a team server
/// recorded one (`token:NAME`, `oidc:SUBJECT`, `server`; `authenticated:?` for an object of
/// a shape this version does not read), else the self-asserted `user@host`.
pub fn who(a: &Actor) -> String {
    match a.authenticated.as_ref() {
        None => format!("{}@{}", a.user, a.host),
        Some(v) => match authenticated_label(v) {
            Some(l) if l.by == "server" => "server".into(),
            Some(l) => format!("{}:{}", clean(l.by), clean(l.label)),
            None => "authenticated:?".into(),
        },
    }
}

/// The authenticated identity for `show`: how and who, the role, the issuer, and on a second
/// line every other member (`token=…`, `repository=…`, …); `None` when there is none.
pub fn authenticated(a: &Actor) -> Option<String> {
    let v = a.authenticated.as_ref()?;
    let Some(l) = authenticated_label(v) else {
        return Some(clean(&v.to_string()));
    };
    let mut s = if l.by == "server" {
        "server (the team server's own record)".to_string()
    } else {
        format!("{} {}", clean(l.by), clean(l.label))
    };
    if let Some(role) = l.role {
        s.push_str(&format!(" ({})", clean(role)));
    }
    if let Some(iss) = l.issuer {
        s.push_str(&format!(" via {}", clean(iss)));
    }
    // Everything not already said (which member the label came from depends on `by`).
    let said = |k: &str| {
        matches!(k, "by" | "role" | "issuer") || v.get(k).and_then(Value::as_str) == Some(l.label)
    };
    let rest: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !said(k))
        .map(|(k, x)| match x {
            Value::String(x) => format!("{}={}", clean(k), clean(x)),
            x => format!("{}={}", clean(k), clean(&x.to_string())),
        })
        .collect();
    if !rest.is_empty() {
        s.push_str(&format!("\n               {}", rest.join(" ")));
    }
    Some(s)
}

/// `user@host`, with " (self-asserted)" when an authenticated identity is shown beside it.
fn self_asserted(a: &Actor) -> String {
    let mark = if a.authenticated.is_some() {
        " (self-asserted)"
    } else {
        ""
    };
    format!("{}@{}{mark}", a.user, a.host)
}

/// The lines of a record the server's state backend made: which state, which lock, which run.
fn state_backend_lines(s: &mut String, p: &Value) {
    s.push_str(&format!(
        "state:     {} (on the tftrail server's http backend)\n",
        st(p.get("state"))
    ));
    if let Some(l) = p.get("lock").filter(|l| !l.is_null()) {
        s.push_str(&format!(
            "lock:      {} by {} ({}, taken {}, Terraform {})\n",
            st(l.get("id")),
            st(l.get("who")),
            st(l.get("operation")),
            st(l.get("created")),
            st(l.get("version"))
        ));
    }
    if let Some(r) = p.get("run") {
        match r.get("intent_index").and_then(Value::as_u64) {
            Some(i) => s.push_str(&format!(
                "run:       intent record {i} (tftrail run; matched by {})\n",
                st(r.get("matched_by"))
            )),
            None if p.get("out_of_band").and_then(Value::as_bool) == Some(true) => s.push_str(
                "run:       NONE: this change was made outside any recorded run (out of band)\n",
            ),
            None => {}
        }
    }
    if p.get("forced").and_then(Value::as_bool) == Some(true) {
        s.push_str("forced:    an admin overrode the lineage or serial check\n");
    }
    if let Some(reason) = p.get("reason") {
        s.push_str(&format!(
            "refused:   {} ({}): {}\n",
            st(p.get("operation")),
            st(p.get("status")),
            st(Some(reason))
        ));
    }
    if let Some(id) = p.get("requested_id") {
        s.push_str(&format!(
            "forced unlock of the lock above (ID sent: {})\n",
            match id.as_str() {
                Some("") | None => "none".to_string(),
                Some(x) => x.to_string(),
            }
        ));
    }
}

/// A value as Terraform users read it: the markers `(sensitive value)` and `(known after
/// apply)` bare, anything else as compact JSON (strings quoted, maps and lists on one line),
/// control characters escaped. Values are not cut here: a record keeps them short
/// (docs/decisions/0011-values.md) and `show --full` asks for them whole.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) if s == tftrail_terraform::REDACTED => s.clone(),
        Value::String(s) if s == tftrail_terraform::values::UNKNOWN => s.clone(),
        other => clean(&serde_json::to_string(other).unwrap_or_default()),
    }
}

/// Whether `path` is `p` or lies under it (`input.size` under `input`).
fn under(path: &str, p: &str) -> bool {
    path == p
        || path
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// The lines of one resource's attribute values (`[{path, before, after}]`, the shape of a
/// state diff's `values[].attributes` and a plan's `resource_changes[].attributes`), each
/// prefixed by `indent`: `+ path = after` for a value that appears, `- path = before` for one
/// that goes, `~ path = before -> after` for one that changes; `# forces replacement` after a
/// path under one of `replace_paths`. `change` is the instance's change (`added`/`create`
/// show every value as new, `removed`/`delete` as gone).
pub fn attribute_lines(
    attrs: &Value,
    change: &str,
    replace_paths: &[String],
    indent: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for a in attrs.as_array().into_iter().flatten() {
        let path = clean(&st(a.get("path")));
        let (b, af) = (
            a.get("before").unwrap_or(&Value::Null),
            a.get("after").unwrap_or(&Value::Null),
        );
        let mut line = if path == tftrail_terraform::REDACTED {
            format!("{indent}~ (a sensitive value changed)")
        } else {
            match change {
                "added" | "create" => format!("{indent}+ {path} = {}", value_text(af)),
                "removed" | "delete" => format!("{indent}- {path} = {}", value_text(b)),
                _ if b.is_null() && !af.is_null() => {
                    format!("{indent}+ {path} = {}", value_text(af))
                }
                _ if af.is_null() && !b.is_null() => {
                    format!("{indent}- {path} = {}", value_text(b))
                }
                _ => format!("{indent}~ {path} = {} -> {}", value_text(b), value_text(af)),
            }
        };
        if replace_paths.iter().any(|p| under(&st(a.get("path")), p)) {
            line.push_str(" # forces replacement");
        }
        out.push(line);
    }
    out
}

/// Whether a record's state diff had values truncated, and the note saying how to see them.
fn truncated_note(s: &mut String, d: &Value) {
    if d.get("truncated").and_then(Value::as_bool) == Some(true) {
        s.push_str(&format!(
            "  (values over {} bytes are truncated, marked …(truncated, sha256 …); `tftrail show N --full` prints them whole from blob {})\n",
            tftrail_terraform::values::MAX_STRING,
            tftrail_terraform::values::FULL_DIFF_BLOB
        ));
    }
}

/// The changed root outputs of a state diff, with values.
fn output_lines(s: &mut String, d: &Value) {
    let outs: Vec<&Value> = d
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if outs.is_empty() {
        return;
    }
    s.push_str("outputs:\n");
    for o in outs {
        let (b, a) = (
            o.get("before").unwrap_or(&Value::Null),
            o.get("after").unwrap_or(&Value::Null),
        );
        let name = clean(&st(o.get("name")));
        s.push_str(&match (b.is_null(), a.is_null()) {
            (true, false) => format!("  +   {name} = {}\n", value_text(a)),
            (false, true) => format!("  -   {name} = {}\n", value_text(b)),
            _ => format!("  ~   {name} = {} -> {}\n", value_text(b), value_text(a)),
        });
    }
}

/// A short summary of the payload.
pub fn summary(r: &Record) -> String {
    let p = &r.payload;
    let mut parts = Vec::new();
    if let Some(event) = r.kind.strip_prefix("terraform.state.") {
        parts.push(st(p.get("state")));
        let lock = p.get("lock").filter(|l| !l.is_null());
        match event {
            "write" | "delete" => parts.push(format!(
                "serial {} -> {}",
                st(p.pointer("/before/serial")),
                st(p.pointer("/after/serial"))
            )),
            "refused" => parts.push(format!(
                "{} refused ({})",
                st(p.get("operation")),
                st(p.get("status"))
            )),
            _ => {}
        }
        if let Some(l) = lock.filter(|_| matches!(event, "lock" | "unlock" | "force_unlock")) {
            parts.push(format!(
                "lock {} by {} ({})",
                short(&st(l.get("id")), 8),
                st(l.get("who")),
                st(l.get("operation"))
            ));
        }
        if p.get("out_of_band").and_then(Value::as_bool) == Some(true) {
            parts.push("OUT OF BAND".into());
        }
        if p.get("forced").and_then(Value::as_bool) == Some(true) {
            parts.push("FORCED".into());
        }
    }
    if let Some(o) = p.get("outcome").and_then(|v| v.as_str()) {
        parts.push(o.to_string());
    }
    if let Some(c) = p.pointer("/plan/summary/counts") {
        let n = |k: &str| c.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        parts.push(format!(
            "+{} ~{} -{} -/+{}",
            n("add"),
            n("change"),
            n("destroy"),
            n("replace")
        ));
    }
    if let Some(d) = p.get("state_diff").filter(|d| d.get("in_blob").is_none()) {
        let n = |k: &str| d.get(k).and_then(|v| v.as_array()).map_or(0, Vec::len);
        if n("added") + n("removed") + n("changed") > 0
            || p.pointer("/plan/summary/counts").is_none()
        {
            parts.push(format!(
                "state +{} ~{} -{}",
                n("added"),
                n("changed"),
                n("removed")
            ));
        }
    }
    if let Some(d) = p.pointer("/context/dir").and_then(|v| v.as_str()) {
        parts.push(format!("dir={d}"));
    }
    if parts.is_empty() {
        let mut s = serde_json::to_string(p).unwrap_or_default();
        if s.len() > 80 {
            let mut cut = 77;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
        }
        parts.push(s);
    }
    parts.join("  ")
}

/// The full rendering for `tftrail show`.
pub fn full(index: u64, r: &Record) -> String {
    let mut s = String::new();
    s.push_str(&format!("record {index}\n"));
    s.push_str(&format!("kind:    {}\n", r.kind));
    s.push_str(&format!("time:    {}\n", r.time));
    if let Some(a) = authenticated(&r.actor) {
        s.push_str(&format!("authenticated: {a}\n"));
    }
    s.push_str(&format!("actor:   {}", self_asserted(&r.actor)));
    if let Some(ci) = &r.actor.ci {
        s.push_str(&format!(" (CI, self-asserted: {ci})"));
    }
    s.push('\n');
    for b in &r.blobs {
        s.push_str(&format!(
            "blob:    {} sha256:{} ({} bytes)\n",
            b.name, b.sha256, b.size
        ));
    }
    s.push_str("payload:\n");
    let pretty = serde_json::to_string_pretty(&r.payload).unwrap_or_default();
    for l in pretty.lines() {
        s.push_str("  ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Links of a record to others, found through the index.
#[derive(Default)]
pub struct Links {
    /// For an intent: its outcome record.
    pub outcome: Option<u64>,
    /// For a plan: the intents that applied it.
    pub applied_by: Vec<u64>,
    /// For an outcome: its intent's payload (plan information).
    pub intent: Option<serde_json::Value>,
}

fn sym(action: &str) -> &'static str {
    match action {
        "create" | "added" | "add" => "+",
        "update" | "changed" => "~",
        "delete" | "removed" => "-",
        "replace" => "-/+",
        "forget" => "x",
        "import" => "<=",
        "read" => "<=",
        _ => "?",
    }
}

fn st(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => "-".into(),
        Some(v) => v.to_string(),
    }
}

/// The strings of a JSON list (none when it is not one).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

fn short(s: &str, n: usize) -> &str {
    s.get(..n).unwrap_or(s)
}

fn plan_lines(out: &mut String, summary: &serde_json::Value) {
    if let Some(c) = summary.get("counts") {
        let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
        out.push_str(&format!(
            "changes:   {} to add, {} to change, {} to destroy, {} to replace\n",
            n("add"),
            n("change"),
            n("destroy"),
            n("replace")
        ));
    }
    for rc in summary
        .get("resource_changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let action = rc.get("action").and_then(Value::as_str).unwrap_or("?");
        if matches!(action, "no-op" | "read") {
            continue;
        }
        let paths: Vec<&str> = rc
            .get("changed_paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let reason = rc
            .get("action_reason")
            .and_then(Value::as_str)
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default();
        let attrs = rc.get("attributes").filter(|a| a.is_array());
        out.push_str(&format!(
            "  {:<3} {}{}{}\n",
            sym(action),
            clean(&st(rc.get("address"))),
            if paths.is_empty() || attrs.is_some() {
                String::new()
            } else {
                format!("  ({})", paths.join(", "))
            },
            reason
        ));
        if let Some(attrs) = attrs {
            for l in attribute_lines(attrs, action, &strings(rc.get("replace_paths")), "      ") {
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    if summary.get("in_blob").is_some() {
        out.push_str("  (resource list kept in blob plan-summary.json)\n");
    }
    let outs: Vec<&Value> = summary
        .get("output_changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|o| o.get("action").and_then(Value::as_str) != Some("no-op"))
        .collect();
    if !outs.is_empty() {
        out.push_str("outputs:\n");
        for o in outs {
            let sens = if o.get("sensitive").and_then(Value::as_bool) == Some(true) {
                " (sensitive)"
            } else {
                ""
            };
            let (b, a) = (
                o.get("before").unwrap_or(&Value::Null),
                o.get("after").unwrap_or(&Value::Null),
            );
            let a = if o.get("after_unknown").and_then(Value::as_bool) == Some(true) {
                Value::String(tftrail_terraform::values::UNKNOWN.into())
            } else {
                a.clone()
            };
            let values = match (b.is_null(), a.is_null()) {
                (true, true) => String::new(),
                (true, false) => format!(" = {}", value_text(&a)),
                (false, true) => format!(" = {}", value_text(b)),
                _ => format!(" = {} -> {}", value_text(b), value_text(&a)),
            };
            out.push_str(&format!(
                "  {:<3} {}{values}{sens}\n",
                sym(o.get("action").and_then(Value::as_str).unwrap_or("?")),
                clean(&st(o.get("name")))
            ));
        }
    }
}

/// A reader's rendering of a Terraform record (plan, intent, outcome); `None` for others.
pub fn terraform(index: u64, r: &Record, links: &Links) -> Option<String> {
    if !r.kind.starts_with("terraform.") {
        return None;
    }
    let p = &r.payload;
    let mut s = String::new();
    let outcome = p.get("outcome").and_then(Value::as_str);
    s.push_str(&format!("record {index}  {}", r.kind));
    if let Some(o) = outcome {
        s.push_str(&format!("  {}", o.to_uppercase()));
        if let Some(c) = p.get("exit_code").and_then(Value::as_i64) {
            s.push_str(&format!(" (exit {c})"));
        }
    }
    s.push('\n');
    if let Some(a) = authenticated(&r.actor) {
        s.push_str(&format!("authenticated: {a}\n"));
    }
    s.push_str(&format!("who:       {}", self_asserted(&r.actor)));
    if let Some(ci) = &r.actor.ci {
        s.push_str(&format!("  CI (self-asserted): {ci}"));
    }
    s.push('\n');
    s.push_str(&format!("when:      {}", r.time));
    if let (Some(a), Some(b)) = (
        p.get("started_at").and_then(Value::as_str),
        p.get("ended_at").and_then(Value::as_str),
    ) {
        s.push_str(&format!("  (ran {a} .. {b}"));
        if let Some(ms) = p.get("duration_ms").and_then(Value::as_u64) {
            s.push_str(&format!(", {:.1} s", ms as f64 / 1000.0));
        }
        s.push(')');
    }
    s.push('\n');
    if let Some(c) = p.get("context") {
        let g = c.get("git").filter(|g| !g.is_null());
        s.push_str(&format!(
            "where:     dir {}  workspace {}  backend {}\n",
            st(c.get("dir")),
            st(c.get("workspace")),
            st(c.get("backend"))
        ));
        match g {
            Some(g) => s.push_str(&format!(
                "git:       repo {}  commit {}  branch {}{}\n",
                st(g.get("remote")),
                short(&st(g.get("commit")), 12),
                st(g.get("branch")),
                if g.get("dirty").and_then(Value::as_bool) == Some(true) {
                    "  (uncommitted changes)"
                } else {
                    ""
                }
            )),
            None => s.push_str("git:       not in a git work tree\n"),
        }
    }
    if let Some(c) = p.get("command") {
        let args: Vec<String> = c
            .get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| st(Some(a)))
            .collect();
        s.push_str(&format!(
            "command:   {} {}  ({} {})\n",
            st(c.get("program")),
            args.join(" "),
            st(p.pointer("/tool/name")),
            st(p.pointer("/tool/version"))
        ));
    }
    if r.kind.starts_with("terraform.state.") {
        state_backend_lines(&mut s, p);
    }
    if let Some(w) = p.get("fail_open") {
        s.push_str(&format!("WARNING:   {}\n", st(w.get("note"))));
    }
    // Links.
    if let Some(i) = p.get("intent_index") {
        match i.as_u64() {
            Some(i) => s.push_str(&format!("intent:    record {i}\n")),
            None => s.push_str("intent:    NOT RECORDED\n"),
        }
    }
    if r.kind.ends_with(".intent") {
        match links.outcome {
            Some(o) => s.push_str(&format!("outcome:   record {o}\n")),
            None => s.push_str(
                "outcome:   none recorded (still running, crashed, or its record was lost)\n",
            ),
        }
    }
    if r.kind.ends_with(".plan") && !links.applied_by.is_empty() {
        let l: Vec<String> = links.applied_by.iter().map(u64::to_string).collect();
        s.push_str(&format!("applied:   by record {}\n", l.join(", ")));
    }
    let plan = p
        .get("plan")
        .or_else(|| links.intent.as_ref().and_then(|i| i.get("plan")));
    if let Some(plan) = plan {
        let saved = plan.get("saved").and_then(Value::as_bool) == Some(true);
        if r.kind.ends_with(".plan") {
            s.push_str(&format!(
                "plan:      {}{}\n",
                if saved {
                    format!("saved to {}", st(plan.get("path")))
                } else {
                    "not saved".into()
                },
                plan.get("sha256")
                    .and_then(Value::as_str)
                    .map(|h| format!("  sha256 {}", short(h, 16)))
                    .unwrap_or_default()
            ));
        } else if saved {
            let link = match (
                plan.get("recorded").and_then(Value::as_bool),
                plan.get("plan_index").and_then(Value::as_u64),
            ) {
                (Some(true), Some(i)) => format!("recorded as record {i}"),
                (Some(false), _) => "NOT RECORDED by tftrail".into(),
                _ => format!("lookup failed: {}", st(plan.get("note"))),
            };
            s.push_str(&format!(
                "plan:      saved plan {} (sha256 {}), {link}\n",
                st(plan.get("path")),
                short(&st(plan.get("sha256")), 16)
            ));
        } else {
            s.push_str(&format!("plan:      {}\n", st(plan.get("note"))));
        }
        if let Some(e) = plan.get("error") {
            s.push_str(&format!("plan:      error: {}\n", st(Some(e))));
        }
        if let Some(sum) = plan.get("summary") {
            if !r.kind.ends_with(".outcome") {
                plan_lines(&mut s, sum);
            }
        }
    }
    if let Some(d) = p.get("state_diff") {
        let list = |k: &str| -> Vec<String> {
            d.get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        let (added, removed) = (list("added"), list("removed"));
        let changed: Vec<(String, Vec<String>)> = d
            .get("changed")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    st(c.get("address")),
                    c.get("paths")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|p| st(Some(p)))
                        .collect(),
                )
            })
            .collect();
        s.push_str(&format!(
            "changes:   {} added, {} changed, {} removed (in the state)\n",
            added.len(),
            changed.len(),
            removed.len()
        ));
        let planned_change = |a: &str| -> Option<&Value> {
            plan?
                .pointer("/summary/resource_changes")?
                .as_array()?
                .iter()
                .find(|c| c.get("address").and_then(Value::as_str) == Some(a))
        };
        let planned = |a: &str| -> Option<String> {
            planned_change(a)
                .and_then(|c| c.get("action").and_then(Value::as_str).map(String::from))
        };
        let values: Vec<&Value> = d
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let values_of = |a: &str| {
            values
                .iter()
                .find(|v| v.get("address").and_then(Value::as_str) == Some(a))
                .and_then(|v| v.get("attributes"))
        };
        let instance = |s: &mut String, a: &str, act: &str, change: &str, paths: &[String]| {
            let attrs = values_of(a);
            s.push_str(&format!(
                "  {:<3} {}{}\n",
                sym(act),
                clean(a),
                if paths.is_empty() || attrs.is_some() {
                    String::new()
                } else {
                    format!("  ({})", paths.join(", "))
                }
            ));
            if let Some(attrs) = attrs {
                let replace = strings(planned_change(a).and_then(|c| c.get("replace_paths")));
                for l in attribute_lines(attrs, change, &replace, "      ") {
                    s.push_str(&l);
                    s.push('\n');
                }
            }
        };
        for a in &added {
            let act = planned(a).unwrap_or_else(|| "create".into());
            instance(&mut s, a, &act, "added", &[]);
        }
        for (a, paths) in &changed {
            let act = planned(a).unwrap_or_else(|| {
                if paths.iter().any(|p| p == "id") {
                    "replace".into()
                } else {
                    "update".into()
                }
            });
            instance(&mut s, a, &act, "changed", paths);
        }
        for a in &removed {
            let act = planned(a).unwrap_or_else(|| "delete".into());
            instance(&mut s, a, &act, "removed", &[]);
        }
        truncated_note(&mut s, d);
        output_lines(&mut s, d);
        let outs = list("outputs_changed");
        if !outs.is_empty() && d.get("outputs").is_none() {
            s.push_str(&format!("outputs:   changed: {}\n", outs.join(", ")));
        }
    }
    // A state write's fingerprints are `before` and `after`; a run outcome's `state_before`
    // and `state_after`.
    let on_backend = r.kind.starts_with("terraform.state.");
    let state = |k: &str| {
        let k = match (on_backend, k) {
            (true, "state_before") => "before",
            (true, "state_after") => "after",
            _ => k,
        };
        p.get(k).filter(|v| !v.is_null())
    };
    let fp = |v: &Value| -> String {
        if v.get("present").and_then(Value::as_bool) == Some(false) {
            "none".into()
        } else if let Some(e) = v.get("error") {
            format!("unreadable ({})", st(Some(e)))
        } else {
            format!(
                "serial {} lineage {} sha256 {} ({} resources)",
                st(v.get("serial")),
                short(&st(v.get("lineage")), 8),
                short(&st(v.get("sha256")), 12),
                st(v.get("resources"))
            )
        }
    };
    if let Some(b) = state("state_before") {
        s.push_str(&format!("state:     before: {}\n", fp(b)));
    }
    if let Some(a) = state("state_after") {
        s.push_str(&format!("           after:  {}\n", fp(a)));
        if let Some(b) = state("state_before") {
            if b.get("lineage").is_some_and(|l| !l.is_null())
                && a.get("lineage").is_some_and(|l| !l.is_null())
                && b.get("lineage") != a.get("lineage")
            {
                s.push_str("           LINEAGE CHANGED: this is a different state\n");
            }
        }
    }
    for b in &r.blobs {
        s.push_str(&format!(
            "blob:      {} sha256:{} ({} bytes)\n",
            b.name, b.sha256, b.size
        ));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn actor(authenticated: Option<Value>) -> Actor {
        Actor {
            authenticated,
            user: "alice".into(),
            host: "box".into(),
            ci: Some(json!({"actor": "octocat"})),
        }
    }

    fn token() -> Value {
        json!({"by": "token", "name": "ci-deploy", "role": "writer", "token": "0123456789abcdef"})
    }

    fn oidc() -> Value {
        json!({"by": "oidc", "issuer": "https://token.actions.githubusercontent.com",
               "subject": "repo:acme/infra:ref:refs/heads/main", "repository": "acme/infra",
               "ref": "refs/heads/main", "run_id": "42", "role": "writer"})
    }

    fn record(kind: &str, a: Actor) -> Record {
        Record::new(kind, "2026-01-01T00:00:00Z", a, json!({"n": 1}), vec![]).unwrap()
    }

    #[test]
    fn attribute_lines_read_as_terraform_prints_them() {
        let attrs = json!([
            {"path": "input.size", "before": "small", "after": "large"},
            {"path": "triggers_replace", "before": "1", "after": "2"},
            {"path": "tags", "before": null, "after": {"env": "prod"}},
            {"path": "gone", "before": 3, "after": null},
            {"path": "pw", "before": "(sensitive value)", "after": "(sensitive value)"},
            {"path": "id", "before": "x", "after": "(known after apply)"},
            {"path": "evil", "before": "a", "after": "\u{1b}[2J"},
            {"path": "(sensitive value)", "before": "(sensitive value)", "after": "(sensitive value)"}
        ]);
        let l = attribute_lines(&attrs, "changed", &["triggers_replace".into()], "  ");
        assert_eq!(
            l,
            [
                r#"  ~ input.size = "small" -> "large""#,
                r#"  ~ triggers_replace = "1" -> "2" # forces replacement"#,
                r#"  + tags = {"env":"prod"}"#,
                "  - gone = 3",
                "  ~ pw = (sensitive value) -> (sensitive value)",
                r#"  ~ id = "x" -> (known after apply)"#,
                r#"  ~ evil = "a" -> "\u001b[2J""#,
                "  ~ (a sensitive value changed)",
            ]
        );
        // A created instance shows every value as new; a path under a replace path is marked.
        let l = attribute_lines(
            &json!([{"path": "input.a", "before": null, "after": 1}]),
            "added",
            &["input".into()],
            "",
        );
        assert_eq!(l, ["+ input.a = 1 # forces replacement"]);
        assert!(!under("inputs", "input"));
    }

    #[test]
    fn who_prefers_the_authenticated_identity() {
        assert_eq!(who(&actor(None)), "alice@box");
        assert_eq!(who(&actor(Some(token()))), "token:ci-deploy");
        assert_eq!(
            who(&actor(Some(oidc()))),
            "oidc:repo:acme/infra:ref:refs/heads/main"
        );
        assert_eq!(who(&actor(Some(json!({"by": "server"})))), "server");
        assert_eq!(who(&actor(Some(json!({"via": "mtls"})))), "authenticated:?");
        // Nothing a token's name holds reaches the terminal raw.
        let evil = json!({"by": "token", "name": "x\u{1b}[2Jy\n"});
        assert_eq!(who(&actor(Some(evil))), "token:x\\u{1b}[2Jy\\u{a}");
    }

    #[test]
    fn log_lines_show_who() {
        let l = line(7, &record("event", actor(Some(token()))));
        assert_eq!(
            l,
            "     7  2026-01-01T00:00:00Z  event                    token:ci-deploy  {\"n\":1}"
        );
        let l = line(7, &record("event", actor(None)));
        assert!(l.contains(" alice@box  "), "{l}");
    }

    #[test]
    fn show_says_what_was_authenticated_and_what_was_asserted() {
        let s = full(3, &record("event", actor(Some(token()))));
        assert!(
            s.contains("\nauthenticated: token ci-deploy (writer)\n               token=0123456789abcdef\nactor:   alice@box (self-asserted) (CI, self-asserted: {\"actor\":\"octocat\"})\n"),
            "{s}"
        );
        let s = full(3, &record("event", actor(Some(oidc()))));
        assert!(
            s.contains("\nauthenticated: oidc repo:acme/infra:ref:refs/heads/main (writer) via https://token.actions.githubusercontent.com\n               ref=refs/heads/main repository=acme/infra run_id=42\n"),
            "{s}"
        );
        let s = full(
            3,
            &record("server.access.denied", actor(Some(json!({"by": "server"})))),
        );
        assert!(
            s.contains("\nauthenticated: server (the team server's own record)\nactor:   alice@box (self-asserted)"),
            "{s}"
        );
        // An object of another shape is shown as it is.
        let s = full(3, &record("event", actor(Some(json!({"via": "mtls"})))));
        assert!(s.contains("\nauthenticated: {\"via\":\"mtls\"}\n"), "{s}");
        // Without one, no authenticated line and no mark.
        let s = full(3, &record("event", actor(None)));
        assert!(!s.contains("authenticated"), "{s}");
        assert!(!s.contains("alice@box (self-asserted)"), "{s}");
        // The Terraform rendering too.
        let t = terraform(
            3,
            &record("terraform.plan", actor(Some(token()))),
            &Links::default(),
        )
        .unwrap();
        assert!(
            t.contains("\nauthenticated: token ci-deploy (writer)\n               token=0123456789abcdef\nwho:       alice@box (self-asserted)  CI (self-asserted)"),
            "{t}"
        );
        let t = terraform(3, &record("terraform.plan", actor(None)), &Links::default()).unwrap();
        assert!(t.contains("\nwho:       alice@box  CI"), "{t}");
        assert!(!t.contains("authenticated"), "{t}");
    }
}
