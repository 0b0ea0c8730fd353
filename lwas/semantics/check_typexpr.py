"""Type expressions: what an annotation (`int`, `[T]`, `{K: V}`, `Rec`, `module.Enum`) denotes.

Types live in their own namespace (built-in type names, then the module's records and enums,
then `module.Type`), so resolving one never looks at locals. Reports E0105 (unknown type) and
E0322 (a map key type that cannot key a map); records each TypeExpr in `Checked.type_exprs`.
"""
from __future__ import annotations

from lwas.semantics.check_info import _KIND, _KIND_WORD
from lwas.semantics.check_util import _close
from lwas.semantics.resolve import ModuleInfo
from lwas.semantics.types import ERROR, MONEY, PRIMITIVE_NAMES, ArrayT, MapT, Type, map_key_ok
from lwas.semantics.fixes import missing_import
from lwas.syntax import tree as ast


class _TypeExprs:
    """Mixin of `_Checker` (lwas.semantics.typecheck): resolving type expressions."""

    def resolve_type(self, te) -> Type:
        t = self._resolve_type(te)
        self.out.type_exprs[te] = t
        return t

    def _resolve_type(self, te) -> Type:
        if te.__class__ is ast.ArrayType:
            el = self.resolve_type(te.elem)
            return ERROR if el is ERROR else ArrayT(el)
        if te.__class__ is ast.MapType:
            k = self.resolve_type(te.key)
            v = self.resolve_type(te.value)
            if k is not ERROR and not map_key_ok(k):
                self.sink.error("E0322", f"`{k}` cannot key a map", te.key.span,
                                label="map keys are `int`, `text`, `time`, `bool` or an enum",
                                help="key the map by an id (`text` or `int`) and keep the rest in the value")
                return ERROR
            return ERROR if k is ERROR or v is ERROR else MapT(k, v)
        q = te.name
        parts = q.parts
        if len(parts) == 1:
            n = parts[0]
            p = PRIMITIVE_NAMES.get(n)
            if p is not None:
                return p
            if n == "money":
                return MONEY
            item = self.items.get(n)
            if item is not None and (item.__class__ is ast.RecordDecl or item.__class__ is ast.EnumDecl):
                if item is not self.cur_item:
                    self.mod.used.add(n)
                self.refs[te] = self.item_refs[item]
                return self._decl_type(item)
            notes = ()
            if item is not None and item.__class__ in _KIND:
                notes = (f"`{n}` is a {_KIND_WORD[_KIND[item.__class__]]}, not a type",)
            cands = [k for k, v in self.items.items() if v.__class__ in (ast.RecordDecl, ast.EnumDecl)]
            cands += list(PRIMITIVE_NAMES) + ["money"]
            sugg = _close(n, cands)
            self.sink.error("E0105", f"cannot find type `{n}` in this scope", te.span,
                            label="not a type", notes=notes,
                            help=f"a type with a similar name exists: `{sugg}`" if sugg else
                            "declare it as a `record` or `enum`, or import the module that declares it")
            return ERROR
        if len(parts) == 2:
            state = self.items.get(q.text)  # `economy.State`: the state record of a service here
            if state is not None and state.__class__ is ast.RecordDecl:
                self.refs[te] = self.item_refs[state]
                return self._decl_type(state)
            m = self.imports.get(parts[0])
            if m is None:
                if parts[0] in self.mod.missing_imports:
                    return ERROR
                self.sink.error("E0105", f"cannot find type `{q.text}`: no module `{parts[0]}` is imported",
                                te.span, label="unknown module",
                                help=f"import it first: `import {parts[0]}`",
                                suggestions=missing_import(self.program, self.mod, parts[0]))
                return ERROR
            self.mod.used.add(parts[0])
            item = m.exported(parts[1])
            if item is not None and (item.__class__ is ast.RecordDecl or item.__class__ is ast.EnumDecl):
                m.used.add(parts[1])
                self.refs[te] = self.item_refs[item]
                return self._decl_type(item)
            notes = self._private_note(m, parts[1])
            self.sink.error("E0105", f"cannot find type `{parts[1]}` in module `{m.name}`", te.span,
                            label="not a type of that module", notes=notes)
            return ERROR
        self.sink.error("E0105", f"cannot find type `{q.text}`", te.span, label="unknown type",
                        help="name a type as `Type` or `module.Type`")
        return ERROR

    def _decl_type(self, decl) -> Type:
        if decl.__class__ is ast.RecordDecl:
            return self.out.records[decl]
        return self.out.enums[decl]

    def _private_note(self, m: ModuleInfo, name: str) -> tuple:
        item = m.items.get(name)
        if item is not None and item.__class__ in _KIND:
            return (f"`{name}` is declared in `{m.name}` but is not `pub`",)
        return ()
