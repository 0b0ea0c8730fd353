"""The parser: grammar health, newline rules, the syntax tree, and error recovery."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from helpers import ROOT
from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import render
from lwas.syntax.parse import parse_text, parser
from lwas.syntax.source import SourceFile


def items(text):
    module, diags = parse_text(text, "t.lwas")
    assert diags == [], [d.message for d in diags]
    return module.items


def errors(text):
    _, diags = parse_text(text, "t.lwas")
    return diags


def test_grammar_has_no_conflicts():
    # strict=True turns any shift/reduce or reduce/reduce conflict, and regex collisions, into errors
    parser(strict=True)


def test_every_terminal_is_named():
    names = [t.name for t in parser(strict=True).terminals]
    assert not [n for n in names if n.startswith("__")], names


def test_language_tour_parses_into_the_expected_items():
    module, diags = parse_text((ROOT / "examples/language_tour.lwas").read_text(), "tour.lwas")
    assert diags == []
    kinds = [type(i).__name__ for i in module.items]
    assert kinds[:5] == ["ModuleDecl", "AxiomDecl", "AxiomDecl", "AxiomDecl", "AxiomDecl"]
    names = {i.name for i in module.items if hasattr(i, "name") and isinstance(i.name, str)}
    assert {"truth", "care", "fib", "mean", "TxType", "Transaction", "healthy", "fibonacci"} <= names


def test_axiom_forms():
    truth, hope, care, order = items(
        "/// The root.\n/// Second line.\naxiom truth = 1.0\n"
        "axiom hope = 0.5..0.9 requires truth\n"
        "axiom care requires truth, hope\n"
        "pub axiom order = 0.7 requires truth contradicts hope, ethics.freedom\n")
    assert truth.doc == "The root.\nSecond line." and truth.value.lo == truth.value.hi == 1.0
    assert (hope.value.lo, hope.value.hi) == (0.5, 0.9) and not hope.value.is_point
    assert care.value is None and [q.text for q in care.requires] == ["truth", "hope"]
    assert order.public and [q.text for q in order.contradicts] == ["hope", "ethics.freedom"]
    assert (order.name_span.line, order.name_span.col) == (6, 11)


def test_rule_with_requires_continues_on_next_line():
    (rule,) = items("rule healthy(cpu: float, ram: float) -> truth =\n"
                    "  not overloaded(cpu) and\n  not ramp(ram, 75.0, 95.0)\n  requires integrity\n")
    assert isinstance(rule.body, ast.Binary) and rule.body.op == "and"
    assert isinstance(rule.body.left, ast.Unary) and rule.body.left.op == "not"
    assert [q.text for q in rule.requires] == ["integrity"]


def test_precedence_and_associativity():
    (fn,) = items("fn f(a: int, b: int, c: int) -> bool = a - b - c * 2 < a or not a == b and c > 0\n")
    body = fn.body
    assert body.op == "or"
    lt = body.left
    assert lt.op == "<" and lt.left.op == "-" and lt.left.left.op == "-"  # (a - b) - (c * 2)
    assert lt.left.right.op == "*"
    assert body.right.op == "and" and body.right.left.op == "not"


def test_newlines_end_statements_only_where_a_statement_can_end():
    (fn,) = items("fn f(x: int) -> int {\n  let y = x +\n    1\n  var z = f(\n    y,\n    2,\n  )\n"
                  "  z += y; z -= 1\n  if z > 1 {\n    return z\n  }\n  else if z < 0 {\n    return 0\n  }\n"
                  "  else {\n    return 1\n  }\n}\n")
    kinds = [type(s).__name__ for s in fn.body.stmts]
    assert kinds == ["Let", "Let", "Assign", "Assign", "If"]
    if_ = fn.body.stmts[-1]
    assert isinstance(if_.orelse, ast.If) and isinstance(if_.orelse.orelse, ast.Block)


def test_literals():
    (c1, c2, c3, c4, c5) = items('const A: money = 1_000_000.00 USD\nconst B: money = 500 JPY\n'
                                 'const C: int = -9_223_372_036_854_775_808\nconst D: float = 1.5e-3\n'
                                 'const E: text = "a\\"b\\n"\n')
    assert (c1.value.amount, c1.value.currency) == ("1000000.00", "USD")
    assert (c2.value.amount, c2.value.currency) == ("500", "JPY")
    assert c3.value.value == -(2**63)
    assert c4.value.value == 0.0015
    assert c5.value.value == 'a"b\n'


def test_ranges_are_not_floats():
    (fn,) = items("fn f(n: int) {\n  for i in 0..n {\n  }\n}\n")
    loop = fn.body.stmts[0]
    assert isinstance(loop, ast.ForRange) and loop.start.value == 0 and loop.end.name == "n"


def test_match_records_enums_and_named_args():
    enum, rec, fn, mk = items(
        "enum TxType { Payment, Refund,\n  Expense\n  Revenue }\n"
        "record P {\n  x: float\n  ys: [float],\n}\n"
        "fn s(t: TxType) -> int = match t {\n  Payment | TxType.Revenue => 1\n  _ => {\n    return 2\n  }\n}\n"
        "fn mk() -> P = P(x: 1.0, ys: [1.0, 2.0])\n")
    assert [v.name for v in enum.variants] == ["Payment", "Refund", "Expense", "Revenue"]
    assert [f.name for f in rec.fields] == ["x", "ys"] and isinstance(rec.fields[1].type, ast.ArrayType)
    m = fn.body
    assert isinstance(m, ast.Match) and len(m.arms) == 2
    assert [p.name.text for p in m.arms[0].patterns] == ["Payment", "TxType.Revenue"]
    assert isinstance(m.arms[1].patterns[0], ast.WildcardPat) and isinstance(m.arms[1].body, ast.Block)
    call = mk.body
    assert [a.name for a in call.args] == ["x", "ys"]


def test_keywords_are_whole_words():
    names = items("fn modules(iffy: int) -> int = iffy\n")
    assert names[0].name == "modules"
    assert errors("moduleA\n")[0].code == "E0001"


# ---------------------------------------------------------------- errors and recovery

BROKEN = """axiom a = 0.5
fn f(x) -> int = 1

