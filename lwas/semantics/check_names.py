"""Names in value position and `.`: what `x`, `module.item`, `Enum.Variant` and `value.field` denote.

Lookup order (innermost first): locals and parameters, the module's items, import bindings, a
variant of the expected enum, the module's own enum variants when exactly one enum declares
the name (else E0101 "ambiguous"), built-ins. Finding an item or import marks it used (the
W0101/W0102 warnings). Every name gets its Ref in `Checked.refs`; one that denotes no value
(a fn, a record type, a module) is E0301 where a value is needed.
"""
from __future__ import annotations

from lwas.semantics.builtins import BUILTINS
from lwas.semantics.check_info import _KIND, _KIND_WORD, BuiltinRef, ItemRef, Local, ModuleRef, VariantRef
from lwas.semantics.check_util import _close, _q, target_text
from lwas.semantics.service import HOST_CALLS
from lwas.semantics.types import ERROR, PRIMITIVE_NAMES, TRUTH, EnumT, MoneyT, RecordT, Type
from lwas.semantics.fixes import missing_import
from lwas.syntax import tree as ast

_BUILTIN_REFS = {n: BuiltinRef(b) for n, b in BUILTINS.items()}


def _is_ns(ref) -> bool:
    """Whether a reference left of `.` is a namespace (a module, an enum or a record type)."""
    c = ref.__class__
    return c is ModuleRef or (c is ItemRef and (ref.kind == "enum" or ref.kind == "record"))


