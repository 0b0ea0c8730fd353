"""Hostile source text never makes `lwasc` fail with an internal error (issue 20).

Each case runs the real command line in a subprocess: deep nesting (compiled up to
lwas.syntax.nesting.MAX_DEPTH, refused with E0006 beyond it), files that are not UTF-8 (E0005), a
10 MB text literal (time and peak memory bounded: linear in the input), a UTF-8 byte order
mark, and bidirectional control characters (W0105, kept by `lwasc fmt`).

The contract checked everywhere: exit 0 or 1 (never 101, the internal-error code), no Python
traceback, and a diagnostic with a code when the input is refused.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lwas.driver import check_source
from lwas.syntax.nesting import MAX_DEPTH, call_deep
from lwas.syntax.parse import parse_text
from lwas.syntax.source import SourceFile

N = 10_000


def lwasc(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", XDG_CONFIG_HOME=str(cwd / "config"), XDG_CACHE_HOME=str(cwd / "cache"))
    return subprocess.run([sys.executable, "-m", "lwas", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_clean(r: subprocess.CompletedProcess, ok: set[int] = frozenset({0, 1})) -> str:
    out = r.stdout + r.stderr
    assert r.returncode in ok, out[-3000:]
    assert "Traceback" not in out and "internal compiler error" not in out, out[-3000:]
    return out


# ---------------------------------------------------------------- deep nesting

def parens(n: int) -> str:
    return "fn main() -> int = " + "(" * n + "1" + ")" * n + "\n"


def long_sum(n: int) -> str:
    return "fn main() -> int = " + " + ".join(["1"] * n) + "\n"


def nested_ifs(n: int) -> str:
    return ("fn main() -> int {\n  var x = 0\n" + "if x == 0 {\n" * n + "x = 1\n" + "}\n" * n
            + "  return x\n}\n")


def nested_arrays(n: int) -> str:
    return "fn main() -> int = len(" + "[" * n + "1" + "]" * n + ")\n"


def nested_calls(n: int) -> str:
    return "fn f(x: int) -> int = x\nfn main() -> int = " + "f(" * n + "1" + ")" * n + "\n"


def negations(n: int) -> str:
    return "fn main() -> bool = " + "not " * n + "true\n"


# (name, source, the value `main` returns); depths within MAX_DEPTH compile and run
ACCEPTED = [
    ("parens", parens(N), "1"),
    ("sum", long_sum(N), str(N)),
    ("ifs", nested_ifs(1_000), "1"),
    ("arrays", nested_arrays(N), "1"),
    ("calls", nested_calls(N // 2), "1"),  # a call and its argument: two levels each
    ("not", negations(N), "true"),
]
REFUSED = [
    ("sum", long_sum(10 * N)),
    ("ifs", nested_ifs(N)),
    ("arrays", nested_arrays(10 * N)),
    ("calls", nested_calls(N)),
]


@pytest.mark.parametrize("name,text,_", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_deep_input_checks_and_formats(name, text, _, tmp_path):
    (tmp_path / "deep.lwas").write_text(text)
    r = lwasc("check", "deep.lwas", cwd=tmp_path)
    assert_clean(r, {0})
    r = lwasc("fmt", "deep.lwas", cwd=tmp_path)
    assert_clean(r, {0})
    again = lwasc("check", "deep.lwas", cwd=tmp_path)  # still the same program after formatting
    assert_clean(again, {0})


# building deep array types is quadratic in the back end (lwas/backend/lower.py, lwas/backend/codegen.py):
# 10,000 levels take a minute there, so the native tests use 1,000
NATIVE = [a if a[0] != "arrays" else ("arrays", nested_arrays(1_000), "1") for a in ACCEPTED if a[0] != "parens"]


@pytest.mark.parametrize("name,text,value", NATIVE, ids=[a[0] for a in NATIVE])
def test_deep_input_builds_and_runs(name, text, value, tmp_path):
    (tmp_path / "deep.lwas").write_text(text)
    r = lwasc("run", "-O0", "deep.lwas", cwd=tmp_path)
    assert_clean(r, {0})
    assert r.stdout.strip() == value


@pytest.mark.parametrize("name,text", REFUSED, ids=[a[0] for a in REFUSED])
@pytest.mark.parametrize("command", ["check", "build", "run", "fmt"])
def test_too_deep_input_is_refused_with_e0006(name, text, command, tmp_path):
    (tmp_path / "deep.lwas").write_text(text)
    args = {"check": ["check"], "build": ["build", "-O0", "--emit", "obj", "-o", "deep.o"],
            "run": ["run", "-O0"], "fmt": ["fmt"]}[command]
    r = lwasc(*args, "deep.lwas", cwd=tmp_path)
    out = assert_clean(r, {1})
    assert "error[E0006]: nesting too deep" in out
    assert "help:" in out
    assert max(len(line) for line in out.splitlines()) < 400  # the long line is cut, not printed
    assert (tmp_path / "deep.lwas").read_text() == text  # fmt leaves a refused file alone


def test_the_limit_is_exact():
    """MAX_DEPTH levels are accepted, one more is refused; only that item is left out."""
    def refused(n: int) -> bool:
        return any(d.code == "E0006" for d in parse_text(long_sum(n))[1])

    first = next(n for n in range(MAX_DEPTH - 8, MAX_DEPTH + 8) if refused(n))
    assert not refused(first - 1)
    at = first - 1
    sum_of_depth = long_sum
    tree, diags = parse_text(sum_of_depth(at) + "fn other() -> int = 2\n")
    assert [d.code for d in diags] == [] and len(tree.items) == 2
    tree, diags = parse_text(sum_of_depth(at + 1) + "fn other() -> int = 2\n")
    assert [d.code for d in diags] == ["E0006"]
    assert [i.name for i in tree.items] == ["other"]


def test_every_stage_holds_max_depth_on_a_small_stack():
    """The margin behind lwas.syntax.nesting's constants: trees of MAX_DEPTH levels pass the whole
    pipeline (check, lower, codegen) with 32 MB of stack and 100,000 frames."""
    code = textwrap.dedent(f"""
        from lwas.syntax import nesting
        nesting.STACK_BYTES = 32 * 1024 * 1024
        nesting.RECURSION_LIMIT = 100_000
        from lwas.driver import compile_source
        text = "fn main(x: int) -> int = " + "-" * ({MAX_DEPTH} - 8) + "x\\n"
        c = compile_source(text, "neg.lwas", until="codegen", opt_level=0)
        assert c.ok, c.diagnostics
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_call_deep_restores_the_recursion_limit_and_reraises():
    before = sys.getrecursionlimit()
    assert call_deep(sys.getrecursionlimit) > before
    with pytest.raises(KeyError):
        call_deep(lambda: {}["missing"])
    assert sys.getrecursionlimit() == before


