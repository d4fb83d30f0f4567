//! Turning records into text for people.

use tftrail_core::record::Record;

/// One line for `tftrail log`.
pub fn line(index: u64, r: &Record) -> String {
    format!(
        "{index:>6}  {}  {:<24} {}@{}  {}",
        r.time,
        r.kind,
        r.actor.user,
        r.actor.host,
        summary(r)
    )
}

/// A short summary of the payload.
pub fn summary(r: &Record) -> String {
    let p = &r.payload;
    let mut parts = Vec::new();
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
    s.push_str(&format!("actor:   {}@{}", r.actor.user, r.actor.host));
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
