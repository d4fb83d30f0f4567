//! The alert rules: authenticated records in, alerts out.
//!
//! Pure: no I/O and no clock. The round hands [`RulesConfig::evaluate`] the new records in log
//! order with their resource changes (`tftrail_index::extract`'s rows, after the round put
//! moved fragments back), the round's time, and the [`RuleMemory`] it keeps between rounds;
//! the same inputs always give the same alerts.
//!
//! Each rule is one `[rules.<name>]` table of the config file; the names are the alerts'
//! `rule`. The `integrity` rule is only settings here: the round checks the log itself.
//!
//! Records are judged by what they say: times are the records' own (`time`, UTC), the actor is
//! the identity a team server authenticated when it recorded one (`token:NAME`,
//! `oidc:SUBJECT`), else the self-asserted `user`. Records the server wrote for itself
//! (`actor.authenticated.by = "server"`) are never an unknown actor.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tftrail_core::record::{authenticated_label, Record};
use tftrail_index::ChangeRow;

use crate::alert::{Alert, Severity};

/// One authenticated record the round hands to the rules, with its resource changes
/// (`tftrail_index::extract`'s rows, computed by the round after inflating blobs).
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Its index in the log.
    pub index: u64,
    /// The record.
    pub record: &'a Record,
    /// Its resource changes.
    pub changes: &'a [ChangeRow],
}

/// The most alert keys [`RuleMemory`] remembers (the oldest are forgotten first; the
/// monitor's delivery memory keeps deduplicating beyond them).
const MAX_FIRED: usize = 10_000;
/// The most runs whose reported deletes [`RuleMemory`] remembers.
const MAX_RUNS: usize = 1_000;
/// The most workspaces whose last state [`RuleMemory`] remembers.
const MAX_STATES: usize = 100_000;
/// The most `server.access.denied` records kept for the sliding hour.
const MAX_DENIED: usize = 100_000;
const HOUR_NS: i128 = 3_600_000_000_000;

/// What rules remember between rounds (persisted by the round in the monitor's state dir as
/// JSON). Bounded: old entries are forgotten (see the `MAX_` limits).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleMemory {
    /// The last recorded state of each workspace (see [`workspace_key`]).
    #[serde(default)]
    states: BTreeMap<String, StateSeen>,
    /// Runs still open (by intent index) and the deletes already reported for them.
    #[serde(default)]
    runs: BTreeMap<u64, RunSeen>,
    /// `server.access.denied` records of the last hour: (time in Unix ns, count, source).
    #[serde(default)]
    denied: VecDeque<(i128, u64, String)>,
    /// Whether the denied rate is above the limit now (fires once per crossing).
    #[serde(default)]
    denied_over: bool,
    /// Keys of alerts already fired, oldest first.
    #[serde(default)]
    fired: VecDeque<String>,
}

/// A workspace's last recorded state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateSeen {
    /// The record that said so.
    index: u64,
    /// Whether a state existed.
    present: bool,
    /// SHA-256 of its bytes.
    sha256: Option<String>,
    /// SHA-256 of its canonical JSON (formatting-independent).
    content_sha256: Option<String>,
    /// Serial.
    serial: Option<u64>,
}

impl StateSeen {
    /// From a state fingerprint (`state_before`, `state_after`, `before`, `after`); `None`
    /// when it says the state could not be read.
    fn from_fingerprint(index: u64, v: &Value) -> Option<Self> {
        let present = v.get("present")?.as_bool()?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        let seen = StateSeen {
            index,
            present,
            sha256: text("sha256"),
            content_sha256: text("content_sha256"),
            serial: v.get("serial").and_then(Value::as_u64),
        };
        (!present || seen.sha256.is_some() || seen.content_sha256.is_some()).then_some(seen)
    }

    /// Whether two fingerprints are of the same state: canonical content when both have it
    /// (the server's bytes and `terraform state pull`'s may differ in formatting only), else
    /// the bytes.
    fn same(&self, other: &StateSeen) -> bool {
        if self.present != other.present {
            return false;
        }
        if !self.present {
            return true;
        }
        match (&self.content_sha256, &other.content_sha256) {
            (Some(a), Some(b)) => a == b,
            _ => self.sha256.is_some() && self.sha256 == other.sha256,
        }
    }
}

/// What is remembered of an open run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct RunSeen {
    /// Deleted or replaced addresses already reported by `destroy`.
    #[serde(default)]
    deletes: BTreeSet<String>,
    /// Whether `destroy` reported too many deletes already.
    #[serde(default)]
    too_many: bool,
}

impl RuleMemory {
    /// Remembers a fired key (`seen` mirrors `fired` for lookups).
    fn remember(&mut self, key: &str, seen: &mut HashSet<String>) {
        self.fired.push_back(key.to_string());
        seen.insert(key.to_string());
        while self.fired.len() > MAX_FIRED {
            if let Some(old) = self.fired.pop_front() {
                seen.remove(&old);
            }
        }
    }

    /// Adds a refusal count at `t` and drops those an hour older than `until` (and beyond
    /// [`MAX_DENIED`]), keeping `total` the sum of the counts kept.
    fn denied_window(&mut self, add: Option<(i128, u64, String)>, until: i128, total: &mut u64) {
        if let Some(d) = add {
            *total = total.saturating_add(d.1);
            self.denied.push_back(d);
        }
        while self.denied.len() > MAX_DENIED
            || self.denied.front().is_some_and(|d| d.0 <= until - HOUR_NS)
        {
            if let Some(d) = self.denied.pop_front() {
                *total = total.saturating_sub(d.1);
            }
        }
    }

    fn run_mut(&mut self, intent: u64) -> &mut RunSeen {
        if !self.runs.contains_key(&intent) {
            while self.runs.len() >= MAX_RUNS {
                self.runs.pop_first();
            }
        }
        self.runs.entry(intent).or_default()
    }

