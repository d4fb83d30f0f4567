#!/usr/bin/env python3
"""An independent check of a C2SP tlog-cosignature/v1 (Ed25519) signature line, written from
the spec (c2sp.org/tlog-cosignature) for tftrail's tests; it shares no code with tftrail.

usage: check_cosignature.py VKEY CHECKPOINT_FILE SIGNATURE_LINES_FILE
  VKEY: name+<8 hex key id>+base64(0x04 || 32-byte Ed25519 public key)
  CHECKPOINT_FILE: the signed checkpoint note (body, empty line, signature lines)
  SIGNATURE_LINES_FILE: the witness's response (one or more "— name base64" lines)
Prints the timestamp of the valid cosignature by VKEY; exits 1 when there is none.
"""
import base64
import hashlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def main():
    vkey, cp_path, sig_path = sys.argv[1:4]
    name, key_id_hex, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 0x04:
        fail("vkey is not a cosignature/v1 key (type byte 0x04, 32-byte key)")
    # Key ID: SHA-256(name || "\n" || 0x04 || public key)[:4]
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if key_id.hex() != key_id_hex:
        fail(f"key id {key_id_hex} != computed {key_id.hex()}")
    note = open(cp_path, "rb").read()
    # The note body: everything up to and including the newline before the empty line.
    i = note.rfind(b"\n\n")
    if i < 0:
        fail("checkpoint is not a signed note")
    body = note[: i + 1]
    pub = Ed25519PublicKey.from_public_bytes(raw[1:])
    prefix = "\u2014 ".encode()
    for line in open(sig_path, "rb").read().split(b"\n"):
        if not line:
            continue
        if not line.startswith(prefix):
            fail(f"not a signature line: {line!r}")
        sig_name, sig_b64 = line[len(prefix):].decode().split(" ", 1)
        sig = base64.b64decode(sig_b64, validate=True)
        if sig_name != name or sig[:4] != key_id:
            continue
        if len(sig) != 4 + 8 + 64:
            fail(f"cosignature of {len(sig)} bytes, want 76")
        ts = int.from_bytes(sig[4:12], "big")
        if ts >= 2**63:
            fail("timestamp beyond 2^63 - 1")
        msg = b"cosignature/v1\ntime " + str(ts).encode() + b"\n" + body
        try:
            pub.verify(sig[12:], msg)
        except InvalidSignature:
            fail("cosignature does not verify")
        print(ts)
        return
    fail("no cosignature by this key")


main()
