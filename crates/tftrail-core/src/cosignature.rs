//! Witness cosignatures (C2SP tlog-cosignature, the Ed25519 `cosignature/v1` type).
//!
//! A cosignature is a signed-note signature line `— <name> base64(keyid || timestamp ||
//! signature)` where
//! - the key ID is `SHA-256(name || "\n" || 0x04 || 32-byte public key)[:4]`;
//! - `timestamp` is a big-endian u64 POSIX time, at most 2^63 - 1;
//! - the Ed25519 signature covers `cosignature/v1\ntime <timestamp>\n` followed by the whole
//!   note body of the checkpoint (every line including extension lines, with its final newline,
//!   without signature lines).
//!
//! Verifier keys are vkeys with signature type 0x04: `name+<8 hex key ID>+base64(0x04 ||
//! pubkey)`. The private key text is the standard Ed25519 signer key (`PRIVATE+KEY+name+id+
//! base64(0x01 || seed)`), as Go's transparency-dev/formats/note reads it for cosigners.
//!
//! Out of scope: the ML-DSA-44 subtree cosignatures of the same spec, and any clock (callers
//! pass the time).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, Verifier as _};
use signed_note::{Note, Signature};

/// Signature type byte of an Ed25519 cosignature/v1 key (in the vkey and the key ID hash).
pub const COSIGNATURE_V1_TYPE: u8 = 0x04;

/// Length of a cosignature/v1 signature after the key ID: timestamp and Ed25519 signature.
pub const COSIGNATURE_V1_LEN: usize = 8 + 64;

/// Largest timestamp the spec allows (2^63 - 1).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Errors about witness keys and cosigned notes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// A key name that C2SP signed-note does not allow.
    #[error("invalid witness name {0:?}: use a non-empty name without spaces or '+', e.g. witness.example.com/w1")]
    BadName(String),
    /// A private key that does not parse.
    #[error("malformed witness signing key: {0}")]
    BadSigningKey(&'static str),
    /// A verifier key that does not parse or is not a cosignature/v1 key.
    #[error("malformed witness verifier key {key:?}: {reason}")]
    BadVerifierKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A note or signature line that does not parse.
    #[error("malformed note: {0}")]
    Malformed(String),
}

/// Validates a signed-note key name (non-empty, no whitespace, no '+').
fn check_name(name: &str) -> Result<(), CosignatureError> {
    if signed_note::is_key_name_valid(name) {
        Ok(())
    } else {
        Err(CosignatureError::BadName(name.to_string()))
    }
}

/// The key ID of a cosignature/v1 key: `SHA-256(name || "\n" || 0x04 || pubkey)[:4]`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut material = Vec::with_capacity(33);
    material.push(COSIGNATURE_V1_TYPE);
    material.extend_from_slice(public_key);
    signed_note::key_id(name, &material)
}

/// The signed-note key ID of the same key as a type 0x01 (checkpoint) key.
fn standard_key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut material = Vec::with_capacity(33);
    material.push(1);
    material.extend_from_slice(public_key);
    signed_note::key_id(name, &material)
}

/// The message a cosignature/v1 signs: header line, time line, then the note body.
pub fn signed_message(note_text: &[u8], time: u64) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {time}\n").into_bytes();
    msg.extend_from_slice(note_text);
    msg
}

/// A witness's private key.
#[derive(Clone)]
pub struct WitnessKey {
    name: String,
    id: u32,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WitnessKey({}+{:08x})", self.name, self.id)
    }
}

impl WitnessKey {
    /// Generates a fresh key from the OS's randomness.
    pub fn generate(name: &str) -> Result<Self, CosignatureError> {
        check_name(name)?;
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        Ok(Self::from_parts(name, key))
    }