    fn set_state(&mut self, key: String, seen: Option<StateSeen>) {
        match seen {
            Some(s) => {
                if !self.states.contains_key(&key) && self.states.len() >= MAX_STATES {
                    // Forget the workspace not heard of for the longest.
                    if let Some(oldest) = self
                        .states
                        .iter()
                        .min_by_key(|(_, s)| s.index)
                        .map(|(k, _)| k.clone())
                    {
                        self.states.remove(&oldest);
                    }
                }
                self.states.insert(key, s);
            }
            // Unknown now: nothing to compare the next run with.
            None => {
                self.states.remove(&key);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// The rules' settings (`[rules.<name>]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// `[rules.integrity]`.
    pub integrity: IntegrityRule,
    /// `[rules.out_of_band]`.
    pub out_of_band: OutOfBandRule,
    /// `[rules.unreviewed_apply]`.
    pub unreviewed_apply: UnreviewedApplyRule,
    /// `[rules.destroy]`.
    pub destroy: DestroyRule,
    /// `[rules.failed_apply]`.
    pub failed_apply: FailedApplyRule,
    /// `[rules.change_window]`.
    pub change_window: ChangeWindowRule,
    /// `[rules.actors]`.
    pub actors: ActorsRule,
    /// `[rules.denied]`.
    pub denied: DeniedRule,
}

/// `[rules.integrity]`: the round's checks of the log itself (verification, rollback, fork,
/// stale checkpoint). Only settings: the round fires these alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrityRule {
    /// On by default; verification failures, rollbacks and forks are alerts unless off.
    pub enabled: bool,
    /// The checkpoint not advancing for longer than this while runs are expected is an alert
    /// (`"90s"`, `"30m"`, `"2h"`, `"1d"`; default off).
    #[serde(deserialize_with = "de_opt_duration")]
    pub stale_after: Option<Duration>,
    /// When runs are expected, for `stale_after` (`days`, `hours`, `timezone`, as
    /// `[rules.change_window]`); `None`: always.
    pub runs_expected: Option<Window>,
}

impl Default for IntegrityRule {
    fn default() -> Self {
        IntegrityRule {
            enabled: true,
            stale_after: None,
            runs_expected: None,
        }
    }
}

impl IntegrityRule {
    /// Whether runs are expected at `at` (inside [`IntegrityRule::runs_expected`], or always).
    pub fn runs_expected_at(&self, at: time::OffsetDateTime) -> bool {
        self.runs_expected
            .as_ref()
            .is_none_or(|w| w.contains(at.unix_timestamp_nanos()))
    }

    /// Whether a checkpoint last seen advancing at `last_advance` is stale at `now`: the rule
    /// is on, `stale_after` is set and has passed, and runs are expected now.
    pub fn is_stale(&self, last_advance: time::OffsetDateTime, now: time::OffsetDateTime) -> bool {
        let Some(after) = self.stale_after.filter(|_| self.enabled) else {
            return false;
        };
        let waited = now - last_advance;
        waited.is_positive() && waited.unsigned_abs() > after && self.runs_expected_at(now)
    }
}

/// `[rules.out_of_band]`: state changed outside a recorded run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutOfBandRule {
    /// On by default.
    pub enabled: bool,
}

impl Default for OutOfBandRule {
    fn default() -> Self {
        OutOfBandRule { enabled: true }
    }
}

/// `[rules.unreviewed_apply]`: an apply of no saved plan, or of a saved plan tftrail did not
/// record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnreviewedApplyRule {
    /// On by default.
    pub enabled: bool,
    /// The operations watched (`apply`, `destroy`, `import`, `refresh`), default `["apply"]`.
    pub operations: Vec<String>,
}

impl Default for UnreviewedApplyRule {
    fn default() -> Self {
        UnreviewedApplyRule {
            enabled: true,
            operations: vec!["apply".into()],
        }
    }
}

/// `[rules.destroy]`: deletes (and replacements) of watched resources, and too many deletes
/// in one record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DestroyRule {
    /// On by default.
    pub enabled: bool,
    /// Address patterns, `*` matching any run of characters over the whole address
    /// (`aws_s3_bucket.*`, `*.prod_*`); empty: every resource.
    pub resources: Vec<Pattern>,
    /// More deletes than this in one record is an alert whatever the resources.
    pub max_deletes: u64,
}

impl Default for DestroyRule {
    fn default() -> Self {
        DestroyRule {
            enabled: true,
            resources: Vec::new(),
            max_deletes: 10,
        }
    }
}

/// `[rules.failed_apply]`: a run that failed or was interrupted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailedApplyRule {
    /// On by default.
    pub enabled: bool,
    /// The operations watched, default `["apply", "destroy"]`.
    pub operations: Vec<String>,
}

impl Default for FailedApplyRule {
    fn default() -> Self {
        FailedApplyRule {
            enabled: true,
            operations: vec!["apply".into(), "destroy".into()],
        }
    }
}

/// `[rules.change_window]`: state changes outside the allowed days and hours.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "ChangeWindowSpec")]
pub struct ChangeWindowRule {
    /// Off by default.
    pub enabled: bool,
    /// When changes are allowed.
    pub window: Window,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeWindowSpec {
    #[serde(default)]
    enabled: bool,
    #[serde(default = "work_days")]
    days: Vec<String>,
    #[serde(default = "work_hours")]
    hours: String,
    #[serde(default = "utc")]
    timezone: String,
}

impl TryFrom<ChangeWindowSpec> for ChangeWindowRule {
    type Error = String;
    fn try_from(s: ChangeWindowSpec) -> Result<Self, String> {
        Ok(ChangeWindowRule {
            enabled: s.enabled,
            window: Window::try_from(WindowSpec {
                days: s.days,
                hours: s.hours,
                timezone: s.timezone,
            })?,
        })
    }
}

/// `[rules.actors]`: who may write records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorsRule {
    /// On by default (with an empty list it only checks `require_authenticated`).
    pub enabled: bool,
    /// Who may: `token:NAME` and `oidc:SUBJECT` match the identity a team server
    /// authenticated, anything else the self-asserted user of records no server
    /// authenticated; `*` matches any run of characters. Empty: anyone.
    pub allowed: Vec<Pattern>,
    /// Records without an authenticated identity are an alert.
    pub require_authenticated: bool,
}

