"""LwaS values in native memory and back: the memory form of every TypeDesc (lwas.abi), the
encoders a call uses for its arguments and the decoders for its results.

Memory (see lwas.backend.codegen): text and array arguments are copied into ctypes buffers that live
until the call returns. Arrays of int, float, truth and bool given as a list or tuple are
converted in one step (array.array / bytearray after one type check over the elements, not one
ctypes value per element). For [float], [truth] and [int], an object with the buffer protocol
(array.array, memoryview, a numpy array) whose layout already matches the native form (one
dimension, C-contiguous, format 'd', or 'q'/'l' with 8-byte items, native byte order) is passed
without copying (a read-only one is copied with one memcpy); it stays exported, so it cannot be
resized, until the call returns, and native code never writes to it. A truth buffer is still
range-checked before the call (the caller must not write to it from another thread meanwhile).
A buffer of any other layout is rejected with a TypeError rather than converted element by
element. A bad argument raises TypeError/ValueError/OverflowError naming the function, the
parameter and, in an array, the element index.

A result holding text or arrays comes back in malloc'd buffers (one per text/array, nested ones
included) that the caller owns: the binding copies it into Python objects, then frees each
buffer. Native code frees its own temporaries before returning.
"""
from __future__ import annotations

import array
import ctypes
import sys
from datetime import datetime

from lwas.errors import RuntimeError as LwasRuntimeError
from lwas.runtime.values import (Money, micros_to_time, pack_currency, sorted_items, time_to_micros,
                                 unpack_currency)
from lwas.semantics.types import CURRENCY_EXPONENTS

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1


class _MoneyC(ctypes.Structure):
    _fields_ = [("minor", ctypes.c_int64), ("currency", ctypes.c_int32)]


class _SliceC(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("len", ctypes.c_int64)]


_SCALARS = {"int": ctypes.c_int64, "time": ctypes.c_int64, "float": ctypes.c_double,
            "truth": ctypes.c_double, "bool": ctypes.c_int8}
_records: dict = {}  # (name, fields as a tuple) -> ctypes Structure
_structs: dict = {}  # id(record desc) -> (desc, Structure): skips repr() on hot calls (see _by_type)
_names: dict = {}  # id(record desc) -> (desc, its field names)

# Arrays of these element types given as a list/tuple take the one-step path: the exact Python
# types their elements may have (as in _Call.to_native: no bool for a number, no subclasses).
_LIST_TYPES = {"int": frozenset({int}), "float": frozenset({int, float}),
               "truth": frozenset({int, float}), "bool": frozenset({bool})}
# Buffer formats (struct syntax, byte-order prefix removed) passed to native code as they are.
_BUFFER_FORMATS = {"int": ("q", "l"), "float": ("d",), "truth": ("d",)}
_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


def _prefixed(e: Exception, where: str) -> Exception:
    """e's message prefixed with where, as the builtin class of e (TypeError, ValueError or
    OverflowError): subclasses such as UnicodeEncodeError have other constructors."""
    for k in (OverflowError, TypeError, ValueError):
        if isinstance(e, k):
            return k(f"{where}: {e}")
    return e


def _check_truths(xs) -> None:
    """Every element of xs (a list/tuple of int/float or a 'd' memoryview) in [0, 1], NaN
    excluded: min and max bound the non-NaN values; their sum is then finite, so NaN only if
    some element is NaN (a NaN first makes min/max NaN and fails the bounds anyway)."""
    s = sum(xs)
    if 0.0 <= min(xs) and max(xs) <= 1.0 and s == s:
        return
    for i, x in enumerate(xs):
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"element {i}: a truth must be in [0, 1], got {x!r}")


def ctype(desc):
    """The ctypes form of a TypeDesc as stored in memory (arrays, records, *out)."""
    if isinstance(desc, str):
        if desc == "text":
            return _SliceC
        return _SCALARS[desc]
    if "money" in desc:
        return _MoneyC
    if "array" in desc:
        return _SliceC
    if "map" in desc:
        return ctypes.c_void_p  # the root node, null for an empty map
    if "enum" in desc:
        return ctypes.c_int32
    return _by_type(_structs, desc, _record_struct)


def _record_struct(desc):
    """One Structure per record layout (equal descs share it, whichever object they are)."""
    key = repr(desc)
    st = _records.get(key)
    if st is None:
        st = _records[key] = type(desc["record"], (ctypes.Structure,),
                                  {"_fields_": [(n, ctype(t)) for n, t in desc["fields"]]})
    return st


_nodes: dict = {}  # id(map desc) -> (desc, node Structure)


