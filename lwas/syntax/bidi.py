"""Bidirectional control characters in source text: the "Trojan Source" class (CVE-2021-42574).

Characters such as U+202E RIGHT-TO-LEFT OVERRIDE are invisible and reorder how an editor or a
code review shows the rest of the line, so a comment or a text literal can hide code, or code
can look commented out, while the compiler reads something else. Outside comments and text
literals the lexer already refuses them (E0002). Inside, they are kept (the formatter never
removes them) and reported as warning W0105: one per comment or literal, the first character
as the primary span, each further one as a label, every one named by its code point.

`BIDI` is also what the diagnostic renderer replaces with U+FFFD when it prints a source line,
so that printing a warning does not reorder the terminal's line the same way.
"""
from __future__ import annotations

import re
import unicodedata

from lwas.syntax.diagnostics import Diagnostic, Label
from lwas.syntax.source import SourceFile, Span

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_ANY = re.compile(f"[{BIDI}]")
# a text literal or a comment on one line (the lexer's STRING, COMMENT and DOC_COMMENT)
_TOKEN = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"|//.*')
_HELP = ("remove them unless they are meant to be there: they change how the line is displayed, "
         "so it can read differently from what the compiler sees")


def describe(ch: str) -> str:
    """`U+202E` (RIGHT-TO-LEFT OVERRIDE)."""
    return f"`U+{ord(ch):04X}` ({unicodedata.name(ch, 'unnamed')})"


def bidi_warnings(src: SourceFile) -> list[Diagnostic]:
    """W0105 for each comment or text literal of `src` that holds a bidirectional control."""
    text = src.text
    first = _ANY.search(text)
    if first is None:
        return []
    groups: dict[tuple[int, int], list[tuple[int, str]]] = {}  # (line start, token start) -> hits
    kinds: dict[tuple[int, int], str] = {}
    line_cache: dict[int, list[tuple[int, int, str]]] = {}
    for m in _ANY.finditer(text, first.start()):
        at = m.start()
        begin = text.rfind("\n", 0, at) + 1
        tokens = line_cache.get(begin)
        if tokens is None:
            end = text.find("\n", at)
            line = text[begin:end if end >= 0 else len(text)]
            tokens = line_cache[begin] = [(t.start(), t.end(), _kind(t.group(0))) for t in _TOKEN.finditer(line)]
        col = at - begin
        for a, b, kind in tokens:
            if a <= col < b:
                groups.setdefault((begin, a), []).append((at, m.group(0)))
                kinds[(begin, a)] = kind
                break
    out = []
    for key, hits in groups.items():
        spans = [(_point(src, at), ch) for at, ch in hits]
        (span, ch), rest = spans[0], spans[1:]
        n = len(hits)
        what = "a bidirectional control character" if n == 1 else f"{n} bidirectional control characters"
        out.append(Diagnostic(
            "W0105", f"{what} in {kinds[key]}", span, "warning", label=describe(ch),
            labels=tuple(Label(s, describe(c)) for s, c in rest),
            notes=("bidirectional controls are invisible, and reorder how editors and code reviews show the line "
                   "(\"Trojan Source\", CVE-2021-42574)",),
            help=_HELP))
    return out


def _kind(token: str) -> str:
    if token.startswith("///"):
        return "a doc comment"
    return "a comment" if token.startswith("//") else "a text literal"


def _point(src: SourceFile, offset: int) -> Span:
    line, col = src.position(offset)
    return Span(src.path, line, col, line, col + 1, offset, offset + 1)
