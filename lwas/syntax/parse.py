"""Parsing: source text -> typed syntax tree (lwas.syntax.tree), with rustc-style syntax errors.

Lark LALR(1) with the contextual lexer builds a parse tree; `_Builder` turns it into frozen
dataclasses. A post-lexer applies Go's newline rule. On a syntax error the file is re-parsed
item by item (panic mode: resynchronise at the next item keyword at the start of a line), so
each broken item reports its first error once and the good items still reach the checker.

Running out of text is reported where it happens. Only the real end of the input is
"unexpected end of file", with the diagnostic's `end_of_input` set: a REPL asks that field,
not the wording, whether an entry needs more lines. An item cut short mid-file (`import
std.` and the next line another item) is reported at the end of its last line, with the
next item's keyword as the token found, never as the end of the file.

`prefix_state` steps the same parser through the text before an editor's cursor: the language
server's completion asks the grammar what may come next.
"""
from __future__ import annotations

import re
import threading
from copy import copy
from functools import lru_cache
from importlib import resources

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Diagnostic, Label
from lwas.syntax.bidi import bidi_warnings
from lwas.syntax.bidi import describe as describe_char
from lwas.syntax.nesting import check_depth
from lwas.syntax.source import SourceFile, Span

# A newline ends a statement only after one of these (Go's automatic-semicolon rule).
_ENDS_STATEMENT = frozenset({
    "NAME", "INT", "FLOAT", "MONEY", "STRING", "TRUE", "FALSE", "RPAR", "RSQB", "RBRACE",
    "RETURN", "BREAK", "CONTINUE", "UNDERSCORE",
})
_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = frozenset(_OPENERS.values())


class _Newlines:
    """Post-lexer: keep a newline only where it can end a statement, never inside ( ) or [ ]."""

    always_accept = ("_NL", "SEMI")

    def process(self, stream):
        prev = None  # type of the last token passed on
        last = None
        depth = []  # open brackets
        for tok in stream:
            kind = tok.type
            if kind == "_NL" or kind == "SEMI":
                if kind == "_NL" and (prev not in _ENDS_STATEMENT or (depth and depth[-1] != "LBRACE")):
                    continue
                if prev is None or prev == "_NL" or prev == "LBRACE":
                    continue
                prev = "_NL"
                yield Token.new_borrow_pos("_NL", tok.value, tok)
                continue
            if kind in _OPENERS:
                depth.append(kind)
            elif kind in _CLOSERS and depth:
                depth.pop()
            prev = kind
            last = tok
            yield tok
        if prev is not None and prev != "_NL":
            yield Token.new_borrow_pos("_NL", "", last)  # empty value: the end of the file


@lru_cache(maxsize=None)
def grammar_text() -> str:
    """grammar/lwas.lark (the parser here, the formatter's own parser)."""
    return resources.files("lwas.grammar").joinpath("lwas.lark").read_text(encoding="utf-8")


_BUILDER = None  # set below, once _Builder exists


@lru_cache(maxsize=None)
def parser(strict: bool = False) -> Lark:
    """The shared parser, building syntax nodes as it reduces.

    `strict=True` makes any grammar conflict or terminal collision an error; tests use it. It
    builds a plain parse tree (no embedded builder), which is what hypothesis' from_lark wants.
    """
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=_Newlines(),
        maybe_placeholders=True,
        strict=strict,
        transformer=None if strict else _BUILDER,
        cache=not strict,
    )


# ---------------------------------------------------------------- tree building

def _unquote(s: str) -> str:
    body = s[1:-1]
    if "\\" not in body:
        return body
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(m.group(1), m.group(1)), body)


def _number(tok: Token) -> float:
    return float(tok.value.replace("_", ""))


_BINARY = {"PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/", "PERCENT": "%"}


