"""`lwasc fmt`: the one LwaS layout (gofmt-style: no options).

The formatter works on the compiler's own token stream, not on a second parser: the source is
parsed with the grammar in grammar/lwas.lark and the contextual lexer's tokens (including the
ignored ones: comments, doc comments, continuation newlines) are collected through Lark's lexer
callbacks. Only whitespace changes, so comments stay where they are and the syntax tree is the
same (tests/test_format.py checks both, and idempotence).

The style:
  * 2-space indentation: one level per open `{`, `(` or `[` on an earlier line; a line that
    continues a statement (after an operator, or starting with `requires`, `ensures`, `and`,
    `or`, `|`, `=>`, `->`, `.field`) is indented one level more than the statement's first line;
  * one space around binary operators, `=`, `->`, `=>`, `|` and after `,` and `:`; none inside
    `( )` and `[ ]`, before `,` `:` `;`, around `.` and `..`, after a unary `-`, before the `(`
    of a call or the `[` of an index; a block's `{ x }` padded, a map's `{k: v}` not, `{}` empty;
  * `{` on the same line as what it opens, `} else` on one line;
  * line breaks are the source's (no wrapping); at most one blank line in a row, none at the
    start or end of a block or file; a trailing comment two spaces after the code;
    no trailing whitespace; `\\n` line endings and a final newline;
  * no byte order mark: a UTF-8 BOM at the start of a file is accepted (lwas.syntax.source) and dropped,
    since UTF-8 needs none and one style means one byte sequence per program.

Hostile text: nothing but whitespace changes, so bidirectional control characters in comments
and text literals are kept; `lwasc fmt` prints their W0105 warnings (and any other warning of the
parser) on stderr and formats the file anyway. A file that is not UTF-8 is an error (E0005),
reported with its position; the file is left alone.
"""
from __future__ import annotations

import argparse
import difflib
import sys
import threading
from functools import lru_cache
from pathlib import Path

from lark import Lark
from lark.exceptions import UnexpectedInput

from lwas.syntax.diagnostics import render_all
from lwas.syntax.parse import _Newlines, _ENDS_STATEMENT, grammar_text, parse_text, parser
from lwas.syntax.source import BOM, SourceError, SourceFile, read_source

__all__ = ["FormatError", "format_source", "check", "main"]


class FormatError(Exception):
    """The text does not parse; `diagnostics` are the parser's, `rendered` their rustc-style text."""

    def __init__(self, path: str, diagnostics, rendered: str):
        super().__init__(rendered or f"{path}: cannot format: the file does not parse")
        self.path = path
        self.diagnostics = list(diagnostics)
        self.rendered = rendered


# ---------------------------------------------------------------- the token stream

class _Collector(threading.local):
    tokens: list | None = None

    def __call__(self, tok):
        if self.tokens is not None:
            self.tokens.append(tok)
        return tok


_COLLECT = _Collector()


@lru_cache(maxsize=None)
def _lark() -> Lark:
    """The compiler's grammar and post-lexer, with every token (ignored ones too) reported."""
    names = [t.name for t in parser().terminals]
    return Lark(grammar_text(), parser="lalr", lexer="contextual", postlex=_Newlines(),
                maybe_placeholders=True, cache=True, lexer_callbacks={n: _COLLECT for n in names})


def _tokens(text: str) -> list:
    _COLLECT.tokens = []
    try:
        _lark().parse(text)
        return _COLLECT.tokens
    finally:
        _COLLECT.tokens = None


# ---------------------------------------------------------------- layout