    /// A key from a name and a 32-byte Ed25519 seed (for tests and imports).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, CosignatureError> {
        check_name(name)?;
        Ok(Self::from_parts(
            name,
            ed25519_dalek::SigningKey::from_bytes(seed),
        ))
    }

    fn from_parts(name: &str, key: ed25519_dalek::SigningKey) -> Self {
        let id = key_id(name, key.verifying_key().as_bytes());
        WitnessKey {
            name: name.to_string(),
            id,
            key,
        }
    }

    /// Parses a private key: the standard Ed25519 signer key
    /// `PRIVATE+KEY+<name>+<8 hex key ID>+base64(0x01 || 32-byte seed)` (what [`Self::to_text`]
    /// writes, and what Go's `transparency-dev/formats/note.NewSignerForCosignatureV1` reads), or
    /// the same with type byte 0x04 and the cosignature key ID. The key ID must match.
    pub fn parse(text: &str) -> Result<Self, CosignatureError> {
        let text = text.trim();
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(CosignatureError::BadSigningKey(
                "expected PRIVATE+KEY+<name>+<key id>+<base64>",
            ))?;
        let (name, rest) = rest
            .split_once('+')
            .ok_or(CosignatureError::BadSigningKey("missing key ID"))?;
        let (id_hex, b64) = rest
            .split_once('+')
            .ok_or(CosignatureError::BadSigningKey("missing key material"))?;
        check_name(name)?;
        let id = parse_key_id(id_hex).ok_or(CosignatureError::BadSigningKey(
            "the key ID is not 8 hex digits",
        ))?;
        let raw = B64
            .decode(b64)
            .map_err(|_| CosignatureError::BadSigningKey("key material is not base64"))?;
        let ty = match raw.first() {
            Some(&t @ (1 | COSIGNATURE_V1_TYPE)) => t,
            _ => {
                return Err(CosignatureError::BadSigningKey(
                    "unknown key type: a witness key is an Ed25519 key, type 0x01 (or 0x04)",
                ))
            }
        };
        let seed: [u8; 32] = raw[1..]
            .try_into()
            .map_err(|_| CosignatureError::BadSigningKey("key material is not 33 bytes"))?;
        let key = Self::from_parts(name, ed25519_dalek::SigningKey::from_bytes(&seed));
        let want = if ty == 1 {
            standard_key_id(name, key.key.verifying_key().as_bytes())
        } else {
            key.id
        };
        if want != id {
            return Err(CosignatureError::BadSigningKey(
                "the key ID does not match the key (altered key file?)",
            ));
        }
        Ok(key)
    }

    /// The private key in its text form (to be stored with mode 0600): the standard Ed25519
    /// signer key (type 0x01 and its key ID), the form Go witnesses read too. The
    /// cosignature key ID (type 0x04) is derived from it.
    pub fn to_text(&self) -> String {
        let mut raw = vec![1u8];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            standard_key_id(&self.name, self.key.verifying_key().as_bytes()),
            B64.encode(raw)
        )
    }

    /// The witness name (key name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The verifier key `name+<key ID>+base64(0x04 || pubkey)`.
    pub fn verifier_key(&self) -> String {
        vkey_text(&self.name, self.id, self.key.verifying_key().as_bytes())
    }

    /// The matching verifier.
    pub fn verifier(&self) -> WitnessVerifier {
        WitnessVerifier {
            text: self.verifier_key(),
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The cosignature bytes after the key ID: big-endian `time` then the Ed25519 signature.
    ///
    /// # Panics
    /// If `time` exceeds 2^63 - 1 (the spec's limit).
    pub fn sign_bytes(&self, note_text: &[u8], time: u64) -> Vec<u8> {
        assert!(time <= MAX_TIMESTAMP, "cosignature time beyond 2^63 - 1");
        let sig = self.key.sign(&signed_message(note_text, time));
        let mut out = Vec::with_capacity(COSIGNATURE_V1_LEN);
        out.extend_from_slice(&time.to_be_bytes());
        out.extend_from_slice(&sig.to_bytes());
        out
    }

    /// Cosigns a note body (the checkpoint text, ending in `\n`, without signatures) at `time`
    /// and returns one signature line `— <name> <base64>\n`.
    ///
    /// # Panics
    /// If `time` exceeds 2^63 - 1.
    pub fn cosign(&self, note_text: &[u8], time: u64) -> Vec<u8> {
        let sig = Signature::new(self.name.clone(), self.id, self.sign_bytes(note_text, time))
            .expect("name validated at construction");
        sig.to_bytes()
    }

    /// A `signed_note::Signer` that cosigns at a fixed time (for `Note::add_sigs`).
    pub fn signer_at(&self, time: u64) -> WitnessSigner<'_> {
        WitnessSigner { key: self, time }
    }
}