class _Builder(threading.local):
    """Builds lwas.syntax.tree nodes while Lark parses (an embedded transformer: no parse tree).

    Spans come from the tokens at each rule's ends. The file being parsed, and the line and
    offset of the chunk in recovery mode, live in per-thread state set by `parse_module`.
    """

    src: SourceFile = SourceFile("<none>", "")
    path = "<none>"
    dl = 0  # line delta of the chunk being parsed
    dp = 0  # offset delta

    def sp(self, t: Token) -> Span:
        return Span(self.path, t.line + self.dl, t.column, t.end_line + self.dl, t.end_column,
                    t.start_pos + self.dp, t.end_pos + self.dp)

    def span(self, c) -> Span:
        """From the first to the last child that has a position."""
        first = last = None
        for x in c:
            if x is not None and x.__class__ is not tuple:
                first = x
                break
        for x in reversed(c):
            if x is not None and x.__class__ is not tuple:
                last = x
                break
        a = self.sp(first) if isinstance(first, Token) else first.span
        if last is first:
            return a
        b = self.sp(last) if isinstance(last, Token) else last.span
        return Span(a.file, a.line, a.col, b.end_line, b.end_col, a.start, b.end)

    def doc(self, span: Span) -> str | None:
        """`///` lines directly above the item."""
        lines = []
        n = span.line - 1
        while n >= 1:
            text = self.src.line_text(n).strip()
            if not text.startswith("///"):
                break
            lines.append(text[3:].removeprefix(" "))
            n -= 1
        return "\n".join(reversed(lines)) if lines else None

    # ------------------------------------------------------------ program
    def start(self, c):
        return c

    def pub(self, c):
        return c[0]

    def module_decl(self, c):
        s = self.span(c)
        return ast.ModuleDecl(c[1], self.doc(s), s)

    def import_decl(self, c):
        return ast.Import(c[1], self.span(c))

    def qual_name(self, c):
        return ast.QualName(tuple(t.value for t in c if t.type == "NAME"), self.span(c))

    def name_list(self, c):
        return tuple(x for x in c if isinstance(x, ast.QualName))

    def number(self, c):
        return c[0]

    def truth_value(self, c):
        lo = _number(c[0])
        hi = _number(c[2]) if c[2] is not None else lo
        return ast.TruthValue(lo, hi, self.span(c))

    def axiom_decl(self, c):
        public, _, name, _, value, _, requires, _, contradicts = c
        s = self.span(c)
        return ast.AxiomDecl(name.value, self.sp(name), value, requires or (), contradicts or (),
                             self.doc(s), bool(public), s)

    def const_decl(self, c):
        public, _, name, _, type_, _, value = c
        s = self.span(c)
        return ast.ConstDecl(name.value, self.sp(name), type_, value, self.doc(s), bool(public), s)

    def params(self, c):
        return tuple(p for p in c if isinstance(p, ast.Param))

    def param(self, c):
        return ast.Param(c[0].value, c[2], self.span(c), c[4])

    def body(self, c):
        return c[0]

    def expr_body(self, c):
        return c[1]

    def fn_decl(self, c):
        public, _, name, _, params, _, _, ret, *contracts, body = c
        s = self.span(c)
        return ast.FnDecl(name.value, self.sp(name), params, ret, body, self.doc(s), bool(public), s,
                          contracts=tuple(contracts))

    def contract(self, c):
        return c[0] if isinstance(c[0], tuple) else ("requires", c[1])

    def ensures(self, c):
        return ("ensures", c[1])

    def extern_decl(self, c):
        _, _, name, _, params, _, _, ret, _, binding = c
        s = self.span(c)
        return ast.FnDecl(name.value, self.sp(name), params, ret, ast.Block((), s), self.doc(s), False, s,
                          _unquote(binding.value), self.sp(binding))

    def rule_expr_body(self, c):
        return c[1], (c[3] or ())

    def rule_block_body(self, c):
        return c[2], (c[1] or ())

    def rule_decl(self, c):
        public, _, name, _, params, _, _, ret, *contracts, (body, requires) = c
        s = self.span(c)
        return ast.RuleDecl(name.value, self.sp(name), params, ret, body, requires, self.doc(s), bool(public), s,
                            tuple(contracts))

    def named_type(self, c):
        return ast.NamedType(c[0], self.span(c))

    def array_type(self, c):
        return ast.ArrayType(c[1], self.span(c))

    def map_type(self, c):
        return ast.MapType(c[1], c[3], self.span(c))

    def record_field(self, c):
        s = self.span(c)
        return ast.RecordField(c[0].value, c[2], self.doc(s), s, c[4].value if c[4] is not None else None,
                               c[6])

    def record_decl(self, c):
        public, name = c[0], c[2]
        s = self.span(c)
        fields = tuple(x for x in c if isinstance(x, ast.RecordField))
        return ast.RecordDecl(name.value, self.sp(name), fields, self.doc(s), bool(public), s)

    def variant(self, c):
        s = self.span(c)
        return ast.Variant(c[0].value, self.doc(s), s)

    def enum_decl(self, c):
        public, name = c[0], c[2]
        s = self.span(c)
        variants = tuple(x for x in c if isinstance(x, ast.Variant))
        return ast.EnumDecl(name.value, self.sp(name), variants, self.doc(s), bool(public), s)

    def test_decl(self, c):
        return ast.TestDecl(_unquote(c[1].value), c[2], self.span(c))

    # ------------------------------------------------------------ services
    def service_decl(self, c):
        public, name = c[0], c[2]
        s = self.span(c)
        members = tuple(x for x in c[3:] if not isinstance(x, Token))
        return ast.ServiceDecl(name.value, self.sp(name), members, self.doc(s), bool(public), s)

    def ledger_decl(self, c):
        s = self.span(c)
        return ast.LedgerDecl(c[1].value, self.sp(c[1]), c[3], c[5].value, self.sp(c[5]), self.doc(s), s)

    def state_decl(self, c):
        s = self.span(c)
        return ast.StateDecl(c[1].value, self.sp(c[1]), c[3], c[5], self.doc(s), s)

    def on_decl(self, c):
        return ast.OnDecl(c[1].value, self.sp(c[1]), c[3].value, self.sp(c[3]), c[5], self.span(c))

    def route_decl(self, c):
        method, path, _, params, _, _, ret, _, signed, _, guard, body = c
        s = self.span(c)
        return ast.RouteDecl(method.value.upper(), _unquote(path.value), self.sp(path), params or (),
                             ret, guard, body, self.doc(s), s, _unquote(signed.value) if signed else None,
                             self.sp(signed) if signed else None)

    def every_decl(self, c):
        return ast.EveryDecl(_unquote(c[1].value), self.sp(c[1]), c[2], self.span(c))

    def append_stmt(self, c):
        return ast.Append(c[1].value, self.sp(c[1]), c[3], self.span(c))

    # ------------------------------------------------------------ statements
    def block(self, c):
        return ast.Block(tuple(x for x in c if not isinstance(x, Token)), self.span(c))

    def let_stmt(self, c):
        kw, name, _, type_, _, value = c
        return ast.Let(name.value, self.sp(name), kw.type == "VAR", type_, value, self.span(c))

    def assign_op(self, c):
        return c[0].value

    def assign_stmt(self, c):
        return ast.Assign(c[0], c[1], c[2], self.span(c))

    def if_stmt(self, c):
        orelse = c[4] if len(c) > 4 else None
        return ast.If(c[1], c[2], orelse, self.span(c))

    def while_stmt(self, c):
        return ast.While(c[1], c[2], self.span(c))

    def for_range(self, c):
        return ast.ForRange(c[1].value, self.sp(c[1]), c[3], c[5], c[6], self.span(c))

    def for_each(self, c):
        return ast.ForEach(c[1].value, self.sp(c[1]), c[3], c[4], self.span(c))

    def for_pairs(self, c):
        return ast.ForEach(c[1].value, self.sp(c[1]), c[5], c[6], self.span(c), c[3].value, self.sp(c[3]))

    def delete_stmt(self, c):
        return ast.Delete(c[1], self.span(c))

    def return_stmt(self, c):
        return ast.Return(c[1], self.span(c))

    def break_stmt(self, c):
        return ast.Break(self.span(c))

    def continue_stmt(self, c):
        return ast.Continue(self.span(c))

    def assert_stmt(self, c):
        msg = _unquote(c[3].value) if c[3] is not None else None
        return ast.Assert(c[1], msg, self.span(c))

    def expr_stmt(self, c):
        return ast.ExprStmt(c[0], self.span(c))

    # ------------------------------------------------------------ expressions
    def _chain(self, c):
        left = c[0]
        for i in range(1, len(c), 2):
            op, right = c[i], c[i + 1]
            left = ast.Binary(_BINARY.get(op.type, op.value), left, right, left.span.to(right.span))
        return left

    or_expr = and_expr = sum = product = _chain

    def comparison(self, c):
        return ast.Binary(c[1], c[0], c[2], self.span(c))

    def comp_op(self, c):
        return c[0].value

    def not_op(self, c):
        return ast.Unary("not", c[1], self.span(c))

    def neg(self, c):
        operand = c[1]
        s = self.span(c)
        if isinstance(operand, ast.IntLit):
            return ast.IntLit(-operand.value, s)
        if isinstance(operand, ast.FloatLit):
            return ast.FloatLit(-operand.value, s)
        return ast.Unary("-", operand, s)

    def call(self, c):
        return ast.Call(c[0], c[2], self.span(c))

    def args(self, c):
        return tuple(a for a in c if isinstance(a, ast.Arg))

    def arg(self, c):
        if len(c) == 3:
            return ast.Arg(c[2], c[0].value, self.span(c))
        return ast.Arg(c[0], None, self.span(c))

    def field(self, c):
        return ast.Field(c[0], c[2].value, self.sp(c[2]), self.span(c))

    def index(self, c):
        return ast.Index(c[0], c[2], self.span(c))

    def int_lit(self, c):
        return ast.IntLit(int(c[0].value.replace("_", "")), self.sp(c[0]))

    def float_lit(self, c):
        return ast.FloatLit(_number(c[0]), self.sp(c[0]))

    def money_lit(self, c):
        amount, currency = c[0].value.split()
        return ast.MoneyLit(amount.replace("_", ""), currency, self.sp(c[0]))

    def text_lit(self, c):
        return ast.TextLit(_unquote(c[0].value), self.sp(c[0]))

    def true_lit(self, c):
        return ast.BoolLit(True, self.sp(c[0]))

    def false_lit(self, c):
        return ast.BoolLit(False, self.sp(c[0]))

    def name(self, c):
        return ast.Name(c[0].value, self.sp(c[0]))

    def array_lit(self, c):
        return ast.ArrayLit(tuple(x for x in c if x is not None and not isinstance(x, Token)), self.span(c))

    def map_lit(self, c):
        return ast.MapLit(tuple(x for x in c if isinstance(x, ast.MapEntry)), self.span(c))

    def map_entry(self, c):
        return ast.MapEntry(c[0], c[2], self.span(c))

    def atom(self, c):  # parenthesised expression
        return c[1]

    def match_expr(self, c):
        arms = tuple(x for x in c if isinstance(x, ast.MatchArm))
        return ast.Match(c[1], arms, self.span(c))

    def match_arm(self, c):
        pats = tuple(x for x in c[:-2] if not isinstance(x, Token))
        return ast.MatchArm(pats, c[-1], self.span(c))

    def wildcard_pat(self, c):
        return ast.WildcardPat(self.span(c))

    def variant_pat(self, c):
        return ast.VariantPat(c[0], self.span(c))

    def int_pat(self, c):
        s = self.span(c)
        return ast.LiteralPat(ast.IntLit(int(c[0].value.replace("_", "")), s), s)

    def neg_int_pat(self, c):
        s = self.span(c)
        return ast.LiteralPat(ast.IntLit(-int(c[1].value.replace("_", "")), s), s)

    def text_pat(self, c):
        s = self.span(c)
        return ast.LiteralPat(ast.TextLit(_unquote(c[0].value), s), s)

    def true_pat(self, c):
        s = self.span(c)
        return ast.LiteralPat(ast.BoolLit(True, s), s)

    def false_pat(self, c):
        s = self.span(c)
        return ast.LiteralPat(ast.BoolLit(False, s), s)


