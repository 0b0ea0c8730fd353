"""Diagnostics carry structured suggestions (lwas.syntax.diagnostics.Suggestion): an exact span
to replace (empty: insert there) and the new text. `lwasc check --format json` prints them;
applying them as a tool would (1-based lines, code-point columns) fixes the program."""
from __future__ import annotations

import json

import pytest

from lwas.syntax.diagnostics import Diagnostic, Sink, Suggestion, render
from lwas.syntax.source import SourceFile, Span
from lwas.tools.cli import main


@pytest.fixture
def check(tmp_path, capsys):
    """check(text) -> (exit code, the JSON objects `lwasc check --format json` printed)."""

    def run(text: str, name: str = "prog.lwas"):
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        code = main(["check", "--format", "json", str(p)])
        out = capsys.readouterr().out
        return code, [json.loads(l) for l in out.splitlines() if l.strip()]

    return run


def apply(text: str, suggestions: list[dict]) -> str:
    """text with the JSON suggestions applied, the last first (their positions are all in `text`)."""
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    off = lambda line, col: starts[line - 1] + col - 1  # noqa: E731
    for s in sorted(suggestions, key=lambda s: (s["line"], s["column"]), reverse=True):
        text = text[:off(s["line"], s["column"])] + s["replacement"] + text[off(s["end_line"], s["end_column"]):]
    return text


def fixed(check, text: str, rounds: int = 5) -> str:
    """Apply every suggestion, check again, until the program compiles (or fail)."""
    for _ in range(rounds):
        code, diags = check(text)
        if code == 0:
            return text
        suggestions = [s for d in diags for s in d["suggestions"]]
        assert suggestions, [d["message"] for d in diags]
        text = apply(text, suggestions)
    raise AssertionError(f"still failing after {rounds} rounds:\n{text}")


def only(diags: list[dict], code: str) -> dict:
    (d,) = [d for d in diags if d["code"] == code]
    return d


# ---------------------------------------------------------------- the data

def test_suggestion_is_data_in_the_sink_and_the_json():
    span = Span("p.lwas", 2, 5, 2, 8, 14, 17)
    sink = Sink()
    sink.error("E0203", "too sure", span, suggestions=[Suggestion(span, "0.4", "lower it")])
    sink.warning("W0101", "unused", span)
    err, warn = sink.items
    assert err.suggestions == (Suggestion(span, "0.4", "lower it", "machine"),)
    assert warn.suggestions == ()
    assert err.to_json()["suggestions"] == [{"file": "p.lwas", "line": 2, "column": 5, "end_line": 2,
                                             "end_column": 8, "replacement": "0.4", "message": "lower it",
                                             "applicability": "machine"}]
    assert warn.to_json()["suggestions"] == []


def test_the_text_rendering_does_not_change():
    src = SourceFile("p.lwas", "axiom a = 1.0\naxiom b = 0.6 requires a\n")
    span = Span("p.lwas", 2, 11, 2, 14, 24, 27)
    plain = Diagnostic("E0203", "too sure", span, label="here", help="lower it")
    with_fix = Diagnostic("E0203", "too sure", span, label="here", help="lower it",
                          suggestions=(Suggestion(span, "0.4", "lower `b` to 0.4"),))
    assert render(with_fix, {"p.lwas": src}) == render(plain, {"p.lwas": src})


# ---------------------------------------------------------------- E0203: lower the axiom (truth.py)

CHAIN = """\
axiom truth = 1.0
axiom decree = 0.4 requires truth
axiom law = 0.6 requires decree
axiom justice = 0.9 requires law, truth
"""


def test_e0203_suggests_lowering_the_axiom_to_what_its_premises_allow(check):
    code, diags = check(CHAIN)
    assert code == 1 and [d["code"] for d in diags] == ["E0203", "E0203"]
    (law,) = diags[0]["suggestions"]
    assert law["message"] == "lower `law` to 0.4 (what its premises allow)"
    assert law["applicability"] == "machine" and law["replacement"] == "0.4"
    assert (law["line"], law["column"], law["end_line"], law["end_column"]) == (3, 13, 3, 16)  # `0.6`
    once = apply(CHAIN, [law])
    assert "axiom law = 0.4 requires decree" in once
    code, diags = check(once)
    assert [d["message"] for d in diags] == [
        "axiom `justice` (0.9) is more certain than its premises allow (at most 0.4)"]
    assert fixed(check, CHAIN) == CHAIN.replace("0.6", "0.4").replace("0.9", "0.4")


