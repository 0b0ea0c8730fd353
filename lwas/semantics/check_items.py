"""Declarations: the passes over each module's items that `_Checker.run` drives.

`_declare` makes item refs and record/enum shells (so types may refer to each other in any
order), `_members` fills record fields and fn/rule signatures, `_bodies` checks every body,
record field default and route parameter default, and `_warnings` (W0101-W0103) reports what
was never used once every body has been checked. This module sets up and closes each body;
its statements and expressions are the other mixins' (check_stmt.py, check_expr.py, ...).
"""
from __future__ import annotations

from lwas.semantics.check_info import _KIND, _KIND_WORD, FieldRef, ItemRef, Local, ModuleRef, VariantRef
from lwas.semantics.resolve import ModuleInfo
from lwas.semantics.types import (ERROR, FLOAT, TEXT, TRUTH, UNIT, EnumT, MoneyT, MoneyValue, RecordT,
                                  Signature, Type)
from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Label
from lwas.syntax.source import Span


class _Items:
    """Mixin of `_Checker` (lwas.semantics.typecheck): item declarations, bodies, warnings."""

    def _declare(self, m: ModuleInfo) -> None:
        """Item refs and type shells (records and enums may refer to each other in any order)."""
        o = self.out
        variants: dict[str, list] = {}
        self.variants_of[m] = variants
        self.module_refs[m] = ModuleRef(m)
        for it in m.tree.items:
            kind = _KIND.get(it.__class__)
            if kind is None:
                continue
            self.item_refs[it] = ItemRef(kind, it, m)
            if kind == "record":
                o.records[it] = RecordT(it.name, m.name, it)
            elif kind == "enum":
                names: list[str] = []
                index: dict[str, int] = {}
                for v in it.variants:
                    if v.name in index:
                        self._dup(v.name, v.span, it.variants[index[v.name]].span, "variant")
                        continue
                    index[v.name] = len(names)
                    names.append(v.name)
                et = EnumT(it.name, m.name, it, tuple(names), index)
                o.enums[it] = et
                vrefs = self.variant_refs[et] = [VariantRef(et, i) for i in range(len(names))]
                if m.items.get(it.name) is it:
                    for i, n in enumerate(names):
                        variants.setdefault(n, []).append(vrefs[i])

    def _dup(self, name: str, span: Span, first: Span, what: str) -> None:
        self.sink.error("E0102", f"the {what} `{name}` is defined more than once", span,
                        label=f"`{name}` redefined here",
                        labels=(Label(first, f"first definition of `{name}` here"),),
                        help="rename or remove one of the two")

    def _members(self, m: ModuleInfo) -> None:
        """Record fields and fn/rule signatures."""
        o = self.out
        for it in m.tree.items:
            c = it.__class__
            if c is ast.RecordDecl:
                self.cur_item = it
                rt = o.records[it]
                seen: dict[str, Span] = {}
                for f in it.fields:
                    t = self.resolve_type(f.type)
                    if f.name in seen:
                        self._dup(f.name, f.span, seen[f.name], "field")
                        continue
                    seen[f.name] = f.span
                    rt.fields[f.name] = t
                self.field_refs[rt] = {n: FieldRef(rt, i) for i, n in enumerate(rt.fields)}
                for f in it.fields:
                    if f.currency_field is not None:
                        self._currency_field(rt, f)
                    if f.type.__class__ is ast.NamedType and f.type.name.parts == ("json",):
                        rt.json_fields.append(f.name)
            elif c is ast.FnDecl or c is ast.RuleDecl:
                self.cur_item = it
                seen = {}
                params = []
                for p in it.params:
                    t = self.resolve_type(p.type)
                    if p.name in seen:
                        self._dup(p.name, p.span, seen[p.name], "parameter")
                    seen[p.name] = p.span
                    params.append((p.name, t))
                if c is ast.RuleDecl:
                    ret = TRUTH
                    if it.ret is not None:
                        rt_ = self.resolve_type(it.ret)
                        if rt_ is not TRUTH and rt_ is not ERROR:
                            self.sink.error("E0301", f"mismatched types: a rule returns `truth`, not `{rt_}`",
                                            it.ret.span, label="expected `truth`",
                                            help="write `-> truth` or leave the result type out; "
                                                 "use a `fn` to compute other values")
                else:
                    ret = self.resolve_type(it.ret) if it.ret is not None else UNIT
                o.signatures[it] = Signature(tuple(params), ret)
        self.cur_item = None

    def _defaults(self, decl: ast.RecordDecl) -> None:
        """`field: T = value`: the value must be a constant of the field's type (a literal, a
        constant, an enum variant, `[]` or `{}`); its value form goes to RecordT.defaults."""
        rt = self.out.records[decl]
        for f in decl.fields:
            if f.default is None or f.name not in rt.fields:
                continue
            ft = rt.fields[f.name]
            value = self._constant_default(decl, f.name, f.default, ft, "field", f.type.span,
                                           "a field's default is a literal, a constant, an enum variant, "
                                           "`[]` or `{}`")
            if value is not None:
                rt.defaults[f.name] = value
        self.cur_item = None

    def _constant_default(self, item, name: str, e, t: Type, owner: str, type_span: Span, what: str):
        """Checks the default `e` of field or parameter `name` (owner) against its type `t`: the
        value form of the constant, or None after an error (E0323 when it is not a constant)."""
        self._reset_body(item, "const", None, None)
        n_errors = len(self.sink.items)
        self.check(e, t, f"expected `{t}` because of the {owner}'s type", type_span)
        if any(d.is_error for d in self.sink.items[n_errors:]) or t is ERROR:
            return None
        value = self._default_value(e, t)
        if value is None:
            self.sink.error("E0323", f"the default of `{name}` is not a constant", e.span,
                            label="computed at run time", help=what)
        return value

    def _default_value(self, e, t: Type):
        """The value form (lwas.abi) of a default, or None if it is not a constant."""
        c = e.__class__
        if c is ast.ArrayLit or c is ast.MapLit:
            return None if (e.elems if c is ast.ArrayLit else e.entries) else ([] if c is ast.ArrayLit else {})
        ref = self.refs.get(e)
        if ref.__class__ is VariantRef:
            return ref.name
        v = self._fold(e)
        if v is None:
            return None
        if isinstance(v, MoneyValue):
            return [v.minor, v.currency]
        if t is TRUTH or t is FLOAT:
            return float(v)
        return v

    def _currency_field(self, rt: RecordT, f) -> None:
        """`amount: money in currency`: a money field whose JSON form is a bare number, with its
        currency in the named text field of the same record."""
        t = rt.fields.get(f.name)
        other = rt.fields.get(f.currency_field)
        if t is not None and t.__class__ is not MoneyT and t is not ERROR:
            self.sink.error("E0321", f"`{f.name}: {t} in {f.currency_field}`: only money has a currency",
                            f.span, label="`in` names where a money field's currency is",
                            help=f"declare `{f.name}: money in {f.currency_field}`, or drop `in ...`")
        elif other is not TEXT:
            what = "is not a field of the record" if other is None else f"is `{other}`, not `text`"
            self.sink.error("E0321", f"currency field `{f.currency_field}` {what}", f.span,
                            label=f"`{f.name}` takes its currency from `{f.currency_field}`",
                            help=f"add `{f.currency_field}: text` to `{rt.name}` (ISO 4217 codes, e.g. \"USD\")")
        else:
            rt.currency_fields[f.name] = f.currency_field

    def _recursive_records(self) -> None:
        """E0319 for a record that contains itself by value (through records, not arrays)."""
        state: dict = {}  # RecordT -> False while on the path, True when done
        path: list = []

        def visit(rt: RecordT) -> None:
            s = state.get(rt)
            if s is True:
                return
            if s is False:
                cycle = path[path.index(rt):] + [rt]
                chain = " -> ".join(r.name for r in cycle)
                self.sink.error("E0319", f"recursive record `{rt.name}` has infinite size",
                                rt.decl.name_span, label=f"`{rt.name}` contains itself",
                                notes=(f"the cycle: {chain}",),
                                help="hold the inner value in an array, e.g. `children: [Node]`")
                return
            state[rt] = False
            path.append(rt)
            for ft in rt.fields.values():
                if ft.__class__ is RecordT:
                    visit(ft)
            path.pop()
            state[rt] = True

        for rt in self.out.records.values():
            visit(rt)

    def _bodies(self, m: ModuleInfo) -> None:
        for it in m.tree.items:
            c = it.__class__
            if c is ast.RecordDecl:
                self._defaults(it)
            elif c is ast.RuleDecl or (c is ast.FnDecl and it.extern is None):
                self._check_fn(it)  # an extern fn has no body: the runtime provides it
            elif c is ast.TestDecl:
                self._check_test(it)
            elif c is ast.AxiomDecl:
                for q in it.requires:
                    self._mark_qual(q, False)
                for q in it.contradicts:
                    self._mark_qual(q, False)

    # ------------------------------------------------------------ bodies

    def _reset_body(self, item, kind: str, ret: Type | None, ret_span: Span | None) -> None:
        self.env = {}
        self.scopes = []
        self.scope_spans = []
        self.loops = []
        self.kind = kind
        self.ret = ret
        self.ret_span = ret_span
        self.cur_item = item

    def _param_defaults(self, d) -> None:
        """`limit: int = 50`: only a `get` route's query parameters have defaults (the service
        stage keeps them on its route functions, whose names hold `$`); the value form of each
        goes to Checked.param_defaults."""
        sig = self.out.signatures[d]
        for p, (_, t) in zip(d.params, sig.params):
            if p.default is None:
                continue
            if "$" not in d.name:
                self.sink.error("E0323", f"parameter `{p.name}` has a default", p.default.span,
                                label="only a `get` route's query parameters have defaults",
                                help="pass the value at every call, or give the function another name for the common case")
                continue
            value = self._constant_default(d, p.name, p.default, t, "parameter", p.type.span,
                                           "a default is a literal, a constant or an enum variant")
            if value is not None:
                self.out.param_defaults[p] = value

    def _check_fn(self, d) -> None:
        if any(p.default is not None for p in d.params):
            self._param_defaults(d)
        sig = self.out.signatures[d]
        is_rule = d.__class__ is ast.RuleDecl
        self._reset_body(d, "rule" if is_rule else "fn", sig.ret,
                         d.ret.span if d.ret is not None else d.name_span)
        body = d.body
        scope = {}
        self.scopes.append(scope)
        self.scope_spans.append(body.span)
        bindings = self.out.bindings
        for p, (_, t) in zip(d.params, sig.params):
            loc = Local(p.name, t, "param", p, p.span, body.span)
            bindings[p] = loc
            if p.name not in scope:
                scope[p.name] = None
                self.env[p.name] = loc
        if body.__class__ is ast.Block:
            diverges = self.block(body)
            if not diverges and sig.ret is not UNIT and sig.ret is not ERROR:
                what = "rule" if is_rule else "function"
                labels = (Label(d.ret.span, f"`{d.name}` returns `{sig.ret}`"),) if d.ret is not None else ()
                help_ = "add a `return` at the end, or an `else` branch that returns"
                if body.stmts and body.stmts[-1].__class__ is ast.ExprStmt:
                    help_ = "a block has no implicit result: write `return` before the last expression"
                self.sink.error("E0306", f"missing return in {what} `{d.name}`", _end_span(body.span),
                                label=f"this path reaches the end of `{d.name}` without returning `{sig.ret}`",
                                labels=labels, help=help_)
        elif sig.ret is UNIT:
            if body.__class__ is ast.Match:  # `fn f(e: E) = match e { ... }`: arms may be blocks
                self.match_stmt(body)
            else:
                self.expr(body)
        else:
            why = f"expected `{sig.ret}` because of the return type"
            if is_rule and d.ret is None:
                why = "expected `truth`: a rule's value is a truth"
            self.check(body, sig.ret, why)
        if is_rule:
            for q in d.requires:
                self._mark_qual(q, True)
        self.cur_item = None

    def _check_test(self, d) -> None:
        self._reset_body(d, "test", None, None)
        self.block(d.body)
        self.cur_item = None

    def _mark_qual(self, q: ast.QualName, record: bool) -> None:
        """A name in `requires`/`contradicts`: mark it used (the truth phase judges it)."""
        parts = q.parts
        if len(parts) == 1:
            item = self.items.get(parts[0])
            if item is not None and item.__class__ in _KIND:
                self.mod.used.add(parts[0])
                if record and item.__class__ is ast.AxiomDecl:
                    self.refs[q] = self.item_refs[item]
        elif len(parts) == 2:
            m = self.imports.get(parts[0])
            if m is not None:
                self.mod.used.add(parts[0])
                item = m.exported(parts[1])
                if item is not None:
                    m.used.add(parts[1])
                    if record and item.__class__ is ast.AxiomDecl:
                        self.refs[q] = self.item_refs[item]

    # ------------------------------------------------------------ warnings

    def _warnings(self) -> None:
        sink = self.sink
        for m in self.program.modules:
            used = m.used
            if not m.is_root:
                for name, item in m.items.items():
                    c = item.__class__
                    if c in _KIND and c is not ast.AxiomDecl and not item.public and name not in used:
                        word = _KIND_WORD[_KIND[c]]
                        sink.warning("W0101", f"{word} `{name}` is never used", item.name_span,
                                     label=f"private {word}, used nowhere in `{m.name}`",
                                     help="remove it, or mark it `pub` to export it")
            imports = m.import_decls or {}
            if not imports:
                for it in m.tree.items:
                    if it.__class__ is ast.Import and it.binding not in imports:
                        imports[it.binding] = it
            for binding, imp in imports.items():
                if binding not in used and binding not in m.missing_imports:
                    sink.warning("W0102", f"unused import: `{imp.path.text}`", imp.span,
                                 label="nothing from this module is used", help="remove the import")
        for loc in self.out.locals:
            if ((loc.kind == "let" or loc.kind == "var") and not loc.used and loc.type is not ERROR
                    and not loc.name.startswith("_")):
                sink.warning("W0103", f"unused variable: `{loc.name}`", loc.span,
                             label="never read",
                             help=f"if this is intentional, prefix it with an underscore: `_{loc.name}`")


def _end_span(span: Span) -> Span:
    """The last character of a span (a body's closing brace)."""
    end = max(span.end - 1, span.start)
    col = max(span.end_col - 1, 1)
    return Span(span.file, span.end_line, col, span.end_line, col + 1, end, end + 1)