_BUILDER = _Builder()


# ---------------------------------------------------------------- driver and recovery

_ITEM_START = re.compile(
    r"^(?:pub[ \t]+)?(?:module|import|axiom|const|fn|rule|record|enum|test|service)\b", re.M)

_TOKEN_WORDS = {
    "_NL": "end of line", "$END": "end of file", "NAME": "a name", "INT": "an integer",
    "FLOAT": "a number", "MONEY": "a money amount", "STRING": "a text literal",
    "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`", "LBRACE": "`{`", "RBRACE": "`}`",
    "COMMA": "`,`", "COLON": "`:`", "DOT": "`.`", "DOTDOT": "`..`", "ARROW": "`->`",
    "FAT_ARROW": "`=>`", "ASSIGN": "`=`", "EQ": "`==`", "BAR": "`|`", "UNDERSCORE": "`_`",
}

# Common mistakes, recognised by the parser state they leave it in (Lark's match_examples).
_EXAMPLES = {
    ("`=` is assignment; compare with `==`", "if x == 1 {"): [
        "fn f(x: int) -> int {\n  if x = 1 {\n    return 1\n  }\n  return 0\n}\n",
        "fn f(x: int) -> int {\n  while x = 1 {\n  }\n  return 0\n}\n",
    ],
    ("a parameter needs a type", "fn f(x: int)"): [
        "fn f(x) -> int = 1\n",
        "fn f(a: int, b) -> int = 1\n",
        "rule r(x) -> truth = 1.0\n",
    ],
    ("the return type comes after `->`", "fn f(x: int) -> int { ... }"): [
        "fn f(x: int) int {\n}\n",
        "fn f() int = 1\n",
    ],
    ("`let` and `var` need a value", "let x = 0"): [
        "fn f() {\n  let x\n}\n",
        "fn f() {\n  var x: int\n}\n",
    ],
    ("an axiom's truth value is a number in [0, 1] or an interval `lo..hi`", "axiom a = 0.5..0.9"): [
        "axiom a = high\n",
        "axiom a = \"x\"\n",
    ],
    ("a block must start with `{`", "if cond { ... }"): [
        "fn f(x: int) -> int {\n  if x > 1\n    return 1\n}\n",
        "fn f(x: int) {\n  while x > 1\n}\n",
    ],
}


