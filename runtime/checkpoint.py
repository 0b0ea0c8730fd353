"""Signed tree heads in the C2SP `tlog-checkpoint` signed-note format, signed with Ed25519.

    <origin>\\n<tree size>\\n<base64 root hash>\\n          <- body (what is signed)
    \\n
    — <key name> <base64(4-byte key hash || 64-byte signature)>\\n

The key hash is SHA-256(key name || "\\n" || 0x01 || raw public key)[:4] (0x01 = Ed25519), as in
the signed-note spec, so standard tooling (sumdb/note, litetlog) can check our checkpoints.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DASH = "\u2014"
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_name_for(public_key: Ed25519PublicKey) -> str:
    """A stable default key name: "lwas-" + first 8 hex digits of SHA-256(raw public key)."""
    return "lwas-" + hashlib.sha256(_raw(public_key)).hexdigest()[:8]


def key_hash(key_name: str, public_key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(key_name.encode() + b"\n\x01" + _raw(public_key)).digest()[:4]


def _check_name(key_name: str) -> None:
    if not key_name or any(c.isspace() for c in key_name) or "+" in key_name:
        raise ValueError(f"bad key name {key_name!r}: must be non-empty, no spaces or '+'")


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    if not origin or "\n" in origin:
        raise ValueError(f"bad origin {origin!r}")
    if len(root) != 32 or size < 0:
        raise ValueError("root must be 32 bytes and size >= 0")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(origin: str, size: int, root: bytes, private_key: Ed25519PrivateKey,
                    key_name: str) -> str:
    _check_name(key_name)
    body = checkpoint_body(origin, size, root)
    sig = private_key.sign(body.encode())
    blob = base64.b64encode(key_hash(key_name, private_key.public_key()) + sig).decode()
    return f"{body}\n{DASH} {key_name} {blob}\n"


class NotSignedBy(ValueError):
    """A well-formed checkpoint with no signature line by the key asked for; `signers` names the
    keys whose lines it has (another key signed it: not the same thing as an altered note)."""

    def __init__(self, key: str, signers: tuple[str, ...]):
        super().__init__(f"checkpoint: no signature by key {key}"
                         + (f" (signed by {', '.join(signers)})" if signers else ""))
        self.key, self.signers = key, signers


class BadSignature(ValueError):
    """A signature line by the key asked for that does not verify: the note was altered."""


def parse_checkpoint(text: str, public_key: Ed25519PublicKey,
                     key_name: str | None = None) -> tuple[str, int, bytes]:
    """(origin, size, root) of a note carrying a valid signature by `public_key`.

    Signature lines by other keys are ignored (notes may be cosigned); at least one line must
    name our key (`key_name`, default key_name_for(public_key)) and verify. ValueError otherwise:
    NotSignedBy when none names it, BadSignature when it does not verify.
    """
    name = key_name or key_name_for(public_key)
    if not isinstance(text, str):
        raise ValueError("checkpoint: not text")
    cut = text.find("\n\n")
    if cut < 0:
        raise ValueError("checkpoint: no blank line between body and signatures")
    body, sigs = text[:cut + 1], text[cut + 2:]
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise ValueError("checkpoint: body needs origin, size and root hash lines")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not origin:
        raise ValueError("checkpoint: empty origin")
    if not _SIZE.fullmatch(size_s):
        raise ValueError(f"checkpoint: bad tree size {size_s!r}")
    try:
        root = base64.b64decode(root_s, validate=True)
    except binascii.Error:
        raise ValueError("checkpoint: root hash is not base64") from None
    if len(root) != 32:
        raise ValueError("checkpoint: root hash is not 32 bytes")
    if not sigs.endswith("\n"):
        raise ValueError("checkpoint: signature block must end with a newline")
    want = key_hash(name, public_key)
    signers = []
    for line in sigs[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise ValueError(f"checkpoint: malformed signature line {line!r}")
        if parts[1] != name:
            signers.append(parts[1])
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise ValueError("checkpoint: signature is not base64") from None
        if len(blob) != 68 or blob[:4] != want:
            continue
        try:
            public_key.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise BadSignature(f"checkpoint: bad signature by {name}") from None
        return origin, int(size_s), root
    raise NotSignedBy(name, tuple(signers))
