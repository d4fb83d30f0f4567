//! Trust policies in the C2SP tlog-policy format (the format Sigsum shares):
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> all|any|<k> <member>...
//! quorum <name>|none
//! ```
//!
//! Parsing follows the spec strictly: whitespace is spaces and tabs only; `#` starts a comment
//! line; the only control characters allowed are tab and newline; a group or the quorum may
//! only name witnesses and groups defined on earlier lines (so there are no cycles); each name
//! may be a group member at most once in the whole file; `none` is predefined and may only be
//! the quorum; there is exactly one quorum line; two logs (or two witnesses) with the same
//! public key are duplicates. Errors name the line and the problem.
//!
//! [`Policy::check`] evaluates the quorum over the valid cosignatures of a note; verifying the
//! log's own signature is the caller's business ([`Policy::open_checkpoint`] does it with the
//! policy's logs).

use base64::Engine as _;

use crate::checkpoint::{Checkpoint, CheckpointError, VerifierKey};
use crate::cosignature::{cosignatures, Cosigned, WitnessVerifier};

/// Limits well above the spec's recommended minimum of 32 of each.
const MAX_ENTITIES: usize = 256;

/// A policy that does not parse or does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A problem on one line (1-based).
    #[error("policy line {line}: {problem}")]
    Line {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A problem with the policy as a whole.
    #[error("policy: {0}")]
    Whole(String),
}

/// A log the policy trusts.
#[derive(Debug, Clone)]
pub struct PolicyLog {
    /// Its checkpoint verifier key (the key name is the origin).
    pub verifier: VerifierKey,
    /// Optional URL.
    pub url: Option<String>,
}

/// A witness the policy names.
#[derive(Debug, Clone)]
pub struct PolicyWitness {
    /// The name used in the policy (not necessarily the key name).
    pub name: String,
    /// Its cosignature/v1 verifier key.
    pub verifier: WitnessVerifier,
    /// Optional URL: the witness's submission prefix.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone)]
struct Group {
    #[allow(dead_code)] // kept for Debug output
    name: String,
    k: usize,
    members: Vec<Member>,
}

/// A parsed, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    /// `None` is `quorum none`.
    quorum: Option<Member>,
}

/// The outcome of [`Policy::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReport {
    /// Whether the quorum is met.
    pub satisfied: bool,
    /// The valid cosignatures by the policy's witnesses (one per witness).
    pub cosigned_by: Vec<Cosigned>,
    /// Policy names of the witnesses without a valid cosignature.
    pub missing: Vec<String>,
    /// One line for people: what was required and what was found.
    pub explanation: String,
}