/// A [`WitnessKey`] bound to a timestamp, as a `signed_note::Signer`.
pub struct WitnessSigner<'a> {
    key: &'a WitnessKey,
    time: u64,
}

impl signed_note::Signer for WitnessSigner<'_> {
    fn name(&self) -> &str {
        &self.key.name
    }
    fn key_id(&self) -> u32 {
        self.key.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        if self.time > MAX_TIMESTAMP {
            return Err(ed25519_dalek::SignatureError::new());
        }
        Ok(self.key.sign_bytes(msg, self.time))
    }
}

fn vkey_text(name: &str, id: u32, public_key: &[u8; 32]) -> String {
    let mut raw = vec![COSIGNATURE_V1_TYPE];
    raw.extend_from_slice(public_key);
    format!("{name}+{id:08x}+{}", B64.encode(raw))
}

fn parse_key_id(hex: &str) -> Option<u32> {
    if hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(hex, 16).ok()
    } else {
        None
    }
}

/// A trusted witness verifier key.
#[derive(Clone, Debug)]
pub struct WitnessVerifier {
    text: String,
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl PartialEq for WitnessVerifier {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.id == other.id && self.key == other.key
    }
}
impl Eq for WitnessVerifier {}

impl WitnessVerifier {
    /// Parses `name+<8 hex key ID>+base64(0x04 || 32-byte pubkey)`; the key ID must match.
    pub fn parse(vkey: &str) -> Result<Self, CosignatureError> {
        let vkey = vkey.trim();
        let bad = |reason: &str| CosignatureError::BadVerifierKey {
            key: vkey.to_string(),
            reason: reason.to_string(),
        };
        // The base64 part may contain '+': split on the first two only.
        let (name, rest) = vkey
            .split_once('+')
            .ok_or_else(|| bad("expected <name>+<8 hex digits>+<base64>"))?;
        let (id_hex, b64) = rest
            .split_once('+')
            .ok_or_else(|| bad("expected <name>+<8 hex digits>+<base64>"))?;
        if !signed_note::is_key_name_valid(name) {
            return Err(bad("the name is empty or has spaces"));
        }
        let id = parse_key_id(id_hex).ok_or_else(|| bad("the key ID is not 8 hex digits"))?;
        let raw = B64
            .decode(b64)
            .map_err(|_| bad("the key material is not base64"))?;
        match raw.first() {
            Some(&COSIGNATURE_V1_TYPE) => {}
            Some(&1) => {
                return Err(bad(
                    "signature type 0x01 is a log (checkpoint) key; a witness cosignature/v1 key has type 0x04",
                ))
            }
            Some(t) => {
                return Err(bad(&format!(
                    "signature type 0x{t:02x} is not supported; a witness cosignature/v1 key has type 0x04"
                )))
            }
            None => return Err(bad("no key material")),
        }
        let pk: [u8; 32] = raw[1..]
            .try_into()
            .map_err(|_| bad("the public key is not 32 bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&pk)
            .map_err(|_| bad("not an Ed25519 public key"))?;
        if key_id(name, &pk) != id {
            return Err(bad("the key ID does not match the name and key"));
        }
        Ok(WitnessVerifier {
            text: vkey.to_string(),
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The verifier key text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `name+id` for messages.
    pub fn display_id(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// Verifies cosignature bytes (after the key ID: timestamp || signature) over a note body;
    /// returns the timestamp when the signature is valid.
    pub fn verify(&self, note_text: &[u8], sig_bytes: &[u8]) -> Option<u64> {
        if sig_bytes.len() != COSIGNATURE_V1_LEN {
            return None;
        }
        let time = u64::from_be_bytes(sig_bytes[..8].try_into().ok()?);
        if time > MAX_TIMESTAMP {
            return None;
        }
        let sig = ed25519_dalek::Signature::from_bytes(sig_bytes[8..].try_into().ok()?);
        self.key
            .verify(&signed_message(note_text, time), &sig)
            .ok()
            .map(|()| time)
    }
}

impl signed_note::Verifier for WitnessVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        WitnessVerifier::verify(self, msg, sig).is_some()
    }
}

/// A valid cosignature found on a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The witness (key) name.
    pub name: String,
    /// The witness key ID.
    pub key_id: u32,
    /// The cosignature's timestamp (POSIX seconds).
    pub time: u64,
}

/// The valid cosignatures of a signed note by the given witnesses: at most one per witness
/// (the first valid line), in the order of `verifiers`. Unknown keys, invalid signatures and a
/// malformed note give no entries.
pub fn cosignatures(note: &[u8], verifiers: &[WitnessVerifier]) -> Vec<Cosigned> {
    let Ok(parsed) = Note::from_bytes(note) else {
        return Vec::new();
    };
    let text = parsed.text();
    let sigs = note_signatures(note);
    let mut out = Vec::new();
    for v in verifiers {
        if out
            .iter()
            .any(|c: &Cosigned| c.name == v.name && c.key_id == v.id)
        {
            continue; // the same key listed twice counts once
        }
        let found = sigs
            .iter()
            .filter(|s| s.name() == v.name && s.id() == v.id)
            .find_map(|s| v.verify(text, s.signature()));
        if let Some(time) = found {
            out.push(Cosigned {
                name: v.name.clone(),
                key_id: v.id,
                time,
            });
        }
    }
    out
}

/// The signature lines of a note that parses (empty when it does not).
fn note_signatures(note: &[u8]) -> Vec<Signature> {
    let Ok(s) = std::str::from_utf8(note) else {
        return Vec::new();
    };
    let Some((_, block)) = s.rsplit_once("\n\n") else {
        return Vec::new();
    };
    block
        .lines()
        .filter_map(|l| Signature::from_bytes(l.as_bytes()).ok())
        .collect()
}

/// The note body (text before the signatures) of a signed note.
pub fn note_text(note: &[u8]) -> Result<Vec<u8>, CosignatureError> {
    Note::from_bytes(note)
        .map(|n| n.text().to_vec())
        .map_err(|e| CosignatureError::Malformed(e.to_string()))
}

/// Merges signature lines into a signed note. Each element of `lines` holds one or more
/// `— name base64\n` lines (e.g. a witness's response body). A line whose key (name and key
/// ID) is already on the note replaces that signature in place, so the log's signature stays
/// first and no key appears twice. The result has at most 100 signatures (signed-note's
/// parser limit); the signatures are not verified here.
pub fn add_signatures(note: &[u8], lines: &[Vec<u8>]) -> Result<Vec<u8>, CosignatureError> {
    let parsed = Note::from_bytes(note).map_err(|e| CosignatureError::Malformed(e.to_string()))?;
    let mut sigs = note_signatures(note);
    for (i, chunk) in lines.iter().enumerate() {
        let text = std::str::from_utf8(chunk).map_err(|_| {
            CosignatureError::Malformed(format!("signature block {} is not UTF-8", i + 1))
        })?;
        for (j, line) in text.split('\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let sig = Signature::from_bytes(line.as_bytes()).map_err(|_| {
                CosignatureError::Malformed(format!(
                    "signature block {} line {}: expected \"— <name> <base64>\", got {:?}",
                    i + 1,
                    j + 1,
                    truncate(line, 80)
                ))
            })?;
            match sigs
                .iter_mut()
                .find(|s| s.name() == sig.name() && s.id() == sig.id())
            {
                Some(existing) => *existing = sig,
                None => sigs.push(sig),
            }
        }
    }
    if sigs.len() > 100 {
        return Err(CosignatureError::Malformed(format!(
            "{} signatures; a note holds at most 100",
            sigs.len()
        )));
    }
    let merged =
        Note::new(parsed.text(), &sigs).map_err(|e| CosignatureError::Malformed(e.to_string()))?;
    Ok(merged.to_bytes())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, Origin, SigningKey};
    use crate::merkle::leaf_hash;
    use sha2::{Digest, Sha256};

