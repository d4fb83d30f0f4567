//! Single-pass checks that JSON text is in the canonical form (RFC 8785) that
//! `serde_json_canonicalizer` writes for what `serde_json` parses, on the raw bytes and
//! without building values.
//!
//! The form accepted, exactly:
//! - no whitespace anywhere;
//! - object members sorted by the UTF-16 code units of their (decoded) names, no two equal;
//! - valid UTF-8 (checked as the strings are scanned: outside strings only ASCII can appear);
//! - strings: raw UTF-8 except `"` and `\` (written `\"` and `\\`), the control characters
//!   U+0008, U+0009, U+000A, U+000C and U+000D (written `\b`, `\t`, `\n`, `\f` and `\r`) and the
//!   other control characters below U+0020 (written `\u00xx`, lower-case hex); U+007F, U+2028
//!   and U+2029 stay raw, and no other escape appears (a lone surrogate cannot, since
//!   `serde_json` refuses it);
//! - numbers exactly as ECMAScript's Number-to-String writes the double they denote (the
//!   `ryu-js` crate via `serde_json_canonicalizer`): integers below 10^21 in plain digits,
//!   no `-0`, no trailing zeros, exponents as `e+21` / `e-7`;
//! - containers nested at most [`MAX_DEPTH`] deep, `serde_json`'s recursion limit.
//!
//! The checker is used by the record decoder ([`crate::record::RecordView`]); anything it
//! rejects is handed to the reference decoder, which says why.

use std::borrow::Cow;
use std::cmp::Ordering;

/// Deepest container nesting `serde_json` parses: its 128th nested array or object is an
/// error (the outermost container counts as depth 1).
pub(crate) const MAX_DEPTH: usize = 127;

/// Why text is not canonical, for diagnostics and tests: a short reason and a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reject {
    /// Byte offset where the check failed.
    pub at: usize,
    /// What was expected or found.
    pub what: &'static str,
}

/// A failed check; the scanner keeps the reason ([`Scanner::why`]). Results carrying only
/// this are small enough to be returned in registers, which matters at a few nanoseconds a
/// token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fail;

/// A canonical string token's contents (between the quotes), as it is in the text (checked to
/// be UTF-8).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Str<'a> {
    /// The text between the quotes.
    pub raw: &'a [u8],
    /// Whether it holds any escape (otherwise `raw` is the string's value).
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The string's value (`None` only for text the scanner did not check).
    pub fn value(&self) -> Option<Cow<'a, str>> {
        if self.escaped {
            unescape(self.raw).map(Cow::Owned)
        } else {
            std::str::from_utf8(self.raw).ok().map(Cow::Borrowed)
        }
    }
}

/// A cursor over canonical JSON text.
pub(crate) struct Scanner<'a> {
    b: &'a [u8],
    /// Current byte offset.
    pub pos: usize,
    /// Whether the last string token held an escape.
    escaped: bool,
    /// Why the last check failed.
    why: Reject,
}

/// Bytes examined at a time when skipping long runs of raw string content.
const CHUNK: usize = 64;

/// Whether a byte ends a run of raw ASCII string content: `"`, `\`, a byte below 0x20 (not
/// allowed raw) or above 0x7f (part of a multi-byte character, to check).
#[inline(always)]
fn special(c: u8) -> bool {
    (c == b'"') | (c == b'\\') | ((c as i8) < 0x20)
}

/// Whether a chunk holds a [`special`] byte, tested without early exit so that this compiles
/// to vector instructions.
#[inline(always)]
fn any_special<const N: usize>(chunk: &[u8]) -> bool {
    let chunk: &[u8; N] = chunk.try_into().expect("a whole chunk");
    chunk.iter().fold(false, |acc, &c| acc | special(c))
}

/// The offset of the first [`special`] byte among the 8 at `i`, if there are 8 bytes there:
/// `Some(Some(k))`, `Some(None)` when there is none. The 8 bytes are tested together as one
/// little-endian word: each test below flags its lowest matching byte exactly (a borrow can
/// only flag bytes above a match), so the lowest flag of all is the first special byte.
#[inline(always)]
fn special_in_word(b: &[u8], i: usize) -> Option<Option<usize>> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let w = u64::from_le_bytes(b.get(i..i + 8)?.try_into().expect("8 bytes"));
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let m = (quote | backslash | control | w) & HIGHS;
    Some((m != 0).then(|| (m.trailing_zeros() / 8) as usize))
}

