//! Differential tests: the single-pass decoder against the original decoder (parse with
//! serde_json, validate, re-encode with serde_json_canonicalizer, compare), kept here verbatim
//! as the reference. Every input must get the same verdict from both: the same record, or the
//! same error (variant and message). Inputs: generated records (random payloads with nested
//! containers, strings with control, astral and other awkward characters, numbers of many
//! shapes, valid and invalid fields), written canonically and with one deliberate deviation
//! (whitespace, member order, duplicate, missing or unknown members, other escapes, other
//! number forms, objects written as arrays), then byte-level mutations of those.
//!
//! `TFTRAIL_EQUIVALENCE_CASES` scales the number of generated records (default 6,000; each
//! yields several inputs); `TFTRAIL_EQUIVALENCE_SEED` changes the generated inputs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::differential::check;
use super::*;

/// `validate_time` as it was, verbatim (the reference decoder above calls the current one).
fn reference_validate_time(t: &str) -> Result<(), RecordError> {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let mut ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b.last() == Some(&b'Z');
    if ok && b.len() > 20 {
        ok = b[19] == b'.' && b.len() > 21 && digits(20..b.len() - 1);
    }
    if ok {
        let num = |r: std::ops::Range<usize>| t[r].parse::<u32>().unwrap_or(99);
        ok = (1..=12).contains(&num(5..7))
            && (1..=31).contains(&num(8..10))
            && num(11..13) < 24
            && num(14..16) < 60
            && num(17..19) < 61;
    }
    if ok {
        Ok(())
    } else {
        Err(RecordError::BadTime(t.to_string()))
    }
}

/// SplitMix64: small, deterministic, good enough to drive generators.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------
// Generators.

const AWKWARD: &[char] = &[
    'a',
    'b',
    'z',
    'A',
    'Z',
    '0',
    '9',
    ' ',
    '"',
    '\\',
    '/',
    '\u{0}',
    '\u{1}',
    '\u{8}',
    '\t',
    '\n',
    '\u{b}',
    '\u{c}',
    '\r',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    'é',
    '\u{ff}',
    '€',
    '\u{2028}',
    '\u{2029}',
    '\u{d7ff}',
    '\u{e000}',
    '\u{fffd}',
    '\u{ffff}',
    '😀',
    '\u{10000}',
    '\u{10ffff}',
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
];

fn gen_string(rng: &mut Rng, max: usize) -> String {
    let n = rng.below(max + 1);
    let mut s = String::new();
    for _ in 0..n {
        if rng.chance(3) {
            s.push(*rng.pick(AWKWARD));
        } else if rng.chance(20) {
            // Any scalar value.
            let c = loop {
                if let Some(c) = char::from_u32((rng.next() % 0x11_0000) as u32) {
                    break c;
                }
            };
            s.push(c);
        } else {
            s.push(char::from(b'a' + rng.below(26) as u8));
        }
    }
    s
}

const KEYS: &[&str] = &[
    "",
    "a",
    "b",
    "aa",
    "ab",
    "A",
    "é",
    "\u{e000}",
    "😀",
    "\n",
    "\"",
    "authenticated",
    "by",
    "ci",
    "host",
    "user",
    "v",
    "kind",
    "name",
    "size",
    "x\u{1}",
    "\u{ffff}",
    "\u{10000}",
];

fn gen_key(rng: &mut Rng) -> String {
    if rng.chance(2) {
        rng.pick(KEYS).to_string()
    } else {
        gen_string(rng, 6)
    }
}

fn gen_f64(rng: &mut Rng) -> f64 {
    loop {
        let x = match rng.below(9) {
            0 => f64::from_bits(rng.next()),
            1 => (rng.next() % 100_000) as f64 / 10f64.powi(rng.below(8) as i32),
            2 => -((rng.next() % 1000) as f64) / 8.0,
            3 => 2f64.powi(rng.below(70) as i32) + (rng.below(5) as f64 - 2.0),
            4 => 10f64.powi(rng.below(60) as i32 - 30),
            5 => f64::from_bits(rng.next() % 10_000), // subnormals
            6 => (rng.next() as f64) * 1e10,
            7 => *rng.pick(&[
                0.0,
                -0.0,
                0.1,
                0.2,
                0.30000000000000004,
                1e21,
                1e-7,
                1e-6,
                123e-20,
            ]),
            _ => rng.next() as f64 / u64::MAX as f64,
        };
        if x.is_finite() {
            return x;
        }
    }
}

