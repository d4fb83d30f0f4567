//! Checkpoints (C2SP tlog-checkpoint) inside signed notes (C2SP signed-note) with Ed25519
//! keys; key generation and the `name+keyid+base64` verifier-key form.

use signed_note::{
    Note, Signer as _, StandardSigner, StandardVerifier, Verifier as _, VerifierList,
};

use crate::merkle::{hash_b64, Hash};

/// Errors about keys, origins and checkpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// An origin that C2SP does not allow.
    #[error("invalid origin {0:?}: use a scheme-less URL-like name without spaces or '+', e.g. example.com/audit")]
    BadOrigin(String),
    /// A private key that does not parse.
    #[error("malformed signing key")]
    BadSigningKey,
    /// A verifier key that does not parse.
    #[error("malformed verifier key {0:?}: expected <name>+<8 hex digits>+<base64>")]
    BadVerifierKey(String),
    /// The note or its body does not parse.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// A signature by the trusted key does not verify.
    #[error(
        "checkpoint signature by {0} does not verify: the checkpoint was altered or re-signed"
    )]
    BadSignature(String),
    /// No signature by the trusted key.
    #[error("checkpoint is not signed by the trusted key {want} (signed by: {found})")]
    NotSignedByKey {
        /// The trusted key's name+id.
        want: String,
        /// The signers found.
        found: String,
    },
    /// Signed by the trusted key but for another log.
    #[error("checkpoint origin {found:?} is not the log's origin {want:?}")]
    WrongOrigin {
        /// Expected.
        want: String,
        /// Found.
        found: String,
    },
}

/// A validated log origin: the checkpoint's first line and the key name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// Validates an origin: 1–255 printable ASCII characters, no spaces, no '+'.
    pub fn new(s: &str) -> Result<Self, CheckpointError> {
        let ok =
            !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'+');
        if ok {
            Ok(Origin(s.to_string()))
        } else {
            Err(CheckpointError::BadOrigin(s.to_string()))
        }
    }

    /// The origin text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A parsed checkpoint body.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Log origin.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: origin, size, base64 root, each line ending in `\n`.
    pub fn body(&self) -> Vec<u8> {
        format!("{}\n{}\n{}\n", self.origin, self.size, hash_b64(&self.root)).into_bytes()
    }

    /// Parses a body strictly (no extension lines are written by tftrail, but they are
    /// accepted as C2SP allows them).
    pub fn parse_body(text: &[u8]) -> Result<Self, CheckpointError> {
        let c = tlog_tiles::Checkpoint::from_bytes(text).map_err(|_| {
            CheckpointError::Malformed("body is not origin, size, root hash".into())
        })?;
        Ok(Checkpoint {
            origin: c.origin().to_string(),
            size: c.size(),
            root: *c.hash(),
        })
    }
}

/// The log's signing key.
#[derive(Clone)]
pub struct SigningKey {
    signer: StandardSigner,
    skey: String,
    vkey: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.vkey)
    }
}

impl SigningKey {
    /// Generates a fresh Ed25519 key named after the origin, from the OS's randomness.
    pub fn generate(origin: &Origin) -> Self {
        let (skey, _vkey) = signed_note::generate_key(&mut rand_core::OsRng, origin.as_str());
        Self::parse(&skey).expect("freshly generated key parses")
    }

    /// Parses a `PRIVATE+KEY+name+id+base64` signer key.
    pub fn parse(skey: &str) -> Result<Self, CheckpointError> {
        let skey = skey.trim();
        let signer = StandardSigner::new(skey).map_err(|_| CheckpointError::BadSigningKey)?;
        // Derive the verifier key from the private key bytes.
        use base64::Engine;
        let b64 = skey
            .splitn(5, '+')
            .nth(4)
            .ok_or(CheckpointError::BadSigningKey)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| CheckpointError::BadSigningKey)?;
        let sk: [u8; 32] = raw
            .get(1..33)
            .and_then(|s| s.try_into().ok())
            .ok_or(CheckpointError::BadSigningKey)?;
        let sk = ed25519_dalek::SigningKey::from_bytes(&sk);
        let vkey = signed_note::new_ed25519_verifier_key(signer.name(), &sk.verifying_key());
        Ok(SigningKey {
            signer,
            skey: skey.to_string(),
            vkey,
        })
    }

    /// The private key in its text form (to be stored with mode 0600).
    pub fn to_text(&self) -> &str {
        &self.skey
    }

    /// The key name (the origin).
    pub fn name(&self) -> &str {
        self.signer.name()
    }

    /// The verifier key, `name+keyid+base64(0x01 || pubkey)`.
    pub fn verifier_key(&self) -> &str {
        &self.vkey
    }

    /// The matching verifier.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey::parse(&self.vkey).expect("derived verifier key parses")
    }

    /// Signs arbitrary note text (must end in `\n`) and returns the signed note.
    pub fn sign_note(&self, text: &[u8]) -> Vec<u8> {
        let mut note = Note::new(text, &[]).expect("tftrail only signs well-formed text");
        note.add_sigs(&[&self.signer]).expect("valid key name");
        note.to_bytes()
    }

    /// Signs a checkpoint.
    pub fn sign_checkpoint(&self, c: &Checkpoint) -> Vec<u8> {
        self.sign_note(&c.body())
    }
}

