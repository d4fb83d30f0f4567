//! Rules over records built in the shapes `tftrail run` (crates/tftrail-terraform/src/capture.rs)
//! and the team server (tfstate/http.rs, denied.rs) write, with their changes extracted by
//! `tftrail_index::extract` as the round does.

use std::collections::HashMap;

use serde_json::{json, Value};
use tftrail_core::record::{Actor, Record};
use tftrail_index::ChangeRow;

use super::*;
use crate::MonitorConfig;

/// Wednesday 2 December 2026, 10:00 UTC.
const WED_10: &str = "2026-12-02T10:00:00Z";
const DIR: &str = "infra/prod";

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_796_292_000).unwrap() // 2026-12-02T11:20Z
}

fn user(name: &str) -> Actor {
    Actor {
        authenticated: None,
        user: name.into(),
        host: "ci-7".into(),
        ci: None,
    }
}

fn token(name: &str) -> Actor {
    Actor {
        authenticated: Some(
            json!({"by": "token", "name": name, "role": "writer", "token": "0123456789abcdef"}),
        ),
        ..user("runner")
    }
}

fn server() -> Actor {
    Actor {
        authenticated: Some(json!({"by": "server"})),
        ..user("tftrail")
    }
}

fn context(state_address: Option<&str>) -> Value {
    let mut c = json!({
        "dir": DIR,
        "git": {"commit": "0123abc", "branch": "main", "dirty": false},
        "workspace": "default",
        "backend": if state_address.is_some() { "http" } else { "local" },
        "actor": {"user": "alice", "host": "ci-7"},
    });
    if let Some(a) = state_address {
        c["state_address"] = json!(a);
    }
    c
}

fn fingerprint(sha: &str, serial: u64, resources: u64) -> Value {
    json!({"present": true, "lineage": "5a1c", "serial": serial, "sha256": format!("{sha}{}", "0".repeat(64 - sha.len())),
        "content_sha256": format!("{sha}{}", "c".repeat(64 - sha.len())), "size": 812, "terraform_version": "1.9.8",
        "resources": resources, "outputs": 0, "source": "file:terraform.tfstate"})
}

fn absent() -> Value {
    json!({"present": false, "source": "file:terraform.tfstate"})
}

fn diff(added: &[&str], removed: &[&str], changed: &[(&str, &[&str])]) -> Value {
    json!({
        "added": added,
        "removed": removed,
        "changed": changed.iter().map(|(a, p)| json!({"address": a, "paths": p})).collect::<Vec<_>>(),
        "outputs_changed": [],
        "lineage_changed": false,
        "serial": [1, 2],
    })
}

fn tool() -> Value {
    json!({"name": "terraform", "version": "1.9.8", "platform": "linux_amd64", "version_error": null})
}

fn command(op: &str) -> Value {
    json!({"tool": "terraform", "subcommand": [op], "operation": op, "args": [op, "-auto-approve"], "tf_var_names": []})
}

/// The log being built: records and the planned changes of intents (for `extract`).
#[derive(Default)]
struct Log {
    records: Vec<Record>,
}

impl Log {
    fn push(&mut self, kind: &str, time: &str, actor: Actor, payload: Value) -> u64 {
        self.records
            .push(Record::new(kind, time, actor, payload, vec![]).unwrap());
        self.records.len() as u64 - 1
    }

    /// `terraform plan -out=tfplan` as recorded.
    fn plan(&mut self, time: &str, actor: Actor, changes: &[(&str, &str)]) -> u64 {
        let rc: Vec<Value> = changes
            .iter()
            .map(|(a, act)| json!({"address": a, "action": act, "changed_paths": []}))
            .collect();
        self.push(
            "terraform.plan",
            time,
            actor,
            json!({"tool": tool(), "command": command("plan"), "context": context(None),
                "plan_mode": "normal", "outcome": "success", "exit_code": 0, "signal": null,
                "started_at": time, "ended_at": time, "duration_ms": 900,
                "plan": {"saved": true, "temporary": false, "path": "tfplan", "sha256": "ab".repeat(32), "size": 4096,
                    "summary": {"resource_changes": rc, "counts": {}}},
                "output": {"blob": "output.txt", "sha256": "cd".repeat(32), "size": 10, "truncated": false}}),
        )
    }

    /// A `*.intent` record; `plan` its `plan` fragment.
    #[allow(clippy::too_many_arguments)]
    fn intent(
        &mut self,
        op: &str,
        time: &str,
        actor: Actor,
        plan: Value,
        state_before: Value,
        addr: Option<&str>,
    ) -> u64 {
        let mut p = json!({"tool": tool(), "command": command(op), "context": context(addr),
            "state_before": state_before, "started_at": time});
        if !plan.is_null() {
            p["plan"] = plan;
        }
        self.push(&format!("terraform.{op}.intent"), time, actor, p)
    }

    #[allow(clippy::too_many_arguments)]
    fn outcome(
        &mut self,
        op: &str,
        time: &str,
        actor: Actor,
        intent: Option<u64>,
        outcome: &str,
        before: Value,
        after: Value,
        d: Value,
        addr: Option<&str>,
    ) -> u64 {
        let exit = if outcome == "success" { 0 } else { 1 };
        let mut p = json!({"tool": tool(), "command": command(op), "context": context(addr),
            "intent_index": intent, "started_at": time, "ended_at": time, "duration_ms": 4100,
            "exit_code": exit, "signal": if outcome == "interrupted" { json!(2) } else { Value::Null }, "outcome": outcome,
            "state_before": before, "state_after": after, "state_diff": d,
            "output": {"blob": "output.txt", "sha256": "cd".repeat(32), "size": 10, "truncated": false}});
        if intent.is_none() {
            p["fail_open"] = json!({"intent_stored": false, "note": "…"});
        }
        self.push(&format!("terraform.{op}.outcome"), time, actor, p)
    }