fn gen_number(rng: &mut Rng) -> Number {
    match rng.below(6) {
        0 => Number::from(rng.next() % 1000),
        1 => Number::from(rng.next() >> rng.below(64)),
        2 => Number::from(-((rng.next() >> (1 + rng.below(63))) as i64)),
        3 => Number::from(rng.next()),
        _ => Number::from_f64(gen_f64(rng)).expect("finite"),
    }
}

fn gen_value(rng: &mut Rng, depth: usize) -> Value {
    let leaf = depth == 0 || rng.chance(3);
    match rng.below(if leaf { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => Value::Number(gen_number(rng)),
        3 | 4 => Value::String(gen_string(rng, 12)),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| gen_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(gen_object(rng, depth - 1)),
    }
}

fn gen_object(rng: &mut Rng, depth: usize) -> Map<String, Value> {
    (0..rng.below(5))
        .map(|_| (gen_key(rng), gen_value(rng, depth)))
        .collect()
}

fn gen_kind(rng: &mut Rng) -> String {
    if rng.chance(12) {
        return rng
            .pick(&[
                "",
                "Bad",
                "has space",
                "-lead",
                ".lead",
                "quote\"",
                "tab\t",
                "é",
                "a\u{0}",
            ])
            .to_string();
    }
    const CH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789._-";
    let n = if rng.chance(20) {
        64 + rng.below(2)
    } else {
        1 + rng.below(20)
    };
    let mut s = String::from(char::from(CH[rng.below(36)]));
    while s.len() < n {
        s.push(char::from(*rng.pick(CH)));
    }
    s
}

fn gen_time(rng: &mut Rng) -> String {
    if rng.chance(12) {
        return rng
            .pick(&[
                "",
                "2026-11-26 05:00:00Z",
                "2026-13-26T05:00:00Z",
                "2026-11-26T24:00:00Z",
                "2026-11-26T05:00:00",
                "2026-11-26T05:00:00.Z",
                "2026-11-26T05:00:00+01:00",
                "2026-11-26T05:00:00\u{0}Z",
            ])
            .to_string();
    }
    let mut t = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        1970 + rng.below(100),
        1 + rng.below(12),
        1 + rng.below(31),
        rng.below(24),
        rng.below(60),
        rng.below(61)
    );
    if rng.chance(2) {
        t.push('.');
        for _ in 0..1 + rng.below(9) {
            t.push(char::from(b'0' + rng.below(10) as u8));
        }
    }
    t.push('Z');
    t
}

/// An `actor.authenticated` of one of the shapes the team server writes.
fn gen_authenticated(rng: &mut Rng) -> Value {
    match rng.below(3) {
        0 => serde_json::json!({
            "by": "token",
            "name": gen_string(rng, 12),
            "role": rng.pick(&["reader", "writer", "admin"]),
            "token": "0123456789abcdef",
        }),
        1 => {
            let mut m = Map::new();
            m.insert("by".into(), "oidc".into());
            m.insert(
                "issuer".into(),
                "https://token.actions.githubusercontent.com".into(),
            );
            m.insert("subject".into(), gen_string(rng, 30).into());
            m.insert("role".into(), "writer".into());
            for claim in ["repository", "ref", "workflow", "run_id", "actor"] {
                if rng.chance(2) {
                    m.insert(claim.into(), gen_string(rng, 12).into());
                }
            }
            Value::Object(m)
        }
        _ => serde_json::json!({"by": "server"}),
    }
}