impl Policy {
    /// Parses a policy file.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let mut b = Builder::default();
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            let err = |problem: String| PolicyError::Line { line, problem };
            if let Some(c) = raw.chars().find(|&c| c != '\t' && c.is_ascii_control()) {
                return Err(err(if c == '\r' {
                    "carriage return (CRLF line ending): the format allows only tab and newline as control characters".into()
                } else {
                    format!(
                        "control character 0x{:02x}: only tab and newline are allowed",
                        c as u32
                    )
                }));
            }
            let words: Vec<&str> = raw.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let Some((&keyword, args)) = words.split_first() else {
                continue;
            };
            if keyword.starts_with('#') {
                continue;
            }
            b.line(keyword, args).map_err(err)?;
        }
        b.finish()
    }

    /// The CLI shorthand `--witness VKEY … --min-witnesses N`: a group of the given witnesses
    /// of which `min` must cosign (`min` 0 is `quorum none`). No logs are listed.
    pub fn from_witnesses(vkeys: &[String], min: usize) -> Result<Policy, PolicyError> {
        let mut b = Builder::default();
        let mut names = Vec::new();
        for (i, vkey) in vkeys.iter().enumerate() {
            let v = WitnessVerifier::parse(vkey)
                .map_err(|e| PolicyError::Whole(format!("--witness #{}: {e}", i + 1)))?;
            // Policy names must be unique; key names usually are, else number them.
            let mut name = v.name().to_string();
            if name == "none" || names.contains(&name) {
                name = format!("{name}#{}", i + 1);
            }
            b.add_witness(&name, v, None)
                .map_err(|e| PolicyError::Whole(format!("--witness #{}: {e}", i + 1)))?;
            names.push(name);
        }
        if min > names.len() {
            return Err(PolicyError::Whole(format!(
                "--min-witnesses {min} exceeds the {} witness key(s) given with --witness",
                names.len()
            )));
        }
        if min == 0 {
            b.quorum = Some(None);
        } else {
            let members: Vec<&str> = names.iter().map(String::as_str).collect();
            let k = min.to_string();
            let mut args = vec!["--witness", k.as_str()];
            args.extend(members);
            b.line("group", &args).map_err(PolicyError::Whole)?;
            b.line("quorum", &["--witness"])
                .map_err(PolicyError::Whole)?;
        }
        b.finish()
    }

    /// The logs the policy lists (possibly none).
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The witnesses the policy lists.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// Whether the quorum is `none` (no cosignature required).
    pub fn requires_nothing(&self) -> bool {
        self.quorum.is_none()
    }

    /// Human-readable quorum rule, e.g. `2 of (w1, w2, w3)`.
    pub fn describe_quorum(&self) -> String {
        match self.quorum {
            None => "none (no cosignatures required)".into(),
            Some(m) => self.describe(m),
        }
    }

    fn describe(&self, m: Member) -> String {
        match m {
            Member::Witness(i) => self.witnesses[i].name.clone(),
            Member::Group(g) => {
                let g = &self.groups[g];
                let inner: Vec<String> = g.members.iter().map(|&m| self.describe(m)).collect();
                format!("{} of ({})", g.k, inner.join(", "))
            }
        }
    }

    /// Verifies a checkpoint's log signature with any of the policy's logs.
    pub fn open_checkpoint(&self, note: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let mut last = None;
        for log in &self.logs {
            match log.verifier.open_checkpoint(note) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            CheckpointError::Malformed("the witness policy lists no log keys".into())
        }))
    }

    /// Evaluates the quorum over the valid cosignatures on `note` by the policy's witnesses.
    /// `quorum none` is always satisfied. A witness counts once however many lines it signed.
    pub fn check(&self, note: &[u8]) -> QuorumReport {
        let verifiers: Vec<WitnessVerifier> =
            self.witnesses.iter().map(|w| w.verifier.clone()).collect();
        let found = cosignatures(note, &verifiers);
        let signed: Vec<bool> = self
            .witnesses
            .iter()
            .map(|w| {
                found
                    .iter()
                    .any(|c| c.name == w.verifier.name() && c.key_id == w.verifier.key_id())
            })
            .collect();
        let missing: Vec<String> = self
            .witnesses
            .iter()
            .zip(&signed)
            .filter(|(_, s)| !**s)
            .map(|(w, _)| w.name.clone())
            .collect();
        let have: Vec<&str> = self
            .witnesses
            .iter()
            .zip(&signed)
            .filter(|(_, s)| **s)
            .map(|(w, _)| w.name.as_str())
            .collect();
        let (satisfied, explanation) = match self.quorum {
            None => (true, "quorum none: no cosignatures required".to_string()),
            Some(m) => {
                let ok = self.eval(m, &signed);
                let cosigned = if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                };
                let verdict = if ok { "met" } else { "not met" };
                (
                    ok,
                    format!(
                        "witness quorum {verdict}: requires {}; valid cosignatures from: {cosigned}",
                        self.describe(m)
                    ),
                )
            }
        };
        QuorumReport {
            satisfied,
            cosigned_by: found,
            missing,
            explanation,
        }
    }

    fn eval(&self, m: Member, signed: &[bool]) -> bool {
        match m {
            Member::Witness(i) => signed[i],
            Member::Group(g) => {
                let g = &self.groups[g];
                g.members.iter().filter(|&&m| self.eval(m, signed)).count() >= g.k
            }
        }
    }
}

#[derive(Default)]
struct Builder {
    logs: Vec<PolicyLog>,
    log_keys: Vec<Vec<u8>>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    /// Every defined name (witnesses and groups share one namespace).
    names: Vec<(String, Member)>,
    /// Names already used as a group member, with the group that used them.
    used: Vec<(String, String)>,
    /// `Some(None)` = `quorum none`.
    quorum: Option<Option<Member>>,
}

