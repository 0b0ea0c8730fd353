"""`lwas-lsp`: the LwaS language server (pygls 2), built on the compiler's own front end.

Every answer comes from `lwas.driver`'s Compilation of the document: diagnostics are the
ones `lwasc check` prints (same codes, messages and spans, the axiom chains as related
information), and hover, definitions, references, completion, rename, semantic tokens and
inlay hints read the type checker's side tables (`Checked.refs`, `bindings`, `let_types`,
`signatures`) and the truth phase's effective truths. Completion (lsp/completion.py) asks the
grammar's own parser what may come at the cursor; lsp/describe.py words what a name denotes
for hover and completion alike. Positions are UTF-16 code units.

Usage: lwas-lsp            (stdio)
       lwas-lsp --tcp HOST PORT
"""
from __future__ import annotations

import argparse
import functools
import logging
import re
import sys
from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from lwas.syntax import tree as ast
from lwas.syntax.source import SourceFile, Span

from .analysis import (Analysis, Occ, build_index, definition_span, lsp_pos, name_span, offset_of,
                       span_range, utf16_len)
from .completion import complete
from .describe import describe, num, truth_text
from .incremental import IncrementalParser

log = logging.getLogger("lwas.lsp")

KEYWORDS = ("module import pub axiom requires contradicts const fn rule record enum test let var if "
            "else while for in return break continue assert match and or not true false extern delete").split()
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TOKEN_TYPES = ["namespace", "type", "enum", "enumMember", "function", "variable", "parameter",
               "property", "macro"]
TOKEN_MODIFIERS = ["declaration", "readonly", "defaultLibrary"]


# ---------------------------------------------------------------- the server

class LwasServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("lwas-lsp", "0.1.0")
        self.analyses: dict[str, Analysis] = {}
        self.last_clean: dict[str, Analysis] = {}  # the last analysis without syntax errors
        self.parser = IncrementalParser()
        self.published: dict[str, set[str]] = {}  # root uri -> other uris it published to

    # -- paths
    def path_of(self, uri: str) -> str:
        p = to_fs_path(uri) if uri.startswith("file:") else None
        return p or uri

    def uri_of(self, a: Analysis, path: str) -> str:
        if path == a.path:
            return a.uri
        if path.startswith("<") or not Path(path).is_absolute():
            return a.uri
        return from_fs_path(path) or a.uri

    def open_text(self, path: str) -> str | None:
        for a in self.analyses.values():
            if a.path == path:
                return self.workspace.get_text_document(a.uri).source
        return None

    # -- analysis
    def analyse(self, uri: str) -> Analysis:
        from lwas.driver import FRONT_END, Compilation, run
        from lwas.semantics.resolve import Loader, default_stdlib_dir, load

        doc = self.workspace.get_text_document(uri)
        path = self.path_of(uri)
        c = Compilation(SourceFile(path, doc.source))

        def read(p: Path) -> str:
            text = self.open_text(str(p))
            return text if text is not None else p.read_text(encoding="utf-8")

        def parse(cc) -> None:
            loader = Loader(parse=self.parser.parse, stdlib_dir=cc.stdlib_dir or default_stdlib_dir(), read=read)
            cc.program = load(cc.root, loader, cc.sink)
            cc.parsed_tree = cc.program.root.tree  # before services are expanded (outline)

        run(c, until=FRONT_END, replace={"parse": parse})
        a = Analysis(uri, path, doc.version, c)
        self.analyses[uri] = a
        if not any(d.code == "E0001" or d.code.startswith("E00") for d in c.sink.items):
            self.last_clean[uri] = a
        return a

    def get(self, uri: str) -> Analysis:
        a = self.analyses.get(uri)
        doc = self.workspace.get_text_document(uri)
        if a is None or a.version != doc.version or a.c.root.text != doc.source:
            a = self.analyse(uri)
        if not a.occs and a.c.program is not None:
            build_index(a)
        return a

    def publish(self, a: Analysis) -> None:
        by_uri: dict[str, list[T.Diagnostic]] = {a.uri: []}
        for d in a.c.diagnostics:
            uri = self.uri_of(a, d.span.file)
            by_uri.setdefault(uri, []).append(to_lsp_diagnostic(self, a, d))
        others = set(by_uri) - {a.uri}
        for stale in self.published.get(a.uri, set()) - others:
            by_uri[stale] = []
        self.published[a.uri] = others
        for uri, items in by_uri.items():
            self.text_document_publish_diagnostics(
                T.PublishDiagnosticsParams(uri=uri, diagnostics=items,
                                           version=a.version if uri == a.uri else None))