    /// A `terraform.state.write` by the server's state backend.
    #[allow(clippy::too_many_arguments)]
    fn state_write(
        &mut self,
        time: &str,
        actor: Actor,
        name: &str,
        run: Option<u64>,
        before: Value,
        after: Value,
        d: Value,
    ) -> u64 {
        let run = run.map(|i| json!({"intent_index": i, "matched_by": "lock"}));
        self.push(
            "terraform.state.write",
            time,
            actor,
            json!({"state": name,
                "lock": {"id": "3f2c", "operation": "OperationTypeApply", "info": "", "who": "alice@ci-7", "version": "1.9.8", "created": time, "path": ""},
                "before": before, "after": after, "state_diff": d, "forced": false,
                "out_of_band": run.is_none(), "run": run}),
        )
    }

    fn denied(&mut self, time: &str, count: u64, source: &str) -> u64 {
        let p = if count == 1 {
            json!({"source": source, "method": "POST", "path": "/v1/records", "status": 401,
                "reason": "unknown token", "credential": "token 0badc0de", "count": 1})
        } else {
            json!({"source": source, "coalesced": true, "since": time, "count": count,
                "reasons": {"unknown token": count}, "path": "/v1/records", "credential": null})
        };
        self.push("server.access.denied", time, server(), p)
    }

    /// The changes of every record, as the round extracts them.
    fn changes(&self) -> Vec<Vec<ChangeRow>> {
        let mut planned: HashMap<u64, Vec<(String, String)>> = HashMap::new();
        let mut out = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            let (_, rows) = tftrail_index::extract(i as u64, r, &|n| {
                planned.get(&n).cloned().unwrap_or_default()
            });
            if r.kind.ends_with(".intent") {
                planned.insert(
                    i as u64,
                    rows.iter()
                        .map(|c| (c.address.clone(), c.action.clone()))
                        .collect(),
                );
            }
            out.push(rows);
        }
        out
    }

    /// Runs the rules over records `from..` with `memory`.
    fn eval_from(&self, cfg: &RulesConfig, from: usize, memory: &mut RuleMemory) -> Vec<Alert> {
        let changes = self.changes();
        let events: Vec<Event> = self
            .records
            .iter()
            .zip(&changes)
            .enumerate()
            .skip(from)
            .map(|(i, (r, c))| Event {
                index: i as u64,
                record: r,
                changes: c,
            })
            .collect();
        cfg.evaluate(&events, memory, now())
    }

    fn eval(&self, cfg: &RulesConfig) -> Vec<Alert> {
        self.eval_from(cfg, 0, &mut RuleMemory::default())
    }
}

fn rules(toml_text: &str) -> RulesConfig {
    match MonitorConfig::parse(toml_text) {
        Ok(c) => c.rules,
        Err(e) => panic!("{toml_text}: {e}"),
    }
}

/// Every rule on, with settings the clean runs below keep to.
fn strict() -> RulesConfig {
    rules(
        r#"
[rules.destroy]
resources = ["aws_s3_bucket.*", "*.prod_*"]
[rules.change_window]
enabled = true
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "09:00-18:00"
timezone = "Europe/Berlin"
[rules.actors]
allowed = ["token:ci", "alice"]
[rules.denied]
max_per_hour = 20
"#,
    )
}

fn recorded_plan(index: u64) -> Value {
    json!({"saved": true, "path": "tfplan", "sha256": "ab".repeat(32), "size": 4096,
        "plan_index": index, "recorded": true})
}

/// An intent's plan fragment for a recorded plan, with the summary the plan record held.
fn recorded_plan_with(index: u64, changes: &[(&str, &str)]) -> Value {
    let mut p = recorded_plan(index);
    p["summary"] = json!({"resource_changes": changes
        .iter()
        .map(|(a, act)| json!({"address": a, "action": act, "changed_paths": []}))
        .collect::<Vec<_>>(), "counts": {}});
    p
}

fn unsaved_plan() -> Value {
    json!({"saved": false, "reviewed": false, "auto_approve": true,
        "note": "no saved plan: Terraform plans again at apply time, so what is applied was not reviewed from a recorded plan"})
}

