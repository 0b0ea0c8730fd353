"""`lwasc repl`: an interactive session that compiles every entry to native code and runs it.

Design (see also `docs/`):

- The session is source text: the accumulated *items* (axioms, rules, fns, records, enums,
  consts, imports, tests) and a *prelude* of accumulated statements (`let`, `var`, assignments,
  loops, asserts). Each entry is compiled together with them as one fresh program and run
  natively, so a definition is visible to every later entry.
- Statements are kept by re-running the prelude: an expression or statement entry becomes the
  body of a generated function `__repl_main` that first runs every earlier statement, then the
  entry. The language is pure, so re-running is invisible except for its cost; `var`s can be
  reassigned by later entries (`x += 1`). Items cannot see `let` bindings (they are locals of
  `__repl_main`), exactly as functions cannot see a caller's locals.
- An expression entry is compiled twice: the front end alone to learn its type, then the whole
  pipeline with `fn __repl_main() -> T { ...; let __repl_value: T = EXPR; return __repl_value }`.
- Diagnostics and runtime faults are mapped back to the entry (`<repl-N>`, its own line numbers)
  by offset; positions in earlier entries point into `<session>`, the generated program.
- A failing entry (syntax, type, truth error, or a runtime fault) leaves the session unchanged.
"""
from __future__ import annotations

import bisect
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lwas.syntax.source import SourceFile, Span

SESSION = "<session>"
MAIN = "__repl_main"
VALUE = "__repl_value"

KEYWORDS = ("module import pub axiom requires contradicts const fn rule record enum test let var if else "
            "while for in return break continue assert match and or not true false extern").split()
BUILTINS = ("len float int truth text ramp clamp01 abs min max sqrt exp ln floor ceil minor currency "
            "from_minor scale micros at_micros").split()
TYPES = "int float bool truth money text time".split()
COMMANDS = {
    ":type": ":type EXPR     the type of an expression (nothing is run)",
    ":why": ":why AXIOM     its declared and effective truth, and the axioms that bound it",
    ":load": ":load FILE     add the items of a file to the session",
    ":reset": ":reset         forget every definition and statement",
    ":help": ":help          this text",
    ":quit": ":quit          leave (or Ctrl-D)",
}
HELP = ("Enter items (fn, rule, axiom, record, enum, const, import), statements (let, var, ...) or\n"
        "expressions; an expression prints `value : type`. Enter submits a complete entry; an\n"
        "unfinished one continues on the next line (Esc Enter, or two empty lines, submit anyway).\n"
        "Ctrl-C cancels the entry, Ctrl-D leaves.\n" + "\n".join(COMMANDS.values()))
_QUIET = {"W0101", "W0102", "W0103"}  # unused item/import/variable: noise in a session
_ITEM_WORD = re.compile(r"^\s*(?:///[^\n]*\n\s*)*(?:pub\s+)?(?:module|import|axiom|const|fn|rule|record|enum|test|"
                        r"service|extern)\b")


def stdlib_modules() -> list[str]:
    from lwas.syntax.source import default_stdlib_dir

    try:
        return sorted("std." + p.stem for p in Path(default_stdlib_dir()).glob("*.lwas"))
    except Exception:  # noqa: BLE001
        return []


# ---------------------------------------------------------------- classifying an entry

def is_item_entry(text: str) -> bool:
    return bool(_ITEM_WORD.match(text))


def _parse(text: str):
    from lwas.syntax.parse import parse_module

    return parse_module(SourceFile("<entry>", text))


def _stmt_wrap(text: str) -> tuple[str, int]:
    head = f"fn {MAIN}() {{\n"
    return head + text + "\n}\n", len(head)


def is_complete(text: str) -> bool:
    """Whether Enter should submit: a complete entry, or one whose error is not at its end.

    The parser says so structurally: a diagnostic with `end_of_input` means the input stopped
    before the item did (never a comparison with a message's wording). A statement entry is
    parsed inside a generated function, so there an E0001 at or after the entry's end (the
    generated closing `}` found where an expression was due) means the same.
    """
    body = text.strip()
    if not body or body.startswith(":"):
        return True
    if text.endswith("\n\n\n"):  # two empty lines submit anyway (the error is then shown)
        return True
    if is_item_entry(text):
        _, diags = _parse(text)
        return not any(d.end_of_input for d in diags)
    if _closes_too_much(text):
        return True
    wrapped, start = _stmt_wrap(text)
    _, diags = _parse(wrapped)
    end = start + len(text)
    for d in diags:
        if d.end_of_input or (d.code == "E0001" and d.span.start >= end):
            return False
    return True


