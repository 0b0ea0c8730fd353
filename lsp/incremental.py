"""Incremental parsing for the language server: the compiler's own parser, item by item, with
a cache of the items of the previous version of each file.

`lwas.syntax.parse` already parses a file item by item when it has a syntax error (panic mode): the
file is cut where an item keyword starts a line, and each chunk is parsed with its line and
offset deltas. Here every chunk is cut that way, and a chunk whose text did not change (nor
the `///` doc lines above it, nor whether it ends the file: a chunk cut short mid-file reports
the next item's keyword, the last one the end of the file) reuses its syntax nodes and its
diagnostic from the last parse; when it only moved, its spans are shifted in place (the nodes
are frozen dataclasses that nothing else holds once the previous analysis is replaced). An
edit inside one function therefore re-parses one function, not the file.

Equivalence with `parse_module`: when every chunk parses, the items are those of the
whole-file parse; when some chunk does not, `parse_module` also works chunk by chunk and
reports the same errors. Small files (and files with a broken chunk below `_FALLBACK_CHARS`)
simply go through `parse_module`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import fields, is_dataclass

from lark.exceptions import UnexpectedInput

from lwas.syntax import parse as P
from lwas.syntax.bidi import bidi_warnings
from lwas.syntax import tree as ast
from lwas.syntax.nesting import check_depth
from lwas.syntax.source import SourceFile, Span

_SMALL_CHARS = 4_000  # below this a whole-file parse is cheap enough
_FALLBACK_CHARS = 40_000

_span_fields: dict[type, tuple[str, ...]] = {}
_child_fields: dict[type, tuple[str, ...]] = {}


def _layout(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
    sf = _span_fields.get(cls)
    if sf is None:
        names = [f.name for f in fields(cls)]
        hints = {f.name: str(f.type) for f in fields(cls)}
        sf = tuple(n for n in names if "Span" in hints[n])
        cf = tuple(n for n in names if n not in sf and hints[n] not in ("str", "bool", "int", "float", "str | None"))
        _span_fields[cls] = sf
        _child_fields[cls] = cf
    return sf, _child_fields[cls]


class RelSpan(Span):
    """A span relative to its chunk: moving the chunk moves every span in it in O(1).

    It reads like a Span (and compares and hashes equal to the Span with the same fields):
    `line`, `end_line`, `start` and `end` add the chunk's current line and offset deltas.
    """

    __slots__ = ("_base", "_l", "_el", "_s", "_e")

    line = property(lambda self: self._l + self._base.dl)
    end_line = property(lambda self: self._el + self._base.dl)
    start = property(lambda self: self._s + self._base.dp)
    end = property(lambda self: self._e + self._base.dp)

    def __init__(self, *a, **k):  # pragma: no cover - only made by _relative
        raise TypeError("RelSpan is made by lwas.lsp.incremental")

    def _key(self):
        return (self.file, self.line, self.col, self.end_line, self.end_col, self.start, self.end)

    def __eq__(self, other):
        if isinstance(other, Span):
            return self._key() == (other.file, other.line, other.col, other.end_line, other.end_col,
                                   other.start, other.end)
        return NotImplemented

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return "Span(file=%r, line=%d, col=%d, end_line=%d, end_col=%d, start=%d, end=%d)" % self._key()

    def __reduce__(self):
        return (Span, self._key())


def _rel(s: Span, base) -> RelSpan:
    r = object.__new__(RelSpan)
    sa = object.__setattr__
    sa(r, "file", s.file)
    sa(r, "col", s.col)
    sa(r, "end_col", s.end_col)
    sa(r, "_base", base)
    sa(r, "_l", s.line - base.dl)
    sa(r, "_el", s.end_line - base.dl)
    sa(r, "_s", s.start - base.dp)
    sa(r, "_e", s.end - base.dp)
    return r


def _relative(root, base) -> None:
    """Replace every span under root by a RelSpan on `base` (in place, once, after parsing)."""
    setattr_ = object.__setattr__
    stack = [root]
    pop, push = stack.pop, stack.append
    while stack:
        n = pop()
        if n.__class__ is tuple or n.__class__ is list:
            stack.extend(n)
            continue
        if not is_dataclass(n) or isinstance(n, Span):
            continue
        sf, cf = _layout(n.__class__)
        for name in sf:
            s = getattr(n, name)
            if s is not None:
                setattr_(n, name, _rel(s, base))
        for name in cf:
            v = getattr(n, name)
            if v is not None:
                push(v)


def _shift_diag(d, dl: int, dp: int):
    def mv(s: Span) -> Span:
        return Span(s.file, s.line + dl, s.col, s.end_line + dl, s.end_col, s.start + dp, s.end + dp)

    labels = tuple(dataclasses.replace(l, span=mv(l.span)) for l in d.labels)
    return dataclasses.replace(d, span=mv(d.span), labels=labels)


def _doc_above(lines_before: list[str]) -> str:
    out = []
    for text in reversed(lines_before):
        t = text.strip()
        if not t.startswith("///"):
            break
        out.append(t)
    return "\n".join(out)


class _Chunk:
    __slots__ = ("items", "diag", "dl", "dp")

    def __init__(self, items, diag, dl, dp):
        self.items, self.diag, self.dl, self.dp = items, diag, dl, dp


class IncrementalParser:
    def __init__(self) -> None:
        self.whole: dict[str, tuple[str, tuple]] = {}  # path -> (text, parse_module result)
        self.chunks: dict[str, dict[tuple[str, str, bool], list[_Chunk]]] = {}
        self.stats = {"reused": 0, "parsed": 0}

    def parse(self, src: SourceFile):
        path, text = src.path, src.text
        hit = self.whole.get(path)
        if hit is not None and hit[0] == text:
            return hit[1]
        if len(text) < _SMALL_CHARS:
            result = P.parse_module(src)
            self.whole[path] = (text, result)
            return result
        result = self._chunked(src)
        if result is None:
            result = P.parse_module(src)
            self.chunks.pop(path, None)
        self.whole[path] = (text, result)
        return result

    def _chunked(self, src: SourceFile):
        path, text = src.path, src.text
        old = self.chunks.get(path, {})
        new: dict[tuple[str, str, bool], list[_Chunk]] = {}
        b = P._BUILDER
        b.src, b.path = src, path
        bounds = P._segments(text) + [len(text)]
        items: list = []
        diags: list = []
        line = 1  # 1-based line where `begin` lies
        pos = 0
        failed = False
        prev_chunk = ""
        for begin, end in zip(bounds, bounds[1:]):
            line += text.count("\n", pos, begin)
            pos = begin
            chunk = text[begin:end]
            if not chunk.strip():
                prev_chunk = chunk
                continue
            dl = line - 1
            doc = _doc_above(prev_chunk.split("\n")[:-1][-50:]) if "///" in prev_chunk else ""
            prev_chunk = chunk
            key = (chunk, doc, end == len(text))  # a chunk cut short reads differently at the end of the file
            bucket = old.get(key)
            entry = bucket.pop() if bucket else None
            if entry is not None:
                self.stats["reused"] += 1
                if entry.dl != dl or entry.dp != begin:
                    ddl, ddp = dl - entry.dl, begin - entry.dp
                    entry.dl, entry.dp = dl, begin  # moves every RelSpan of the chunk
                    if entry.diag is not None:
                        entry.diag = _shift_diag(entry.diag, ddl, ddp)
            else:
                self.stats["parsed"] += 1
                b.dl, b.dp = dl, begin
                try:
                    kept, deep = check_depth(list(P._parse_tree(chunk)))  # as parse_module does
                    entry = _Chunk(kept, deep[0] if deep else None, dl, begin)  # (a chunk is one item)
                    _relative(entry.items, entry)
                except UnexpectedInput as e:
                    entry = _Chunk([], P._syntax_error(e, src, dl, begin, end), dl, begin)
            if entry.diag is not None:
                failed = True
                diags.append(entry.diag)
            items.extend(entry.items)
            new.setdefault(key, []).append(entry)
        self.chunks[path] = new
        if failed and len(text) < _FALLBACK_CHARS:
            return None
        return ast.Module(path, tuple(items), src.span(0, len(text))), diags + bidi_warnings(src)