/// A clean day: a reviewed plan applied by alice on a local backend, then a run through the
/// server's state backend (intent, lock, linked write, unlock, outcome) by token:ci, then a
/// second run finding the state the first left.
fn clean_log() -> Log {
    let mut l = Log::default();
    let p = l.plan(WED_10, user("alice"), &[("aws_instance.web", "create")]);
    let i = l.intent(
        "apply",
        WED_10,
        user("alice"),
        recorded_plan(p),
        absent(),
        None,
    );
    l.outcome(
        "apply",
        "2026-12-02T10:01:00Z",
        user("alice"),
        Some(i),
        "success",
        absent(),
        fingerprint("a1", 1, 1),
        diff(&["aws_instance.web"], &[], &[]),
        None,
    );
    let p = l.plan(
        "2026-12-02T10:05:00Z",
        user("alice"),
        &[("aws_instance.web", "update")],
    );
    let i = l.intent(
        "apply",
        "2026-12-02T10:06:00Z",
        user("alice"),
        recorded_plan(p),
        fingerprint("a1", 1, 1),
        None,
    );
    l.outcome(
        "apply",
        "2026-12-02T10:07:00Z",
        user("alice"),
        Some(i),
        "success",
        fingerprint("a1", 1, 1),
        fingerprint("a2", 2, 1),
        diff(&[], &[], &[("aws_instance.web", &["tags.Name"])]),
        None,
    );
    // Through the server's state backend.
    let addr = Some("http://tftrail.internal:8443/state/team/prod");
    let p = l.plan(
        "2026-12-02T11:00:00Z",
        token("ci"),
        &[("aws_sqs_queue.jobs", "create")],
    );
    let i = l.intent(
        "apply",
        "2026-12-02T11:00:10Z",
        token("ci"),
        recorded_plan(p),
        absent(),
        addr,
    );
    l.push(
        "terraform.state.lock",
        "2026-12-02T11:00:11Z",
        token("ci"),
        json!({"state": "team/prod", "lock": {"id": "3f2c", "who": "runner@ci-7"}, "run": {"intent_index": i}}),
    );
    l.state_write(
        "2026-12-02T11:00:40Z",
        token("ci"),
        "team/prod",
        Some(i),
        json!({"present": false}),
        fingerprint("b1", 1, 1),
        diff(&["aws_sqs_queue.jobs"], &[], &[]),
    );
    l.push(
        "terraform.state.unlock",
        "2026-12-02T11:00:41Z",
        token("ci"),
        json!({"state": "team/prod", "lock": {"id": "3f2c"}, "lock_index": i + 1}),
    );
    l.outcome(
        "apply",
        "2026-12-02T11:00:42Z",
        token("ci"),
        Some(i),
        "success",
        absent(),
        fingerprint("b1", 1, 1),
        diff(&["aws_sqs_queue.jobs"], &[], &[]),
        addr,
    );
    // The next run finds what the last one left (read by `state pull`: other bytes, same
    // content).
    let mut pulled = fingerprint("b1", 1, 1);
    pulled["sha256"] = json!("ee".repeat(32));
    let p = l.plan("2026-12-02T11:10:00Z", token("ci"), &[]);
    let i = l.intent(
        "apply",
        "2026-12-02T11:10:10Z",
        token("ci"),
        recorded_plan(p),
        pulled.clone(),
        addr,
    );
    l.outcome(
        "apply",
        "2026-12-02T11:10:20Z",
        token("ci"),
        Some(i),
        "success",
        pulled.clone(),
        pulled,
        diff(&[], &[], &[]),
        addr,
    );
    // A few refusals: under the rate.
    l.denied("2026-12-02T11:11:00Z", 1, "10.0.0.9");
    l.denied("2026-12-02T11:12:00Z", 5, "10.0.0.9");
    l
}

fn names(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.rule.as_str()).collect()
}

#[test]
fn every_rule_is_silent_on_a_clean_log() {
    let l = clean_log();
    let alerts = l.eval(&strict());
    assert!(alerts.is_empty(), "{alerts:#?}");
    // And with the defaults.
    assert!(l.eval(&RulesConfig::default()).is_empty());
}

#[test]
fn the_example_config_parses_and_holds_the_defaults() {
    let text = format!("{EXAMPLE}\n");
    let c = rules(&text);
    let d = RulesConfig::default();
    assert!(c.integrity.enabled && c.integrity.stale_after.is_none());
    assert_eq!(c.destroy.max_deletes, d.destroy.max_deletes);
    assert!(c.destroy.resources.is_empty());
    assert!(!c.change_window.enabled && !d.change_window.enabled);
    assert_eq!(
        c.change_window.window.describe(),
        d.change_window.window.describe()
    );
    assert_eq!(c.denied.max_per_hour, 20);
    assert_eq!(c.failed_apply.operations, d.failed_apply.operations);
    assert_eq!(c.unreviewed_apply.operations, d.unreviewed_apply.operations);
    assert!(d.actors.enabled && d.out_of_band.enabled && d.unreviewed_apply.enabled);
    // The commented alternatives parse too.
    let uncommented = EXAMPLE
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(s)
                if s.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) =>
            {
                s
            }
            _ => l,
        })
        .filter(|l| !l.starts_with("resources = []") && !l.starts_with("allowed = []"))
        .collect::<Vec<_>>()
        .join("\n");
    let c = rules(&uncommented);
    assert_eq!(c.integrity.stale_after, Some(Duration::from_secs(86_400)));
    assert!(c.integrity.runs_expected.is_some());
    assert_eq!(c.destroy.resources.len(), 2);
    assert_eq!(c.actors.allowed.len(), 3);
}

#[test]
fn the_issues_config_shape_is_accepted() {
    let c = rules("[rules.destroy]\nresources = [\"aws_s3_bucket.*\", \"*.prod_*\"]\n");
    assert_eq!(
        c.destroy
            .resources
            .iter()
            .map(Pattern::as_str)
            .collect::<Vec<_>>(),
        ["aws_s3_bucket.*", "*.prod_*"]
    );
    assert_eq!(c.destroy.max_deletes, 10);
}