server = LwasServer()


def to_lsp_diagnostic(ls: LwasServer, a: Analysis, d) -> T.Diagnostic:
    src = a.source(d.span.file)
    (l0, c0), (l1, c1) = span_range(src, d.span)
    related = []
    for lab in d.labels:
        lsrc = a.source(lab.span.file)
        (m0, n0), (m1, n1) = span_range(lsrc, lab.span)
        related.append(T.DiagnosticRelatedInformation(
            location=T.Location(uri=ls.uri_of(a, lab.span.file),
                                range=T.Range(start=T.Position(line=m0, character=n0),
                                              end=T.Position(line=m1, character=n1))),
            message=lab.message or d.message))
    message = d.message
    extra = [f"note: {n}" for n in d.notes] + ([f"help: {d.help}"] if d.help else [])
    if extra:
        message += "\n" + "\n".join(extra)
    return T.Diagnostic(
        range=T.Range(start=T.Position(line=l0, character=c0), end=T.Position(line=l1, character=c1)),
        message=message,
        severity=T.DiagnosticSeverity.Error if d.is_error else T.DiagnosticSeverity.Warning,
        code=d.code or None,
        source="lwasc",
        related_information=related or None,
        data={"label": d.label, "help": d.help},
    )


# ---------------------------------------------------------------- document sync and diagnostics

@server.feature(T.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LwasServer, params: T.DidOpenTextDocumentParams) -> None:
    ls.publish(ls.analyse(params.text_document.uri))


@server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LwasServer, params: T.DidChangeTextDocumentParams) -> None:
    ls.publish(ls.analyse(params.text_document.uri))


@server.feature(T.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: LwasServer, params: T.DidSaveTextDocumentParams) -> None:
    ls.publish(ls.get(params.text_document.uri))


@server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: LwasServer, params: T.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.analyses.pop(uri, None)
    ls.last_clean.pop(uri, None)
    for other in ls.published.pop(uri, set()) | {uri}:
        ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=other, diagnostics=[]))


@server.feature(T.TEXT_DOCUMENT_DIAGNOSTIC,
                T.DiagnosticOptions(identifier="lwasc", inter_file_dependencies=True,
                                    workspace_diagnostics=False))
def pull_diagnostics(ls: LwasServer, params: T.DocumentDiagnosticParams):
    a = ls.get(params.text_document.uri)
    items = [to_lsp_diagnostic(ls, a, d) for d in a.c.diagnostics if ls.uri_of(a, d.span.file) == a.uri]
    return T.FullDocumentDiagnosticReport(items=items)


# ---------------------------------------------------------------- helpers

def _pos(a: Analysis, p: T.Position) -> tuple[int, int]:
    return offset_of(a.src, p.line, p.character)


def _range(a: Analysis, path: str, span: Span) -> T.Range:
    (l0, c0), (l1, c1) = span_range(a.source(path), span)
    return T.Range(start=T.Position(line=l0, character=c0), end=T.Position(line=l1, character=c1))


def _occ_at(a: Analysis, p: T.Position) -> Occ | None:
    line, col = _pos(a, p)
    o = a.occ_at(a.path, line, col)
    if o is None and col > 1:  # the cursor just after a name
        o = a.occ_at(a.path, line, col - 1)
    return o


# ---------------------------------------------------------------- hover, definition, references

@server.feature(T.TEXT_DOCUMENT_HOVER)
def hover(ls: LwasServer, params: T.HoverParams):
    a = ls.get(params.text_document.uri)
    o = _occ_at(a, params.position)
    if o is None:
        return None
    text, _, _ = describe(a, o)
    if not text:
        return None
    return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text),
                   range=_range(a, o.span.file, o.span))


