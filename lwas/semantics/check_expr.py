"""Expressions: `expr` gives an expression its type, `check` also fits it to an expected type
through the implicit conversions (bool -> truth, truth -> float, money currencies; recorded in
`Checked.coercions`). Here are literals, operators, indexing and array/map literals; names and
`.` are in check_names.py, calls in check_call.py, `match` in check_match.py.

Expected types flow inward only where the language needs them: `[]` and `{}` take their type
from it (else E0318), a float literal in [0, 1] becomes a truth, a bare variant name is looked
up in the expected enum. The operator rules are listed in lwas.semantics.typecheck's docstring.
"""
from __future__ import annotations

import math

from lwas.semantics.check_util import _close_currency, _conversion_help, _join, _plural, target_text
from lwas.semantics.types import (BOOL, CURRENCY_EXPONENTS, ERROR, FLOAT, INT, INT_MAX, INT_MIN, MONEY, TEXT,
                                  TIME, TRUTH, UNIT, ArrayT, EnumT, MapT, MoneyT, MoneyValue, RecordT, Type,
                                  map_key_ok, money_t)
from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Label
from lwas.syntax.source import Span

_ORDERED = (INT, FLOAT, TRUTH, TIME, TEXT)
_OP_MESSAGE = {"+": "cannot add `{r}` to `{l}`", "-": "cannot subtract `{r}` from `{l}`",
               "*": "cannot multiply `{l}` by `{r}`", "/": "cannot divide `{l}` by `{r}`",
               "%": "cannot take the remainder of `{l}` divided by `{r}`"}