#[test]
fn bad_settings_are_refused_with_the_problem_named() {
    for (text, want) in [
        (
            "[rules.change_window]\ntimezone = \"Mars/Olympus\"",
            "unknown time zone \"Mars/Olympus\"",
        ),
        (
            "[rules.change_window]\nhours = \"9-18\"",
            "hours \"9-18\" is not a range",
        ),
        (
            "[rules.change_window]\nhours = \"09:00-25:00\"",
            "is not a range",
        ),
        (
            "[rules.change_window]\nhours = \"09:00-09:00\"",
            "is not a range",
        ),
        (
            "[rules.change_window]\ndays = [\"mo\"]",
            "unknown day \"mo\"",
        ),
        ("[rules.change_window]\ndays = []", "days is empty"),
        (
            "[rules.integrity]\nstale_after = \"2 hours\"",
            "invalid duration \"2 hours\"",
        ),
        ("[rules.integrity]\nstale_after = \"0s\"", "more than zero"),
        (
            "[rules.integrity]\nruns_expected = { hours = \"x\" }",
            "hours \"x\"",
        ),
        ("[rules.destroy]\nresources = [\"\"]", "empty pattern"),
        (
            "[rules.destroy]\nmax_delete = 3",
            "unknown field `max_delete`",
        ),
        ("[rules.nope]\nenabled = true", "unknown field `nope`"),
        (
            "[rules.failed_apply]\noperations = [\"aply\"]",
            "unknown operation \"aply\"",
        ),
        (
            "[rules.change_window]\nenabled = true\nwindow = 1",
            "unknown field `window`",
        ),
    ] {
        let err = MonitorConfig::parse(text).map(|_| ()).unwrap_err();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn durations() {
    for (s, secs) in [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86_400)] {
        assert_eq!(parse_duration(s).unwrap(), Duration::from_secs(secs));
    }
    for s in ["", "h", "1", "1w", "-1h", "1.5h", "99999999999999999999d"] {
        assert!(parse_duration(s).is_err(), "{s}");
    }
}

#[test]
fn patterns_match_the_whole_address() {
    let p = |s: &str| Pattern::try_from(s.to_string()).unwrap();
    assert!(p("aws_s3_bucket.*").matches("aws_s3_bucket.logs"));
    assert!(p("aws_s3_bucket.*").matches("aws_s3_bucket.logs[\"eu\"]"));
    assert!(!p("aws_s3_bucket.*").matches("module.x.aws_s3_bucket.logs"));
    assert!(p("*aws_s3_bucket.*").matches("module.x.aws_s3_bucket.logs"));
    assert!(p("*.prod_*").matches("aws_db_instance.prod_main"));
    assert!(p("*.prod_*").matches("module.a.aws_db_instance.prod_"));
    assert!(!p("*.prod_*").matches("aws_db_instance.staging_main"));
    assert!(p("a*b*c").matches("abc") && p("a*b*c").matches("axxbyyc"));
    assert!(!p("a*b*c").matches("acb") && !p("a*a").matches("a"));
    assert!(p("exact").matches("exact") && !p("exact").matches("exact2"));
    assert!(p("*").matches("") && p("**").matches("x"));
    assert!(p("oidc:repo:acme/*").matches("oidc:repo:acme/infra:ref:refs/heads/main"));
}

fn at(t: &str) -> i128 {
    time_ns(t).unwrap()
}

#[test]
fn windows_use_the_time_zone_and_its_daylight_saving() {
    let w = rules("[rules.change_window]\nenabled = true\ntimezone = \"Europe/Berlin\"")
        .change_window
        .window;
    // Winter: UTC+1.
    assert!(!w.contains(at("2026-12-02T07:59:59Z"))); // 08:59 Berlin
    assert!(w.contains(at("2026-12-02T08:00:00Z")));
    assert!(w.contains(at("2026-12-02T16:59:59Z")));
    assert!(!w.contains(at("2026-12-02T17:00:00Z"))); // 18:00 Berlin
                                                      // Summer: UTC+2.
    assert!(w.contains(at("2026-07-01T07:30:00Z")));
    assert!(!w.contains(at("2026-07-01T06:30:00Z")));
    // Saturday.
    assert!(!w.contains(at("2026-12-05T10:00:00Z")));
    assert_eq!(
        w.local(at("2026-12-05T22:30:00Z")),
        "sat 2026-12-05 23:30 Europe/Berlin"
    );
    // A night shift on Fridays spans midnight into Saturday.
    let night = rules(
        "[rules.change_window]\nenabled = true\ndays = [\"friday\"]\nhours = \"22:00-06:00\"",
    )
    .change_window
    .window;
    assert!(night.contains(at("2026-12-04T23:00:00Z"))); // Fri 23:00
    assert!(night.contains(at("2026-12-05T05:59:00Z"))); // Sat 05:59
    assert!(!night.contains(at("2026-12-05T06:00:00Z")));
    assert!(!night.contains(at("2026-12-05T23:00:00Z"))); // Sat evening
    assert!(!night.contains(at("2026-12-04T05:00:00Z"))); // Fri early: Thursday's night
                                                          // Until midnight.
    let late = rules("[rules.change_window]\nhours = \"18:00-24:00\"")
        .change_window
        .window;
    assert!(
        late.contains(at("2026-12-02T23:59:00Z")) && !late.contains(at("2026-12-03T00:00:00Z"))
    );
}

#[test]
fn integrity_staleness_only_when_set_and_runs_are_expected() {
    let t = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let off = RulesConfig::default();
    assert!(!off
        .integrity()
        .is_stale(t("2026-01-01T00:00:00Z"), t("2026-12-01T00:00:00Z")));
    let on = rules("[rules.integrity]\nstale_after = \"2h\"");
    let i = on.integrity();
    assert!(i.enabled && i.stale_after == Some(Duration::from_secs(7200)));
    assert!(!i.is_stale(t("2026-12-02T08:00:00Z"), t("2026-12-02T10:00:00Z")));
    assert!(i.is_stale(t("2026-12-02T08:00:00Z"), t("2026-12-02T10:00:01Z")));
    // A clock behind the checkpoint is not staleness.
    assert!(!i.is_stale(t("2026-12-02T10:00:00Z"), t("2026-12-02T08:00:00Z")));
    let office = rules(
        "[rules.integrity]\nstale_after = \"2h\"\nruns_expected = { days = [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"], hours = \"09:00-18:00\" }",
    );
    let i = office.integrity();
    assert!(i.is_stale(t("2026-12-02T08:00:00Z"), t("2026-12-02T12:00:00Z")));
    // Saturday: nobody runs anything.
    assert!(!i.is_stale(t("2026-12-04T08:00:00Z"), t("2026-12-05T12:00:00Z")));
    assert!(!i.runs_expected_at(t("2026-12-05T12:00:00Z")));
    let disabled = rules("[rules.integrity]\nenabled = false\nstale_after = \"2h\"");
    assert!(!disabled
        .integrity()
        .is_stale(t("2026-12-02T08:00:00Z"), t("2026-12-02T12:00:00Z")));
}

