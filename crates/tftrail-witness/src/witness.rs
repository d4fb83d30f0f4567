//! The add-checkpoint decision, synchronous: parse, check against the recorded checkpoint,
//! persist, cosign. The HTTP layer only maps [`Refusal`]s to status codes.

use std::collections::HashMap;
use std::sync::Mutex;

use tftrail_core::checkpoint::{Checkpoint, CheckpointError, VerifierKey};
use tftrail_core::cosignature::WitnessKey;
use tftrail_core::merkle::{check_consistency, empty_root, ProofError};

use crate::request;
use crate::state::{Recorded, StateDir};
use crate::WitnessError;

/// Why a checkpoint was not cosigned; each maps to the status tlog-witness prescribes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// 400: the body is malformed, or old > the checkpoint's size.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 403: no trusted key of the origin signed it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404: the witness does not know the origin.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// 409 with `text/x.tlog.size`: old is not the size the witness recorded.
    #[error("old size {old} is not the witness's recorded size {recorded}")]
    StaleOld {
        /// The client's old size.
        old: u64,
        /// The recorded size (sent back).
        recorded: u64,
    },
    /// 409: same size as recorded, another root hash (a fork).
    #[error(
        "checkpoint of size {size} has another root hash than the one the witness cosigned: a fork"
    )]
    SameSizeOtherRoot {
        /// The size.
        size: u64,
    },
    /// 422: the consistency proof does not verify.
    #[error("consistency proof from size {old} to {size} does not verify: {why}")]
    BadProof {
        /// Old size.
        old: u64,
        /// New size.
        size: u64,
        /// Detail.
        why: String,
    },
    /// 500: the state could not be persisted; nothing was cosigned.
    #[error("internal error")]
    Internal(String),
}

struct Slot {
    keys: Vec<VerifierKey>,
    recorded: Mutex<Option<Recorded>>,
}