@lru_cache(maxsize=None)
def _literal_terminals() -> dict[str, str]:
    """Terminal name -> its fixed text (`->`, `else`), for readable expected-token lists."""
    from lark.lexer import PatternStr

    out = {}
    for t in parser().terminals:
        if isinstance(t.pattern, PatternStr):
            out[t.name] = t.pattern.value
        elif m := _KEYWORD_PATTERN.fullmatch(t.pattern.value):
            out[t.name] = m.group(1)
    return out


_KEYWORD_PATTERN = re.compile(r"([a-z]+)\(\?!\[A-Za-z0-9_\]\)")


def _expected(tokens) -> str:
    literal = _literal_terminals()
    words = sorted({_TOKEN_WORDS.get(t) or (f"`{literal[t]}`" if t in literal else t.lower())
                    for t in tokens if t != "SEMI"})
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _expected_of(e: UnexpectedInput) -> set[str]:
    """The terminals the parser accepts where it stopped. When the contextual lexer raises the
    error, `e.expected` also holds the terminals it lexes everywhere (the newline): read the
    parse table of the parser's state instead."""
    exp = set(getattr(e, "expected", None) or ())
    state = getattr(e, "state", None)
    try:
        return {t for t in state.parse_conf.parse_table.states[state.position] if t.isupper()} or exp
    except (AttributeError, KeyError, TypeError):
        return exp


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_NL":
        return "end of line"
    return f"`{tok.value}`"