#[test]
fn out_of_band_state_write() {
    let mut l = clean_log();
    let w = l.state_write(
        "2026-12-02T12:00:00Z",
        token("ci"),
        "team/prod",
        None,
        fingerprint("b1", 1, 1),
        fingerprint("b2", 2, 2),
        diff(&["aws_iam_user.extra"], &[], &[]),
    );
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["out_of_band"], "{a:#?}");
    assert_eq!(a[0].records, [w]);
    assert_eq!(a[0].key, format!("out_of_band:{w}"));
    assert!(
        a[0].summary
            .contains("state team/prod written outside a recorded run by token:ci")
            && a[0].summary.contains("create aws_iam_user.extra"),
        "{}",
        a[0].summary
    );
    assert_eq!(a[0].details["state"], "team/prod");
    // The next run finds that state: no second alert (it is the last one recorded).
    let addr = Some("http://tftrail.internal:8443/state/team/prod");
    l.intent(
        "apply",
        "2026-12-02T12:10:00Z",
        token("ci"),
        recorded_plan(0),
        fingerprint("b2", 2, 2),
        addr,
    );
    assert_eq!(names(&l.eval(&strict())), ["out_of_band"]);
    // Off: silent.
    assert!(l
        .eval(&rules("[rules.out_of_band]\nenabled = false"))
        .is_empty());
}

#[test]
fn out_of_band_state_found_changed_by_a_run() {
    let mut l = clean_log();
    // Someone edited the local state file between runs (a2 was left by record 5).
    let i = l.intent(
        "apply",
        "2026-12-02T12:00:00Z",
        user("alice"),
        recorded_plan(3),
        fingerprint("f9", 3, 1),
        None,
    );
    l.outcome(
        "apply",
        "2026-12-02T12:01:00Z",
        user("alice"),
        Some(i),
        "success",
        fingerprint("f9", 3, 1),
        fingerprint("f9", 3, 1),
        diff(&[], &[], &[]),
        None,
    );
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["out_of_band"], "{a:#?}");
    assert_eq!(a[0].records, [5, i]);
    assert!(
        a[0].summary.contains("found serial 3") && a[0].summary.contains("record 5 left serial 2"),
        "{}",
        a[0].summary
    );
    // A state deleted behind a run's back.
    let mut l = clean_log();
    let i = l.intent(
        "apply",
        "2026-12-02T12:00:00Z",
        user("alice"),
        recorded_plan(3),
        absent(),
        None,
    );
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["out_of_band"]);
    assert!(a[0].summary.contains("found no state"), "{}", a[0].summary);
    assert_eq!(a[0].key, format!("out_of_band:{i}"));
    // A state that could not be read compares with nothing.
    let mut l = clean_log();
    l.intent(
        "apply",
        "2026-12-02T12:00:00Z",
        user("alice"),
        recorded_plan(3),
        json!({"present": null, "source": "state pull", "error": "exit 1"}),
        None,
    );
    assert!(l.eval(&strict()).is_empty());
}

#[test]
fn unreviewed_apply() {
    let mut l = clean_log();
    let i = l.intent(
        "apply",
        "2026-12-02T12:00:00Z",
        user("alice"),
        unsaved_plan(),
        fingerprint("a2", 2, 1),
        None,
    );
    let o = l.outcome(
        "apply",
        "2026-12-02T12:01:00Z",
        user("alice"),
        Some(i),
        "success",
        fingerprint("a2", 2, 1),
        fingerprint("a3", 3, 1),
        diff(&[], &[], &[("aws_instance.web", &["ami"])]),
        None,
    );
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["unreviewed_apply"], "{a:#?}");
    assert_eq!(a[0].records, [i]);
    assert_eq!(a[0].key, format!("unreviewed_apply:run:{i}"));
    assert!(
        a[0].summary.contains("by alice@ci-7") && a[0].summary.contains("applied no saved plan"),
        "{}",
        a[0].summary
    );
    let _ = o;
    // A saved plan tftrail did not record, and one whose lookup failed.
    for (recorded, want) in [
        (json!(false), "did not record"),
        (Value::Null, "could not be looked up"),
    ] {
        let mut l = clean_log();
        l.intent(
            "apply",
            "2026-12-02T12:00:00Z",
            user("alice"),
            json!({"saved": true, "path": "other.tfplan", "sha256": "77".repeat(32), "plan_index": null, "recorded": recorded}),
            fingerprint("a2", 2, 1),
            None,
        );
        let a = l.eval(&strict());
        assert_eq!(names(&a), ["unreviewed_apply"]);
        assert!(a[0].summary.contains(want), "{}", a[0].summary);
    }
    // A destroy without a saved plan is not an apply (unless asked for).
    let mut l = clean_log();
    l.intent(
        "destroy",
        "2026-12-02T12:00:00Z",
        user("alice"),
        unsaved_plan(),
        fingerprint("a2", 2, 1),
        None,
    );
    assert!(l.eval(&strict()).is_empty());
    let c = rules("[rules.unreviewed_apply]\noperations = [\"apply\", \"destroy\"]");
    assert_eq!(names(&l.eval(&c)), ["unreviewed_apply"]);
    // An outcome whose intent was not stored (--fail-open).
    let mut l = clean_log();
    l.outcome(
        "apply",
        "2026-12-02T12:01:00Z",
        user("alice"),
        None,
        "success",
        fingerprint("a2", 2, 1),
        fingerprint("a2", 2, 1),
        diff(&[], &[], &[]),
        None,
    );
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["unreviewed_apply"]);
    assert!(a[0].summary.contains("--fail-open"), "{}", a[0].summary);
}

