"""lwas.syntax.format: one layout; idempotent, tree-preserving, comment-preserving."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import ROOT
from lwas.syntax import tree as ast
from lwas.syntax.format import FormatError, check, format_source, main
from lwas.syntax.parse import parse_text

sys.path.insert(0, str(Path(__file__).parent))
from test_parse import _grammar_strategy  # noqa: E402  (the grammar-driven program generator)

REPO_FILES = sorted(p for d in ("examples", "stdlib", "services", "tests/data")
                    for p in (ROOT / d).rglob("*.lwas"))
_COMMENT = re.compile(r'//[^\n]*')


def shape(tree):
    """The tree without spans (lwas.syntax.tree.dump skips every Span and the module's path)."""
    return ast.dump(tree)


def comments(text: str) -> list[str]:
    """The comments of a program, in order (strings cannot hold `//` in these tests' inputs)."""
    out = []
    for line in text.splitlines():
        # skip `//` inside text literals
        code = re.sub(r'"([^"\\\n]|\\.)*"', '""', line)
        m = _COMMENT.search(code)
        if m:
            out.append(m.group(0).rstrip())
    return out


def assert_formats_well(text: str) -> str:
    tree, diags = parse_text(text)
    assert not diags
    out = format_source(text)
    assert format_source(out) == out, "formatting is not idempotent"
    again, diags = parse_text(out)
    assert not diags, out
    assert shape(again) == shape(tree), "formatting changed the syntax tree"
    assert comments(out) == comments(text), "formatting lost or moved a comment"
    assert out.endswith("\n") or out == ""
    assert "\n\n\n" not in out and not out.startswith("\n")
    assert all(line == line.rstrip() for line in out.splitlines())
    assert all((len(line) - len(line.lstrip(" "))) % 2 == 0 for line in out.splitlines())
    return out


# ---------------------------------------------------------------- the repository's programs

def test_repo_has_programs():
    assert len(REPO_FILES) >= 10


@pytest.mark.parametrize("path", REPO_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repo_programs(path):
    assert_formats_well(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", REPO_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_layout_does_not_depend_on_indentation_or_spacing(path):
    text = path.read_text(encoding="utf-8")
    flat = "\n".join(line.lstrip() for line in text.splitlines()) + "\n"
    assert format_source(flat) == format_source(text)
    tight = minify(text)
    assert shape(parse_text(tight)[0]) == shape(parse_text(text)[0])
    assert format_source(tight) == format_source(text)


def minify(text: str) -> str:
    """The same tokens and lines with no optional space (a space only between two words)."""
    from lwas.syntax import format as fmt

    out = []
    for toks, blank in fmt._lines(fmt._tokens(text)):
        line = ""
        for i, tok in enumerate(toks):
            v = fmt._text(tok)
            if i and ((re.match(r"\w", v) and re.search(r"\w$", line)) or tok.type in ("COMMENT", "DOC_COMMENT")
                      or (line.endswith("/") and v.startswith("/"))):
                line += " "
            line += v
        out.extend([""] * blank)
        out.append(line)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- grammar-generated programs

@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(_grammar_strategy())
def test_grammar_generated_programs(text):
    assume(not parse_text(text)[1])
    out = assert_formats_well(text)
    tight = minify(text)
    if not parse_text(tight)[1]:
        assert format_source(tight) == out


@st.composite
def commented(draw):
    """A repository program with comments added at line ends and as whole lines."""
    path = draw(st.sampled_from(REPO_FILES))
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        if draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(["// note", "/// doc?", "    // indented", ""])))
        if line.strip() and draw(st.integers(0, 4)) == 0 and "//" not in line:
            line += draw(st.sampled_from(["  // end", " //x", "\t// tab"]))
        out.append(line)
    return "\n".join(out) + "\n"


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(commented())
def test_repo_programs_with_comments_in_random_places(text):
    assume(not parse_text(text)[1])
    assert_formats_well(text)


# ---------------------------------------------------------------- the style

def test_spacing_and_indentation():
    src = ("pub fn f( x : int,y:[int] )->int{\nlet z=-x+3*( x-1 )\n    if z>0{\nreturn y[ 0 ]\n}\n"
           "return foo( a ,b : 2 )[0].bar+-(z)\n}\n")
    assert format_source(src) == (
        "pub fn f(x: int, y: [int]) -> int {\n"
        "  let z = -x + 3 * (x - 1)\n"
        "  if z > 0 {\n"
        "    return y[0]\n"
        "  }\n"
        "  return foo(a, b: 2)[0].bar + -(z)\n"
        "}\n")


def test_blank_lines_collapse_and_block_edges_are_trimmed():
    src = "\n\n// c\n\n\n\nfn f() {\n\n  x()\n\n\n  y()\n\n}\n\n\n\nconst A = 1\n\n\n"
    assert format_source(src) == "// c\n\nfn f() {\n  x()\n\n  y()\n}\n\nconst A = 1\n"


def test_else_joins_the_closing_brace_and_brace_joins_its_line():
    src = "fn f(x: int) {\n  if x > 0 {\n    a()\n  }\n  else\n  {\n    b()\n  }\n}\n"
    assert format_source(src) == "fn f(x: int) {\n  if x > 0 {\n    a()\n  } else {\n    b()\n  }\n}\n"
    # a comment after `}` keeps `else` on its own line (joining would comment it out)
    src = "fn f(x: int) {\n  if x > 0 {\n    a()\n  } // why\n        else {\n    b()\n  }\n}\n"
    assert format_source(src) == "fn f(x: int) {\n  if x > 0 {\n    a()\n  }  // why\n  else {\n    b()\n  }\n}\n"


def test_contracts_and_continuations():
    src = ("fn f(x: int) -> int\nrequires x > 0\n      ensures result >= 0 {\nlet y = x +\n1\n"
           "return y\n.abs\n}\n")
    assert format_source(src) == (
        "fn f(x: int) -> int\n  requires x > 0\n  ensures result >= 0 {\n  let y = x +\n    1\n"
        "  return y\n    .abs\n}\n")
    out = format_source("rule r(a: truth) -> truth\nensures result <= 1.0 = a\n   requires truth, hope\n")
    assert out == "rule r(a: truth) -> truth\n  ensures result <= 1.0 = a\n  requires truth, hope\n"


def test_multiline_calls_indent_one_level():
    src = "fn f() {\n  return T(a: 1,\n                b: 2,\n         c: [1,\n2])\n}\n"
    assert format_source(src) == "fn f() {\n  return T(a: 1,\n    b: 2,\n    c: [1,\n      2])\n}\n"
    src = "fn f() {\n  g(\n  1,\n  2,\n      )\n}\n"
    assert format_source(src) == "fn f() {\n  g(\n    1,\n    2,\n  )\n}\n"


def test_every_item_kind():
    src = """module  app.main
import std.money
/// Root.
axiom truth=1.0
pub axiom hope = 0.5 .. 0.9 requires truth   // interval
axiom care requires truth,hope contradicts hope
const MAX : money = 1_000_000.00   USD
const E = 1e5
rule ok( t : Tx )->truth = 0.9 requires truth
record Tx { id: text, amount: money in currency,currency: text }
enum Kind {
/// First.
A,
B
}
extern fn charge(amount: money, key: text) -> Charge = "stripe.create\\"x\\""
test "escapes \\n ok" {
assert f(1)==2, "msg"
for i in 0..n - 1 { continue }
for x in xs { break }
while true { v[i] += 1 }
let k = match c { A | B => "a\\tb", _ => { -1 } }
let m = match n {
1 | -2 => 3
"x" => true
_ => false
}
}
service pay {
ledger txs : Tx by id
state total: money = 0.00 USD
on txs( t ){ total += t.amount }
post "/tx"( t : Tx )->Tx signed "stripe" requires ok(t)>=0.9{
append txs( t )
return t
}
get "/n" -> int { return 1 }
every "10s" {
}
}
"""
    out = assert_formats_well(src)
    assert out == """module app.main
import std.money
/// Root.
axiom truth = 1.0
pub axiom hope = 0.5..0.9 requires truth  // interval
axiom care requires truth, hope contradicts hope
const MAX: money = 1_000_000.00 USD
const E = 1e5
rule ok(t: Tx) -> truth = 0.9 requires truth
record Tx { id: text, amount: money in currency, currency: text }
enum Kind {
  /// First.
  A,
  B
}
extern fn charge(amount: money, key: text) -> Charge = "stripe.create\\"x\\""
test "escapes \\n ok" {
  assert f(1) == 2, "msg"
  for i in 0..n - 1 { continue }
  for x in xs { break }
  while true { v[i] += 1 }
  let k = match c { A | B => "a\\tb", _ => { -1 } }
  let m = match n {
    1 | -2 => 3
    "x" => true
    _ => false
  }
}
service pay {
  ledger txs: Tx by id
  state total: money = 0.00 USD
  on txs(t) { total += t.amount }
  post "/tx" (t: Tx) -> Tx signed "stripe" requires ok(t) >= 0.9 {
    append txs(t)
    return t
  }
  get "/n" -> int { return 1 }
  every "10s" {
  }
}
"""


TRICKY = [
    # between items, end of line, inside blocks, inside services, before the closing brace
    "// a\n\n// b\nfn f() {}  // c\n// d\n",
    "fn f(x: int) -> int {  // opening\n  // first\n  let y = x  // end\n\n  // before return\n  return y\n  // last\n}\n",
    "service s {\n  // top\n  state n: int = 0  // state\n\n  // a route\n  get \"/\" -> int {\n    return n  // r\n  }\n  // bottom\n}\n",
    "fn f(x: int) {\n  if x > 0 {  // then\n    a()\n  }  // before else\n  else {\n    b()\n  }\n}\n",
    "fn f() -> int = g(1,  // one\n  2,  // two\n)\n",
    "fn f(x: int) -> int\n  requires x > 0  // positive\n  ensures result > 0 {  // grows\n  return x + 1\n}\n",
    "record R {\n  /// The id.\n  id: text  // key\n  // more\n  n: int\n}\n",
    "fn f(x: int) -> int = match x {\n  // zero\n  0 => 1  // one\n  _ => 2\n  // end\n}\n",
    "const a = 1 +  // plus\n  // between\n  2\n",
    "/// doc\n//// four slashes\nfn f() {}\n",
    "fn f() {\n  let s = \"// not a comment\"  // a comment\n}\n",
]


@pytest.mark.parametrize("src", TRICKY)
def test_comments_in_tricky_places(src):
    out = assert_formats_well(src)
    assert out == src  # these are already in the house style


def test_crlf_and_tabs():
    assert format_source("fn f() {\r\n\treturn 1\r\n}\r\n") == "fn f() {\n  return 1\n}\n"


def test_empty_and_comment_only():
    assert format_source("") == ""
    assert format_source("\n\n") == ""
    assert format_source("// only\n\n\n// comments   \n") == "// only\n\n// comments\n"


def test_parse_error_raises_with_rendered_diagnostics():
    with pytest.raises(FormatError) as e:
        format_source("fn f( {\n}\n", "bad.lwas")
    assert "bad.lwas:1" in e.value.rendered and "E0001" in e.value.rendered
    assert e.value.diagnostics


# ---------------------------------------------------------------- lwasc fmt

def test_main_check_diff_and_rewrite(tmp_path, capsys):
    good = tmp_path / "good.lwas"
    good.write_text("fn f() -> int = 1\n")
    ugly = tmp_path / "ugly.lwas"
    ugly.write_text("fn f()->int=1\n")
    bad = tmp_path / "bad.lwas"
    bad.write_text("fn f( {\n")

    assert check([good, ugly]) == [str(ugly)]
    assert main(["--check", str(good)]) == 0
    assert main(["--check", str(good), str(ugly)]) == 1
    assert capsys.readouterr().out.strip() == str(ugly)
    assert main(["--diff", str(ugly)]) == 0
    diff = capsys.readouterr().out
    assert "-fn f()->int=1" in diff and "+fn f() -> int = 1" in diff
    assert ugly.read_text() == "fn f()->int=1\n"  # --diff does not write
    assert main(["--check", "--diff", str(ugly)]) == 1
    assert main([str(ugly)]) == 0
    assert ugly.read_text() == "fn f() -> int = 1\n"

    assert main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert "E0001" in err and "bad.lwas" in err
    assert bad.read_text() == "fn f( {\n"  # untouched
    assert main([str(tmp_path / "missing.lwas")]) == 1


def test_nested_brackets_and_contract_continuations():
    src = ("fn f(x: int) -> int\n  requires g(\nx) {\nreturn 1\n}\nfn h(\na: int,\n) -> int\nrequires a > 0 {\n"
           "let y = foo(match a {\n1 => 2\n_ => 3\n}, [\n1,\n])\nreturn T(a: 1,\n  b: x(\nc))\n}\n")
    assert assert_formats_well(src) == (
        "fn f(x: int) -> int\n  requires g(\n    x) {\n  return 1\n}\nfn h(\n  a: int,\n) -> int\n"
        "  requires a > 0 {\n  let y = foo(match a {\n    1 => 2\n    _ => 3\n  }, [\n    1,\n  ])\n"
        "  return T(a: 1,\n    b: x(\n      c))\n}\n")


def test_blank_line_after_an_opening_brace_with_a_comment_is_dropped():
    src = "fn f() {  // c\n\n  x()\n}\n"
    assert format_source(src) == "fn f() {  // c\n  x()\n}\n"


def test_unary_and_binary_minus():
    src = "fn f(a: int) -> int {\n  let b = a-1\n  let c = - a\n  let d = foo(a\n-b)\n  return -(a) - -b\n}\n"
    assert format_source(src) == (
        "fn f(a: int) -> int {\n  let b = a - 1\n  let c = -a\n  let d = foo(a\n    - b)\n  return -(a) - -b\n}\n")
