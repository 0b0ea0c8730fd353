"""The built-in functions: available in every module without an import.

One table, shared by the checker (signatures, overload choice), the code generator (which
implementation to call: by name and the instantiated parameter types the checker records in
`Checked.call_sigs`) and the language server (hover and completion show `doc`).

A built-in has named parameters and one or more overloads; the first overload whose parameter
types accept the arguments wins (implicit conversions included: `bool -> truth`,
`truth -> float`). `TypeVar`s make a few generic: `len(xs: [T])`, `abs(x: N) -> N`.
All built-ins are pure, so they may appear in `const` initialisers.

A user item with the same name as a built-in (e.g. `axiom truth`) shadows it in that module.
"""
from __future__ import annotations

from dataclasses import dataclass

from lwas.semantics.types import ANY_MONEY, BOOL, FLOAT, INT, TEXT, TIME, TRUTH, ArrayT, MapT, Type, TypeVar

T = TypeVar("T")
K = TypeVar("K")  # a map's key type (the map's own type says which keys are allowed)
V = TypeVar("V")
N = TypeVar("N", (INT, FLOAT, ANY_MONEY))  # abs
ORD = TypeVar("ORD", (INT, FLOAT, TRUTH, ANY_MONEY))  # min, max
M = TypeVar("M", (ANY_MONEY,))  # money keeping its currency


@dataclass(frozen=True, slots=True, eq=False)
class Builtin:
    name: str
    params: tuple[str, ...]
    overloads: tuple[tuple[tuple[Type, ...], Type], ...]  # (parameter types, result type)
    doc: str
    pure: bool = True

    @property
    def generic(self) -> bool:
        return any(isinstance(p, TypeVar) or (isinstance(p, ArrayT) and isinstance(p.elem, TypeVar))
                   or isinstance(p, MapT) for ps, _ in self.overloads for p in ps)

    def signature_text(self) -> str:
        """`abs(x: int) -> int | abs(x: float) -> float | ...` for hover."""
        out = []
        for ps, ret in self.overloads:
            args = ", ".join(f"{n}: {t}" for n, t in zip(self.params, ps))
            out.append(f"{self.name}({args}) -> {ret}")
        return " | ".join(out)


def _b(name: str, params: str, overloads, doc: str) -> Builtin:
    return Builtin(name, tuple(p.strip() for p in params.split(",") if p.strip()),
                   tuple((tuple(ps), r) for ps, r in overloads), doc)


_F = ((FLOAT,), FLOAT)

BUILTINS: dict[str, Builtin] = {b.name: b for b in [
    _b("len", "xs", [((ArrayT(T),), INT), ((MapT(K, V),), INT)],
       "Number of elements of an array, or of keys of a map."),
    _b("get", "m, key, default", [((MapT(K, V), K, V), V)],
       "The value of `key` in map `m`, or `default` when the map does not hold the key."),
    _b("keys", "m", [((MapT(K, V),), ArrayT(K))], "A map's keys, in ascending order."),
    _b("values", "m", [((MapT(K, V),), ArrayT(V))], "A map's values, in the ascending order of their keys."),
    _b("first", "m, n", [((MapT(K, V), INT), MapT(K, V))],
       "The first n entries of a map (the n least keys; all of them when it has fewer)."),
    _b("after", "m, key, n", [((MapT(K, V), K, INT), MapT(K, V))],
       "The first n entries of a map whose keys come after `key` (a page that starts past a cursor)."),
    _b("float", "x", [((INT,), FLOAT), ((FLOAT,), FLOAT)],
       "Converts an int (exactly when |x| <= 2^53, else to the nearest float) or a truth to float."),
    _b("int", "x", [((FLOAT,), INT), ((INT,), INT)],
       "Truncates a float toward zero; a runtime error if it is NaN or outside the int range."),
    _b("truth", "x", [((FLOAT,), TRUTH), ((BOOL,), TRUTH)],
       "A float as a truth value (a runtime error outside [0, 1]); a bool as 1.0 or 0.0."),
    _b("text", "x", [((INT,), TEXT), ((FLOAT,), TEXT), ((BOOL,), TEXT), ((ANY_MONEY,), TEXT),
                     ((TIME,), TEXT)],
       "Formats a value: `42`, `3.5`, `true`, `12.50 USD`, a time as RFC 3339 UTC."),
    _b("ramp", "x, lo, hi", [((FLOAT, FLOAT, FLOAT), TRUTH)],
       "Membership ramp: 0 at or below lo, 1 at or above hi, linear between (NaN is a runtime error)."),
    _b("clamp01", "x", [((FLOAT,), TRUTH)],
       "A float clamped into [0, 1] as a truth value (NaN is a runtime error)."),
    _b("abs", "x", [((N,), N)],
       "Absolute value of an int (overflow is a runtime error), a float or money."),
    _b("min", "a, b", [((ORD, ORD), ORD)],
       "The smaller of two ints, floats, truths or money amounts of one currency."),
    _b("max", "a, b", [((ORD, ORD), ORD)],
       "The larger of two ints, floats, truths or money amounts of one currency."),
    _b("sqrt", "x", [_F], "Square root (NaN for negative x)."),
    _b("exp", "x", [_F], "e raised to the power x."),
    _b("ln", "x", [_F], "Natural logarithm (-inf at 0, NaN for negative x)."),
    _b("floor", "x", [_F], "Largest integral float not above x."),
    _b("ceil", "x", [_F], "Smallest integral float not below x."),
    _b("minor", "m", [((ANY_MONEY,), INT)],
       "The amount in integer minor units: minor(12.50 USD) == 1250."),
    _b("currency", "m", [((ANY_MONEY,), TEXT)],
       "The ISO 4217 code of a money value: currency(12.50 USD) == \"USD\"."),
    _b("from_minor", "minor, currency", [((INT, TEXT), ANY_MONEY)],
       "Money from minor units and an ISO 4217 code (a runtime error for an unknown code)."),
    _b("scale", "m, factor", [((M, FLOAT), M)],
       "Money times a float, rounded half-even to the minor unit (overflow is a runtime error)."),
    _b("micros", "t", [((TIME,), INT)], "A time as microseconds since 1970-01-01T00:00:00Z (UTC)."),
    _b("at_micros", "us", [((INT,), TIME)], "The time `us` microseconds after 1970-01-01T00:00:00Z."),
    # host built-ins: only the service stage writes calls of these (see lwas.semantics.service)
    _b("append$", "ledger, entry", [((INT, T), BOOL)],
       "Appends entry to the service's ledger number `ledger`: true if its key was new."),
    _b("now$", "", [((), TIME)], "The host's clock (UTC, microseconds)."),
    _b("config$", "name", [((TEXT,), TEXT)], "A configuration value of the service (a runtime error if unset)."),
    _b("config_int$", "name, default", [((TEXT, INT), INT)],
       "A configuration value as an int, `default` when unset (a runtime error if malformed)."),
    _b("metric$", "which", [((INT,), FLOAT)], "A system metric sampled by the host (see lwas.semantics.service)."),
    _b("ledger_root$", "ledger", [((INT,), TEXT)], "The committed Merkle root (hex) of the service's ledger number `ledger`."),
    _b("ledger_has$", "ledger, key", [((INT, TEXT), BOOL)],
       "Whether the service's ledger number `ledger` holds an entry under `key` (committed or being committed)."),
]}