def map_node(desc):
    """The node of a map (lwas.backend.mapgen): {left, right, size, key, value, edit}; a persistent,
    weight-balanced search tree ordered by key (equal descs share the Structure)."""
    def make(d):
        key = ("map", repr(d))
        st = _records.get(key)
        if st is None:
            st = _records[key] = type("MapNode", (ctypes.Structure,), {"_fields_": [
                ("left", ctypes.c_void_p), ("right", ctypes.c_void_p), ("size", ctypes.c_int64),
                ("key", ctype(d["map"])), ("value", ctype(d["value"])), ("edit", ctypes.c_int64)]})
        return st
    return _by_type(_nodes, desc, make)


def _field_names(desc) -> frozenset:
    return _by_type(_names, desc, lambda d: frozenset(n for n, _ in d["fields"]))


class Ref:
    """A record already in native memory, passed by its address instead of encoded from a dict
    (a service's kept state: lwas.runtime.state). The caller keeps the memory alive."""

    __slots__ = ("address",)

    def __init__(self, address: int):
        self.address = address


class _Call:
    """Keeps the buffers of one call alive until its results are copied out."""

    def __init__(self):
        self.keep: list = []

    def to_native(self, desc, v):
        """A Python value in its memory form (a ctypes value or structure)."""
        return _encoder(desc)(self, v)

    def array(self, desc, v) -> _SliceC:
        elem = desc["array"]
        if isinstance(elem, str) and elem in _LIST_TYPES and type(v) in (list, tuple):
            return self.scalar_list(elem, v)
        if isinstance(elem, str) and elem in _BUFFER_FORMATS and not isinstance(v, (list, tuple, str)):
            try:
                mv = memoryview(v)
            except TypeError:
                pass  # no buffer protocol: element by element
            else:
                return self.scalar_buffer(elem, v, mv)
        return self.elements(elem, v)

    def elements(self, elem, v) -> _SliceC:
        """An array converted element by element (money, records, text, enums, time; and the
        slow path of the scalar types, which names the first bad element)."""
        n = len(v)
        items = []
        for i, x in enumerate(v):
            try:
                items.append(self.to_native(elem, x))
            except (TypeError, ValueError, OverflowError) as e:
                raise _prefixed(e, f"element {i}") from None
        arr = (ctype(elem) * n)(*items)
        self.keep.append(arr)
        return _SliceC(ctypes.cast(arr, ctypes.c_void_p), n)

    def scalar_list(self, elem: str, v) -> _SliceC:
        """A list/tuple of int, float, truth or bool in one step: one pass over the element types,
        one conversion (array.array / bytearray), truths range-checked with min/max."""
        n = len(v)
        if not n or not set(map(type, v)) <= _LIST_TYPES[elem]:
            return self.elements(elem, v)  # empty, or raises naming the first bad element
        if elem == "bool":
            buf = (ctypes.c_int8 * n).from_buffer(bytearray(v))
            self.keep.append(buf)
            return _SliceC(ctypes.addressof(buf), n)
        try:
            buf = array.array("q" if elem == "int" else "d", v)
        except OverflowError:  # an int outside i64 (or too large for a double)
            return self.elements(elem, v)  # raises naming it
        if elem == "truth":
            _check_truths(v)
        self.keep.append(buf)
        return _SliceC(buf.buffer_info()[0], n)

    def scalar_buffer(self, elem: str, v, mv: memoryview) -> _SliceC:
        """A buffer-protocol object whose layout is already [elem]'s native form, passed in place."""
        with mv:
            fmt = mv.format
            if fmt[:1] in ("@", "=", _NATIVE_ORDER):
                fmt = fmt[1:]
            want = " or ".join(repr(f) for f in _BUFFER_FORMATS[elem])
            if mv.ndim != 1 or fmt not in _BUFFER_FORMATS[elem] or mv.itemsize != 8:
                raise TypeError(f"a buffer for [{elem}] must be one-dimensional with format {want} "
                                f"(8-byte items, native byte order), got format {mv.format!r}, "
                                f"item size {mv.itemsize}, {mv.ndim} dimension(s)")
            if not mv.c_contiguous:
                raise TypeError(f"a buffer for [{elem}] must be contiguous, got a strided one")
            n = mv.shape[0]
            if elem == "truth" and n:
                with mv.cast("B").cast("d") as values:  # iterable even when the format is '<d'
                    _check_truths(values)
            readonly = mv.readonly
        if not n:
            return self.elements(elem, ())
        ct = ctypes.c_int64 if elem == "int" else ctypes.c_double
        # from_buffer keeps v exported (so unresizable) while the ctypes array lives, i.e. until
        # this call returns; a read-only buffer cannot be mapped so, it is copied with one memcpy.
        arr = (ct * n).from_buffer_copy(v) if readonly else (ct * n).from_buffer(v)
        self.keep.append(arr)
        return _SliceC(ctypes.addressof(arr), n)

    def map(self, desc, v):
        """A dict as a balanced tree of nodes (kept alive by the call); its root's address."""
        if type(v) is not dict:
            raise TypeError(f"expected a dict, got {v!r}")
        node = map_node(desc)
        kenc, venc = _encoder(desc["map"]), _encoder(desc["value"])
        items = sorted_items(desc, v)

        def build(lo: int, hi: int) -> int:
            if lo >= hi:
                return 0
            mid = (lo + hi) // 2
            k, x = items[mid]
            try:
                n = node(build(lo, mid), build(mid + 1, hi), hi - lo, kenc(self, k), venc(self, x))
            except (TypeError, ValueError, OverflowError) as e:
                raise _prefixed(e, f"key {k!r}") from None
            self.keep.append(n)
            return ctypes.addressof(n)
        return build(0, len(items))

    def buffer(self, data: bytes) -> _SliceC:
        n = len(data)
        buf = (ctypes.c_char * (n or 1)).from_buffer_copy(data or b"\0")
        self.keep.append(buf)
        return _SliceC(ctypes.addressof(buf), n)