_CHAR_HINTS = {"&": "write `and` instead of `&&`", "|": "write `or` instead of `||`",
               "!": "write `not x` instead of `!x`, and `!=` for inequality",
               "#": "comments start with `//`", "'": 'text literals use double quotes: "text"'}


def _syntax_error(e: UnexpectedInput, src: SourceFile, dl: int, dp: int, end: int | None = None) -> Diagnostic:
    """The diagnostic for a parse of src.text[dp:end] (one item in panic mode) that failed."""
    line, col = (e.line or 0) + dl, e.column or 1
    start = (e.pos_in_stream or 0) + dp
    if isinstance(e, UnexpectedCharacters):
        ch = src.text[start] if start < len(src.text) else ""
        span = Span(src.path, line, col, line, col + 1, start, start + 1)
        if ch == '"':
            return Diagnostic("E0003", "unterminated text literal", span, label="this text is never closed",
                              help='close it with `"` on the same line; write a line break as `\\n`')
        hint = _CHAR_HINTS.get(ch)
        shown = f"`{ch}`" if ch.isprintable() else describe_char(ch)
        return Diagnostic("E0002", f"unexpected character {shown}", span, label="not part of any LwaS token",
                          help=hint)
    tok = e.token if isinstance(e, UnexpectedToken) else None
    if tok is None or tok.type == "$END" or (tok.type == "_NL" and not tok.value) or isinstance(e, UnexpectedEOF):
        return _ran_out(e, src, dp, len(src.text) if end is None else end)
    width = max(1, len(tok.value)) if tok.type != "_NL" else 1
    span = Span(src.path, line, col, line, col + width, start, start + width)
    friendly = None
    try:
        friendly = e.match_examples(_parse_tree, {k: v for k, v in _EXAMPLES.items()}, use_accepts=True)
    except Exception:  # noqa: BLE001 - a failed heuristic must never hide the real error
        friendly = None
    message = f"expected {_expected(_expected_of(e))}, found {_describe(tok)}"
    if friendly:
        text, example = friendly
        return Diagnostic("E0001", f"{text}", span, label=message, help=f"for example: `{example}`")
    return Diagnostic("E0001", f"unexpected {_describe(tok)}", span, label=message, help=_CHAR_HINTS.get(tok.value))