fn gen_record(rng: &mut Rng) -> Record {
    let blobs = if rng.chance(3) {
        (0..1 + rng.below(3))
            .map(|_| BlobRef {
                name: if rng.chance(15) {
                    String::new()
                } else {
                    gen_string(rng, 10)
                },
                sha256: if rng.chance(15) {
                    rng.pick(&["", "ABCDEF", "g", "0"])
                        .repeat(if rng.chance(2) { 64 } else { 1 })
                } else {
                    (0..64)
                        .map(|_| char::from(*rng.pick(b"0123456789abcdef")))
                        .collect()
                },
                size: if rng.chance(2) {
                    rng.next() % 100_000
                } else {
                    rng.next() >> rng.below(64)
                },
            })
            .collect()
    } else {
        Vec::new()
    };
    Record {
        v: if rng.chance(25) {
            *rng.pick(&[0, 2, 7, u32::MAX])
        } else {
            SCHEMA_VERSION
        },
        kind: gen_kind(rng),
        time: gen_time(rng),
        actor: Actor {
            authenticated: match rng.below(6) {
                0 => Some(Value::Object(gen_object(rng, 3))),
                1 => Some(gen_authenticated(rng)),
                // Not an object, or null (omitted when None, never written as null).
                2 if rng.chance(3) => Some(gen_value(rng, 1)),
                _ => None,
            },
            user: gen_string(rng, 10),
            host: gen_string(rng, 10),
            ci: match rng.below(4) {
                0 => Some(gen_value(rng, 3)),
                1 if rng.chance(4) => Some(Value::Null),
                _ => None,
            },
        },
        payload: if rng.chance(15) {
            gen_value(rng, 2)
        } else {
            let depth = 1 + rng.below(5);
            Value::Object(gen_object(rng, depth))
        },
        blobs,
    }
}

// ---------------------------------------------------------------------------------------
// A JSON writer that writes the canonical form, or deviates from it at one chosen site.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Deviation {
    None,
    /// Whitespace (or a character serde_json does not take for whitespace) between tokens.
    Space,
    /// Two adjacent members swapped.
    Swap,
    /// Members in UTF-8 byte order instead of UTF-16 order.
    Utf8Order,
    /// A member written twice.
    Duplicate,
    /// A member left out.
    Drop,
    /// A member name changed (unknown field, or another valid payload name).
    Rename,
    /// An object written as an array of its values (serde accepts structs that way).
    AsArray,
    /// A character of a string written with another escape.
    Escape,
    /// A number written in another form.
    NumberForm,
    /// A value replaced by a value of another type.
    Retype,
}

const DEVIATIONS: &[Deviation] = &[
    Deviation::Space,
    Deviation::Swap,
    Deviation::Utf8Order,
    Deviation::Duplicate,
    Deviation::Drop,
    Deviation::Rename,
    Deviation::AsArray,
    Deviation::Escape,
    Deviation::NumberForm,
    Deviation::Retype,
];

struct Writer<'r> {
    rng: &'r mut Rng,
    dev: Deviation,
    /// Sites of `dev` seen so far.
    sites: usize,
    /// The site at which to deviate.
    target: usize,
    out: String,
}