# ---------------------------------------------------------------- encoders, one per type
# Built once per TypeDesc (cached by identity, as the manifest's descs live as long as the
# program), so a call does no type dispatch: each returns the memory form of a Python value.

_encoders: dict = {}


def _by_type(table: dict, desc, make):
    """make(desc), once per desc object (the table keeps desc alive, so its id stays unique)."""
    hit = table.get(id(desc))
    if hit is not None and hit[0] is desc:
        return hit[1]
    f = make(desc)
    table[id(desc)] = (desc, f)
    return f


def _encoder(desc):
    return _by_type(_encoders, desc, _make_encoder)


def _e_int(call, v):
    if type(v) is not int or not INT_MIN <= v <= INT_MAX:
        raise TypeError(f"expected an int in the 64-bit range, got {v!r}")
    return v


def _e_float(call, v):
    t = type(v)
    if t is not float and t is not int:
        raise TypeError(f"expected a float, got {v!r}")
    return float(v)


def _e_truth(call, v):
    v = _e_float(call, v)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"a truth must be in [0, 1], got {v!r}")
    return v


def _e_bool(call, v):
    if type(v) is not bool:
        raise TypeError(f"expected a bool, got {v!r}")
    return int(v)


def _e_time(call, v):
    if not isinstance(v, datetime):
        raise TypeError(f"expected a datetime, got {v!r}")
    return time_to_micros(v)


def _e_text(call, v):
    if not isinstance(v, str):
        raise TypeError(f"expected a str, got {v!r}")
    return call.buffer(v.encode("utf-8"))


_packed: dict = {}  # currency code -> packed form, for the known codes


def _e_money(want):
    def enc(call, v):
        if not isinstance(v, Money):
            raise TypeError(f"expected Money, got {v!r}")
        code = v.currency
        packed = _packed.get(code)
        if packed is None:
            if code not in CURRENCY_EXPONENTS:
                raise ValueError(f"unknown currency code {code!r}")
            packed = _packed[code] = pack_currency(code)
        if want is not None and code != want:
            raise LwasRuntimeError("currency", f"currency mismatch: expected {want}, got {code}")
        return _MoneyC(_e_int(call, v.minor), packed)
    return enc


def _make_encoder(desc):
    if isinstance(desc, str):
        return {"int": _e_int, "float": _e_float, "truth": _e_truth, "bool": _e_bool, "time": _e_time,
                "text": _e_text}[desc]
    if "money" in desc:
        return _e_money(desc["money"])
    if "array" in desc:
        return lambda call, v: call.array(desc, v)
    if "map" in desc:
        return lambda call, v: call.map(desc, v)
    if "enum" in desc:
        index = {name: i for i, name in enumerate(desc["variants"])}

        def enc(call, v):
            i = index.get(v) if isinstance(v, str) else None
            if i is None:
                raise ValueError(f"{v!r} is not a variant of {desc['enum']}")
            return i
        return enc
    st = ctype(desc)
    names = _field_names(desc)
    fields = [(n, _encoder(t)) for n, t in desc["fields"]]
    record = desc["record"]

    def enc(call, v):
        if type(v) is Ref:
            return v
        if type(v) is not dict or v.keys() != names:
            raise TypeError(f"expected a dict with the fields of {record}, got {v!r}")
        return st(*[f(call, v[n]) for n, f in fields])
    return enc