@server.feature(T.TEXT_DOCUMENT_DEFINITION)
def definition(ls: LwasServer, params: T.DefinitionParams):
    a = ls.get(params.text_document.uri)
    o = _occ_at(a, params.position)
    if o is None:
        return None
    where = definition_span(o.target)
    if where is None:
        return None
    path, span = where
    return [T.Location(uri=ls.uri_of(a, path), range=_range(a, path, span))]


@server.feature(T.TEXT_DOCUMENT_REFERENCES)
def references(ls: LwasServer, params: T.ReferenceParams):
    a = ls.get(params.text_document.uri)
    o = _occ_at(a, params.position)
    if o is None:
        return None
    out = []
    for r in a.occurrences_of(o.key):
        if r.decl and not params.context.include_declaration:
            continue
        out.append(T.Location(uri=ls.uri_of(a, r.span.file), range=_range(a, r.span.file, r.span)))
    return out


@server.feature(T.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
def highlight(ls: LwasServer, params: T.DocumentHighlightParams):
    a = ls.get(params.text_document.uri)
    o = _occ_at(a, params.position)
    if o is None:
        return None
    return [T.DocumentHighlight(range=_range(a, r.span.file, r.span),
                                kind=T.DocumentHighlightKind.Write if r.decl else T.DocumentHighlightKind.Read)
            for r in a.occurrences_of(o.key) if r.span.file == a.path]


# ---------------------------------------------------------------- outline

_SYMBOL_KINDS = {
    ast.AxiomDecl: T.SymbolKind.Constant, ast.ConstDecl: T.SymbolKind.Constant,
    ast.FnDecl: T.SymbolKind.Function, ast.RuleDecl: T.SymbolKind.Function,
    ast.RecordDecl: T.SymbolKind.Struct, ast.EnumDecl: T.SymbolKind.Enum,
    ast.ServiceDecl: T.SymbolKind.Class, ast.TestDecl: T.SymbolKind.Method,
    ast.ModuleDecl: T.SymbolKind.Module,
}


def _symbol(a: Analysis, item) -> T.DocumentSymbol | None:
    kind = _SYMBOL_KINDS.get(type(item))
    if kind is None:
        return None
    path = a.path
    if isinstance(item, ast.ModuleDecl):
        name, sel = item.name.text, item.name.span
    elif isinstance(item, ast.TestDecl):
        name, sel = f"test {item.name}", item.span
    else:
        name, sel = item.name, item.name_span
    children = []
    detail = None
    if isinstance(item, ast.RecordDecl):
        for f in item.fields:
            children.append(T.DocumentSymbol(name=f.name, kind=T.SymbolKind.Field, range=_range(a, path, f.span),
                                             selection_range=_range(a, path, name_span(f.span, f.name))))
    elif isinstance(item, ast.EnumDecl):
        for v in item.variants:
            children.append(T.DocumentSymbol(name=v.name, kind=T.SymbolKind.EnumMember,
                                             range=_range(a, path, v.span),
                                             selection_range=_range(a, path, name_span(v.span, v.name))))
    elif isinstance(item, ast.ServiceDecl):
        for m in item.members:
            nm = getattr(m, "name", None)
            if nm is None:
                nm = f"{m.method} {m.path}" if isinstance(m, ast.RouteDecl) else \
                    (f"on {m.ledger}" if isinstance(m, ast.OnDecl) else f"every {getattr(m, 'interval', '')}")
            children.append(T.DocumentSymbol(name=nm, kind=T.SymbolKind.Method, range=_range(a, path, m.span),
                                             selection_range=_range(a, path, getattr(m, "name_span", m.span))))
    elif isinstance(item, ast.AxiomDecl):
        detail = truth_text(item)
    elif isinstance(item, (ast.FnDecl, ast.RuleDecl)) and a.checked is not None:
        sig = a.checked.signatures.get(item)
        detail = str(sig) if sig is not None else None
    rng = _range(a, path, item.span)
    sel_rng = _range(a, path, sel)
    return T.DocumentSymbol(name=name, kind=kind, range=rng, selection_range=sel_rng, detail=detail,
                            children=children or None)


@server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(ls: LwasServer, params: T.DocumentSymbolParams):
    a = ls.get(params.text_document.uri)
    tree = a.c.parsed_tree
    if tree is None:
        return []
    return [s for s in (_symbol(a, it) for it in tree.items) if s is not None]


@server.feature(T.WORKSPACE_SYMBOL)
def workspace_symbols(ls: LwasServer, params: T.WorkspaceSymbolParams):
    """The top-level items (and their members) of every open document whose name contains the
    query, case-insensitively (an empty query lists them all)."""
    q = params.query.lower()
    out: list[T.WorkspaceSymbol] = []

    def visit(a, sym: T.DocumentSymbol, container: str | None):
        if q in sym.name.lower():
            out.append(T.WorkspaceSymbol(name=sym.name, kind=sym.kind, container_name=container,
                                         location=T.Location(uri=a.uri, range=sym.selection_range)))
        for child in sym.children or ():
            visit(a, child, sym.name)

    for a in list(ls.analyses.values()):
        tree = a.c.parsed_tree
        for it in (tree.items if tree is not None else ()):
            sym = _symbol(a, it)
            if sym is not None:
                visit(a, sym, None)
    return out


# ---------------------------------------------------------------- completion

@server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=["."]))
def completion(ls: LwasServer, params: T.CompletionParams):
    a = ls.get(params.text_document.uri)
    line, col = _pos(a, params.position)
    # an analysis where the names around the cursor exist (the line being typed may not parse)
    good = a if a.checked is not None and a is ls.last_clean.get(a.uri) else ls.last_clean.get(a.uri, a)
    if good is not a and not good.occs:
        build_index(good)
    return T.CompletionList(is_incomplete=False, items=complete(a, good, line, col))