#[test]
fn destroy_of_watched_resources() {
    let mut l = clean_log();
    let p = l.plan(
        "2026-12-02T12:00:00Z",
        user("alice"),
        &[
            ("aws_s3_bucket.logs", "delete"),
            ("aws_instance.web", "delete"),
            ("aws_db_instance.prod_main", "replace"),
        ],
    );
    let i = l.intent(
        "apply",
        "2026-12-02T12:01:00Z",
        user("alice"),
        recorded_plan(p),
        fingerprint("a2", 2, 3),
        None,
    );
    let o = l.outcome(
        "apply",
        "2026-12-02T12:02:00Z",
        user("alice"),
        Some(i),
        "success",
        fingerprint("a2", 2, 3),
        fingerprint("a3", 3, 1),
        diff(
            &[],
            &["aws_s3_bucket.logs", "aws_instance.web"],
            &[("aws_db_instance.prod_main", &["id", "engine_version"])],
        ),
        None,
    );
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["destroy"], "{a:#?}");
    assert_eq!(a[0].records, [o]);
    assert_eq!(a[0].severity, Severity::Critical);
    assert!(
        a[0].summary
            .contains("2 watched resources deleted in infra/prod by alice@ci-7")
            && a[0]
                .summary
                .contains("aws_db_instance.prod_main (replaced), aws_s3_bucket.logs"),
        "{}",
        a[0].summary
    );
    assert!(!a[0].summary.contains("aws_instance.web"));
    assert_eq!(a[0].details["deletes"], 3);
    assert!(
        a[0].why.contains("aws_s3_bucket.*, *.prod_*"),
        "{}",
        a[0].why
    );
    // The plan alone deletes nothing: no alert until the outcome.
    let mut plan_only = clean_log();
    plan_only.plan(
        "2026-12-02T12:00:00Z",
        user("alice"),
        &[("aws_s3_bucket.logs", "delete")],
    );
    assert!(plan_only.eval(&strict()).is_empty());
    // Default settings: every delete is watched.
    let a = l.eval(&RulesConfig::default());
    assert_eq!(names(&a), ["destroy"]);
    assert_eq!(a[0].severity, Severity::Warning);
    assert!(
        a[0].summary.contains("3 watched resources"),
        "{}",
        a[0].summary
    );
}

#[test]
fn destroy_too_many_in_one_record_and_once_per_run() {
    let mut l = clean_log();
    let addr = Some("http://tftrail.internal:8443/state/team/prod");
    let i = l.intent(
        "destroy",
        "2026-12-02T12:00:00Z",
        token("ci"),
        json!(null),
        fingerprint("b1", 1, 1),
        addr,
    );
    let many: Vec<String> = (0..12).map(|n| format!("aws_sqs_queue.q{n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let w = l.state_write(
        "2026-12-02T12:00:30Z",
        token("ci"),
        "team/prod",
        Some(i),
        fingerprint("b1", 1, 13),
        fingerprint("b3", 3, 0),
        diff(&[], &many, &[]),
    );
    l.outcome(
        "destroy",
        "2026-12-02T12:00:40Z",
        token("ci"),
        Some(i),
        "success",
        fingerprint("b1", 1, 13),
        fingerprint("b3", 3, 0),
        diff(&[], &many, &[]),
        addr,
    );
    let c = rules("[rules.destroy]\nresources = [\"aws_s3_bucket.*\"]\nmax_deletes = 10\n[rules.unreviewed_apply]\nenabled = false");
    let a = l.eval(&c);
    // The run's state write and its outcome show the same 12 deletes: one alert.
    assert_eq!(names(&a), ["destroy"], "{a:#?}");
    assert_eq!(a[0].records, [w]);
    assert!(
        a[0].why.contains("more than 10 deletes in one record"),
        "{}",
        a[0].why
    );
    assert!(
        a[0].summary
            .contains("12 resources deleted in state team/prod by token:ci"),
        "{}",
        a[0].summary
    );
    // At the limit: silent.
    let c = rules("[rules.destroy]\nresources = [\"aws_s3_bucket.*\"]\nmax_deletes = 12");
    assert!(l.eval(&c).is_empty());
}

#[test]
fn failed_and_interrupted_applies() {
    for (outcome, want) in [
        ("failed", "failed (exit 1)"),
        ("interrupted", "was interrupted (signal 2)"),
    ] {
        let mut l = clean_log();
        let planned = [("aws_instance.api", "create")];
        let p = l.plan("2026-12-02T12:00:00Z", user("alice"), &planned);
        let i = l.intent(
            "apply",
            "2026-12-02T12:01:00Z",
            user("alice"),
            recorded_plan_with(p, &planned),
            fingerprint("a2", 2, 1),
            None,
        );
        let o = l.outcome(
            "apply",
            "2026-12-02T12:02:00Z",
            user("alice"),
            Some(i),
            outcome,
            fingerprint("a2", 2, 1),
            fingerprint("a2", 2, 1),
            diff(&[], &[], &[]),
            None,
        );
        let a = l.eval(&strict());
        assert_eq!(names(&a), ["failed_apply"], "{a:#?}");
        assert_eq!(a[0].records, [i, o]);
        assert!(
            a[0].summary.contains(&format!(
                "terraform apply in infra/prod by alice@ci-7 {want}"
            )) && a[0].summary.contains("create aws_instance.api"),
            "{}",
            a[0].summary
        );
        assert_eq!(a[0].details["outcome"], outcome);
    }
    // A failed init is not an apply.
    let mut l = clean_log();
    let i = l.intent(
        "init",
        "2026-12-02T12:02:00Z",
        user("alice"),
        Value::Null,
        fingerprint("a2", 2, 1),
        None,
    );
    l.outcome(
        "init",
        "2026-12-02T12:02:00Z",
        user("alice"),
        Some(i),
        "failed",
        fingerprint("a2", 2, 1),
        fingerprint("a2", 2, 1),
        diff(&[], &[], &[]),
        None,
    );
    assert!(l.eval(&strict()).is_empty());
}

#[test]
fn changes_outside_the_window() {
    let mut l = clean_log();
    // Saturday night in Berlin, by the state backend and the run's outcome: one alert per run.
    let addr = Some("http://tftrail.internal:8443/state/team/prod");
    let p = l.plan(
        "2026-12-05T22:00:00Z",
        token("ci"),
        &[("aws_sqs_queue.more", "create")],
    );
    let i = l.intent(
        "apply",
        "2026-12-05T22:00:10Z",
        token("ci"),
        recorded_plan(p),
        fingerprint("b1", 1, 1),
        addr,
    );
    let w = l.state_write(
        "2026-12-05T22:00:30Z",
        token("ci"),
        "team/prod",
        Some(i),
        fingerprint("b1", 1, 1),
        fingerprint("b4", 2, 2),
        diff(&["aws_sqs_queue.more"], &[], &[]),
    );
    l.outcome(
        "apply",
        "2026-12-05T22:00:40Z",
        token("ci"),
        Some(i),
        "success",
        fingerprint("b1", 1, 1),
        fingerprint("b4", 2, 2),
        diff(&["aws_sqs_queue.more"], &[], &[]),
        addr,
    );
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["change_window"], "{a:#?}");
    assert_eq!(a[0].records, [w]);
    assert_eq!(a[0].key, format!("change_window:run:{i}"));
    assert!(
        a[0].summary
            .contains("at sat 2026-12-05 23:00 Europe/Berlin")
            && a[0].summary.contains("create aws_sqs_queue.more")
            && a[0].summary.contains("token:ci"),
        "{}",
        a[0].summary
    );
    assert_eq!(
        a[0].why,
        "changes are allowed mon,tue,wed,thu,fri 09:00-18:00 Europe/Berlin"
    );
    // The plan at that hour changed nothing: only state changes count. Off by default.
    assert!(l.eval(&RulesConfig::default()).is_empty());
    let mut l = clean_log();
    l.plan(
        "2026-12-05T22:00:00Z",
        token("ci"),
        &[("aws_sqs_queue.more", "create")],
    );
    assert!(l.eval(&strict()).is_empty());
}

