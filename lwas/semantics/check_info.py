"""What the type checker produces: the references names resolve to and the `Checked` side tables.

Plain data, no checking logic: later phases (truth, lowering, the evaluator, the language
server) read these through `lwas.semantics.typecheck`, which re-exports every name here. The
checker (the mixins in check_*.py) fills one `Checked` per program.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from lwas.semantics.builtins import Builtin
from lwas.semantics.resolve import ModuleInfo
from lwas.semantics.types import EnumT, RecordT, Type
from lwas.syntax import tree as ast
from lwas.syntax.source import Span


@dataclass(eq=False, slots=True)
class Local:
    """A local binding: `let`/`var`, a parameter or a loop variable."""

    name: str
    type: Type
    kind: str  # "let" | "var" | "param" | "for"
    node: Any  # the ast.Let, ast.Param, ast.ForRange or ast.ForEach that binds it
    span: Span  # the name where it is bound
    scope: Span  # where it is visible (its block; a parameter: the body)
    used: bool = False  # read somewhere
    assigned: bool = False  # assigned after its declaration (only possible for `var`)

    @property
    def mutable(self) -> bool:
        return self.kind == "var"


@dataclass(frozen=True, slots=True, eq=False)
class ItemRef:
    """A top-level declaration and the module that declares it."""

    kind: str  # "const" | "fn" | "rule" | "axiom" | "record" | "enum"
    decl: Any
    module: ModuleInfo

    @property
    def name(self) -> str:
        return self.decl.name


@dataclass(frozen=True, slots=True)
class VariantRef:
    enum: EnumT
    index: int  # the tag

    @property
    def name(self) -> str:
        return self.enum.variants[self.index]


@dataclass(frozen=True, slots=True)
class FieldRef:
    record: RecordT
    index: int  # position in declaration order

    @property
    def name(self) -> str:
        return list(self.record.fields)[self.index]

    @property
    def type(self) -> Type:
        return list(self.record.fields.values())[self.index]


@dataclass(frozen=True, slots=True)
class BuiltinRef:
    builtin: Builtin


@dataclass(frozen=True, slots=True, eq=False)
class ModuleRef:
    module: ModuleInfo


Ref = Union[Local, ItemRef, VariantRef, FieldRef, BuiltinRef, ModuleRef]

_KIND = {ast.ConstDecl: "const", ast.FnDecl: "fn", ast.RuleDecl: "rule", ast.AxiomDecl: "axiom",
         ast.RecordDecl: "record", ast.EnumDecl: "enum"}
_KIND_WORD = {"const": "constant", "fn": "function", "rule": "rule", "axiom": "axiom",
              "record": "record", "enum": "enum"}


@dataclass(eq=False)
class Checked:
    """The result of type checking. Every dict is keyed by syntax nodes (identity-hashed).

    types        Expr -> its own Type (before any implicit conversion). Every expression in a
                 value position has one; a Name/Field that denotes a module or an enum/record
                 type (left of a `.`) and a call's callee have a ref but no type.
    coercions    Expr -> the Type it is implicitly converted to where it is used, whenever that
                 differs from types[expr]: bool -> truth, truth -> float, money currency
                 (money -> money(USD) needs a run-time currency check), array of money.
    refs         what a node denotes: Name, Field, a call's callee (a Name or Field), VariantPat
                 -> Local | ItemRef | VariantRef | FieldRef | BuiltinRef | ModuleRef; NamedType
                 (a user type) -> ItemRef; QualName in a rule's `requires` -> ItemRef (axioms);
                 Arg of a record construction -> FieldRef. Field on a record value -> FieldRef.
    bindings     Let, Param, ForRange, ForEach -> the Local it binds (`locals` lists them all);
                 (ForEach, "value") -> the Local of `v` in `for k, v in m`.
    let_types    Let -> the variable's type (declared, or inferred: inlay hints).
    signatures   FnDecl, RuleDecl -> Signature (a rule's result is truth; no `-> T`: UNIT).
    records      RecordDecl -> RecordT;  enums: EnumDecl -> EnumT.
    const_types  ConstDecl -> Type;  const_values: ConstDecl -> folded value or None
                 (int, float, bool, str, MoneyValue; a truth is a float).
    type_exprs   every TypeExpr (annotations, params, fields, results) -> Type.
    call_sigs    Call -> the Signature used: a fn/rule's, a built-in's instantiated overload
                 (concrete parameter types select the implementation), or for a record
                 construction the fields as parameters and the RecordT as result.
    call_args    Call -> argument expressions in parameter (record: field) order, when complete.
    money_values MoneyLit -> MoneyValue (exact minor units) for valid literals.
    item_refs    each top-level declaration -> its ItemRef (kind and module).
    param_defaults  Param -> the value form (lwas.abi) of its default (a route's query parameter).
    """

    types: dict = field(default_factory=dict)
    coercions: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)
    bindings: dict = field(default_factory=dict)
    let_types: dict = field(default_factory=dict)
    signatures: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    enums: dict = field(default_factory=dict)
    const_types: dict = field(default_factory=dict)
    const_values: dict = field(default_factory=dict)
    type_exprs: dict = field(default_factory=dict)
    call_sigs: dict = field(default_factory=dict)
    call_args: dict = field(default_factory=dict)
    money_values: dict = field(default_factory=dict)
    item_refs: dict = field(default_factory=dict)
    locals: list = field(default_factory=list)
    param_defaults: dict = field(default_factory=dict)

    def type_of(self, expr) -> Type | None:
        return self.types.get(expr)

    def converted_type(self, expr) -> Type | None:
        """The type the expression has where it is used (after implicit conversion)."""
        return self.coercions.get(expr) or self.types.get(expr)

    @property
    def mutable_locals(self) -> list[Local]:
        return [l for l in self.locals if l.kind == "var"]
