"""Ledger entry payloads read straight into native memory form, for folding them at start.

A replay folds every stored entry through its `on` block. Going through Python values
(lwas.runtime.ledger.decode_value builds a dict, a datetime, a Money and str objects; then the
native encoders take them apart again into ctypes objects) was two thirds of a cold replay. A
reader made here writes the record the `on` block takes into one reusable buffer, in one pass
over the payload and one `struct.pack_into`:

- int, time, float, truth, bool, money and enum fields become their memory forms directly;
- the payload is copied into the buffer after the record, and text fields point there: the
  `on` block's keep wrapper adopts (copies) every text it keeps into the state's heap
  (lwas.runtime.state), so nothing points into the buffer after the call;
- arrays and maps inside an entry (rare) go through decode_value and the native encoders.

The record is valid until the next read on the same thread (each thread has its buffer).

Every check of decode_value holds here too, as a ValueError: truncated bytes, trailing bytes,
NaN, a bool byte other than 0/1, bad UTF-8, a malformed currency code, an unknown variant; and
the native encoders' own (a known currency, a truth in [0, 1]). The entries were authenticated
(leaf hashes against signed checkpoints) before they are read; entries in another layout do
not come here: lwas.runtime.schema converts them as Python values.
"""
from __future__ import annotations

import ctypes
import struct
import threading

from lwas.semantics.types import CURRENCY_EXPONENTS
from lwas.runtime.ledger import _F64, _I64, _U16, _U32, _dec
from lwas.runtime.nativevalues import Ref, _Call, _encoder, ctype
from lwas.runtime.values import pack_currency

_packed: dict[bytes, int] = {}  # a known currency's three ASCII bytes -> its packed form


def entry_reader(desc):
    """f(payload: bytes) -> Ref to the record of `desc` (a record TypeDesc) read from payload,
    valid until this thread's next call of f; ValueError on bytes that are not such a value."""
    layout, read = _compile(desc)
    size = ctypes.sizeof(ctype(desc))
    local = threading.local()
    plain = not _holds_containers(desc)  # nothing to keep alive but the buffer

    def entry(payload: bytes) -> Ref:
        n = len(payload)
        room = getattr(local, "room", None)
        if room is None or len(room[0]) < size + n:
            buf = bytearray(max(size + n, 2 * (len(room[0]) if room else 256)))
            view = (ctypes.c_char * len(buf)).from_buffer(buf)  # pins buf: it cannot be resized
            room = local.room = (buf, ctypes.addressof(view), view)
        buf, address, _ = room
        buf[size:size + n] = payload
        call = None if plain else _Call()  # buffers of the record's arrays and maps
        try:
            values, end = read(payload, address + size, call)
        except (struct.error, IndexError, UnicodeDecodeError, OverflowError) as e:
            raise ValueError(f"bad encoding of {desc!r}: {e}") from None
        if end != n:
            raise ValueError(f"{n - end} trailing bytes after {desc!r}")
        layout.pack_into(buf, 0, *values)
        if call is not None:
            local.call = call  # alive until the next read
        return Ref(address)
    return entry


def _holds_containers(desc) -> bool:
    """Whether a record has an array or a map field (nested records included)."""
    return any(isinstance(t, dict) and ("array" in t or "map" in t or "record" in t and _holds_containers(t))
               for _, t in desc["fields"])


# ------------------------------------------------------------------ the generated reader
# For a record, one Python function (as dataclasses writes __init__) reads every field in
# order and returns the leaf values of the memory form, flattened in field order; a struct
# format with the ctypes layout's padding packs them. A replay calls it once per entry.


def _compile(desc):
    """(struct.Struct of desc's memory layout, read(payload, base, call) -> (values, end))."""
    env = {"INT": _I64.unpack_from, "F64": _F64.unpack_from, "U32": _U32.unpack_from,
           "U16": _U16.unpack_from, "ValueError": ValueError}
    fmt, lines, leaves = [], [], []
    _fields(desc, 0, env, fmt, lines, leaves, [0])
    body = "\n    ".join(["at = 0"] + lines + [f"return ({''.join(v + ', ' for v in leaves)}), at"])
    exec(f"def read(d, base, call):\n    {body}\n", env)
    return struct.Struct("=" + "".join(fmt)), env["read"]


