"""`match`: patterns against the subject's type, exhaustiveness, and the two uses of a match.

A subject is an enum (variant patterns, each once; missing variants are E0305 without `_`),
or an int, text or bool (literal patterns; `_` needed unless true and false are both there).
Arms after a `_` are W0104. Used as a value (`e_match`) every arm is an expression and the
arms join to one type; used as a statement (`match_stmt`) arms may be blocks, its value is
`()`, and it diverges when it is exhaustive and every arm diverges.
"""
from __future__ import annotations

from typing import Callable

from lwas.semantics.check_util import _close, _conversion_help, _join, _q
from lwas.semantics.types import BOOL, ERROR, INT, TEXT, UNIT, EnumT, Type
from lwas.semantics.fixes import missing_arms
from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Label
from lwas.syntax.source import Span


class _Matches:
    """Mixin of `_Checker` (lwas.semantics.typecheck): `match` expressions and statements."""

    def _patterns(self, e: ast.Match, st: Type) -> bool:
        """Checks the arms' patterns against the subject type; True when exhaustive."""
        sink = self.sink
        if st.__class__ is EnumT:
            seen: dict[int, Span] = {}
            if self._each_pattern(e, lambda p: self._variant_pattern(p, st, seen)):
                return True
            missing = [v for i, v in enumerate(st.variants) if i not in seen]
            if missing:
                sink.error("E0305", f"non-exhaustive match: {'variant' if len(missing) == 1 else 'variants'} "
                                    f"{_q(missing)} not covered", e.subject.span,
                           label=f"{_q(missing)} not covered", suggestions=missing_arms(self.program, e, missing),
                           notes=(f"`{st.name}` has the variants {_q(st.variants)}",),
                           help="add an arm for each missing variant, or a final `_ => ...` arm")
                return False
            return True
        if st is INT or st is TEXT or st is BOOL:
            seen_v: dict = {}
            wild = self._each_pattern(e, lambda p: self._literal_pattern(p, st, seen_v))
            if wild or (st is BOOL and True in seen_v and False in seen_v):
                return True
            sink.error("E0305", f"non-exhaustive match: not every `{st}` is covered", e.subject.span,
                       label=f"`{st}` has values no arm matches",
                       help="add a final `_ => ...` arm")
            return False
        if st is not ERROR:
            sink.error("E0301", f"cannot `match` on a value of type `{st}`", e.subject.span,
                       label="`match` needs an enum, `int`, `text` or `bool`",
                       help="use `if` / `else if` to test ranges")
        return True

    def _each_pattern(self, e: ast.Match, check: Callable) -> bool:
        """Calls check(p) on each pattern but `_`, in order, and reports the arm after the first
        arm with a `_` (W0104); True when some arm has a `_`."""
        arms = e.arms
        wild = [i for i, arm in enumerate(arms) if any(p.__class__ is ast.WildcardPat for p in arm.patterns)]
        for i, arm in enumerate(arms):
            if wild and i == wild[0] + 1:
                self.sink.warning("W0104", "unreachable match arm", arm.span,
                                  label="an earlier `_` arm already matches everything")
            for p in arm.patterns:
                if p.__class__ is not ast.WildcardPat:
                    check(p)
        return bool(wild)

    def _variant_pattern(self, p, st: EnumT, seen: dict) -> None:
        """A pattern of a match on an enum; `seen`: tag -> where it was first matched."""
        sink = self.sink
        if p.__class__ is not ast.VariantPat:
            sink.error("E0312", f"expected a variant of `{st.name}`, found a literal", p.span,
                       label=f"the subject is a `{st.name}`",
                       notes=(f"the variants are {_q(st.variants)}",))
            return
        parts = p.name.parts
        vn = parts[-1]
        if len(parts) > 1 and not self._names_enum(parts[:-1], st):
            sink.error("E0312", f"`{p.name.text}` is not a variant of `{st.name}`", p.span,
                       label=f"expected a variant of `{st.name}`",
                       help=f"write `{vn}` or `{st.name}.{vn}`" if vn in st.index else None)
            return
        i = st.index.get(vn)
        if i is None:
            sugg = _close(vn, st.variants)
            sink.error("E0312", f"no variant `{vn}` in enum `{st.name}`", p.span,
                       label=f"not a variant of `{st.name}`",
                       notes=(f"the variants are {_q(st.variants)}",),
                       help=f"did you mean `{sugg}`?" if sugg else None)
            return
        if i in seen:
            sink.error("E0312", f"variant `{vn}` is matched twice", p.span,
                       label="already matched", labels=(Label(seen[i], "first matched here"),),
                       help="remove one of them")
            return
        seen[i] = p.span
        self.refs[p] = self.variant_refs[st][i]

    def _literal_pattern(self, p, st: Type, seen: dict) -> None:
        """A pattern of a match on an int, text or bool; `seen`: value -> where first matched."""
        sink = self.sink
        if p.__class__ is ast.VariantPat:
            sink.error("E0312", f"expected a `{st}` literal, found `{p.name.text}`", p.span,
                       label=f"the subject is `{st}`, not an enum")
            return
        v = p.value
        pt = self.expr(v)
        if pt is ERROR:
            return
        if pt is not st:
            sink.error("E0312", f"mismatched pattern: expected a `{st}` literal, found `{pt}`",
                       p.span, label=f"the subject is `{st}`")
            return
        key = v.value
        if key in seen:
            sink.error("E0312", "this value is matched twice", p.span, label="already matched",
                       labels=(Label(seen[key], "first matched here"),))
            return
        seen[key] = p.span

    def _names_enum(self, parts, et: EnumT) -> bool:
        if len(parts) == 1:
            item = self.items.get(parts[0])
            if item is et.decl:
                if item is not self.cur_item:
                    self.mod.used.add(parts[0])
                return True
            return False
        if len(parts) == 2:
            m = self.imports.get(parts[0])
            if m is not None and m.exported(parts[1]) is et.decl:
                self.mod.used.add(parts[0])
                m.used.add(parts[1])
                return True
        return False

    def e_match(self, e: ast.Match, exp) -> Type:
        st = self.expr(e.subject)
        self._patterns(e, st)
        arms = e.arms
        if exp is not None:
            for arm in arms:
                b = arm.body
                if b.__class__ is ast.Block:
                    self._block_arm(arm, exp)
                else:
                    self.check(b, exp, f"expected `{exp}`, the type of the `match`")
            return exp
        j = None
        first = None
        for arm in arms:
            b = arm.body
            if b.__class__ is ast.Block:
                self._block_arm(arm, None)
                continue
            t = self.expr(b)
            if t is ERROR:
                continue
            if j is None:
                j, first = t, b
                continue
            if t is j:
                continue
            nj = _join(j, t)
            if nj is None:
                self.sink.error("E0301", f"mismatched types: `match` arms have incompatible types: "
                                         f"expected `{j}`, found `{t}`", b.span,
                                label=f"expected `{j}`", labels=(Label(first.span, f"this arm is `{j}`"),),
                                help=_conversion_help(b, t, j))
                continue
            j = nj
        if j is None:
            return ERROR
        if j is UNIT:
            return UNIT
        types = self.types
        for arm in arms:
            b = arm.body
            if b.__class__ is not ast.Block:
                t = types.get(b)
                if t is not j and t is not ERROR and t != j:
                    self.coercions[b] = j
        return j

    def _block_arm(self, arm: ast.MatchArm, exp) -> None:
        self.sink.error("E0301", "mismatched types: a `match` used as a value needs an expression in every arm",
                        arm.body.span, label=f"expected {'`' + str(exp) + '`' if exp else 'a value'}, found a block",
                        help="use the `match` as a statement, or give this arm an expression")
        self.block(arm.body)

    def match_stmt(self, e: ast.Match) -> bool:
        st = self.expr(e.subject)
        exhaustive = self._patterns(e, st)
        all_diverge = True
        for arm in e.arms:
            b = arm.body
            if b.__class__ is ast.Block:
                if not self.block(b):
                    all_diverge = False
            else:
                self.expr(b)
                all_diverge = False
        self.types[e] = UNIT
        return all_diverge and exhaustive and bool(e.arms)