def test_e0203_on_an_interval_lowers_its_lower_end(check):
    text = "axiom base = 0.3\naxiom hope = 0.5..0.9 requires base\n"
    code, diags = check(text)
    (s,) = only(diags, "E0203")["suggestions"]
    assert s["replacement"] == "0.3..0.9" and s["message"] == "lower `hope` to 0.3..0.9 (what its premises allow)"
    assert fixed(check, text) == "axiom base = 0.3\naxiom hope = 0.3..0.9 requires base\n"


def test_other_diagnostics_carry_no_suggestion(check):
    code, diags = check("axiom a = 1.5\n")
    assert code == 1 and [d["suggestions"] for d in diags] == [[]]


# ---------------------------------------------------------------- E0101: import the module (type checker)

USES_STATS = "fn avg(xs: [float]) -> float = stats.mean(xs)\n"


def test_e0101_suggests_the_missing_std_import_after_the_imports(check):
    text = "module demo\nimport std.time\n\n" + USES_STATS + "fn soon() -> int = time.seconds(1)\n"
    code, diags = check(text)
    (s,) = only(diags, "E0101")["suggestions"]
    assert s["message"] == "add `import std.stats`" and s["applicability"] == "machine"
    assert s["replacement"] == "import std.stats\n"
    assert (s["line"], s["column"], s["end_line"], s["end_column"]) == (3, 1, 3, 1)  # an insertion
    assert fixed(check, text).splitlines()[:3] == ["module demo", "import std.time", "import std.stats"]


def test_e0101_import_goes_at_the_top_without_imports(check):
    code, diags = check(USES_STATS)
    (s,) = only(diags, "E0101")["suggestions"]
    assert (s["line"], s["column"]) == (1, 1)
    assert fixed(check, USES_STATS) == "import std.stats\n" + USES_STATS


def test_e0101_suggests_nothing_for_a_name_that_is_no_module(check):
    code, diags = check("fn f() -> int = nope\n")
    assert only(diags, "E0101")["suggestions"] == []


# ---------------------------------------------------------------- E0305: add the arms (type checker)

LIGHT = "enum Light { Red, Amber, Green }\n\n"


def test_e0305_adds_the_missing_arms_one_per_line(check):
    text = LIGHT + "fn go(l: Light) -> int = match l {\n  Red => 0\n}\n"
    code, diags = check(text)
    (s,) = only(diags, "E0305")["suggestions"]
    assert s["message"] == "add the missing arms `Amber`, `Green`"
    assert s["applicability"] == "maybe"  # each arm copies the first arm's result, to be edited
    assert s["replacement"] == "  Amber => 0\n  Green => 0\n"
    assert (s["line"], s["column"], s["end_line"], s["end_column"]) == (5, 1, 5, 1)  # before the `}` line
    assert "  Red => 0\n  Amber => 0\n  Green => 0\n}" in fixed(check, text)


def test_e0305_on_one_line_and_with_tabs(check):
    one = LIGHT + "fn wait(l: Light) -> int = match l { Red => 2 }\n"
    (s,) = only(check(one)[1], "E0305")["suggestions"]
    assert s["replacement"] == ", Amber => 2, Green => 2"
    assert "match l { Red => 2, Amber => 2, Green => 2 }" in fixed(check, one)
    tabs = LIGHT + "fn go(l: Light) -> int = match l {\n\tRed => 0\n\tAmber => 1\n}\n"
    (s,) = only(check(tabs)[1], "E0305")["suggestions"]
    assert s["message"] == "add the missing arm `Green`" and s["replacement"] == "\tGreen => 0\n"
    fixed(check, tabs)


def test_suggestion_columns_count_code_points(check):
    text = LIGHT + 'const G: text = "héllo 🌍"; fn wait(l: Light) -> int = match l { Red => 2 }\n'
    (s,) = only(check(text)[1], "E0305")["suggestions"]
    assert s["column"] == text.splitlines()[2].index(" }") + 1
    assert "{ Red => 2, Amber => 2, Green => 2 }" in fixed(check, text)


def test_every_fix_at_once_compiles(check):
    text = ("module demo\n\n" + LIGHT + CHAIN
            + "fn go(l: Light) -> int = match l {\n  Red => 0\n}\n" + USES_STATS)
    code, diags = check(text)
    assert sorted(d["code"] for d in diags) == ["E0101", "E0203", "E0203", "E0305"]
    assert all(d["suggestions"] for d in diags)
    fixed(check, text)