/// A trusted verifier key.
#[derive(Clone, Debug)]
pub struct VerifierKey {
    text: String,
    name: String,
    id: u32,
}

impl VerifierKey {
    /// Parses `name+keyid+base64`.
    pub fn parse(vkey: &str) -> Result<Self, CheckpointError> {
        let vkey = vkey.trim();
        let v = StandardVerifier::new(vkey)
            .map_err(|_| CheckpointError::BadVerifierKey(vkey.to_string()))?;
        Ok(VerifierKey {
            text: vkey.to_string(),
            name: v.name().to_string(),
            id: v.key_id(),
        })
    }

    /// The key's text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The key name (the log origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name+id` for messages.
    pub fn display_id(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// Verifies a signed note and returns its text.
    pub fn open_note(&self, note: &[u8]) -> Result<Vec<u8>, CheckpointError> {
        let parsed =
            Note::from_bytes(note).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        let v = StandardVerifier::new(&self.text).expect("parsed before");
        let list = VerifierList::new(vec![Box::new(v)]);
        match parsed.verify(&list) {
            Ok(_) => Ok(parsed.text().to_vec()),
            Err(signed_note::NoteError::InvalidSignature { .. }) => {
                Err(CheckpointError::BadSignature(self.display_id()))
            }
            Err(signed_note::NoteError::UnverifiedNote) => Err(CheckpointError::NotSignedByKey {
                want: self.display_id(),
                found: signers(note),
            }),
            Err(e) => Err(CheckpointError::Malformed(e.to_string())),
        }
    }

    /// Verifies a signed checkpoint and parses its body; the origin must be the key's name.
    pub fn open_checkpoint(&self, note: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let text = self.open_note(note)?;
        let c = Checkpoint::parse_body(&text)?;
        if c.origin != self.name {
            return Err(CheckpointError::WrongOrigin {
                want: self.name.clone(),
                found: c.origin,
            });
        }
        Ok(c)
    }
}

/// Lists `name+id` of every signature line of a note, for messages.
fn signers(note: &[u8]) -> String {
    let text = String::from_utf8_lossy(note);
    let found: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("— "))
        .filter_map(|l| {
            let (name, sig) = l.split_once(' ')?;
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD.decode(sig).ok()?;
            let id = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?);
            Some(format!("{name}+{id:08x}"))
        })
        .collect();
    if found.is_empty() {
        "nobody".into()
    } else {
        found.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    #[test]
    fn sign_and_open() {
        let origin = Origin::new("example.com/audit").unwrap();
        let key = SigningKey::generate(&origin);
        let again = SigningKey::parse(key.to_text()).unwrap();
        assert_eq!(again.verifier_key(), key.verifier_key());
        assert!(key.verifier_key().starts_with("example.com/audit+"));
        let c = Checkpoint {
            origin: origin.as_str().into(),
            size: 7,
            root: leaf_hash(b"x"),
        };
        let note = key.sign_checkpoint(&c);
        let text = String::from_utf8(note.clone()).unwrap();
        assert!(text.starts_with("example.com/audit\n7\n"));
        assert!(text.contains("\n\n\u{2014} example.com/audit "));
        let v = key.verifier();
        assert_eq!(v.open_checkpoint(&note).unwrap(), c);

        // flipped body byte
        let mut bad = note.clone();
        bad[18] = b'8';
        assert!(matches!(
            v.open_checkpoint(&bad),
            Err(CheckpointError::BadSignature(_))
        ));
        // another key
        let other = SigningKey::generate(&origin);
        let forged = other.sign_checkpoint(&c);
        assert!(matches!(
            v.open_checkpoint(&forged),
            Err(CheckpointError::NotSignedByKey { .. })
        ));
        // garbage
        assert!(matches!(
            v.open_checkpoint(b"hello"),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[test]
    fn origins() {
        assert!(Origin::new("a b").is_err());
        assert!(Origin::new("a+b").is_err());
        assert!(Origin::new("").is_err());
        assert!(Origin::new("tftrail.local/host/log").is_ok());
    }
}