_LINE_COMMENT = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"|//.*')
_DOTTED_TAIL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\.$")
_PATH_ITEM = re.compile(r"[ \t]*(?:import|module)\b")
_CLOSER = {"(": ")", "[": "]", "{": "}"}


def _blank(line: str) -> str:
    """The line with its comment and the insides of its text literals blanked (same length)."""
    return _LINE_COMMENT.sub(lambda m: '"' + " " * (len(m[0]) - 2) + '"' if m[0][0] == '"' else " " * len(m[0]),
                             line)


def _content_end(text: str, begin: int, end: int) -> int:
    """The offset just after the last token of text[begin:end] (blank and comment lines skipped)."""
    pos = end
    while pos > begin:
        start = max(begin, text.rfind("\n", begin, pos) + 1)
        code = _blank(text[start:pos]).rstrip()
        if code:
            return start + len(code)
        pos = start - 1
    return begin


def _unclosed(text: str, begin: int, stop: int) -> tuple[int, str] | None:
    """The innermost bracket opened in text[begin:stop] and never closed: (offset, bracket)."""
    opened: list[tuple[int, str]] = []
    pos = begin
    for line in text[begin:stop].split("\n"):
        for i, ch in enumerate(_blank(line)):
            if ch in _CLOSER:
                opened.append((pos + i, ch))
            elif ch in ")]}" and opened:
                opened.pop()
        pos += len(line) + 1
    return opened[-1] if opened else None


