"""What the language server knows about one document: the compiler's own Compilation plus an
index of every name occurrence (built from the checker's side tables, never a second parser).

Positions: compiler spans are 1-based lines and code-point columns; LSP wants 0-based lines
and UTF-16 code units. `Lines` converts both ways.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lwas.syntax import tree as ast
from lwas.syntax.source import SourceFile, Span


# ---------------------------------------------------------------- positions

def utf16_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le")) // 2


def cp_to_utf16(line_text: str, col0: int) -> int:
    """code-point column (0-based) -> UTF-16 column (0-based)"""
    return utf16_len(line_text[:col0])


def utf16_to_cp(line_text: str, u16: int) -> int:
    if line_text.isascii():
        return min(u16, len(line_text))
    n = 0
    for i, ch in enumerate(line_text):
        if n >= u16:
            return i
        n += 2 if ord(ch) > 0xFFFF else 1
    return len(line_text)


def lsp_pos(src: SourceFile | None, line: int, col: int) -> tuple[int, int]:
    """1-based (line, code-point col) -> 0-based (line, UTF-16 col)."""
    if line <= 0:
        return 0, 0
    if src is None:
        return line - 1, max(col - 1, 0)
    return line - 1, cp_to_utf16(src.line_text(line), max(col - 1, 0))


def span_range(src: SourceFile | None, span: Span) -> tuple[tuple[int, int], tuple[int, int]]:
    return lsp_pos(src, span.line, span.col), lsp_pos(src, span.end_line, span.end_col)


def offset_of(src: SourceFile, line0: int, u16: int) -> tuple[int, int]:
    """0-based LSP position -> (1-based line, 1-based code-point col)."""
    text = src.line_text(line0 + 1)
    return line0 + 1, utf16_to_cp(text, u16) + 1


def name_span(span: Span, name: str) -> Span:
    """The span of `name` at the start of `span` (params, fields, variants, record args)."""
    return Span(span.file, span.line, span.col, span.line, span.col + len(name), span.start,
                span.start + len(name))


def contains(span: Span, line: int, col: int) -> bool:
    if (line, col) < (span.line, span.col):
        return False
    return (line, col) <= (span.end_line, span.end_col)


# ---------------------------------------------------------------- occurrences

@dataclass(eq=False, slots=True)
class Occ:
    span: Span
    target: Any  # Local | ItemRef | FieldRef | VariantRef | ModuleRef | BuiltinRef | ("axiom", i)
    key: Any  # identity of what is denoted (same for every occurrence of one thing)
    decl: bool = False  # the declaring occurrence
    node: Any = None


def target_key(t) -> Any:
    cls = type(t).__name__
    if cls == "Local":
        return ("local", id(t.node), t.span.line, t.span.col)
    if cls == "ItemRef":
        return ("item", id(t.decl))
    if cls == "FieldRef":
        return ("field", id(t.record.decl), t.index)
    if cls == "VariantRef":
        return ("variant", id(t.enum.decl), t.index)
    if cls == "ModuleRef":
        return ("module", t.module.path)
    if cls == "BuiltinRef":
        return ("builtin", t.builtin.name)
    return ("other", id(t))


@dataclass
class Analysis:
    uri: str
    path: str
    version: int | None
    c: Any  # lwas.driver.Compilation
    occs: dict[str, list[Occ]] = field(default_factory=dict)  # file path -> occurrences
    item_refs: dict = field(default_factory=dict)  # id(decl) -> ItemRef
    axiom_index: dict = field(default_factory=dict)  # id(AxiomDecl) -> index in program.axioms
    rule_index: dict = field(default_factory=dict)  # id(RuleDecl) -> index in program.rules
    module_of: dict = field(default_factory=dict)  # path -> ModuleInfo

    @property
    def src(self) -> SourceFile:
        return self.c.root

    @property
    def program(self):
        return self.c.program

    @property
    def checked(self):
        return self.c.checked

    def source(self, path: str) -> SourceFile | None:
        return self.c.sources.get(path)

    def occ_at(self, path: str, line: int, col: int) -> Occ | None:
        best = None
        for o in self.occs.get(path, ()):
            s = o.span
            if s.line <= line <= s.end_line and contains(s, line, col):
                if best is None or (s.end - s.start) < (best.span.end - best.span.start):
                    best = o
        return best

    def occurrences_of(self, key) -> list[Occ]:
        return [o for occs in self.occs.values() for o in occs if o.key == key]


def build_index(a: Analysis) -> None:
    c = a.c
    prog, chk = c.program, c.checked
    if prog is None:
        return
    a.module_of = {m.path: m for m in prog.modules}
    a.axiom_index = {id(ax): i for i, ax in enumerate(prog.axioms)}
    a.rule_index = {id(r): i for i, (_, r) in enumerate(prog.rules)}
    refs = chk.refs if chk is not None else {}
    bindings = chk.bindings if chk is not None else {}
    item_refs = chk.item_refs if chk is not None else {}
    a.item_refs = {id(d): r for d, r in item_refs.items()}
    from lwas.semantics.typecheck import FieldRef, ModuleRef, VariantRef

    members = {ast.RecordDecl: (chk.records, "fields", FieldRef),
               ast.EnumDecl: (chk.enums, "variants", VariantRef)} if chk is not None else {}

    axioms = prog.axioms
    for m in prog.modules:
        out: list[Occ] = []
        add = out.append
        for n in ast.walk(m.tree):
            cls = n.__class__
            if cls is ast.Name:
                t = refs.get(n)
                if t is not None:
                    add(Occ(n.span, t, target_key(t), node=n))
            elif cls is ast.Field:
                t = refs.get(n)
                if t is not None:
                    add(Occ(n.name_span, t, target_key(t), node=n))
            elif cls is ast.NamedType:
                t = refs.get(n)
                if t is not None:
                    q = n.name
                    add(Occ(_last_part(q), t, target_key(t), node=n))
            elif cls is ast.VariantPat:
                t = refs.get(n)
                if t is not None:
                    add(Occ(_last_part(n.name), t, target_key(t), node=n))
            elif cls is ast.Arg:
                if n.name is not None:
                    t = refs.get(n)
                    if t is not None:
                        add(Occ(name_span(n.span, n.name), t, target_key(t), node=n))
            elif cls is ast.RuleDecl:
                for q in n.requires:
                    t = refs.get(q)
                    if t is not None:
                        add(Occ(_last_part(q), t, target_key(t), node=q))
            elif cls is ast.AxiomDecl:
                i = a.axiom_index.get(id(n))
                if i is not None and i < len(prog.requires):
                    for clause, targets in ((n.requires, prog.requires[i]),
                                            (n.contradicts, prog.contradicts[i] if i < len(prog.contradicts) else [])):
                        for q, j in zip(clause, targets):
                            if j >= 0:
                                d = axioms[j]
                                t = a.item_refs.get(id(d))
                                if t is not None:
                                    add(Occ(_last_part(q), t, target_key(t), node=q))
            elif cls in members:  # a record's fields, an enum's variants
                table, part, ref = members[cls]
                owner = table.get(n)
                if owner is not None:
                    for k, f in enumerate(getattr(n, part)):
                        t = ref(owner, k)
                        add(Occ(name_span(f.span, f.name), t, target_key(t), decl=True, node=f))
            elif cls is ast.Import:
                mod = m.imports.get(n.binding)
                if mod is not None:
                    t = ModuleRef(mod)
                    add(Occ(_last_part(n.path), t, target_key(t), decl=True, node=n))
            if cls in _DECLS:
                t = a.item_refs.get(id(n))
                if t is not None:
                    add(Occ(n.name_span, t, target_key(t), decl=True, node=n))
            if cls in _BINDERS:
                loc = bindings.get(n)
                if loc is not None:
                    add(Occ(loc.span, loc, target_key(loc), decl=True, node=n))
                if cls is ast.ForEach and n.value_var is not None:  # `for k, v in m`: v too
                    loc = bindings.get((n, "value"))
                    if loc is not None:
                        add(Occ(loc.span, loc, target_key(loc), decl=True, node=n))
        a.occs[m.path] = out


_DECLS = frozenset({ast.AxiomDecl, ast.ConstDecl, ast.FnDecl, ast.RuleDecl, ast.RecordDecl, ast.EnumDecl})
_BINDERS = frozenset({ast.Let, ast.Param, ast.ForRange, ast.ForEach})


def _last_part(q: ast.QualName) -> Span:
    s = q.span
    last = q.parts[-1]
    if s.line == s.end_line and s.end_col - s.col >= len(last):
        return Span(s.file, s.line, s.end_col - len(last), s.line, s.end_col, s.end - len(last), s.end)
    return s


def definition_span(t) -> tuple[str, Span] | None:
    cls = type(t).__name__
    if cls == "Local":
        return t.span.file, t.span
    if cls == "ItemRef":
        return t.module.path, t.decl.name_span
    if cls == "FieldRef":
        f = t.record.decl.fields[t.index]
        return f.span.file, name_span(f.span, f.name)
    if cls == "VariantRef":
        v = t.enum.decl.variants[t.index]
        return v.span.file, name_span(v.span, v.name)
    if cls == "ModuleRef":
        p = t.module.path
        return p, Span(p, 1, 1, 1, 1)
    return None
