//! The pages: timeline, record, resource, status; receipts and blobs of a record.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use tftrail_core::record::{authenticated_label, Record};
use tftrail_index::{Filter, IndexError};
use tftrail_log::LogError;

use super::{error_page, html_response, layout, urlencode, value, Viewer};
use crate::api::{index_err, with_index};
use crate::error::ApiError;
use crate::state::AppState;

/// Records on a page of the timeline.
pub const PAGE: u64 = 50;

/// What a failed page read turns into: an integrity failure is named as such.
fn failure(v: &Viewer, e: ApiError) -> Response {
    let integrity = e.message.contains("integrity") || e.message.contains("does not match");
    if integrity {
        error_page(
            Some(v),
            StatusCode::INTERNAL_SERVER_ERROR,
            "Integrity error",
            &format!(
                "The log failed verification while reading this page, so nothing of it is shown: {}",
                e.message
            ),
        )
    } else {
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            _ => "Error",
        };
        error_page(Some(v), e.status, title, &e.message)
    }
}

fn read_err(e: IndexError) -> ApiError {
    match e {
        IndexError::Log(LogError::Integrity(m)) => {
            ApiError::internal(format!("integrity failure: {m}"))
        }
        IndexError::Log(l) if l.is_integrity() => {
            ApiError::internal(format!("integrity failure: {l}"))
        }
        other => index_err(other),
    }
}

