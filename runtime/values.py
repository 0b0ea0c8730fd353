"""Python-side values of LwaS types, shared by the native loader and the reference evaluator.

int -> int, float/truth -> float, bool -> bool, text -> str, time -> datetime (UTC, microsecond
precision), arrays -> list, maps -> dict (kept in ascending key order by `sorted_items` wherever the order
shows: native trees, JSON, ledger bytes), enums -> the variant name (str), records -> dict of
field values,
money -> `Money` (exact integer minor units and an ISO 4217 code; never a float).
"""
from __future__ import annotations

from dataclasses import dataclass

# The native forms of time and currency, written once for the compiler and the runtime:
from lwas.abi import EPOCH, micros_to_time, pack_currency, time_to_micros, unpack_currency  # noqa: F401


@dataclass(frozen=True, slots=True, order=False)
class Money:
    minor: int  # integer minor units: 12.50 USD is Money(1250, "USD")
    currency: str  # ISO 4217 code

    def __str__(self) -> str:
        from lwas.semantics.types import CURRENCY_EXPONENTS

        exp = CURRENCY_EXPONENTS.get(self.currency, 2)
        sign = "-" if self.minor < 0 else ""
        units, frac = divmod(abs(self.minor), 10 ** exp)
        return f"{sign}{units}.{frac:0{exp}d} {self.currency}" if exp else f"{sign}{units} {self.currency}"


def map_order(desc):
    """The sort key of a map's Python keys that gives LwaS's key order (the native tree's): text
    by UTF-8 bytes, an enum in declaration order, int, bool and time as Python compares them."""
    k = desc["map"]
    if k == "text":
        return lambda s: s.encode("utf-8")
    if isinstance(k, dict) and "enum" in k:
        return {n: i for i, n in enumerate(k["variants"])}.__getitem__
    return None


def sorted_items(desc, v: dict) -> list:
    """The (key, value) pairs of map value v (a dict) in LwaS key order."""
    order = map_order(desc)
    try:
        return sorted(v.items(), key=None if order is None else (lambda kv: order(kv[0])))
    except (KeyError, TypeError):
        raise TypeError(f"map keys of the wrong type in {v!r}") from None