    fn checkpoint_note() -> (SigningKey, Vec<u8>) {
        checkpoint_note_of_size(3)
    }

    fn checkpoint_note_of_size(size: u64) -> (SigningKey, Vec<u8>) {
        let origin = Origin::new("example.com/audit").unwrap();
        let log = SigningKey::generate(&origin);
        let c = Checkpoint {
            origin: origin.as_str().into(),
            size,
            root: leaf_hash(b"x"),
        };
        let note = log.sign_checkpoint(&c);
        (log, note)
    }

    #[test]
    fn key_id_is_the_spec_formula() {
        let seed = [7u8; 32];
        let w = WitnessKey::from_seed("witness.example.com/w1", &seed).unwrap();
        let pk = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        // Independently: SHA-256(name || 0x0A || 0x04 || pubkey)[:4].
        let mut h = Sha256::new();
        h.update(b"witness.example.com/w1");
        h.update([0x0A, 0x04]);
        h.update(pk.as_bytes());
        let want = u32::from_be_bytes(h.finalize()[..4].try_into().unwrap());
        assert_eq!(w.key_id(), want);
        // The vkey: name+id+base64(0x04 || pubkey).
        let vkey = w.verifier_key();
        let mut parts = vkey.splitn(3, '+');
        assert_eq!(parts.next(), Some("witness.example.com/w1"));
        assert_eq!(parts.next(), Some(format!("{want:08x}").as_str()));
        let raw = B64.decode(parts.next().unwrap()).unwrap();
        assert_eq!(raw[0], 0x04);
        assert_eq!(&raw[1..], pk.as_bytes());
        // It differs from the log-key ID of the same key (type 0x01).
        let log_id = signed_note::key_id(
            "witness.example.com/w1",
            &[&[1u8][..], pk.as_bytes()].concat(),
        );
        assert_ne!(w.key_id(), log_id);
    }