/// The offset of the first [`special`] byte of `b` at or after `i`, or `b.len()`.
#[inline]
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    // Most strings are short: two words first.
    for _ in 0..2 {
        match special_in_word(b, i) {
            Some(Some(k)) => return i + k,
            Some(None) => i += 8,
            None => break,
        }
    }
    // Then whole chunks, words, and the last few bytes one at a time.
    let rest = &b[i..];
    let plain = rest.chunks_exact(CHUNK).position(any_special::<CHUNK>);
    i += plain.unwrap_or(rest.len() / CHUNK) * CHUNK;
    loop {
        match special_in_word(b, i) {
            Some(Some(k)) => return i + k,
            Some(None) => i += 8,
            None => break,
        }
    }
    i + b[i..]
        .iter()
        .position(|&c| special(c))
        .unwrap_or(b.len() - i)
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Scanner {
            b,
            pos: 0,
            escaped: false,
            why: Reject {
                at: 0,
                what: "no failure",
            },
        }
    }

    /// Why the last check failed.
    pub fn why(&self) -> Reject {
        self.why
    }

    /// Fails at the current position.
    #[cold]
    pub fn reject(&mut self, what: &'static str) -> Fail {
        self.reject_at(self.pos, what)
    }

    /// Fails at offset `at`.
    #[cold]
    pub fn reject_at(&mut self, at: usize, what: &'static str) -> Fail {
        self.why = Reject { at, what };
        Fail
    }

    /// The next byte.
    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Consumes `lit` if the text continues with it.
    #[inline]
    pub fn eat<const N: usize>(&mut self, lit: &[u8; N]) -> bool {
        // A fixed-size comparison, which compiles to a few loads.
        let next: Option<&[u8; N]> = self
            .b
            .get(self.pos..self.pos + N)
            .and_then(|s| s.try_into().ok());
        if next == Some(lit) {
            self.pos += N;
            true
        } else {
            false
        }
    }

    /// Consumes `lit`, which must come next.
    #[inline]
    pub fn expect<const N: usize>(
        &mut self,
        lit: &[u8; N],
        what: &'static str,
    ) -> Result<(), Fail> {
        if self.eat(lit) {
            Ok(())
        } else {
            Err(self.reject(what))
        }
    }

    /// Whether the whole text has been consumed.
    pub fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }

    /// A canonical string token (the cursor on its opening quote): its contents.
    #[inline(always)]
    pub fn str(&mut self) -> Result<Str<'a>, Fail> {
        let raw = self.string()?;
        Ok(Str {
            raw,
            escaped: self.escaped,
        })
    }

    /// A canonical string token (the cursor on its opening quote): the text between the
    /// quotes; whether it holds an escape is left in `self.escaped`.
    #[inline(always)]
    pub fn string(&mut self) -> Result<&'a [u8], Fail> {
        if self.peek() != Some(b'"') {
            return Err(self.reject("expected a string"));
        }
        // Most strings (member names, short values) are plain ASCII and short: the first
        // special byte in their first words is the closing quote.
        let b = self.b;
        let start = self.pos + 1;
        let mut i = start;
        for _ in 0..4 {
            match special_in_word(b, i) {
                Some(Some(k)) if b[i + k] == b'"' => {
                    self.pos = i + k + 1;
                    self.escaped = false;
                    return Ok(&b[start..i + k]);
                }
                Some(None) => i += 8,
                _ => break,
            }
        }
        self.string_from(i)
    }

    /// The rest of [`Scanner::string`]: the string's content from `self.pos + 1` up to `i` is
    /// plain ASCII.
    #[inline(never)]
    fn string_from(&mut self, i: usize) -> Result<&'a [u8], Fail> {
        let b = self.b;
        let start = self.pos + 1;
        let mut i = i;
        let mut escaped = false;
        loop {
            i = skip_plain(b, i);
            match b.get(i) {
                None => {
                    self.pos = i;
                    return Err(self.reject("unterminated string"));
                }
                Some(b'"') => {
                    self.pos = i + 1;
                    self.escaped = escaped;
                    return Ok(&b[start..i]);
                }
                Some(b'\\') => {
                    escaped = true;
                    i = self.escape(i)?;
                }
                Some(0x80..=0xff) => {
                    // A run of multi-byte characters, which ends before an ASCII byte.
                    let run = &b[i..];
                    let end = run.iter().position(u8::is_ascii).unwrap_or(run.len());
                    if std::str::from_utf8(&run[..end]).is_err() {
                        self.pos = i;
                        return Err(self.reject("invalid UTF-8"));
                    }
                    i += end;
                }
                // The scan stops only at special bytes: this is one below 0x20.
                Some(_) => {
                    self.pos = i;
                    return Err(self.reject("raw control character in a string"));
                }
            }
        }
    }

    /// Checks the escape at `i` (a backslash) and returns the offset after it.
    fn escape(&mut self, i: usize) -> Result<usize, Fail> {
        let b = self.b;
        match b.get(i + 1) {
            Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
            Some(b'u') => match b.get(i + 2..i + 6) {
                // Only control characters without a short form, in lower-case hex.
                Some(&[b'0', b'0', h @ (b'0' | b'1'), l @ (b'0'..=b'9' | b'a'..=b'f')])
                    if !(h == b'0' && matches!(l, b'8' | b'9' | b'a' | b'c' | b'd')) =>
                {
                    Ok(i + 6)
                }
                _ => {
                    self.pos = i;
                    Err(self.reject("\\u escape not in canonical form"))
                }
            },
            _ => {
                self.pos = i;
                Err(self.reject("escape not in canonical form"))
            }
        }
    }

    /// A canonical number token, returned as text.
    #[inline]
    pub fn number(&mut self) -> Result<&'a [u8], Fail> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                i += 1;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => {
                self.pos = i;
                return Err(self.reject("expected a number"));
            }
        }
        let int_digits = i - int_start;
        let mut plain = true;
        if b.get(i) == Some(&b'.') {
            plain = false;
            i += 1;
            let d = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == d {
                self.pos = i;
                return Err(self.reject("expected fraction digits"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            plain = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let d = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == d {
                self.pos = i;
                return Err(self.reject("expected exponent digits"));
            }
        }
        let token = &b[start..i];
        // Integers of at most 15 digits are exact doubles, written in plain digits; `-0` is
        // written `0`. Everything else is compared with the canonical form of its value.
        let canonical = if plain && int_digits <= 15 {
            !(negative && b[int_start] == b'0')
        } else {
            is_canonical_number(token)
        };
        if !canonical {
            self.pos = start;
            return Err(self.reject("number not in canonical form"));
        }
        self.pos = i;
        Ok(token)
    }

    /// Any canonical value inside a container at `depth` (0 at the top level).
    #[inline]
    pub fn value(&mut self, depth: usize) -> Result<(), Fail> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.expect(b"true", "expected true"),
            Some(b'f') => self.expect(b"false", "expected false"),
            Some(b'n') => self.expect(b"null", "expected null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            _ => Err(self.reject("expected a value")),
        }
    }

    /// A canonical object at `depth` (the cursor on its `{`).
    pub fn object(&mut self, depth: usize) -> Result<(), Fail> {
        if depth > MAX_DEPTH {
            return Err(self.reject("nested too deeply"));
        }
        self.expect(b"{", "expected an object")?;
        if self.eat(b"}") {
            return Ok(());
        }
        let mut prev: Option<Str<'a>> = None;
        loop {
            let at = self.pos;
            let key = self.str()?;
            if let Some(p) = prev {
                if key_order(&p, &key) != Ordering::Less {
                    self.pos = at;
                    return Err(self.reject("object member names not in canonical order"));
                }
            }
            prev = Some(key);
            self.expect(b":", "expected ':'")?;
            self.value(depth)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.reject("expected ',' or '}'")),
            }
        }
    }

    /// A canonical array at `depth` (the cursor on its `[`).
    pub fn array(&mut self, depth: usize) -> Result<(), Fail> {
        if depth > MAX_DEPTH {
            return Err(self.reject("nested too deeply"));
        }
        self.expect(b"[", "expected an array")?;
        if self.eat(b"]") {
            return Ok(());
        }
        loop {
            self.value(depth)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.reject("expected ',' or ']'")),
            }
        }
    }
}