_COMMENTS = frozenset({"COMMENT", "DOC_COMMENT"})
_SPACE = frozenset({"WS", "_NL", "CONTINUATION"})
_OPEN = frozenset({"LPAR", "LSQB", "LBRACE"})
_CLOSE = frozenset({"RPAR", "RSQB", "RBRACE"})
_VALUE_END = frozenset({"NAME", "INT", "FLOAT", "MONEY", "STRING", "TRUE", "FALSE", "RPAR", "RSQB", "RBRACE"})
# a newline after one of these never continues the statement (block start, separators)
_NO_CONTINUE = frozenset({"LBRACE", "COMMA", "SEMI"})
_CONT_WORDS = frozenset({"requires", "ensures", "contradicts", "and", "or", "|", "=>", "->", "."})
# a `{` after one of these opens a map (a type `{K: V}` or a literal), not a block or a body
_MAP_BEFORE = frozenset({"COLON", "ARROW", "ASSIGN", "PLUS_ASSIGN", "MINUS_ASSIGN", "STAR_ASSIGN",
                         "SLASH_ASSIGN", "PERCENT_ASSIGN", "LPAR", "LSQB", "COMMA", "PLUS", "MINUS",
                         "STAR", "SLASH", "PERCENT", "EQ", "NE", "LT", "LE", "GT", "GE", "IN",
                         "RETURN", "AND", "OR", "NOT"})
_INDENT = "  "


def _lines(tokens: list) -> list[tuple[list, int]]:
    """Non-space tokens grouped by source line, each with the number of blank lines above it."""
    out: list[tuple[list, int]] = []
    last_line = 0
    for tok in tokens:
        if tok.type in _SPACE:
            continue
        if out and tok.line == last_line:
            out[-1][0].append(tok)
            continue
        blank = max(0, tok.line - last_line - 1) if out else 0
        out.append(([tok], blank))
        last_line = tok.line
    # `}` + `else` and a lone `{` join the line above (a continuation newline is a space)
    joined: list[tuple[list, int]] = []
    for toks, blank in out:
        if joined:
            above = joined[-1][0]
            if above[-1].type not in _COMMENTS and (
                    (toks[0].type == "ELSE" and above[-1].type == "RBRACE") or toks[0].type == "LBRACE"):
                above.extend(toks)
                continue
        joined.append((toks, blank))
    return joined


def _money(value: str) -> str:
    amount, currency = value.split()
    return f"{amount} {currency}"


def _text(tok) -> str:
    if tok.type == "MONEY":
        return _money(tok.value)
    if tok.type in _COMMENTS:
        return tok.value.rstrip()
    return tok.value


def _gap(a, b, a_unary: bool, maps: frozenset = frozenset()) -> str:
    """The space between two tokens on one line (maps: the ids of the braces of maps)."""
    ta, tb = a.type, b.type
    if tb in _COMMENTS:
        return "  "
    if ta == "LBRACE":
        return "" if tb == "RBRACE" or id(a) in maps else " "
    if tb == "RBRACE":
        return "" if id(b) in maps else " "
    if ta == "MINUS" and a_unary:
        return ""
    if ta in ("LPAR", "LSQB") or tb in ("RPAR", "RSQB"):
        return ""
    if tb in ("COMMA", "SEMI", "COLON"):
        return ""
    if ta in ("DOT", "DOTDOT") or tb in ("DOT", "DOTDOT"):
        return ""
    if tb == "LPAR":
        return "" if ta in ("NAME", "RPAR", "RSQB") else " "
    if tb == "LSQB":
        return "" if ta in ("NAME", "RPAR", "RSQB", "STRING") or id(a) in maps else " "
    return " "