# ---------------------------------------------------------------- rename

def _rename_edits(ls: LwasServer, a: Analysis, params_pos: T.Position, new: str) -> dict[str, list[T.TextEdit]]:
    from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest

    o = _occ_at(a, params_pos)
    if o is None:
        raise JsonRpcInvalidRequest("nothing to rename here")
    t = o.target
    cls = type(t).__name__
    if cls in ("BuiltinRef", "ModuleRef"):
        raise JsonRpcInvalidRequest("built-ins and modules cannot be renamed")
    if not _IDENT.match(new) or new in KEYWORDS:
        raise JsonRpcInvalidParams(f"`{new}` is not a valid name")
    occs = a.occurrences_of(o.key)
    if any(r.span.file != a.path for r in occs if r.decl):
        raise JsonRpcInvalidRequest("declared in another module: rename it there")
    prog = a.program
    old = a.src.text[o.span.start:o.span.end] if o.span.end > o.span.start else None
    if new == old:
        return {}
    clash = None
    if cls == "Local":
        for l in {id(x): x for x in (*a.checked.locals, *a.checked.bindings.values())}.values():
            if l is not t and l.name == new and l.span.file == t.span.file and _overlap(l.scope, t.scope):
                clash = f"{l.kind} `{new}` at line {l.span.line}"
        if new in prog.root.items or new in prog.root.imports:
            clash = clash or f"`{new}`, declared at the top level"
    elif cls == "ItemRef":
        if new in prog.root.items or new in prog.root.imports:
            clash = f"`{new}`, already declared in this module"
        else:
            for l in a.checked.locals:
                if l.name == new and l.span.file == a.path:
                    clash = f"{l.kind} `{new}` at line {l.span.line}"
                    break
    elif cls == "FieldRef":
        if new in t.record.fields:
            clash = f"field `{new}` of `{t.record.name}`"
    elif cls == "VariantRef":
        if new in t.enum.variants:
            clash = f"variant `{new}` of `{t.enum.name}`"
    if clash:
        raise JsonRpcInvalidRequest(f"cannot rename to `{new}`: it clashes with {clash}")
    edits: dict[str, list[T.TextEdit]] = {}
    for r in occs:
        edits.setdefault(ls.uri_of(a, r.span.file), []).append(
            T.TextEdit(range=_range(a, r.span.file, r.span), new_text=new))
    return edits