def _closes_too_much(text: str) -> bool:
    """A closing bracket with no opener (outside text literals and comments): an error now."""
    depth = 0
    for line in text.split("\n"):
        line = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line).split("//", 1)[0]
        for ch in line:
            depth += ch in "([{"
            depth -= ch in ")]}"
            if depth < 0:
                return True
    return False


# ---------------------------------------------------------------- position mapping

@dataclass
class _Piece:
    start: int  # offset in the generated program
    length: int
    target: str | None  # the entry's file name, or None (generated glue)
    target_start: int = 0


@dataclass
class Program:
    """A generated program and how its offsets map back to the entry."""

    text: str = ""
    pieces: list[_Piece] = field(default_factory=list)

    def add(self, s: str, target: str | None = None, target_start: int = 0) -> None:
        self.pieces.append(_Piece(len(self.text), len(s), target, target_start))
        self.text += s


class Mapper:
    def __init__(self, prog: Program, entry: SourceFile):
        self.prog, self.entry = prog, entry
        self.session = SourceFile(SESSION, prog.text)
        self.first = next((p for p in prog.pieces if p.target), None)
        self.starts = [p.start for p in prog.pieces]

    def offset(self, o: int) -> tuple[str, int]:
        if self.first is None or o < self.first.start:
            return SESSION, o
        p = self.prog.pieces[max(0, bisect.bisect_right(self.starts, o) - 1)]
        if p.target is None:  # glue: the nearest end of the entry before it
            before = [q for q in self.prog.pieces if q.target and q.start <= o]
            q = before[-1] if before else self.first
            return q.target, q.target_start + q.length
        return p.target, p.target_start + min(o - p.start, p.length)

    def span(self, s: Span) -> Span:
        if s.file != SESSION:
            return s
        f, a = self.offset(s.start)
        g, b = self.offset(max(s.end, s.start))
        if f == SESSION:
            return s
        if g != f:
            b = a
        src = self.entry
        (l1, c1), (l2, c2) = src.position(a), src.position(b)
        return Span(f, l1, c1, l2, c2, a, b)

    def position(self, line: int, col: int) -> int:
        starts = self.session.line_starts()
        return starts[min(max(line, 1), len(starts)) - 1] + col - 1

    def diagnostic(self, d):
        from dataclasses import replace

        return replace(d, span=self.span(d.span), labels=tuple(replace(l, span=self.span(l.span)) for l in d.labels))

    @property
    def sources(self) -> dict:
        return {SESSION: self.session, self.entry.path: self.entry}


# ---------------------------------------------------------------- the session

def type_syntax(t, root: str) -> str:
    """A checked type written as LwaS source (money without its currency)."""
    from lwas.semantics.types import ArrayT, EnumT, MoneyT, RecordT

    if isinstance(t, MoneyT):
        return "money"
    if isinstance(t, ArrayT):
        return f"[{type_syntax(t.elem, root)}]"
    if isinstance(t, (RecordT, EnumT)):
        return t.name if t.module == root else f"{t.module.split('.')[-1]}.{t.name}"
    return str(t)


class Failed(Exception):
    """The entry did not compile or run; the message is already rendered."""