/// Whether a JSON number token is exactly the canonical text of the double it denotes.
///
/// `serde_json` (with `float_roundtrip`, which `serde_json_canonicalizer` enables) reads every
/// number, integer or not, as the correctly rounded double, as does `str::parse::<f64>`; the
/// canonicalizer writes that double with `ryu-js`.
fn is_canonical_number(token: &[u8]) -> bool {
    match std::str::from_utf8(token).map(str::parse::<f64>) {
        Ok(Ok(v)) if v.is_finite() => {
            serde_json_canonicalizer::to_vec(&v).is_ok_and(|c| c == token)
        }
        _ => false,
    }
}

/// Decodes the contents of a canonical string (escapes and UTF-8 already checked).
fn unescape(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.iter().position(|&c| c == b'\\') {
        out.push_str(std::str::from_utf8(&rest[..i]).ok()?);
        let (c, len) = match rest.get(i + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            // `\u00xx`: a control character, two lower-case hex digits.
            _ => {
                let hex = std::str::from_utf8(rest.get(i + 4..i + 6)?).ok()?;
                (char::from(u8::from_str_radix(hex, 16).ok()?), 6)
            }
        };
        out.push(c);
        rest = &rest[i + len..];
    }
    out.push_str(std::str::from_utf8(rest).ok()?);
    Some(out)
}