impl Default for ActorsRule {
    fn default() -> Self {
        ActorsRule {
            enabled: true,
            allowed: Vec::new(),
            require_authenticated: false,
        }
    }
}

/// `[rules.denied]`: refused requests to a team server above a rate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeniedRule {
    /// On by default.
    pub enabled: bool,
    /// More refusals than this within any hour is an alert (once each time the rate
    /// crosses it).
    pub max_per_hour: u64,
}

impl Default for DeniedRule {
    fn default() -> Self {
        DeniedRule {
            enabled: true,
            max_per_hour: 20,
        }
    }
}

/// A glob over a whole string: `*` matches any run of characters (none too), everything
/// else itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Pattern(String);

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() {
            return Err("an empty pattern matches nothing: remove it, or use \"*\"".into());
        }
        Ok(Pattern(s))
    }
}

impl Pattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or("");
        let Some(mut rest) = s.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            // No `*`: the whole string.
            return rest.is_empty();
        };
        // Each middle part at its leftmost place leaves the most room for the others.
        for p in middle {
            match rest.find(p) {
                Some(i) => rest = &rest[i + p.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// Days of the week, hours of the day and a time zone (`days = ["mon", "tue"]`,
/// `hours = "09:00-18:00"`, `timezone = "Europe/Berlin"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "WindowSpec")]
pub struct Window {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after midnight: from (inclusive) and until (exclusive); until before from
    /// spans midnight (the days are those of the start).
    from: u16,
    until: u16,
    tz: jiff::tz::TimeZone,
    tz_name: String,
    spec: WindowSpec,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSpec {
    #[serde(default = "work_days")]
    days: Vec<String>,
    #[serde(default = "work_hours")]
    hours: String,
    #[serde(default = "utc")]
    timezone: String,
}

fn work_days() -> Vec<String> {
    DAYS[..5].iter().map(|d| d.to_string()).collect()
}
fn work_hours() -> String {
    "09:00-18:00".into()
}
fn utc() -> String {
    "UTC".into()
}

impl Default for Window {
    fn default() -> Self {
        Window::try_from(WindowSpec {
            days: work_days(),
            hours: work_hours(),
            timezone: utc(),
        })
        .expect("the default window is valid")
    }
}

fn hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && (h < 24 || m == 0)).then_some(h * 60 + m)
}

impl TryFrom<WindowSpec> for Window {
    type Error = String;
    fn try_from(s: WindowSpec) -> Result<Self, String> {
        let mut days = [false; 7];
        if s.days.is_empty() {
            return Err(
                "days is empty: name at least one of mon, tue, wed, thu, fri, sat, sun".into(),
            );
        }
        for d in &s.days {
            let lower = d.to_ascii_lowercase();
            let i = DAYS
                .iter()
                .position(|x| lower == *x || (lower.len() > 3 && full_day(x) == lower))
                .ok_or_else(|| {
                    format!("unknown day {d:?}: use mon, tue, wed, thu, fri, sat or sun")
                })?;
            days[i] = true;
        }
        let bad_hours = || {
            format!(
                "hours {:?} is not a range like \"09:00-18:00\" (24-hour clock, until 24:00; a range may span midnight)",
                s.hours
            )
        };
        let (a, b) = s.hours.split_once('-').ok_or_else(bad_hours)?;
        let (from, until) = (
            hhmm(a).ok_or_else(bad_hours)?,
            hhmm(b).ok_or_else(bad_hours)?,
        );
        if from == until || from == 24 * 60 {
            return Err(bad_hours());
        }
        let tz = jiff::tz::TimeZone::get(&s.timezone).map_err(|_| {
            format!(
                "unknown time zone {:?}: use an IANA name like \"Europe/Berlin\", \"America/New_York\" or \"UTC\"",
                s.timezone
            )
        })?;
        Ok(Window {
            days,
            from,
            until,
            tz,
            tz_name: s.timezone.clone(),
            spec: s,
        })
    }
}

fn full_day(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

impl Window {
    /// Whether the instant (Unix nanoseconds) falls inside the window.
    pub fn contains(&self, unix_ns: i128) -> bool {
        let Ok(ts) = jiff::Timestamp::from_nanosecond(unix_ns) else {
            return false;
        };
        let local = self.tz.to_datetime(ts);
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let day = usize::from(local.weekday().to_monday_zero_offset() as u8);
        let yesterday = (day + 6) % 7;
        if self.from < self.until {
            self.days[day] && (self.from..self.until).contains(&minute)
        } else {
            // Spans midnight: the evening of an allowed day, or the early hours after one.
            (self.days[day] && minute >= self.from) || (self.days[yesterday] && minute < self.until)
        }
    }

    /// The window as the config wrote it (`mon-fri 09:00-18:00 Europe/Berlin`).
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}",
            self.spec.days.join(","),
            self.spec.hours.trim(),
            self.tz_name
        )
    }

    fn details(&self) -> Value {
        json!({"days": self.spec.days, "hours": self.spec.hours, "timezone": self.tz_name})
    }

    /// The local time of an instant in the window's zone (`2026-12-05T23:10:00 Europe/Berlin`).
    fn local(&self, unix_ns: i128) -> String {
        match jiff::Timestamp::from_nanosecond(unix_ns) {
            Ok(ts) => format!(
                "{} {} {}",
                DAYS[usize::from(self.tz.to_datetime(ts).weekday().to_monday_zero_offset() as u8)],
                self.tz.to_datetime(ts).strftime("%Y-%m-%d %H:%M"),
                self.tz_name
            ),
            Err(_) => "(time out of range)".into(),
        }
    }
}

