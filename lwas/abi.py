"""The native calling convention and the description of compiled code that travels, inside a
signed artifact, from the code generator to the runtime loader.

Calling convention (v1), for every exported function, rule and test:

    i32 @symbol(ptr %out, <params...>)

returns a status: 0 is success and the result was written to *out; k >= 1 means the runtime
fault at `error_sites[k - 1]` happened (overflow, division by zero, ...), and *out is undefined.
Like Numba's, it never unwinds and never traps: no SIGFPE, no wrap, no crash of the host.

Native forms of the LwaS types (parameters, and the layout written to *out or held in arrays):

    int    i64                      float, truth  double
    bool   i8 (0 or 1)              time          i64, microseconds since 1970-01-01T00:00:00Z
    enum   i32, the variant index   money         {i64 minor, i32 currency}, the currency as its
                                                  three ASCII letters packed (`USD` = 0x555344)
    text   {ptr, i64}: UTF-8 bytes and their length
    [T]    {ptr, i64}: elements in T's native form and their count
    record a struct of its fields' native forms, in declaration order (LLVM's default layout)

As parameters, money, text and arrays are passed as their struct's fields one after another
(money: i64, i32; text: ptr, i64; array: ptr, i64) and a record by pointer to its struct.
A unit result writes nothing; *out may then be null.

Types are described as JSON-friendly values (`TypeDesc`): "int", "float", "bool", "truth",
"text", "time", "unit", {"money": "USD"} or {"money": null}, {"array": T},
{"map": K, "value": V}, {"enum": "TxType", "variants": [...]},
{"record": "Transaction", "fields": [[name, T], ...]} (with "defaults": {name: value form} for
fields declared `name: T = value`).

Value forms (defaults) are plain data: int -> int, float and truth -> float, bool -> bool,
text -> str, time -> int (µs since the epoch), an enum -> its variant name, money ->
[minor, "USD"], an array -> a list, a map -> a list of [key, value] pairs in key order, a
record -> a dict of value forms.

This module is the bottom of the contract between the compiler and the runtime: it imports
nothing of lwas. The conversions to the native forms of time and currency live here, once, for
both. The TypeDesc of a checked type is `lwas.semantics.types.type_desc`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

TypeDesc = Any  # see the module docstring

ABI_VERSION = 1
# `idempotency_key()` compiles to `config$(REQUEST_KEY)`: the runtime answers that name with the
# request's Idempotency-Key (a name no environment variable can have).
REQUEST_KEY = "$request.idempotency_key"
SYMBOL_PREFIX = "lwas$"  # native symbol of an export: SYMBOL_PREFIX + qualified name
# A service function (a name with `$`, made by lwas.semantics.service) also has a kept-arena form
# KEEP_PREFIX + name(ptr out, ptr arena, i64 adopt, params...): the caller's arena (ARENA:
# {ptr head, i64 bytes, i64 edit}, zeroed when new) receives every allocation and keeps it;
# parameter i is first copied into it when bit i of `adopt` is set; the result is written as it
# is (it may point into the arena). `edit` (not 0) lets the writer's inserts into the state's own
# maps write in place the nodes made under that number (lwas.backend.mapgen.insert_owned); the caller
# changes it whenever those nodes become visible. ARENA_FREE(ptr arena) frees such an arena
# (lwas.runtime.state).
KEEP_PREFIX = SYMBOL_PREFIX + "keep$"
ARENA_FREE = SYMBOL_PREFIX + "arena_free"
# A service's state to and from a snapshot's bytes, in native code (lwas.backend.snapgen):
# SNAP_ENCODE + svc(ptr state, ptr buf) and SNAP_DECODE + svc(ptr arena, ptr data, i64 len, ptr out).
SNAP_ENCODE = SYMBOL_PREFIX + "snap$encode$"
SNAP_DECODE = SYMBOL_PREFIX + "snap$decode$"
AXIOM_TABLE = "lwas$axioms"  # [N x double]: effective truths, in `NativeModule.axioms` order
# i64, writable: the wall-clock budget of one call of any export, in nanoseconds (0, the initial
# value: no limit). A call that outlives it returns a "timeout" error site's status (lwas.backend.budget).
BUDGET_GLOBAL = "lwas$budget_ns"


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def time_to_micros(t: datetime) -> int:
    """The native form of a time: microseconds since 1970-01-01T00:00:00Z."""
    if t.tzinfo is None:
        raise ValueError("a time must be timezone-aware (UTC)")
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def micros_to_time(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


# The instants a time can name, natively: years 1 to 9999 as Python's datetime has them
# (0001-01-01 .. 9999-12-31T23:59:59.999999Z).
TIME_MIN = time_to_micros(datetime.min.replace(tzinfo=timezone.utc))
TIME_MAX = time_to_micros(datetime.max.replace(tzinfo=timezone.utc))


def pack_currency(code: str) -> int:
    """The native form of a currency: its three ASCII letters packed into an int (`USD` = 0x555344)."""
    b = code.encode("ascii")
    if len(b) != 3:
        raise ValueError(f"not a currency code: {code!r}")
    return (b[0] << 16) | (b[1] << 8) | b[2]


def unpack_currency(n: int) -> str:
    return bytes([(n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]).decode("ascii")


@dataclass(frozen=True)
class Param:
    name: str
    type: TypeDesc


@dataclass(frozen=True)
class Export:
    name: str  # LwaS name, qualified outside the root module: "fib", "fuzzy.triangle"
    symbol: str  # native symbol
    kind: str  # "fn", "rule" or "test"
    params: tuple[Param, ...]
    result: TypeDesc
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class ErrorSite:
    kind: str  # a key of lwas.errors.KINDS
    message: str  # what went wrong, e.g. "integer overflow in `a + b`" or the assert's message
    file: str
    line: int
    col: int
    end_line: int
    end_col: int


@dataclass(frozen=True)
class AxiomEntry:
    name: str
    declared: tuple[float, float] | None
    effective: float


@dataclass(frozen=True)
class Extern:
    """An `extern fn`: native code calls `lwas_rt_extern(index, args, out)`; the runtime runs
    the connector named by `binding` (lwas.runtime.connectors)."""
    name: str
    binding: str
    params: tuple[Param, ...]
    result: TypeDesc
    file: str = ""
    line: int = 0


@dataclass
class NativeModule:
    """What the code generator hands to the artifact writer."""

    object_code: bytes  # an ELF relocatable object for `triple`, generic CPU
    triple: str
    exports: list[Export] = field(default_factory=list)
    error_sites: list[ErrorSite] = field(default_factory=list)
    axioms: list[AxiomEntry] = field(default_factory=list)
    opt_level: int = 2
    externs: list[Extern] = field(default_factory=list)

    def describe(self) -> dict:
        """Everything but the object code, as plain data (for the artifact manifest)."""
        return {
            "abi": ABI_VERSION,
            "triple": self.triple,
            "opt_level": self.opt_level,
            "exports": [asdict(e) for e in self.exports],
            "error_sites": [asdict(s) for s in self.error_sites],
            "axioms": [asdict(a) for a in self.axioms],
            "externs": [asdict(x) for x in self.externs],
        }