# ---------------------------------------------------------------- not UTF-8

@pytest.mark.parametrize("command", ["check", "build", "run", "fmt", "graph"])
def test_not_utf8_is_e0005_with_the_byte_offset(command, tmp_path):
    data = b"fn main() -> int = 1\n// caf\xe9\n"
    (tmp_path / "latin1.lwas").write_bytes(data)
    args = {"build": ["build", "-o", "x.art"], "run": ["run"], "check": ["check"], "fmt": ["fmt"],
            "graph": ["graph"]}[command]
    r = lwasc(*args, "latin1.lwas", cwd=tmp_path)
    out = assert_clean(r, {1})
    assert "error[E0005]: `latin1.lwas` is not valid UTF-8: byte 0xE9 at byte offset 27" in out
    assert "--> latin1.lwas:2:7" in out and "help:" in out
    assert (tmp_path / "latin1.lwas").read_bytes() == data


def test_not_utf8_as_json_and_in_an_imported_module(tmp_path):
    (tmp_path / "bad.lwas").write_bytes(b"\xff\n")
    (tmp_path / "main.lwas").write_text("import bad\nfn main() -> int = 1\n")
    r = lwasc("check", "--format", "json", "bad.lwas", cwd=tmp_path)
    assert_clean(r, {1})
    assert '"code": "E0005"' in r.stdout
    r = lwasc("check", "main.lwas", cwd=tmp_path)
    out = assert_clean(r, {1})
    assert "error[E0005]" in out and "bad.lwas:1:1" in out


# ---------------------------------------------------------------- a big text literal

