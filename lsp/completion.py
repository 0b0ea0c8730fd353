"""Completion: what may be typed at the cursor, as the grammar and the checker see it.

Contract:
- Keywords: exactly the keyword terminals the LALR parser accepts after the text before the
  cursor, so item keywords at the top level, statement and expression keywords in bodies,
  member keywords in a service, and `else`/`requires`/... where they continue the line above.
  Narrowed by what the checker refuses anyway: `break`/`continue` outside a loop, `append`
  outside mutating routes and timers, `return` in `on` and `test` blocks, `module` after the
  first item.
- Names, by what the parser expects a name to be here. A value: the locals in scope, the
  module's items, its imports, the built-ins, and in a service's route handlers, guards and
  timers the host calls as docs/services.md documents them (`now`, `config`, `cpu_percent`,
  ...). A type: the primitive types, records, enums, imports. A pattern: enums and variants. A
  `requires`/`contradicts` list: axioms. After `import`: module paths (`std` and the files
  beside the document; after `import std.` the standard library's modules). A name being
  declared: nothing.
- After `x.` (in a value, type or pattern): the module's public items, the enum's variants or
  the record's fields.
- Never a name a person cannot type: every label is an identifier. The compiler's own `$`
  names (`append$`, `now$`, `economy$route$0`, `state$`) are how host calls and services are
  compiled, not LwaS.
- Nothing inside a comment or a text literal.

Why the parser: position -> syntactic context comes from the grammar that parses the file
(`lwas.syntax.parse.prefix_state`), so a new statement or item kind is offered exactly where it is
valid, with no second description of the syntax to drift. Only the item around the cursor is
parsed (from its item keyword, as panic mode cuts a file), so the cost is one item's parse, not
the file's. When that text does not parse, the context is a statement in a function body (a
bracket is open) or the top level (none is), again asked of the grammar.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from lark import Token
from lark.exceptions import UnexpectedInput
from lsprotocol import types as T

from lwas.syntax import parse as P
from lwas.syntax import tree as ast

from .analysis import Analysis, contains
from .describe import item_detail

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUALIFIED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_0-9]*)$")
_WORD = re.compile(r"[A-Za-z_0-9]*$")

# The host calls, as docs/services.md documents them: name -> (signature, doc). The service
# stage (lwas.semantics.service.HOST_CALLS) rewrites each to a `$` built-in; tests keep the names equal.
HOST_CALLS: dict[str, tuple[str, str]] = {
    "now": ("now() -> time", "The host clock (UTC)."),
    "config": ("config(name: text) -> text",
               "A configuration value of the service, read from `LWAS_CONFIG_<SERVICE>_NAME`, else "
               "`LWAS_CONFIG_NAME` (a runtime error when unset)."),
    "config_int": ("config_int(name: text, default: int) -> int",
                   "A configuration value as an int: `default` when unset, a runtime error when it is not "
                   "an int."),
    "ledger_root": ("ledger_root(ledger) -> text",
                    "The committed Merkle root (hex) of one of the service's ledgers, named: "
                    "`ledger_root(transactions)`."),
    "ledger_has": ("ledger_has(ledger, key: text) -> bool",
                   "Whether one of the service's ledgers holds an entry under `key` (committed, or "
                   "appended earlier in this request): `ledger_has(transactions, tx.id)`."),
    "idempotency_key": ("idempotency_key() -> text",
                        "The request's `Idempotency-Key` header, or a fresh random key when it has none."),
    "cpu_percent": ("cpu_percent() -> float", "CPU use in percent, sampled every second in the background."),
    "ram_used_gb": ("ram_used_gb() -> float", "Memory in use, in GiB."),
    "ram_total_gb": ("ram_total_gb() -> float", "The machine's memory, in GiB."),
    "uptime_secs": ("uptime_secs() -> int", "Seconds since the machine booted."),
}
_HOST_NOTE = "\n\nReads the host: in a service's route handlers, guards and timers only."

# words that continue the line above when typed at the start of a line (lwas.lark CONTINUATION)
_CONTINUATIONS = frozenset({"ELSE", "REQUIRES", "ENSURES", "CONTRADICTS"})
_VALUE_ITEMS = (ast.FnDecl, ast.RuleDecl, ast.AxiomDecl, ast.ConstDecl, ast.RecordDecl, ast.EnumDecl)
_ITEM_KINDS = {"fn": T.CompletionItemKind.Function, "rule": T.CompletionItemKind.Function,
               "axiom": T.CompletionItemKind.Constant, "const": T.CompletionItemKind.Constant,
               "record": T.CompletionItemKind.Struct, "enum": T.CompletionItemKind.Enum}


# ---------------------------------------------------------------- position -> context

@dataclass
class Context:
    keywords: list[str]
    names: str  # "value", "type", "pattern", "axiom", "module" or "none"
    path: tuple[str, ...] = ()  # the module path typed so far after `import`
    host: bool = False  # in a route handler, a guard or a timer: the host calls are valid


def context_at(text: str, offset: int) -> Context:
    """The syntactic context at `offset` (the start of the word being typed)."""
    start = P.item_start(text, offset)
    prefix = text[start:offset]
    try:
        ip, before_newline = P.prefix_state(prefix)
        first = start == 0
    except UnexpectedInput:
        ip, before_newline = P.prefix_state("fn f() {\n" if P.unclosed_bracket(prefix) else "")
        first = False
    return _context(ip, before_newline, first)


def _context(ip, before_newline, first: bool) -> Context:
    """`first`: no item starts before the text the parser went through."""
    accepted = ip.accepts()
    stack = ip.parser_state.value_stack
    open_tokens = [v for v in stack if isinstance(v, Token)]  # of the constructs not yet complete
    member = next((t for t in reversed(open_tokens) if t.type in ("METHOD", "ON", "EVERY")), None)
    terminals = set(accepted)
    if before_newline is not None:
        terminals |= before_newline.accepts() & _CONTINUATIONS
    terminals -= _refused(open_tokens, member, first and all(_is_newline(v) for v in stack))
    words = P.keywords()
    keywords = sorted({w for t in terminals for w in words.get(t, ())})
    names, path = _name_kind(ip, accepted, stack)
    return Context(keywords, names, path, host=member is not None and member.type != "ON")


def _refused(open_tokens: list[Token], member: Token | None, nothing_before: bool) -> set[str]:
    """Keywords the grammar accepts but the checker refuses where the cursor is: `break` and
    `continue` outside a loop (E0314), `append` outside mutating routes and timers (E0402),
    `return` in `on` and `test` blocks (E0402, E0317), `module` after an item (E0106)."""
    types = {t.type for t in open_tokens}
    out = set()
    if not types & {"FOR", "WHILE"}:
        out |= {"BREAK", "CONTINUE"}
    if member is None or member.type == "ON" or member.value == "get":
        out.add("APPEND")
    if (member is not None and member.type == "ON") or "TEST" in types:
        out.add("RETURN")
    if not nothing_before:
        out.add("MODULE")
    return out


def _is_newline(v) -> bool:
    return isinstance(v, Token) and v.type == "_NL"


def _name_kind(ip, accepted: set[str], stack: list) -> tuple[str, tuple[str, ...]]:
    """What a name typed here would be, from what the parser accepts after one."""
    if "NAME" not in accepted:
        return "none", ()
    probe = ip.copy(deepcopy_values=False)
    probe.feed_token(Token("NAME", "x"))
    after = probe.accepts()
    if "STAR" in after:  # an operator may follow: an expression
        return "value", ()
    if "FAT_ARROW" in after or "BAR" in after:
        return "pattern", ()
    if "DOT" not in after:  # a plain name: one being declared
        return "none", ()
    for i in range(len(stack) - 1, -1, -1):  # a qualified name: what comes before it says which
        v = stack[i]
        if isinstance(v, Token) and v.type not in ("NAME", "DOT", "COMMA"):
            if v.type == "IMPORT":
                return "module", tuple(t.value for t in _tokens(stack[i + 1:]) if t.type == "NAME")
            if v.type == "MODULE":
                return "none", ()
            if v.type in ("REQUIRES", "CONTRADICTS"):
                return "axiom", ()
            return "type", ()
    return "type", ()


def _tokens(values):
    for v in values:
        if isinstance(v, Token):
            yield v
        elif isinstance(v, list):
            yield from _tokens(v)


# ---------------------------------------------------------------- items

def complete(a: Analysis, good: Analysis, line: int, col: int) -> list[T.CompletionItem]:
    """Completion at (1-based line, code-point col) of `a`; `good` is the last analysis whose
    names are known (the line being typed may not parse)."""
    before = a.src.line_text(line)[:col - 1]
    if P.in_comment_or_text(before):
        return []
    word = _WORD.search(before).group(0)
    if word[:1].isdigit():
        return []
    offset = a.src.line_starts()[line - 1] + len(before) - len(word)
    ctx = context_at(a.src.text, offset)
    if ctx.names == "module":
        items = _module_items(a, ctx.path)
    elif ctx.names != "none" and (m := _QUALIFIED.search(before)):
        items = _member_items(a, good, m.group(1), line, col)
    else:
        items = [T.CompletionItem(label=k, kind=T.CompletionItemKind.Keyword) for k in ctx.keywords]
        items += _name_items(good, ctx, line, col, {k for k in ctx.keywords})
    return [i for i in items if _IDENT.match(i.label)]


def _name_items(a: Analysis, ctx: Context, line: int, col: int, seen: set[str]) -> list[T.CompletionItem]:
    prog = a.program
    root = prog.root if prog is not None else None
    out: list[T.CompletionItem] = []

    def add(item: T.CompletionItem) -> None:
        if item.label not in seen:
            seen.add(item.label)
            out.append(item)

    if ctx.names == "value":
        for l in reversed(_locals_at(a, line, col)):
            add(T.CompletionItem(label=l.name, kind=T.CompletionItemKind.Variable, detail=f"{l.kind} {l.name}: {l.type}"))
    if root is not None and ctx.names in ("value", "type", "pattern", "axiom"):
        wanted = {"value": _VALUE_ITEMS, "type": (ast.RecordDecl, ast.EnumDecl), "pattern": (ast.EnumDecl,),
                  "axiom": (ast.AxiomDecl,)}[ctx.names]
        for name, decl in root.items.items():
            if isinstance(decl, wanted):
                add(_item_completion(a, name, decl))
        if ctx.names == "pattern":
            for decl in root.items.values():
                if isinstance(decl, ast.EnumDecl):
                    for v in decl.variants:
                        add(T.CompletionItem(label=v.name, kind=T.CompletionItemKind.EnumMember,
                                             detail=f"{decl.name}.{v.name}", documentation=v.doc))
        for name, mod in root.imports.items():
            add(T.CompletionItem(label=name, kind=T.CompletionItemKind.Module, detail=f"module {mod.name}"))
    if ctx.names == "type":
        from lwas.semantics.types import PRIMITIVE_NAMES

        for name in (*PRIMITIVE_NAMES, "money"):
            add(T.CompletionItem(label=name, kind=T.CompletionItemKind.TypeParameter, detail=f"type {name}"))
    if ctx.names == "value":
        from lwas.semantics.builtins import BUILTINS

        for name, b in BUILTINS.items():
            add(T.CompletionItem(label=name, kind=T.CompletionItemKind.Function, detail=b.signature_text(),
                                 documentation=b.doc))
        if ctx.host:
            for name, (signature, doc) in HOST_CALLS.items():
                add(T.CompletionItem(label=name, kind=T.CompletionItemKind.Function, detail=signature,
                                     documentation=T.MarkupContent(kind=T.MarkupKind.Markdown, value=doc + _HOST_NOTE)))
    return out


def _item_completion(a: Analysis, name: str, decl) -> T.CompletionItem:
    ref = a.item_refs.get(id(decl))
    detail = None
    kind = T.CompletionItemKind.Value
    if ref is not None and a.checked is not None:
        detail = item_detail(a, ref)
        kind = _ITEM_KINDS.get(ref.kind, kind)
    doc = getattr(decl, "doc", None)
    return T.CompletionItem(label=name, kind=kind, detail=detail,
                            documentation=T.MarkupContent(kind=T.MarkupKind.Markdown, value=doc) if doc else None)


def _locals_at(a: Analysis, line: int, col: int):
    if a.checked is None:
        return []
    every = {id(l): l for l in a.checked.locals}
    for l in a.checked.bindings.values():  # parameters are bound but not all listed in `locals`
        every.setdefault(id(l), l)
    out = [l for l in every.values() if l.span.file == a.path and contains(l.scope, line, col)
           and (l.span.line, l.span.col) <= (line, col)]
    out.sort(key=lambda l: (l.span.line, l.span.col))
    return out


def _member_items(a: Analysis, good: Analysis, q: str, line: int, col: int) -> list[T.CompletionItem]:
    """After `q.`: a module's public items, an enum's variants, or a record value's fields."""
    for ana in ((good, a) if good is not a else (a,)):
        prog = ana.program
        if prog is None:
            continue
        root = prog.root
        mod = root.imports.get(q)
        if mod is not None:
            members = mod.items or {getattr(i, "name", None): i for i in mod.tree.items if hasattr(i, "name_span")}
            return [_item_completion(ana, name, decl) for name, decl in members.items()
                    if name and (mod.is_root or getattr(decl, "public", False))]
        decl = root.items.get(q)
        if isinstance(decl, ast.EnumDecl):
            return [T.CompletionItem(label=v.name, kind=T.CompletionItemKind.EnumMember, detail=f"{decl.name}.{v.name}",
                                     documentation=v.doc) for v in decl.variants]
        ty = None  # a value: a local (or const) of a record type
        locs = [l for l in _locals_at(ana, line, col) if l.name == q]
        if locs:
            ty = locs[-1].type
        elif isinstance(decl, ast.ConstDecl) and ana.checked is not None:
            ty = ana.checked.const_types.get(decl)
        if ty is not None and type(ty).__name__ == "RecordT":
            out = []
            for k, (fname, fty) in enumerate(ty.fields.items()):
                f = ty.decl.fields[k] if k < len(ty.decl.fields) else None
                out.append(T.CompletionItem(label=fname, kind=T.CompletionItemKind.Field, detail=f"{fname}: {fty}",
                                            documentation=f.doc if f else None))
            return out
    return []


