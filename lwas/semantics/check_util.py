"""Pure helpers shared by the type checker's mixins: the wording of diagnostics (quoted lists,
plurals, "did you mean" candidates, conversion hints, source-like snippets) and `_join`, the
one type two types both convert to. No state and no diagnostics of their own.
"""
from __future__ import annotations

import difflib

from lwas.semantics.types import (BOOL, CURRENCY_EXPONENTS, ERROR, FLOAT, INT, MONEY, TEXT, TRUTH, ArrayT,
                                  MapT, MoneyT, Type, money_t)
from lwas.syntax import tree as ast


def _close(name: str, candidates) -> str | None:
    """The candidate spelled most like name; never one a user cannot write (`metric$`)."""
    m = difflib.get_close_matches(name, [c for c in candidates if "$" not in c], n=1, cutoff=0.7)
    return m[0] if m else None


_COMMON_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CNY", "CAD", "AUD", "INR", "BRL", "MXN",
                      "SEK", "NOK", "DKK", "PLN", "KRW", "SGD", "HKD", "NZD", "ZAR")


def _close_currency(code: str) -> str | None:
    """A likely intended ISO 4217 code: common currencies first (`USX` -> `USD`)."""
    cands = difflib.get_close_matches(code.upper(), list(CURRENCY_EXPONENTS), n=8, cutoff=0.6)
    if not cands:
        return None
    for c in _COMMON_CURRENCIES:
        if c in cands and c[:2] == code.upper()[:2]:
            return c
    for c in _COMMON_CURRENCIES:
        if c in cands:
            return c
    return cands[0]


def _q(names) -> str:
    names = [f"`{n}`" for n in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _snippet(e) -> str:
    """A short source-like rendering of simple expressions for help texts."""
    c = e.__class__
    if c is ast.IntLit or c is ast.FloatLit:
        return repr(e.value)
    if c is ast.BoolLit:
        return "true" if e.value else "false"
    if c is ast.MoneyLit:
        return f"{e.amount} {e.currency}"
    if c is ast.Name or c is ast.Field:
        return target_text(e)
    return "..."


def target_text(e) -> str:
    c = e.__class__
    if c is ast.Name:
        return e.name
    if c is ast.Field:
        return f"{target_text(e.obj)}.{e.name}"
    if c is ast.Index:
        return f"{target_text(e.obj)}[...]"
    return "..."


def _join(a: Type, b: Type) -> Type | None:
    """The one type both convert to (for arms, array elements, comparisons), or None."""
    if a is b or a == b:
        return a
    if a is ERROR:
        return b
    if b is ERROR:
        return a
    if (a is BOOL and b is TRUTH) or (a is TRUTH and b is BOOL):
        return TRUTH
    if (a is TRUTH and b is FLOAT) or (a is FLOAT and b is TRUTH):
        return FLOAT
    if a.__class__ is MoneyT and b.__class__ is MoneyT:
        return money_t(a.currency if a.currency == b.currency else None)
    if a.__class__ is ArrayT and b.__class__ is ArrayT:
        if a.elem.__class__ is MoneyT and b.elem.__class__ is MoneyT:
            return ArrayT(MONEY)
    if a.__class__ is MapT and b.__class__ is MapT and a.key == b.key:
        if a.value.__class__ is MoneyT and b.value.__class__ is MoneyT:
            return MapT(a.key, MONEY)
    return None


def _conversion_help(e, t: Type, exp: Type) -> str | None:
    if t is INT and (exp is FLOAT or exp is TRUTH):
        if e.__class__ is ast.IntLit:
            return f"write a float literal: `{e.value}.0`"
        return "convert it with `float(...)`"
    if t is FLOAT and exp is INT:
        return "convert it with `int(...)` (truncates toward zero)"
    if t is FLOAT and exp is TRUTH:
        if e.__class__ is ast.FloatLit:
            return "a truth literal lies in [0, 1]"
        return "convert it with `clamp01(...)`, or `truth(...)` (checked at run time)"
    if t is TRUTH and exp is BOOL:
        return "compare the truth with a threshold: `x >= 0.5`"
    if exp is TEXT and t is not TEXT:
        return "format it with `text(...)`"
    if exp.__class__ is MoneyT and (t is INT or t is FLOAT):
        return "write the amount with its currency, e.g. `5.00 USD`"
    return None
