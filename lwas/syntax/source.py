"""Source files and spans: where every diagnostic points.

Source text is UTF-8. `read_source` decodes a file's bytes and refuses invalid UTF-8 with a
diagnostic (E0005: the file, the byte offset, a `help:`), never a traceback. A UTF-8 byte order
mark at the start of a file is accepted and is not part of the text (`SourceFile` drops it, as
rustc does), so line 1's columns and every offset are the same with or without it.
"""
from __future__ import annotations

import bisect
from pathlib import Path
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """A region of one source file. Lines and columns are 1-based; end is exclusive.

    Columns count Unicode code points (the LSP converts to UTF-16 itself).
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int = 0  # character offsets into the file's text
    end: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to(self, other: "Span") -> "Span":
        """The span from the start of self to the end of other."""
        return Span(self.file, self.line, self.col, other.end_line, other.end_col, self.start, other.end)


NO_SPAN = Span("<builtin>", 0, 0, 0, 0)
BOM = "\ufeff"


@dataclass(slots=True)
class SourceFile:
    path: str
    text: str
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.text.startswith(BOM):
            self.text = self.text[1:]

    def line_starts(self) -> list[int]:
        if not self._line_starts:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._line_starts = starts
        return self._line_starts

    def line_text(self, line: int) -> str:
        starts = self.line_starts()
        if not 1 <= line <= len(starts):
            return ""
        begin = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[begin:end].rstrip("\r")

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, col) of a character offset."""
        starts = self.line_starts()
        idx = bisect.bisect_right(starts, offset) - 1
        return idx + 1, offset - starts[idx] + 1

    def span(self, start: int, end: int) -> Span:
        line, col = self.position(start)
        end_line, end_col = self.position(end)
        return Span(self.path, line, col, end_line, end_col, start, end)


class SourceError(Exception):
    """A source file that cannot be read or is not UTF-8. `diagnostic` (for E0005) and
    `source` (its text, bad bytes replaced) render it like any error; `str()` is one line."""

    def __init__(self, message: str, diagnostic=None, source: "SourceFile | None" = None):
        super().__init__(message)
        self.diagnostic = diagnostic
        self.source = source

    def render(self, colour: bool = False) -> str:
        if self.diagnostic is None:
            return f"error: {self}"
        from lwas.syntax.diagnostics import render_all

        return render_all([self.diagnostic], {self.source.path: self.source}, colour)


def decode_source(data: bytes, path: str) -> str:
    """The text of a source file's bytes. Raises SourceError (E0005) if they are not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(data, path, e) from None


def read_source(path: str) -> str:
    """The text of the file at `path`. Raises SourceError if it cannot be read or decoded."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SourceError(f"cannot read `{path}`: {e.strerror or e}") from None
    return decode_source(data, path)


def _not_utf8(data: bytes, path: str, e: UnicodeDecodeError) -> SourceError:
    from lwas.syntax.diagnostics import Diagnostic

    at = e.start
    shown = " ".join(f"0x{b:02X}" for b in data[at:min(e.end, at + 4)])
    src = SourceFile(path, data.decode("utf-8", errors="replace"))
    bom = 1 if data.startswith(b"\xef\xbb\xbf") else 0
    offset = len(data[:at].decode("utf-8")) - bom  # characters before the bad byte
    line, col = src.position(offset)
    span = Span(path, line, col, line, col + 1, offset, offset + 1)
    message = f"`{path}` is not valid UTF-8: byte {shown} at byte offset {at}"
    diag = Diagnostic("E0005", message, span, label=f"invalid UTF-8 ({e.reason})",
                      help=f"LwaS source files are UTF-8: convert the file, e.g. "
                           f"`iconv -f LATIN1 -t UTF-8 {path}` if it is Latin-1")
    return SourceError(message, diag, src)


def default_stdlib_dir() -> Path:
    """The folder of the standard library's modules (`import std.NAME`), installed with lwas."""
    from importlib import resources

    return Path(str(resources.files("lwas.stdlib")))