class Session:
    def __init__(self, colour: bool = False, stdlib_dir: Path | None = None, opt_level: int = 0):
        self.opt_level = opt_level  # -O0: an entry compiles ~4x faster, and runs once
        self.items: list[str] = []
        self.prelude: list[str] = []
        self.count = 0
        self.colour = colour
        self.stdlib_dir = stdlib_dir
        self.names: set[str] = set()
        self.timings: list[float] = []

    def reset(self) -> None:
        self.items.clear()
        self.prelude.clear()
        self.names.clear()

    # -- building programs

    def _base(self) -> Program:
        prog = Program()
        for it in self.items:
            prog.add(it.rstrip("\n") + "\n")
        return prog

    def _wrapper(self, prog: Program, ret: str | None) -> None:
        prog.add(f"fn {MAIN}()" + (f" -> {ret}" if ret else "") + " {\n")
        for s in self.prelude:
            prog.add(s.rstrip("\n") + "\n")

    def _compile(self, prog: Program, entry: SourceFile, full: bool):
        from lwas.syntax.diagnostics import render_all
        from lwas.driver import FRONT_END, Compilation, run

        c = Compilation(SourceFile(SESSION, prog.text), self.stdlib_dir, opt_level=self.opt_level)
        run(c, until="codegen" if full else FRONT_END)
        m = Mapper(prog, entry)
        shown = [m.diagnostic(d) for d in c.diagnostics
                 if d.is_error or (d.code not in _QUIET and d.span.file == SESSION
                                   and m.span(d.span).file == entry.path)]
        if not c.ok:
            sources = dict(c.sources)
            sources.update(m.sources)
            raise Failed(render_all(shown, sources, self.colour))
        warn = render_all(shown, {**c.sources, **m.sources}, self.colour) if shown else ""
        return c, m, warn

    def _run(self, c, m: Mapper):
        from lwas.errors import RuntimeError as LwasRuntimeError
        from lwas.runtime.native import NativeProgram

        program = NativeProgram.from_object(c.native.object_code, c.native.describe())
        try:
            return program.call(MAIN)
        except LwasRuntimeError as e:
            raise Failed(self._fault(e, m)) from None

    def _fault(self, e, m: Mapper) -> str:
        from lwas.syntax.diagnostics import Diagnostic, render
        from lwas.errors import KINDS

        pos = e.position
        if pos is None:
            return f"error: {e.message}"
        span = Span(pos.file, pos.line, pos.col, pos.end_line or pos.line, pos.end_col or pos.col + 1)
        sources = {}
        if pos.file == SESSION or pos.file.endswith(SESSION):
            a = m.position(span.line, span.col)
            b = m.position(span.end_line, span.end_col)
            span = m.span(Span(SESSION, span.line, span.col, span.end_line, span.end_col, a, b))
            sources = m.sources
        diag = Diagnostic("", e.message, span, label=KINDS.get(e.kind, e.kind))
        return render(diag, sources, self.colour)

    # -- entries

    def entry_name(self) -> str:
        self.count += 1
        return f"<repl-{self.count}>"

    def add_items(self, text: str, name: str | None = None) -> str:
        entry = SourceFile(name or self.entry_name(), text)
        prog = self._base()
        prog.add(text.rstrip("\n") + "\n", entry.path, 0)
        self._wrapper(prog, None)
        prog.add("}\n")
        c, _, warn = self._compile(prog, entry, full=True)
        self.items.append(text)
        tree, _ = _parse(text)
        new = [getattr(it, "name", None) for it in tree.items]
        new = [n if isinstance(n, str) else getattr(n, "text", None) for n in new]
        new = [n for n in new if n]
        for it in tree.items:
            alias = getattr(it, "alias", None) or getattr(it, "path", None)
            if alias is not None:
                txt = alias if isinstance(alias, str) else getattr(alias, "text", str(alias))
                new.append(txt.split(".")[-1])
        self.names.update(new)
        return warn

    def _split(self, text: str):
        """Statements of an entry and its trailing expression: (head, expr_start) or (text, None)."""
        from lwas.syntax import tree as ast

        wrapped, start = _stmt_wrap(text)
        tree, diags = _parse(wrapped)
        if diags or not tree.items:
            return None
        stmts = tree.items[0].body.stmts
        if stmts and isinstance(stmts[-1], ast.ExprStmt):
            return stmts, stmts[-1].span.start - start
        return stmts, None

    def _probe(self, text: str, entry: SourceFile):
        """Front end only: the type of the trailing expression (None: no expression)."""
        from lwas.syntax import tree as ast

        prog = self._base()
        self._wrapper(prog, None)
        prog.add(text.rstrip("\n"), entry.path, 0)
        prog.add("\n}\n")
        c, m, _ = self._compile(prog, entry, full=False)
        fn = next(it for it in c.program.root.tree.items if isinstance(it, ast.FnDecl) and it.name == MAIN)
        last = fn.body.stmts[-1] if fn.body.stmts else None
        if not isinstance(last, ast.ExprStmt):
            return None, c
        return c.checked.types.get(last.expr), c

    def type_of(self, text: str) -> str:
        entry = SourceFile(self.entry_name(), text)
        t, c = self._probe(text, entry)
        from lwas.semantics.types import UNIT

        if t is None or t == UNIT:
            return "unit" if t is not None else "(not an expression)"
        return type_syntax(t, c.program.root.name)

    def evaluate(self, text: str) -> str:
        """Run a statement or expression entry; the text to print (value : type, or "")."""
        from lwas.tools.runvalues import format_value
        from lwas.semantics.types import UNIT

        entry = SourceFile(self.entry_name(), text)
        t0 = time.perf_counter()
        t, c0 = self._probe(text, entry)
        split = self._split(text)
        expr_at = split[1] if split else None
        if t is None or t == UNIT or expr_at is None:
            prog = self._base()
            self._wrapper(prog, None)
            prog.add(text.rstrip("\n"), entry.path, 0)
            prog.add("\n}\n")
            c, m, warn = self._compile(prog, entry, full=True)
            self._run(c, m)
            self.timings.append(time.perf_counter() - t0)
            if t is None:  # statements only: kept for later entries
                self.prelude.append(text)
                self._note_lets(split[0] if split else ())
            return warn
        tname = type_syntax(t, c0.program.root.name)
        prog = self._base()
        self._wrapper(prog, tname)
        prog.add(text[:expr_at], entry.path, 0)
        prog.add(f"let {VALUE}: {tname} = ")
        prog.add(text[expr_at:].rstrip("\n"), entry.path, expr_at)
        prog.add(f"\nreturn {VALUE}\n}}\n")
        c, m, warn = self._compile(prog, entry, full=True)
        value = self._run(c, m)
        self.timings.append(time.perf_counter() - t0)
        if text[:expr_at].strip():  # `let y = 2; y * 3`: the statements stay
            self.prelude.append(text[:expr_at])
            self._note_lets(split[0][:-1])
        shown = format_value(value)
        from lwas.semantics.types import EnumT

        if isinstance(t, EnumT) and "." not in shown:
            shown = f"{t.name}.{shown}"
        return (warn + "\n" if warn else "") + f"{shown} : {tname}"

    def _note_lets(self, stmts) -> None:
        from lwas.syntax import tree as ast

        for s in stmts:
            if isinstance(s, ast.Let):
                self.names.add(s.name)

    def why(self, name: str) -> str:
        from lwas.driver import check_source
        from lwas.semantics.truth import _num

        c = check_source("".join(it.rstrip("\n") + "\n" for it in self.items), SESSION, self.stdlib_dir)
        if c.truth is None:
            return f"error: the session does not check"
        names = list(c.program.axiom_names)
        if name not in names:
            known = ", ".join(names) or "none"
            return f"error: no axiom `{name}` (axioms: {known})"
        tr = c.truth
        req = c.program.requires
        i = names.index(name)

        def shown(j: int) -> str:
            d = tr.declared[j]
            if d is None:
                return "no value"
            return _num(d[0]) if d[0] == d[1] else f"{_num(d[0])}..{_num(d[1])}"

        out = [f"axiom {name}",
               f"  declared:  {shown(i) if tr.declared[i] else 'none (holds its weakest premise)'}",
               f"  effective: {_num(tr.effective[i])}",
               f"  at most:   {_num(tr.upper[i])} (what it and its premises allow)"]
        # the chain that sets the effective value: through valueless axioms, the weakest premise
        chain, j, seen = [j_ for j_ in [i]], i, {i}
        while tr.declared[j] is None:
            prem = [d for d in req[j] if d >= 0 and d not in seen]
            if not prem:
                break
            j = min(prem, key=lambda d: tr.effective[d])
            seen.add(j)
            chain.append(j)
        out.append("  effective from: " + " -> ".join(f"{names[k]} ({shown(k)})" for k in chain))
        # the chain bounding it from above: premises whose bound is the axiom's bound
        bound, path, j, seen = tr.upper[i], [i], i, {i}
        while True:
            d = tr.declared[j]
            if d is not None and abs(d[1] - bound) < 1e-12:
                break
            nxt = [k for k in req[j] if k >= 0 and k not in seen and abs(tr.upper[k] - bound) < 1e-12]
            if not nxt:
                break
            j = nxt[0]
            seen.add(j)
            path.append(j)
        out.append("  bounded by:     " + " -> ".join(f"{names[k]} ({shown(k)})" for k in path))
        if req[i]:
            out.append("  requires:       " + ", ".join(names[k] for k in req[i] if k >= 0))
        if not tr.consistent:
            out.append("  note: the session's axioms are inconsistent (`:load` or redefine to fix)")
        return "\n".join(out)