def _overlap(s1: Span, s2: Span) -> bool:
    return not ((s1.end_line, s1.end_col) < (s2.line, s2.col) or (s2.end_line, s2.end_col) < (s1.line, s1.col))


@server.feature(T.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: LwasServer, params: T.PrepareRenameParams):
    a = ls.get(params.text_document.uri)
    o = _occ_at(a, params.position)
    if o is None or type(o.target).__name__ in ("BuiltinRef", "ModuleRef"):
        return None
    return _range(a, o.span.file, o.span)


@server.feature(T.TEXT_DOCUMENT_RENAME, T.RenameOptions(prepare_provider=True))
def rename(ls: LwasServer, params: T.RenameParams):
    a = ls.get(params.text_document.uri)
    return T.WorkspaceEdit(changes=_rename_edits(ls, a, params.position, params.new_name))


# ---------------------------------------------------------------- semantic tokens

def _token_type(t) -> tuple[int, int]:
    cls = type(t).__name__
    ty = {"namespace": 0, "type": 1, "enum": 2, "enumMember": 3, "function": 4, "variable": 5,
          "parameter": 6, "property": 7, "macro": 8}
    if cls == "Local":
        return (ty["parameter"] if t.kind == "param" else ty["variable"]), (0 if t.kind == "var" else 2)
    if cls == "ItemRef":
        k = t.kind
        mod = 4 if (t.module is not None and not t.module.is_root) else 0
        if k in ("fn", "rule"):
            return ty["function"], mod
        if k == "record":
            return ty["type"], mod
        if k == "enum":
            return ty["enum"], mod
        if k == "axiom":
            return ty["macro"], 2 | mod
        return ty["variable"], 2 | mod
    if cls == "FieldRef":
        return ty["property"], 0
    if cls == "VariantRef":
        return ty["enumMember"], 2
    if cls == "ModuleRef":
        return ty["namespace"], 0
    if cls == "BuiltinRef":
        return ty["function"], 4
    return ty["variable"], 0


@server.feature(T.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
                T.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS))
def semantic_tokens(ls: LwasServer, params: T.SemanticTokensParams):
    a = ls.get(params.text_document.uri)
    toks = []
    for o in a.occs.get(a.path, ()):
        s = o.span
        if s.line != s.end_line or s.line <= 0:
            continue
        tt, mods = _token_type(o.target)
        if o.decl:
            mods |= 1
        (l0, c0), (_, c1) = span_range(a.src, s)
        toks.append((l0, c0, c1 - c0, tt, mods))
    toks.sort()
    data: list[int] = []
    pl = pc = 0
    last = None
    for l0, c0, n, tt, mods in toks:
        if (l0, c0) == last:
            continue
        last = (l0, c0)
        data += [l0 - pl, c0 - pc if l0 == pl else c0, n, tt, mods]
        pl, pc = l0, c0
    return T.SemanticTokens(data=data)


# ---------------------------------------------------------------- folding

@server.feature(T.TEXT_DOCUMENT_FOLDING_RANGE)
def folding(ls: LwasServer, params: T.FoldingRangeParams):
    a = ls.get(params.text_document.uri)
    tree = a.c.parsed_tree
    out: list[T.FoldingRange] = []
    seen = set()
    if tree is not None:
        for n in ast.walk(tree):
            if isinstance(n, (ast.Module, ast.QualName)):
                continue
            s = getattr(n, "span", None)
            if isinstance(s, Span) and s.end_line > s.line and isinstance(n, (
                    ast.FnDecl, ast.RuleDecl, ast.RecordDecl, ast.EnumDecl, ast.ServiceDecl, ast.TestDecl,
                    ast.Block, ast.Match, ast.RouteDecl, ast.OnDecl, ast.EveryDecl, ast.ArrayLit, ast.Call)):
                key = (s.line, s.end_line)
                if key not in seen:
                    seen.add(key)
                    out.append(T.FoldingRange(start_line=s.line - 1, end_line=s.end_line - 1))
    # runs of comment lines
    lines = a.src.text.split("\n")
    start = None
    for i, text in enumerate(lines + [""]):
        if text.lstrip().startswith("//"):
            if start is None:
                start = i
        else:
            if start is not None and i - 1 > start:
                out.append(T.FoldingRange(start_line=start, end_line=i - 1, kind=T.FoldingRangeKind.Comment))
            start = None
    return out


