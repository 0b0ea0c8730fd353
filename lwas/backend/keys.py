"""Ed25519 signing keys: generate, read and write PEM, key ids, the per-user development key
and the user's trusted set.

Files live under $XDG_CONFIG_HOME/lwas (default ~/.config/lwas):

    dev.key, dev.key.pub   the development key, created on first use (private key mode 0600)
    trusted/*.pub          public keys whose artifacts `lwasc run` accepts (plus dev.key.pub)

A key id is the first 16 hex digits of SHA-256 over the raw 32-byte public key: short enough
to print, long enough to tell keys apart; it names the key, the signature proves it.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lwas.errors import LwasError

ENV_SIGNING_KEY = "LWAS_SIGNING_KEY"
DEV_KEY_NAME = "dev.key"

PublicKeyLike = Union[Ed25519PublicKey, Ed25519PrivateKey, bytes, str, os.PathLike]
PrivateKeyLike = Union[Ed25519PrivateKey, bytes, str, os.PathLike]


class KeyFileError(LwasError, ValueError):
    """A key that cannot be read or is not an Ed25519 key."""


# ---------------------------------------------------------------- places

def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "lwas"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lwas"


# ---------------------------------------------------------------- encoding

def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def raw_public(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def _read_pem(value, what: str) -> tuple[bytes, str]:
    """PEM bytes from PEM text/bytes or a path to a PEM file; and where it came from."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and "-----BEGIN" not in value):
        path = os.fspath(value)
        try:
            return Path(path).read_bytes(), path
        except OSError as e:
            raise KeyFileError(f"cannot read {what} `{path}`: {e.strerror or e}") from None
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    return bytes(value), f"the given {what}"


def load_private(value: PrivateKeyLike) -> Ed25519PrivateKey:
    """An Ed25519 private key from a key object, PKCS#8 PEM (text or bytes) or a PEM file's path."""
    if isinstance(value, Ed25519PrivateKey):
        return value
    data, where = _read_pem(value, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"{where} is not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{where} is a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public(value: PublicKeyLike) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, SubjectPublicKeyInfo PEM, raw 32 bytes or a path."""
    if isinstance(value, Ed25519PublicKey):
        return value
    if isinstance(value, Ed25519PrivateKey):
        return value.public_key()
    if isinstance(value, (bytes, bytearray)) and len(value) == 32:
        return Ed25519PublicKey.from_public_bytes(bytes(value))
    data, where = _read_pem(value, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"{where} is not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{where} is a {type(key).__name__}, not an Ed25519 key")
    return key


# ---------------------------------------------------------------- files

def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file atomically with `mode` from the start (a private key is never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_keypair(out: str | os.PathLike, key: Ed25519PrivateKey | None = None) -> tuple[Path, Path]:
    """OUT gets the PKCS#8 PEM private key (mode 0600), OUT.pub the public key (0644)."""
    key = key or generate()
    priv = Path(out)
    pub = Path(os.fspath(out) + ".pub")
    _write_new(priv, private_pem(key), 0o600)
    _write_new(pub, public_pem(key), 0o644)
    return priv, pub


def dev_key() -> tuple[Ed25519PrivateKey, bool]:
    """The per-user development key, created on first use; and whether it was just created."""
    path = config_dir() / DEV_KEY_NAME
    if path.exists():
        return load_private(path), False
    key = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".dev.key.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem(key))
        try:
            os.link(tmp, path)  # fails if another process created it meanwhile: use theirs
        except FileExistsError:
            return load_private(path), False
    finally:
        os.unlink(tmp)
    _write_new(Path(str(path) + ".pub"), public_pem(key), 0o644)
    return key, True


def dev_public_path() -> Path:
    return config_dir() / (DEV_KEY_NAME + ".pub")


def signing_key(path: str | None = None) -> tuple[Ed25519PrivateKey, str]:
    """The key to sign with: --key, else $LWAS_SIGNING_KEY (a path or PEM text), else the dev key.

    Also returns a note for stderr when the dev key was created ("" otherwise).
    """
    if path:
        return load_private(path), ""
    env = os.environ.get(ENV_SIGNING_KEY)
    if env:
        return load_private(env), ""
    key, created = dev_key()
    note = (f"note: created a development signing key at {config_dir() / DEV_KEY_NAME} "
            f"(key id {key_id(key)}); artifacts signed with it are trusted only on this account"
            if created else "")
    return key, note


def trusted_keys(extra: Iterable[PublicKeyLike] = ()) -> list[Ed25519PublicKey]:
    """`extra` keys, then every trusted/*.pub of the user, then the dev key's public half."""
    keys = [load_public(k) for k in extra]
    d = config_dir()
    files = sorted((d / "trusted").glob("*.pub")) if (d / "trusted").is_dir() else []
    dev_pub = dev_public_path()
    if dev_pub.exists():
        files.append(dev_pub)
    for f in files:
        try:
            keys.append(load_public(f))
        except KeyFileError:
            continue  # an unreadable file in the trusted set trusts nothing; it does not stop a run
    return keys
