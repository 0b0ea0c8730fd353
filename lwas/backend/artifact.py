"""The signed artifact: the container that carries compiled native code from `lwasc build` to
the runtime loader. The format is specified in docs/artifact.md; in short:

    b"LWASART\\0"  u16 format  u32 n  manifest[n]  u64 m  object[m]  signature[64]

(integers big-endian), where manifest is canonical JSON and signature is
Ed25519(key, SHA-512(every byte before it)).

The same sources, compiler and key give byte-identical artifacts: canonical JSON, no
timestamps, no paths of the build machine (files are named relative to the root file's
directory), a deterministic object file, and Ed25519, which is deterministic.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lwas import __version__
from lwas.errors import LwasError

MAGIC = b"LWASART\0"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({FORMAT_VERSION})
SIGNATURE_SIZE = 64
_HEADER = struct.Struct(">8sHI")  # magic, format version, manifest length
_U64 = struct.Struct(">Q")
MAX_MANIFEST = 64 * 1024 * 1024


class ArtifactError(LwasError, ValueError):
    """An artifact that is malformed, unsigned by a trusted key, or not for this machine."""


def compiler_id() -> str:
    return f"lwasc {__version__}"


# ---------------------------------------------------------------- canonical JSON

def _check_json(value, where: str = "manifest") -> None:
    """Only what canonical JSON round-trips exactly: no NaN/inf, only str keys, no odd types."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ArtifactError(f"{where}: {value} cannot be written as JSON")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ArtifactError(f"{where}: key {k!r} is not a string")
            _check_json(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
    elif not (value is None or isinstance(value, (str, int, bool))):
        raise ArtifactError(f"{where}: {type(value).__name__} is not a JSON value")


def canonical_json(value) -> bytes:
    """Sorted keys, no spaces, UTF-8, shortest round-trip floats: one byte string per value."""
    _check_json(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha512_hex(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


# ---------------------------------------------------------------- naming sources

def display_names(paths_by_module: Mapping[str, str], root_path: str) -> dict[str, str]:
    """How each source file is named in the artifact: relative to the root file's directory
    (`fib.lwas`, `lib/helpers.lwas`); standard modules as `std/NAME.lwas`; anything else by its
    file name. Never an absolute path of the build machine, so builds from any directory agree.
    """
    root_dir = os.path.dirname(os.path.abspath(root_path))
    names = {}
    for module, path in paths_by_module.items():
        if path.startswith("<"):  # "<string>", "<context>": already a name
            names[path] = path
            continue
        if module == "std" or module.startswith("std."):
            names[path] = "std/" + module.split(".", 1)[-1].replace(".", "/") + ".lwas"
            continue
        rel = os.path.relpath(os.path.abspath(path), root_dir)
        names[path] = os.path.basename(path) if rel.startswith("..") else rel.replace(os.sep, "/")
    return names


def rename_files(value, names: Mapping[str, str]):
    """A copy of describe() data with every "file" field renamed by `names`."""
    if isinstance(value, dict):
        return {k: (names.get(v, os.path.basename(v) if os.path.isabs(v) else v)
                    if k == "file" and isinstance(v, str) else rename_files(v, names))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rename_files(v, names) for v in value]
    return value


# ---------------------------------------------------------------- building

def make_manifest(described: dict, sources: Mapping[str, tuple[str, str]], root_module: str,
                  key: Ed25519PrivateKey | Ed25519PublicKey, names: Mapping[str, str] = {},
                  services: list = ()) -> dict:
    """The manifest: `described` is NativeModule.describe(); `sources` maps module name ->
    (path, text); `names` maps source paths to the names the artifact uses."""
    from lwas.backend.keys import key_id

    src = {m: {"file": names.get(p, p), "sha512": sha512_hex(t.encode("utf-8"))}
           for m, (p, t) in sorted(sources.items())}
    return {
        "format": FORMAT_VERSION,
        "compiler": compiler_id(),
        "triple": described["triple"],
        "module": root_module,
        "sources": src,
        "source_digest": sha512_hex(canonical_json(src)),
        "native": rename_files(described, names),
        "services": rename_files(list(services), names),
        "key_id": key_id(key),
    }


def pack(manifest: dict, object_code: bytes, key: Ed25519PrivateKey) -> bytes:
    """Serialise and sign. The signature covers the digest of every byte before it."""
    m = canonical_json(manifest)
    body = b"".join([_HEADER.pack(MAGIC, FORMAT_VERSION, len(m)), m, _U64.pack(len(object_code)),
                     object_code])
    return body + key.sign(hashlib.sha512(body).digest())


def build(native, sources: Mapping[str, tuple[str, str]], root_module: str, key: Ed25519PrivateKey,
          names: Mapping[str, str] = {}, services: list = ()) -> bytes:
    """A signed artifact for an `abi.NativeModule` and the program's service descriptions."""
    return pack(make_manifest(native.describe(), sources, root_module, key, names, services),
                native.object_code, key)


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class Artifact:
    format: int
    manifest: dict
    object_code: bytes
    signature: bytes
    body: bytes  # everything the signature covers

    @property
    def key_id(self) -> str:
        return str(self.manifest.get("key_id", "?"))

    @property
    def native(self) -> dict:
        return self.manifest["native"]


def _split(data: bytes) -> tuple[int, bytes, bytes, bytes, bytes]:
    """Structure only, nothing trusted yet: (format, manifest bytes, object, signature, body)."""
    data = bytes(data)
    if len(data) < _HEADER.size or data[:8] != MAGIC:
        raise ArtifactError("not an LwaS artifact (bad magic number)")
    _, version, n = _HEADER.unpack_from(data)
    if version not in SUPPORTED_VERSIONS:
        raise ArtifactError(f"unsupported artifact format version {version} (this lwasc reads "
                            f"{', '.join(map(str, sorted(SUPPORTED_VERSIONS)))}); rebuild it with this compiler")
    at = _HEADER.size
    if n > MAX_MANIFEST or at + n + _U64.size > len(data):
        raise ArtifactError("truncated or corrupt artifact (manifest length)")
    manifest = data[at:at + n]
    at += n
    (m,) = _U64.unpack_from(data, at)
    at += _U64.size
    if at + m + SIGNATURE_SIZE != len(data):
        raise ArtifactError("truncated or corrupt artifact (object length does not match the file size)")
    return version, manifest, data[at:at + m], data[at + m:], data[:at + m]


def _claimed_key_id(manifest: bytes) -> str:
    try:
        return str(json.loads(manifest).get("key_id", "?"))
    except (ValueError, AttributeError):
        return "?"


def verify(data: bytes, trusted: Iterable[Ed25519PublicKey]) -> Artifact:
    """Check the structure and the signature against the trusted keys, then read the manifest.

    Nothing in the manifest is believed before the signature verifies.
    """
    version, mbytes, obj, sig, body = _split(data)
    trusted = list(trusted)
    if not trusted:
        from lwas.backend.keys import config_dir

        raise ArtifactError("no trusted public keys to verify the artifact against (pass --pubkey, or put "
                            f"the signer's .pub file in {config_dir() / 'trusted'})")
    digest = hashlib.sha512(body).digest()
    for key in trusted:
        try:
            key.verify(sig, digest)
            break
        except InvalidSignature:
            continue
    else:
        from lwas.backend.keys import key_id

        ids = ", ".join(key_id(k) for k in trusted)
        raise ArtifactError(f"bad signature: the artifact (claiming key id {_claimed_key_id(mbytes)}) is "
                            f"modified or not signed by a trusted key (trusted: {ids})")
    try:
        manifest = json.loads(mbytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ArtifactError(f"the manifest is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != version:
        raise ArtifactError("the manifest's format version does not match the header")
    for field in ("compiler", "triple", "sources", "source_digest", "native", "key_id"):
        if field not in manifest:
            raise ArtifactError(f"the manifest has no `{field}`")
    return Artifact(version, manifest, obj, sig, body)


# ---------------------------------------------------------------- targets

def host_triple() -> str:
    import llvmlite.binding as llvm

    return llvm.get_process_triple()


def same_target(a: str, b: str) -> bool:
    """Same architecture, OS and environment; the vendor part (`pc`, `unknown`) does not matter."""
    pa, pb = a.split("-"), b.split("-")
    if len(pa) < 3 or len(pb) < 3:
        return a == b
    return pa[0] == pb[0] and pa[2:] == pb[2:]


# ---------------------------------------------------------------- summary

def _type_text(t) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, dict):
        if "money" in t:
            return "money" + (f"[{t['money']}]" if t["money"] else "")
        if "array" in t:
            return f"[{_type_text(t['array'])}]"
        if "enum" in t:
            return t["enum"]
        if "record" in t:
            return t["record"]
    return str(t)


def signature_text(export: dict) -> str:
    """`fn fib(n: int) -> int` from an export's description."""
    params = ", ".join(f"{p['name']}: {_type_text(p['type'])}" for p in export.get("params", []))
    if export.get("kind") == "test":
        return f"test {json.dumps(export['name'], ensure_ascii=False)}"
    result = export.get("result")
    arrow = "" if result in ("unit", None) else f" -> {_type_text(result)}"
    return f"{export['kind']} {export['name']}({params}){arrow}"


def summary(art: Artifact) -> str:
    m = art.manifest
    native = m["native"]
    lines = [
        f"format:        {m['format']}",
        f"compiler:      {m['compiler']}",
        f"triple:        {m['triple']}",
        f"opt level:     {native.get('opt_level', '?')}",
        f"module:        {m.get('module', '?')}",
        f"key id:        {m['key_id']}",
        f"source digest: sha512:{m['source_digest']}",
        "sources:",
        *(f"  {name:<14} {s['file']}  sha512:{s['sha512'][:32]}…" for name, s in m["sources"].items()),
        f"object code:   {len(art.object_code)} bytes",
        f"exports ({len(native.get('exports', []))}):",
        *(f"  {signature_text(e)}" for e in native.get("exports", [])),
        f"axioms ({len(native.get('axioms', []))}):",
    ]
    for a in native.get("axioms", []):
        d = a.get("declared")
        declared = "none" if d is None else (f"{d[0]!r}" if d[0] == d[1] else f"{d[0]!r}..{d[1]!r}")
        lines.append(f"  {a['name']:<14} declared {declared:<10} effective {a['effective']!r}")
    lines.append(f"error sites:   {len(native.get('error_sites', []))}")
    lines.append(f"services:      {len(m.get('services', []))}")
    return "\n".join(lines)