def _fields(desc, offset: int, env: dict, fmt: list, lines: list, leaves: list, count: list) -> None:
    """Lines reading each field of record desc (at `offset` in memory), leaves and format in
    memory order; padding as ctypes lays the record out."""
    st = ctype(desc)
    for name, t in desc["fields"]:
        at = offset + getattr(st, name).offset
        pad = at - _size(fmt)
        if pad:
            fmt.append(f"{pad}x")
        count[0] += 1
        v = f"v{count[0]}"
        if isinstance(t, dict) and "record" in t:
            _fields(t, at, env, fmt, lines, leaves, count)
            continue
        code, read = _field(t, v, env)
        fmt.append(code)
        lines += read
        leaves += [v] if len(code) == 1 else [f"{v}p", f"{v}l"] if code == "Qq" else [f"{v}m", f"{v}c"]
    end = offset + ctypes.sizeof(st)
    if end - _size(fmt):
        fmt.append(f"{end - _size(fmt)}x")


def _size(fmt: list) -> int:
    return struct.calcsize("=" + "".join(fmt))


def _field(t, v: str, env: dict) -> tuple[str, list[str]]:
    """(struct codes of field type t's memory form, lines reading it into v / v+p, v+l / v+m, v+c)."""
    if t in ("int", "time"):
        return "q", [f"{v} = INT(d, at)[0]", "at += 8"]
    if t == "float":
        return "d", [f"{v} = F64(d, at)[0]", "at += 8", f"if {v} != {v}: raise ValueError('float is NaN')"]
    if t == "truth":
        return "d", [f"{v} = F64(d, at)[0]", "at += 8",
                     f"if not 0.0 <= {v} <= 1.0: raise ValueError(f'a truth must be in [0, 1], got {{{v}!r}}')"]
    if t == "bool":
        return "b", [f"{v} = d[at]", "at += 1", f"if {v} > 1: raise ValueError(f'bool byte {{{v}}}')"]
    if t == "text":
        return "Qq", ["n = U32(d, at)[0]", "end = at + 4 + n",
                      "if end > len(d): raise ValueError('truncated value')",
                      "str(d[at + 4:end], 'utf-8')",  # valid UTF-8, or UnicodeDecodeError
                      f"{v}p = base + at + 4", f"{v}l = n", "at = end"]
    if "money" in t:
        env[f"{v}_cur"] = _currency(t["money"])
        return "qi4x", [f"{v}m = INT(d, at)[0]", f"{v}c = {v}_cur(d[at + 8:at + 11])", "at += 11"]
    if "enum" in t:
        env[f"{v}_tag"] = _variant(t)
        return "i", ["n = U16(d, at)[0]", f"{v} = {v}_tag(d[at + 2:at + 2 + n], n)", "at += 2 + n"]
    env[f"{v}_of"] = _through_python(t)  # an array or a map
    if "array" in t:
        return "Qq", [f"{v}p, {v}l, at = {v}_of(d, at, call)"]
    return "Q", [f"{v}, _, at = {v}_of(d, at, call)"]


def _currency(want: str | None):
    def packed(code: bytes) -> int:
        p = _packed.get(code)
        if p is None:
            name = code.decode("ascii")
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"not a currency code: {name!r}")
            if name not in CURRENCY_EXPONENTS:
                raise ValueError(f"unknown currency code {name!r}")
            p = _packed[code] = pack_currency(name)
        if want is not None and code != want.encode("ascii"):
            raise ValueError(f"money in {want} expected, got {code.decode('ascii')}")
        return p
    return packed


def _variant(desc):
    index = {name.encode("utf-8"): i for i, name in enumerate(desc["variants"])}

    def tag(name: bytes, n: int) -> int:
        i = index.get(name) if len(name) == n else None
        if i is None:
            raise ValueError(f"{name.decode('utf-8', 'replace')!r} is not a variant of {desc['enum']}")
        return i
    return tag


def _through_python(desc):
    """An array or a map: its Python value, then its memory form (buffers kept by `call`);
    (pointer, length, end) of an array, (root address, 0, end) of a map."""
    encode = _encoder(desc)

    def read(d, at, call):
        v, at = _dec(desc, d, at)
        m = encode(call, v)
        if "array" in desc:
            return m.ptr or 0, m.len, at
        return m or 0, 0, at
    return read