/// `"90s"`, `"30m"`, `"2h"`, `"1d"` (a positive whole number and one unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {s:?}: use a number and a unit, like \"90s\", \"30m\", \"2h\" or \"1d\"")
    };
    let t = s.trim();
    let unit_at = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(unit_at);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
    }
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

fn de_opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| parse_duration(&s))
        .transpose()
        .map_err(serde::de::Error::custom)
}

const OPERATIONS: &[&str] = &[
    "apply", "destroy", "import", "refresh", "state", "taint", "untaint",
];

fn check_operations(rule: &str, ops: &[String]) -> Result<(), String> {
    for o in ops {
        if !OPERATIONS.contains(&o.as_str()) {
            return Err(format!(
                "rules.{rule}.operations: unknown operation {o:?} (use {})",
                OPERATIONS.join(", ")
            ));
        }
    }
    Ok(())
}

impl RulesConfig {
    /// Checks the settings (patterns, windows and time zones are checked as they are read).
    pub fn check(&self) -> Result<(), String> {
        check_operations("unreviewed_apply", &self.unreviewed_apply.operations)?;
        check_operations("failed_apply", &self.failed_apply.operations)?;
        if self.failed_apply.enabled && self.failed_apply.operations.is_empty() {
            return Err(
                "rules.failed_apply.operations is empty: name operations, or set enabled = false"
                    .into(),
            );
        }
        if self.unreviewed_apply.enabled && self.unreviewed_apply.operations.is_empty() {
            return Err("rules.unreviewed_apply.operations is empty: name operations, or set enabled = false".into());
        }
        for p in self.destroy.resources.iter().chain(&self.actors.allowed) {
            if p.0.is_empty() {
                return Err("an empty pattern matches nothing".into());
            }
        }
        Ok(())
    }

    /// The integrity rule's settings, for the round.
    pub fn integrity(&self) -> &IntegrityRule {
        &self.integrity
    }

    /// Alerts for `events` (in log order), `now` the round's time. Deterministic: the same
    /// events, memory and time give the same alerts and the same memory. An alert key fired
    /// before (while `memory` remembers it) is not fired again.
    pub fn evaluate(
        &self,
        events: &[Event],
        memory: &mut RuleMemory,
        now: time::OffsetDateTime,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let mut seen: HashSet<String> = memory.fired.iter().cloned().collect();
        let mut denied_total: u64 = memory
            .denied
            .iter()
            .fold(0u64, |t, d| t.saturating_add(d.1));
        for e in events {
            let mut fired = Vec::new();
            let f = Facts::of(e);
            if self.out_of_band.enabled {
                out_of_band(e, &f, memory, &mut fired);
            }
            // Kept even with the rule off, so turning it on does not compare with old states.
            remember_state(e, &f, memory);
            if self.unreviewed_apply.enabled {
                self.unreviewed(e, &f, &mut fired);
            }
            if self.destroy.enabled {
                self.destroyed(e, &f, memory, &mut fired);
            }
            if self.failed_apply.enabled {
                self.failed(e, &f, &mut fired);
            }
            if self.change_window.enabled {
                self.outside_window(e, &f, &mut fired);
            }
            if self.actors.enabled {
                self.actor(e, &f, &mut fired);
            }
            if self.denied.enabled {
                self.denied_rate(e, &f, memory, &mut denied_total, &mut fired);
            }
            // A finished run is forgotten (its writes are linked no more).
            if f.is_outcome {
                if let Some(i) = f.intent {
                    memory.runs.remove(&i);
                }
            }
            for a in fired {
                if !seen.contains(&a.key) {
                    memory.remember(&a.key, &mut seen);
                    out.push(a);
                }
            }
        }
        // The sliding hour ends now at the latest.
        memory.denied_window(None, now.unix_timestamp_nanos(), &mut denied_total);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// What a record says, read once
// ---------------------------------------------------------------------------------------------

/// The facts of one record the rules look at.
struct Facts<'a> {
    kind: &'a str,
    /// `apply` for `terraform.apply.intent` / `.outcome` (also `tofu.`).
    operation: Option<&'a str>,
    is_intent: bool,
    is_outcome: bool,
    /// A `terraform.state.write` / `.delete` from a team server's state backend.
    is_state_change: bool,
    /// The run it belongs to: an intent's own index, an outcome's `intent_index`, a state
    /// record's `run.intent_index`.
    intent: Option<u64>,
    /// Who, as shown (`token:ci`, `oidc:repo:acme/infra:…`, `server`, else `user@host`).
    who: String,
    /// The authenticated label (`token:ci`), when a server authenticated the writer.
    authenticated: Option<String>,
    /// Record time, Unix ns.
    time_ns: Option<i128>,
    /// Where: `dir (workspace ws)` or `state NAME`.
    place: String,
}

impl<'a> Facts<'a> {
    fn of(e: &Event<'a>) -> Self {
        let r = e.record;
        let p = &r.payload;
        let kind = r.kind.as_str();
        let terraform = kind
            .strip_prefix("terraform.")
            .or_else(|| kind.strip_prefix("tofu."));
        let (stem, is_intent, is_outcome) = match terraform {
            Some(rest) => match (rest.strip_suffix(".intent"), rest.strip_suffix(".outcome")) {
                (Some(op), _) => (Some(op), true, false),
                (_, Some(op)) => (Some(op), false, true),
                _ => (None, false, false),
            },
            None => (None, false, false),
        };
        let is_state_change = matches!(kind, "terraform.state.write" | "terraform.state.delete");
        let intent = if is_intent {
            Some(e.index)
        } else if is_outcome {
            p.get("intent_index").and_then(Value::as_u64)
        } else if kind.starts_with("terraform.state.") {
            p.pointer("/run/intent_index").and_then(Value::as_u64)
        } else {
            None
        };
        let authenticated = r
            .actor
            .authenticated
            .as_ref()
            .map(|v| match authenticated_label(v) {
                Some(l) if l.by == "server" => "server".to_string(),
                Some(l) => format!("{}:{}", l.by, l.label),
                None => "authenticated:?".to_string(),
            });
        let who = authenticated
            .clone()
            .unwrap_or_else(|| format!("{}@{}", r.actor.user, r.actor.host));
        let place = if kind.starts_with("terraform.state.") && !is_intent && !is_outcome {
            format!("state {}", text(p, "/state").unwrap_or("?"))
        } else {
            let dir = text(p, "/context/dir").unwrap_or("?");
            match text(p, "/context/workspace") {
                Some(ws) if ws != "default" => format!("{dir} (workspace {ws})"),
                _ => dir.to_string(),
            }
        };
        Facts {
            kind,
            operation: stem,
            is_intent,
            is_outcome,
            is_state_change,
            intent,
            who,
            authenticated,
            time_ns: time_ns(&r.time),
            place,
        }
    }