impl Builder {
    fn line(&mut self, keyword: &str, args: &[&str]) -> Result<(), String> {
        match keyword {
            "log" => {
                let (vkey, url) = match args {
                    [v] => (*v, None),
                    [v, u] => (*v, Some(u.to_string())),
                    _ => return Err("expected `log <vkey> [<url>]`".into()),
                };
                let verifier = VerifierKey::parse(vkey).map_err(|e| format!("log key: {e}"))?;
                let raw = vkey_material(vkey);
                if self.log_keys.contains(&raw) {
                    return Err(format!(
                        "duplicate log: the public key of {} is already listed",
                        verifier.display_id()
                    ));
                }
                if self.logs.len() >= MAX_ENTITIES {
                    return Err(format!("more than {MAX_ENTITIES} logs"));
                }
                self.log_keys.push(raw);
                self.logs.push(PolicyLog { verifier, url });
                Ok(())
            }
            "witness" => {
                let (name, vkey, url) = match args {
                    [n, v] => (*n, *v, None),
                    [n, v, u] => (*n, *v, Some(u.to_string())),
                    _ => return Err("expected `witness <name> <vkey> [<url>]`".into()),
                };
                let v = WitnessVerifier::parse(vkey).map_err(|e| format!("witness {name}: {e}"))?;
                self.add_witness(name, v, url)
            }
            "group" => {
                let [name, k, members @ ..] = args else {
                    return Err("expected `group <name> all|any|<k> <member>...`".into());
                };
                self.check_new_name(name)?;
                if members.is_empty() {
                    return Err(format!("group {name} has no members"));
                }
                let n = members.len();
                let k = match *k {
                    "all" => n,
                    "any" => 1,
                    k if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => {
                        match k.parse::<usize>() {
                            Ok(k) if (1..=n).contains(&k) => k,
                            _ => {
                                return Err(format!(
                                "group {name}: threshold {k} is out of range: it must be 1 to {n} (the number of members)"
                            ))
                            }
                        }
                    }
                    k => {
                        return Err(format!(
                        "group {name}: threshold {k:?} must be `all`, `any` or a decimal number"
                    ))
                    }
                };
                let mut resolved = Vec::with_capacity(n);
                for m in members.iter() {
                    if *m == "none" {
                        return Err(format!(
                            "group {name}: `none` cannot be a group member (only the quorum)"
                        ));
                    }
                    let Some(member) = self.lookup(m) else {
                        return Err(format!(
                            "group {name}: member {m} is not defined on an earlier line (define witnesses and groups before the groups that use them)"
                        ));
                    };
                    if let Some((_, by)) = self.used.iter().find(|(u, _)| u == m) {
                        return Err(if by == name {
                            format!("group {name}: member {m} is listed twice")
                        } else {
                            format!(
                                "group {name}: {m} is already a member of group {by}; a name may be a group member only once"
                            )
                        });
                    }
                    self.used.push((m.to_string(), name.to_string()));
                    resolved.push(member);
                }
                if self.groups.len() >= MAX_ENTITIES {
                    return Err(format!("more than {MAX_ENTITIES} groups"));
                }
                let idx = self.groups.len();
                self.groups.push(Group {
                    name: name.to_string(),
                    k,
                    members: resolved,
                });
                self.names.push((name.to_string(), Member::Group(idx)));
                Ok(())
            }
            "quorum" => {
                let [name] = args else {
                    return Err("expected `quorum <name>`".into());
                };
                if self.quorum.is_some() {
                    return Err("a second quorum line: a policy has exactly one".into());
                }
                if *name == "none" {
                    self.quorum = Some(None);
                    return Ok(());
                }
                let Some(m) = self.lookup(name) else {
                    return Err(format!(
                        "quorum {name}: no witness or group of that name is defined on an earlier line"
                    ));
                };
                self.quorum = Some(Some(m));
                Ok(())
            }
            other => Err(format!(
                "unknown keyword {other:?}: expected log, witness, group or quorum"
            )),
        }
    }

    fn add_witness(
        &mut self,
        name: &str,
        v: WitnessVerifier,
        url: Option<String>,
    ) -> Result<(), String> {
        self.check_new_name(name)?;
        if let Some(w) = self
            .witnesses
            .iter()
            .find(|w| w.verifier.public_key() == v.public_key())
        {
            return Err(format!(
                "duplicate witness: {name} has the same public key as {}",
                w.name
            ));
        }
        if self.witnesses.len() >= MAX_ENTITIES {
            return Err(format!("more than {MAX_ENTITIES} witnesses"));
        }
        let idx = self.witnesses.len();
        self.witnesses.push(PolicyWitness {
            name: name.to_string(),
            verifier: v,
            url,
        });
        self.names.push((name.to_string(), Member::Witness(idx)));
        Ok(())
    }

