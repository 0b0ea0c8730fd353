"""The typed syntax tree: frozen dataclasses with spans, independent of Lark.

Nodes compare by identity (eq=False) so later phases can key side tables on them
(types of expressions, what a name refers to) without hashing whole subtrees.
`dump()` gives a span-free structural form for comparing trees.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Union

from lwas.syntax.source import Span

node = dataclass(frozen=True, eq=False, slots=True)


# ---------------------------------------------------------------- names and types

@node
class QualName:
    """`truth`, `ethics.truth`, `models.Transaction`."""
    parts: tuple[str, ...]
    span: Span

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@node
class NamedType:
    name: QualName
    span: Span


@node
class ArrayType:
    elem: "TypeExpr"
    span: Span


@node
class MapType:
    """`{K: V}`: a map, iterated in ascending key order."""
    key: "TypeExpr"
    value: "TypeExpr"
    span: Span


TypeExpr = Union[NamedType, ArrayType, MapType]


# ---------------------------------------------------------------- expressions

@node
class IntLit:
    value: int
    span: Span


@node
class FloatLit:
    value: float
    span: Span


@node
class BoolLit:
    value: bool
    span: Span


@node
class TextLit:
    value: str
    span: Span


@node
class MoneyLit:
    """`12.50 USD`: the decimal digits as written (underscores removed) and the currency code."""
    amount: str
    currency: str
    span: Span


@node
class Name:
    name: str
    span: Span


@node
class Unary:
    op: str  # "-" or "not"
    operand: "Expr"
    span: Span


@node
class Binary:
    op: str  # + - * / % == != < <= > >= and or
    left: "Expr"
    right: "Expr"
    span: Span


@node
class Arg:
    """A call argument; `name` is set for `Point(x: 1.0)` style record construction."""
    value: "Expr"
    name: str | None
    span: Span


@node
class Call:
    callee: "Expr"
    args: tuple[Arg, ...]
    span: Span


@node
class Field:
    obj: "Expr"
    name: str
    name_span: Span
    span: Span


@node
class Index:
    obj: "Expr"
    index: "Expr"
    span: Span


@node
class ArrayLit:
    elems: tuple["Expr", ...]
    span: Span


@node
class MapEntry:
    key: "Expr"
    value: "Expr"
    span: Span


@node
class MapLit:
    """`{"a": 1, "b": 2}`, or `{}` where the type is known (an annotation, a parameter)."""
    entries: tuple[MapEntry, ...]
    span: Span


@node
class WildcardPat:
    span: Span


@node
class VariantPat:
    name: QualName
    span: Span


@node
class LiteralPat:
    value: "Expr"  # IntLit, TextLit, BoolLit or a negated IntLit
    span: Span


Pattern = Union[WildcardPat, VariantPat, LiteralPat]


@node
class MatchArm:
    patterns: tuple[Pattern, ...]
    body: Union["Expr", "Block"]
    span: Span


@node
class Match:
    subject: "Expr"
    arms: tuple[MatchArm, ...]
    span: Span


Expr = Union[IntLit, FloatLit, BoolLit, TextLit, MoneyLit, Name, Unary, Binary, Call, Field,
             Index, ArrayLit, MapLit, Match]


# ---------------------------------------------------------------- statements

@node
class Block:
    stmts: tuple["Stmt", ...]
    span: Span


@node
class Let:
    name: str
    name_span: Span
    mutable: bool  # var
    type: TypeExpr | None
    value: Expr
    span: Span


@node
class Assign:
    target: Expr
    op: str  # = += -= *= /= %=
    value: Expr
    span: Span


@node
class If:
    cond: Expr
    then: Block
    orelse: Union[Block, "If", None]
    span: Span


@node
class While:
    cond: Expr
    body: Block
    span: Span


@node
class ForRange:
    var: str
    var_span: Span
    start: Expr
    end: Expr
    body: Block
    span: Span


@node
class ForEach:
    """`for x in xs` (an array's elements, a map's keys) or `for k, v in m` (a map's pairs)."""
    var: str
    var_span: Span
    iterable: Expr
    body: Block
    span: Span
    value_var: str | None = None
    value_span: Span | None = None


@node
class Return:
    value: Expr | None
    span: Span


@node
class Break:
    span: Span


@node
class Continue:
    span: Span


@node
class Assert:
    cond: Expr
    message: str | None
    span: Span
    kind: str = "assert"  # "contract" for the checks lwas.semantics.contracts writes


@node
class Delete:
    """`delete m[k]`: the map variable m without key k (nothing happens when k is absent)."""
    target: Expr  # an Index into a map
    span: Span


@node
class ExprStmt:
    expr: Expr
    span: Span


@node
class Append:
    """`append transactions(tx)` in a route handler: write `value` to the service's ledger."""
    ledger: str
    ledger_span: Span
    value: Expr
    span: Span


Stmt = Union[Let, Assign, If, While, ForRange, ForEach, Return, Break, Continue, Assert, ExprStmt,
             Append, Delete]


# ---------------------------------------------------------------- items

@node
class TruthValue:
    """A declared truth: a point (lo == hi) or an interval `lo..hi`, as written."""
    lo: float
    hi: float
    span: Span

    @property
    def is_point(self) -> bool:
        return self.lo == self.hi


@node
class Param:
    name: str
    type: TypeExpr
    span: Span
    default: Expr | None = None  # `limit: int = 50`: a `get` route's optional query parameter


@node
class Import:
    path: QualName  # std.money, models
    span: Span

    @property
    def binding(self) -> str:
        """The name the import binds: the last part of the path."""
        return self.path.parts[-1]


@node
class AxiomDecl:
    name: str
    name_span: Span
    value: TruthValue | None
    requires: tuple[QualName, ...]
    contradicts: tuple[QualName, ...]
    doc: str | None
    public: bool
    span: Span


@node
class ConstDecl:
    name: str
    name_span: Span
    type: TypeExpr | None
    value: Expr
    doc: str | None
    public: bool
    span: Span


@node
class FnDecl:
    name: str
    name_span: Span
    params: tuple[Param, ...]
    ret: TypeExpr | None  # None: returns nothing
    body: Union[Block, Expr]  # `= expr` bodies are expressions
    doc: str | None
    public: bool
    span: Span
    extern: str | None = None  # `extern fn ... = "binding"`: the runtime's connector (empty body)
    extern_span: Span | None = None
    contracts: tuple = ()  # (("requires" | "ensures"), Expr), in order (lwas.semantics.contracts)


@node
class RuleDecl:
    name: str
    name_span: Span
    params: tuple[Param, ...]
    ret: TypeExpr | None  # always truth; written for readability
    body: Union[Block, Expr]
    requires: tuple[QualName, ...]  # axioms that cap the rule's value
    doc: str | None
    public: bool
    span: Span
    contracts: tuple = ()  # (("ensures"), Expr): a rule's `requires` names axioms (lwas.semantics.contracts)


@node
class RecordField:
    name: str
    type: TypeExpr
    doc: str | None
    span: Span
    currency_field: str | None = None  # `amount: money in currency`: JSON carries a bare number
    default: Expr | None = None  # `= value`: what ledger entries written without the field hold


@node
class RecordDecl:
    name: str
    name_span: Span
    fields: tuple[RecordField, ...]
    doc: str | None
    public: bool
    span: Span


@node
class Variant:
    name: str
    doc: str | None
    span: Span


@node
class EnumDecl:
    name: str
    name_span: Span
    variants: tuple[Variant, ...]
    doc: str | None
    public: bool
    span: Span


@node
class TestDecl:
    name: str
    body: Block
    span: Span


@node
class LedgerDecl:
    """`ledger transactions: Transaction by id`: an append-only log of records keyed by a field."""
    name: str
    name_span: Span
    entry: TypeExpr
    key: str
    key_span: Span
    doc: str | None
    span: Span


@node
class StateDecl:
    """`state balance: money = 0.00 USD`: service state, changed only by `on` blocks."""
    name: str
    name_span: Span
    type: TypeExpr
    value: Expr
    doc: str | None
    span: Span


@node
class OnDecl:
    """`on transactions(tx) { ... }`: how the state follows one ledger entry (replayable)."""
    ledger: str
    ledger_span: Span
    param: str
    param_span: Span
    body: Block
    span: Span


@node
class RouteDecl:
    """`post "/tx" (tx: Transaction) -> Receipt requires valid(tx) >= 0.9 { ... }`."""
    method: str  # GET, POST, PUT, PATCH or DELETE
    path: str
    path_span: Span
    params: tuple[Param, ...]
    ret: TypeExpr | None
    guard: Expr | None
    body: Block
    doc: str | None
    span: Span
    signed: str | None = None  # `signed "stripe"`: the body is a webhook verified by the runtime
    signed_span: Span | None = None


@node
class EveryDecl:
    """`every "10s" { ... }`: a handler the runtime runs on a timer (it may append)."""
    interval: str
    interval_span: Span
    body: Block
    span: Span


@node
class ServiceDecl:
    name: str
    name_span: Span
    members: tuple[Union[LedgerDecl, StateDecl, OnDecl, RouteDecl, EveryDecl], ...]
    doc: str | None
    public: bool
    span: Span


@node
class ModuleDecl:
    name: QualName
    doc: str | None
    span: Span


Item = Union[ModuleDecl, Import, AxiomDecl, ConstDecl, FnDecl, RuleDecl, RecordDecl, EnumDecl, TestDecl,
             ServiceDecl]


@node
class Module:
    """One parsed file."""
    path: str
    items: tuple[Item, ...]
    span: Span


# ---------------------------------------------------------------- helpers

_LAYOUT = frozenset({"span", "name_span", "var_span"})


def dump(value):
    """A span-free nested-tuple form of a tree: equal for trees that differ only in layout."""
    if isinstance(value, Span):
        return None
    if is_dataclass(value):
        skip = _LAYOUT | {"path"} if isinstance(value, Module) else _LAYOUT
        return (type(value).__name__,) + tuple(
            (f.name, dump(getattr(value, f.name))) for f in fields(value) if f.name not in skip)
    if isinstance(value, tuple):
        return tuple(dump(v) for v in value)
    return value


def children(node) -> list:
    """The syntax nodes directly under `node`, in field order (tuples of nodes flattened): the
    one place that knows how a tree hangs together; walkers build on it."""
    return [n for f in fields(node) for n in walk_roots(getattr(node, f.name))]


def walk_roots(tree) -> list:
    """The nodes a walk of `tree` starts from: the node itself, or the nodes of a (nested)
    tuple of them; anything else (None, a name, a span) has none."""
    if isinstance(tree, tuple):
        return [n for x in tree for n in walk_roots(x)]
    return [tree] if is_dataclass(tree) and not isinstance(tree, Span) else []


def walk(tree):
    """Every node in the tree, parents before children."""
    stack = walk_roots(tree)[::-1]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(children(n)))