#[test]
fn actors_not_on_the_list() {
    let mut l = clean_log();
    // A token not on the list, and a self-asserted user claiming to be alice through the
    // server (the server authenticated token:deploy-bot: that is who it is).
    let p = l.plan("2026-12-02T12:00:00Z", token("deploy-bot"), &[]);
    let mut mallory = user("mallory");
    mallory.host = "laptop".into();
    let q = l.plan("2026-12-02T12:01:00Z", mallory, &[]);
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["actors", "actors"], "{a:#?}");
    assert_eq!(a[0].records, [p]);
    assert!(
        a[0].summary
            .contains("token:deploy-bot is not on the allowed list"),
        "{}",
        a[0].summary
    );
    assert_eq!(a[0].severity, Severity::Critical);
    assert_eq!(a[1].records, [q]);
    assert!(
        a[1].summary
            .contains("user mallory (self-asserted) is not on the allowed list"),
        "{}",
        a[1].summary
    );
    // A user entry does not admit an authenticated record with that user name.
    let mut l = clean_log();
    let mut sneaky = token("deploy-bot");
    sneaky.user = "alice".into();
    l.plan("2026-12-02T12:00:00Z", sneaky, &[]);
    assert_eq!(names(&l.eval(&strict())), ["actors"]);
    // Globs over OIDC subjects.
    let c = rules("[rules.actors]\nallowed = [\"oidc:repo:acme/*\"]");
    let mut l = Log::default();
    let oidc = |sub: &str| Actor {
        authenticated: Some(
            json!({"by": "oidc", "issuer": "https://token.actions.githubusercontent.com", "subject": sub, "role": "writer"}),
        ),
        ..user("runner")
    };
    l.plan(WED_10, oidc("repo:acme/infra:ref:refs/heads/main"), &[]);
    assert!(l.eval(&c).is_empty());
    l.plan(WED_10, oidc("repo:evil/infra:ref:refs/heads/main"), &[]);
    assert_eq!(names(&l.eval(&c)), ["actors"]);
    // The server's own records are never an unknown actor.
    let mut l = Log::default();
    l.denied(WED_10, 1, "10.0.0.1");
    assert!(l.eval(&c).is_empty());
}

#[test]
fn actors_required_authenticated_once_per_run() {
    let c = rules("[rules.actors]\nrequire_authenticated = true");
    let mut l = Log::default();
    let i = l.intent(
        "apply",
        WED_10,
        user("alice"),
        recorded_plan(0),
        absent(),
        None,
    );
    l.outcome(
        "apply",
        WED_10,
        user("alice"),
        Some(i),
        "success",
        absent(),
        absent(),
        diff(&[], &[], &[]),
        None,
    );
    l.intent(
        "apply",
        WED_10,
        token("ci"),
        recorded_plan(0),
        absent(),
        None,
    );
    let a = l.eval(&c);
    assert_eq!(names(&a), ["actors"], "{a:#?}");
    assert_eq!(a[0].records, [i]);
    assert!(
        a[0].summary.contains("self-asserted actor alice@ci-7"),
        "{}",
        a[0].summary
    );
    assert_eq!(a[0].key, format!("actors:run:{i}:alice@ci-7"));
}

#[test]
fn denied_above_the_rate_once_per_crossing() {
    let mut l = clean_log(); // 6 refusals at 11:11-11:12
    let first = l.denied("2026-12-02T11:20:00Z", 10, "203.0.113.5");
    assert!(l.eval(&strict()).is_empty()); // 16
    let over = l.denied("2026-12-02T11:21:00Z", 5, "203.0.113.5"); // 21
    l.denied("2026-12-02T11:22:00Z", 30, "203.0.113.5"); // still over: no new alert
    let a = l.eval(&strict());
    assert_eq!(names(&a), ["denied"], "{a:#?}");
    assert_eq!(a[0].records, [over]);
    assert!(
        a[0].summary.contains("21 refused requests")
            && a[0].summary.contains("203.0.113.5 (15), 10.0.0.9 (6)"),
        "{}",
        a[0].summary
    );
    assert_eq!(a[0].details["refusals_last_hour"], 21);
    // An hour later the rate is down; crossing again is a new alert.
    l.denied("2026-12-02T13:00:00Z", 1, "203.0.113.5");
    let again = l.denied("2026-12-02T13:05:00Z", 21, "198.51.100.7");
    let a = l.eval(&strict());
    assert_eq!(
        a.iter().map(|a| a.records[0]).collect::<Vec<_>>(),
        [over, again]
    );
    let _ = first;
}