# ---------------------------------------------------------------- module paths

def _module_items(a: Analysis, path: tuple[str, ...]) -> list[T.CompletionItem]:
    """The next part of an `import` path: `std` and the files beside the document, the standard
    library's modules after `std.`, a folder's modules after `folder.` (as lwas.semantics.resolve looks)."""
    from lwas.semantics.resolve import STD_PREFIX
    from lwas.syntax.source import default_stdlib_dir

    here = Path(a.path) if Path(a.path).is_absolute() else None
    out = []
    if not path:
        out.append(T.CompletionItem(label=STD_PREFIX, kind=T.CompletionItemKind.Module,
                                    detail="the standard library", documentation="`import std.stats`, `import std.money`, ..."))
    if path[:1] == (STD_PREFIX,):
        base, prefix = default_stdlib_dir().joinpath(*path[1:]), ".".join(path)
    elif here is not None:
        base, prefix = here.parent.joinpath(*path), ".".join(path)
    else:
        return out
    for name, file in _listing(str(base)):
        if file is not None and here is not None and Path(file) == here:
            continue
        full = f"{prefix}.{name}" if prefix else name
        if file is None:
            out.append(T.CompletionItem(label=name, kind=T.CompletionItemKind.Folder, detail=f"modules {full}.*"))
        else:
            doc = _module_doc(file)
            out.append(T.CompletionItem(label=name, kind=T.CompletionItemKind.Module, detail=f"module {full}",
                                        documentation=T.MarkupContent(kind=T.MarkupKind.Markdown, value=doc) if doc else None))
    return out


def _listing(folder: str) -> list[tuple[str, str | None]]:
    """(name, file) for each `.lwas` module in a folder, (name, None) for each sub-folder holding some."""
    base = Path(folder)
    if not base.is_dir():
        return []
    out = []
    for p in sorted(base.iterdir()):
        if p.suffix == ".lwas" and p.is_file() and _IDENT.match(p.stem):
            out.append((p.stem, str(p)))
        elif p.is_dir() and _IDENT.match(p.name) and not p.name.startswith("_") and any(p.glob("*.lwas")):
            out.append((p.name, None))
    return out


def _module_doc(file: str) -> str | None:
    try:
        p = Path(file)
        return _module_doc_cached(file, p.stat().st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=256)
def _module_doc_cached(file: str, _mtime: int) -> str | None:
    """The comment at the top of a module (after its `module` line): what it is for."""
    with open(file, encoding="utf-8") as f:
        head = f.read(4000)
    lines: list[str] = []
    for text in head.split("\n"):
        t = text.strip()
        if t.startswith("//") and not t.startswith("///"):
            lines.append(t[2:].strip())
        elif lines or (t and not t.startswith("module")):
            break
    return " ".join(lines) or None