/// The timeline's filters, as the GET form sends them (empty fields are no filter).
#[derive(Deserialize, Default, Clone)]
pub struct TimelineQuery {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    workspace: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A time from the form: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` (an `<input type=datetime-local>`,
/// read as UTC) or `YYYY-MM-DD`.
fn form_time(what: &str, s: &str) -> Result<Option<i64>, String> {
    let Some(t) = opt(s) else { return Ok(None) };
    let candidates = [
        t.clone(),
        format!("{t}Z"),
        format!("{t}:00Z"),
        format!("{t}T00:00:00Z"),
    ];
    candidates
        .iter()
        .find_map(|c| tftrail_index::time_ns(c))
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{what} {t:?} is not a time (use 2026-01-31, 2026-01-31T14:00 or RFC 3339; UTC)"
            )
        })
}

fn index_param(what: &str, s: &str) -> Result<Option<u64>, String> {
    opt(s)
        .map(|t| {
            t.parse::<u64>()
                .map_err(|_| format!("{what}={t:?} is not a record index"))
        })
        .transpose()
}

/// One row of the timeline.
struct Row {
    index: u64,
    rec: Record,
}

fn who(r: &Record) -> Markup {
    let a = &r.actor;
    let said = if a.host.is_empty() {
        a.user.clone()
    } else {
        format!("{}@{}", a.user, a.host)
    };
    match a.authenticated.as_ref().and_then(authenticated_label) {
        Some(l) => html! {
            span.auth title={ "authenticated by the server (" (l.by) ")" } {
                span.badge.ok { "authenticated" } " " (l.label)
            }
            @if l.by != "server" && !said.is_empty() { " " span.said title="self-asserted" { "(" (said) ")" } }
        },
        None => html! {
            span.said { span.badge.warn { "self-asserted" } " " (said) }
        },
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// "+1 ~2 -0" of a record's plan or state change.
fn counts(p: &Value) -> String {
    if let Some(c) = p.pointer("/plan/summary/counts") {
        let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
        let mut out = format!("+{} ~{} -{}", n("add"), n("change"), n("destroy"));
        if n("replace") > 0 {
            out.push_str(&format!(" ±{}", n("replace")));
        }
        return out;
    }
    if let Some(d) = p.get("state_diff").filter(|d| d.is_object()) {
        let n = |k: &str| d.get(k).and_then(Value::as_array).map_or(0, Vec::len);
        return format!("+{} ~{} -{}", n("added"), n("changed"), n("removed"));
    }
    String::new()
}

fn outcome_badge(o: Option<&str>) -> Markup {
    match o {
        Some("success") => html! { span.badge.ok { "success" } },
        Some(x) => html! { span.badge.bad { (x) } },
        None => html! {},
    }
}

fn time_el(t: &str) -> Markup {
    html! { time datetime=(t) { (t.replace('T', " ")) } }
}

/// `GET /`: the timeline.
pub async fn timeline(
    State(st): State<Arc<AppState>>,
    v: Viewer,
    Query(q): Query<TimelineQuery>,
) -> Response {
    let parsed = (|| -> Result<Filter, String> {
        let before = index_param("before", &q.before)?;
        let after = index_param("after", &q.after)?;
        Ok(Filter {
            kind: opt(&q.kind),
            actor: opt(&q.actor),
            outcome: opt(&q.outcome),
            workspace: opt(&q.workspace),
            resource: opt(&q.resource),
            since_ns: form_time("since", &q.since)?,
            until_ns: form_time("until", &q.until)?,
            before,
            after: if before.is_some() { None } else { after },
            limit: PAGE + 1,
            ..Default::default()
        })
    })();
    let f = match parsed {
        Ok(f) => f,
        Err(m) => {
            return html_response(
                StatusCode::BAD_REQUEST,
                timeline_page(&v, &q, &[], None, None, Some(&m), 0),
            )
        }
    };
    let backwards = f.after.is_some();
    let got = st
        .blocking(move |st| {
            with_index(st, |ix, cp| {
                let mut idx = ix.find(&f).map_err(index_err)?;
                let more = idx.len() as u64 > PAGE;
                if more {
                    if backwards {
                        idx.remove(0);
                    } else {
                        idx.pop();
                    }
                }
                let recs = tftrail_index::read_records(&st.log, cp, &idx).map_err(read_err)?;
                Ok((recs, more, cp.size))
            })
        })
        .await;
    let (recs, more, size) = match got {
        Ok(x) => x,
        Err(e) => return failure(&v, e),
    };
    let rows: Vec<Row> = recs
        .into_iter()
        .map(|(index, rec)| Row { index, rec })
        .collect();
    // Older records exist beyond this page when the query found more, or when we came back
    // from them; newer ones when this page started before some index.
    let (newer, older) = if backwards {
        (more, true)
    } else {
        (opt(&q.before).is_some(), more)
    };
    let next = older.then(|| rows.last().map(|r| r.index)).flatten();
    let prev = newer.then(|| rows.first().map(|r| r.index)).flatten();
    html_response(
        StatusCode::OK,
        timeline_page(&v, &q, &rows, prev, next, None, size),
    )
}

fn filter_link(q: &TimelineQuery, before: Option<u64>, after: Option<u64>) -> String {
    let mut parts = Vec::new();
    for (k, val) in [
        ("resource", &q.resource),
        ("actor", &q.actor),
        ("kind", &q.kind),
        ("outcome", &q.outcome),
        ("workspace", &q.workspace),
        ("since", &q.since),
        ("until", &q.until),
    ] {
        if let Some(x) = opt(val) {
            parts.push(format!("{k}={}", urlencode(&x)));
        }
    }
    if let Some(b) = before {
        parts.push(format!("before={b}"));
    }
    if let Some(a) = after {
        parts.push(format!("after={a}"));
    }
    if parts.is_empty() {
        "/".into()
    } else {
        format!("/?{}", parts.join("&"))
    }
}

fn timeline_page(
    v: &Viewer,
    q: &TimelineQuery,
    rows: &[Row],
    prev: Option<u64>,
    next: Option<u64>,
    error: Option<&str>,
    size: u64,
) -> Markup {
    let field = |id: &str, label: &str, val: &str, hint: &str| {
        html! {
            div.field {
                label for=(id) { (label) }
                input id=(id) name=(id) type="text" value=(val) placeholder=(hint);
            }
        }
    };
    layout(
        "Timeline",
        Some(v),
        html! {
            h1 { "Timeline" }
            p.lede { "Records of the log, newest first (" (size) " in all)." }
            form.filters method="get" action="/" role="search" aria-label="Filter records" {
                (field("resource", "Resource", &q.resource, "aws_instance.web"))
                (field("actor", "Actor", &q.actor, "name, user or user@host"))
                (field("kind", "Kind", &q.kind, "apply, plan, state.write"))
                div.field {
                    label for="outcome" { "Outcome" }
                    select #outcome name="outcome" {
                        @for o in ["", "success", "failed", "interrupted"] {
                            option value=(o) selected[q.outcome.trim() == o] { @if o.is_empty() { "any" } @else { (o) } }
                        }
                    }
                }
                (field("workspace", "Workspace", &q.workspace, "default"))
                (field("since", "Since (UTC)", &q.since, "2026-01-31T14:00"))
                (field("until", "Until (UTC)", &q.until, "2026-02-01"))
                div.actions {
                    button type="submit" { "Filter" }
                    a href="/" { "Clear" }
                }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if rows.is_empty() && error.is_none() {
                p.empty { "No records match." }
            } @else if !rows.is_empty() {
                table.records {
                    caption.visually-hidden { "Records" }
                    thead { tr {
                        th scope="col" { "#" }
                        th scope="col" { "Time (UTC)" }
                        th scope="col" { "Kind" }
                        th scope="col" { "Actor" }
                        th scope="col" { "Workspace" }
                        th scope="col" { "Outcome" }
                        th scope="col" { "Resources" }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                th scope="row" data-label="#" { a href={ "/records/" (r.index) } { (r.index) } }
                                td data-label="Time" { (time_el(&r.rec.time)) }
                                td data-label="Kind" { a href={ "/records/" (r.index) } { (r.rec.kind) } }
                                td data-label="Actor" { (who(&r.rec)) }
                                td data-label="Workspace" { (s(&r.rec.payload, "/context/workspace").unwrap_or("")) }
                                td data-label="Outcome" { (outcome_badge(s(&r.rec.payload, "/outcome"))) }
                                td data-label="Resources" { (counts(&r.rec.payload)) }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if let Some(p) = prev { a rel="prev" href=(filter_link(q, None, Some(p))) { "← Newer" } }
                @if let Some(n) = next { a rel="next" href=(filter_link(q, Some(n), None)) { "Older →" } }
            }
        },
    )
}

/// What the record page shows besides the record: its neighbours in a run.
#[derive(Default)]
struct Links {
    intent: Option<u64>,
    outcome: Option<u64>,
    plan: Option<u64>,
    applies: Vec<u64>,
    run_intent: Option<u64>,
}

/// `GET /records/{n}`.
pub async fn record(State(st): State<Arc<AppState>>, v: Viewer, Path(n): Path<String>) -> Response {
    let Ok(n) = n.parse::<u64>() else {
        return failure(
            &v,
            ApiError::bad_request(format!("{n:?} is not a record index")),
        );
    };
    let got = st
        .blocking(move |st| {
            with_index(st, |ix, cp| {
                let mut r = crate::api::read_one(&st.log, cp, n, read_err)?;
                tftrail_index::inflate(&st.log, &mut r.payload)
                    .map_err(|e| read_err(IndexError::Log(e)))?;
                let p = &r.payload;
                let mut l = Links {
                    intent: p.get("intent_index").and_then(Value::as_u64),
                    run_intent: p.pointer("/run/intent_index").and_then(Value::as_u64),
                    ..Default::default()
                };
                if r.kind.ends_with(".intent") {
                    l.outcome = ix.outcome_of(n).map_err(index_err)?;
                }
                l.plan = p.pointer("/plan/plan_index").and_then(Value::as_u64);
                if r.kind.ends_with(".plan") {
                    l.applies = ix.applies_of_plan(n).map_err(index_err)?;
                } else if l.plan.is_none() {
                    if let Some(sha) = s(p, "/plan/sha256") {
                        l.plan = ix.find_plan(sha).map_err(index_err)?.filter(|&i| i != n);
                    }
                }
                // The output, shown inline when small (it is scrubbed by the recorder).
                let output = match s(p, "/output/sha256") {
                    Some(sha) if r.blobs.iter().any(|b| b.sha256 == sha) => {
                        let size = p
                            .pointer("/output/size")
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        if size <= MAX_INLINE_OUTPUT {
                            Some(st.log.blob(sha).map_err(|e| read_err(IndexError::Log(e)))?)
                        } else {
                            None
                        }
                    }
                    _ => None,
                };
                Ok((r, l, output))
            })
        })
        .await;
    match got {
        Ok((r, l, output)) => html_response(
            StatusCode::OK,
            record_page(&v, n, &r, &l, output.as_deref()),
        ),
        Err(e) => failure(&v, e),
    }
}

/// The most output shown on the record page itself (the rest: download).
const MAX_INLINE_OUTPUT: u64 = 256 * 1024;

fn link(i: u64) -> Markup {
    html! { a href={ "/records/" (i) } { "#" (i) } }
}

fn dl_row(term: &str, val: Option<Markup>) -> Markup {
    html! {
        @if let Some(v) = val { dt { (term) } dd { (v) } }
    }
}

fn text(v: Option<&str>) -> Option<Markup> {
    v.filter(|s| !s.is_empty()).map(|s| html! { (s) })
}

fn action_sign(a: &str) -> &'static str {
    match a {
        "create" | "added" | "add" | "import" => "+",
        "delete" | "removed" | "forget" => "-",
        "replace" => "-/+",
        "update" | "changed" => "~",
        _ => "·",
    }
}

fn attributes(attrs: &[Value]) -> Markup {
    html! {
        @if !attrs.is_empty() {
            table.attrs {
                thead { tr { th scope="col" { "Attribute" } th scope="col" { "Before" } th scope="col" { "After" } } }
                tbody {
                    @for a in attrs {
                        tr {
                            th scope="row" data-label="Attribute" { code { (a.get("path").and_then(Value::as_str).unwrap_or("")) } }
                            td.before data-label="Before" { (value(a.get("before").unwrap_or(&Value::Null))) }
                            td.after data-label="After" { (value(a.get("after").unwrap_or(&Value::Null))) }
                        }
                    }
                }
            }
        }
    }
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// What a planned value unknown until apply is shown as.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// Terminal colour and cursor sequences (`ESC [ … letter`) taken out of output for display
/// (the download keeps the bytes as recorded).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            if it.peek() == Some(&'[') {
                it.next();
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The value at an attribute path (`a.b`, `a[0].b`, `a.0`) of a planned object.
fn at_path<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for part in path
        .replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|p| !p.is_empty())
    {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A planned change's values as `attributes` (`[{path, before, after}]`), from its redacted
/// `before` and `after` objects and its changed paths, when the record has no `attributes`.
fn planned_values(c: &Value) -> Vec<Value> {
    let (before, after) = (c.get("before"), c.get("after"));
    if before.is_none() && after.is_none() {
        return vec![];
    }
    arr(c, "/changed_paths")
        .iter()
        .filter_map(Value::as_str)
        .map(|p| {
            let get = |o: Option<&Value>| {
                o.and_then(|o| at_path(o, p))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let after = match get(after) {
                // Unknown until apply: absent from the redacted `after`.
                Value::Null if after.is_some_and(|a| !a.is_null()) => {
                    Value::String(KNOWN_AFTER_APPLY.into())
                }
                v => v,
            };
            serde_json::json!({"path": p, "before": get(before), "after": after})
        })
        .collect()
}

fn changes(p: &Value) -> Markup {
    let planned = arr(p, "/plan/summary/resource_changes");
    let values = arr(p, "/state_diff/values");
    let outputs = arr(p, "/state_diff/outputs");
    let plain = |d: &Value, k: &str| -> Vec<String> {
        arr(d, k)
            .iter()
            .filter_map(|x| {
                x.as_str()
                    .or_else(|| x.get("address").and_then(Value::as_str))
            })
            .map(String::from)
            .collect()
    };
    html! {
        @if !planned.is_empty() {
            section aria-labelledby="planned" {
                h2 #planned { "Planned changes" }
                @for c in planned {
                    @let action = c.get("action").and_then(Value::as_str).unwrap_or("");
                    @if !matches!(action, "no-op" | "read") {
                        div.change {
                            h3 { span class={ "sign a-" (action) } { (action_sign(action)) } " " code { (c.get("address").and_then(Value::as_str).unwrap_or("")) } " " span.action { (action) } }
                            @let paths = arr(c, "/changed_paths");
                            @if !paths.is_empty() {
                                p.paths { "Changed: " @for (i, x) in paths.iter().enumerate() { @if i > 0 { ", " } code { (x.as_str().unwrap_or("")) } } }
                            }
                            @let attrs = arr(c, "/attributes");
                            @if attrs.is_empty() { (attributes(&planned_values(c))) } @else { (attributes(attrs)) }
                        }
                    }
                }
            }
        }
        @if let Some(d) = p.get("state_diff").filter(|d| d.is_object()) {
            section aria-labelledby="state" {
                h2 #state { "Changes in the state" }
                @if values.is_empty() {
                    @let (added, removed, changed) = (plain(d, "/added"), plain(d, "/removed"), plain(d, "/changed"));
                    @if added.is_empty() && removed.is_empty() && changed.is_empty() { p { "No resource changed." } }
                    ul.plain {
                        @for a in &added { li { span.sign.a-create { "+" } " " code { (a) } } }
                        @for a in &changed { li { span.sign.a-update { "~" } " " code { (a) } } }
                        @for a in &removed { li { span.sign.a-delete { "-" } " " code { (a) } } }
                    }
                }
                @for c in values {
                    @let change = c.get("change").and_then(Value::as_str).unwrap_or("");
                    div.change {
                        h3 { span class={ "sign a-" (change) } { (action_sign(change)) } " " code { (c.get("address").and_then(Value::as_str).unwrap_or("")) } " " span.action { (change) } }
                        (attributes(arr(c, "/attributes")))
                    }
                }
                @if !outputs.is_empty() {
                    h3 { "Outputs" }
                    table.attrs {
                        thead { tr { th scope="col" { "Output" } th scope="col" { "Before" } th scope="col" { "After" } } }
                        tbody {
                            @for o in outputs {
                                tr {
                                    th scope="row" data-label="Output" { code { (o.get("name").and_then(Value::as_str).unwrap_or("")) } }
                                    td.before data-label="Before" { (value(o.get("before").unwrap_or(&Value::Null))) }
                                    td.after data-label="After" { (value(o.get("after").unwrap_or(&Value::Null))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn record_page(v: &Viewer, n: u64, r: &Record, l: &Links, output: Option<&[u8]>) -> Markup {
    let p = &r.payload;
    let a = &r.actor;
    let auth = a.authenticated.as_ref();
    let label = auth.and_then(authenticated_label);
    let ci = a.ci.as_ref();
    layout(
        &format!("Record {n}"),
        Some(v),
        html! {
            h1 { "Record " (n) ": " code { (r.kind) } }
            p.actions {
                a.button href={ "/records/" (n) "/receipt" } download { "Download receipt" }
                " "
                span.help { "A C2SP tlog-proof receipt: check it offline with " code { "tftrail verify-receipt" } "." }
            }
            section aria-labelledby="who" {
                h2 #who { "Who" }
                dl {
                    @match label {
                        Some(lb) => {
                            dt { "Authenticated" }
                            dd { span.badge.ok { "authenticated" } " " strong { (lb.label) } " by " (lb.by)
                                @if let Some(role) = lb.role { ", role " (role) }
                                @if let Some(i) = lb.issuer { ", issuer " code { (i) } } }
                        }
                        None => { dt { "Authenticated" } dd { span.badge.warn { "no" } " the writer was not authenticated by a server" } }
                    }
                    dt { "Self-asserted" } dd { span.said { (a.user) @if !a.host.is_empty() { "@" (a.host) } } }
                    @if let Some(ci) = ci {
                        (dl_row("CI (self-asserted)", Some(html! { code { (serde_json::to_string(ci).unwrap_or_default()) } })))
                    }
                }
            }
            section aria-labelledby="when" {
                h2 #when { "When" }
                dl {
                    dt { "Recorded" } dd { (time_el(&r.time)) }
                    (dl_row("Started", s(p, "/started_at").map(time_el)))
                    (dl_row("Ended", s(p, "/ended_at").map(time_el)))
                    (dl_row("Duration", p.get("duration_ms").and_then(Value::as_u64).map(|d| html! { (d) " ms" })))
                }
            }
            @if p.get("context").is_some() {
                section aria-labelledby="where" {
                    h2 #where { "Where" }
                    dl {
                        (dl_row("Directory", text(s(p, "/context/dir")).map(|m| html! { code { (m) } })))
                        (dl_row("Workspace", text(s(p, "/context/workspace"))))
                        (dl_row("Backend", text(s(p, "/context/backend"))))
                        (dl_row("State", text(s(p, "/context/state_address"))))
                        (dl_row("Git repository", text(s(p, "/context/git/remote"))))
                        (dl_row("Git commit", text(s(p, "/context/git/commit")).map(|m| html! { code { (m) } })))
                        (dl_row("Git branch", text(s(p, "/context/git/branch"))))
                        (dl_row("Uncommitted changes", p.pointer("/context/git/dirty").and_then(Value::as_bool).map(|d| html! { @if d { span.badge.warn { "dirty" } } @else { "none" } })))
                        (dl_row("CI job", ci.and_then(|c| c.get("job").or_else(|| c.get("workflow"))).and_then(Value::as_str).map(|j| html! { (j) })))
                        (dl_row("CI run", ci.and_then(|c| c.get("url").or_else(|| c.get("run_url"))).and_then(Value::as_str).map(|u| html! { code { (u) } })))
                    }
                }
            }
            @if let Some(c) = p.get("command") {
                section aria-labelledby="command" {
                    h2 #command { "Command" }
                    p { code.cmd {
                        (c.get("program").and_then(Value::as_str).unwrap_or("terraform"))
                        @for x in arr(c, "/args") { " " (x.as_str().unwrap_or("")) }
                    } }
                }
            }
            @if p.get("outcome").is_some() || p.get("exit_code").is_some() {
                section aria-labelledby="outcome" {
                    h2 #outcome { "Outcome" }
                    dl {
                        (dl_row("Outcome", s(p, "/outcome").map(|o| outcome_badge(Some(o)))))
                        (dl_row("Exit code", p.get("exit_code").filter(|x| !x.is_null()).map(|x| html! { (x.to_string()) })))
                        (dl_row("Signal", p.get("signal").filter(|x| !x.is_null()).map(|x| html! { (x.to_string()) })))
                    }
                }
            }
            @if l.intent.is_some() || l.outcome.is_some() || l.plan.is_some() || !l.applies.is_empty() || l.run_intent.is_some() {
                nav.links aria-label="Related records" {
                    h2 { "Related records" }
                    ul {
                        @if let Some(i) = l.plan { li { "Plan: " (link(i)) } }
                        @if let Some(i) = l.intent { li { "Intent: " (link(i)) } }
                        @if let Some(i) = l.outcome { li { "Outcome: " (link(i)) } }
                        @if let Some(i) = l.run_intent { li { "Run (intent): " (link(i)) } }
                        @for i in &l.applies { li { "Applied by: " (link(*i)) } }
                    }
                }
            }
            @if r.kind.starts_with("terraform.state.") && p.get("state").is_some() {
                section aria-labelledby="backend" {
                    h2 #backend { "State backend" }
                    dl {
                        (dl_row("State", text(s(p, "/state")).map(|m| html! { code { (m) } })))
                        (dl_row("Lock", p.get("lock").filter(|x| !x.is_null()).map(|x| html! { code { (serde_json::to_string(x).unwrap_or_default()) } })))
                        (dl_row("Run", match (l.run_intent, p.get("out_of_band").and_then(Value::as_bool)) {
                            (Some(i), _) => Some(html! { "within the recorded run " (link(i)) }),
                            (None, Some(true)) => Some(html! { span.badge.warn { "out of band" } " no recorded run (" code { "tftrail run" } ") made this change" }),
                            _ => None,
                        }))
                        (dl_row("Serial", p.pointer("/after/serial").and_then(Value::as_u64).map(|n| html! { (n) })))
                        (dl_row("Forced", p.get("forced").and_then(Value::as_bool).filter(|f| *f).map(|_| html! { span.badge.warn { "forced" } })))
                        (dl_row("Reason", text(s(p, "/reason"))))
                    }
                }
            }
            (changes(p))
            @if let Some(out) = output {
                section aria-labelledby="output" {
                    h2 #output { "Output" }
                    p.help { "Terraform's output as recorded, secrets scrubbed." }
                    pre.output tabindex="0" { (strip_ansi(&String::from_utf8_lossy(out))) }
                }
            }
            @if !r.blobs.is_empty() {
                section aria-labelledby="blobs" {
                    h2 #blobs { "Blobs" }
                    ul.plain {
                        @for b in &r.blobs {
                            li { a href={ "/records/" (n) "/blobs/" (b.sha256) } download=(b.name) { (b.name) } " (" (b.size) " bytes, SHA-256 " code { (&b.sha256[..b.sha256.len().min(12)]) } "…)" }
                        }
                    }
                }
            }
            details {
                summary { "The record as stored (JSON)" }
                pre.json tabindex="0" { (serde_json::to_string_pretty(r).unwrap_or_default()) }
            }
        },
    )
}

fn parse_index(n: &str) -> Result<u64, ApiError> {
    n.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("{n:?} is not a record index")))
}

/// `GET /records/{n}/receipt`: the receipt `tftrail prove` writes, as a download.
pub async fn receipt(
    State(st): State<Arc<AppState>>,
    v: Viewer,
    Path(n): Path<String>,
) -> Response {
    let n = match parse_index(&n) {
        Ok(n) => n,
        Err(e) => return failure(&v, e),
    };
    let got = st
        .blocking(move |st| {
            let head = st.log.head()?;
            crate::api::in_log(n, head.checkpoint.size)?;
            let r = st.log.prove(&head, n)?;
            // Never hand out a receipt that does not verify.
            r.verify(st.log.key(), None)
                .map_err(|e| ApiError::internal(format!("integrity failure: {e}")))?;
            Ok(r.encode())
        })
        .await;
    match got {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"tftrail-receipt-{n}.txt\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => failure(&v, e),
    }
}

/// `GET /records/{n}/blobs/{sha}`: a blob the record names (or a fragment of its payload
/// moved to a blob), its SHA-256 checked as it is read.
pub async fn blob(
    State(st): State<Arc<AppState>>,
    v: Viewer,
    Path((n, sha)): Path<(String, String)>,
) -> Response {
    let n = match parse_index(&n) {
        Ok(n) => n,
        Err(e) => return failure(&v, e),
    };
    let got = st
        .blocking(move |st| {
            let cp = st.log.head()?.checkpoint;
            let r = crate::api::read_one(&st.log, &cp, n, read_err)?;
            let named = r
                .blobs
                .iter()
                .find(|b| b.sha256 == sha)
                .map(|b| b.name.clone())
                .or_else(|| {
                    tftrail_index::MOVABLE.iter().find_map(|(ptr, name, _)| {
                        (r.payload
                            .pointer(&format!("{ptr}/in_blob/sha256"))
                            .and_then(Value::as_str)
                            == Some(sha.as_str()))
                        .then(|| name.to_string())
                    })
                });
            let Some(name) = named else {
                return Err(ApiError::not_found(format!(
                    "record {n} names no blob {sha}"
                )));
            };
            let data = st
                .log
                .blob(&sha)
                .map_err(|e| read_err(IndexError::Log(e)))?;
            Ok((name, data))
        })
        .await;
    match got {
        Ok((name, data)) => {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{safe}\""),
                    ),
                ],
                data,
            )
                .into_response()
        }
        Err(e) => failure(&v, e),
    }
}

#[derive(Deserialize, Default)]
pub struct AddressQuery {
    #[serde(default)]
    address: String,
}

/// `GET /resources?address=A` (a form when none is given).
pub async fn resource_query(
    st: State<Arc<AppState>>,
    v: Viewer,
    Query(q): Query<AddressQuery>,
) -> Response {
    match opt(&q.address) {
        Some(a) => resource_page(st, v, a).await,
        None => html_response(
            StatusCode::OK,
            layout(
                "Resources",
                Some(&v),
                html! {
                    h1 { "Resources" }
                    form.filters method="get" action="/resources" role="search" {
                        div.field {
                            label for="address" { "Resource address" }
                            input #address name="address" type="text" placeholder="aws_instance.web" required;
                        }
                        div.actions { button type="submit" { "Show history" } }
                    }
                },
            ),
        ),
    }
}

/// `GET /resources/{addr}`.
pub async fn resource(st: State<Arc<AppState>>, v: Viewer, Path(addr): Path<String>) -> Response {
    resource_page(st, v, addr).await
}

async fn resource_page(State(st): State<Arc<AppState>>, v: Viewer, addr: String) -> Response {
    let a = addr.clone();
    let got = st
        .blocking(move |st| {
            with_index(st, |ix, cp| {
                let changes =
                    tftrail_index::describe_history(ix, &st.log, cp, &a).map_err(read_err)?;
                let last = tftrail_index::last_applied(changes.clone());
                // The values of each last change, from its record (read authenticated).
                let idx: Vec<u64> = last.iter().filter_map(|c| c["index"].as_u64()).collect();
                let recs = tftrail_index::read_records(&st.log, cp, &idx).map_err(read_err)?;
                let mut values = Vec::new();
                let read = |i: u64| -> Result<Record, ApiError> {
                    let (_, mut r) = tftrail_index::read_records(&st.log, cp, &[i])
                        .map_err(read_err)?
                        .pop()
                        .ok_or_else(|| ApiError::internal(format!("record {i} is missing")))?;
                    tftrail_index::inflate(&st.log, &mut r.payload)
                        .map_err(|e| read_err(IndexError::Log(e)))?;
                    Ok(r)
                };
                for (c, (i, _)) in last.iter().zip(recs) {
                    let address = c["address"].as_str().unwrap_or("");
                    let r = read(i)?;
                    let mut vals = (values_of(&r.payload, address), None);
                    // An outcome without values: the plan it applied (through its intent).
                    let plan = r
                        .payload
                        .get("intent_index")
                        .and_then(Value::as_u64)
                        .filter(|&n| n < cp.size)
                        .map(read)
                        .transpose()?
                        .and_then(|intent| {
                            intent
                                .payload
                                .pointer("/plan/plan_index")
                                .and_then(Value::as_u64)
                        })
                        .filter(|&n| n < cp.size);
                    if let (true, Some(pi)) = (vals.0.is_empty(), plan) {
                        vals = (values_of(&read(pi)?.payload, address), Some(pi));
                    }
                    values.push(vals);
                }
                Ok((changes, last, values))
            })
        })
        .await;
    let (changes, last, values) = match got {
        Ok(c) => c,
        Err(e) => return failure(&v, e),
    };
    html_response(
        StatusCode::OK,
        layout(
            &format!("Resource {addr}"),
            Some(&v),
            html! {
                h1 { "Resource " code { (addr) } }
                p { a href=(filter_link(&TimelineQuery { resource: addr.clone(), ..Default::default() }, None, None)) { "Every record that plans or makes a change to it" } }
                @if changes.is_empty() {
                    p.empty { "No recorded change to this resource." }
                } @else {
                    section aria-labelledby="last" {
                        h2 #last { "Last change" }
                        @if last.is_empty() { p { "No applied change." } }
                        @for (c, (vals, planned)) in last.iter().zip(&values) {
                            (change_summary(c))
                            @if let (Some(pi), false) = (planned, vals.is_empty()) {
                                p.help { "The values as planned in " (link(*pi)) " (the outcome records the changed attributes only):" }
                            }
                            (attributes(vals))
                        }
                    }
                    section aria-labelledby="history" {
                        h2 #history { "History" }
                        table.records {
                            thead { tr {
                                th scope="col" { "#" }
                                th scope="col" { "Time (UTC)" }
                                th scope="col" { "Address" }
                                th scope="col" { "Action" }
                                th scope="col" { "Attributes" }
                                th scope="col" { "Actor" }
                                th scope="col" { "Outcome" }
                            } }
                            tbody {
                                @for c in changes.iter().rev() {
                                    tr {
                                        th scope="row" data-label="#" { (c["index"].as_u64().map(link).unwrap_or_default()) }
                                        td data-label="Time" { (time_el(c["time"].as_str().unwrap_or(""))) }
                                        td data-label="Address" { code { (c["address"].as_str().unwrap_or("")) } }
                                        td data-label="Action" {
                                            (c["action"].as_str().unwrap_or(""))
                                            @if c["applied"].as_bool() == Some(false) { " " span.badge.bad { "not applied" } }
                                        }
                                        td data-label="Attributes" { @for (i, p) in c["paths"].as_array().map(Vec::as_slice).unwrap_or(&[]).iter().enumerate() { @if i > 0 { ", " } code { (p.as_str().unwrap_or("")) } } }
                                        td data-label="Actor" { (actor_of_json(&c["actor"])) }
                                        td data-label="Outcome" { (outcome_badge(c["outcome"].as_str())) }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        ),
    )
}

/// The changed attributes of `address` in a record: its state diff's values, else its plan's.
fn values_of(p: &Value, address: &str) -> Vec<Value> {
    let of = |list: &[Value]| {
        list.iter()
            .find(|c| c.get("address").and_then(Value::as_str) == Some(address))
            .cloned()
    };
    if let Some(c) = of(arr(p, "/state_diff/values")) {
        return arr(&c, "/attributes").to_vec();
    }
    match of(arr(p, "/plan/summary/resource_changes")) {
        Some(c) if !arr(&c, "/attributes").is_empty() => arr(&c, "/attributes").to_vec(),
        Some(c) => planned_values(&c),
        None => vec![],
    }
}

fn actor_of_json(a: &Value) -> Markup {
    match serde_json::from_value::<tftrail_core::record::Actor>(a.clone()) {
        Ok(actor) => who(&Record {
            v: 1,
            kind: String::new(),
            time: String::new(),
            actor,
            payload: Value::Null,
            blobs: vec![],
        }),
        Err(_) => html! {},
    }
}

fn change_summary(c: &Value) -> Markup {
    html! {
        p {
            code { (c["address"].as_str().unwrap_or("")) } ": " (c["action"].as_str().unwrap_or(""))
            " in " (c["index"].as_u64().map(link).unwrap_or_default())
            " at " (time_el(c["time"].as_str().unwrap_or("")))
            " by " (actor_of_json(&c["actor"]))
        }
    }
}

/// The signature lines of a checkpoint note other than the log's own: cosignatures.
fn cosignatures(note: &str, log_key_name: &str) -> Vec<(String, String)> {
    use base64::Engine as _;
    let Some((_, sigs)) = note.split_once("\n\n") else {
        return vec![];
    };
    sigs.lines()
        .filter_map(|l| l.strip_prefix("\u{2014} "))
        .filter_map(|l| l.split_once(' '))
        .filter(|(name, _)| *name != log_key_name)
        .map(|(name, sig)| {
            let id = base64::engine::general_purpose::STANDARD
                .decode(sig)
                .ok()
                .filter(|b| b.len() >= 4)
                .map(|b| hex::encode(&b[..4]))
                .unwrap_or_else(|| "(unreadable)".into());
            (name.to_string(), id)
        })
        .collect()
}

/// A POSIX time as RFC 3339 UTC (seconds).
fn posix_utc(t: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(t).unwrap_or(i64::MAX))
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{t} (POSIX)"))
}

/// `GET /status`.
pub async fn status(State(st): State<Arc<AppState>>, v: Viewer) -> Response {
    // The checkpoint shown is checked against the last verified one first (cheap: a
    // consistency proof), so the page never shows an unverified growth as verified.
    let head = match st
        .blocking(|st| {
            super::verify::incremental(st);
            Ok(st.log.head()?)
        })
        .await
    {
        Ok(h) => h,
        Err(e) => return failure(&v, e),
    };
    let note = String::from_utf8_lossy(&head.note).into_owned();
    let cos = cosignatures(&note, st.log.key().name());
    // With `--witness-policy`, each cosignature is checked against the policy's keys (the
    // same check the appends' answers and `verify --witness-policy` make).
    let quorum = st
        .witnesses
        .as_ref()
        .map(|w| (w.policy().check(&head.note), w.policy().describe_quorum()));
    let checked = |name: &str, id: &str| -> Option<String> {
        let (report, _) = quorum.as_ref()?;
        let c = report
            .cosigned_by
            .iter()
            .find(|c| c.name == name && format!("{:08x}", c.key_id) == id)?;
        Some(posix_utc(c.time))
    };
    let (last, last_full) = st.ui.verifier.last();
    let running = st.ui.verifier.running();
    let csrf = v.session.as_ref().map(|s| s.csrf.clone());
    let cp = &head.checkpoint;
    let verification = |x: &super::verify::Verification| {
        html! {
            dl {
                dt { "Result" }
                dd { @if x.problems.is_empty() { span.badge.ok { "intact" } } @else { span.badge.bad { "problems found" } } }
                dt { "When" } dd { (time_el(&x.time)) }
                dt { "How" } dd { (x.how) }
                dt { "By" } dd { (x.by) }
                dt { "Tree size" } dd { (x.size) }
                dt { "Root" } dd { code { (x.root) } }
                dt { "Took" } dd { (format!("{:.1} s", x.took.as_secs_f64())) }
            }
            @if !x.problems.is_empty() {
                ul.problems role="alert" { @for p in &x.problems { li { (p) } } }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(
            "Status",
            Some(&v),
            html! {
                h1 { "Status" }
                section aria-labelledby="checkpoint" {
                    h2 #checkpoint { "Checkpoint" }
                    dl {
                        dt { "Origin" } dd { code { (cp.origin) } }
                        dt { "Log size" } dd #log-size { (cp.size) " records" }
                        dt { "Root hash" } dd { code { (tftrail_core::merkle::hash_b64(&cp.root)) } }
                        dt { "Log key" } dd { code.wrap { (st.log.key().as_str()) } }
                    }
                    details { summary { "The signed note" } pre.json tabindex="0" { (note) } }
                }
                section aria-labelledby="verified" {
                    h2 #verified { "Verification" }
                    p.help { "The server verifies its own log: in full when it starts, then every "
                        (super::verify::INCREMENTAL_EVERY.as_secs()) " s the new checkpoint against the last verified one (a consistency proof); an admin can ask for a full verification." }
                    @if running { p role="status" { "A full verification is running." } }
                    @match (&last, &last_full) {
                        (None, _) => { p { "Not verified yet." } }
                        (Some(l), Some(f)) if l.how != "full" => {
                            h3 { "Last verification" } (verification(l))
                            h3 { "Last full verification" } (verification(f))
                        }
                        (Some(l), _) => { h3 { "Last verification" } (verification(l)) }
                    }
                    @if v.is_admin() {
                        p { "Web UI sessions open: " (st.ui.sessions.len()) " (held in memory: a restart ends them)." }
                        @if let Some(c) = &csrf {
                            form method="post" action="/status/verify" {
                                input type="hidden" name="csrf" value=(c);
                                button type="submit" disabled[running] { "Verify the whole log now" }
                            }
                        }
                    }
                }
                section aria-labelledby="cosig" {
                    h2 #cosig { "Cosignatures" }
                    @if let Some((report, required)) = &quorum {
                        p #quorum {
                            "Witness policy: " (required) ". "
                            @if report.satisfied { span.badge.ok { "quorum met" } }
                            @else { span.badge.bad { "quorum not met" } " Missing: " (report.missing.join(", ")) }
                        }
                    } @else {
                        p.help { "The server runs without --witness-policy: cosignatures are listed as found, not verified here (verify them with tftrail verify --witness-policy)." }
                    }
                    @if cos.is_empty() {
                        p { "The checkpoint carries no signature besides the log's own." }
                    } @else {
                        table {
                            thead { tr { th scope="col" { "Key name" } th scope="col" { "Key ID" } th scope="col" { "Checked" } } }
                            tbody { @for (name, id) in &cos { tr {
                                td data-label="Key name" { code { (name) } }
                                td data-label="Key ID" { code { (id) } }
                                td data-label="Checked" {
                                    @if quorum.is_none() { "not checked" }
                                    @else if let Some(t) = checked(name, id) { span.badge.ok { "valid" } " cosigned at " (t) }
                                    @else { span.badge.bad { "not a valid cosignature by a witness of the policy" } }
                                }
                            } } }
                        }
                    }
                }
            },
        ),
    )
}

/// `POST /status/verify` (an admin's session): a full verification in the background.
pub async fn verify_now(State(st): State<Arc<AppState>>, v: Viewer, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let peer = crate::state::peer_of(&parts);
    let bytes = crate::api::read_body(body, 16 * 1024, "form")
        .await
        .unwrap_or_default();
    let sent = super::form_csrf(&bytes);
    let expected = v.session.as_ref().map(|s| s.csrf.as_str());
    if let Err(why) = super::check_post(&parts.headers, super::secure(&st), expected, &sent) {
        return super::csrf_refusal(&st, (&parts.method, parts.uri.path(), peer), why);
    }
    let Some(p) = v.who.as_ref().filter(|_| v.is_admin()) else {
        let e = match v.who.as_ref() {
            Some(p) => st.forbid(
                peer,
                &parts.method,
                parts.uri.path(),
                p,
                "verify the log on demand",
            ),
            None => ApiError::new(
                StatusCode::FORBIDDEN,
                "only an admin may ask for a verification",
            ),
        };
        return error_page(Some(&v), StatusCode::FORBIDDEN, "Refused", &e.message);
    };
    let by = format!("admin {} (on demand)", p.label);
    let st2 = st.clone();
    tokio::task::spawn_blocking(move || super::verify::full(&st2, &by));
    super::redirect("/status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosignatures_are_the_other_signature_lines() {
        let note = "log.example/a\n3\nROOT=\n\n\u{2014} log.example/a AAAAAAAA\n\u{2014} witness.example/w 3q2+7wAAAA==\n\u{2014} bad-sig !!\n";
        assert_eq!(
            cosignatures(note, "log.example/a"),
            [
                ("witness.example/w".to_string(), "deadbeef".to_string()),
                ("bad-sig".to_string(), "(unreadable)".to_string())
            ]
        );
        assert!(cosignatures("no signatures", "x").is_empty());
    }

    #[test]
    fn planned_values_come_from_the_redacted_objects() {
        let c = serde_json::json!({
            "changed_paths": ["input", "tags.Name", "list[1]", "output"],
            "before": {"input": "small", "tags": {"Name": "a"}, "list": [1, 2], "output": "small"},
            "after": {"input": "(sensitive value)", "tags": {"Name": "b"}, "list": [1, 3]},
        });
        let v = planned_values(&c);
        let after: Vec<Value> = v.iter().map(|a| a["after"].clone()).collect();
        assert_eq!(
            after,
            [
                serde_json::json!("(sensitive value)"),
                serde_json::json!("b"),
                serde_json::json!(3),
                serde_json::json!(KNOWN_AFTER_APPLY)
            ]
        );
        assert_eq!(v[1]["before"], "a");
        assert_eq!(strip_ansi("\u{1b}[1mbold\u{1b}[0m x"), "bold x");
        assert_eq!(
            counts(
                &serde_json::json!({"state_diff": {"added": ["a"], "changed": [], "removed": ["b", "c"]}})
            ),
            "+1 ~0 -2"
        );
    }
}