    #[test]
    fn cosign_and_verify() {
        let (log, note) = checkpoint_note();
        let text = note_text(&note).unwrap();
        let w = WitnessKey::generate("witness.example.com/w1").unwrap();
        let again = WitnessKey::parse(&w.to_text()).unwrap();
        assert_eq!(again.verifier_key(), w.verifier_key());
        let line = w.cosign(&text, 1_679_315_147);
        let line_s = String::from_utf8(line.clone()).unwrap();
        assert!(line_s.starts_with("— witness.example.com/w1 "));
        assert!(line_s.ends_with('\n'));

        // The signature bytes, checked independently: keyid || time || ed25519 over the message.
        let raw = B64
            .decode(line_s.trim_end().rsplit_once(' ').unwrap().1)
            .unwrap();
        assert_eq!(raw.len(), 4 + 8 + 64);
        assert_eq!(u32::from_be_bytes(raw[..4].try_into().unwrap()), w.key_id());
        assert_eq!(
            u64::from_be_bytes(raw[4..12].try_into().unwrap()),
            1_679_315_147
        );
        let mut msg = b"cosignature/v1\ntime 1679315147\n".to_vec();
        msg.extend_from_slice(&text);
        let pk = ed25519_dalek::VerifyingKey::from_bytes(w.verifier().public_key()).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(raw[12..].try_into().unwrap());
        pk.verify_strict(&msg, &sig).unwrap();

        let v = WitnessVerifier::parse(&w.verifier_key()).unwrap();
        assert_eq!(v.verify(&text, &raw[4..]), Some(1_679_315_147));
        // another time in the bytes
        let mut bad = raw[4..].to_vec();
        bad[7] ^= 1;
        assert_eq!(v.verify(&text, &bad), None);
        // another body
        let mut other = text.clone();
        other[text.len() - 3] ^= 1;
        assert_eq!(v.verify(&other, &raw[4..]), None);
        // another key
        let w2 = WitnessKey::generate("witness.example.com/w1").unwrap();
        assert_eq!(w2.verifier().verify(&text, &raw[4..]), None);
        // wrong length
        assert_eq!(v.verify(&text, &raw[4..70]), None);

        // Merged into the note and found by cosignatures().
        let merged = add_signatures(&note, std::slice::from_ref(&line)).unwrap();
        assert_eq!(
            cosignatures(&merged, std::slice::from_ref(&v)),
            vec![Cosigned {
                name: "witness.example.com/w1".into(),
                key_id: w.key_id(),
                time: 1_679_315_147
            }]
        );
        assert!(cosignatures(&merged, &[w2.verifier()]).is_empty());
        assert!(cosignatures(&note, std::slice::from_ref(&v)).is_empty());
        // The log's signature still verifies on the merged note.
        log.verifier().open_checkpoint(&merged).unwrap();
        // A cosignature over another checkpoint does not count.
        let (_, note2) = checkpoint_note_of_size(4);
        let moved = add_signatures(&note2, &[line]).unwrap();
        assert!(cosignatures(&moved, &[v]).is_empty());
    }

