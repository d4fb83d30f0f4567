//! `report.html`: who changed what and when, for people. Self-contained (inline style, no
//! script, no external resource), every value from a record escaped. It is a pure function
//! of the manifest and the records, so `tftrail evidence verify` renders it again and
//! compares: a report that was edited is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;
use tftrail_core::record::Record;

use super::{Manifest, Selection};
use crate::render;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {
                let _ = write!(o, "&#x{:x};", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#111}\
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:4px 6px;\
text-align:left;vertical-align:top;font-size:14px}th{background:#eee}\
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:13px}\
code{font-size:13px}.muted{color:#555}";

fn who(r: &Record) -> String {
    let mut s = esc(&render::who(&r.actor));
    if r.actor.authenticated.is_some() {
        let _ = write!(
            s,
            "<br><span class=\"muted\">self-asserted: {}@{}</span>",
            esc(&r.actor.user),
            esc(&r.actor.host)
        );
    }
    if let Some(ci) = &r.actor.ci {
        let _ = write!(
            s,
            "<br><span class=\"muted\">CI (self-asserted): {}</span>",
            esc(&ci.to_string())
        );
    }
    s
}

/// One side of a value for the report: `(none)` where absent, the log's markers bare, other
/// values as compact JSON (as `show` prints them), long ones cut.
fn side(v: Option<&Value>) -> String {
    let t = match v {
        None | Some(Value::Null) => "(none)".to_string(),
        Some(v) => crate::render::value_text(v),
    };
    if t.chars().count() > 300 {
        format!("{}…", t.chars().take(299).collect::<String>())
    } else {
        t
    }
}

/// The values a record carries for its changes, one `ADDR.PATH: before → after` line per
/// changed attribute: the plan summary's `resource_changes[].attributes` (planned values) and
/// the state diff's `values[].attributes`, both in the `[{path, before, after}]` shape
/// (docs/decisions/0011-values.md). Sensitive values are already the log's redaction markers.
fn values(r: &Record) -> Vec<String> {
    let p = &r.payload;
    let list = |ptr: &str| {
        p.pointer(ptr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    let planned = list("/plan/summary/resource_changes").filter(|c| {
        !matches!(
            c.get("action").and_then(Value::as_str),
            Some("no-op" | "read")
        )
    });
    planned
        .chain(list("/state_diff/values"))
        .flat_map(|c| {
            let addr = c.get("address").and_then(Value::as_str).unwrap_or("?");
            let attrs = c.get("attributes").and_then(Value::as_array);
            attrs.into_iter().flatten().map(move |a| {
                format!(
                    "{addr}.{}: {} → {}",
                    a.get("path").and_then(Value::as_str).unwrap_or("?"),
                    side(a.get("before")),
                    side(a.get("after"))
                )
            })
        })
        .collect()
}

fn selection_text(s: &Selection) -> String {
    let mut parts = vec![super::window_text(s)];
    if let Some(k) = &s.kind {
        parts.push(format!("kind {k}"));
    }
    if let Some(r) = &s.resource {
        parts.push(format!("resource {r}"));
    }
    parts.join(", ")
}

/// Renders the report.
pub fn render(m: &Manifest, full: &BTreeMap<u64, Record>, selected: &BTreeSet<u64>) -> Vec<u8> {
    let mut h = String::new();
    let title = format!("Evidence: {} ({})", m.origin, selection_text(&m.selection));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let _ = writeln!(
        h,
        "<p>Log <code>{}</code>, checkpoint tree size {}, root <code>{}</code>, verifier key <code>{}</code>.<br>\
         Bundle made {}. {} selected record(s) out of entries {}..{} of the log.</p>",
        esc(&m.origin),
        m.checkpoint.size,
        esc(&m.checkpoint.root),
        esc(&m.verifier_key),
        esc(&m.created),
        selected.len(),
        m.entries.first().map_or(0, |e| e.index),
        m.entries.last().map_or(0, |e| e.index),
    );
    if !m.checkpoint.cosignature_lines.is_empty() {
        let names: Vec<String> = m
            .checkpoint
            .cosignature_lines
            .iter()
            .map(|n| esc(n))
            .collect();
        let _ = writeln!(
            h,
            "<p>The checkpoint carries cosignature lines of: {}.</p>",
            names.join(", ")
        );
    }
    h.push_str(
        "<p class=\"muted\">This report is a rendering of the bundle's records; \
         <code>tftrail evidence verify BUNDLE --key KEY</code> checks every record against the \
         signed checkpoint and that this file is exactly what they render to. Sensitive values \
         were redacted before they were logged.</p>\n",
    );
    h.push_str(
        "<table><thead><tr><th>#</th><th>time</th><th>who</th><th>kind</th><th>summary</th>\
         <th>resource changes</th><th>values (before → after)</th></tr></thead><tbody>\n",
    );
    let plan = |i: u64| {
        full.get(&i)
            .map(|r| super::planned(i, r))
            .unwrap_or_default()
    };
    for i in selected {
        let r = &full[i];
        let (_, changes) = tftrail_index::extract(*i, r, &plan);
        let changes: Vec<String> = changes
            .iter()
            .map(|c| {
                let paths = if c.paths.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.paths.join(", "))
                };
                format!(
                    "{} <code>{}</code>{}{}",
                    esc(&c.action),
                    esc(&c.address),
                    esc(&paths),
                    if c.source == "plan" {
                        " <span class=\"muted\">planned</span>"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#r{i}\">{i}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.time),
            who(r),
            esc(&r.kind),
            esc(&render::summary(r)),
            changes.join("<br>"),
            values(r)
                .iter()
                .map(|v| format!("<code>{}</code>", esc(v)))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    h.push_str("</tbody></table>\n<h2>Records</h2>\n");
    for i in selected {
        let r = &full[i];
        let mut links = render::Links::default();
        if let Some(intent) = r
            .payload
            .get("intent_index")
            .and_then(|v| v.as_u64())
            .and_then(|k| full.get(&k))
        {
            links.intent = Some(intent.payload.clone());
        }
        let text = render::terraform(*i, r, &links).unwrap_or_else(|| render::full(*i, r));
        let _ = writeln!(
            h,
            "<h3 id=\"r{i}\">Record {i}: {} at {}</h3>\n<pre>{}</pre>",
            esc(&r.kind),
            esc(&r.time),
            esc(&text)
        );
    }
    let others: Vec<String> = m
        .entries
        .iter()
        .filter(|e| !selected.contains(&e.index))
        .map(|e| format!("{} ({} at {})", e.index, esc(&e.kind), esc(&e.time)))
        .collect();
    if !others.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Other entries in the range</h2>\n<p class=\"muted\">Carried to prove that no \
             record of the selection was left out; not selected: {}.</p>",
            others.join("; ")
        );
    }
    h.push_str("</body></html>\n");
    h.into_bytes()
}