class _Exprs:
    """Mixin of `_Checker` (lwas.semantics.typecheck): typing expressions and conversions."""

    def expr(self, e, exp: Type | None = None) -> Type:
        t = self.ex[e.__class__](e, exp)
        self.types[e] = t
        return t

    def value(self, e) -> Type:
        """Like `expr`, where a value is needed but no type expected (an initialiser without an
        annotation): `()` is E0301, and ERROR."""
        t = self.expr(e)
        if t is UNIT:
            self._no_value(e)
            return ERROR
        return t

    def _no_value(self, e) -> None:
        self.sink.error("E0301", "mismatched types: expected a value, found `()`", e.span,
                        label="this returns nothing",
                        help="only functions with a result type (`-> T`) give a value")

    def check(self, e, exp: Type, why: str | None = None, why_span: Span | None = None) -> Type:
        """Checks e against an expected type (converting implicitly); returns e's own type."""
        t = self.ex[e.__class__](e, exp)
        self.types[e] = t
        if t is exp or t is ERROR or exp is ERROR:
            return t
        if self._convertible(t, exp):
            if t != exp:
                self.coercions[e] = exp
            return t
        self._mismatch(e, t, exp, why, why_span)
        return t

    def _convertible(self, t: Type, exp: Type) -> bool:
        if t is exp or t is ERROR or exp is ERROR:
            return True
        if exp is TRUTH:
            return t is BOOL
        if exp is FLOAT:
            return t is TRUTH
        tc = t.__class__
        if tc is MoneyT:
            return exp.__class__ is MoneyT and (
                t.currency is None or exp.currency is None or t.currency == exp.currency)
        if tc is ArrayT and exp.__class__ is ArrayT:
            a, b = t.elem, exp.elem
            return a == b or (a.__class__ is MoneyT and b is MONEY)
        if tc is MapT and exp.__class__ is MapT:
            a, b = t.value, exp.value
            return t.key == exp.key and (a == b or (a.__class__ is MoneyT and b is MONEY))
        return False

    def _mismatch(self, e, t: Type, exp: Type, why, why_span) -> None:
        labels = (Label(why_span, "expected because of this"),) if why_span is not None else ()
        if t.__class__ is MoneyT and exp.__class__ is MoneyT:
            self.sink.error("E0308", f"currency mismatch: expected `{exp.currency}`, found `{t.currency}`",
                            e.span, label=why or f"this is `{t.currency}`", labels=labels,
                            help="convert between currencies explicitly, with a declared rate")
            return
        if t is UNIT:
            self.sink.error("E0301", f"mismatched types: expected `{exp}`, found `()`", e.span,
                            label="this returns nothing", labels=labels)
            return
        self.sink.error("E0301", f"mismatched types: expected `{exp}`, found `{t}`", e.span,
                        label=why or f"expected `{exp}`", labels=labels,
                        help=_conversion_help(e, t, exp))

    # ------------------------------------------------------------ literals

    def e_int(self, e, exp) -> Type:
        v = e.value
        if v > INT_MAX or v < INT_MIN:
            self.sink.error("E0004", "integer literal out of range", e.span,
                            label="does not fit in a 64-bit `int`",
                            notes=("`int` holds -9223372036854775808 ..= 9223372036854775807",))
            return ERROR
        return INT

    def e_float(self, e, exp) -> Type:
        v = e.value
        if v != v or v in (math.inf, -math.inf):
            self.sink.error("E0004", "float literal out of range", e.span,
                            label="not a finite 64-bit float",
                            notes=("the largest finite float is about 1.8e308",))
            return ERROR
        if exp is TRUTH and 0.0 <= v <= 1.0:
            return TRUTH
        return FLOAT

    def e_bool(self, e, exp) -> Type:
        return BOOL

    def e_text(self, e, exp) -> Type:
        return TEXT

    def e_money(self, e, exp) -> Type:
        cur = e.currency
        n = CURRENCY_EXPONENTS.get(cur)
        if n is None:
            sugg = _close_currency(cur)
            self.sink.error("E0309", f"unknown currency `{cur}`", e.span,
                            label="not an ISO 4217 currency code",
                            help=f"did you mean `{sugg}`?" if sugg else
                            "write an ISO 4217 code: `USD`, `EUR`, `JPY`, ...")
            return MONEY
        whole, _, frac = e.amount.partition(".")
        if len(frac) > n:
            if n == 0:
                help_ = f"`{cur}` has no minor unit: write a whole amount, e.g. `{whole} {cur}`"
            else:
                help_ = f"`{cur}` amounts have at most {_plural(n, 'decimal')}, e.g. `{whole}.{frac[:n]} {cur}`"
            self.sink.error("E0310", f"too many decimals for `{cur}`: "
                                     f"`{e.amount} {cur}` has {len(frac)}, `{cur}` allows {n}",
                            e.span, label=f"`{cur}` has no minor unit" if n == 0 else
                            f"at most {_plural(n, 'decimal')} for `{cur}`", help=help_)
            return money_t(cur)
        minor = int(whole + frac.ljust(n, "0"))
        if minor > INT_MAX:
            self.sink.error("E0004", "money literal out of range", e.span,
                            label="more minor units than a 64-bit integer holds")
            return money_t(cur)
        self.out.money_values[e] = MoneyValue(minor, cur)
        return money_t(cur)

    # ------------------------------------------------------------ operators

    def e_unary(self, e: ast.Unary, exp) -> Type:
        o = e.operand
        if e.op == "not":
            t = self.expr(o, TRUTH if o.__class__ is ast.FloatLit else None)
            if t is BOOL or t is TRUTH or t is ERROR:
                return t
            self.sink.error("E0311", f"cannot apply `not` to `{t}`", e.span,
                            label=f"`not` needs `bool` or `truth`, found `{t}`",
                            help="compare it instead: `x == 0`" if t is INT else None)
            return ERROR
        t = self.expr(o)
        if t is INT or t is FLOAT or t is ERROR or t.__class__ is MoneyT:
            return t
        if t is TRUTH:
            self.coercions[o] = FLOAT
            return FLOAT
        self.sink.error("E0311", f"cannot negate `{t}`", e.span,
                        label="unary `-` needs `int`, `float` or `money`",
                        help="for a truth or bool, `not x` is the negation" if t is BOOL else None)
        return ERROR

    def e_binary(self, e: ast.Binary, exp) -> Type:
        return self.binops[e.op](e)

    def b_arith(self, e: ast.Binary) -> Type:
        lt = self.expr(e.left)
        rt = self.expr(e.right)
        return self._arith(e.op, lt, rt, e, e.left, e.right)

    def _arith(self, op: str, lt: Type, rt: Type, e, l, r) -> Type:
        if lt is rt and (lt is INT or lt is FLOAT):
            return lt
        if lt is ERROR or rt is ERROR:
            return ERROR
        if lt is TRUTH:
            lt = FLOAT
            self.coercions[l] = FLOAT
        if rt is TRUTH:
            rt = FLOAT
            self.coercions[r] = FLOAT
        if lt is rt and (lt is INT or lt is FLOAT):
            return lt
        lm = lt.__class__ is MoneyT
        rm = rt.__class__ is MoneyT
        if lm and rm:
            if op == "+" or op == "-":
                return self._same_currency(lt, rt, e, l, r)
            if op == "/":
                self._same_currency(lt, rt, e, l, r)
                return FLOAT
        elif lm and rt is INT and op == "*":
            return lt
        elif rm and lt is INT and op == "*":
            return rt
        elif lt is TEXT and rt is TEXT and op == "+":
            return TEXT
        elif lt.__class__ is ArrayT and rt.__class__ is ArrayT and op == "+" and _join(lt, rt) is not None:
            return _join(lt, rt)  # concatenation: a new array
        # errors
        help_ = None
        bad = e
        if {lt, rt} == {INT, FLOAT} and e.__class__ is ast.Assign:
            bad = r
            if rt is FLOAT:
                help_ = f"`{target_text(l)}` is an `int`: convert the value with `int(...)`"
            elif r.__class__ is ast.IntLit:
                help_ = f"write a float literal: `{r.value}.0`"
            else:
                help_ = "convert the value with `float(...)`"
        elif {lt, rt} == {INT, FLOAT}:
            side = l if lt is INT else r
            bad = side
            if side.__class__ is ast.IntLit:
                help_ = f"write a float literal: `{side.value}.0`"
            else:
                help_ = "convert the `int` with `float(...)`, or the `float` with `int(...)`"
        elif lm and rm:
            help_ = ("money times money has no meaning; multiply by an `int` count"
                     if op == "*" else "the remainder of money by money is not defined")
        elif lm or rm:
            other = rt if lm else lt
            if other is FLOAT and op == "*":
                help_ = "scaling money by a float must round: use `scale(m, factor)` (rounds half-even)"
            elif op == "/" and (other is INT or other is FLOAT) and lm:
                help_ = ("dividing money must decide where the remainder goes: use `std.money`'s "
                         "allocation, or `scale(m, 1.0 / float(n))` to round half-even")
            elif op in "+-" and (other is INT or other is FLOAT):
                help_ = "write the amount with its currency, e.g. `5.00 USD`"
        elif (lt is TEXT) != (rt is TEXT) and op == "+":
            help_ = "convert the other operand with `text(...)`"
        self.sink.error("E0311", _OP_MESSAGE[op].format(l=lt, r=rt), bad.span,
                        label=f"no `{op}` for `{lt}` {op} `{rt}`", help=help_)
        return ERROR

    def _same_currency(self, lt: MoneyT, rt: MoneyT, e, l, r) -> Type:
        a, b = lt.currency, rt.currency
        if a is not None and b is not None and a != b:
            self.sink.error("E0308", f"currency mismatch: `{a}` and `{b}`", e.span,
                            label=f"`{e.op}` needs one currency" if hasattr(e, "op") else "one currency needed",
                            labels=(Label(l.span, f"this is `{a}`"), Label(r.span, f"this is `{b}`")),
                            help="convert between currencies explicitly, with a declared rate")
            return MONEY
        return money_t(a if a is not None else b)

    def b_logic(self, e: ast.Binary) -> Type:
        l, r = e.left, e.right
        lt = self.expr(l, TRUTH if l.__class__ is ast.FloatLit else None)
        rt = self.expr(r, TRUTH if r.__class__ is ast.FloatLit else None)
        if lt is BOOL and rt is BOOL:
            return BOOL
        ok = True
        for side, t in ((l, lt), (r, rt)):
            if t is not BOOL and t is not TRUTH and t is not ERROR:
                ok = False
                help_ = None
                if t is FLOAT:
                    help_ = "make it a truth with `clamp01(x)` or `truth(x)`, or compare it: `x > 0.5`"
                elif t is INT:
                    help_ = "compare it: `x != 0`"
                self.sink.error("E0311", f"`{e.op}` needs `bool` or `truth` operands, found `{t}`", side.span,
                                label=f"this is `{t}`", help=help_)
        if not ok or lt is ERROR or rt is ERROR:
            return ERROR
        if lt is BOOL:
            self.coercions[l] = TRUTH
        if rt is BOOL:
            self.coercions[r] = TRUTH
        return TRUTH

    def _compare_types(self, e: ast.Binary) -> Type | None:
        l, r = e.left, e.right
        lt = self.expr(l)
        rt = self.expr(r, lt if lt.__class__ is EnumT else None)
        if lt is ERROR or rt is ERROR:
            return None
        if lt is rt:
            return lt
        if lt.__class__ is MoneyT and rt.__class__ is MoneyT:
            return self._same_currency(lt, rt, e, l, r)
        j = _join(lt, rt)
        if j is None:
            help_ = None
            if {lt, rt} == {INT, FLOAT}:
                side = l if lt is INT else r
                help_ = (f"write a float literal: `{side.value}.0`" if side.__class__ is ast.IntLit
                         else "convert the `int` with `float(...)`")
            self.sink.error("E0311", f"cannot compare `{lt}` with `{rt}`", e.span,
                            label=f"`{lt}` {e.op} `{rt}`", help=help_)
            return None
        if lt is not j:
            self.coercions[l] = j
        if rt is not j:
            self.coercions[r] = j
        return j

    def b_eq(self, e: ast.Binary) -> Type:
        t = self._compare_types(e)
        if t is not None and (t.__class__ is ArrayT or t.__class__ is MapT or t.__class__ is RecordT
                              or t is UNIT):
            what = {ArrayT: "arrays", MapT: "maps", RecordT: "records"}.get(t.__class__, "`()`")
            self.sink.error("E0311", f"`{e.op}` is not defined for {what}", e.span,
                            label=f"cannot compare `{t}` values",
                            help="compare their fields or elements one by one" if t is not UNIT else None)
        return BOOL

    def b_ord(self, e: ast.Binary) -> Type:
        t = self._compare_types(e)
        if t is not None and t not in _ORDERED and t.__class__ is not MoneyT:
            self.sink.error("E0311", f"`{e.op}` is not defined for `{t}`", e.span,
                            label=f"cannot order `{t}` values",
                            notes=("`<`, `<=`, `>`, `>=` compare int, float, truth, money, time and text",))
        return BOOL

    def b_in(self, e: ast.Binary) -> Type:
        """`k in m`: whether map m holds key k."""
        mt = self.expr(e.right)
        if mt.__class__ is MapT:
            self.check(e.left, mt.key, f"map keys are `{mt.key}`")
        else:
            self.expr(e.left)
            if mt is not ERROR:
                self.sink.error("E0311", f"`in` needs a map on its right, found `{mt}`", e.right.span,
                                label="not a map", notes=("`k in m` asks whether map `m` holds key `k`",))
        return BOOL

    def e_index(self, e: ast.Index, exp) -> Type:
        t = self.expr(e.obj)
        if t.__class__ is MapT:
            self.check(e.index, t.key, f"map keys are `{t.key}`")
            return t.value
        self.check(e.index, INT, "array indices are `int`")
        if t.__class__ is ArrayT:
            return t.elem
        if t is ERROR:
            return ERROR
        self.sink.error("E0311", f"cannot index into a value of type `{t}`", e.obj.span,
                        label="not an array or a map")
        return ERROR

    def e_map(self, e: ast.MapLit, exp) -> Type:
        entries = e.entries
        if exp.__class__ is MapT:
            for x in entries:
                self.check(x.key, exp.key, f"expected `{exp.key}`, the key type")
                self.check(x.value, exp.value, f"expected `{exp.value}`, the value type")
            return exp
        if not entries:
            return self._needs_annotation(e, "the key and value types of an empty map",
                                          "let m: {text: int} = {}")
        kt = self.expr(entries[0].key)
        if kt is not ERROR and not map_key_ok(kt):
            self.sink.error("E0322", f"`{kt}` cannot key a map", entries[0].key.span,
                            label="map keys are `int`, `text`, `time`, `bool` or an enum")
            kt = ERROR
        vt = self.value(entries[0].value)
        for x in entries[1:]:
            if kt is ERROR:
                self.expr(x.key)
            else:
                self.check(x.key, kt, f"expected `{kt}`, the type of the first key")
            t = self.expr(x.value)
            if t is vt or t is ERROR:
                continue
            nj = _join(vt, t) if vt is not ERROR else t
            if nj is None:
                self.sink.error("E0301", f"mismatched types: expected `{vt}`, found `{t}`", x.value.span,
                                label="map values must have one type",
                                labels=(Label(entries[0].value.span, f"the first value is `{vt}`"),),
                                help=_conversion_help(x.value, t, vt))
                continue
            vt = nj
        if kt is ERROR or vt is ERROR:
            return ERROR
        for x in entries:
            t = self.types.get(x.value)
            if t is not None and t != vt and t is not ERROR and self._convertible(t, vt):
                self.coercions[x.value] = vt
        return MapT(kt, vt)

    def e_array(self, e: ast.ArrayLit, exp) -> Type:
        elems = e.elems
        if exp.__class__ is ArrayT:
            el = exp.elem
            for x in elems:
                self.check(x, el, f"expected `{el}`, the element type")
            return exp
        if not elems:
            return self._needs_annotation(e, "the element type of an empty array", "let xs: [int] = []")
        j = self.expr(elems[0])
        mixed = False
        for x in elems[1:]:
            t = self.expr(x)
            if t is j or t is ERROR:
                continue
            if j is ERROR:
                j = t
                continue
            nj = _join(j, t)
            if nj is None:
                self.sink.error("E0301", f"mismatched types: expected `{j}`, found `{t}`", x.span,
                                label="array elements must have one type",
                                labels=(Label(elems[0].span, f"the first element is `{j}`"),),
                                help=_conversion_help(x, t, j))
                continue
            mixed = True
            j = nj
        if j is ERROR:
            return ERROR
        if j is UNIT:
            self._no_value(elems[0])
            return ERROR
        if mixed:
            types = self.types
            for x in elems:
                t = types[x]
                if t != j and t is not ERROR and self._convertible(t, j):
                    self.coercions[x] = j
        return ArrayT(j)

    def _needs_annotation(self, e, what: str, example: str) -> Type:
        """E0318 on `[]` or `{}` where no type is expected."""
        self.sink.error("E0318", f"cannot infer {what}", e.span,
                        label="type annotation needed",
                        help=f"annotate it, for example: `{example}`")
        return ERROR