    #[test]
    fn signer_trait_matches_cosign() {
        let (_log, note) = checkpoint_note();
        let w = WitnessKey::generate("w.example/1").unwrap();
        let mut n = Note::from_bytes(&note).unwrap();
        n.add_sigs(&[&w.signer_at(42)]).unwrap();
        let list = signed_note::VerifierList::new(vec![Box::new(w.verifier())]);
        let (ok, _) = n.verify(&list).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(cosignatures(&n.to_bytes(), &[w.verifier()])[0].time, 42);
    }

    #[test]
    fn add_signatures_dedups_and_keeps_log_first() {
        let (log, note) = checkpoint_note();
        let text = note_text(&note).unwrap();
        let w1 = WitnessKey::generate("w1.example").unwrap();
        let w2 = WitnessKey::generate("w2.example").unwrap();
        let both = [w1.cosign(&text, 10), w2.cosign(&text, 11)].concat();
        let merged = add_signatures(&note, &[both, w1.cosign(&text, 12)]).unwrap();
        let s = String::from_utf8(merged.clone()).unwrap();
        let sig_lines: Vec<&str> = s.rsplit_once("\n\n").unwrap().1.lines().collect();
        assert_eq!(sig_lines.len(), 3);
        assert!(sig_lines[0].starts_with(&format!("— {} ", log.name())));
        let got = cosignatures(&merged, &[w1.verifier(), w2.verifier(), w1.verifier()]);
        assert_eq!(got.len(), 2, "a key listed twice counts once");
        assert_eq!(got[0].time, 12, "the later line replaced the earlier one");
        // garbage lines are refused with their position
        let err = add_signatures(&note, &[b"hello\n".to_vec()]).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(add_signatures(b"not a note", &[]).is_err());
    }

    #[test]
    fn duplicate_lines_count_once() {
        let (_log, note) = checkpoint_note();
        let text = note_text(&note).unwrap();
        let w = WitnessKey::generate("w1.example").unwrap();
        // Two lines by the same key appended by hand (add_signatures would merge them).
        let mut doubled = note.clone();
        doubled.extend_from_slice(&w.cosign(&text, 1));
        doubled.extend_from_slice(&w.cosign(&text, 2));
        assert_eq!(cosignatures(&doubled, &[w.verifier()]).len(), 1);
    }

