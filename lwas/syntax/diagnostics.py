"""Diagnostics: what the compiler tells people, rendered like rustc or as JSON lines."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping

from lwas.syntax.source import SourceFile, Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Label:
    span: Span
    message: str = ""
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A fix a tool may apply: replace `span` (empty: insert at it) with `replacement`.

    `message` says what it does, lower case like rustc ("add `import std.stats`"); an editor
    shows it as the quick fix's title. `applicability` is "machine" when applying it as it is
    is right (the program compiles past this error), else "maybe" (review it first).
    """

    span: Span
    replacement: str
    message: str
    applicability: Literal["machine", "maybe"] = "machine"

    def to_json(self) -> dict:
        return {**_span_json(self.span), "replacement": self.replacement, "message": self.message,
                "applicability": self.applicability}


def _span_json(s: Span) -> dict:
    return {"file": s.file, "line": s.line, "column": s.col, "end_line": s.end_line, "end_column": s.end_col}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    severity: Severity = "error"
    label: str = ""  # text under the primary caret
    labels: tuple[Label, ...] = ()  # secondary places (e.g. each axiom in a chain)
    notes: tuple[str, ...] = ()
    help: str | None = None
    end_of_input: bool = False  # the input stopped before the item did: more text may complete it
    suggestions: tuple[Suggestion, ...] = ()  # fixes a tool may apply (the LSP's quick fixes)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def all_labels(self) -> list[Label]:
        return [Label(self.span, self.label, True), *self.labels]

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            **_span_json(self.span),
            "labels": [{**_span_json(l.span), "message": l.message, "primary": l.primary}
                       for l in self.all_labels()],
            "notes": list(self.notes),
            "help": self.help,
            "end_of_input": self.end_of_input,
            "suggestions": [x.to_json() for x in self.suggestions],
        }


class Sink:
    """Collects diagnostics from every stage, in order."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def add(self, diag: Diagnostic) -> None:
        self.items.append(diag)

    def error(self, code: str, message: str, span: Span, *, suggestions: Iterable[Suggestion] = (), **kw) -> None:
        self.items.append(Diagnostic(code, message, span, "error", suggestions=tuple(suggestions), **kw))

    def warning(self, code: str, message: str, span: Span, *, suggestions: Iterable[Suggestion] = (), **kw) -> None:
        self.items.append(Diagnostic(code, message, span, "warning", suggestions=tuple(suggestions), **kw))

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)


def sort_key(d: Diagnostic):
    return (d.span.file, d.span.line, d.span.col, d.code)


# ---------------------------------------------------------------- rendering

_STYLES = {"error": "1;31", "warning": "1;33", "note": "1;36", "help": "1;32", "blue": "1;34", "bold": "1"}


def use_colour(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR") or os.environ.get("CLICOLOR_FORCE"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def render(diag: Diagnostic, sources: Mapping[str, SourceFile], colour: bool = False) -> str:
    """rustc-style text: header, --> location, source lines with carets, notes and help."""

    def paint(style: str, text: str) -> str:
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if colour else text

    labels = diag.all_labels()
    shown_lines = [l.span.line for l in labels if l.span.line > 0]
    width = len(str(max(shown_lines))) if shown_lines else 1
    pad = " " * width
    bar = paint("blue", "|")
    head = f"{diag.severity}[{diag.code}]" if diag.code else diag.severity  # runtime faults have no code
    out = [paint(diag.severity, head) + paint("bold", f": {diag.message}")]

    # group labels by file, primary file first, keeping the order labels were given
    files: list[str] = []
    for l in labels:
        if l.span.file not in files:
            files.append(l.span.file)
    for i, path in enumerate(files):
        group = [l for l in labels if l.span.file == path]
        first = group[0].span
        arrow = "-->" if i == 0 else ":::"
        out.append(f"{pad}{paint('blue', arrow)} {path}:{first.line}:{first.col}" if first.line else f"{pad}{paint('blue', arrow)} {path}")
        src = sources.get(path)
        if src is None or not first.line:
            for l in group:
                if l.message:
                    out.append(f"{pad} {paint('blue', '=')} {l.message}")
            continue
        out.append(f"{pad} {bar}")
        by_line: dict[int, list[Label]] = {}
        for l in group:
            by_line.setdefault(l.span.line, []).append(l)
        prev = None
        for line in sorted(by_line):
            if prev is not None and line > prev + 1:
                out.append(paint("blue", "..."))
            prev = line
            text, shift = _shown(src.line_text(line), by_line[line])
            out.append(f"{paint('blue', str(line).rjust(width))} {bar} {text}")
            for l in sorted(by_line[line], key=lambda l: l.span.col):
                start = l.span.col - shift
                end = l.span.end_col - shift if l.span.end_line == l.span.line else len(text) + 1
                end = min(end, len(text) + 1)
                n = max(1, end - start)
                mark = ("^" if l.primary else "-") * n
                style = diag.severity if l.primary else "blue"
                caret = " " * (start - 1) + mark + (" " + l.message if l.message else "")
                out.append(f"{pad} {bar} {paint(style, caret)}")
        out.append(f"{pad} {bar}")
    for note in diag.notes:
        out.append(f"{pad} {paint('blue', '=')} {paint('bold', 'note')}: {note}")
    if diag.help:
        out.append(f"{pad} {paint('blue', '=')} {paint('help', 'help')}: {diag.help}")
    return "\n".join(out)


# Bidirectional controls (lwas.syntax.bidi.BIDI) would reorder the printed line as they reorder the
# source: show them as U+FFFD, one column each like the character they replace.
_SAFE = str.maketrans({c: "\ufffd" for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"})
_WIDEST = 160  # longer source lines are cut around their labels


def _shown(line: str, labels: list[Label]) -> tuple[str, int]:
    """The source line as printed (tabs expanded, bidi controls replaced, a long line cut to a
    window around its labels, with `...` marks) and how many columns the cut removed."""
    text = line.expandtabs(4).translate(_SAFE)
    if len(text) <= _WIDEST:
        return text, 0
    lo = min(l.span.col for l in labels)
    begin = max(1, lo - 40)
    end = min(len(text) + 1, begin + _WIDEST)
    head = "..." if begin > 1 else ""
    tail = "..." if end <= len(text) else ""
    return head + text[begin - 1:end - 1] + tail, begin - 1 - len(head)


def render_all(diags: Iterable[Diagnostic], sources: Mapping[str, SourceFile], colour: bool = False) -> str:
    diags = list(diags)
    parts = [render(d, sources, colour) for d in diags]
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    summary = []
    if errors:
        summary.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        summary.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    if summary:
        parts.append(("error: could not compile: " if errors else "warning: ") + ", ".join(summary) + " emitted")
    return "\n\n".join(parts)


def to_json_lines(diags: Iterable[Diagnostic], sources: Mapping[str, SourceFile] | None = None) -> str:
    lines = []
    for d in diags:
        obj = d.to_json()
        if sources is not None:
            obj["rendered"] = render(d, sources, False)
        lines.append(json.dumps(obj, ensure_ascii=False))
    return "\n".join(lines)