#[test]
fn denied_with_no_refusal_allowed() {
    let c = rules("[rules.denied]\nmax_per_hour = 0");
    let mut l = Log::default();
    let i = l.denied(WED_10, 1, "127.0.0.1");
    let a = l.eval(&c);
    assert_eq!(names(&a), ["denied"]);
    assert_eq!(a[0].records, [i]);
    // An hour before the round's time is out of the window: nothing to say.
    let mut l = Log::default();
    l.denied("2026-12-02T09:00:00Z", 1, "127.0.0.1");
    let mut mem = RuleMemory::default();
    assert_eq!(names(&l.eval_from(&c, 0, &mut mem)), ["denied"]);
    assert!(mem.denied.is_empty(), "{mem:?}");
    // Off: silent.
    let c = rules("[rules.denied]\nenabled = false\nmax_per_hour = 0");
    assert!(l.eval(&c).is_empty());
}

#[test]
fn memory_carries_across_rounds_and_restarts() {
    let mut l = clean_log();
    let c = strict();
    let mut mem = RuleMemory::default();
    assert!(l.eval_from(&c, 0, &mut mem).is_empty());
    let n = l.records.len();
    // Round two: the state left in round one is remembered (through JSON, as the round
    // keeps it).
    let i = l.intent(
        "apply",
        "2026-12-02T12:00:00Z",
        user("alice"),
        recorded_plan(3),
        fingerprint("f9", 3, 1),
        None,
    );
    let json = serde_json::to_string(&mem).unwrap();
    let mut mem: RuleMemory = serde_json::from_str(&json).unwrap();
    let a = l.eval_from(&c, n, &mut mem);
    assert_eq!(names(&a), ["out_of_band"]);
    assert_eq!(a[0].records, [5, i]);
    // The same records again (a round that read them twice): nothing new.
    assert!(l.eval_from(&c, n, &mut mem).is_empty());
    // An old memory file without some fields still reads.
    let m: RuleMemory = serde_json::from_str("{}").unwrap();
    assert_eq!(m, RuleMemory::default());
}

#[test]
fn deterministic() {
    let mut l = clean_log();
    l.intent(
        "apply",
        "2026-12-05T12:00:00Z",
        token("x"),
        unsaved_plan(),
        fingerprint("zz", 9, 1),
        None,
    );
    let (mut m1, mut m2) = (RuleMemory::default(), RuleMemory::default());
    let a1 = l.eval_from(&strict(), 0, &mut m1);
    let a2 = l.eval_from(&strict(), 0, &mut m2);
    assert_eq!(a1, a2);
    assert_eq!(m1, m2);
    assert_eq!(names(&a1), ["out_of_band", "unreviewed_apply", "actors"]);
}

/// Writers choose payloads: odd shapes and values are no reason to panic, and say nothing.
#[test]
fn odd_payloads_neither_panic_nor_alert_wrongly() {
    let c = strict();
    let mut l = Log::default();
    let odd = [
        json!({}),
        json!({"state_before": {"present": true, "sha256": "é".repeat(40)}, "context": {"dir": 7}}),
        json!({"plan": "yes", "outcome": ["failed"], "intent_index": "3", "state_diff": {"removed": "x"}}),
        json!({"count": u64::MAX, "source": {"a": 1}}),
        json!({"state": 1, "out_of_band": "true", "run": {"intent_index": -1}, "after": {"present": "yes"}}),
    ];
    for kind in [
        "terraform.apply.intent",
        "terraform.apply.outcome",
        "terraform.state.write",
        "server.access.denied",
        "tofu.destroy.outcome",
        "x",
    ] {
        for p in &odd {
            l.push(kind, WED_10, server(), p.clone());
        }
    }
    // Twice over, with the first pass's memory: huge counts and multibyte hashes included.
    let mut mem = RuleMemory::default();
    let first = l.eval_from(&c, 0, &mut mem);
    let again = l.eval_from(&c, 0, &mut mem);
    assert!(again.is_empty(), "{again:#?}");
    for a in &first {
        assert!(!a.key.is_empty() && !a.summary.is_empty(), "{a:#?}");
    }
    // An apply intent that says nothing of its plan is unreviewed (deny by default), the
    // huge count is over the rate; nothing else has grounds.
    let mut fired: Vec<&str> = names(&first);
    fired.dedup();
    assert_eq!(fired, ["unreviewed_apply", "denied"], "{first:#?}");
    assert!(
        first[5].summary.contains("names no intent record"),
        "{}",
        first[5].summary
    );
    // A multibyte "hash" shown in a summary.
    let mut l = Log::default();
    let mut weird = fingerprint("a1", 1, 1);
    weird["content_sha256"] = json!("é".repeat(40));
    l.outcome(
        "apply",
        WED_10,
        user("alice"),
        None,
        "success",
        absent(),
        weird,
        diff(&[], &[], &[]),
        None,
    );
    let mut other = fingerprint("a1", 1, 1);
    other["content_sha256"] = json!("ü".repeat(40));
    l.intent(
        "apply",
        WED_10,
        user("alice"),
        recorded_plan(0),
        other,
        None,
    );
    let a = l.eval(&c);
    assert!(names(&a).contains(&"out_of_band"), "{a:#?}");
}