# ---------------------------------------------------------------- the interactive loop

class Repl:
    def __init__(self, out=None, history: str | None = None, input=None, output=None, colour: bool | None = None):
        self.out = out or sys.stdout
        if colour is None:
            colour = bool(getattr(self.out, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
        self.session = Session(colour=colour)
        self.history_path = history or os.environ.get("LWAS_HISTORY") or str(Path.home() / ".lwas_history")
        self.input, self.output = input, output

    def say(self, text: str) -> None:
        if text:
            self.out.write(text.rstrip("\n") + "\n")
            self.out.flush()

    def handle(self, text: str) -> bool:
        """One submitted entry; False to leave."""
        body = text.strip()
        if not body:
            return True
        try:
            if body.startswith(":"):
                return self.command(body)
            if is_item_entry(text):
                self.say(self.session.add_items(text.strip("\n")))
            else:
                self.say(self.session.evaluate(text.strip("\n")))
        except Failed as f:
            self.say(str(f))
        return True

    def command(self, body: str) -> bool:
        cmd, _, arg = body.partition(" ")
        arg = arg.strip()
        matches = [c for c in COMMANDS if c.startswith(cmd)]
        if cmd in COMMANDS:
            matches = [cmd]
        if len(matches) != 1:
            self.say(f"error: unknown command `{cmd}`; commands: {', '.join(COMMANDS)}")
            return True
        cmd = matches[0]
        if cmd == ":quit":
            return False
        if cmd == ":help":
            self.say(HELP)
        elif cmd == ":reset":
            self.session.reset()
            self.say("session reset")
        elif cmd == ":type":
            if not arg:
                self.say("usage: :type EXPR")
            else:
                self.say(f"{arg} : {self.session.type_of(arg)}")
        elif cmd == ":why":
            self.say(self.session.why(arg) if arg else "usage: :why AXIOM")
        elif cmd == ":load":
            if not arg:
                self.say("usage: :load FILE")
                return True
            try:
                text = Path(arg).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                self.say(f"error: cannot read `{arg}`: {getattr(e, 'strerror', None) or e}")
                return True
            self.say(self.session.add_items(text, arg))
            self.say(f"loaded {arg}")
        return True

    # prompt_toolkit

    def completer(self):
        from prompt_toolkit.completion import Completer, Completion

        repl = self

        class _C(Completer):
            def get_completions(self, document, complete_event):
                line = document.current_line_before_cursor
                m = re.search(r"[A-Za-z_:][A-Za-z0-9_.]*$", line)
                word = m.group(0) if m else ""
                if re.match(r"^\s*import\s+", line):
                    pool = stdlib_modules()
                elif line.lstrip().startswith(":") and " " not in line.strip():
                    pool = list(COMMANDS)
                else:
                    pool = sorted(set(KEYWORDS) | set(BUILTINS) | set(TYPES) | repl.session.names)
                if not word:
                    return
                for w in pool:
                    if w.startswith(word) and w != word:
                        yield Completion(w, start_position=-len(word))

        return _C()

    def lexer(self):
        try:
            from prompt_toolkit.lexers import PygmentsLexer

            from lwas.syntax.highlight import LwasLexer  # written separately; optional
        except Exception:  # noqa: BLE001
            return None
        return PygmentsLexer(LwasLexer)

    def prompt_session(self):
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings

        kb = KeyBindings()

        @kb.add("enter")
        def _enter(event):
            buf = event.current_buffer
            if buf.document.is_cursor_at_the_end and is_complete(buf.text):
                buf.validate_and_handle()
            elif not buf.document.is_cursor_at_the_end and is_complete(buf.text) and "\n" not in buf.text:
                buf.validate_and_handle()
            else:
                buf.insert_text("\n")

        @kb.add("escape", "enter")
        def _force(event):
            event.current_buffer.validate_and_handle()

        try:
            history = FileHistory(self.history_path)
        except OSError:
            history = InMemoryHistory()
        return PromptSession(
            message="lwas> ", multiline=True, key_bindings=kb, history=history,
            completer=self.completer(), lexer=self.lexer(), complete_while_typing=False,
            prompt_continuation=lambda width, line, wrap: "  ... ".rjust(width),
            input=self.input, output=self.output)

    def loop(self) -> int:
        ps = self.prompt_session()
        while True:
            try:
                text = ps.prompt()
            except KeyboardInterrupt:
                continue  # Ctrl-C: cancel the entry
            except EOFError:
                return 0  # Ctrl-D
            if not self.handle(text):
                return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="lwasc repl", description="An interactive LwaS session (native code).")
    p.add_argument("--history", metavar="FILE", help="history file (default: $LWAS_HISTORY, else ~/.lwas_history)")
    p.add_argument("--load", metavar="FILE", action="append", default=[], help="load a file's items first")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    args = p.parse_args(argv)
    colour = {"always": True, "never": False}.get(args.color)
    repl = Repl(history=args.history, colour=colour)
    if sys.stdout.isatty():
        repl.say("LwaS REPL — :help for help, Ctrl-D to leave")
    for f in args.load:
        repl.handle(f":load {f}")
    return repl.loop()


if __name__ == "__main__":
    sys.exit(main())
