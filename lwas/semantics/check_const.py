"""Constants: a `const` initialiser is checked on first use (any order across modules), must not
call a fn or rule nor depend on itself (E0316), and is folded to a value when simple.

Folding covers literals, constant names and unary/binary operators on them, with the run-time
rules: an int overflow or a division by zero folds to None, leaving the reference evaluator
to report it. The folded values go to `Checked.const_values` (a truth is a float).
"""
from __future__ import annotations

import math
import operator

from lwas.semantics.check_info import _KIND_WORD, ItemRef
from lwas.semantics.resolve import ModuleInfo
from lwas.semantics.types import (BOOL, ERROR, FLOAT, INT, INT_MAX, INT_MIN, MONEY, TRUTH, MoneyT, MoneyValue,
                                  Type)
from lwas.syntax import tree as ast


# The operands of each compound expression but a call, in the order _nonconst searches them (a
# block arm of a `match` is left out: a block where a value is needed is already an error).
_OPERANDS = {
    ast.Binary: lambda n: (n.left, n.right),
    ast.Unary: lambda n: (n.operand,),
    ast.Field: lambda n: (n.obj,),
    ast.Index: lambda n: (n.obj, n.index),
    ast.ArrayLit: lambda n: n.elems,
    ast.MapLit: lambda n: [x for entry in n.entries for x in (entry.key, entry.value)],
    ast.Match: lambda n: [n.subject] + [a.body for a in n.arms if a.body.__class__ is not ast.Block],
}


class _Consts:
    """Mixin of `_Checker` (lwas.semantics.typecheck): `const` declarations and folding."""

    def _const_type(self, ref: ItemRef) -> Type:
        decl = ref.decl
        t = self.out.const_types.get(decl)
        if t is not None:
            return t
        if decl in self.const_busy:
            self.sink.error("E0316", f"constant `{decl.name}` depends on itself", decl.name_span,
                            label="its initialiser refers back to it",
                            help="a constant must be computable from literals and other constants")
            self.out.const_types[decl] = ERROR
            return ERROR
        return self._check_const(decl, ref.module)

    def _check_const(self, decl, m: ModuleInfo) -> Type:
        saved = (self.mod, self.env, self.scopes, self.scope_spans, self.loops, self.kind,
                 self.ret, self.ret_span, self.cur_item)
        self._enter(m)
        self._reset_body(decl, "const", None, None)
        self.const_busy.add(decl)
        n_errors = len(self.sink.items)
        if decl.type is not None:
            declared = self.resolve_type(decl.type)
            t = self.check(decl.value, declared, f"expected `{declared}` because of the constant's type")
            ct = declared
            if declared is MONEY and t.__class__ is MoneyT:
                ct = t
        else:
            ct = self.value(decl.value)
        self.const_busy.discard(decl)
        if decl not in self.out.const_types:  # a cycle may have set ERROR already
            self.out.const_types[decl] = ct
        bad = self._nonconst(decl.value)
        if bad is not None:
            ref = self.refs.get(bad.callee)
            what = _KIND_WORD.get(getattr(ref, "kind", ""), "function")
            self.sink.error("E0316", "constant expression required", bad.span,
                            label=f"calls a {what}, which is not allowed in a `const`",
                            notes=("a `const` may use literals, operators, other constants and the "
                                   "built-ins (`float`, `ramp`, ...)",),
                            help="make it a `fn` instead, or compute the value by hand")
        value = None
        if not any(d.is_error for d in self.sink.items[n_errors:]):
            value = self._fold(decl.value)
            if value is not None and ct is TRUTH and isinstance(value, bool):
                value = 1.0 if value else 0.0
        self.out.const_values[decl] = value
        (mod, self.env, self.scopes, self.scope_spans, self.loops, self.kind, self.ret,
         self.ret_span, self.cur_item) = saved
        if mod is not None:
            self._enter(mod)
        return self.out.const_types[decl]

    def _nonconst(self, e):
        """The first call of a fn or rule inside a constant initialiser, or None."""
        stack = [e]
        while stack:
            n = stack.pop()
            c = n.__class__
            if c is ast.Call:
                ref = self.refs.get(n.callee)
                if ref.__class__ is ItemRef and (ref.kind == "fn" or ref.kind == "rule"):
                    return n
                stack.extend(a.value for a in n.args)
            else:
                children = _OPERANDS.get(c)
                if children is not None:
                    stack.extend(children(n))
        return None

    def _fold(self, e):
        """The value of a simple constant expression, or None."""
        c = e.__class__
        if c is ast.IntLit:
            return e.value if INT_MIN <= e.value <= INT_MAX else None
        if c is ast.FloatLit:
            return e.value if math.isfinite(e.value) else None
        if c is ast.BoolLit or c is ast.TextLit:
            return e.value
        if c is ast.MoneyLit:
            return self.out.money_values.get(e)
        if c is ast.Name or c is ast.Field:
            ref = self.refs.get(e)
            if ref.__class__ is ItemRef and ref.kind == "const":
                return self.out.const_values.get(ref.decl)
            return None
        if c is ast.Unary:
            v = self._fold(e.operand)
            if v is None:
                return None
            t = self.types.get(e)
            if e.op == "not":
                if t is BOOL:
                    return not v
                return 1.0 - float(v)
            if t is INT:
                return -v if INT_MIN <= -v <= INT_MAX else None
            if t is FLOAT:
                return -float(v)
            if isinstance(v, MoneyValue):
                return MoneyValue(-v.minor, v.currency) if -v.minor <= INT_MAX else None
            return None
        if c is ast.Binary:
            a = self._fold(e.left)
            if a is None:
                return None
            b = self._fold(e.right)
            if b is None:
                return None
            return _fold_binary(e.op, a, b, self.types.get(e))
        return None