@pytest.mark.parametrize("command", ["check", "fmt"])
def test_a_10mb_text_literal_is_linear_in_time_and_memory(command, tmp_path):
    """Before the fix: 10.8 s and 5.6 GB peak RSS for `check` (about 550 bytes per character)."""
    n = 10_000_000
    (tmp_path / "big.lwas").write_text('const S: text = "' + "a" * n + '"\nfn main() -> int = 1\n')
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child of a big
    # pytest process would report the parent's peak
    code = textwrap.dedent(f"""
        from lwas.tools.cli import main
        rc = main({[command, "big.lwas"]!r})
        hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        print(rc, hwm // 1024)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    rc, peak_mb = map(int, r.stdout.split())
    assert rc == 0
    assert peak_mb < 400, f"peak RSS {peak_mb} MB for a 10 MB literal"  # today: ~70 MB


def test_text_literal_pattern_is_the_same_language():
    """The grammar's linear STRING pattern accepts and rejects exactly what the one before it
    did (`"([^"\\\n]|\\.)*"`, which took ~550 bytes per character of a literal)."""
    import re

    from lwas.syntax.parse import grammar_text

    old = re.compile(r'"([^"\\\n]|\\.)*"')
    line = next(l for l in grammar_text().splitlines() if l.startswith("STRING:"))
    new = re.compile(line.split("/", 1)[1].rsplit("/", 1)[0])
    for s in ['""', '"a"', r'"a\"b"', r'"\\"', r'"\\\"', '"a\nb"', r'"\n\t"', r'"x\"', '"é\u202e"']:
        a, b = old.match(s), new.match(s)
        assert (a and a.group(0)) == (b and b.group(0)), s


# ---------------------------------------------------------------- BOM and bidi

def test_a_bom_is_accepted_and_dropped_by_fmt(tmp_path):
    (tmp_path / "bom.lwas").write_bytes(b"\xef\xbb\xbffn main() -> int = 1 + x\n")
    r = lwasc("check", "bom.lwas", cwd=tmp_path)
    out = assert_clean(r, {1})
    assert "--> bom.lwas:1:24" in out  # columns as if there were no BOM
    (tmp_path / "bom.lwas").write_bytes(b"\xef\xbb\xbffn main() -> int   = 1\n")
    assert_clean(lwasc("check", "bom.lwas", cwd=tmp_path), {0})
    assert_clean(lwasc("fmt", "bom.lwas", cwd=tmp_path), {0})
    assert (tmp_path / "bom.lwas").read_bytes() == b"fn main() -> int = 1\n"


TROJAN = ("fn is_admin() -> bool = false\n"
          "fn access() -> bool {\n"
          "  let role = \"user\u202e \u2066// admin\u2069 \u2066\"\n"
          "  return is_admin()  // \u202eok\u200f\n"
          "}\n")


def test_bidi_controls_warn_with_position_and_help():
    c = check_source(TROJAN, "t.lwas")
    warnings = [d for d in c.diagnostics if d.code == "W0105"]
    assert c.ok and len(warnings) == 2
    text, comment = warnings
    assert (text.span.line, text.span.col) == (3, 19) and "text literal" in text.message
    assert len(text.labels) == 3 and "U+202E" in text.label
    assert (comment.span.line, comment.span.col) == (4, 25) and "comment" in comment.message
    assert "U+200F" in comment.labels[0].message
    assert all(w.help and w.severity == "warning" for w in warnings)


@pytest.mark.parametrize("ch", "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
def test_every_bidi_control_is_reported(ch):
    _, diags = parse_text(f"// a{ch}b\nfn f() -> int = 1\n")
    assert [d.code for d in diags] == ["W0105"]
    assert (diags[0].span.line, diags[0].span.col) == (1, 5)


def test_bidi_outside_comments_and_text_is_an_error_naming_the_character():
    _, diags = parse_text("fn f() -> int = 1 \u202e\n")
    assert [d.code for d in diags] == ["E0002"]
    assert "U+202E" in diags[0].message


def test_fmt_keeps_bidi_controls_and_warns(tmp_path):
    (tmp_path / "t.lwas").write_text(TROJAN.replace("bool {", "bool   {"))
    r = lwasc("fmt", "t.lwas", cwd=tmp_path)
    out = assert_clean(r, {0})
    assert out.count("warning[W0105]") == 2
    assert "\u202e" not in out and "\ufffd" in out  # the terminal is not reordered
    assert (tmp_path / "t.lwas").read_text() == TROJAN


def test_rendering_never_prints_a_bidi_control():
    from lwas.syntax.diagnostics import render_all

    c = check_source(TROJAN + "fn g() -> int = \u202e1\n", "t.lwas")
    text = render_all(c.diagnostics, c.sources)
    assert not any(ch in text for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def test_source_file_drops_one_bom():
    assert SourceFile("a", "\ufeffx").text == "x"
    assert SourceFile("a", "\ufeff\ufeffx").text == "\ufeffx"