/// A witness: its key, the logs it trusts, and its durable state.
pub struct Witness {
    key: WitnessKey,
    slots: HashMap<String, Slot>,
    state: StateDir,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("key", &self.key)
            .field("origins", &self.slots.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The outcome of a cosigned request, for logs.
#[derive(Debug, Clone)]
pub struct Cosigned {
    /// Origin.
    pub origin: String,
    /// Previous size.
    pub old: u64,
    /// New size.
    pub size: u64,
    /// The response body: the cosignature line(s).
    pub body: Vec<u8>,
}

impl Witness {
    /// A witness for the given log keys (one or more per origin; the key name is the origin),
    /// with its recorded checkpoints loaded from `state`.
    pub fn new(
        key: WitnessKey,
        logs: Vec<VerifierKey>,
        state: StateDir,
    ) -> Result<Self, WitnessError> {
        if logs.is_empty() {
            return Err(WitnessError::Config(
                "no log keys: pass --log VKEY (repeatable) or --log-policy FILE".into(),
            ));
        }
        let mut slots: HashMap<String, Slot> = HashMap::new();
        for k in logs {
            let origin = k.name().to_string();
            match slots.get_mut(&origin) {
                Some(s) => {
                    if !s.keys.iter().any(|x| x.as_str() == k.as_str()) {
                        s.keys.push(k);
                    }
                }
                None => {
                    let recorded = state.load(&origin)?;
                    slots.insert(
                        origin,
                        Slot {
                            keys: vec![k],
                            recorded: Mutex::new(recorded),
                        },
                    );
                }
            }
        }
        Ok(Witness { key, slots, state })
    }

    /// The witness key.
    pub fn key(&self) -> &WitnessKey {
        &self.key
    }

    /// The recorded size for an origin (0 when none).
    pub fn recorded_size(&self, origin: &str) -> Option<u64> {
        let slot = self.slots.get(origin)?;
        let r = slot.recorded.lock().unwrap_or_else(|p| p.into_inner());
        Some(r.as_ref().map_or(0, |r| r.size))
    }

    /// Handles one add-checkpoint body at time `now` (POSIX seconds).
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<Cosigned, Refusal> {
        let req = request::parse(body).map_err(Refusal::BadRequest)?;
        let text = tftrail_core::cosignature::note_text(&req.checkpoint).map_err(|e| {
            Refusal::BadRequest(format!("the checkpoint is not a signed note: {e}"))
        })?;
        let cp = Checkpoint::parse_body(&text).map_err(|e| Refusal::BadRequest(e.to_string()))?;
        let slot = self
            .slots
            .get(&cp.origin)
            .ok_or_else(|| Refusal::UnknownOrigin(cp.origin.clone()))?;
        let mut failures = Vec::new();
        let signed = slot
            .keys
            .iter()
            .any(|k| match k.open_note(&req.checkpoint) {
                Ok(_) => true,
                Err(e) => {
                    failures.push(match e {
                        CheckpointError::BadSignature(id) => format!("{id}: invalid signature"),
                        e => e.to_string(),
                    });
                    false
                }
            });
        if !signed {
            return Err(Refusal::Forbidden(format!(
                "no trusted key of {} signed this checkpoint ({})",
                cp.origin,
                failures.join("; ")
            )));
        }
        if req.old > cp.size {
            return Err(Refusal::BadRequest(format!(
                "old size {} is larger than the checkpoint's size {}",
                req.old, cp.size
            )));
        }

        // Check and persist under the origin's lock: no other request for it in between.
        let mut recorded = slot.recorded.lock().unwrap_or_else(|p| p.into_inner());
        let (rec_size, rec_root) = match recorded.as_ref() {
            Some(r) => (r.size, r.root_hash().expect("validated on load")),
            None => (0, empty_root()),
        };
        if req.old != rec_size {
            return Err(Refusal::StaleOld {
                old: req.old,
                recorded: rec_size,
            });
        }
        if req.old == cp.size {
            if cp.root != rec_root {
                return Err(Refusal::SameSizeOtherRoot { size: cp.size });
            }
            if !req.proof.is_empty() {
                return Err(Refusal::BadProof {
                    old: req.old,
                    size: cp.size,
                    why: "the proof between equal sizes must be empty".into(),
                });
            }
        } else if req.old == 0 {
            if !req.proof.is_empty() {
                return Err(Refusal::BadProof {
                    old: 0,
                    size: cp.size,
                    why: "the proof from size 0 must be empty".into(),
                });
            }
        } else {
            check_consistency(&req.proof, req.old, rec_root, cp.size, cp.root).map_err(|e| {
                let why = match e {
                    ProofError::Invalid => {
                        "the checkpoint is not an extension of the one the witness cosigned"
                            .to_string()
                    }
                    e => e.to_string(),
                };
                tracing::warn!(
                    origin = %cp.origin,
                    old = req.old,
                    size = cp.size,
                    checkpoint = %String::from_utf8_lossy(&req.checkpoint),
                    "inconsistent checkpoint refused (possible log misbehaviour)"
                );
                Refusal::BadProof {
                    old: req.old,
                    size: cp.size,
                    why,
                }
            })?;
        }

        // A clock stepped back never makes a cosignature older than the one before it.
        let now = now.max(recorded.as_ref().map_or(0, |r| r.time));
        let new = Recorded::new(&cp.origin, cp.size, &cp.root, &req.checkpoint, now);
        if let Err(e) = self.state.store(&new) {
            // The file may or may not have been replaced: take what the disk says, so that
            // memory is never behind it.
            if let Ok(on_disk) = self.state.load(&cp.origin) {
                *recorded = on_disk;
            }
            return Err(Refusal::Internal(e.to_string()));
        }
        *recorded = Some(new);
        drop(recorded);
        Ok(Cosigned {
            origin: cp.origin,
            old: req.old,
            size: cp.size,
            body: self.key.cosign(&text, now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tftrail_core::checkpoint::{Origin, SigningKey};
    use tftrail_core::cosignature::{cosignatures, note_text};
    use tftrail_core::merkle::leaf_hash;

    #[test]
    fn time_never_goes_backwards_and_size_zero_needs_the_empty_root() {
        let d = tempfile::tempdir().unwrap();
        let log = SigningKey::generate(&Origin::new("o.example/log").unwrap());
        let wk = WitnessKey::generate("w.example").unwrap();
        let w = Witness::new(
            wk.clone(),
            vec![log.verifier()],
            StateDir::open(d.path()).unwrap(),
        )
        .unwrap();
        let cp = |size, root| {
            log.sign_checkpoint(&Checkpoint {
                origin: "o.example/log".into(),
                size,
                root,
            })
        };
        // Size 0 with another root than the empty tree's: a fork of the empty tree.
        let bad0 = cp(0, leaf_hash(b"x"));
        assert!(matches!(
            w.add_checkpoint(&request::encode(0, &[], &bad0), 100),
            Err(Refusal::SameSizeOtherRoot { size: 0 })
        ));
        let one = cp(1, leaf_hash(b"a"));
        let r = w
            .add_checkpoint(&request::encode(0, &[], &one), 100)
            .unwrap();
        // Re-submitted with the clock stepped back: the cosignature keeps time 100.
        let r2 = w
            .add_checkpoint(&request::encode(1, &[], &one), 50)
            .unwrap();
        let text = note_text(&one).unwrap();
        for (body, want) in [(r.body, 100), (r2.body, 100)] {
            let merged = tftrail_core::cosignature::add_signatures(&one, &[body]).unwrap();
            let got = cosignatures(&merged, &[wk.verifier()]);
            assert_eq!(got[0].time, want);
        }
        assert!(!text.is_empty());
        assert_eq!(w.recorded_size("o.example/log"), Some(1));
        assert_eq!(w.recorded_size("nope"), None);
    }
}
