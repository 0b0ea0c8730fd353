"""lwas.syntax.highlight: the Pygments lexer agrees with the grammar and lexes every program."""
from __future__ import annotations

import re

import pytest
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String

from helpers import ROOT
from lwas.syntax.highlight import CONSTANTS, KEYWORDS, MEMBER_KEYWORDS, TYPES, WORD_OPERATORS, LwasLexer
from lwas.syntax.parse import parser

REPO_FILES = sorted(p for d in ("examples", "stdlib", "services", "tests/data")
                    for p in (ROOT / d).rglob("*.lwas"))
_KEYWORD_TERMINAL = re.compile(r"\(?([a-z|]+)\)?\(\?!\[A-Za-z0-9_\]\)")


def grammar_keywords() -> set[str]:
    out = set()
    for t in parser().terminals:
        m = _KEYWORD_TERMINAL.fullmatch(getattr(t.pattern, "value", ""))
        if m:
            out.update(m.group(1).split("|"))
    return out


def tokens(text):
    return [(k, v) for k, v in LwasLexer().get_tokens(text) if v.strip()]


def test_keyword_lists_match_the_grammar():
    ours = set(KEYWORDS) | set(MEMBER_KEYWORDS) | set(WORD_OPERATORS) | set(CONSTANTS)
    assert ours == grammar_keywords()
    assert len(ours) == len(KEYWORDS) + len(MEMBER_KEYWORDS) + len(WORD_OPERATORS) + len(CONSTANTS)
    assert not set(TYPES) & ours


def test_the_lexer_metadata():
    assert LwasLexer.name == "LwaS" and LwasLexer.aliases == ["lwas"] and LwasLexer.filenames == ["*.lwas"]


@pytest.mark.parametrize("path", REPO_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repo_programs_lex_without_errors(path):
    text = path.read_text(encoding="utf-8")
    toks = list(LwasLexer().get_tokens(text))
    assert [v for k, v in toks if k in Error] == []
    assert "".join(v for _, v in toks).rstrip("\n") == text.rstrip("\n")


SAMPLE = '''/// Doc.
pub fn f(x: int) -> money requires x > 0 = 12.50 USD  // trailing
record Tx { amount: money in currency }
service s {
  state total: money = 0.00 USD
  post "/tx" (t: Tx) -> Tx signed "stripe" {
    append log(t)
    let n = state.total
    return t
  }
}
const N = 1_000 + 2.5e3 - 0.5..0.9
fn g() -> text = match y { A | _ => "a\\n\\"b" }
axiom a = 1.0
test "t" { assert not true and false or x != 1 }
'''


def test_sample_program_tokens():
    toks = tokens(SAMPLE)
    kinds = {}
    for k, v in toks:
        kinds.setdefault(v, set()).add(k)
    assert kinds["/// Doc."] == {String.Doc}
    assert kinds["// trailing"] == {Comment.Single}
    assert kinds["pub"] == {Keyword}
    assert kinds["fn"] == {Keyword.Declaration} and kinds["f"] == {Name.Function}
    assert kinds["requires"] == {Keyword}
    assert kinds["int"] == {Keyword.Type} and kinds["money"] == {Keyword.Type}
    assert kinds["12.50"] == {Number.Float} and kinds["USD"] == {Name.Constant}
    assert kinds["1_000"] == {Number.Integer} and kinds["2.5e3"] == {Number.Float}
    assert kinds["0.5"] == {Number.Float} and kinds[".."] == {Operator}
    assert kinds["in"] == {Keyword} and kinds["currency"] == {Name}
    assert kinds["Tx"] <= {Name.Class}
    # member keywords: keywords where a member starts, names elsewhere
    assert ("post" in kinds and kinds["post"] == {Keyword}) and kinds["signed"] == {Keyword}
    assert kinds["append"] == {Keyword}
    assert kinds["state"] == {Keyword, Name}
    assert kinds["->"] == {Operator} and kinds["=>"] == {Operator} and kinds["|"] == {Operator}
    assert kinds["{"] == {Punctuation}
    assert kinds["not"] == {Operator.Word} and kinds["and"] == {Operator.Word}
    assert kinds["true"] == {Keyword.Constant}
    assert kinds["_"] == {Keyword.Pseudo}
    assert kinds["\\n"] == {String.Escape} and kinds['\\"'] == {String.Escape}
    assert not any(k in Error for k, _ in toks)


def test_ranges_and_fields_are_not_floats():
    toks = tokens("for i in 0..n { x.y }")
    assert (Number.Integer, "0") in toks and (Operator, "..") in toks


def test_registered_entry_point_if_installed():
    from pygments.lexers import find_lexer_class_by_name

    cls = find_lexer_class_by_name("lwas")  # pyproject's pygments.lexers entry point
    assert cls.__name__ == "LwasLexer"