def _point(src: SourceFile, offset: int, width: int = 0) -> Span:
    line, col = src.position(offset)
    return Span(src.path, line, col, line, col + width, offset, offset + width)


def _stdlib_names() -> str:
    try:
        from lwas.syntax.source import default_stdlib_dir

        return ", ".join(f"`std.{p.stem}`" for p in sorted(default_stdlib_dir().glob("*.lwas")))
    except Exception:  # noqa: BLE001 - a hint must never hide the error
        return ""


def _ran_out(e: UnexpectedInput, src: SourceFile, dp: int, end: int) -> Diagnostic:
    """The text of an item (src.text[dp:end]) ended before the item did.

    At the real end of the input: "unexpected end of file" (`end_of_input`). Mid-file the
    item was cut short: the token found is the next item's keyword at `end`, and the error is
    reported at the end of the item's last token, as rustc reports "expected X, found `import`"
    after the previous token when the found one is on a later line.
    """
    text = src.text
    exp = _expected_of(e)
    stop = _content_end(text, dp, end)
    expected = f"expected {_expected(exp)}"
    message, label, labels, help_ = "unexpected end of line", expected, [], None
    line_start = text.rfind("\n", 0, stop) + 1
    dotted = _DOTTED_TAIL.search(_blank(text[line_start:stop])) if "NAME" in exp else None
    opener = _unclosed(text, dp, stop)
    if opener is not None and {"(": "RPAR", "[": "RSQB", "{": "RBRACE"}[opener[1]] not in exp:
        opener = None
    if dotted is not None:
        q = dotted.group(1)
        is_path = _PATH_ITEM.match(text, line_start) is not None
        message = f"expected a {'module ' if is_path else ''}name after `{q}.`"
        if is_path and q == "std":
            names = _stdlib_names()
            help_ = f"the standard library has {names}" if names else None
        elif is_path:
            help_ = f"name the module: `import {q}.NAME` reads `{q.replace('.', '/')}/NAME.lwas`"
    elif opener is not None:
        at, ch = opener
        message, label = f"unclosed `{ch}`", f"expected `{_CLOSER[ch]}`"
        labels.append(Label(_point(src, at, 1), f"this `{ch}` is never closed"))
    if end >= len(text):  # the real end of the input
        label = message if dotted is not None else label
        return Diagnostic("E0001", "unexpected end of file", _point(src, stop), label=label,
                          labels=tuple(labels), help=help_, end_of_input=True)
    m = _ITEM_START.match(text, end)
    word = m.group(0) if m else text[end:end + 1]
    labels.append(Label(_point(src, end, len(word)), f"found `{word}`: the next item starts here"))
    return Diagnostic("E0001", message, _point(src, stop), label=label, labels=tuple(labels), help=help_)


# ---------------------------------------------------------------- for editors

_KEYWORD_WORDS = re.compile(r"\(?([a-z]+(?:\|[a-z]+)*)\)?\(\?!\[A-Za-z0-9_\]\)")


@lru_cache(maxsize=None)
def keywords() -> dict[str, tuple[str, ...]]:
    """Keyword terminal -> the words it reads (`FN` -> fn; `METHOD` -> get, post, put, ...)."""
    out = {}
    for t in parser().terminals:
        m = _KEYWORD_WORDS.fullmatch(getattr(t.pattern, "value", ""))
        if m:
            out[t.name] = tuple(m.group(1).split("|"))
    return out