class _Names:
    """Mixin of `_Checker` (lwas.semantics.typecheck): names, members and fields."""

    def lookup(self, name: str, exp_enum):
        """What a value-position name means here, or None. Marks items and imports used."""
        loc = self.env.get(name)
        if loc is not None:
            return loc
        item = self.items.get(name)
        if item is not None:
            c = item.__class__
            if c is ast.Import:
                m = self.imports.get(name)
                if m is not None:
                    self.mod.used.add(name)
                    return self.module_refs[m]
            elif c in _KIND:
                if item is not self.cur_item:
                    self.mod.used.add(name)
                return self.item_refs[item]
        m = self.imports.get(name)
        if m is not None:
            self.mod.used.add(name)
            return self.module_refs[m]
        if exp_enum is not None:
            i = exp_enum.index.get(name)
            if i is not None:
                return self.variant_refs[exp_enum][i]
        vs = self.mvariants.get(name)
        if vs is not None and len(vs) == 1:
            v = vs[0]
            decl = v.enum.decl
            if decl is not self.cur_item:
                self.mod.used.add(decl.name)
            return v
        return _BUILTIN_REFS.get(name)

    def undefined(self, e: ast.Name) -> None:
        name = e.name
        if name in self.mod.missing_imports:
            return  # its module failed to load (E0103/E0104 already)
        vs = self.mvariants.get(name)
        if vs is not None and len(vs) > 1:
            enums = [v.enum.name for v in vs]
            self.sink.error("E0101", f"`{name}` is ambiguous", e.span,
                            label=f"a variant of {_q(enums)}",
                            help=f"qualify it: `{enums[0]}.{name}`")
            return
        cands = list(self.env) + [k for k, v in self.items.items() if v.__class__ in _KIND]
        cands += list(self.imports) + list(BUILTINS) + list(self.mvariants)
        sugg = _close(name, cands)
        notes = ()
        if name in PRIMITIVE_NAMES or name == "money":
            notes = (f"`{name}` is a type; it cannot be used as a value",)
        if name in HOST_CALLS:
            sugg = None
            notes = (f"`{name}()` reads the host: it is available in a service's route handlers and "
                     "guards only (not in functions, rules or `on` blocks, which a ledger replay must "
                     "be able to run again with the same result); pass its value as an argument",)
        self.sink.error("E0101", f"cannot find `{name}` in this scope", e.span,
                        label="not found in this scope", notes=notes,
                        suggestions=missing_import(self.program, self.mod, name),
                        help=f"a name with a similar spelling exists: `{sugg}`" if sugg else None)

    def e_name(self, e: ast.Name, exp) -> Type:
        return self._name_or_ns(e, exp if exp.__class__ is EnumT else None, False)

    def _name_or_ns(self, e: ast.Name, exp_enum, ns: bool):
        """The Type of the value a Name denotes, or with `ns` a namespace it denotes (a module,
        enum or record type: a reference). ERROR after a report."""
        loc = self.env.get(e.name)
        if loc is not None:
            loc.used = True
            self.refs[e] = loc
            return loc.type
        ref = self.lookup(e.name, exp_enum)
        if ref is None:
            self.undefined(e)
            return ERROR
        self.refs[e] = ref
        if ns and _is_ns(ref):
            return ref
        return self.ref_value(e, ref)

    def ref_value(self, node, ref) -> Type:
        """The type of a reference used as a value (reporting what is not a value)."""
        c = ref.__class__
        if c is Local:
            ref.used = True
            return ref.type
        if c is VariantRef:
            return ref.enum
        if c is ItemRef:
            k = ref.kind
            if k == "const":
                return self._const_type(ref)
            if k == "axiom":
                return TRUTH
        what = self._describe_ref(ref)
        help_ = None
        if c is ItemRef and ref.kind in ("fn", "rule") or c is BuiltinRef:
            help_ = f"call it: `{target_text(node)}(...)`"
        elif c is ItemRef and ref.kind == "record":
            help_ = f"build one: `{ref.name}(field: value, ...)`"
        elif c is ItemRef and ref.kind == "enum":
            et = self.out.enums[ref.decl]
            if et.variants:
                help_ = f"name a variant: `{target_text(node)}.{et.variants[0]}`"
        self.sink.error("E0301", f"expected a value, found {what}", node.span,
                        label="not a value", help=help_)
        return ERROR

    def _describe_ref(self, ref) -> str:
        c = ref.__class__
        if c is ItemRef:
            return f"{_KIND_WORD[ref.kind]} `{ref.name}`"
        if c is ModuleRef:
            return f"module `{ref.module.name}`"
        if c is BuiltinRef:
            return f"built-in function `{ref.builtin.name}`"
        if c is Local:
            return {"param": "parameter", "for": "loop variable"}.get(ref.kind, "variable") + f" `{ref.name}`"
        if c is VariantRef:
            return f"variant `{ref.enum.name}.{ref.name}`"
        return "this"

    def member(self, e: ast.Field, base):
        """`module.name` or `Enum.Variant`: the reference, or None after reporting."""
        if base.__class__ is ModuleRef:
            m = base.module
            item = m.exported(e.name)
            if item is None or item.__class__ not in _KIND:
                sugg = _close(e.name, [k for k in m.items if m.exported(k) is not None])
                self.sink.error("E0101", f"cannot find `{e.name}` in module `{m.name}`", e.name_span,
                                label=f"not found in `{m.name}`", notes=self._private_note(m, e.name),
                                help=f"a name with a similar spelling exists: `{sugg}`" if sugg else None)
                return None
            m.used.add(e.name)
            return self.item_refs[item]
        if base.kind == "enum":
            et = self.out.enums[base.decl]
            i = et.index.get(e.name)
            if i is None:
                sugg = _close(e.name, et.variants)
                self.sink.error("E0101", f"no variant `{e.name}` in enum `{et.name}`", e.name_span,
                                label=f"not a variant of `{et.name}`",
                                notes=(f"the variants are {_q(et.variants)}",) if et.variants else (),
                                help=f"did you mean `{et.name}.{sugg}`?" if sugg else None)
                return None
            return self.variant_refs[et][i]
        rt = self.out.records[base.decl]
        self.sink.error("E0304", f"`{rt.name}` is a record type; its fields belong to values", e.name_span,
                        label="not a value", help=f"read the field from a value: `x.{e.name}` where `x: {rt.name}`")
        return None

    def _path(self, e):
        """A Name/Field left of `.`: a namespace reference (module, enum, record type) or the
        Type of the value it denotes (recorded like any expression). ERROR after a report."""
        c = e.__class__
        if c is ast.Name or c is ast.Field:
            r = self._name_or_ns(e, None, True) if c is ast.Name else self._field_or_ns(e, True)
            if isinstance(r, Type):
                self.types[e] = r
            return r
        return self.expr(e)

    def e_field(self, e: ast.Field, exp) -> Type:
        return self._field_or_ns(e, False)

    def _field_or_ns(self, e: ast.Field, ns: bool):
        """`x.f`: a value's field, or a member of a namespace (`module.item`, `Enum.Variant`):
        its Type, or with `ns` the namespace it denotes. ERROR after a report."""
        base = self._path(e.obj)
        if isinstance(base, Type):
            return self.field_of(e, base)
        r = self.member(e, base)
        if r is None:
            return ERROR
        self.refs[e] = r
        if ns and _is_ns(r):
            return r
        return self.ref_value(e, r)

    def field_of(self, e: ast.Field, t: Type) -> Type:
        if t.__class__ is RecordT:
            fr = self.field_refs[t].get(e.name)
            if fr is not None:
                self.refs[e] = fr
                return t.fields[e.name]
            sugg = _close(e.name, t.fields)
            self.sink.error("E0304", f"no field `{e.name}` on type `{t.name}`", e.name_span,
                            label="unknown field",
                            notes=(f"`{t.name}` has the fields {_q(t.fields)}",) if t.fields else
                            (f"`{t.name}` has no fields",),
                            help=f"did you mean `{sugg}`?" if sugg else None)
            return ERROR
        if t is ERROR:
            return ERROR
        help_ = None
        if t.__class__ is MoneyT and e.name in ("currency", "minor"):
            help_ = f"call the built-in: `{e.name}(m)`"
        self.sink.error("E0304", f"no field `{e.name}` on type `{t}`", e.name_span,
                        label=f"`{t}` has no fields", help=help_)
        return ERROR