# ---------------------------------------------------------------- inlay hints

def _axiom_end(ax) -> Span:
    """Where an axiom declaration ends (after its `requires`/`contradicts` names)."""
    end = ax.span
    for q in (*ax.requires, *ax.contradicts):
        if (q.span.end_line, q.span.end_col) > (end.end_line, end.end_col):
            end = q.span
    return end


@server.feature(T.TEXT_DOCUMENT_INLAY_HINT)
def inlay_hints(ls: LwasServer, params: T.InlayHintParams):
    a = ls.get(params.text_document.uri)
    r = params.range
    lo, hi = r.start.line + 1, r.end.line + 1
    out: list[T.InlayHint] = []
    prog, tr, chk = a.program, a.c.truth, a.checked
    if prog is None:
        return out
    if tr is not None and len(tr.effective) == len(prog.axioms):
        for i, ax in enumerate(prog.axioms):
            s = _axiom_end(ax)
            if s.file != a.path or not lo <= s.end_line <= hi:
                continue
            l0, c0 = lsp_pos(a.src, s.end_line, s.end_col)
            out.append(T.InlayHint(position=T.Position(line=l0, character=c0),
                                   label=f"effective {num(tr.effective[i])}", padding_left=True,
                                   tooltip=f"the truth the program guarantees for `{prog.axiom_names[i]}`"))
    if chk is not None:
        for let, ty in chk.let_types.items():
            s = let.name_span
            if let.type is not None or s.file != a.path or not lo <= s.line <= hi:
                continue
            l0, c0 = lsp_pos(a.src, s.end_line, s.end_col)
            out.append(T.InlayHint(position=T.Position(line=l0, character=c0), label=f": {ty}",
                                   kind=T.InlayHintKind.Type))
    out.sort(key=lambda h: (h.position.line, h.position.character))
    return out


# ---------------------------------------------------------------- code actions

@server.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix]))
def code_actions(ls: LwasServer, params: T.CodeActionParams):
    a = ls.get(params.text_document.uri)
    return [act for d in params.context.diagnostics if d.code in _FIXES for act in _FIXES[d.code](a, d)]


def _lower_axiom_fix(a: Analysis, d: T.Diagnostic) -> list[T.CodeAction]:
    """E0203: lower the axiom to the bound its premises allow."""
    prog, tr = a.program, a.c.truth
    if prog is None or tr is None or len(tr.upper) != len(prog.axioms):
        return []
    line, col = _pos(a, d.range.start)
    out = []
    for i, ax in enumerate(prog.axioms):
        if ax.span.file == a.path and ax.name_span.line == line and ax.name_span.col == col and ax.value:
            bound = tr.upper[i]
            v = ax.value
            new = num(bound) if v.lo == v.hi or v.hi <= bound else f"{num(bound)}..{num(v.hi)}"
            edit = T.TextEdit(range=_range(a, a.path, v.span), new_text=new)
            out.append(T.CodeAction(title=f"Lower `{ax.name}` to {new} (what its premises allow)",
                                    kind=T.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=True,
                                    edit=T.WorkspaceEdit(changes={a.uri: [edit]})))
    return out


_UNCOVERED = re.compile(r"non-exhaustive match: variants? (.*) not covered")


@functools.cache
def _stdlib_modules() -> tuple[str, ...]:
    from lwas.semantics.resolve import default_stdlib_dir

    return tuple(sorted(p.stem for p in default_stdlib_dir().glob("*.lwas")))