    /// The key of an alert about this record, or about its run when `per_run` and it has one.
    fn key(&self, rule: &str, index: u64, per_run: bool) -> String {
        match self.intent.filter(|_| per_run) {
            Some(i) => format!("{rule}:run:{i}"),
            None => format!("{rule}:{index}"),
        }
    }

    fn base_details(&self, e: &Event) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("kind".into(), json!(self.kind));
        m.insert("index".into(), json!(e.index));
        m.insert("time".into(), json!(e.record.time));
        m.insert("actor".into(), json!(self.who));
        m.insert("user".into(), json!(e.record.actor.user));
        m.insert("host".into(), json!(e.record.actor.host));
        m.insert("where".into(), json!(self.place));
        if let Some(i) = self.intent {
            m.insert("intent_index".into(), json!(i));
        }
        m
    }
}

fn text<'v>(v: &'v Value, ptr: &str) -> Option<&'v str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// A record time (`2026-12-03T12:00:00.123Z`) in Unix nanoseconds.
fn time_ns(t: &str) -> Option<i128> {
    t.parse::<jiff::Timestamp>().ok().map(|t| t.as_nanosecond())
}

/// `a, b, c and 4 more`.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The workspace a run or state record is about: `state:NAME` for a team server's state
/// (a state record's `state`, or a run whose `context.state_address` names one), else
/// `dir|workspace|backend` from the run's context.
fn workspace_key(r: &Record, f: &Facts) -> Option<String> {
    let p = &r.payload;
    if f.is_state_change {
        return text(p, "/state").map(|n| format!("state:{n}"));
    }
    if let Some(name) =
        text(p, "/context/state_address").and_then(tftrail_index::state_name_from_address)
    {
        return Some(format!("state:{name}"));
    }
    let dir = text(p, "/context/dir")?;
    let ws = text(p, "/context/workspace").unwrap_or("default");
    let backend = text(p, "/context/backend").unwrap_or("?");
    Some(format!("{dir}|{ws}|{backend}"))
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

fn out_of_band(e: &Event, f: &Facts, memory: &RuleMemory, fired: &mut Vec<Alert>) {
    let p = &e.record.payload;
    if f.is_state_change && p.get("out_of_band").and_then(Value::as_bool) == Some(true) {
        let state = text(p, "/state").unwrap_or("?");
        let rows: Vec<&ChangeRow> = e.changes.iter().filter(|c| c.source == "state").collect();
        let addrs: Vec<String> = rows
            .iter()
            .map(|c| format!("{} {}", c.action, c.address))
            .collect();
        let what = if f.kind == "terraform.state.delete" {
            "deleted"
        } else {
            "written"
        };
        let mut d = f.base_details(e);
        d.insert("state".into(), json!(state));
        d.insert("changes".into(), json!(addrs));
        d.insert(
            "before".into(),
            p.get("before").cloned().unwrap_or(Value::Null),
        );
        d.insert(
            "after".into(),
            p.get("after").cloned().unwrap_or(Value::Null),
        );
        d.insert(
            "forced".into(),
            p.get("forced").cloned().unwrap_or(json!(false)),
        );
        fired.push(Alert {
            rule: "out_of_band".into(),
            severity: Severity::Warning,
            records: vec![e.index],
            summary: format!(
                "state {state} {what} outside a recorded run by {} (record {}){}",
                f.who,
                e.index,
                if addrs.is_empty() {
                    String::new()
                } else {
                    format!(": {}", list(&addrs))
                }
            ),
            why: "state changes through the state backend are expected to belong to a `tftrail run` (this one matched no open run: out_of_band: true)".into(),
            details: Value::Object(d),
            key: format!("out_of_band:{}", e.index),
        });
        return;
    }
    // A run finding a state other than the last one recorded for its workspace: compared at
    // the intent (an outcome's `state_before` is the same reading, and the run's own state
    // writes come between), or at an outcome whose intent was not stored.
    let compare = f.is_intent || (f.is_outcome && f.intent.is_none());
    if !compare {
        return;
    }
    let Some(key) = workspace_key(e.record, f) else {
        return;
    };
    let (Some(last), Some(found)) = (
        memory.states.get(&key),
        p.get("state_before")
            .and_then(|v| StateSeen::from_fingerprint(e.index, v)),
    ) else {
        return;
    };
    if last.same(&found) {
        return;
    }
    let show = |s: &StateSeen| {
        if !s.present {
            "no state".to_string()
        } else {
            let sha = s
                .content_sha256
                .as_deref()
                .or(s.sha256.as_deref())
                .unwrap_or("?");
            let serial = s.serial.map_or(String::new(), |n| format!("serial {n}, "));
            format!(
                "{serial}sha256 {}",
                sha.chars().take(12).collect::<String>()
            )
        }
    };
    let mut d = f.base_details(e);
    d.insert("workspace".into(), json!(key));
    d.insert("last_recorded".into(), json!({"index": last.index, "present": last.present, "serial": last.serial, "sha256": last.sha256, "content_sha256": last.content_sha256}));
    d.insert(
        "found".into(),
        p.get("state_before").cloned().unwrap_or(Value::Null),
    );
    fired.push(Alert {
        rule: "out_of_band".into(),
        severity: Severity::Warning,
        records: vec![last.index, e.index],
        summary: format!(
            "state of {} changed outside recorded runs: run by {} (record {}) found {}, record {} left {}",
            f.place,
            f.who,
            e.index,
            show(&found),
            last.index,
            show(last)
        ),
        why: "a run's state before it started must be the state the last recorded run or state write left".into(),
        details: Value::Object(d),
        key: format!("out_of_band:{}", e.index),
    });
}

/// The state a record leaves its workspace in: a state write's `after`, an outcome's
/// `state_after` (an unreadable one forgets what was known).
fn remember_state(e: &Event, f: &Facts, memory: &mut RuleMemory) {
    let p = &e.record.payload;
    let after = if f.is_state_change {
        p.get("after")
    } else if f.is_outcome {
        p.get("state_after")
    } else {
        return;
    };
    let Some(after) = after else { return };
    // A command that moved to another workspace or backend (`workspace select`,
    // `init -migrate-state`) read its `state_after` there: the workspace it started in keeps
    // the state it was found in.
    if p.get("context_after").is_some() {
        return;
    }
    if let Some(key) = workspace_key(e.record, f) {
        memory.set_state(key, StateSeen::from_fingerprint(e.index, after));
    }
}

impl RulesConfig {
    fn unreviewed(&self, e: &Event, f: &Facts, fired: &mut Vec<Alert>) {
        let Some(op) = f.operation else { return };
        if !self.unreviewed_apply.operations.iter().any(|o| o == op) {
            return;
        }
        let p = &e.record.payload;
        let plan = p.get("plan");
        let why = if f.is_intent {
            let saved = plan.and_then(|v| v.get("saved")).and_then(Value::as_bool);
            let recorded = plan.and_then(|v| v.get("recorded"));
            match (saved, recorded) {
                (Some(true), Some(Value::Bool(true))) => return,
                (Some(false), _) => "applied no saved plan (Terraform planned again at apply time, so what was applied was not reviewed from a recorded plan)".to_string(),
                (Some(true), Some(Value::Bool(false))) => "applied a saved plan that tftrail did not record".to_string(),
                (Some(true), _) => "applied a saved plan whose record could not be looked up".to_string(),
                (None, _) => "its intent says nothing of the plan it applied".to_string(),
            }
        } else if f.is_outcome && f.intent.is_none() {
            if p.pointer("/fail_open/intent_stored") == Some(&Value::Bool(false)) {
                "its intent (and the plan it applied) was not recorded (--fail-open)".to_string()
            } else {
                "names no intent record, so the plan it applied is unknown".to_string()
            }
        } else {
            return;
        };
        let mut d = f.base_details(e);
        d.insert("operation".into(), json!(op));
        d.insert("plan".into(), plan.cloned().unwrap_or(Value::Null));
        fired.push(Alert {
            rule: "unreviewed_apply".into(),
            severity: Severity::Warning,
            records: vec![e.index],
            summary: format!("terraform {op} in {} by {} (record {}) {why}", f.place, f.who, e.index),
            why: format!(
                "{} must apply a saved plan that tftrail recorded (terraform plan -out, then apply that file)",
                self.unreviewed_apply.operations.join(", ")
            ),
            details: Value::Object(d),
            key: f.key("unreviewed_apply", e.index, true),
        });
    }

    fn destroyed(&self, e: &Event, f: &Facts, memory: &mut RuleMemory, fired: &mut Vec<Alert>) {
        if !(f.is_outcome || f.is_state_change) {
            return;
        }
        let rule = &self.destroy;
        // What the state shows was destroyed (not what was only planned or attempted).
        let mut deletes: Vec<(String, String)> = e
            .changes
            .iter()
            .filter(|c| c.source == "state" && c.state_change.as_deref() != Some("attempted"))
            .filter(|c| matches!(c.action.as_str(), "delete" | "replace"))
            .map(|c| (c.address.clone(), c.action.clone()))
            .collect();
        deletes.sort();
        deletes.dedup();
        if deletes.is_empty() {
            return;
        }
        let watched =
            |a: &str| rule.resources.is_empty() || rule.resources.iter().any(|p| p.matches(a));
        let mut matched: Vec<(String, String)> = deletes
            .iter()
            .filter(|(a, _)| watched(a))
            .cloned()
            .collect();
        let mut too_many = deletes.len() as u64 > rule.max_deletes;
        // A run's state writes and its outcome show the same deletes: each is told once.
        if let Some(i) = f.intent {
            let run = memory.run_mut(i);
            matched.retain(|(a, _)| !run.deletes.contains(a));
            run.deletes.extend(matched.iter().map(|(a, _)| a.clone()));
            too_many &= !run.too_many;
            run.too_many |= too_many;
        }
        if matched.is_empty() && !too_many {
            return;
        }
        let shown: Vec<String> = matched
            .iter()
            .map(|(a, act)| {
                if act == "replace" {
                    format!("{a} (replaced)")
                } else {
                    a.clone()
                }
            })
            .collect();
        let mut why = Vec::new();
        if !matched.is_empty() {
            why.push(if rule.resources.is_empty() {
                "every delete is watched (rules.destroy.resources is empty)".to_string()
            } else {
                format!(
                    "deletes of {} are watched",
                    rule.resources
                        .iter()
                        .map(Pattern::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        if too_many {
            why.push(format!(
                "more than {} deletes in one record",
                rule.max_deletes
            ));
        }
        let summary = if matched.is_empty() {
            format!(
                "{} deleted in {} by {} (record {})",
                plural(deletes.len(), "resource", "resources"),
                f.place,
                f.who,
                e.index
            )
        } else {
            format!(
                "{} deleted in {} by {} (record {}): {}",
                plural(matched.len(), "watched resource", "watched resources"),
                f.place,
                f.who,
                e.index,
                list(&shown)
            )
        };
        let mut d = f.base_details(e);
        d.insert(
            "deleted".into(),
            json!(deletes
                .iter()
                .map(|(a, act)| json!({"address": a, "action": act}))
                .collect::<Vec<_>>()),
        );
        d.insert(
            "matched".into(),
            json!(matched.iter().map(|(a, _)| a).collect::<Vec<_>>()),
        );
        d.insert("deletes".into(), json!(deletes.len()));
        d.insert("max_deletes".into(), json!(rule.max_deletes));
        d.insert(
            "patterns".into(),
            json!(rule
                .resources
                .iter()
                .map(Pattern::as_str)
                .collect::<Vec<_>>()),
        );
        fired.push(Alert {
            rule: "destroy".into(),
            severity: if too_many || !rule.resources.is_empty() {
                Severity::Critical
            } else {
                Severity::Warning
            },
            records: vec![e.index],
            summary,
            why: why.join("; "),
            details: Value::Object(d),
            key: format!("destroy:{}", e.index),
        });
    }

    fn failed(&self, e: &Event, f: &Facts, fired: &mut Vec<Alert>) {
        let Some(op) = f.operation.filter(|_| f.is_outcome) else {
            return;
        };
        if !self.failed_apply.operations.iter().any(|o| o == op) {
            return;
        }
        let p = &e.record.payload;
        let outcome = match text(p, "/outcome") {
            Some(o @ ("failed" | "interrupted")) => o,
            _ => return,
        };
        let exit = p.get("exit_code").and_then(Value::as_i64);
        let signal = p.get("signal").and_then(Value::as_i64);
        let how = match (outcome, exit, signal) {
            ("interrupted", _, Some(s)) => format!("was interrupted (signal {s})"),
            ("interrupted", _, _) => "was interrupted".to_string(),
            (_, Some(c), _) => format!("failed (exit {c})"),
            _ => "failed".to_string(),
        };
        let attempted: Vec<String> = e
            .changes
            .iter()
            .map(|c| format!("{} {}", c.action, c.address))
            .collect();
        let mut records = vec![e.index];
        if let Some(i) = f.intent {
            records.insert(0, i);
        }
        let mut d = f.base_details(e);
        d.insert("operation".into(), json!(op));
        d.insert("outcome".into(), json!(outcome));
        d.insert("exit_code".into(), json!(exit));
        d.insert("signal".into(), json!(signal));
        d.insert("changes".into(), json!(attempted));
        fired.push(Alert {
            rule: "failed_apply".into(),
            severity: Severity::Warning,
            records,
            summary: format!(
                "terraform {op} in {} by {} {how} (record {}){}",
                f.place,
                f.who,
                e.index,
                if attempted.is_empty() {
                    String::new()
                } else {
                    format!(": {}", list(&attempted))
                }
            ),
            why: format!(
                "failed or interrupted {} are watched",
                self.failed_apply.operations.join(", ")
            ),
            details: Value::Object(d),
            key: format!("failed_apply:{}", e.index),
        });
    }

    fn outside_window(&self, e: &Event, f: &Facts, fired: &mut Vec<Alert>) {
        let changing = f.is_state_change
            || (f.is_outcome && f.operation.is_some_and(|o| OPERATIONS.contains(&o)));
        if !changing {
            return;
        }
        let changed: Vec<String> = e
            .changes
            .iter()
            .filter(|c| c.source == "state" && c.state_change.as_deref() != Some("attempted"))
            .map(|c| format!("{} {}", c.action, c.address))
            .collect();
        // A state-changing command that changed nothing is not a change.
        if changed.is_empty() && f.kind != "terraform.state.delete" {
            return;
        }
        let Some(t) = f.time_ns else { return };
        let w = &self.change_window.window;
        if w.contains(t) {
            return;
        }
        let mut d = f.base_details(e);
        d.insert("local_time".into(), json!(w.local(t)));
        d.insert("window".into(), w.details());
        d.insert("changes".into(), json!(changed));
        fired.push(Alert {
            rule: "change_window".into(),
            severity: Severity::Warning,
            records: vec![e.index],
            summary: format!(
                "change in {} by {} at {}, outside the change window (record {}): {}",
                f.place,
                f.who,
                w.local(t),
                e.index,
                list(&changed)
            ),
            why: format!("changes are allowed {}", w.describe()),
            details: Value::Object(d),
            key: f.key("change_window", e.index, true),
        });
    }

    fn actor(&self, e: &Event, f: &Facts, fired: &mut Vec<Alert>) {
        let rule = &self.actors;
        if f.authenticated.as_deref() == Some("server") {
            return;
        }
        let why = match &f.authenticated {
            None if rule.require_authenticated => Some(format!(
                "self-asserted actor {}: records must carry an identity a team server authenticated (require_authenticated)",
                f.who
            )),
            _ if rule.allowed.is_empty() => None,
            Some(label) => (!rule.allowed.iter().any(|p| p.matches(label)))
                .then(|| format!("{label} is not on the allowed list")),
            None => {
                let user = &e.record.actor.user;
                let listed = rule
                    .allowed
                    .iter()
                    .filter(|p| !p.0.starts_with("token:") && !p.0.starts_with("oidc:"))
                    .any(|p| p.matches(user));
                (!listed).then(|| format!("user {user} (self-asserted) is not on the allowed list"))
            }
        };
        let Some(why_now) = why else { return };
        let mut d = f.base_details(e);
        d.insert("authenticated".into(), json!(f.authenticated));
        d.insert(
            "allowed".into(),
            json!(rule.allowed.iter().map(Pattern::as_str).collect::<Vec<_>>()),
        );
        d.insert(
            "require_authenticated".into(),
            json!(rule.require_authenticated),
        );
        fired.push(Alert {
            rule: "actors".into(),
            severity: Severity::Critical,
            records: vec![e.index],
            summary: format!(
                "{} by {} in {} (record {}): {why_now}",
                f.kind, f.who, f.place, e.index
            ),
            why: if rule.allowed.is_empty() {
                "rules.actors.require_authenticated is set".into()
            } else {
                format!(
                    "only {} may write records{}",
                    rule.allowed
                        .iter()
                        .map(Pattern::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    if rule.require_authenticated {
                        ", authenticated"
                    } else {
                        ""
                    }
                )
            },
            details: Value::Object(d),
            // One alert per run and actor.
            key: match f.intent {
                Some(i) => format!("actors:run:{i}:{}", f.who),
                None => format!("actors:{}", e.index),
            },
        });
    }

    fn denied_rate(
        &self,
        e: &Event,
        f: &Facts,
        memory: &mut RuleMemory,
        total: &mut u64,
        fired: &mut Vec<Alert>,
    ) {
        if f.kind != "server.access.denied" {
            return;
        }
        let Some(t) = f.time_ns else { return };
        let p = &e.record.payload;
        let count = p.get("count").and_then(Value::as_u64).unwrap_or(1);
        let source = text(p, "/source").unwrap_or("?").to_string();
        memory.denied_window(Some((t, count, source)), t, total);
        let total = *total;
        let max = self.denied.max_per_hour;
        if total <= max {
            memory.denied_over = false;
            return;
        }
        if memory.denied_over {
            return;
        }
        memory.denied_over = true;
        let mut by_source: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, c, s) in &memory.denied {
            let n = by_source.entry(s.as_str()).or_default();
            *n = n.saturating_add(*c);
        }
        let mut top: Vec<(&str, u64)> = by_source.iter().map(|(s, c)| (*s, *c)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = top.iter().map(|(s, c)| format!("{s} ({c})")).collect();
        let mut d = f.base_details(e);
        d.insert("refusals_last_hour".into(), json!(total));
        d.insert("max_per_hour".into(), json!(max));
        d.insert("by_source".into(), json!(by_source));
        d.insert(
            "reason".into(),
            p.get("reason").cloned().unwrap_or(Value::Null),
        );
        d.insert(
            "reasons".into(),
            p.get("reasons").cloned().unwrap_or(Value::Null),
        );
        fired.push(Alert {
            rule: "denied".into(),
            severity: Severity::Warning,
            records: vec![e.index],
            summary: format!(
                "{total} refused requests to the team server within an hour (record {}), from {}",
                e.index,
                list(&shown)
            ),
            why: format!(
                "more than {max} refusals an hour are watched (rules.denied.max_per_hour)"
            ),
            details: Value::Object(d),
            key: format!("denied:{}", e.index),
        });
    }
}

/// The commented `[rules.*]` part of `--example-config`.
pub const EXAMPLE: &str = r#"# Rules: each [rules.<name>] table may be left out (its defaults hold); `enabled = false`
# turns a rule off. Alerts name the rule, the records and why.

[rules.integrity]
# The log itself: verification failures, a rolled-back or forked checkpoint. Always exit 1.
enabled = true
# The checkpoint not advancing for longer than this is an alert ("90s", "30m", "2h", "1d").
# Default: off.
# stale_after = "1d"
# Only while runs are expected (default: always); same keys as [rules.change_window].
# runs_expected = { days = ["mon", "tue", "wed", "thu", "fri"], hours = "09:00-18:00", timezone = "UTC" }

[rules.out_of_band]
# A state write through the server's state backend outside a recorded run, and a run that
# finds a state other than the one the last recorded run or state write left.
enabled = true

[rules.unreviewed_apply]
# An apply of no saved plan, or of a saved plan tftrail did not record (one alert per run).
enabled = true
# Which operations: apply, destroy, import, refresh.
operations = ["apply"]

[rules.destroy]
# Deletes and replacements the state shows.
enabled = true
# Watched addresses; `*` matches any characters (default: empty, every resource).
resources = []
# resources = ["aws_s3_bucket.*", "*.prod_*"]
# More deletes than this in one record is an alert whatever the resources.
max_deletes = 10

[rules.failed_apply]
# A run that failed or was interrupted.
enabled = true
operations = ["apply", "destroy"]

[rules.change_window]
# State changes (runs that changed resources, state writes) outside these days and hours.
# Default: off.
enabled = false
days = ["mon", "tue", "wed", "thu", "fri"]
# From-until on a 24-hour clock (local time in `timezone`); "22:00-06:00" spans midnight.
hours = "09:00-18:00"
# An IANA time zone name (bundled database).
timezone = "UTC"

[rules.actors]
# Who may write records: "token:NAME" and "oidc:SUBJECT" match the identity a team server
# authenticated; anything else matches the self-asserted user of records no server
# authenticated. `*` matches any characters. Default: empty, anyone.
enabled = true
allowed = []
# allowed = ["token:ci", "oidc:repo:acme/*", "alice"]
# Records with no authenticated identity are an alert.
require_authenticated = false

[rules.denied]
# Requests the team server refused (server.access.denied records) above a rate.
enabled = true
# More refusals than this within any hour (one alert each time the rate crosses it).
max_per_hour = 20
"#;

#[cfg(test)]
mod tests;