    #[test]
    fn reads_go_witness_keys() {
        // A test key of transparency-dev/witness (Apache-2.0), read there by Go's
        // formats/note.NewSignerForCosignatureV1: a standard type 0x01 signer key.
        let k = WitnessKey::parse(
            "PRIVATE+KEY+witness+f13a86db+AaLa/dfyBhyo/m0Z7WCi98ENVZWtrP8pxgRNrx7tIWiA",
        )
        .unwrap();
        assert_eq!(k.name(), "witness");
        assert!(k.to_text().starts_with("PRIVATE+KEY+witness+f13a86db+"));
        assert_ne!(
            k.key_id(),
            0xf13a86db,
            "the cosignature key ID is the 0x04 one"
        );
        let vk = k.verifier_key();
        assert_eq!(WitnessVerifier::parse(&vk).unwrap().key_id(), k.key_id());
    }

    #[test]
    fn keys_refuse_bad_input() {
        assert!(WitnessKey::generate("a b").is_err());
        assert!(WitnessKey::generate("a+b").is_err());
        assert!(WitnessKey::generate("").is_err());
        // A log key is not a witness key, and the message says so.
        let log = SigningKey::generate(&Origin::new("example.com/log").unwrap());
        let e = WitnessVerifier::parse(log.verifier_key()).unwrap_err();
        assert!(e.to_string().contains("0x04"), "{e}");
        // Go's convention: a standard Ed25519 signer key is usable as a witness key; its
        // cosignature key ID is the 0x04 one, not the log key's.
        let as_witness = WitnessKey::parse(log.to_text()).unwrap();
        assert_ne!(
            as_witness.verifier_key().split('+').nth(1),
            log.verifier_key().split('+').nth(1)
        );
        // Both private forms parse to the same key; a wrong key ID in either is refused.
        let w0 = WitnessKey::generate("w.example").unwrap();
        let t1 = w0.to_text();
        let parts: Vec<&str> = t1.splitn(5, '+').collect();
        assert_eq!(B64.decode(parts[4]).unwrap()[0], 0x01, "{t1}");
        let mut raw4 = vec![0x04u8];
        raw4.extend_from_slice(&w0.key.to_bytes());
        let t4 = format!(
            "PRIVATE+KEY+w.example+{:08x}+{}",
            w0.key_id(),
            B64.encode(&raw4)
        );
        assert_eq!(
            WitnessKey::parse(&t4).unwrap().verifier_key(),
            w0.verifier_key()
        );
        let bad4 = format!(
            "PRIVATE+KEY+w.example+{:08x}+{}",
            w0.key_id() ^ 1,
            B64.encode(&raw4)
        );
        assert!(WitnessKey::parse(&bad4).is_err());
        let bad1 = format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            parts[2],
            u32::from_str_radix(parts[3], 16).unwrap() ^ 1,
            parts[4]
        );
        assert!(WitnessKey::parse(&bad1).is_err());
        // An altered key ID.
        let w = WitnessKey::generate("w.example").unwrap();
        let vk = w.verifier_key();
        let (name, rest) = vk.split_once('+').unwrap();
        let (id, b64) = rest.split_once('+').unwrap();
        let flipped = format!(
            "{name}+{:08x}+{b64}",
            u32::from_str_radix(id, 16).unwrap() ^ 1
        );
        assert!(WitnessVerifier::parse(&flipped)
            .unwrap_err()
            .to_string()
            .contains("does not match"));
        assert!(WitnessVerifier::parse("garbage").is_err());
        assert!(WitnessVerifier::parse("w+0000000g+AA==").is_err());
        let text = w.to_text();
        assert!(WitnessKey::parse(&text.replace("PRIVATE", "PUBLIC")).is_err());
        // Debug never shows the private key.
        assert!(!format!("{w:?}").contains(text.splitn(5, '+').nth(4).unwrap()));
    }
}
