"""Command-line arguments to LwaS values by parameter type, and results back to text, for
`lwasc run`. Values follow lwas.runtime.values (Money, enum variant names, aware datetimes).
"""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone


class BadArgument(ValueError):
    pass


_MONEY = re.compile(r"^\s*(-?)(\d+)(?:\.(\d+))?\s*([A-Za-z]{3})\s*$")


def type_name(t) -> str:
    from lwas.backend.artifact import _type_text

    return _type_text(t)


def parse(text: str, t):
    """The value of one argument of type `t` (a TypeDesc), or BadArgument with the reason."""
    try:
        if t == "int":
            v = int(text)
            if not -2**63 <= v < 2**63:
                raise BadArgument(f"{text} does not fit in a 64-bit int")
            return v
        if t in ("float", "truth"):
            v = float(text)
            if t == "truth" and not (0.0 <= v <= 1.0):
                raise BadArgument(f"a truth is a number in [0, 1], got {text}")
            return v
        if t == "bool":
            if text in ("true", "false"):
                return text == "true"
            raise BadArgument(f"a bool is `true` or `false`, got `{text}`")
        if t == "text":
            return text
        if t == "time":
            v = datetime.fromisoformat(text)
            return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    except ValueError as e:
        if isinstance(e, BadArgument):
            raise
        raise BadArgument(f"`{text}` is not a valid {t}") from None
    if isinstance(t, dict) and "money" in t:
        return _money(text, t["money"])
    if isinstance(t, dict) and "enum" in t:
        variants = t.get("variants", [])
        name = text.split(".", 1)[1] if text.startswith(t["enum"] + ".") else text
        if name in variants:
            return name
        raise BadArgument(f"`{text}` is not a variant of {t['enum']} ({', '.join(variants)})")
    raise BadArgument(f"a {type_name(t)} cannot be given on the command line")


def _money(text: str, currency: str | None):
    from lwas.runtime.values import Money
    from lwas.semantics.types import CURRENCY_EXPONENTS

    m = _MONEY.match(text)
    if not m:
        raise BadArgument(f"money is written like `12.50 USD`, got `{text}`")
    sign, units, frac, code = m.group(1), m.group(2), m.group(3) or "", m.group(4).upper()
    if code not in CURRENCY_EXPONENTS:
        raise BadArgument(f"unknown currency `{code}`")
    if currency and code != currency:
        raise BadArgument(f"expected an amount in {currency}, got {code}")
    exp = CURRENCY_EXPONENTS[code]
    if len(frac) > exp:
        raise BadArgument(f"{code} has {exp} decimal(s), `{text}` has {len(frac)}")
    minor = int(units) * 10**exp + (int(frac.ljust(exp, "0")) if exp else 0)
    return Money(-minor if sign else minor, code)


def format_value(v, quote_text: bool = False) -> str:
    """A result as LwaS would write it (`quote_text`: text as a quoted literal, where values are
    shown beside source, as in test failures)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x, quote_text) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {format_value(x, quote_text)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False) if quote_text else v
    return str(v)
