"""Python-side values of LwaS types, shared by the native loader and the reference evaluator.

int -> int, float/truth -> float, bool -> bool, text -> str, time -> datetime (UTC, microsecond
precision), arrays -> list, maps -> dict (kept in ascending key order by `sorted_items` wherever the order
shows: native trees, JSON, ledger bytes), enums -> the variant name (str), records -> dict of
field values,
money -> `Money` (exact integer minor units and an ISO 4217 code; never a float).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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


def pack_currency(code: str) -> int:
    """The native form of a currency: its three ASCII letters packed into an int (`USD` = 0x555344)."""
    b = code.encode("ascii")
    if len(b) != 3:
        raise ValueError(f"not a currency code: {code!r}")
    return (b[0] << 16) | (b[1] << 8) | b[2]


def unpack_currency(n: int) -> str:
    return bytes([(n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]).decode("ascii")


def time_to_micros(t: datetime) -> int:
    """The native form of a time: microseconds since 1970-01-01T00:00:00Z."""
    if t.tzinfo is None:
        raise ValueError("a time must be timezone-aware (UTC)")
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def micros_to_time(us: int) -> datetime:
    from datetime import timedelta

    return EPOCH + timedelta(microseconds=us)


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