    fn check_new_name(&self, name: &str) -> Result<(), String> {
        if name == "none" {
            return Err("`none` is predefined and cannot be redefined".into());
        }
        if self.lookup(name).is_some() {
            return Err(format!(
                "duplicate name {name}: witnesses and groups share one namespace"
            ));
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<Member> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, m)| *m)
    }

    fn finish(self) -> Result<Policy, PolicyError> {
        let Some(quorum) = self.quorum else {
            return Err(PolicyError::Whole(
                "no quorum line: add `quorum <name>`, or `quorum none` to require no cosignatures"
                    .into(),
            ));
        };
        Ok(Policy {
            logs: self.logs,
            witnesses: self.witnesses,
            groups: self.groups,
            quorum,
        })
    }
}

/// The public-key bytes a vkey wraps (base64 part after the second '+'), for duplicates.
fn vkey_material(vkey: &str) -> Vec<u8> {
    let b64 = vkey.splitn(3, '+').nth(2).unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_default()
        .get(1..)
        .unwrap_or_default()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Origin, SigningKey};
    use crate::cosignature::{add_signatures, note_text, WitnessKey};
    use crate::merkle::leaf_hash;

    struct Fixture {
        log: SigningKey,
        note: Vec<u8>,
        keys: Vec<WitnessKey>,
    }

    fn fixture(n: usize) -> Fixture {
        let origin = Origin::new("example.com/audit").unwrap();
        let log = SigningKey::generate(&origin);
        let note = log.sign_checkpoint(&Checkpoint {
            origin: origin.as_str().into(),
            size: 5,
            root: leaf_hash(b"r"),
        });
        let keys = (0..n)
            .map(|i| WitnessKey::generate(&format!("w{i}.example")).unwrap())
            .collect();
        Fixture { log, note, keys }
    }

    impl Fixture {
        /// The note cosigned by the witnesses with these indices.
        fn cosigned(&self, by: &[usize]) -> Vec<u8> {
            let text = note_text(&self.note).unwrap();
            let lines: Vec<Vec<u8>> = by
                .iter()
                .map(|&i| self.keys[i].cosign(&text, 100))
                .collect();
            add_signatures(&self.note, &lines).unwrap()
        }
        fn vk(&self, i: usize) -> String {
            self.keys[i].verifier_key()
        }
    }

    fn line_err(text: &str) -> (usize, String) {
        match Policy::parse(text) {
            Err(PolicyError::Line { line, problem }) => (line, problem),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_spec_example_and_evaluates_nested_groups() {
        let f = fixture(6);
        let text = format!(
            "# example from C2SP tlog-policy\nlog {} https://log.example/\n\n\
             witness X1 {}\nwitness X2 {}\n  witness\tX3 {} https://x3.example/\ngroup X-witnesses 2 X1 X2 X3\n\n\
             witness Y1 {}\nwitness Y2 {}\nwitness Y3 {}\ngroup Y-witnesses any Y1 Y2 Y3\n\n\
             group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n",
            f.log.verifier_key(),
            f.vk(0),
            f.vk(1),
            f.vk(2),
            f.vk(3),
            f.vk(4),
            f.vk(5)
        );
        let p = Policy::parse(&text).unwrap();
        assert_eq!(p.logs().len(), 1);
        assert_eq!(p.logs()[0].url.as_deref(), Some("https://log.example/"));
        assert_eq!(p.witnesses().len(), 6);
        assert_eq!(p.witnesses()[2].url.as_deref(), Some("https://x3.example/"));
        assert_eq!(p.witnesses()[0].url, None);
        p.open_checkpoint(&f.note).unwrap();

        // 2 of X and 1 of Y: met.
        let r = p.check(&f.cosigned(&[0, 2, 4]));
        assert!(r.satisfied, "{}", r.explanation);
        assert_eq!(r.cosigned_by.len(), 3);
        assert_eq!(r.missing, vec!["X2", "Y1", "Y3"]);
        // Only 1 of X: not met, and the explanation says what was required.
        let r = p.check(&f.cosigned(&[0, 3, 4, 5]));
        assert!(!r.satisfied);
        assert!(r.explanation.contains("not met"), "{}", r.explanation);
        assert!(
            r.explanation.contains("2 of (X1, X2, X3)"),
            "{}",
            r.explanation
        );
        // All X, no Y: not met.
        assert!(!p.check(&f.cosigned(&[0, 1, 2])).satisfied);
        // Nothing.
        assert!(!p.check(&f.note).satisfied);
    }

    #[test]
    fn single_witness_quorum_and_none() {
        let f = fixture(2);
        let p = Policy::parse(&format!("witness a {}\nquorum a\n", f.vk(0))).unwrap();
        assert!(p.check(&f.cosigned(&[0])).satisfied);
        assert!(
            !p.check(&f.cosigned(&[1])).satisfied,
            "an unknown witness does not count"
        );
        let none = Policy::parse("quorum none\n").unwrap();
        assert!(none.requires_nothing());
        assert!(none.check(&f.note).satisfied);
        assert!(none.check(b"garbage").satisfied);
        // No trailing newline is fine.
        assert!(Policy::parse("quorum none").is_ok());
    }

    #[test]
    fn a_witness_counts_once() {
        let f = fixture(2);
        let p = Policy::parse(&format!(
            "witness a {}\nwitness b {}\ngroup g 2 a b\nquorum g\n",
            f.vk(0),
            f.vk(1)
        ))
        .unwrap();
        // Two lines by witness a (hand-appended, different times) are not two witnesses.
        let text = note_text(&f.note).unwrap();
        let mut doubled = f.note.clone();
        doubled.extend_from_slice(&f.keys[0].cosign(&text, 1));
        doubled.extend_from_slice(&f.keys[0].cosign(&text, 2));
        let r = p.check(&doubled);
        assert!(!r.satisfied);
        assert_eq!(r.cosigned_by.len(), 1);
        assert!(p.check(&f.cosigned(&[0, 1])).satisfied);
    }

    #[test]
    fn a_tampered_cosignature_does_not_count() {
        let f = fixture(1);
        let p = Policy::from_witnesses(&[f.vk(0)], 1).unwrap();
        let good = f.cosigned(&[0]);
        assert!(p.check(&good).satisfied);
        // Flip a byte of the witness's signature (the last base64 char before the newline).
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 3] = if bad[n - 3] == b'A' { b'B' } else { b'A' };
        assert!(!p.check(&bad).satisfied);
    }

    #[test]
    fn shorthand() {
        let f = fixture(3);
        let vks: Vec<String> = (0..3).map(|i| f.vk(i)).collect();
        let p = Policy::from_witnesses(&vks, 2).unwrap();
        assert_eq!(p.witnesses().len(), 3);
        assert!(!p.check(&f.cosigned(&[1])).satisfied);
        assert!(p.check(&f.cosigned(&[1, 2])).satisfied);
        assert!(Policy::from_witnesses(&vks, 0).unwrap().requires_nothing());
        assert!(
            Policy::from_witnesses(&[], 0)
                .unwrap()
                .check(&f.note)
                .satisfied
        );
        let e = Policy::from_witnesses(&vks, 4).unwrap_err().to_string();
        assert!(e.contains("--min-witnesses 4"), "{e}");
        let e = Policy::from_witnesses(&[f.log.verifier_key().to_string()], 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("0x04"), "{e}");
        // The same key twice is a duplicate.
        assert!(Policy::from_witnesses(&[f.vk(0), f.vk(0)], 1).is_err());
    }

    #[test]
    fn parse_errors_name_line_and_problem() {
        let f = fixture(3);
        let (a, b) = (f.vk(0), f.vk(1));
        let log = f.log.verifier_key().to_string();
        let cases: Vec<(String, usize, &str)> = vec![
            (
                format!("witness a {a}\nfrobnicate a\nquorum a\n"),
                2,
                "unknown keyword",
            ),
            (
                format!("witness a {a}\nwitness a {b}\nquorum a\n"),
                2,
                "duplicate name",
            ),
            (
                format!("witness a {a}\nwitness b {a}\nquorum a\n"),
                2,
                "same public key",
            ),
            (
                format!("log {log}\nlog {log}\nquorum none\n"),
                2,
                "duplicate log",
            ),
            (
                format!("witness a {a}\ngroup g 2 a\nquorum g\n"),
                2,
                "out of range",
            ),
            (
                format!("witness a {a}\ngroup g 0 a\nquorum g\n"),
                2,
                "out of range",
            ),
            (
                format!("witness a {a}\ngroup g two a\nquorum g\n"),
                2,
                "decimal",
            ),
            (
                format!("witness a {a}\ngroup g any\nquorum g\n"),
                2,
                "no members",
            ),
            (
                format!("witness a {a}\ngroup g any a b\nwitness b {b}\nquorum g\n"),
                2,
                "earlier line",
            ),
            (
                format!("witness a {a}\ngroup g any a a\nquorum g\n"),
                2,
                "listed twice",
            ),
            (
                format!("witness a {a}\ngroup g any a\ngroup h any a\nquorum g\n"),
                3,
                "already a member of group g",
            ),
            (
                format!("witness a {a}\ngroup g any g\nquorum g\n"),
                2,
                "earlier line",
            ),
            (
                format!("witness a {a}\ngroup g any none\nquorum g\n"),
                2,
                "`none`",
            ),
            (format!("witness none {a}\nquorum none\n"), 1, "predefined"),
            (format!("quorum b\nwitness b {b}\n"), 1, "earlier line"),
            (
                format!("witness a {a}\nquorum a\nquorum a\n"),
                3,
                "exactly one",
            ),
            (format!("witness a {log}\nquorum a\n"), 1, "0x04"),
            (format!("log {a}\nquorum none\n"), 1, "log key"),
            ("witness a\nquorum none\n".into(), 1, "expected `witness"),
            (
                format!("witness a {a} http://x extra\nquorum a\n"),
                1,
                "expected `witness",
            ),
            (format!("witness a {a}\r\nquorum a\n"), 1, "carriage return"),
            ("quorum none\n\u{7}\n".into(), 2, "control character"),
        ];
        for (text, want_line, want) in cases {
            let (line, problem) = line_err(&text);
            assert_eq!(line, want_line, "{text:?}: {problem}");
            assert!(
                problem.contains(want),
                "{text:?}: {problem} (want {want:?})"
            );
        }
        let e = Policy::parse(&format!("witness a {a}\n# quorum a\n")).unwrap_err();
        assert!(matches!(e, PolicyError::Whole(_)));
        assert!(e.to_string().contains("no quorum line"), "{e}");
        // A group can use a group defined earlier; k written with digits.
        let c = f.vk(2);
        let p = Policy::parse(&format!(
            "witness a {a}\nwitness b {b}\nwitness c {c}\ngroup ab 1 a b\ngroup top 2 ab c\nquorum top\n"
        ))
        .unwrap();
        assert!(p.check(&f.cosigned(&[1, 2])).satisfied);
        assert!(!p.check(&f.cosigned(&[0, 1])).satisfied);
        assert_eq!(p.describe_quorum(), "2 of (1 of (a, b), c)");
    }

    /// Every single-byte change of a valid policy and cosigned note: no panic, and an
    /// altered note is never judged cosigned by a witness whose line was altered.
    #[test]
    fn mutations_never_panic() {
        let f = fixture(2);
        let text = format!(
            "log {}\nwitness a {}\nwitness b {}\ngroup g 2 a b\nquorum g\n",
            f.log.verifier_key(),
            f.vk(0),
            f.vk(1)
        );
        let p = Policy::parse(&text).unwrap();
        let note = f.cosigned(&[0, 1]);
        assert!(p.check(&note).satisfied);
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for b in [b' ', b'\t', b'\n', b'#', b'0', b'+', 0x80, 0x01] {
                let mut m = bytes.to_vec();
                m[i] = b;
                if let Ok(t) = std::str::from_utf8(&m) {
                    let _ = Policy::parse(t);
                }
            }
        }
        let body_len = note_text(&note).unwrap().len();
        for i in 0..note.len() {
            let mut m = note.clone();
            m[i] ^= 0x01;
            let r = p.check(&m);
            if i < body_len {
                assert!(!r.satisfied, "body byte {i} altered, still cosigned");
            }
            let _ = add_signatures(&m, &[m.clone()]);
        }
    }
}