def _layout(text: str) -> str:
    lines = _lines(_tokens(text))
    stack: list[tuple[str, int]] = []  # open brackets: (kind, level of the line they belong to)
    prev = None  # type of the last code token
    kept = True  # did the newline after the last code line end a statement?
    stmt = 0  # level of the current statement's first line
    out: list[str] = []
    opened = False  # the last line ends with an opening bracket
    maps: set[int] = set()  # ids of the `{` and `}` tokens of maps
    braces: list = []  # open `{`: is each a map's?
    last = None  # type of the last code token, across lines
    for toks, _ in lines:
        for tok in toks:
            if tok.type in _COMMENTS:
                continue
            if tok.type == "LBRACE":
                braces.append(last in _MAP_BEFORE)
                if braces[-1]:
                    maps.add(id(tok))
            elif tok.type == "RBRACE" and braces and braces.pop():
                maps.add(id(tok))
            last = tok.type
    maps = frozenset(maps)
    for toks, blank in lines:
        first = toks[0]
        code_line = first.type not in _COMMENTS
        in_braces = not stack or stack[-1][0] == "LBRACE"
        if code_line and first.type in _CLOSE and stack:
            level = stack[-1][1]
            if first.type == "RBRACE":
                stmt = level
        elif not in_braces:
            level = stack[-1][1] + 1
        else:
            container = stack[-1][1] + 1 if stack else 0
            continuation = prev is not None and first.type != "ELSE" and (
                (not kept and prev not in _NO_CONTINUE)
                or (code_line and first.value in _CONT_WORDS))
            level = stmt + 1 if continuation else container
            if code_line and not continuation:
                stmt = level
        # blank lines: at most one, none at the start of a block or before its end
        if blank and out and not opened \
                and not (code_line and first.type in _CLOSE):
            out.append("")
        parts = [_INDENT * level]
        # the code token before, for telling a unary `-` from a binary one
        sig = prev if (code_line and not kept) else None
        line_prev = None
        unary = False
        for i, tok in enumerate(toks):
            if i:
                parts.append(_gap(toks[i - 1], tok, unary, maps))
            parts.append(_text(tok))
            if tok.type in _COMMENTS:
                continue
            unary = tok.type == "MINUS" and sig not in _VALUE_END
            sig = line_prev = tok.type
            if tok.type in _OPEN:
                braces = not stack or stack[-1][0] == "LBRACE"
                stack.append((tok.type, stmt if tok.type == "LBRACE" and braces else level))
            elif tok.type in _CLOSE and stack:
                stack.pop()
        out.append("".join(parts).rstrip())
        opened = line_prev in _OPEN and (toks[-1].type in _OPEN or toks[-1].type in _COMMENTS)
        if line_prev is not None:
            prev = line_prev
            kept = prev == "SEMI" or (prev in _ENDS_STATEMENT and (not stack or stack[-1][0] == "LBRACE"))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n" if out else ""


# ---------------------------------------------------------------- API

def format_source(text: str, path: str = "<string>") -> str:
    """The formatted text. Raises FormatError (with rendered diagnostics) if it does not parse."""
    text = text.replace("\r\n", "\n").removeprefix(BOM)
    src = SourceFile(path, text)
    _, diags = parse_text(text, path)
    errors = [d for d in diags if d.is_error]
    if errors:
        raise FormatError(path, errors, render_all(errors, {path: src}))
    try:
        return _layout(text)
    except UnexpectedInput as e:  # the compiler's parser accepted it: should not happen
        raise FormatError(path, [], f"{path}: cannot format: {e}") from e


def check(paths) -> list[str]:
    """The files among `paths` whose formatting would change (FormatError if one does not parse)."""
    out = []
    for p in paths:
        text = read_source(str(p))
        if format_source(text, str(p)) != text:
            out.append(str(p))
    return out


def _warn(text: str, path: str) -> None:
    """Print the W0105 warnings: bidirectional controls, which formatting keeps."""
    from lwas.syntax.bidi import bidi_warnings

    src = SourceFile(path, text.replace("\r\n", "\n"))
    warnings = bidi_warnings(src)
    if warnings:
        print(render_all(warnings, {path: src}), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """`lwasc fmt [--check] [--diff] FILE...`: rewrite files in place, or check / show the diff."""
    ap = argparse.ArgumentParser(prog="lwasc fmt", description="Format LwaS source files.")
    ap.add_argument("--check", action="store_true", help="exit 1 and list the files that would change")
    ap.add_argument("--diff", action="store_true", help="print a unified diff instead of rewriting")
    ap.add_argument("files", nargs="+", metavar="FILE")
    args = ap.parse_args(argv)
    status = 0
    for name in args.files:
        path = Path(name)
        try:
            text = read_source(name)
        except SourceError as e:
            print(e.render(), file=sys.stderr)
            status = 1
            continue
        _warn(text, name)
        try:
            new = format_source(text, name)
        except FormatError as e:
            print(e.rendered, file=sys.stderr)
            status = 1
            continue
        if new == text:
            continue
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(keepends=True), new.splitlines(keepends=True),
                f"a/{name}", f"b/{name}"))
        if args.check:
            if not args.diff:
                print(name)
            status = 1
        elif not args.diff:
            path.write_text(new, encoding="utf-8")
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
