"""`lwas-lsp`: the LwaS language server (pygls 2), built on the compiler's own front end.

Every answer comes from `lwas.driver`'s Compilation of the document: diagnostics are the
ones `lwasc check` prints (same codes, messages and spans, the axiom chains as related
information), and hover, definitions, references, completion, rename, semantic tokens and
inlay hints read the type checker's side tables (`Checked.refs`, `bindings`, `let_types`,
`signatures`) and the truth phase's effective truths. Quick fixes are the compiler's own
suggestions (`Diagnostic.suggestions`), carried in each published diagnostic's `data`.
Completion (lsp/completion.py) asks the grammar's own parser what may come at the cursor;
lsp/describe.py words what a name denotes for hover and completion alike. Positions are
UTF-16 code units.

Usage: lwas-lsp            (stdio)
       lwas-lsp --tcp HOST PORT
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from lsprotocol import types as T
from lsprotocol.converters import get_converter
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
        from lwas.semantics.resolve import Loader, load
        from lwas.syntax.source import default_stdlib_dir

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
_CONVERTER = get_converter()


def on_document(method: str, options=None):
    """Register a request handler about one document: it is called as handler(ls, a, params),
    `a` the document's current analysis."""

    def register(handler):
        def answer(ls: LwasServer, params):
            return handler(ls, ls.get(params.text_document.uri), params)

        answer.__name__, answer.__doc__ = handler.__name__, handler.__doc__
        server.feature(method, options)(answer)
        return handler

    return register


def on_name(method: str, options=None):
    """Register a request handler about the name at the cursor: handler(ls, a, o, params), `o`
    its occurrence; the answer is None where there is no name."""

    def register(handler):
        def at_name(ls: LwasServer, a: Analysis, params):
            o = _occ_at(a, params.position)
            return None if o is None else handler(ls, a, o, params)

        at_name.__name__, at_name.__doc__ = handler.__name__, handler.__doc__
        on_document(method, options)(at_name)
        return handler

    return register


def to_lsp_diagnostic(ls: LwasServer, a: Analysis, d) -> T.Diagnostic:
    related = [T.DiagnosticRelatedInformation(
        location=T.Location(uri=ls.uri_of(a, lab.span.file), range=_range(a, lab.span.file, lab.span)),
        message=lab.message or d.message) for lab in d.labels]
    message = d.message
    extra = [f"note: {n}" for n in d.notes] + ([f"help: {d.help}"] if d.help else [])
    if extra:
        message += "\n" + "\n".join(extra)
    return T.Diagnostic(
        range=_range(a, d.span.file, d.span),
        message=message,
        severity=T.DiagnosticSeverity.Error if d.is_error else T.DiagnosticSeverity.Warning,
        code=d.code or None,
        source="lwasc",
        related_information=related or None,
        data={"label": d.label, "help": d.help, "suggestions": [_suggestion_data(ls, a, x) for x in d.suggestions]},
    )


def _suggestion_data(ls: LwasServer, a: Analysis, x) -> dict:
    """A compiler Suggestion as it travels in the LSP diagnostic's `data` (the client sends the
    diagnostic back with a code action request): positions already in UTF-16, as published."""
    edit = T.TextEdit(range=_range(a, x.span.file, x.span), new_text=x.replacement)
    return {"message": x.message, "applicability": x.applicability, "uri": ls.uri_of(a, x.span.file),
            "edit": _CONVERTER.unstructure(edit)}


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


@on_document(T.TEXT_DOCUMENT_DIAGNOSTIC,
             T.DiagnosticOptions(identifier="lwasc", inter_file_dependencies=True, workspace_diagnostics=False))
def pull_diagnostics(ls: LwasServer, a: Analysis, params: T.DocumentDiagnosticParams):
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

@on_name(T.TEXT_DOCUMENT_HOVER)
def hover(ls: LwasServer, a: Analysis, o: Occ, params: T.HoverParams):
    text, _, _ = describe(a, o)
    if not text:
        return None
    return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text),
                   range=_range(a, o.span.file, o.span))


@on_name(T.TEXT_DOCUMENT_DEFINITION)
def definition(ls: LwasServer, a: Analysis, o: Occ, params: T.DefinitionParams):
    where = definition_span(o.target)
    if where is None:
        return None
    path, span = where
    return [T.Location(uri=ls.uri_of(a, path), range=_range(a, path, span))]


@on_name(T.TEXT_DOCUMENT_REFERENCES)
def references(ls: LwasServer, a: Analysis, o: Occ, params: T.ReferenceParams):
    out = []
    for r in a.occurrences_of(o.key):
        if r.decl and not params.context.include_declaration:
            continue
        out.append(T.Location(uri=ls.uri_of(a, r.span.file), range=_range(a, r.span.file, r.span)))
    return out


@on_name(T.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
def highlight(ls: LwasServer, a: Analysis, o: Occ, params: T.DocumentHighlightParams):
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


@on_document(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(ls: LwasServer, a: Analysis, params: T.DocumentSymbolParams):
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

@on_document(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=["."]))
def completion(ls: LwasServer, a: Analysis, params: T.CompletionParams):
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


@on_name(T.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: LwasServer, a: Analysis, o: Occ, params: T.PrepareRenameParams):
    if type(o.target).__name__ in ("BuiltinRef", "ModuleRef"):
        return None
    return _range(a, o.span.file, o.span)


@on_document(T.TEXT_DOCUMENT_RENAME, T.RenameOptions(prepare_provider=True))
def rename(ls: LwasServer, a: Analysis, params: T.RenameParams):
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


@on_document(T.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
             T.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS))
def semantic_tokens(ls: LwasServer, a: Analysis, params: T.SemanticTokensParams):
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

@on_document(T.TEXT_DOCUMENT_FOLDING_RANGE)
def folding(ls: LwasServer, a: Analysis, params: T.FoldingRangeParams):
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


@on_document(T.TEXT_DOCUMENT_INLAY_HINT)
def inlay_hints(ls: LwasServer, a: Analysis, params: T.InlayHintParams):
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
    """The quick fixes are the compiler's own suggestions, carried in each diagnostic's `data`
    (see to_lsp_diagnostic): one action per suggestion, its message as the title. A lone
    suggestion that applies as it is ("machine") is the preferred fix."""
    quick = T.CodeActionKind.QuickFix.value
    if params.context.only and not any(quick == k or quick.startswith(f"{k}.") for k in params.context.only):
        return []
    out = []
    for d in params.context.diagnostics:
        suggestions = d.data.get("suggestions") if isinstance(d.data, dict) else None
        if not isinstance(suggestions, list):
            continue  # not one of ours
        for x in suggestions:
            try:
                edit = _CONVERTER.structure(x["edit"], T.TextEdit)
                title, uri = x["message"], x["uri"]
                preferred = len(suggestions) == 1 and x.get("applicability") == "machine"
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            out.append(T.CodeAction(title=title[:1].upper() + title[1:], kind=T.CodeActionKind.QuickFix,
                                    diagnostics=[d], is_preferred=preferred or None,
                                    edit=T.WorkspaceEdit(changes={uri: [edit]})))
    return out


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