/// Compares two member names by the UTF-16 code units of their values, as RFC 8785 sorts.
/// (Names that are not text, which the scanner excludes, compare equal: refused as
/// duplicates.)
fn key_order(a: &Str<'_>, b: &Str<'_>) -> Ordering {
    let by_values = || match (a.value(), b.value()) {
        (Some(x), Some(y)) => x.encode_utf16().cmp(y.encode_utf16()),
        _ => Ordering::Equal,
    };
    if a.escaped || b.escaped {
        return by_values();
    }
    let (x, y) = (a.raw, b.raw);
    match x.iter().zip(y).position(|(p, q)| p != q) {
        None => x.len().cmp(&y.len()),
        // Up to the first differing byte the two agree, so an ASCII byte there starts a
        // character in both, and byte order is code-unit order.
        Some(i) if x[i] < 0x80 || y[i] < 0x80 => x[i].cmp(&y[i]),
        // UTF-8 order is code-point order, which differs from UTF-16 order for characters
        // above U+FFFF against U+E000..U+FFFF.
        Some(_) => by_values(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_ok(s: &str) -> bool {
        bytes_ok(s.as_bytes())
    }

    fn bytes_ok(s: &[u8]) -> bool {
        let mut sc = Scanner::new(s);
        sc.value(0).is_ok() && sc.at_end()
    }

    #[test]
    fn special_words() {
        // Every byte value at every position, with plain bytes or other specials around.
        for pos in 0..8 {
            for c in 0..=255u8 {
                for fill in [b'a', b'~', b' ', 0x7f, b'"', 0x00, 0xff] {
                    let mut w = [fill; 8];
                    w[pos] = c;
                    let want = w.iter().position(|&x| special(x));
                    assert_eq!(special_in_word(&w, 0), Some(want), "{w:?}");
                }
            }
        }
        assert_eq!(special_in_word(b"1234567", 0), None);
    }

    #[test]
    fn skipping_plain_content() {
        let plain = [
            b'a', b'~', 0x7f, b' ', b'#', b'!', b'/', b'[', b']', b'{', b'}',
        ];
        let text: Vec<u8> = (0..300).map(|i| plain[i % plain.len()]).collect();
        for start in [0, 1, 15, 16, 17, 63, 64, 65, 100] {
            assert_eq!(skip_plain(&text, start), text.len());
            for pos in start..text.len() {
                for special in [b'"', b'\\', 0u8, 0x1f, 0x0a, 0x80, 0xc3, 0xff] {
                    let mut t = text.clone();
                    t[pos] = special;
                    assert_eq!(skip_plain(&t, start), pos, "{start} {pos} {special}");
                }
            }
        }
    }

    #[test]
    fn long_strings_with_specials_anywhere() {
        for len in 0..100 {
            for pos in 0..len {
                let mut s: Vec<u8> = vec![b'x'; len];
                s[pos] = b'"';
                let text = format!("\"{}", String::from_utf8(s).unwrap());
                let mut sc = Scanner::new(text.as_bytes());
                let got = sc.string().unwrap();
                assert_eq!(got.len(), pos, "{len} {pos}");
                for (special, ok) in [(b'\\', false), (0x01, false)] {
                    let mut s: Vec<u8> = vec![b'x'; len];
                    s[pos] = special;
                    let text = format!("\"{}\"", String::from_utf8(s).unwrap());
                    let ok_now = Scanner::new(text.as_bytes()).string().is_ok();
                    assert_eq!(ok_now, ok, "{len} {pos}");
                }
            }
        }
    }

    #[test]
    fn strings() {
        for ok in [
            r#""""#,
            r#""plain text that is longer than eight bytes""#,
            r#""\"\\\b\f\n\r\t\u0000\u001f\u000b\u000e""#,
            "\"é€😀\u{7f}\u{2028}\u{2029}/\"",
        ] {
            assert!(value_ok(ok), "{ok}");
        }
        for bad in [
            r#""\/""#,
            r#""\u0041""#,
            r#""\u001F""#,
            r#""\u0008""#,
            r#""\u000a""#,
            r#""\u0020""#,
            r#""\ud83d\ude00""#,
            r#""\ud800""#,
            "\"a\u{1}b\"",
            "\"tab\there\"",
            r#""unterminated"#,
            r#""bad \x escape""#,
        ] {
            assert!(!value_ok(bad), "{bad}");
        }
    }

    #[test]
    fn utf8() {
        // Valid multi-byte characters anywhere in strings, long and short.
        for s in [
            "é",
            "€",
            "😀",
            "\u{10ffff}",
            "\u{7ff}\u{800}\u{ffff}\u{10000}",
        ] {
            for pad in [0, 7, 8, 9, 63, 64, 65, 100] {
                let x = "x".repeat(pad);
                assert!(value_ok(&format!("\"{x}{s}{x}{s}\"")), "{s} {pad}");
            }
        }
        // Everything std refuses, in a string, after short and long runs of ASCII.
        let bad: &[&[u8]] = &[
            b"\x80",
            b"\xbf",
            b"\xc0\x80",
            b"\xc1\xbf",
            b"\xc3",
            b"\xc3\x28",
            b"\xe0\x80\x80",
            b"\xe0\x9f\xbf",
            b"\xed\xa0\x80",
            b"\xed\xbf\xbf",
            b"\xef\xbf",
            b"\xf0\x80\x80\x80",
            b"\xf0\x8f\xbf\xbf",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"\xf8\x88\x80\x80\x80",
            b"\xff",
        ];
        for b in bad {
            assert!(std::str::from_utf8(b).is_err());
            for pad in [0, 8, 70] {
                let mut t = vec![b'"'];
                t.extend(std::iter::repeat_n(b'x', pad));
                t.extend_from_slice(b);
                t.extend_from_slice(b"x\"");
                assert!(!bytes_ok(&t), "{b:?} {pad}");
            }
        }
        // Outside strings, only ASCII.
        assert!(!bytes_ok("[1,é]".as_bytes()));
        assert!(!bytes_ok("{\"a\":1}\u{a0}".as_bytes()));
    }

    #[test]
    fn numbers() {
        for ok in [
            "0",
            "-1",
            "123456789012345",
            "1234567890123456",
            "9007199254740992",
            "18446744073709552000",
            "1e+21",
            "1.5",
            "-0.5",
            "0.000001",
            "1e-7",
            "5e-324",
            "1.7976931348623157e+308",
        ] {
            assert!(value_ok(ok), "{ok}");
        }
        for bad in [
            "-0",
            "01",
            "1.0",
            "1e2",
            "1E+21",
            "1e21",
            "+1",
            ".5",
            "1.",
            "1e",
            "0.0000001",
            "9007199254740993",
            "1e400",
            "-",
            "1.50",
            "100000000000000000000000",
        ] {
            assert!(!value_ok(bad), "{bad}");
        }
    }

    #[test]
    fn member_order_is_utf16() {
        assert!(value_ok(r#"{"":1,"a":2,"aa":3,"b":4}"#));
        assert!(!value_ok(r#"{"b":1,"a":2}"#));
        assert!(!value_ok(r#"{"a":1,"a":2}"#));
        // U+1F600 is D83D DE00 in UTF-16: before U+E000, after U+D7FF.
        assert!(value_ok("{\"\u{d7ff}\":1,\"\u{1f600}\":2,\"\u{e000}\":3}"));
        assert!(!value_ok("{\"\u{e000}\":1,\"\u{1f600}\":2}"));
        // Escaped names sort by their values: "\n" (U+000A) before "!" (U+0021).
        assert!(value_ok(r#"{"\n":1,"!":2}"#));
        assert!(!value_ok(r#"{"!":1,"\n":2}"#));
        assert!(!value_ok(r#"{"\n":1,"\n":2}"#));
    }

    #[test]
    fn structure() {
        assert!(value_ok(r#"{"a":[1,{"b":null},true,false,"x"],"c":{}}"#));
        for bad in [
            "{ }",
            "[1, 2]",
            r#"{"a" :1}"#,
            "[1,]",
            "[,1]",
            "{,}",
            r#"{"a":1,}"#,
            "tru",
            "nul",
            "[",
            "{\"a\":1}x",
        ] {
            assert!(!value_ok(bad), "{bad}");
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(value_ok(&deep(MAX_DEPTH)));
        assert!(!value_ok(&deep(MAX_DEPTH + 1)));
    }

    #[test]
    fn unescaping() {
        let mut sc = Scanner::new(r#""a\"b\\c\b\f\n\r\t\u0001\u001fé""#.as_bytes());
        let s = sc.str().unwrap();
        assert_eq!(s.value().unwrap(), "a\"b\\c\u{8}\u{c}\n\r\t\u{1}\u{1f}é");
    }
}