def to_python(desc, v):
    """A memory-form value (as ctypes gives it back) as a Python value."""
    return _decoder(desc)(v)


_decoders: dict = {}  # id(desc) -> (desc, decoder): built once per type, so hot calls skip dispatch
_currencies: dict = {}  # packed currency -> code


def _decoder(desc):
    return _by_type(_decoders, desc, _make_decoder)


def _same(v):
    return v


def _text(v):
    return ctypes.string_at(v.ptr, v.len).decode("utf-8") if v.len else ""


def _money(v):
    code = _currencies.get(v.currency)
    if code is None:
        code = _currencies[v.currency] = unpack_currency(v.currency)
    return Money(v.minor, code)


def _make_decoder(desc):
    if isinstance(desc, str):
        return {"bool": lambda v: v != 0, "time": micros_to_time, "text": _text}.get(desc, _same)
    if "money" in desc:
        return _money
    if "enum" in desc:
        return desc["variants"].__getitem__
    if "record" in desc:
        fields = [(n, _decoder(t)) for n, t in desc["fields"]]
        return lambda v: {n: f(getattr(v, n)) for n, f in fields}
    if "map" in desc:
        return lambda v: map_items(desc, v, _decoder(desc["map"]), _decoder(desc["value"]))
    return lambda v: _to_python(desc, v)


def map_items(desc, root, key=lambda k: k, value=lambda v: v) -> dict:
    """The map rooted at address root as a dict in ascending key order (an in-order walk with
    an explicit stack: the tree's height is logarithmic, but a walk must not recurse in Python)."""
    node = map_node(desc)
    out: dict = {}
    stack: list = []
    at = (root.value if isinstance(root, ctypes.c_void_p) else root) or 0
    while stack or at:
        while at:
            n = node.from_address(at)
            stack.append(n)
            at = n.left or 0
        n = stack.pop()
        k = n.key
        out[key(k.value if isinstance(k, ctypes._SimpleCData) else k)] = value(n.value)
        at = n.right or 0
    return out


def _to_python(desc, v):
    if isinstance(desc, str):
        if desc == "bool":
            return v != 0
        if desc == "time":
            return micros_to_time(v)
        if desc == "text":
            return ctypes.string_at(v.ptr, v.len).decode("utf-8") if v.len else ""
        return v
    if "money" in desc:
        return Money(v.minor, unpack_currency(v.currency))
    if "array" in desc:
        et = ctype(desc["array"])
        items = (et * v.len).from_address(v.ptr) if v.len else []
        return [to_python(desc["array"], x) for x in items]
    if "enum" in desc:
        return desc["variants"][v]
    if "map" in desc:
        return _decoder(desc)(v)
    return {n: to_python(t, getattr(v, n)) for n, t in desc["fields"]}


_owns: dict = {}


def _owns_memory(desc) -> bool:
    return _by_type(_owns, desc, owns_memory)


_free = ctypes.CDLL(None).free
_free.argtypes = [ctypes.c_void_p]
_free.restype = None


def owns_memory(desc) -> bool:
    if desc == "text":
        return True
    if isinstance(desc, dict) and ("array" in desc or "map" in desc):
        return True
    return isinstance(desc, dict) and "record" in desc and any(owns_memory(t) for _, t in desc["fields"])


def release(desc, v) -> None:
    """Frees the malloc'd buffers of a result (memory form), nested ones first."""
    if isinstance(desc, dict) and "record" in desc:
        for n, t in desc["fields"]:
            if _owns_memory(t):
                release(t, getattr(v, n))
        return
    if isinstance(desc, dict) and "map" in desc:
        _release_map(desc, v.value if isinstance(v, ctypes.c_void_p) else v)
        return
    if isinstance(desc, dict) and _owns_memory(desc["array"]) and v.len:
        for x in (ctype(desc["array"]) * v.len).from_address(v.ptr):
            release(desc["array"], x)
    _free(v.ptr)


def _release_map(desc, root) -> None:
    """Frees every node of a result map (one malloc'd buffer each) and what its keys and values own."""
    node = map_node(desc)
    kd, vd = desc["map"], desc["value"]
    kown, vown = _owns_memory(kd), _owns_memory(vd)
    stack = [root] if root else []
    while stack:
        at = stack.pop()
        n = node.from_address(at)
        if n.left:
            stack.append(n.left)
        if n.right:
            stack.append(n.right)
        if kown:
            release(kd, n.key)
        if vown:
            release(vd, n.value)
        _free(at)