impl Writer<'_> {
    /// Whether to deviate here (a site of the chosen kind).
    fn site(&mut self, kind: Deviation) -> bool {
        if kind != self.dev {
            return false;
        }
        self.sites += 1;
        self.sites - 1 == self.target
    }

    fn space(&mut self) {
        if self.site(Deviation::Space) {
            let ws = *self.rng.pick(&[
                " ", "\t", "\n", "\r", "  ", "\u{b}", "\u{c}", "\u{a0}", "\u{2028}",
            ]);
            self.out.push_str(ws);
        }
    }

    fn value(&mut self, v: &Value) {
        self.space();
        if self.site(Deviation::Retype) {
            let alt = match v {
                Value::Null => "0",
                Value::Bool(_) => "null",
                Value::Number(_) => "\"1\"",
                Value::String(_) => "1",
                Value::Array(_) => "{}",
                Value::Object(_) => "[]",
            };
            self.out.push_str(alt);
        } else {
            match v {
                Value::Null => self.out.push_str("null"),
                Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
                Value::Number(n) => self.number(n),
                Value::String(s) => self.string(s),
                Value::Array(a) => {
                    self.out.push('[');
                    for (i, x) in a.iter().enumerate() {
                        if i > 0 {
                            self.space();
                            self.out.push(',');
                        }
                        self.value(x);
                    }
                    self.space();
                    self.out.push(']');
                }
                Value::Object(o) => self.object(o),
            }
        }
        self.space();
    }

    fn object(&mut self, o: &Map<String, Value>) {
        let mut members: Vec<(String, &Value)> = o.iter().map(|(k, v)| (k.clone(), v)).collect();
        members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        if members.len() >= 2 && self.site(Deviation::Swap) {
            let i = self.rng.below(members.len() - 1);
            members.swap(i, i + 1);
        }
        if members.len() >= 2 && self.site(Deviation::Utf8Order) {
            members.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if !members.is_empty() && self.site(Deviation::Duplicate) {
            let i = self.rng.below(members.len());
            let dup = members[i].clone();
            members.insert(i, dup);
        }
        if !members.is_empty() && self.site(Deviation::Drop) {
            members.remove(self.rng.below(members.len()));
        }
        if !members.is_empty() && self.site(Deviation::Rename) {
            let i = self.rng.below(members.len());
            let suffix = *self.rng.pick(&["x", "", "\u{0}", "A"]);
            members[i].0 = format!("{}{suffix}", members[i].0);
            if suffix.is_empty() {
                members[i].0.insert(0, 'z');
            }
        }
        if self.site(Deviation::AsArray) {
            let arr: Vec<Value> = members.iter().map(|m| m.1.clone()).collect();
            self.value(&Value::Array(arr));
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in members.iter().enumerate() {
            if i > 0 {
                self.space();
                self.out.push(',');
            }
            self.space();
            self.string(k);
            self.space();
            self.out.push(':');
            self.value(v);
        }
        self.space();
        self.out.push('}');
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            if self.site(Deviation::Escape) {
                let mut units = [0u16; 2];
                let alt = match self.rng.below(6) {
                    0 if c == '/' => "\\/".to_string(),
                    1 => c
                        .encode_utf16(&mut units)
                        .iter()
                        .map(|u| format!("\\u{u:04X}"))
                        .collect(),
                    2 => c
                        .encode_utf16(&mut units)
                        .iter()
                        .map(|u| format!("\\u{u:04x}"))
                        .collect(),
                    // A lone surrogate next to the character.
                    3 => format!("{}{c}", self.rng.pick(&["\\ud800", "\\udc00", "\\uDBFF"])),
                    // The character raw, even where it must be escaped.
                    4 => c.to_string(),
                    _ => format!("\\{c}"),
                };
                self.out.push_str(&alt);
                continue;
            }
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn number(&mut self, n: &Number) {
        let canon = serde_json_canonicalizer::to_string(n).expect("finite");
        if !self.site(Deviation::NumberForm) {
            self.out.push_str(&canon);
            return;
        }
        let x = n.as_f64().expect("a number");
        let alt = match self.rng.below(13) {
            0 => format!("{x}"),
            1 => format!("{x:e}"),
            2 => format!("{x:?}"),
            3 => format!("{x:.17e}"),
            4 => format!("{x:E}"),
            5 => format!("{canon}.0"),
            6 => format!("{canon}0"),
            7 => format!("0{canon}"),
            8 => format!("-{canon}"),
            9 => canon.replace("e+", "e").replace('e', "E"),
            10 => n.to_string(),
            11 => {
                // The last digit moved by one: sometimes canonical, often not.
                let mut b = canon.clone().into_bytes();
                if let Some(d) = b.iter_mut().rev().find(|d| d.is_ascii_digit()) {
                    *d = if *d == b'9' { b'8' } else { *d + 1 };
                }
                String::from_utf8(b).expect("ascii")
            }
            _ => (*self
                .rng
                .pick(&["-0", "0", "-0.0", "1e400", "1e-400", "00", "1.", ".1", "+1"]))
            .to_string(),
        };
        self.out.push_str(&alt);
    }
}

/// Writes `v`, deviating at one site of kind `dev` when there is one.
fn write(rng: &mut Rng, v: &Value, dev: Deviation) -> Vec<u8> {
    let count = {
        let mut w = Writer {
            rng,
            dev,
            sites: 0,
            target: usize::MAX,
            out: String::new(),
        };
        w.value(v);
        w.sites
    };
    let target = if count == 0 {
        usize::MAX
    } else {
        rng.below(count)
    };
    let mut w = Writer {
        rng,
        dev,
        sites: 0,
        target,
        out: String::new(),
    };
    w.value(v);
    w.out.into_bytes()
}

/// Byte-level damage.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    const INTERESTING: &[u8] = b" \t\n\r\"\\,:{}[]0123456789-+.eEtfnu/\x00\x1f\x7f\x80\xbf\xc0\xc3\xe2\xed\xf0\xf4\xf5\xff";
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(2) {
        let i = if b.is_empty() { 0 } else { rng.below(b.len()) };
        match rng.below(7) {
            0 if !b.is_empty() => b[i] ^= 1 << rng.below(8),
            1 if !b.is_empty() => b[i] = *rng.pick(INTERESTING),
            2 => b.insert(i, *rng.pick(INTERESTING)),
            3 if !b.is_empty() => {
                b.remove(i);
            }
            4 => b.truncate(i),
            5 if b.len() > 1 => {
                let j = rng.below(b.len());
                b.swap(i, j);
            }
            _ => {
                // Bytes that are not UTF-8 (or not scalar values) inside the text.
                let bad: &[&[u8]] = &[
                    b"\xc0\x80",
                    b"\xe0\x80\x80",
                    b"\xed\xa0\x80",
                    b"\xf4\x90\x80\x80",
                    b"\xf8\x88\x80\x80\x80",
                    b"\xc3",
                    b"\x80",
                ];
                let s = rng.pick(bad);
                b.splice(i..i, s.iter().copied());
            }
        }
    }
    b
}

/// A generator seeded from `TFTRAIL_EQUIVALENCE_SEED` (mixed with `salt`), for repeatable runs.
fn rng(salt: u64) -> Rng {
    let seed: u64 = std::env::var("TFTRAIL_EQUIVALENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt)
}

fn cases() -> usize {
    std::env::var("TFTRAIL_EQUIVALENCE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6_000)
}

#[test]
fn validate_time_agrees_with_the_original() {
    let mut rng = rng(7);
    let mut oks = 0;
    for i in 0..200_000 {
        let mut t = gen_time(&mut rng).into_bytes();
        // Damage some: a byte replaced, inserted or removed.
        if i % 2 == 1 && !t.is_empty() {
            let k = rng.below(t.len());
            let c = *rng.pick(b"0123456789-T:.Z z\xc3\xa9");
            match rng.below(3) {
                0 => t[k] = c,
                1 => t.insert(k, c),
                _ => {
                    t.remove(k);
                }
            }
        }
        let Ok(t) = String::from_utf8(t) else {
            continue;
        };
        let (new, old) = (validate_time(&t), reference_validate_time(&t));
        assert_eq!(new.is_ok(), old.is_ok(), "{t:?}");
        oks += usize::from(new.is_ok());
    }
    assert!(oks > 50_000, "{oks}");
}

#[test]
fn validate_time_agrees_with_the_original_on_every_byte() {
    // Every byte value at every position of times with and without a fraction.
    for base in ["2026-11-26T05:00:00Z", "1999-12-31T23:59:60.123Z"] {
        for pos in 0..base.len() {
            for c in 0..=255u8 {
                let mut t = base.as_bytes().to_vec();
                t[pos] = c;
                let Ok(t) = String::from_utf8(t) else {
                    continue;
                };
                let (new, old) = (validate_time(&t), reference_validate_time(&t));
                assert_eq!(new.is_ok(), old.is_ok(), "{t:?}");
            }
        }
    }
}

#[test]
fn writer_writes_what_the_canonicalizer_writes() {
    let mut rng = Rng(1);
    for _ in 0..2_000 {
        let v = serde_json::to_value(gen_record(&mut rng)).unwrap();
        assert_eq!(
            write(&mut rng, &v, Deviation::None),
            serde_json_canonicalizer::to_vec(&v).unwrap()
        );
    }
}

#[test]
fn generated_records_and_deviations_agree_with_the_reference() {
    let mut rng = rng(0x7f7_2a11);
    let mut seen: BTreeMap<(&'static str, &'static str), usize> = BTreeMap::new();
    let mut inputs = 0usize;
    for _ in 0..cases() {
        let rec = gen_record(&mut rng);
        let v = serde_json::to_value(&rec).unwrap();
        let canonical = serde_json_canonicalizer::to_vec(&rec).unwrap();
        *seen.entry(("canonical", check(&canonical))).or_default() += 1;
        let dev = *rng.pick(DEVIATIONS);
        let deviant = write(&mut rng, &v, dev);
        *seen.entry((dev_name(dev), check(&deviant))).or_default() += 1;
        let base = if rng.chance(2) { &canonical } else { &deviant };
        let damaged = mutate(&mut rng, base);
        *seen.entry(("bytes", check(&damaged))).or_default() += 1;
        inputs += 3;
    }
    eprintln!("{inputs} inputs; (source, reference verdict) → count:");
    for (k, n) in &seen {
        eprintln!("  {k:?}: {n}");
    }
    // The generators reach every verdict the reference can give.
    for want in [
        "Ok",
        "Malformed",
        "NotCanonical",
        "UnknownVersion",
        "BadKind",
        "BadTime",
        "PayloadNotObject",
        "AuthenticatedNotObject",
        "BadBlob",
    ] {
        assert!(seen.keys().any(|k| k.1 == want), "no input got {want}");
    }
    // Deviations that keep the text valid JSON with the same meaning must be caught.
    for dev in ["Space", "Swap", "Escape", "NumberForm"] {
        assert!(seen.contains_key(&(dev, "NotCanonical")), "{dev}");
    }
}

fn dev_name(d: Deviation) -> &'static str {
    match d {
        Deviation::None => "None",
        Deviation::Space => "Space",
        Deviation::Swap => "Swap",
        Deviation::Utf8Order => "Utf8Order",
        Deviation::Duplicate => "Duplicate",
        Deviation::Drop => "Drop",
        Deviation::Rename => "Rename",
        Deviation::AsArray => "AsArray",
        Deviation::Escape => "Escape",
        Deviation::NumberForm => "NumberForm",
        Deviation::Retype => "Retype",
    }
}

/// A valid record with `payload` spliced in as the payload text.
fn with_payload(payload: &str) -> Vec<u8> {
    format!(
        r#"{{"actor":{{"host":"h","user":"u"}},"kind":"k","payload":{payload},"time":"2026-01-01T00:00:00Z","v":1}}"#
    )
    .into_bytes()
}

#[test]
fn numbers_of_many_shapes_agree_with_the_reference() {
    let mut rng = rng(42);
    let mut accepted = 0;
    let n = cases() * 4;
    for i in 0..n {
        let token = match i % 4 {
            // Canonical forms of many doubles and integers.
            0 => serde_json_canonicalizer::to_string(&gen_number(&mut rng)).unwrap(),
            // Random JSON-ish number text.
            1 => {
                let mut t = String::new();
                if rng.chance(3) {
                    t.push('-');
                }
                for _ in 0..1 + rng.below(25) {
                    t.push(char::from(b'0' + rng.below(10) as u8));
                }
                if rng.chance(3) {
                    t.push('.');
                    for _ in 0..rng.below(6) {
                        t.push(char::from(b'0' + rng.below(10) as u8));
                    }
                }
                if rng.chance(3) {
                    t.push(*rng.pick(&['e', 'E']));
                    let sign: &&str = rng.pick(&["", "+", "-"]);
                    t.push_str(sign);
                    t.push_str(&(rng.below(400)).to_string());
                }
                t
            }
            // Other writers' forms of the same doubles.
            2 => {
                let x = gen_f64(&mut rng);
                match rng.below(3) {
                    0 => format!("{x}"),
                    1 => format!("{x:e}"),
                    _ => format!("{x:?}"),
                }
            }
            // Integers around 2^53, 2^63, 2^64 and 10^21.
            _ => {
                let base: u128 = *rng.pick(&[
                    1 << 53,
                    1 << 63,
                    1 << 64,
                    10u128.pow(21),
                    10u128.pow(15),
                    10u128.pow(20),
                ]);
                let v = base as i128 + rng.below(4097) as i128 - 2048;
                let v = if rng.chance(3) { -v } else { v };
                v.to_string()
            }
        };
        let payload = format!(r#"{{"n":{token}}}"#);
        if check(&with_payload(&payload)) == "Ok" {
            accepted += 1;
        }
        // The same token as a blob size (a u64).
        let entry = format!(
            r#"{{"actor":{{"host":"h","user":"u"}},"blobs":[{{"name":"n","sha256":"{}","size":{token}}}],"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#,
            "a".repeat(64)
        );
        check(entry.as_bytes());
    }
    assert!(accepted > n / 4, "{accepted} of {n}");
}

#[test]
fn nesting_limit_agrees_with_the_reference() {
    // The record is depth 1 and its payload depth 2; serde_json refuses depth 128.
    for depth in 120..=130 {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let inner = format!("{}1{}", open.repeat(depth - 2), close.repeat(depth - 2));
            let payload = format!("{{\"a\":{inner}}}");
            let verdict = check(&with_payload(&payload));
            assert_eq!(
                verdict == "Ok",
                depth <= crate::canonical::MAX_DEPTH,
                "{depth}"
            );
            // And inside the CI identity (depth 2 is the actor).
            let ci = format!(
                r#"{{"actor":{{"ci":{inner},"host":"h","user":"u"}},"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
            );
            check(ci.as_bytes());
            // And inside the authenticated identity (an object, also at depth 3).
            let auth = format!(
                r#"{{"actor":{{"authenticated":{{"a":{inner}}},"host":"h","user":"u"}},"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
            );
            let verdict = check(auth.as_bytes());
            assert_eq!(
                verdict == "Ok",
                depth < crate::canonical::MAX_DEPTH,
                "{depth}"
            );
        }
    }
}

#[test]
fn handwritten_edge_cases_agree_with_the_reference() {
    let r = |s: &str| s.to_string();
    let sha = "0".repeat(64);
    let mut inputs = vec![
        r(""),
        r("{}"),
        r("[]"),
        r("null"),
        r("[2]"),
        r(r#"{"v":2}"#),
        r(r#"{"v":2,"x":"\ud800"}"#),
        r(r#"{"v":4294967296}"#),
        r(r#"{"v":1}"#),
        r(r#"[1,"k","2026-01-01T00:00:00Z",["u","h"],{}]"#),
        r(r#"[2,"k","2026-01-01T00:00:00Z",["u","h"],{}]"#),
        r(r#"[1,"K","2026-01-01T00:00:00Z",["u","h"],{}]"#),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1} "#,
        ),
        r(
            r#" {"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"ci":null,"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"ci":{},"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"blobs":[],"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":{"by":"server"},"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":{},"ci":{"run":1},"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":null,"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":[],"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":"token","host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":1,"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"ci":{},"authenticated":{},"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":{"by":"token"},"authenticated":{"by":"token"},"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":{"role":"writer","by":"token"},"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"authenticated":{"by":"token"}"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":[],"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":null,"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":2}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1.0}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":01}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":-1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1,"v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":18446744073709551616}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":9007199254740993}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{"\u0061":1},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{"a":"\ud83d\ude00"},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{"a":"\u2028"},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{"a":"\/"},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"\u0068","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00.000000000000Z","v":1}"#,
        ),
        r(
            r#"{"\u0061ctor":{"host":"h","user":"u"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u"},"extra":1,"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(
            r#"{"actor":{"host":"h","user":"u","x":1},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#,
        ),
        r(r#"{"actor":{"host":"h"},"kind":"k","payload":{},"time":"2026-01-01T00:00:00Z","v":1}"#),
        format!(
            r#"{{"actor":{{"host":"h","user":"u"}},"blobs":[{{"name":"n","sha256":"{sha}","size":1}}],"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
        ),
        format!(
            r#"{{"actor":{{"host":"h","user":"u"}},"blobs":[{{"name":"","sha256":"{sha}","size":1}}],"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
        ),
        format!(
            r#"{{"actor":{{"host":"h","user":"u"}},"blobs":[{{"name":"\n","sha256":"{sha}","size":1}}],"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
        ),
        format!(
            r#"{{"actor":{{"host":"h","user":"u"}},"blobs":[{{"name":"n","sha256":"{sha}","size":1.5}}],"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
        ),
        format!(
            r#"{{"actor":{{"host":"h","user":"u"}},"blobs":[{{"name":"n","sha256":"{sha}","size":-1}}],"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
        ),
        format!(
            r#"{{"actor":{{"host":"h","user":"u"}},"blobs":[["n","{sha}",1]],"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
        ),
        format!(
            r#"{{"actor":{{"host":"h","user":"u"}},"blobs":[{{"name":"n","sha256":"{sha}","size":1}},{{"name":"n","sha256":"{sha}","size":1}}],"kind":"k","payload":{{}},"time":"2026-01-01T00:00:00Z","v":1}}"#
        ),
    ];
    // Every string position with every control character, escaped each way.
    for c in 0u32..0x20 {
        for form in [
            format!("\\u{c:04x}"),
            format!("\\u{c:04X}"),
            char::from_u32(c).unwrap().to_string(),
        ] {
            inputs.push(format!(
                r#"{{"actor":{{"host":"h{form}","user":"u"}},"kind":"k","payload":{{"a{form}":"{form}"}},"time":"2026-01-01T00:00:00Z","v":1}}"#
            ));
        }
    }
    let mut oks = 0;
    for i in &inputs {
        if check(i.as_bytes()) == "Ok" {
            oks += 1;
        }
    }
    assert!(oks >= 8, "{oks}");
}

#[test]
fn entries_beyond_a_bundle_decode_as_before() {
    // from_entry never said TooLarge (only to_entry does); an entry that large cannot be in a
    // bundle, but the decoder's verdict is unchanged.
    let big = with_payload(&format!(r#"{{"x":"{}"}}"#, "a".repeat(70_000)));
    assert_eq!(check(&big), "Ok");
}

/// What `tftrail append --batch` did for each line before [`EntryTemplate`]: parse the text,
/// build the record, encode it.
fn entry_the_slow_way(kind: &str, time: &str, actor: &Actor, text: &[u8]) -> Option<Vec<u8>> {
    let payload: Value = serde_json::from_slice(text).ok()?;
    Record::new(kind, time, actor.clone(), payload, vec![])
        .and_then(|r| r.to_entry())
        .ok()
}

#[test]
fn entry_template_agrees_with_encoding_the_parsed_record() {
    let mut rng = rng(0xe11_7e3);
    let time = "2026-11-26T05:00:00.123Z";
    // Actors whose CI identity holds a `"payload":{}` of its own, and odd strings.
    let actors = [
        Actor {
            authenticated: None,
            user: "alice".into(),
            host: "box".into(),
            ci: None,
        },
        Actor {
            authenticated: None,
            user: "\"payload\":{}".into(),
            host: "h\u{1}\u{2028}é".into(),
            ci: Some(serde_json::json!({"payload": {}, "z": [1, 2.5]})),
        },
        Actor {
            authenticated: Some(
                serde_json::json!({"by": "token", "name": ",\"payload\":{}", "payload": {}, "role": "writer"}),
            ),
            user: "u".into(),
            host: "h".into(),
            ci: None,
        },
    ];
    let (mut fast, mut canonical_texts) = (0usize, 0usize);
    for i in 0..cases() * 2 {
        let actor = &actors[(i / 3) % actors.len()];
        let kind = if i % 3 == 0 {
            "event"
        } else {
            "terraform.plan"
        };
        let t = EntryTemplate::new(kind, time, actor.clone(), vec![]).unwrap();
        let v = Value::Object(gen_object(&mut rng, 3));
        let text = match i % 3 {
            0 => {
                canonical_texts += 1;
                serde_json_canonicalizer::to_vec(&v).unwrap()
            }
            1 => {
                let dev = *rng.pick(DEVIATIONS);
                write(&mut rng, &v, dev)
            }
            _ => {
                let base = serde_json_canonicalizer::to_vec(&v).unwrap();
                mutate(&mut rng, &base)
            }
        };
        let slow = entry_the_slow_way(kind, time, actor, &text);
        match t.canonical_entry(&text) {
            Some(entry) => {
                fast += 1;
                assert_eq!(
                    Some(&entry),
                    slow.as_ref(),
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
            }
            None => {
                // Canonical text of a record that fits always takes the fast way.
                if i % 3 == 0 {
                    assert!(slow.is_none(), "{:?}", String::from_utf8_lossy(&text));
                }
            }
        }
    }
    assert!(
        fast >= canonical_texts * 9 / 10,
        "{fast} of {canonical_texts}"
    );
    // Non-objects, whitespace, the nesting limit and the size limit take the slow way.
    let t = EntryTemplate::new("k", time, actors[0].clone(), vec![]).unwrap();
    for text in ["[]", "1", "\"a\"", "null", " {}", "{} ", "{\"a\":1}\r", ""] {
        assert_eq!(t.canonical_entry(text.as_bytes()), None, "{text:?}");
    }
    // (The slow way also writes entries one level deeper than `serde_json` reads back: the
    // payload alone is parsed, at one level less. The fast way does not.)
    for depth in 120..=130 {
        let text = format!("{}1{}", "{\"a\":".repeat(depth - 1), "}".repeat(depth - 1));
        let fast = t.canonical_entry(text.as_bytes());
        assert_eq!(
            fast.is_some(),
            depth <= crate::canonical::MAX_DEPTH,
            "{depth}"
        );
        if fast.is_some() {
            assert_eq!(
                fast,
                entry_the_slow_way("k", time, &actors[0], text.as_bytes())
            );
        }
    }
    let fixed = t.canonical_entry(b"{\"x\":\"\"}").unwrap().len();
    for extra in [0, 1] {
        let text = format!(
            "{{\"x\":\"{}\"}}",
            "a".repeat(MAX_ENTRY_SIZE - fixed + extra)
        );
        let fast = t.canonical_entry(text.as_bytes());
        assert_eq!(fast.is_some(), extra == 0);
        assert_eq!(
            fast.map(|e| e.len()),
            (extra == 0).then_some(MAX_ENTRY_SIZE)
        );
    }
}
