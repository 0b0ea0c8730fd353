"""The REPL (`lwas.tools.repl`), driven through prompt_toolkit's pipe input as a person types."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from lwas.tools.repl import Repl, is_complete, main

ENTER, CTRL_C, CTRL_D = "\r", "\x03", "\x04"


def drive(keys: str, tmp_path: Path, end: bool = True) -> tuple[str, int]:
    """Type `keys` into a real REPL session; what it printed and its exit status."""
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text(keys + (CTRL_D if end else ""))
        repl = Repl(out=out, history=str(tmp_path / "history"), input=inp, output=DummyOutput(), colour=False)
        rc = repl.loop()
    return out.getvalue(), rc


def lines(*entries: str) -> str:
    return "".join(e.replace("\n", ENTER) + ENTER for e in entries)


def test_expression_value_and_type(tmp_path):
    out, rc = drive(lines("40 + 2", "12.50 USD", "0.5 > 0.25", '"hi"'), tmp_path)
    assert rc == 0
    assert "42 : int" in out
    assert "12.50 USD : money" in out
    assert "true : bool" in out
    assert "hi : text" in out


def test_multiline_entry_and_definitions_accumulate(tmp_path):
    keys = lines("fn fib(n: int) -> int {", "if n < 2 {", "return n", "}", "return fib(n - 1) + fib(n - 2)", "}",
                 "record P { x: int; m: money }", "enum Light { Red, Green }", "const LIMIT: int = 7",
                 "fib(10) + LIMIT", "P(x: fib(5), m: 1.00 EUR)", "Light.Green")
    out, _ = drive(keys, tmp_path)
    assert "62 : int" in out
    assert "{x: 5, m: 1.00 EUR} : P" in out
    assert "Light.Green : Light" in out
    assert (tmp_path / "history").read_text().count("fib(10) + LIMIT") == 1


def test_statements_are_kept(tmp_path):
    out, _ = drive(lines("let x = 3", "var v = 1", "v += x", "v * 2", "let y = 2; y * x", "y + v"), tmp_path)
    assert "8 : int" in out and "6 : int" in out and "6 : int" in out.split("8 : int")[1]


def test_stdlib_import_and_completion_sources(tmp_path):
    out, _ = drive(lines("import std.stats", "stats.mean([1.0, 2.0, 6.0])"), tmp_path)
    assert "3.0 : float" in out


def test_diagnostic_uses_entry_lines_and_session_unchanged(tmp_path):
    out, _ = drive(lines("fn ok() -> int = 1", "fn bad(n: int) -> int {\nlet y = n\nreturn y + true\n}", "bad(1)", "ok()"),
                   tmp_path)
    assert "error[E0311]" in out
    assert "--> <repl-2>:3:8" in out  # the entry's own line numbers
    assert "3 | return y + true" in out
    assert "error[E0101]: cannot find `bad`" in out  # the failed entry left nothing behind
    assert "1 : int" in out


def test_runtime_fault_rendered_and_session_continues(tmp_path):
    out, _ = drive(lines("let z = 0", "10 / z", "let w = 1 / z", "z + 1"), tmp_path)
    assert "error: division by zero" in out
    assert "--> <repl-2>:1:1" in out
    assert "--> <repl-3>:1:9" in out
    assert "1 : int" in out  # `let w` faulted and was not kept, the session goes on


def test_ctrl_c_cancels_the_entry(tmp_path):
    out, _ = drive("fn half(" + ENTER + CTRL_C + lines("1 + 1"), tmp_path)
    assert "2 : int" in out
    assert "error" not in out


def test_ctrl_d_exits(tmp_path):
    out, rc = drive(CTRL_D, tmp_path, end=False)
    assert rc == 0 and out == ""


def test_commands(tmp_path):
    src = tmp_path / "ethics.lwas"
    src.write_text("axiom truth = 1.0\naxiom hope = 0.5..0.9 requires truth\naxiom care requires hope\n"
                   "fn twice(n: int) -> int = n * 2\n")
    keys = lines(":help", f":load {src}", ":type twice(2) > 3", ":why care", "twice(21)", ":why nobody",
                 ":reset", "twice(1)", ":quit", "1 + 1")
    out, rc = drive(keys, tmp_path, end=False)
    assert rc == 0
    assert ":type EXPR" in out  # help
    assert f"loaded {src}" in out
    assert "twice(2) > 3 : bool" in out
    assert "declared:  none (holds its weakest premise)" in out and "effective: 0.5" in out
    assert "care (no value) -> hope (0.5..0.9)" in out
    assert "42 : int" in out
    assert "no axiom `nobody`" in out
    assert "cannot find `twice`" in out  # after :reset
    assert "\n2 : int" not in out  # :quit left before `1 + 1`


def test_is_complete():
    assert not is_complete("fn f() {")
    assert not is_complete("1 +")
    assert not is_complete("let x =")
    assert not is_complete("fn f(n: int) -> int")
    assert is_complete("fn f() {\n}")
    assert is_complete("1 + 2")
    assert is_complete("axiom a = 0.5")
    assert is_complete("let x = 3 }")  # an error, not an unfinished entry
    assert is_complete(":help")


def test_is_complete_asks_the_diagnostic_kind_not_its_message():
    # the input ends before the item does (end_of_input), so the REPL waits
    assert not is_complete("import std.")
    assert not is_complete("fn f(x: int) -> int {\n  if x > 1 {")
    assert not is_complete("fn f() -> int = 1\nfn g(")  # the last item is the one cut short
    # an item cut short before another one starts is an error now, not a wait
    assert is_complete("import std.\nfn f() -> int = 1")


def test_an_unfinished_line_waits_for_the_next(tmp_path):
    out, _ = drive("import std." + ENTER + "stats" + ENTER + "stats.mean([2.0, 4.0])" + ENTER, tmp_path)
    assert "error" not in out
    assert "3.0 : float" in out


def test_tmux_end_to_end(tmp_path):
    tmux = shutil.which("tmux")
    assert tmux, "tmux is not installed: the end-to-end REPL test needs `tmux` (apt-get install tmux)"
    sock = str(tmp_path / "tmux.sock")
    env = {**os.environ, "LWAS_HISTORY": str(tmp_path / "hist"), "TERM": "xterm", "NO_COLOR": "1"}
    cmd = f"{sys.executable} -m lwas.tools.repl --color never"
    subprocess.run([tmux, "-S", sock, "new-session", "-d", "-x", "120", "-y", "40", cmd], check=True, env=env,
                   cwd=str(Path(__file__).resolve().parent.parent))

    def screen() -> str:
        return subprocess.run([tmux, "-S", sock, "capture-pane", "-p"], capture_output=True, text=True).stdout

    def wait_for(text: str, timeout: float = 20.0) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = screen()
            if text in s:
                return s
            time.sleep(0.1)
        raise AssertionError(f"`{text}` never appeared; screen:\n{screen()}")

    def send(*keys: str) -> None:
        subprocess.run([tmux, "-S", sock, "send-keys", *keys], check=True)

    try:
        wait_for("lwas>")
        send("fn sq(n: int) -> int {", "Enter")
        wait_for("...")
        send("return n * n", "Enter", "}", "Enter")
        send("sq(12)", "Enter")
        wait_for("144 : int")
        send("sq(1) + true", "Enter")
        wait_for("error[E0311]")
        send("C-d")
        deadline = time.time() + 10
        while time.time() < deadline and subprocess.run([tmux, "-S", sock, "has-session"],
                                                        capture_output=True).returncode == 0:
            time.sleep(0.1)
        assert subprocess.run([tmux, "-S", sock, "has-session"], capture_output=True).returncode != 0
    finally:
        subprocess.run([tmux, "-S", sock, "kill-server"], capture_output=True)


def test_completion_and_optional_highlighting(monkeypatch):
    import types

    from prompt_toolkit.document import Document
    from pygments.lexer import RegexLexer
    from pygments.token import Keyword

    repl = Repl(out=io.StringIO(), colour=False)
    repl.handle("fn fibonacci(n: int) -> int = n")
    done = lambda t: [c.text for c in repl.completer().get_completions(Document(t), None)]  # noqa: E731
    assert done("import std.st") == ["std.stats"]
    assert "fibonacci" in done("1 + fib")
    assert "while" in done("whi")
    assert done(":ty") == [":type"]

    class FakeLexer(RegexLexer):
        name = "LwaS"
        tokens = {"root": [(r"fn", Keyword)]}

    monkeypatch.setitem(sys.modules, "lwas.syntax.highlight", types.SimpleNamespace(LwasLexer=FakeLexer))
    assert repl.lexer() is not None
    monkeypatch.setitem(sys.modules, "lwas.syntax.highlight", None)  # not written yet: no highlighting
    assert repl.lexer() is None
