"""Pygments lexer for LwaS (`pygmentize -l lwas file.lwas`, Sphinx/MkDocs code blocks).

Registered through the entry point
    [project.entry-points."pygments.lexers"]
    lwas = "lwas.syntax.highlight:LwasLexer"
The keyword lists mirror the keyword terminals of grammar/lwas.lark (tests/test_highlight.py
checks that they agree). Service member words (ledger, state, on, get, post, ...) are keywords
only where the grammar's contextual lexer makes them so: followed by a name or a string, not by
`.`, `(` or `=` (`state.total` is a name).
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (Comment, Keyword, Name, Number, Operator, Punctuation, String, Text,
                            Whitespace)

__all__ = ["LwasLexer", "KEYWORDS", "MEMBER_KEYWORDS", "WORD_OPERATORS", "CONSTANTS", "TYPES"]

_END = r"(?![A-Za-z0-9_])"

#: keywords everywhere (declarations and statements)
KEYWORDS = (
    "module", "import", "pub", "axiom", "requires", "contradicts", "ensures", "const", "fn",
    "rule", "record", "enum", "test", "service", "extern", "let", "var", "if", "else", "while",
    "for", "in", "return", "break", "continue", "assert", "match",
)
#: keywords only where a service member, `append`, `by` or `signed` may stand
MEMBER_KEYWORDS = ("ledger", "state", "on", "by", "get", "post", "put", "patch", "delete",
                   "append", "every", "signed")
WORD_OPERATORS = ("and", "or", "not")
CONSTANTS = ("true", "false")
#: the built-in types (not keywords in the grammar: names the checker knows)
TYPES = ("int", "float", "truth", "bool", "text", "money", "time", "json")


class LwasLexer(RegexLexer):
    name = "LwaS"
    aliases = ["lwas"]
    filenames = ["*.lwas"]
    mimetypes = ["text/x-lwas"]
    url = "https://github.com/lwas"  # placeholder: the project's home

    tokens = {
        "root": [
            (r"[ \t\f\r]+", Whitespace),
            (r"\n", Whitespace),
            (r"///[^\n]*", String.Doc),
            (r"//[^\n]*", Comment.Single),
            (r'"', String.Double, "string"),
            # literals: money before float before int, as in the grammar
            (r"([0-9][0-9_]*(?:\.[0-9][0-9_]*)?)([ \t]+)([A-Z]{3})" + _END,
             bygroups(Number.Float, Whitespace, Name.Constant)),
            (r"[0-9][0-9_]*\.[0-9][0-9_]*(?:[eE][+-]?[0-9]+)?|[0-9][0-9_]*[eE][+-]?[0-9]+", Number.Float),
            (r"[0-9][0-9_]*", Number.Integer),
            # declarations: the declared name
            (r"(fn|rule)([ \t]+)([A-Za-z_][A-Za-z0-9_]*)",
             bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (r"(record|enum|service)([ \t]+)([A-Za-z_][A-Za-z0-9_]*)",
             bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"(axiom|const)([ \t]+)([A-Za-z_][A-Za-z0-9_]*)",
             bygroups(Keyword.Declaration, Whitespace, Name.Constant)),
            (r"(module|import)([ \t]+)([A-Za-z_][A-Za-z0-9_.]*)",
             bygroups(Keyword.Namespace, Whitespace, Name.Namespace)),
            (words(MEMBER_KEYWORDS, suffix=r"(?=[ \t]+[\"A-Za-z_])"), Keyword),
            (words(KEYWORDS, suffix=_END), Keyword),
            (words(WORD_OPERATORS, suffix=_END), Operator.Word),
            (words(CONSTANTS, suffix=_END), Keyword.Constant),
            (words(TYPES, suffix=_END), Keyword.Type),
            (r"result" + _END, Name.Builtin.Pseudo),
            (r"_" + _END, Keyword.Pseudo),
            (r"[A-Z][A-Za-z0-9_]*", Name.Class),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"->|=>|\.\.|==|!=|<=|>=|[-+*/%]=|[-+*/%=<>|]", Operator),
            (r"[()\[\]{},:.;]", Punctuation),
        ],
        "string": [
            (r'\\.', String.Escape),
            (r'[^"\\\n]+', String.Double),
            (r'"', String.Double, "#pop"),
            (r"\n", Text, "#pop"),  # unterminated: the compiler reports it
        ],
    }