def in_comment_or_text(line_before: str) -> bool:
    """Whether the end of `line_before` (a line up to a cursor) is inside a comment or a text literal."""
    for m in _LINE_COMMENT.finditer(line_before):
        if m[0].startswith("//"):
            return True
    return '"' in _LINE_COMMENT.sub("", line_before)


def unclosed_bracket(text: str) -> bool:
    """Whether `text` leaves a bracket open (text literals and comments aside)."""
    return _unclosed(text, 0, len(text)) is not None


def item_start(text: str, offset: int) -> int:
    """Where the item around `offset` starts: the chunk boundaries of panic mode (an item
    keyword at the start of a line), searched backwards from the offset's line."""
    i = text.rfind("\n", 0, offset) + 1
    while i > 0:
        if _ITEM_START.match(text, i):
            return i
        i = text.rfind("\n", 0, i - 1) + 1
    return 0


def prefix_state(text: str):
    """The parser after `text`, the start of an item up to an editor's cursor.

    Returns (parser, before_newline): Lark `InteractiveParser`s; `before_newline` is the state
    before the text's last token when that is a newline (a continuation word typed next, such
    as `else` or `requires`, joins the line above), else None. The end of `text` is not the end
    of the input: the post-lexer's closing newline is not fed. Nothing is built (values are
    plain lists of tokens), so `accepts()` and the value stack are all a caller reads.
    Raises `UnexpectedInput` when the text itself does not parse.
    """
    ip = parser().parse_interactive(text)
    conf = copy(ip.parser_state.parse_conf)
    conf.callbacks = {}  # no syntax nodes: the builder needs a whole item
    ip.parser_state.parse_conf = conf
    before_newline = None
    for tok in ip.iter_parse():  # yields each token before feeding it
        if tok.type == "_NL" and not tok.value:
            break  # the closing newline the post-lexer adds at the end of the text
        before_newline = ip.copy(deepcopy_values=False) if tok.type == "_NL" else None
    return ip, before_newline


def _parse_tree(text: str):
    return parser().parse(text)


def _segments(text: str) -> list[int]:
    """Offsets where items start: an item keyword at the start of a line.

    Doc comments above an item fall at the end of the previous chunk, where the lexer skips
    them; the builder reads them from the whole file's text.
    """
    out = [m.start() for m in _ITEM_START.finditer(text)]
    if not out or out[0] != 0:
        out.insert(0, 0)
    return out


def parse_module(src: SourceFile) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse one file. Returns the tree (with every item that parsed and is nested at most
    nesting.MAX_DEPTH deep) and the diagnostics: syntax errors, E0006 for each item nested
    deeper, W0105 for bidirectional control characters in comments and text literals."""
    tree, diags = _parse_items(src)
    return tree, diags + bidi_warnings(src)


def _parse_items(src: SourceFile) -> tuple[ast.Module, list[Diagnostic]]:
    text = src.text
    b = _BUILDER
    b.src, b.path, b.dl, b.dp = src, src.path, 0, 0
    try:
        items, diags = check_depth(_parse_tree(text))
        return ast.Module(src.path, tuple(items), src.span(0, len(text))), diags
    except UnexpectedInput:
        pass
    # panic mode: parse item by item; each broken item reports its first error, once
    items: list = []
    diags: list[Diagnostic] = []
    bounds = _segments(text) + [len(text)]
    for begin, end in zip(bounds, bounds[1:]):
        chunk = text[begin:end]
        if not chunk.strip():
            continue
        dl = text.count("\n", 0, begin)
        b.dl, b.dp = dl, begin
        try:
            kept, deep = check_depth(_parse_tree(chunk))
        except UnexpectedInput as e:
            diags.append(_syntax_error(e, src, dl, begin, end))
            continue
        items.extend(kept)
        diags.extend(deep)
    return ast.Module(src.path, tuple(items), src.span(0, len(text))), diags


def parse_text(text: str, path: str = "<string>") -> tuple[ast.Module, list[Diagnostic]]:
    return parse_module(SourceFile(path, text))