_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}
_FLOAT_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "%": math.fmod}


def _fold_binary(op: str, a, b, t: Type):
    """Folds a binary operation on constant values (None when it fails or is not simple)."""
    if op == "and" or op == "or":
        if t is BOOL:
            return (a and b) if op == "and" else (a or b)
        x = float(a)
        y = float(b)
        return min(x, y) if op == "and" else max(x, y)
    if isinstance(a, MoneyValue) or isinstance(b, MoneyValue):
        return _fold_money(op, a, b)
    if op in _COMPARE:
        if isinstance(a, bool) != isinstance(b, bool) and t is BOOL:
            a, b = float(a), float(b)
        return _COMPARE[op](a, b)
    if isinstance(a, str) and isinstance(b, str):
        return a + b if op == "+" else None
    if t is INT:
        if op == "+":
            v = a + b
        elif op == "-":
            v = a - b
        elif op == "*":
            v = a * b
        elif b == 0:
            return None
        elif op == "/":
            q = abs(a) // abs(b)
            v = q if (a >= 0) == (b >= 0) else -q
        else:
            v = abs(a) % abs(b)
            v = v if a >= 0 else -v
        return v if INT_MIN <= v <= INT_MAX else None
    if t is FLOAT:
        if float(b) == 0.0 and (op == "/" or op == "%"):
            return None
        return _FLOAT_OPS[op](float(a), float(b))
    return None


def _fold_money(op: str, a, b):
    if isinstance(a, MoneyValue) and isinstance(b, MoneyValue):
        if a.currency != b.currency:
            return None
        if op == "+":
            v = a.minor + b.minor
        elif op == "-":
            v = a.minor - b.minor
        elif op == "/":
            return a.minor / b.minor if b.minor else None
        elif op in _COMPARE:
            return _COMPARE[op](a.minor, b.minor)
        else:
            return None
        return MoneyValue(v, a.currency) if INT_MIN <= v <= INT_MAX else None
    if op == "*":
        m, k = (a, b) if isinstance(a, MoneyValue) else (b, a)
        if isinstance(k, bool) or not isinstance(k, int):
            return None
        v = m.minor * k
        return MoneyValue(v, m.currency) if INT_MIN <= v <= INT_MAX else None
    return None
