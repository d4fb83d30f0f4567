//! The audit record: one log entry, RFC 8785 canonical JSON, schema-versioned.
//!
//! ```json
//! {"actor":{"host":"ci-7","user":"alice"},"blobs":[{"name":"plan.json","sha256":"…","size":81234}],
//!  "kind":"terraform.plan","payload":{…},"time":"2026-11-26T05:00:00.123Z","v":1}
//! ```
//! `v` is the schema version; readers reject versions they do not know. `kind` names what
//! happened (`[a-z0-9][a-z0-9._-]*`, at most 64 characters). `time` is UTC, RFC 3339 with `Z`,
//! as asserted by the writer. `actor` is who ran tftrail, as seen by the writer (self-asserted).
//! `payload` is any JSON object. `blobs` reference content-addressed artifacts stored beside the
//! log; verification checks each one's SHA-256 and size.

use serde::{Deserialize, Serialize};

use crate::MAX_ENTRY_SIZE;

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Problems with a record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Not a valid kind.
    #[error(
        "invalid record kind {0:?}: use lower-case letters, digits, '.', '_' or '-' (at most 64)"
    )]
    BadKind(String),
    /// Not a UTC RFC 3339 time.
    #[error("invalid record time {0:?}: expected UTC RFC 3339 like 2026-01-31T12:00:00Z")]
    BadTime(String),
    /// The payload is not an object.
    #[error("payload must be a JSON object, got {0}")]
    PayloadNotObject(&'static str),
    /// The encoded record is too large for an entry.
    #[error(
        "record is {0} bytes; a log entry holds at most 65535 (store large artifacts as blobs)"
    )]
    TooLarge(usize),
    /// The entry is not a record.
    #[error("entry is not a valid record: {0}")]
    Malformed(String),
    /// The entry is a record but not in canonical form.
    #[error("entry is not in canonical (RFC 8785) form")]
    NotCanonical,
    /// Unknown schema version.
    #[error("record schema version {0} is not supported (this tftrail reads version 1)")]
    UnknownVersion(u64),
    /// A bad blob reference.
    #[error("invalid blob reference: {0}")]
    BadBlob(String),
}

/// Who made the record, as the writer saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// OS user name.
    pub user: String,
    /// Host name.
    pub host: String,
    /// CI identity from the environment (self-asserted), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<serde_json::Value>,
}

/// A reference to a content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    /// What it is (`plan.json`, `output.txt` …).
    pub name: String,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Schema version.
    pub v: u32,
    /// What happened.
    pub kind: String,
    /// When (UTC, RFC 3339).
    pub time: String,
    /// Who.
    pub actor: Actor,
    /// The details.
    pub payload: serde_json::Value,
    /// Artifacts stored beside the log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<BlobRef>,
}

/// Checks a record kind.
pub fn validate_kind(kind: &str) -> Result<(), RecordError> {
    let b = kind.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(RecordError::BadKind(kind.to_string()))
    }
}

/// Checks `YYYY-MM-DDTHH:MM:SS[.f+]Z`.
pub fn validate_time(t: &str) -> Result<(), RecordError> {
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

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl Record {
    /// Builds a record, validating every field.
    pub fn new(
        kind: &str,
        time: &str,
        actor: Actor,
        payload: serde_json::Value,
        blobs: Vec<BlobRef>,
    ) -> Result<Self, RecordError> {
        let r = Record {
            v: SCHEMA_VERSION,
            kind: kind.to_string(),
            time: time.to_string(),
            actor,
            payload,
            blobs,
        };
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), RecordError> {
        if u64::from(self.v) != u64::from(SCHEMA_VERSION) {
            return Err(RecordError::UnknownVersion(self.v.into()));
        }
        validate_kind(&self.kind)?;
        validate_time(&self.time)?;
        if !self.payload.is_object() {
            return Err(RecordError::PayloadNotObject(json_type(&self.payload)));
        }
        for b in &self.blobs {
            if b.sha256.len() != 64
                || !b
                    .sha256
                    .bytes()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(RecordError::BadBlob(format!("sha256 {:?}", b.sha256)));
            }
            if b.name.is_empty() {
                return Err(RecordError::BadBlob("empty name".into()));
            }
        }
        Ok(())
    }

    /// Encodes the record as a log entry (canonical JSON), refusing oversized ones.
    pub fn to_entry(&self) -> Result<Vec<u8>, RecordError> {
        let bytes = serde_json_canonicalizer::to_vec(self)
            .map_err(|e| RecordError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_ENTRY_SIZE {
            return Err(RecordError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Decodes and validates a log entry, including that it is in canonical form.
    pub fn from_entry(entry: &[u8]) -> Result<Self, RecordError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: Option<u64>,
        }
        // One parse into the strict struct (unknown fields rejected), one canonical
        // re-encoding compared with the stored bytes: canonical form and no lost fields.
        let rec: Record = match serde_json::from_slice(entry) {
            Ok(r) => r,
            Err(e) => {
                if let Ok(VersionOnly { v: Some(v) }) = serde_json::from_slice(entry) {
                    if v != u64::from(SCHEMA_VERSION) {
                        return Err(RecordError::UnknownVersion(v));
                    }
                }
                return Err(RecordError::Malformed(e.to_string()));
            }
        };
        rec.validate()?;
        let canonical = serde_json_canonicalizer::to_vec(&rec)
            .map_err(|e| RecordError::Malformed(e.to_string()))?;
        if canonical != entry {
            return Err(RecordError::NotCanonical);
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn actor() -> Actor {
        Actor {
            user: "alice".into(),
            host: "box".into(),
            ci: None,
        }
    }

    #[test]
    fn canonical_roundtrip() {
        let r = Record::new(
            "terraform.plan",
            "2026-11-26T05:00:00.123Z",
            actor(),
            json!({"z": 1, "a": [true, null, "é"], "n": 1.5e3}),
            vec![],
        )
        .unwrap();
        let e = r.to_entry().unwrap();
        let s = String::from_utf8(e.clone()).unwrap();
        assert!(s.starts_with(r#"{"actor":{"host":"box","user":"alice"},"kind":"terraform.plan","payload":{"a":[true,null,"é"],"n":1500,"z":1}"#), "{s}");
        assert_eq!(Record::from_entry(&e).unwrap().to_entry().unwrap(), e);
        // Same content, not canonical.
        let pretty = serde_json::to_vec_pretty(&r).unwrap();
        assert!(matches!(
            Record::from_entry(&pretty),
            Err(RecordError::NotCanonical)
        ));
    }

    #[test]
    fn rejects_bad_fields() {
        assert!(Record::new(
            "Bad Kind",
            "2026-11-26T05:00:00Z",
            actor(),
            json!({}),
            vec![]
        )
        .is_err());
        assert!(Record::new("k", "2026-11-26 05:00:00", actor(), json!({}), vec![]).is_err());
        assert!(Record::new("k", "2026-13-26T05:00:00Z", actor(), json!({}), vec![]).is_err());
        assert!(matches!(
            Record::new("k", "2026-11-26T05:00:00Z", actor(), json!([1]), vec![]),
            Err(RecordError::PayloadNotObject("an array"))
        ));
        let big = Record::new(
            "k",
            "2026-11-26T05:00:00Z",
            actor(),
            json!({"x": "a".repeat(70_000)}),
            vec![],
        )
        .unwrap();
        assert!(matches!(big.to_entry(), Err(RecordError::TooLarge(_))));
        assert!(Record::from_entry(b"{\"v\":2}").is_err());
        assert!(Record::from_entry(b"not json").is_err());
    }
}
