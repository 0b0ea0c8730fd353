"""Suggestions (fixes a tool may apply) for diagnostics the type checker reports.

Each helper takes what the emission site has at hand and returns the diagnostic's
`suggestions=`: a tuple, empty when there is no fix to offer. Spans are exact (offsets too), so
the JSON output and the language server can apply them without reading the message.
"""
from __future__ import annotations

import functools

from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Suggestion
from lwas.syntax.source import SourceFile, Span, default_stdlib_dir


@functools.cache
def stdlib_modules() -> frozenset[str]:
    """The names `import std.NAME` can load."""
    return frozenset(p.stem for p in default_stdlib_dir().glob("*.lwas"))


def missing_import(program, module, name: str) -> tuple[Suggestion, ...]:
    """E0101 on `stats.mean(xs)` without `import std.stats`: insert the import on the line after
    the module's last `import` (else after its `module` line, else at the top)."""
    src = program.sources.get(module.path)
    if src is None or name not in stdlib_modules():
        return ()
    after = 0  # 1-based line to insert after
    for it in module.tree.items:
        if isinstance(it, (ast.Import, ast.ModuleDecl)):
            after = it.span.end_line
    text = f"import std.{name}"
    starts = src.line_starts()
    if after < len(starts):
        at = _point(src, starts[after])
        text += "\n"
    else:  # the last line, without a newline at the end of the file
        at = _point(src, len(src.text))
        text = "\n" + text
    return (Suggestion(at, text, f"add `import std.{name}`"),)


def missing_arms(program, match: ast.Match, missing: list[str]) -> tuple[Suggestion, ...]:
    """E0305 on a `match` over an enum: an arm per uncovered variant, each giving the first arm's
    result for now (the program compiles again; the arm is there to be edited, hence "maybe").
    On one line (`match e { A => 1 }`) after the last arm; else one arm per line before the
    line of the closing brace, indented like the first arm."""
    src = program.sources.get(match.span.file)
    if src is None or not match.arms or not missing:
        return ()
    first, last = match.arms[0], match.arms[-1]
    body = src.text[first.body.span.start:first.body.span.end]
    if last.span.end_line == match.span.end_line:
        at = _point(src, last.span.end)
        new = "".join(f", {v} => {body}" for v in missing)
    else:
        lead = src.line_text(first.span.line)[:first.span.col - 1]
        indent = lead if not lead.strip() else " " * len(lead)
        at = _point(src, src.line_starts()[match.span.end_line - 1])
        new = "".join(f"{indent}{v} => {body}\n" for v in missing)
    names = ", ".join(f"`{v}`" for v in missing)
    return (Suggestion(at, new, f"add the missing arm{'s' if len(missing) > 1 else ''} {names}", "maybe"),)


def _point(src: SourceFile, offset: int) -> Span:
    """The empty span at a character offset: a suggestion there inserts."""
    return src.span(offset, offset)
