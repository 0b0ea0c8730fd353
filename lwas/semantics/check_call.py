"""Calls: fn and rule calls, record construction `Rec(field: v, ...)` and built-in calls.

Arguments may be named after the positional ones, each parameter given once (E0302); they are
put in parameter order (`Checked.call_args`, also evaluation order) and the Signature used goes
to `Checked.call_sigs`. A record is constructed with every field named once, or left to its
default (E0315). A built-in takes the first overload that accepts the argument types, its type
variables bound by `_match`; none fitting is E0301, or E0308 for mixed known currencies.
"""
from __future__ import annotations

from typing import Any

from lwas.semantics.builtins import Builtin
from lwas.semantics.check_info import BuiltinRef, ItemRef, Local
from lwas.semantics.check_util import _close, _close_currency, _join, _plural, _q
from lwas.semantics.types import (CURRENCY_EXPONENTS, ERROR, FLOAT, INT, MONEY, UNIT, ArrayT, MapT, MoneyT,
                                  RecordT, Signature, Type, TypeVar, money_t)
from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Label
from lwas.syntax.source import Span


class _Calls:
    """Mixin of `_Checker` (lwas.semantics.typecheck): calls, constructions, built-in overloads."""

    def e_call(self, e: ast.Call, exp) -> Type:
        callee = e.callee
        cc = callee.__class__
        ref = None
        if cc is ast.Name:
            ref = self.lookup(callee.name, None)
            if ref is None:
                self.undefined(callee)
                self._args_only(e)
                return ERROR
            self.refs[callee] = ref
        elif cc is ast.Field:
            base = self._path(callee.obj)
            if isinstance(base, Type):
                t = self.field_of(callee, base)
                self.types[callee] = t
                if t is not ERROR:
                    self._not_callable(e, f"field `{callee.name}`")
                self._args_only(e)
                return ERROR
            ref = self.member(callee, base)
            if ref is None:
                self._args_only(e)
                return ERROR
            self.refs[callee] = ref
        else:
            t = self.expr(callee)
            if t is not ERROR:
                self._not_callable(e, f"a value of type `{t}`")
            self._args_only(e)
            return ERROR
        c = ref.__class__
        if c is ItemRef:
            k = ref.kind
            if k == "fn" or k == "rule":
                return self.call_sig(e, self.out.signatures[ref.decl], ref.name, ref.decl.name_span)
            if k == "record":
                return self.construct(e, self.out.records[ref.decl])
        elif c is BuiltinRef:
            return self.call_builtin(e, ref.builtin)
        if c is Local:
            ref.used = True
        self._not_callable(e, self._describe_ref(ref))
        self._args_only(e)
        return ERROR

    def _not_callable(self, e: ast.Call, what: str) -> None:
        self.sink.error("E0303", f"{what} is not callable", e.callee.span,
                        label="not a function",
                        help="only functions, rules and built-ins can be called; "
                             "build a record with `Name(field: value, ...)`")

    def _args_only(self, e: ast.Call) -> None:
        for a in e.args:
            self.expr(a.value)

    def _order_args(self, e: ast.Call, names: tuple, what: str, decl_span: Span | None):
        """Arguments in parameter order (None where missing), or None after E0302."""
        args = e.args
        n = len(names)
        if len(args) == n:
            for a in args:
                if a.name is not None:
                    break
            else:
                return [a.value for a in args]
        out: list = [None] * n
        ok = True
        labels = (Label(decl_span, "declared here"),) if decl_span is not None else ()
        positional = True
        for i, a in enumerate(args):
            if a.name is None:
                if not positional:
                    self.sink.error("E0302", "positional argument after a named one", a.span,
                                    label="give this argument a name, or move it first")
                    ok = False
                elif i < n:
                    out[i] = a.value
                continue
            positional = False
            if a.name not in names:
                sugg = _close(a.name, names)
                self.sink.error("E0302", f"{what} has no parameter named `{a.name}`", a.span,
                                label="unknown parameter", labels=labels,
                                help=f"did you mean `{sugg}`?" if sugg else None)
                ok = False
                continue
            j = names.index(a.name)
            if out[j] is not None:
                self.sink.error("E0302", f"argument `{a.name}` given twice", a.span,
                                label="already given")
                ok = False
                continue
            out[j] = a.value
        npos = sum(1 for a in args if a.name is None)
        if npos > n:
            self.sink.error("E0302", f"{what} takes {_plural(n, 'argument')} but {len(args)} were given",
                            e.span, label=f"expected {_plural(n, 'argument')}", labels=labels)
            ok = False
        elif ok:
            missing = [names[i] for i in range(n) if out[i] is None]
            if missing:
                given = len(args)
                self.sink.error("E0302", f"{what} takes {_plural(n, 'argument')} but {given} "
                                         f"{'was' if given == 1 else 'were'} given",
                                e.span, label=f"missing {_q(missing)}", labels=labels)
                ok = False
        if not ok:
            placed = {id(v) for v in out if v is not None}
            for a in args:
                if id(a.value) not in placed:
                    self.expr(a.value)
            for v in out:
                if v is not None:
                    self.expr(v)
            return None
        return out

    def call_sig(self, e: ast.Call, sig: Signature, name: str, decl_span: Span | None) -> Type:
        params = sig.params
        args = self._order_args(e, tuple(p for p, _ in params), f"`{name}`", decl_span)
        if args is None:
            return sig.ret
        for (pn, pt), a in zip(params, args):
            self.check(a, pt, f"expected `{pt}` for parameter `{pn}` of `{name}`")
        self.out.call_sigs[e] = sig
        self.out.call_args[e] = tuple(args)
        return sig.ret

    def construct(self, e: ast.Call, rt: RecordT) -> Type:
        fields = rt.fields
        given: dict[str, Any] = {}
        frefs = self.field_refs[rt]
        for a in e.args:
            if a.name is None:
                self.sink.error("E0315", f"record fields must be named: `{rt.name}(field: value, ...)`",
                                a.span, label="unnamed field value",
                                notes=(f"`{rt.name}` has the fields {_q(fields)}",) if fields else ())
                self.expr(a.value)
                continue
            ft = fields.get(a.name)
            if ft is None:
                sugg = _close(a.name, fields)
                self.sink.error("E0315", f"record `{rt.name}` has no field `{a.name}`", a.span,
                                label="unknown field",
                                notes=(f"`{rt.name}` has the fields {_q(fields)}",) if fields else (),
                                help=f"did you mean `{sugg}`?" if sugg else None)
                self.expr(a.value)
                continue
            if a.name in given:
                self.sink.error("E0315", f"field `{a.name}` is given twice", a.span,
                                label="already given", labels=(Label(given[a.name].span, "first given here"),))
                self.expr(a.value)
                continue
            given[a.name] = a
            self.refs[a] = frefs[a.name]
            self.check(a.value, ft, f"expected `{ft}` for field `{a.name}`")
        defaults = {f.name: f.default for f in rt.decl.fields if f.default is not None}
        missing = [f for f in fields if f not in given and f not in defaults]
        if missing and all(a.name is not None for a in e.args):
            self.sink.error("E0315", f"missing {'field' if len(missing) == 1 else 'fields'} {_q(missing)} "
                                     f"in `{rt.name}`", e.span,
                            label=f"every field of `{rt.name}` needs a value")
        elif not missing:  # a field left out takes its default expression (a constant)
            self.out.call_args[e] = tuple(given[f].value if f in given else defaults[f] for f in fields)
        self.out.call_sigs[e] = Signature(tuple(fields.items()), rt)
        return rt

    def call_builtin(self, e: ast.Call, b: Builtin) -> Type:
        args = self._order_args(e, b.params, f"`{b.name}`", None)
        if args is None:
            return ERROR
        overloads = b.overloads
        if len(overloads) == 1 and not b.generic:
            ps, ret = overloads[0]
            for pn, pt, a in zip(b.params, ps, args):
                self.check(a, pt, f"expected `{pt}` for parameter `{pn}` of `{b.name}`")
            self.out.call_sigs[e] = self._builtin_sig(b, ps, ret)
            self.out.call_args[e] = tuple(args)
            return self._refine_builtin(b, args, ret)
        ats = [self.expr(a) for a in args]
        if ERROR in ats:
            return ERROR
        for ps, ret in overloads:
            sub = self._match(ps, ats)
            if sub is None:
                continue
            inst = tuple(_subst(p, sub) for p in ps)
            for a, at, pt in zip(args, ats, inst):
                if at != pt:
                    self.coercions[a] = pt
            ret = _subst(ret, sub)
            self.out.call_sigs[e] = self._builtin_sig(b, inst, ret)
            self.out.call_args[e] = tuple(args)
            return self._refine_builtin(b, args, ret)
        self._builtin_mismatch(e, b, args, ats)
        return ERROR

    def _builtin_sig(self, b: Builtin, ps: tuple, ret: Type) -> Signature:
        key = (b.name, ps, ret)
        sig = self.builtin_sigs.get(key)
        if sig is None:
            sig = self.builtin_sigs[key] = Signature(tuple(zip(b.params, ps)), ret)
        return sig

    def _refine_builtin(self, b: Builtin, args, ret: Type) -> Type:
        if b.name == "from_minor" and len(args) == 2 and args[1].__class__ is ast.TextLit:
            code = args[1].value
            if code in CURRENCY_EXPONENTS:
                return money_t(code)
            sugg = _close_currency(code)
            self.sink.error("E0309", f"unknown currency `{code}`", args[1].span,
                            label="not an ISO 4217 currency code",
                            help=f"did you mean `{sugg}`?" if sugg else None)
        return ret

    def _match(self, ps, ats):
        sub: dict = {}
        for p, a in zip(ps, ats):
            pc = p.__class__
            if pc is TypeVar:
                prev = sub.get(p)
                if prev is None:
                    if not _in_bound(a, p.bound):
                        return None
                    sub[p] = a
                else:
                    if prev.__class__ is MoneyT and a.__class__ is MoneyT:
                        if prev.currency and a.currency and prev.currency != a.currency:
                            return None
                        j = money_t(prev.currency or a.currency)
                    else:
                        j = _join(prev, a)
                    if j is None or not _in_bound(j, p.bound):
                        return None
                    sub[p] = j
            elif pc is ArrayT and p.elem.__class__ is TypeVar:
                if a.__class__ is not ArrayT:
                    return None
                sub[p.elem] = a.elem
            elif pc is MapT and p.key.__class__ is TypeVar:
                if a.__class__ is not MapT:
                    return None
                sub[p.key] = a.key
                sub[p.value] = a.value
            elif p is MONEY:
                if a.__class__ is not MoneyT:
                    return None
            elif not self._convertible(a, p):
                return None
        return sub

    def _builtin_mismatch(self, e: ast.Call, b: Builtin, args, ats) -> None:
        for i, (a, at) in enumerate(zip(args, ats)):
            allowed: list[Type] = []
            for ps, _ in b.overloads:
                p = ps[i]
                if p.__class__ is TypeVar:
                    allowed.extend(p.bound)
                else:
                    allowed.append(p)
            if any(self._match((p,), (at,)) is not None for p in
                   {id(ps[i]): ps[i] for ps, _ in b.overloads}.values()):
                continue
            names = []
            for t in allowed:
                s = ("[T]" if t.__class__ is ArrayT and t.elem.__class__ is TypeVar else
                     "{K: V}" if t.__class__ is MapT and t.key.__class__ is TypeVar else str(t))
                if s not in names:
                    names.append(s)
            exp_text = _q(names).replace(" and ", " or ")
            help_ = None
            if at is INT and FLOAT in allowed and INT not in allowed:
                help_ = (f"write a float literal: `{a.value}.0`" if a.__class__ is ast.IntLit
                         else "convert it with `float(...)`")
            self.sink.error("E0301", f"mismatched types: expected {exp_text}, found `{at}`", a.span,
                            label=f"`{b.name}` takes {exp_text} here", help=help_)
            return
        # every argument fits some overload, but not together (min(1, 2.0), min(1.00 USD, 1.00 EUR))
        if all(t.__class__ is MoneyT for t in ats):
            self.sink.error("E0308", f"currency mismatch: `{ats[0].currency}` and `{ats[1].currency}`",
                            e.span, label=f"`{b.name}` needs one currency",
                            help="convert between currencies explicitly, with a declared rate")
            return
        self.sink.error("E0301", f"mismatched types: `{b.name}` needs arguments of one type, found "
                                 f"{_q(str(t) for t in ats)}", e.span,
                        label="arguments of different types",
                        help="convert with `float(...)` or `int(...)`" if INT in ats and FLOAT in ats else None)


def _in_bound(t: Type, bound) -> bool:
    if not bound:
        return t is not UNIT
    for b in bound:
        if t is b or (b is MONEY and t.__class__ is MoneyT):
            return True
    return False


def _subst(t: Type, sub: dict) -> Type:
    if t.__class__ is TypeVar:
        return sub.get(t, ERROR)
    if t.__class__ is ArrayT and t.elem.__class__ is TypeVar:
        return ArrayT(sub.get(t.elem, ERROR))
    if t.__class__ is MapT and t.key.__class__ is TypeVar:
        return MapT(sub.get(t.key, ERROR), sub.get(t.value, ERROR))
    return t
