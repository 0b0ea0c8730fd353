"""The only way native code gets loaded: verify, check, then map.

Loading object code is executing it, so the order is fixed: the container's structure and
format version, then the Ed25519 signature against the trusted keys, then the (now trusted)
manifest's ABI version and target triple. Only then is the native runtime imported and the
object mapped. Any failure raises `ArtifactError` with the reason and maps nothing.
"""
from __future__ import annotations

from typing import Iterable

from lwas.abi import ABI_VERSION
from lwas.backend.artifact import Artifact, ArtifactError, host_triple, same_target, verify
from lwas.backend.keys import PublicKeyLike, load_public


def check(data: bytes, trusted: Iterable[PublicKeyLike]) -> Artifact:
    """Everything `load` checks, without mapping anything."""
    art = verify(data, [load_public(k) for k in trusted])
    native = art.native
    if native.get("abi") != ABI_VERSION:
        raise ArtifactError(f"the artifact uses native ABI {native.get('abi')}, this runtime {ABI_VERSION}; "
                            "rebuild it with this compiler")
    host = host_triple()
    for triple in (art.manifest["triple"], native.get("triple", "")):
        if not same_target(triple, host):
            raise ArtifactError(f"the artifact was built for {triple}, this machine is {host}")
    return art


def load_verified(data: bytes, trusted: Iterable[PublicKeyLike]):
    """The verified `Artifact` and its mapped `NativeProgram`."""
    art = check(data, trusted)
    from .native import NativeProgram  # imported only once the code is known to be trusted

    return art, NativeProgram.from_object(art.object_code, art.native)


def load(data: bytes, trusted: Iterable[PublicKeyLike]):
    """A `NativeProgram` for a verified artifact."""
    return load_verified(data, trusted)[1]
