"""A service's state to and from snapshot bytes in native code (the exports of lwas.backend.snapgen).

The bytes are the canonical encoding of the state (lwas.runtime.ledger.encode_value of the
state's TypeDesc), so a snapshot written here reads through decode_value and the other way
round. Native code writes them straight from the kept state and rebuilds a kept state from
them in a new heap: O(state) with no Python value per entry (a million transactions: ~0.2 s to
encode, ~0.5 s to decode, against ~20 s and ~30 s through Python values).

`codec_for(program, service)` is None for an artifact built before these exports existed;
lwas.runtime.state then goes through Python values as before.
"""
from __future__ import annotations

import ctypes

from lwas.abi import SNAP_DECODE, SNAP_ENCODE

_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


class _Buf(ctypes.Structure):
    """lwas.backend.snapgen BUF: the bytes native code appends to (malloc'd; the caller frees them)."""
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_int64), ("cap", ctypes.c_int64)]


class Codec:
    """The two native functions of one service."""

    def __init__(self, encode_address: int, decode_address: int):
        self._encode = ctypes.PYFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)(encode_address)
        self._decode = ctypes.PYFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64,
                                         ctypes.c_void_p)(decode_address)

    def encode(self, state_address: int) -> bytes | None:
        """The state at state_address as bytes; None when native code cannot (out of memory, a
        NaN): the caller's Python path then says why."""
        buf = _Buf()
        try:
            if self._encode(state_address, ctypes.addressof(buf)) != 0:
                return None
            return ctypes.string_at(buf.data, buf.len) if buf.len else b""
        finally:
            if buf.data:
                _libc.free(buf.data)

    def decode(self, arena_address: int, data: bytes, out) -> bool:
        """Rebuild the state from data into *out (a ctypes state struct), allocating in the
        arena; False when data is not one canonical state (or memory ran out)."""
        return self._decode(arena_address, data, len(data), ctypes.addressof(out)) == 0


def codec_for(program, service: str) -> Codec | None:
    """The service's codec in a loaded program, or None when the artifact has none."""
    enc, dec = program.symbol_address(SNAP_ENCODE + service), program.symbol_address(SNAP_DECODE + service)
    return Codec(enc, dec) if enc and dec else None