fn g(x: int) -> int {
  if x = 1 {
    return 1
  }
  return 0
}
axiom b = high
rule r(c: float) -> truth = c > 1.0
fn h() -> int {
  let s = "abc
  return 1
}
fn k() -> int {
  return (1 +
"""


def test_each_broken_item_reports_one_error_and_good_items_survive():
    module, diags = parse_text(BROKEN, "bad.lwas")
    assert [(d.code, d.span.line) for d in diags] == [
        ("E0001", 2), ("E0001", 5), ("E0001", 10), ("E0003", 13), ("E0001", 17)]
    assert [i.name for i in module.items] == ["a", "r"]


def test_friendly_messages_for_common_mistakes():
    diags = {d.span.line: d for d in parse_text(BROKEN, "bad.lwas")[1]}
    assert diags[2].message == "a parameter needs a type"
    assert diags[5].message == "`=` is assignment; compare with `==`"
    assert diags[10].message.startswith("an axiom's truth value is a number")
    assert diags[17].message == "unexpected end of file"


def test_rendered_syntax_error_looks_like_rustc():
    src = "fn f(x: int) -> int {\n  if x = 1 {\n    return 1\n  }\n  return 0\n}\n"
    (d,) = errors(src)
    text = render(d, {"t.lwas": SourceFile("t.lwas", src)})
    assert text.splitlines() == [
        "error[E0001]: `=` is assignment; compare with `==`",
        " --> t.lwas:2:8",
        "  |",
        "2 |   if x = 1 {",
        "  |        ^ " + d.label,
        "  |",
        "  = help: for example: `if x == 1 {`",
    ]


def test_a_line_ending_early_mid_file_is_not_the_end_of_the_file():
    src = "import std.\nimport std.stats\n\nfn f() -> int = 1\n"
    (d,) = errors(src)
    assert not d.end_of_input and d.message != "unexpected end of file"
    assert (d.code, d.message) == ("E0001", "expected a module name after `std.`")
    assert (d.span.line, d.span.col) == (1, 12)  # just after `std.`, where the name is missing
    (found,) = d.labels  # the real token: the next item's keyword
    assert (found.span.line, found.span.col, found.span.end_col) == (2, 1, 7)
    assert "std.stats" in d.help and "std.money" in d.help
    text = render(d, {"t.lwas": SourceFile("t.lwas", src)})
    assert text.splitlines() == [
        "error[E0001]: expected a module name after `std.`",
        " --> t.lwas:1:12",
        "  |",
        "1 | import std.",
        "  |            ^ expected a name",
        "2 | import std.stats",
        "  | ------ found `import`: the next item starts here",
        "  |",
        "  = help: " + d.help,
    ]


def test_an_unclosed_block_mid_file_points_at_its_brace_not_at_the_end_of_the_file():
    src = "fn f() -> int {\n  let x = 1 // one\n\nfn g() -> int = 2\n"
    (d,) = errors(src)
    assert not d.end_of_input
    assert d.message == "unclosed `{`"
    assert (d.span.line, d.span.col) == (2, 12)  # after `1`, before the comment
    opener, found = d.labels
    assert (opener.span.line, opener.span.col, opener.message) == (1, 15, "this `{` is never closed")
    assert (found.span.line, found.span.col) == (4, 1)


def test_a_mid_file_early_end_without_a_name_missing_is_an_unexpected_end_of_line():
    (d,) = errors("fn f(x: int) -> int =\n\nfn g() -> int = 2\n")
    assert d.message == "unexpected end of line" and (d.span.line, d.span.col) == (1, 22)
    assert d.labels[0].span.line == 3


@pytest.mark.parametrize("src, at", [
    ("import std.", (1, 12)),
    ("import std.\n\n// nothing more\n", (1, 12)),
    ("fn f() -> int {\n  return 1\n", (2, 11)),
    ("fn f() -> int = 1\nfn g(", (2, 6)),
])
def test_the_real_end_of_the_input_is_still_the_end_of_the_file(src, at):
    (d,) = errors(src)
    assert d.end_of_input and d.code == "E0001"
    assert d.message == "unexpected end of file"
    assert (d.span.line, d.span.col) == at


def test_expected_tokens_are_the_parsers_not_the_lexers():
    # the contextual lexer lexes a newline everywhere; the parser did not expect one here
    (d,) = errors("fn f(x) -> int = 1\n")
    assert d.label == "expected `:`, found `)`"


@pytest.mark.parametrize("src, code, hint", [
    ("fn f() -> bool = a && b\n", "E0002", "and"),
    ("fn f() -> bool = a || b\n", "E0001", "or"),
    ("# comment\n", "E0002", "//"),
    ("const T: text = 'x'\n", "E0002", "double quotes"),
])
def test_foreign_syntax_gets_a_hint(src, code, hint):
    (d,) = errors(src)
    assert d.code == code and hint in d.help


# ---------------------------------------------------------------- robustness (properties)

@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_arbitrary_text_never_raises(text):
    module, diags = parse_text(text)
    assert all(d.code.startswith("E") for d in diags)


_WORD = re.compile(r"([a-z]+)\(\?!\[A-Za-z0-9_\]\)")


def _grammar_strategy():
    p = parser(strict=True)
    explicit = {"_NL": st.sampled_from(["\n", "\n\n", ";"]),
                "NAME": st.from_regex(r"\A[a-z][a-z0-9_]{0,5}\Z").map(lambda s: f" {s}_ "),
                "MONEY": st.sampled_from([" 1.00 USD ", " 500 JPY ", " 1.999 USD "]),
                "CONTINUATION": st.just(" "), "WS": st.just(" "), "COMMENT": st.just(" // c\n"),
                "DOC_COMMENT": st.just("/// d\n")}
    for t in p.terminals:
        m = _WORD.fullmatch(getattr(t.pattern, "value", ""))
        if m:
            explicit[t.name] = st.just(f" {m.group(1)} ")
    return from_lark(p, explicit=explicit)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_grammar_strategy())
def test_grammar_generated_programs_never_crash_the_checker(text):
    import lwas

    diags = lwas.check(text)
    assert all(d.severity in ("error", "warning") for d in diags)


def test_recovered_items_keep_their_doc_comments_and_positions():
    module, diags = parse_text("fn broken( {\n}\n/// Kept.\naxiom a = 0.5\n", "t.lwas")
    assert [d.code for d in diags] == ["E0001"]
    (a,) = module.items
    assert a.doc == "Kept." and (a.name_span.line, a.name_span.col) == (4, 7)


def test_dump_ignores_layout_only():
    a, _ = parse_text("fn f(x: int) -> int = x + 1\n", "a.lwas")
    b, _ = parse_text("fn f( x : int )->int =\n  x +\n  1\n", "b.lwas")
    c, _ = parse_text("fn f(x: int) -> int = x + 2\n", "a.lwas")
    assert ast.dump(a) == ast.dump(b) != ast.dump(c)