def _import_fix(a: Analysis, d: T.Diagnostic) -> list[T.CodeAction]:
    """`stats.mean(xs)` without `import std.stats`: add the import (after the last one, else
    after the `module` line, else at the top). E0101's range is the name not found: the name
    is read there, in the document, never out of the message's wording."""
    r = d.range
    if a.src is None or r.start.line != r.end.line:
        return []
    (line, c0), (_, c1) = _pos(a, r.start), _pos(a, r.end)
    name = a.src.line_text(line)[c0 - 1:c1 - 1]
    if name not in _stdlib_modules():
        return []
    tree = a.c.parsed_tree
    line = 0  # 0-based line to insert before
    for it in (tree.items if tree is not None else ()):
        if isinstance(it, (ast.Import, ast.ModuleDecl)):
            line = it.span.end_line  # the line after it (1-based end == 0-based next)
    edit = T.TextEdit(range=T.Range(start=T.Position(line=line, character=0), end=T.Position(line=line, character=0)),
                      new_text=f"import std.{name}\n")
    return [T.CodeAction(title=f"Add `import std.{name}`", kind=T.CodeActionKind.QuickFix, diagnostics=[d],
                         is_preferred=True, edit=T.WorkspaceEdit(changes={a.uri: [edit]}))]


def _match_arms_fix(a: Analysis, d: T.Diagnostic) -> list[T.CodeAction]:
    """Add an arm per uncovered variant, each giving the first arm's result for now (so the
    program compiles again; the arm is there to be edited)."""
    m = _UNCOVERED.match(d.message)
    tree = a.c.parsed_tree
    if m is None or tree is None:
        return []
    missing = re.findall(r"`([^`]+)`", m.group(1))
    line, col = _pos(a, d.range.start)
    match = None
    for n in ast.walk(tree):
        if isinstance(n, ast.Match) and n.subject.span.line == line and n.subject.span.col == col:
            match = n
    if match is None or not match.arms or not missing:
        return []
    text = a.src.text
    first = match.arms[0]
    body = text[first.body.span.start:first.body.span.end]
    last = match.arms[-1]
    if match.span.line == match.span.end_line:  # one line: `match e { A => 1 }`
        at = last.span
        new = "".join(f", {v} => {body}" for v in missing)
        pos = T.Position(*lsp_pos(a.src, at.end_line, at.end_col))
    else:  # one arm per line, before the closing brace's line
        indent = " " * (first.span.col - 1)
        new = "".join(f"{indent}{v} => {body}\n" for v in missing)
        pos = T.Position(line=match.span.end_line - 1, character=0)
    edit = T.TextEdit(range=T.Range(start=pos, end=pos), new_text=new)
    names = ", ".join(f"`{v}`" for v in missing)
    return [T.CodeAction(title=f"Add the missing arm{'s' if len(missing) > 1 else ''} {names}",
                         kind=T.CodeActionKind.QuickFix, diagnostics=[d], edit=T.WorkspaceEdit(changes={a.uri: [edit]}))]


_FIXES = {"E0203": _lower_axiom_fix, "E0101": _import_fix, "E0305": _match_arms_fix}


# ---------------------------------------------------------------- formatting

def _formatter():
    try:
        from lwas.syntax.format import FormatError, format_source
    except ImportError:
        return None
    return format_source, FormatError


@server.feature(T.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: LwasServer, params: T.DocumentFormattingParams):
    f = _formatter()
    if f is None:
        return None
    format_source, FormatError = f
    doc = ls.workspace.get_text_document(params.text_document.uri)
    try:
        new = format_source(doc.source, ls.path_of(doc.uri))
    except FormatError:
        return None
    if new == doc.source:
        return []
    lines = doc.source.split("\n")
    end = T.Position(line=len(lines) - 1, character=utf16_len(lines[-1]))
    return [T.TextEdit(range=T.Range(start=T.Position(line=0, character=0), end=end), new_text=new)]


# ---------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lwas-lsp", description="The LwaS language server (stdio by default).")
    p.add_argument("--tcp", nargs=2, metavar=("HOST", "PORT"), help="listen on a TCP socket instead of stdio")
    p.add_argument("--log-file", help="write the server's log here (never stdout)")
    args = p.parse_args(argv)
    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=logging.INFO)
    if args.tcp:
        host, port = args.tcp
        server.start_tcp(host, int(port))
    else:
        server.start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
