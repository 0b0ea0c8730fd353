"""Type checking: every expression gets a type, every name a meaning, every body a verdict.

`check_program(program, sink) -> Checked` runs once over the resolved program (modules in
dependency order) in one pass per body, dispatching on the node class through dicts. It reports
E0004, E0101, E0105, E0301-E0319 and W0101-W0104 (and E0102 for duplicate parameters, locals in
one block, record fields and enum variants, which resolve does not see). `Checked` holds
everything later phases need; see its docstring.

Decisions (the language contract is tests/data/LANGUAGE.md; these fill in its gaps):

Types and conversions
- Implicit conversions are exactly: bool -> truth, truth -> float, and between money types
  when a currency is unknown statically: money(USD) -> money and money -> money(USD) (the
  latter is checked at run time: `Checked.coercions` records it so the code generator can emit
  the check). Known, different currencies are E0308. Nothing else converts: an int where a
  float is needed is E0301 (write `2.0` or `float(n)`). Arrays convert only money element
  currencies to "unknown".
- A float literal in [0, 1] is accepted where a truth is expected (`-> truth = 0.5`); its type
  is then recorded as truth.
- A `money` annotation is money of unknown currency. A money literal has its currency; a
  `const` declared `money` takes the initialiser's currency (`MAX_TRANSACTION` is money(USD)).
  A `let`/`var` keeps its annotation, or without one the initialiser's type.
- `[]` needs an expected type (annotation, parameter, ...), else E0318.
- A record may not contain itself by value (through records; arrays are fine): E0319.

Operators
- `+ - * / %`: int with int, float with float (truth operands act as float); mixing int and
  float is E0311 (help: `float(...)` or a float literal). text + text concatenates.
  money + - money (one currency), money * int, int * money -> money; money / money -> float;
  money / int, money * float, money % anything are E0311 (use `scale` or std.money).
  Unary `-` on int, float, money (truth -> float).
- `and`/`or`/`not`: bool -> bool; any truth operand (bool converts) -> truth.
- `==`/`!=` on two values of one type (after conversions) except arrays, records and `()`;
  `< <= > >=` on int, float, truth, money (one currency), time, text. Money comparisons with
  two different known currencies are E0308.
- Conditions of `if`, `while` and `assert` must be bool; a truth is E0301 with the help
  "compare it with a threshold". Rules return truth (declared `-> truth` or omitted).

Names (value position), innermost first: locals and parameters, the module's items, import
bindings, a variant of the expected enum type, the module's own enum variants when exactly one
enum declares the name (else E0101 "ambiguous"), built-ins. An item shadows a built-in in its
module (`axiom truth` makes `truth` the axiom's value there). Types live in their own
namespace: built-in type names first, then records/enums, then `module.Type`. An axiom used as
a value is a truth (its effective truth, fixed by the truth phase). Functions, rules, records,
enums, modules and built-ins are not values (E0301 "expected a value").

Calls: arguments may be named (`ramp(x, lo: 1.0, hi: 2.0)`): positional ones first, each
parameter once, else E0302. `Checked.call_args` gives the arguments in parameter order, which
is also evaluation order. `Rec(field: v, ...)` constructs a record: every field exactly once,
named (E0315). Built-ins pick the first overload that accepts the argument types.

Statements: `let` binds once; assigning to a `let`, parameter, constant or loop variable is
E0307; to anything but a variable, field or element of a variable, E0313. Shadowing in an
inner block is allowed, two bindings of one name in one block are E0102 (parameters live in a
scope around the body, so `var n = n` re-binds a parameter mutably). Compound assignment
applies the operator's rules and the result must fit the target. `match` used as a statement
(an expression statement) may have block arms and its value is `()`; used as a value, every
arm is an expression and the arms join to one type (or check against the expected type).
Literal patterns (int, text, bool) need `_` unless they cover true and false. A unit fn
whose `= expr` body is a `match` treats it as a statement.

Control flow: a statement "diverges" when control never reaches the next one: `return`,
`break`, `continue`, `if`/`else` whose branches all diverge, a `match` statement whose arms
all diverge, `while true` without a `break` of its own. A fn with a result type whose body
does not diverge is E0306; the first statement after a diverging one in a block is W0104 (also
match arms after `_`).

Constants: the initialiser may use literals, operators, other constants, axioms, enum
variants, records, arrays, `match` and the (pure) built-ins; calling a fn or rule is E0316, as
is a constant that depends on itself. Values are folded for literals, constant names and
unary/binary operators on them (int overflow or division by zero leaves the value None: the
reference evaluator will report it).

Warnings: W0101 private const/fn/rule/record/enum never used (from outside its own body) in a
non-root module; W0102 an import nothing is used from; W0103 a `let`/`var` never read (assigning
is not reading; names starting with `_` and variables whose type is already an error are
exempt); W0104 unreachable code. Bindings of imports that failed to load (E0103/E0104) are
neither reported as undefined nor as unused.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Union

from lwas.syntax import tree as ast
from lwas.semantics.builtins import BUILTINS, Builtin
from lwas.syntax.diagnostics import Label, Sink
from lwas.semantics.resolve import ModuleInfo, Program
from lwas.syntax.source import Span
from lwas.semantics.service import HOST_CALLS
from lwas.semantics.types import (BOOL, CURRENCY_EXPONENTS, ERROR, FLOAT, INT, INT_MAX, INT_MIN, MONEY,
                    PRIMITIVE_NAMES, TEXT, TIME, TRUTH, UNIT, ArrayT, EnumT, MapT, MoneyT, MoneyValue,
                    map_key_ok,
                    RecordT, Signature, Type, TypeVar, money_t)

# ---------------------------------------------------------------- what names refer to


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


def check_program(program: Program, sink: Sink) -> Checked:
    return _Checker(program, sink).run()


# ---------------------------------------------------------------- helpers

_ERR = object()  # a reference that already failed (reported)


def _end_span(span: Span) -> Span:
    """The last character of a span (a body's closing brace)."""
    end = max(span.end - 1, span.start)
    col = max(span.end_col - 1, 1)
    return Span(span.file, span.end_line, col, span.end_line, col + 1, end, end + 1)


def _close(name: str, candidates) -> str | None:
    """The candidate spelled most like name; never one a user cannot write (`metric$`)."""
    m = difflib.get_close_matches(name, [c for c in candidates if "$" not in c], n=1, cutoff=0.7)
    return m[0] if m else None


_COMMON_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CNY", "CAD", "AUD", "INR", "BRL", "MXN",
                      "SEK", "NOK", "DKK", "PLN", "KRW", "SGD", "HKD", "NZD", "ZAR")


def _close_currency(code: str) -> str | None:
    """A likely intended ISO 4217 code: common currencies first (`USX` -> `USD`)."""
    cands = difflib.get_close_matches(code.upper(), list(CURRENCY_EXPONENTS), n=8, cutoff=0.6)
    if not cands:
        return None
    for c in _COMMON_CURRENCIES:
        if c in cands and c[:2] == code.upper()[:2]:
            return c
    for c in _COMMON_CURRENCIES:
        if c in cands:
            return c
    return cands[0]


def _q(names) -> str:
    names = [f"`{n}`" for n in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _is_ns(ref) -> bool:
    c = ref.__class__
    return c is ModuleRef or (c is ItemRef and (ref.kind == "enum" or ref.kind == "record"))


_BUILTIN_REFS = {n: BuiltinRef(b) for n, b in BUILTINS.items()}
_ORDERED = (INT, FLOAT, TRUTH, TIME, TEXT)
_OP_MESSAGE = {"+": "cannot add `{r}` to `{l}`", "-": "cannot subtract `{r}` from `{l}`",
               "*": "cannot multiply `{l}` by `{r}`", "/": "cannot divide `{l}` by `{r}`",
               "%": "cannot take the remainder of `{l}` divided by `{r}`"}


class _Checker:
    def __init__(self, program: Program, sink: Sink):
        self.program = program
        self.sink = sink
        self.out = Checked()
        o = self.out
        self.types = o.types
        self.refs = o.refs
        self.coercions = o.coercions
        self.item_refs = o.item_refs
        self.module_refs: dict = {}
        self.variants_of: dict = {}  # ModuleInfo -> {variant name: [VariantRef]}
        self.field_refs: dict = {}  # RecordT -> {name: FieldRef}
        self.variant_refs: dict = {}  # EnumT -> [VariantRef by tag]
        self.builtin_sigs: dict = {}  # (name, parameter types) -> Signature
        self.const_busy: set = set()
        # per-body state
        self.env: dict[str, Local] = {}
        self.scopes: list[dict] = []
        self.scope_spans: list[Span] = []
        self.loops: list[list[bool]] = []
        self.ret: Type | None = None
        self.ret_span: Span | None = None
        self.kind = "fn"
        self.cur_item = None
        self.mod: ModuleInfo | None = None
        self.items: dict = {}
        self.imports: dict = {}
        self.mvariants: dict = {}

        self.ex = {
            ast.IntLit: self.e_int, ast.FloatLit: self.e_float, ast.BoolLit: self.e_bool,
            ast.TextLit: self.e_text, ast.MoneyLit: self.e_money, ast.Name: self.e_name,
            ast.Unary: self.e_unary, ast.Binary: self.e_binary, ast.Call: self.e_call,
            ast.Field: self.e_field, ast.Index: self.e_index, ast.ArrayLit: self.e_array,
            ast.MapLit: self.e_map, ast.Match: self.e_match,
        }
        self.st = {
            ast.Let: self.s_let, ast.Assign: self.s_assign, ast.If: self.s_if,
            ast.While: self.s_while, ast.ForRange: self.s_for_range, ast.ForEach: self.s_for_each,
            ast.Return: self.s_return, ast.Break: self.s_break, ast.Continue: self.s_continue,
            ast.Assert: self.s_assert, ast.ExprStmt: self.s_expr,
            ast.Append: self.s_append, ast.Delete: self.s_delete,
        }
        self.binops = {
            "+": self.b_arith, "-": self.b_arith, "*": self.b_arith, "/": self.b_arith,
            "%": self.b_arith, "and": self.b_logic, "or": self.b_logic, "==": self.b_eq,
            "!=": self.b_eq, "<": self.b_ord, "<=": self.b_ord, ">": self.b_ord, ">=": self.b_ord,
            "in": self.b_in,
        }

    # ============================================================ driver

    def run(self) -> Checked:
        mods = self.program.modules
        for m in mods:
            self._declare(m)
        for m in mods:
            self._enter(m)
            self._members(m)
        self._recursive_records()
        for m in mods:
            self._enter(m)
            for it in m.tree.items:
                if it.__class__ is ast.ConstDecl:
                    self._const_type(self.item_refs[it])
        for m in mods:
            self._enter(m)
            self._bodies(m)
        self._warnings()
        return self.out

    def _enter(self, m: ModuleInfo) -> None:
        self.mod = m
        self.items = m.items
        self.imports = m.imports
        self.mvariants = self.variants_of[m]

    def _declare(self, m: ModuleInfo) -> None:
        """Item refs and type shells (records and enums may refer to each other in any order)."""
        o = self.out
        variants: dict[str, list] = {}
        self.variants_of[m] = variants
        self.module_refs[m] = ModuleRef(m)
        for it in m.tree.items:
            kind = _KIND.get(it.__class__)
            if kind is None:
                continue
            self.item_refs[it] = ItemRef(kind, it, m)
            if kind == "record":
                o.records[it] = RecordT(it.name, m.name, it)
            elif kind == "enum":
                names: list[str] = []
                index: dict[str, int] = {}
                for v in it.variants:
                    if v.name in index:
                        self._dup(v.name, v.span, it.variants[index[v.name]].span, "variant")
                        continue
                    index[v.name] = len(names)
                    names.append(v.name)
                et = EnumT(it.name, m.name, it, tuple(names), index)
                o.enums[it] = et
                vrefs = self.variant_refs[et] = [VariantRef(et, i) for i in range(len(names))]
                if m.items.get(it.name) is it:
                    for i, n in enumerate(names):
                        variants.setdefault(n, []).append(vrefs[i])

    def _dup(self, name: str, span: Span, first: Span, what: str) -> None:
        self.sink.error("E0102", f"the {what} `{name}` is defined more than once", span,
                        label=f"`{name}` redefined here",
                        labels=(Label(first, f"first definition of `{name}` here"),),
                        help="rename or remove one of the two")

    def _members(self, m: ModuleInfo) -> None:
        """Record fields and fn/rule signatures."""
        o = self.out
        for it in m.tree.items:
            c = it.__class__
            if c is ast.RecordDecl:
                self.cur_item = it
                rt = o.records[it]
                seen: dict[str, Span] = {}
                for f in it.fields:
                    t = self.resolve_type(f.type)
                    if f.name in seen:
                        self._dup(f.name, f.span, seen[f.name], "field")
                        continue
                    seen[f.name] = f.span
                    rt.fields[f.name] = t
                self.field_refs[rt] = {n: FieldRef(rt, i) for i, n in enumerate(rt.fields)}
                for f in it.fields:
                    if f.currency_field is not None:
                        self._currency_field(rt, f)
                    if f.type.__class__ is ast.NamedType and f.type.name.parts == ("json",):
                        rt.json_fields.append(f.name)
            elif c is ast.FnDecl or c is ast.RuleDecl:
                self.cur_item = it
                seen = {}
                params = []
                for p in it.params:
                    t = self.resolve_type(p.type)
                    if p.name in seen:
                        self._dup(p.name, p.span, seen[p.name], "parameter")
                    seen[p.name] = p.span
                    params.append((p.name, t))
                if c is ast.RuleDecl:
                    ret = TRUTH
                    if it.ret is not None:
                        rt_ = self.resolve_type(it.ret)
                        if rt_ is not TRUTH and rt_ is not ERROR:
                            self.sink.error("E0301", f"mismatched types: a rule returns `truth`, not `{rt_}`",
                                            it.ret.span, label="expected `truth`",
                                            help="write `-> truth` or leave the result type out; "
                                                 "use a `fn` to compute other values")
                else:
                    ret = self.resolve_type(it.ret) if it.ret is not None else UNIT
                o.signatures[it] = Signature(tuple(params), ret)
        self.cur_item = None

    def _defaults(self, decl: ast.RecordDecl) -> None:
        """`field: T = value`: the value must be a constant of the field's type (a literal, a
        constant, an enum variant, `[]` or `{}`); its value form goes to RecordT.defaults."""
        rt = self.out.records[decl]
        for f in decl.fields:
            if f.default is None or f.name not in rt.fields:
                continue
            ft = rt.fields[f.name]
            self._reset_body(decl, "const", None, None)
            n_errors = len(self.sink.items)
            self.check(f.default, ft, f"expected `{ft}` because of the field's type", f.type.span)
            if any(d.is_error for d in self.sink.items[n_errors:]) or ft is ERROR:
                continue
            value = self._default_value(f.default, ft)
            if value is None:
                self.sink.error("E0323", f"the default of `{f.name}` is not a constant", f.default.span,
                                label="computed at run time",
                                help="a field's default is a literal, a constant, an enum variant, "
                                     "`[]` or `{}`")
                continue
            rt.defaults[f.name] = value
        self.cur_item = None

    def _default_value(self, e, t: Type):
        """The value form (lwas.abi) of a default, or None if it is not a constant."""
        c = e.__class__
        if c is ast.ArrayLit or c is ast.MapLit:
            return None if (e.elems if c is ast.ArrayLit else e.entries) else ([] if c is ast.ArrayLit else {})
        ref = self.refs.get(e)
        if ref.__class__ is VariantRef:
            return ref.name
        v = self._fold(e)
        if v is None:
            return None
        if isinstance(v, MoneyValue):
            return [v.minor, v.currency]
        if t is TRUTH or t is FLOAT:
            return float(v)
        return v

    def _currency_field(self, rt: RecordT, f) -> None:
        """`amount: money in currency`: a money field whose JSON form is a bare number, with its
        currency in the named text field of the same record."""
        t = rt.fields.get(f.name)
        other = rt.fields.get(f.currency_field)
        if t is not None and t.__class__ is not MoneyT and t is not ERROR:
            self.sink.error("E0321", f"`{f.name}: {t} in {f.currency_field}`: only money has a currency",
                            f.span, label="`in` names where a money field's currency is",
                            help=f"declare `{f.name}: money in {f.currency_field}`, or drop `in ...`")
        elif other is not TEXT:
            what = "is not a field of the record" if other is None else f"is `{other}`, not `text`"
            self.sink.error("E0321", f"currency field `{f.currency_field}` {what}", f.span,
                            label=f"`{f.name}` takes its currency from `{f.currency_field}`",
                            help=f"add `{f.currency_field}: text` to `{rt.name}` (ISO 4217 codes, e.g. \"USD\")")
        else:
            rt.currency_fields[f.name] = f.currency_field

    def _recursive_records(self) -> None:
        """E0319 for a record that contains itself by value (through records, not arrays)."""
        state: dict = {}  # RecordT -> False while on the path, True when done
        path: list = []

        def visit(rt: RecordT) -> None:
            s = state.get(rt)
            if s is True:
                return
            if s is False:
                cycle = path[path.index(rt):] + [rt]
                chain = " -> ".join(r.name for r in cycle)
                self.sink.error("E0319", f"recursive record `{rt.name}` has infinite size",
                                rt.decl.name_span, label=f"`{rt.name}` contains itself",
                                notes=(f"the cycle: {chain}",),
                                help="hold the inner value in an array, e.g. `children: [Node]`")
                return
            state[rt] = False
            path.append(rt)
            for ft in rt.fields.values():
                if ft.__class__ is RecordT:
                    visit(ft)
            path.pop()
            state[rt] = True

        for rt in self.out.records.values():
            visit(rt)

    def _bodies(self, m: ModuleInfo) -> None:
        for it in m.tree.items:
            c = it.__class__
            if c is ast.RecordDecl:
                self._defaults(it)
            elif c is ast.RuleDecl or (c is ast.FnDecl and it.extern is None):
                self._check_fn(it)  # an extern fn has no body: the runtime provides it
            elif c is ast.TestDecl:
                self._check_test(it)
            elif c is ast.AxiomDecl:
                for q in it.requires:
                    self._mark_qual(q, False)
                for q in it.contradicts:
                    self._mark_qual(q, False)

    # ============================================================ types

    def resolve_type(self, te) -> Type:
        t = self._resolve_type(te)
        self.out.type_exprs[te] = t
        return t

    def _resolve_type(self, te) -> Type:
        if te.__class__ is ast.ArrayType:
            el = self.resolve_type(te.elem)
            return ERROR if el is ERROR else ArrayT(el)
        if te.__class__ is ast.MapType:
            k = self.resolve_type(te.key)
            v = self.resolve_type(te.value)
            if k is not ERROR and not map_key_ok(k):
                self.sink.error("E0322", f"`{k}` cannot key a map", te.key.span,
                                label="map keys are `int`, `text`, `time`, `bool` or an enum",
                                help="key the map by an id (`text` or `int`) and keep the rest in the value")
                return ERROR
            return ERROR if k is ERROR or v is ERROR else MapT(k, v)
        q = te.name
        parts = q.parts
        if len(parts) == 1:
            n = parts[0]
            p = PRIMITIVE_NAMES.get(n)
            if p is not None:
                return p
            if n == "money":
                return MONEY
            item = self.items.get(n)
            if item is not None and (item.__class__ is ast.RecordDecl or item.__class__ is ast.EnumDecl):
                if item is not self.cur_item:
                    self.mod.used.add(n)
                self.refs[te] = self.item_refs[item]
                return self._decl_type(item)
            notes = ()
            if item is not None and item.__class__ in _KIND:
                notes = (f"`{n}` is a {_KIND_WORD[_KIND[item.__class__]]}, not a type",)
            cands = [k for k, v in self.items.items() if v.__class__ in (ast.RecordDecl, ast.EnumDecl)]
            cands += list(PRIMITIVE_NAMES) + ["money"]
            sugg = _close(n, cands)
            self.sink.error("E0105", f"cannot find type `{n}` in this scope", te.span,
                            label="not a type", notes=notes,
                            help=f"a type with a similar name exists: `{sugg}`" if sugg else
                            "declare it as a `record` or `enum`, or import the module that declares it")
            return ERROR
        if len(parts) == 2:
            state = self.items.get(q.text)  # `economy.State`: the state record of a service here
            if state is not None and state.__class__ is ast.RecordDecl:
                self.refs[te] = self.item_refs[state]
                return self._decl_type(state)
            m = self.imports.get(parts[0])
            if m is None:
                if parts[0] in self.mod.missing_imports:
                    return ERROR
                self.sink.error("E0105", f"cannot find type `{q.text}`: no module `{parts[0]}` is imported",
                                te.span, label="unknown module",
                                help=f"import it first: `import {parts[0]}`")
                return ERROR
            self.mod.used.add(parts[0])
            item = m.exported(parts[1])
            if item is not None and (item.__class__ is ast.RecordDecl or item.__class__ is ast.EnumDecl):
                m.used.add(parts[1])
                self.refs[te] = self.item_refs[item]
                return self._decl_type(item)
            notes = self._private_note(m, parts[1])
            self.sink.error("E0105", f"cannot find type `{parts[1]}` in module `{m.name}`", te.span,
                            label="not a type of that module", notes=notes)
            return ERROR
        self.sink.error("E0105", f"cannot find type `{q.text}`", te.span, label="unknown type",
                        help="name a type as `Type` or `module.Type`")
        return ERROR

    def _decl_type(self, decl) -> Type:
        if decl.__class__ is ast.RecordDecl:
            return self.out.records[decl]
        return self.out.enums[decl]

    def _private_note(self, m: ModuleInfo, name: str) -> tuple:
        item = m.items.get(name)
        if item is not None and item.__class__ in _KIND:
            return (f"`{name}` is declared in `{m.name}` but is not `pub`",)
        return ()

    # ============================================================ bodies

    def _reset_body(self, item, kind: str, ret: Type | None, ret_span: Span | None) -> None:
        self.env = {}
        self.scopes = []
        self.scope_spans = []
        self.loops = []
        self.kind = kind
        self.ret = ret
        self.ret_span = ret_span
        self.cur_item = item

    def _param_defaults(self, d) -> None:
        """`limit: int = 50`: only a `get` route's query parameters have defaults (the service
        stage keeps them on its route functions, whose names hold `$`); the value form of each
        goes to Checked.param_defaults."""
        sig = self.out.signatures[d]
        for p, (_, t) in zip(d.params, sig.params):
            if p.default is None:
                continue
            self._reset_body(d, "const", None, None)
            if "$" not in d.name:
                self.sink.error("E0323", f"parameter `{p.name}` has a default", p.default.span,
                                label="only a `get` route's query parameters have defaults",
                                help="pass the value at every call, or give the function another name for the common case")
                continue
            n_errors = len(self.sink.items)
            self.check(p.default, t, f"expected `{t}` because of the parameter's type", p.type.span)
            if any(x.is_error for x in self.sink.items[n_errors:]) or t is ERROR:
                continue
            value = self._default_value(p.default, t)
            if value is None:
                self.sink.error("E0323", f"the default of `{p.name}` is not a constant", p.default.span,
                                label="computed at run time",
                                help="a default is a literal, a constant or an enum variant")
                continue
            self.out.param_defaults[p] = value

    def _check_fn(self, d) -> None:
        if any(p.default is not None for p in d.params):
            self._param_defaults(d)
        sig = self.out.signatures[d]
        is_rule = d.__class__ is ast.RuleDecl
        self._reset_body(d, "rule" if is_rule else "fn", sig.ret,
                         d.ret.span if d.ret is not None else d.name_span)
        body = d.body
        scope = {}
        self.scopes.append(scope)
        self.scope_spans.append(body.span)
        bindings = self.out.bindings
        for p, (_, t) in zip(d.params, sig.params):
            loc = Local(p.name, t, "param", p, p.span, body.span)
            bindings[p] = loc
            if p.name not in scope:
                scope[p.name] = None
                self.env[p.name] = loc
        if body.__class__ is ast.Block:
            diverges = self.block(body)
            if not diverges and sig.ret is not UNIT and sig.ret is not ERROR:
                what = "rule" if is_rule else "function"
                labels = (Label(d.ret.span, f"`{d.name}` returns `{sig.ret}`"),) if d.ret is not None else ()
                help_ = "add a `return` at the end, or an `else` branch that returns"
                if body.stmts and body.stmts[-1].__class__ is ast.ExprStmt:
                    help_ = "a block has no implicit result: write `return` before the last expression"
                self.sink.error("E0306", f"missing return in {what} `{d.name}`", _end_span(body.span),
                                label=f"this path reaches the end of `{d.name}` without returning `{sig.ret}`",
                                labels=labels, help=help_)
        elif sig.ret is UNIT:
            if body.__class__ is ast.Match:  # `fn f(e: E) = match e { ... }`: arms may be blocks
                self.match_stmt(body)
            else:
                self.expr(body)
        else:
            why = f"expected `{sig.ret}` because of the return type"
            if is_rule and d.ret is None:
                why = "expected `truth`: a rule's value is a truth"
            self.check(body, sig.ret, why)
        if is_rule:
            for q in d.requires:
                self._mark_qual(q, True)
        self.cur_item = None

    def _check_test(self, d) -> None:
        self._reset_body(d, "test", None, None)
        self.block(d.body)
        self.cur_item = None

    def _mark_qual(self, q: ast.QualName, record: bool) -> None:
        """A name in `requires`/`contradicts`: mark it used (the truth phase judges it)."""
        parts = q.parts
        if len(parts) == 1:
            item = self.items.get(parts[0])
            if item is not None and item.__class__ in _KIND:
                self.mod.used.add(parts[0])
                if record and item.__class__ is ast.AxiomDecl:
                    self.refs[q] = self.item_refs[item]
        elif len(parts) == 2:
            m = self.imports.get(parts[0])
            if m is not None:
                self.mod.used.add(parts[0])
                item = m.exported(parts[1])
                if item is not None:
                    m.used.add(parts[1])
                    if record and item.__class__ is ast.AxiomDecl:
                        self.refs[q] = self.item_refs[item]

    # ------------------------------------------------------------ constants

    def _const_type(self, ref: ItemRef) -> Type:
        decl = ref.decl
        t = self.out.const_types.get(decl)
        if t is not None:
            return t
        if decl in self.const_busy:
            self.sink.error("E0316", f"constant `{decl.name}` depends on itself", decl.name_span,
                            label="its initialiser refers back to it",
                            help="a constant must be computable from literals and other constants")
            self.out.const_types[decl] = ERROR
            return ERROR
        return self._check_const(decl, ref.module)

    def _check_const(self, decl, m: ModuleInfo) -> Type:
        saved = (self.mod, self.env, self.scopes, self.scope_spans, self.loops, self.kind,
                 self.ret, self.ret_span, self.cur_item)
        self._enter(m)
        self._reset_body(decl, "const", None, None)
        self.const_busy.add(decl)
        n_errors = len(self.sink.items)
        if decl.type is not None:
            declared = self.resolve_type(decl.type)
            t = self.check(decl.value, declared, f"expected `{declared}` because of the constant's type")
            ct = declared
            if declared is MONEY and t.__class__ is MoneyT:
                ct = t
        else:
            ct = self.expr(decl.value)
            if ct is UNIT:
                self._no_value(decl.value)
                ct = ERROR
        self.const_busy.discard(decl)
        if decl not in self.out.const_types:  # a cycle may have set ERROR already
            self.out.const_types[decl] = ct
        bad = self._nonconst(decl.value)
        if bad is not None:
            ref = self.refs.get(bad.callee)
            what = _KIND_WORD.get(getattr(ref, "kind", ""), "function")
            self.sink.error("E0316", "constant expression required", bad.span,
                            label=f"calls a {what}, which is not allowed in a `const`",
                            notes=("a `const` may use literals, operators, other constants and the "
                                   "built-ins (`float`, `ramp`, ...)",),
                            help="make it a `fn` instead, or compute the value by hand")
        value = None
        if not any(d.is_error for d in self.sink.items[n_errors:]):
            value = self._fold(decl.value)
            if value is not None and ct is TRUTH and isinstance(value, bool):
                value = 1.0 if value else 0.0
        self.out.const_values[decl] = value
        (mod, self.env, self.scopes, self.scope_spans, self.loops, self.kind, self.ret,
         self.ret_span, self.cur_item) = saved
        if mod is not None:
            self._enter(mod)
        return self.out.const_types[decl]

    def _nonconst(self, e):
        """The first call of a fn or rule inside a constant initialiser, or None."""
        stack = [e]
        while stack:
            n = stack.pop()
            c = n.__class__
            if c is ast.Call:
                ref = self.refs.get(n.callee)
                if ref.__class__ is ItemRef and (ref.kind == "fn" or ref.kind == "rule"):
                    return n
                stack.extend(a.value for a in n.args)
            elif c is ast.Binary:
                stack.append(n.left)
                stack.append(n.right)
            elif c is ast.Unary:
                stack.append(n.operand)
            elif c is ast.Field:
                stack.append(n.obj)
            elif c is ast.Index:
                stack.append(n.obj)
                stack.append(n.index)
            elif c is ast.ArrayLit:
                stack.extend(n.elems)
            elif c is ast.MapLit:
                for x in n.entries:
                    stack.append(x.key)
                    stack.append(x.value)
            elif c is ast.Match:
                stack.append(n.subject)
                for a in n.arms:
                    if a.body.__class__ is not ast.Block:
                        stack.append(a.body)
        return None

    def _fold(self, e):
        """The value of a simple constant expression, or None."""
        c = e.__class__
        if c is ast.IntLit:
            return e.value if INT_MIN <= e.value <= INT_MAX else None
        if c is ast.FloatLit:
            return e.value if math.isfinite(e.value) else None
        if c is ast.BoolLit or c is ast.TextLit:
            return e.value
        if c is ast.MoneyLit:
            return self.out.money_values.get(e)
        if c is ast.Name or c is ast.Field:
            ref = self.refs.get(e)
            if ref.__class__ is ItemRef and ref.kind == "const":
                return self.out.const_values.get(ref.decl)
            return None
        if c is ast.Unary:
            v = self._fold(e.operand)
            if v is None:
                return None
            t = self.types.get(e)
            if e.op == "not":
                if t is BOOL:
                    return not v
                return 1.0 - float(v)
            if t is INT:
                return -v if INT_MIN <= -v <= INT_MAX else None
            if t is FLOAT:
                return -float(v)
            if isinstance(v, MoneyValue):
                return MoneyValue(-v.minor, v.currency) if -v.minor <= INT_MAX else None
            return None
        if c is ast.Binary:
            a = self._fold(e.left)
            if a is None:
                return None
            b = self._fold(e.right)
            if b is None:
                return None
            return _fold_binary(e.op, a, b, self.types.get(e))
        return None

    # ============================================================ statements

    def block(self, b: ast.Block) -> bool:
        """Checks a block in a new scope; True when it diverges."""
        scope: dict = {}
        self.scopes.append(scope)
        self.scope_spans.append(b.span)
        st = self.st
        diverges = False
        warned = False
        for s in b.stmts:
            if diverges and not warned:
                warned = True
                self.sink.warning("W0104", "unreachable statement", s.span,
                                  label="this can never run",
                                  help="remove it, or move it before the `return`, `break` or `continue`")
            if st[s.__class__](s):
                diverges = True
        self._pop_scope()
        return diverges

    def _pop_scope(self) -> None:
        scope = self.scopes.pop()
        self.scope_spans.pop()
        if scope:
            env = self.env
            for name, prev in scope.items():
                if prev is None:
                    del env[name]
                else:
                    env[name] = prev

    def _bind(self, loc: Local, key=None) -> None:
        scope = self.scopes[-1]
        name = loc.name
        if name in scope:
            first = self.env.get(name)
            if first is not None:
                self._dup(name, loc.span, first.span, "variable")
        else:
            scope[name] = self.env.get(name)
        self.env[name] = loc
        self.out.locals.append(loc)
        self.out.bindings[loc.node if key is None else key] = loc

    def s_let(self, s: ast.Let) -> bool:
        if s.type is not None:
            t = self.resolve_type(s.type)
            self.check(s.value, t, f"expected `{t}` because of the annotation", s.type.span)
        else:
            t = self.expr(s.value)
            if t is UNIT:
                self._no_value(s.value)
                t = ERROR
        self.out.let_types[s] = t
        self._bind(Local(s.name, t, "var" if s.mutable else "let", s, s.name_span, self.scope_spans[-1]))
        return False

    def _no_value(self, e) -> None:
        self.sink.error("E0301", "mismatched types: expected a value, found `()`", e.span,
                        label="this returns nothing",
                        help="only functions with a result type (`-> T`) give a value")

    def s_assign(self, s: ast.Assign) -> bool:
        target = s.target
        tc = target.__class__
        t = ERROR
        if tc is ast.Name:
            loc = self.env.get(target.name)
            if loc is not None:
                self.refs[target] = loc
                t = loc.type
                self.types[target] = t
                if loc.kind != "var":
                    self._immutable(s, target, loc)
                else:
                    loc.assigned = True
            else:
                ref = self.lookup(target.name, None)
                if ref is None:
                    self.undefined(target)
                else:
                    self.refs[target] = ref
                    self._not_assignable(s, target, ref)
                self.expr(s.value)
                return False
        elif tc is ast.Field or tc is ast.Index:
            root = target
            while root.__class__ is ast.Field or root.__class__ is ast.Index:
                root = root.obj
            loc = self.env.get(root.name) if root.__class__ is ast.Name else None
            was_used = loc.used if loc is not None else False
            t = self.expr(target)
            if loc is not None:
                loc.used = was_used
                if loc.kind != "var":
                    self._immutable(s, root, loc)
                    t = ERROR
                else:
                    loc.assigned = True
            elif t is not ERROR:
                ref = self.refs.get(target) if tc is ast.Field else None
                if ref.__class__ is not FieldRef and ref is not None:
                    self._not_assignable(s, target, ref)
                else:
                    rref = self.refs.get(root) if root.__class__ is ast.Name else None
                    if rref.__class__ is ItemRef and rref.kind == "const":
                        self._not_assignable(s, root, rref)
                    elif rref.__class__ is ModuleRef:
                        self._not_assignable(s, target, self.refs.get(target.obj) or rref)
                    else:
                        self.sink.error("E0313", "invalid assignment target", target.span,
                                        label="this is a temporary value, not a variable",
                                        help="assign to a `var`, or to a field or element of one")
                t = ERROR
        else:
            self.expr(target)
            self.sink.error("E0313", "invalid assignment target", target.span,
                            label="cannot assign to this expression",
                            help="only variables, record fields and array elements can be assigned to")
            t = ERROR
        op = s.op
        if op == "=":
            self.check(s.value, t, f"expected `{t}` because of the type of the target")
            return False
        vt = self.expr(s.value)
        if t is ERROR or vt is ERROR:
            return False
        bop = op[0]
        rt = self._arith(bop, t, vt, s, target, s.value)
        if rt is ERROR:
            return False
        if not self._convertible(rt, t):
            self.sink.error("E0301", f"mismatched types: `{target_text(target)} {bop} ...` gives `{rt}`, "
                                     f"which cannot be stored in a `{t}`", s.span,
                            label=f"the result is `{rt}`",
                            help="write the assignment out with an explicit conversion")
        return False

    def _immutable(self, s, target, loc: Local) -> None:
        name = loc.name
        if loc.kind == "param":
            msg = f"cannot assign to parameter `{name}`"
            help_ = f"parameters are immutable; copy it into a variable: `var {name} = {name}`"
            first = "parameter declared here"
        elif loc.kind == "for":
            msg = f"cannot assign to loop variable `{name}`"
            help_ = f"loop variables are immutable; copy it: `var {name}2 = {name}`"
            first = "loop variable bound here"
        else:
            msg = f"cannot assign twice to immutable binding `{name}`"
            help_ = f"declare it `var`: `var {name} = {_snippet(loc.node.value)}`"
            first = "first bound here"
        self.sink.error("E0307", msg, s.span, label="cannot assign to an immutable binding",
                        labels=(Label(loc.span, first),), help=help_)

    def _not_assignable(self, s, target, ref) -> None:
        if ref.__class__ is ItemRef and ref.kind == "const":
            self.sink.error("E0307", f"cannot assign to constant `{ref.name}`", s.span,
                            label="constants cannot change",
                            labels=(Label(ref.decl.name_span, "constant declared here"),),
                            help="declare it `var` inside a function body to have a variable")
            return
        what = self._describe_ref(ref)
        self.sink.error("E0313", "invalid assignment target", target.span,
                        label=f"`{target_text(target)}` is {what}, not a variable",
                        help="only variables, record fields and array elements can be assigned to")

    def s_if(self, s: ast.If) -> bool:
        self.cond(s.cond, "`if` conditions")
        d = self.block(s.then)
        o = s.orelse
        if o is None:
            return False
        if o.__class__ is ast.If:
            d2 = self.s_if(o)
        else:
            d2 = self.block(o)
        return d and d2

    def s_while(self, s: ast.While) -> bool:
        self.cond(s.cond, "`while` conditions")
        flag = [False]
        self.loops.append(flag)
        self.block(s.body)
        self.loops.pop()
        c = s.cond
        return c.__class__ is ast.BoolLit and c.value is True and not flag[0]

    def _loop_body(self, loc: Local, body: ast.Block, value: Local | None = None) -> None:
        self.scopes.append({})
        self.scope_spans.append(body.span)
        self._bind(loc)
        if value is not None:
            self._bind(value, (loc.node, "value"))
        self.loops.append([False])
        self.block(body)
        self.loops.pop()
        self._pop_scope()

    def s_for_range(self, s: ast.ForRange) -> bool:
        self.check(s.start, INT, "a range `a..b` counts with `int`s")
        self.check(s.end, INT, "a range `a..b` counts with `int`s")
        self._loop_body(Local(s.var, INT, "for", s, s.var_span, s.body.span), s.body)
        return False

    def s_for_each(self, s: ast.ForEach) -> bool:
        t = self.expr(s.iterable)
        el = vt = ERROR
        if t.__class__ is MapT:
            el, vt = t.key, t.value
        elif t.__class__ is ArrayT and s.value_var is None:
            el = t.elem
        elif t.__class__ is ArrayT:
            self.sink.error("E0301", f"mismatched types: expected a map, found `{t}`", s.iterable.span,
                            label="`for k, v in ...` walks a map's keys and values",
                            help=f"walk the elements with `for {s.var} in ...`, or count: "
                                 f"`for i in 0..len(xs)`")
        elif t is not ERROR:
            self.sink.error("E0301", f"mismatched types: expected an array or a map, found `{t}`",
                            s.iterable.span, label="`for x in ...` walks an array (or a map's keys)",
                            help="count with a range instead: `for i in 0..n`" if t is INT else None)
        value = None
        if s.value_var is not None:
            value = Local(s.value_var, vt, "for", s, s.value_span, s.body.span)
        self._loop_body(Local(s.var, el, "for", s, s.var_span, s.body.span), s.body, value)
        return False

    def s_delete(self, s: ast.Delete) -> bool:
        """`delete m[k]`: like an assignment to `m[k]` (m must be a `var`, or state in an `on`
        block), without reading the element: deleting an absent key changes nothing."""
        target = s.target
        if target.__class__ is not ast.Index:
            self.expr(target)
            self.sink.error("E0313", "invalid `delete` target", target.span,
                            label="`delete` removes a key from a map: `delete m[k]`")
            return False
        mt = self.expr(target.obj)
        if mt is ERROR:
            self.expr(target.index)
            return False
        if mt.__class__ is not MapT:
            self.expr(target.index)
            self.sink.error("E0311", f"cannot `delete` from a value of type `{mt}`", target.obj.span,
                            label="not a map",
                            help="arrays keep their length: build a new one without the element"
                            if mt.__class__ is ArrayT else None)
            return False
        self.check(target.index, mt.key, f"map keys are `{mt.key}`")
        self.types[target] = mt.value
        root = target.obj
        while root.__class__ is ast.Field or root.__class__ is ast.Index:
            root = root.obj
        loc = self.env.get(root.name) if root.__class__ is ast.Name else None
        if loc is None:
            self.sink.error("E0313", "invalid `delete` target", target.span,
                            label="this is not a variable", help="delete from a `var`: `var m2 = m` first")
        elif loc.kind != "var":
            self._immutable(s, root, loc)
        else:
            loc.assigned = True
        return False

    def s_return(self, s: ast.Return) -> bool:
        v = s.value
        if self.kind == "test" or self.kind == "const":
            self.sink.error("E0317", "`return` outside a function", s.span,
                            label="a test ends when its block ends",
                            help="use `assert` to check values; remove the `return`")
            if v is not None:
                self.expr(v)
            return True
        ret = self.ret
        if v is None:
            if ret is not UNIT and ret is not ERROR:
                self.sink.error("E0301", f"mismatched types: expected `{ret}`, found `()`", s.span,
                                label=f"`return` needs a value of type `{ret}`",
                                labels=(Label(self.ret_span, f"the result type is `{ret}`"),))
            return True
        if ret is UNIT:
            t = self.expr(v)
            if t is not ERROR:
                self.sink.error("E0301", f"mismatched types: expected `()`, found `{t}`", v.span,
                                label="this function has no result type",
                                labels=(Label(self.ret_span, "declared without `-> T`"),),
                                help=f"declare the result type: `-> {t}`" if t is not UNIT else None)
            return True
        self.check(v, ret, f"expected `{ret}` because of the return type", self.ret_span)
        return True

    def s_break(self, s) -> bool:
        if not self.loops:
            self.sink.error("E0314", "`break` outside a loop", s.span,
                            label="cannot `break` outside a `while` or `for`")
            return False
        self.loops[-1][0] = True
        return True

    def s_continue(self, s) -> bool:
        if not self.loops:
            self.sink.error("E0314", "`continue` outside a loop", s.span,
                            label="cannot `continue` outside a `while` or `for`")
            return False
        return True

    def s_append(self, s: ast.Append) -> bool:
        """The service stage rewrites every `append` it owns, so one that reaches the checker is
        outside a service."""
        self.sink.error("E0402", "`append` outside a service", s.span, label="ledgers belong to services",
                        help="append in a service's post/put/patch/delete route or timer")
        return False

    def s_assert(self, s: ast.Assert) -> bool:
        self.cond(s.cond, "`assert` conditions")
        return False

    def s_expr(self, s: ast.ExprStmt) -> bool:
        e = s.expr
        if e.__class__ is ast.Match:
            return self.match_stmt(e)
        self.expr(e)
        return False

    def cond(self, e, what: str) -> None:
        t = self.expr(e)
        if t is BOOL or t is ERROR:
            return
        if t is TRUTH:
            self.sink.error("E0301", "mismatched types: expected `bool`, found `truth`", e.span,
                            label=f"{what} must be `bool`",
                            help="compare the truth with a threshold: `x >= 0.5`")
        else:
            self.sink.error("E0301", f"mismatched types: expected `bool`, found `{t}`", e.span,
                            label=f"{what} must be `bool`")

    # ============================================================ expressions

    def expr(self, e, exp: Type | None = None) -> Type:
        t = self.ex[e.__class__](e, exp)
        self.types[e] = t
        return t

    def check(self, e, exp: Type, why: str | None = None, why_span: Span | None = None) -> Type:
        """Checks e against an expected type (converting implicitly); returns e's own type."""
        t = self.ex[e.__class__](e, exp)
        self.types[e] = t
        if t is exp or t is ERROR or exp is ERROR:
            return t
        if self._convertible(t, exp):
            if t != exp:
                self.coercions[e] = exp
            return t
        self._mismatch(e, t, exp, why, why_span)
        return t

    def _convertible(self, t: Type, exp: Type) -> bool:
        if t is exp or t is ERROR or exp is ERROR:
            return True
        if exp is TRUTH:
            return t is BOOL
        if exp is FLOAT:
            return t is TRUTH
        tc = t.__class__
        if tc is MoneyT:
            return exp.__class__ is MoneyT and (
                t.currency is None or exp.currency is None or t.currency == exp.currency)
        if tc is ArrayT and exp.__class__ is ArrayT:
            a, b = t.elem, exp.elem
            return a == b or (a.__class__ is MoneyT and b is MONEY)
        if tc is MapT and exp.__class__ is MapT:
            a, b = t.value, exp.value
            return t.key == exp.key and (a == b or (a.__class__ is MoneyT and b is MONEY))
        return False

    def _mismatch(self, e, t: Type, exp: Type, why, why_span) -> None:
        labels = (Label(why_span, "expected because of this"),) if why_span is not None else ()
        if t.__class__ is MoneyT and exp.__class__ is MoneyT:
            self.sink.error("E0308", f"currency mismatch: expected `{exp.currency}`, found `{t.currency}`",
                            e.span, label=why or f"this is `{t.currency}`", labels=labels,
                            help="convert between currencies explicitly, with a declared rate")
            return
        if t is UNIT:
            self.sink.error("E0301", f"mismatched types: expected `{exp}`, found `()`", e.span,
                            label="this returns nothing", labels=labels)
            return
        self.sink.error("E0301", f"mismatched types: expected `{exp}`, found `{t}`", e.span,
                        label=why or f"expected `{exp}`", labels=labels,
                        help=_conversion_help(e, t, exp))

    # ------------------------------------------------------------ literals

    def e_int(self, e, exp) -> Type:
        v = e.value
        if v > INT_MAX or v < INT_MIN:
            self.sink.error("E0004", "integer literal out of range", e.span,
                            label="does not fit in a 64-bit `int`",
                            notes=("`int` holds -9223372036854775808 ..= 9223372036854775807",))
            return ERROR
        return INT

    def e_float(self, e, exp) -> Type:
        v = e.value
        if v != v or v in (math.inf, -math.inf):
            self.sink.error("E0004", "float literal out of range", e.span,
                            label="not a finite 64-bit float",
                            notes=("the largest finite float is about 1.8e308",))
            return ERROR
        if exp is TRUTH and 0.0 <= v <= 1.0:
            return TRUTH
        return FLOAT

    def e_bool(self, e, exp) -> Type:
        return BOOL

    def e_text(self, e, exp) -> Type:
        return TEXT

    def e_money(self, e, exp) -> Type:
        cur = e.currency
        n = CURRENCY_EXPONENTS.get(cur)
        if n is None:
            sugg = _close_currency(cur)
            self.sink.error("E0309", f"unknown currency `{cur}`", e.span,
                            label="not an ISO 4217 currency code",
                            help=f"did you mean `{sugg}`?" if sugg else
                            "write an ISO 4217 code: `USD`, `EUR`, `JPY`, ...")
            return MONEY
        whole, _, frac = e.amount.partition(".")
        if len(frac) > n:
            if n == 0:
                help_ = f"`{cur}` has no minor unit: write a whole amount, e.g. `{whole} {cur}`"
            else:
                help_ = f"`{cur}` amounts have at most {_plural(n, 'decimal')}, e.g. `{whole}.{frac[:n]} {cur}`"
            self.sink.error("E0310", f"too many decimals for `{cur}`: "
                                     f"`{e.amount} {cur}` has {len(frac)}, `{cur}` allows {n}",
                            e.span, label=f"`{cur}` has no minor unit" if n == 0 else
                            f"at most {_plural(n, 'decimal')} for `{cur}`", help=help_)
            return money_t(cur)
        minor = int(whole + frac.ljust(n, "0"))
        if minor > INT_MAX:
            self.sink.error("E0004", "money literal out of range", e.span,
                            label="more minor units than a 64-bit integer holds")
            return money_t(cur)
        self.out.money_values[e] = MoneyValue(minor, cur)
        return money_t(cur)

    # ------------------------------------------------------------ names

    def lookup(self, name: str, exp_enum):
        """What a value-position name means here, or None. Marks items and imports used."""
        loc = self.env.get(name)
        if loc is not None:
            return loc
        item = self.items.get(name)
        if item is not None:
            c = item.__class__
            if c is ast.Import:
                m = self.imports.get(name)
                if m is not None:
                    self.mod.used.add(name)
                    return self.module_refs[m]
            elif c in _KIND:
                if item is not self.cur_item:
                    self.mod.used.add(name)
                return self.item_refs[item]
        m = self.imports.get(name)
        if m is not None:
            self.mod.used.add(name)
            return self.module_refs[m]
        if exp_enum is not None:
            i = exp_enum.index.get(name)
            if i is not None:
                return self.variant_refs[exp_enum][i]
        vs = self.mvariants.get(name)
        if vs is not None and len(vs) == 1:
            v = vs[0]
            decl = v.enum.decl
            if decl is not self.cur_item:
                self.mod.used.add(decl.name)
            return v
        return _BUILTIN_REFS.get(name)

    def undefined(self, e: ast.Name) -> None:
        name = e.name
        if name in self.mod.missing_imports:
            return  # its module failed to load (E0103/E0104 already)
        vs = self.mvariants.get(name)
        if vs is not None and len(vs) > 1:
            enums = [v.enum.name for v in vs]
            self.sink.error("E0101", f"`{name}` is ambiguous", e.span,
                            label=f"a variant of {_q(enums)}",
                            help=f"qualify it: `{enums[0]}.{name}`")
            return
        cands = list(self.env) + [k for k, v in self.items.items() if v.__class__ in _KIND]
        cands += list(self.imports) + list(BUILTINS) + list(self.mvariants)
        sugg = _close(name, cands)
        notes = ()
        if name in PRIMITIVE_NAMES or name == "money":
            notes = (f"`{name}` is a type; it cannot be used as a value",)
        if name in HOST_CALLS:
            sugg = None
            notes = (f"`{name}()` reads the host: it is available in a service's route handlers and "
                     "guards only (not in functions, rules or `on` blocks, which a ledger replay must "
                     "be able to run again with the same result); pass its value as an argument",)
        self.sink.error("E0101", f"cannot find `{name}` in this scope", e.span,
                        label="not found in this scope", notes=notes,
                        help=f"a name with a similar spelling exists: `{sugg}`" if sugg else None)

    def e_name(self, e: ast.Name, exp) -> Type:
        loc = self.env.get(e.name)
        if loc is not None:
            loc.used = True
            self.refs[e] = loc
            return loc.type
        ref = self.lookup(e.name, exp if exp.__class__ is EnumT else None)
        if ref is None:
            self.undefined(e)
            return ERROR
        self.refs[e] = ref
        return self.ref_value(e, ref)

    def ref_value(self, node, ref) -> Type:
        """The type of a reference used as a value (reporting what is not a value)."""
        c = ref.__class__
        if c is Local:
            ref.used = True
            return ref.type
        if c is VariantRef:
            return ref.enum
        if c is ItemRef:
            k = ref.kind
            if k == "const":
                return self._const_type(ref)
            if k == "axiom":
                return TRUTH
        what = self._describe_ref(ref)
        help_ = None
        if c is ItemRef and ref.kind in ("fn", "rule") or c is BuiltinRef:
            help_ = f"call it: `{target_text(node)}(...)`"
        elif c is ItemRef and ref.kind == "record":
            help_ = f"build one: `{ref.name}(field: value, ...)`"
        elif c is ItemRef and ref.kind == "enum":
            et = self.out.enums[ref.decl]
            if et.variants:
                help_ = f"name a variant: `{target_text(node)}.{et.variants[0]}`"
        self.sink.error("E0301", f"expected a value, found {what}", node.span,
                        label="not a value", help=help_)
        return ERROR

    def _describe_ref(self, ref) -> str:
        c = ref.__class__
        if c is ItemRef:
            return f"{_KIND_WORD[ref.kind]} `{ref.name}`"
        if c is ModuleRef:
            return f"module `{ref.module.name}`"
        if c is BuiltinRef:
            return f"built-in function `{ref.builtin.name}`"
        if c is Local:
            return {"param": "parameter", "for": "loop variable"}.get(ref.kind, "variable") + f" `{ref.name}`"
        if c is VariantRef:
            return f"variant `{ref.enum.name}.{ref.name}`"
        return "this"

    def member(self, e: ast.Field, base):
        """`module.name` or `Enum.Variant`: the reference, or None after reporting."""
        if base.__class__ is ModuleRef:
            m = base.module
            item = m.exported(e.name)
            if item is None or item.__class__ not in _KIND:
                sugg = _close(e.name, [k for k in m.items if m.exported(k) is not None])
                self.sink.error("E0101", f"cannot find `{e.name}` in module `{m.name}`", e.name_span,
                                label=f"not found in `{m.name}`", notes=self._private_note(m, e.name),
                                help=f"a name with a similar spelling exists: `{sugg}`" if sugg else None)
                return None
            m.used.add(e.name)
            return self.item_refs[item]
        if base.kind == "enum":
            et = self.out.enums[base.decl]
            i = et.index.get(e.name)
            if i is None:
                sugg = _close(e.name, et.variants)
                self.sink.error("E0101", f"no variant `{e.name}` in enum `{et.name}`", e.name_span,
                                label=f"not a variant of `{et.name}`",
                                notes=(f"the variants are {_q(et.variants)}",) if et.variants else (),
                                help=f"did you mean `{et.name}.{sugg}`?" if sugg else None)
                return None
            return self.variant_refs[et][i]
        rt = self.out.records[base.decl]
        self.sink.error("E0304", f"`{rt.name}` is a record type; its fields belong to values", e.name_span,
                        label="not a value", help=f"read the field from a value: `x.{e.name}` where `x: {rt.name}`")
        return None

    def _path(self, e):
        """A Name/Field left of `.`: a namespace reference (module, enum, record type) or the
        Type of the value it denotes (recorded like any expression). ERROR after a report."""
        c = e.__class__
        if c is ast.Name:
            loc = self.env.get(e.name)
            if loc is not None:
                loc.used = True
                self.refs[e] = loc
                self.types[e] = loc.type
                return loc.type
            ref = self.lookup(e.name, None)
            if ref is None:
                self.undefined(e)
                self.types[e] = ERROR
                return ERROR
            self.refs[e] = ref
            if _is_ns(ref):
                return ref
            t = self.ref_value(e, ref)
            self.types[e] = t
            return t
        if c is ast.Field:
            base = self._path(e.obj)
            if isinstance(base, Type):
                t = self.field_of(e, base)
                self.types[e] = t
                return t
            r = self.member(e, base)
            if r is None:
                self.types[e] = ERROR
                return ERROR
            self.refs[e] = r
            if _is_ns(r):
                return r
            t = self.ref_value(e, r)
            self.types[e] = t
            return t
        return self.expr(e)

    def e_field(self, e: ast.Field, exp) -> Type:
        base = self._path(e.obj)
        if isinstance(base, Type):
            return self.field_of(e, base)
        r = self.member(e, base)
        if r is None:
            return ERROR
        self.refs[e] = r
        return self.ref_value(e, r)

    def field_of(self, e: ast.Field, t: Type) -> Type:
        if t.__class__ is RecordT:
            fr = self.field_refs[t].get(e.name)
            if fr is not None:
                self.refs[e] = fr
                return t.fields[e.name]
            sugg = _close(e.name, t.fields)
            self.sink.error("E0304", f"no field `{e.name}` on type `{t.name}`", e.name_span,
                            label="unknown field",
                            notes=(f"`{t.name}` has the fields {_q(t.fields)}",) if t.fields else
                            (f"`{t.name}` has no fields",),
                            help=f"did you mean `{sugg}`?" if sugg else None)
            return ERROR
        if t is ERROR:
            return ERROR
        help_ = None
        if t.__class__ is MoneyT and e.name in ("currency", "minor"):
            help_ = f"call the built-in: `{e.name}(m)`"
        self.sink.error("E0304", f"no field `{e.name}` on type `{t}`", e.name_span,
                        label=f"`{t}` has no fields", help=help_)
        return ERROR

    # ------------------------------------------------------------ operators

    def e_unary(self, e: ast.Unary, exp) -> Type:
        o = e.operand
        if e.op == "not":
            t = self.expr(o, TRUTH if o.__class__ is ast.FloatLit else None)
            if t is BOOL or t is TRUTH or t is ERROR:
                return t
            self.sink.error("E0311", f"cannot apply `not` to `{t}`", e.span,
                            label=f"`not` needs `bool` or `truth`, found `{t}`",
                            help="compare it instead: `x == 0`" if t is INT else None)
            return ERROR
        t = self.expr(o)
        if t is INT or t is FLOAT or t is ERROR or t.__class__ is MoneyT:
            return t
        if t is TRUTH:
            self.coercions[o] = FLOAT
            return FLOAT
        self.sink.error("E0311", f"cannot negate `{t}`", e.span,
                        label="unary `-` needs `int`, `float` or `money`",
                        help="for a truth or bool, `not x` is the negation" if t is BOOL else None)
        return ERROR

    def e_binary(self, e: ast.Binary, exp) -> Type:
        return self.binops[e.op](e)

    def b_arith(self, e: ast.Binary) -> Type:
        lt = self.expr(e.left)
        rt = self.expr(e.right)
        return self._arith(e.op, lt, rt, e, e.left, e.right)

    def _arith(self, op: str, lt: Type, rt: Type, e, l, r) -> Type:
        if lt is rt and (lt is INT or lt is FLOAT):
            return lt
        if lt is ERROR or rt is ERROR:
            return ERROR
        if lt is TRUTH:
            lt = FLOAT
            self.coercions[l] = FLOAT
        if rt is TRUTH:
            rt = FLOAT
            self.coercions[r] = FLOAT
        if lt is rt and (lt is INT or lt is FLOAT):
            return lt
        lm = lt.__class__ is MoneyT
        rm = rt.__class__ is MoneyT
        if lm and rm:
            if op == "+" or op == "-":
                return self._same_currency(lt, rt, e, l, r)
            if op == "/":
                self._same_currency(lt, rt, e, l, r)
                return FLOAT
        elif lm and rt is INT and op == "*":
            return lt
        elif rm and lt is INT and op == "*":
            return rt
        elif lt is TEXT and rt is TEXT and op == "+":
            return TEXT
        elif lt.__class__ is ArrayT and rt.__class__ is ArrayT and op == "+" and _join(lt, rt) is not None:
            return _join(lt, rt)  # concatenation: a new array
        # errors
        help_ = None
        bad = e
        if {lt, rt} == {INT, FLOAT} and e.__class__ is ast.Assign:
            bad = r
            if rt is FLOAT:
                help_ = f"`{target_text(l)}` is an `int`: convert the value with `int(...)`"
            elif r.__class__ is ast.IntLit:
                help_ = f"write a float literal: `{r.value}.0`"
            else:
                help_ = "convert the value with `float(...)`"
        elif {lt, rt} == {INT, FLOAT}:
            side = l if lt is INT else r
            bad = side
            if side.__class__ is ast.IntLit:
                help_ = f"write a float literal: `{side.value}.0`"
            else:
                help_ = "convert the `int` with `float(...)`, or the `float` with `int(...)`"
        elif lm and rm:
            help_ = ("money times money has no meaning; multiply by an `int` count"
                     if op == "*" else "the remainder of money by money is not defined")
        elif lm or rm:
            other = rt if lm else lt
            if other is FLOAT and op == "*":
                help_ = "scaling money by a float must round: use `scale(m, factor)` (rounds half-even)"
            elif op == "/" and (other is INT or other is FLOAT) and lm:
                help_ = ("dividing money must decide where the remainder goes: use `std.money`'s "
                         "allocation, or `scale(m, 1.0 / float(n))` to round half-even")
            elif op in "+-" and (other is INT or other is FLOAT):
                help_ = "write the amount with its currency, e.g. `5.00 USD`"
        elif (lt is TEXT) != (rt is TEXT) and op == "+":
            help_ = "convert the other operand with `text(...)`"
        self.sink.error("E0311", _OP_MESSAGE[op].format(l=lt, r=rt), bad.span,
                        label=f"no `{op}` for `{lt}` {op} `{rt}`", help=help_)
        return ERROR

    def _same_currency(self, lt: MoneyT, rt: MoneyT, e, l, r) -> Type:
        a, b = lt.currency, rt.currency
        if a is not None and b is not None and a != b:
            self.sink.error("E0308", f"currency mismatch: `{a}` and `{b}`", e.span,
                            label=f"`{e.op}` needs one currency" if hasattr(e, "op") else "one currency needed",
                            labels=(Label(l.span, f"this is `{a}`"), Label(r.span, f"this is `{b}`")),
                            help="convert between currencies explicitly, with a declared rate")
            return MONEY
        return money_t(a if a is not None else b)

    def b_logic(self, e: ast.Binary) -> Type:
        l, r = e.left, e.right
        lt = self.expr(l, TRUTH if l.__class__ is ast.FloatLit else None)
        rt = self.expr(r, TRUTH if r.__class__ is ast.FloatLit else None)
        if lt is BOOL and rt is BOOL:
            return BOOL
        ok = True
        for side, t in ((l, lt), (r, rt)):
            if t is not BOOL and t is not TRUTH and t is not ERROR:
                ok = False
                help_ = None
                if t is FLOAT:
                    help_ = "make it a truth with `clamp01(x)` or `truth(x)`, or compare it: `x > 0.5`"
                elif t is INT:
                    help_ = "compare it: `x != 0`"
                self.sink.error("E0311", f"`{e.op}` needs `bool` or `truth` operands, found `{t}`", side.span,
                                label=f"this is `{t}`", help=help_)
        if not ok or lt is ERROR or rt is ERROR:
            return ERROR
        if lt is BOOL:
            self.coercions[l] = TRUTH
        if rt is BOOL:
            self.coercions[r] = TRUTH
        return TRUTH

    def _compare_types(self, e: ast.Binary) -> Type | None:
        l, r = e.left, e.right
        lt = self.expr(l)
        rt = self.expr(r, lt if lt.__class__ is EnumT else None)
        if lt is ERROR or rt is ERROR:
            return None
        if lt is rt:
            return lt
        if lt.__class__ is MoneyT and rt.__class__ is MoneyT:
            return self._same_currency(lt, rt, e, l, r)
        j = _join(lt, rt)
        if j is None:
            help_ = None
            if {lt, rt} == {INT, FLOAT}:
                side = l if lt is INT else r
                help_ = (f"write a float literal: `{side.value}.0`" if side.__class__ is ast.IntLit
                         else "convert the `int` with `float(...)`")
            self.sink.error("E0311", f"cannot compare `{lt}` with `{rt}`", e.span,
                            label=f"`{lt}` {e.op} `{rt}`", help=help_)
            return None
        if lt is not j:
            self.coercions[l] = j
        if rt is not j:
            self.coercions[r] = j
        return j

    def b_eq(self, e: ast.Binary) -> Type:
        t = self._compare_types(e)
        if t is not None and (t.__class__ is ArrayT or t.__class__ is MapT or t.__class__ is RecordT
                              or t is UNIT):
            what = {ArrayT: "arrays", MapT: "maps", RecordT: "records"}.get(t.__class__, "`()`")
            self.sink.error("E0311", f"`{e.op}` is not defined for {what}", e.span,
                            label=f"cannot compare `{t}` values",
                            help="compare their fields or elements one by one" if t is not UNIT else None)
        return BOOL

    def b_ord(self, e: ast.Binary) -> Type:
        t = self._compare_types(e)
        if t is not None and t not in _ORDERED and t.__class__ is not MoneyT:
            self.sink.error("E0311", f"`{e.op}` is not defined for `{t}`", e.span,
                            label=f"cannot order `{t}` values",
                            notes=("`<`, `<=`, `>`, `>=` compare int, float, truth, money, time and text",))
        return BOOL

    def b_in(self, e: ast.Binary) -> Type:
        """`k in m`: whether map m holds key k."""
        mt = self.expr(e.right)
        if mt.__class__ is MapT:
            self.check(e.left, mt.key, f"map keys are `{mt.key}`")
        else:
            self.expr(e.left)
            if mt is not ERROR:
                self.sink.error("E0311", f"`in` needs a map on its right, found `{mt}`", e.right.span,
                                label="not a map", notes=("`k in m` asks whether map `m` holds key `k`",))
        return BOOL

    def e_index(self, e: ast.Index, exp) -> Type:
        t = self.expr(e.obj)
        if t.__class__ is MapT:
            self.check(e.index, t.key, f"map keys are `{t.key}`")
            return t.value
        self.check(e.index, INT, "array indices are `int`")
        if t.__class__ is ArrayT:
            return t.elem
        if t is ERROR:
            return ERROR
        self.sink.error("E0311", f"cannot index into a value of type `{t}`", e.obj.span,
                        label="not an array or a map")
        return ERROR

    def e_map(self, e: ast.MapLit, exp) -> Type:
        entries = e.entries
        if exp.__class__ is MapT:
            for x in entries:
                self.check(x.key, exp.key, f"expected `{exp.key}`, the key type")
                self.check(x.value, exp.value, f"expected `{exp.value}`, the value type")
            return exp
        if not entries:
            self.sink.error("E0318", "cannot infer the key and value types of an empty map", e.span,
                            label="type annotation needed",
                            help="annotate it, for example: `let m: {text: int} = {}`")
            return ERROR
        kt = self.expr(entries[0].key)
        if kt is not ERROR and not map_key_ok(kt):
            self.sink.error("E0322", f"`{kt}` cannot key a map", entries[0].key.span,
                            label="map keys are `int`, `text`, `time`, `bool` or an enum")
            kt = ERROR
        vt = self.expr(entries[0].value)
        if vt is UNIT:
            self._no_value(entries[0].value)
            vt = ERROR
        for x in entries[1:]:
            if kt is ERROR:
                self.expr(x.key)
            else:
                self.check(x.key, kt, f"expected `{kt}`, the type of the first key")
            t = self.expr(x.value)
            if t is vt or t is ERROR:
                continue
            nj = _join(vt, t) if vt is not ERROR else t
            if nj is None:
                self.sink.error("E0301", f"mismatched types: expected `{vt}`, found `{t}`", x.value.span,
                                label="map values must have one type",
                                labels=(Label(entries[0].value.span, f"the first value is `{vt}`"),),
                                help=_conversion_help(x.value, t, vt))
                continue
            vt = nj
        if kt is ERROR or vt is ERROR:
            return ERROR
        for x in entries:
            t = self.types.get(x.value)
            if t is not None and t != vt and t is not ERROR and self._convertible(t, vt):
                self.coercions[x.value] = vt
        return MapT(kt, vt)

    def e_array(self, e: ast.ArrayLit, exp) -> Type:
        elems = e.elems
        if exp.__class__ is ArrayT:
            el = exp.elem
            for x in elems:
                self.check(x, el, f"expected `{el}`, the element type")
            return exp
        if not elems:
            self.sink.error("E0318", "cannot infer the element type of an empty array", e.span,
                            label="type annotation needed",
                            help="annotate it, for example: `let xs: [int] = []`")
            return ERROR
        j = self.expr(elems[0])
        mixed = False
        for x in elems[1:]:
            t = self.expr(x)
            if t is j or t is ERROR:
                continue
            if j is ERROR:
                j = t
                continue
            nj = _join(j, t)
            if nj is None:
                self.sink.error("E0301", f"mismatched types: expected `{j}`, found `{t}`", x.span,
                                label="array elements must have one type",
                                labels=(Label(elems[0].span, f"the first element is `{j}`"),),
                                help=_conversion_help(x, t, j))
                continue
            mixed = True
            j = nj
        if j is ERROR:
            return ERROR
        if j is UNIT:
            self._no_value(elems[0])
            return ERROR
        if mixed:
            types = self.types
            for x in elems:
                t = types[x]
                if t != j and t is not ERROR and self._convertible(t, j):
                    self.coercions[x] = j
        return ArrayT(j)

    # ------------------------------------------------------------ calls

    def e_call(self, e: ast.Call, exp) -> Type:
        callee = e.callee
        cc = callee.__class__
        ref = None
        if cc is ast.Name:
            ref = self.lookup(callee.name, None)
            if ref is None:
                self.undefined(callee)
                self._args_only(e)
                return ERROR
            self.refs[callee] = ref
        elif cc is ast.Field:
            base = self._path(callee.obj)
            if isinstance(base, Type):
                t = self.field_of(callee, base)
                self.types[callee] = t
                if t is not ERROR:
                    self._not_callable(e, f"field `{callee.name}`")
                self._args_only(e)
                return ERROR
            ref = self.member(callee, base)
            if ref is None:
                self._args_only(e)
                return ERROR
            self.refs[callee] = ref
        else:
            t = self.expr(callee)
            if t is not ERROR:
                self._not_callable(e, f"a value of type `{t}`")
            self._args_only(e)
            return ERROR
        c = ref.__class__
        if c is ItemRef:
            k = ref.kind
            if k == "fn" or k == "rule":
                return self.call_sig(e, self.out.signatures[ref.decl], ref.name, ref.decl.name_span)
            if k == "record":
                return self.construct(e, self.out.records[ref.decl])
        elif c is BuiltinRef:
            return self.call_builtin(e, ref.builtin)
        if c is Local:
            ref.used = True
        self._not_callable(e, self._describe_ref(ref))
        self._args_only(e)
        return ERROR

    def _not_callable(self, e: ast.Call, what: str) -> None:
        self.sink.error("E0303", f"{what} is not callable", e.callee.span,
                        label="not a function",
                        help="only functions, rules and built-ins can be called; "
                             "build a record with `Name(field: value, ...)`")

    def _args_only(self, e: ast.Call) -> None:
        for a in e.args:
            self.expr(a.value)

    def _order_args(self, e: ast.Call, names: tuple, what: str, decl_span: Span | None):
        """Arguments in parameter order (None where missing), or None after E0302."""
        args = e.args
        n = len(names)
        if len(args) == n:
            for a in args:
                if a.name is not None:
                    break
            else:
                return [a.value for a in args]
        out: list = [None] * n
        ok = True
        labels = (Label(decl_span, "declared here"),) if decl_span is not None else ()
        positional = True
        for i, a in enumerate(args):
            if a.name is None:
                if not positional:
                    self.sink.error("E0302", "positional argument after a named one", a.span,
                                    label="give this argument a name, or move it first")
                    ok = False
                elif i < n:
                    out[i] = a.value
                continue
            positional = False
            if a.name not in names:
                sugg = _close(a.name, names)
                self.sink.error("E0302", f"{what} has no parameter named `{a.name}`", a.span,
                                label="unknown parameter", labels=labels,
                                help=f"did you mean `{sugg}`?" if sugg else None)
                ok = False
                continue
            j = names.index(a.name)
            if out[j] is not None:
                self.sink.error("E0302", f"argument `{a.name}` given twice", a.span,
                                label="already given")
                ok = False
                continue
            out[j] = a.value
        npos = sum(1 for a in args if a.name is None)
        if npos > n:
            self.sink.error("E0302", f"{what} takes {_plural(n, 'argument')} but {len(args)} were given",
                            e.span, label=f"expected {_plural(n, 'argument')}", labels=labels)
            ok = False
        elif ok:
            missing = [names[i] for i in range(n) if out[i] is None]
            if missing:
                given = len(args)
                self.sink.error("E0302", f"{what} takes {_plural(n, 'argument')} but {given} "
                                         f"{'was' if given == 1 else 'were'} given",
                                e.span, label=f"missing {_q(missing)}", labels=labels)
                ok = False
        if not ok:
            placed = {id(v) for v in out if v is not None}
            for a in args:
                if id(a.value) not in placed:
                    self.expr(a.value)
            for v in out:
                if v is not None:
                    self.expr(v)
            return None
        return out

    def call_sig(self, e: ast.Call, sig: Signature, name: str, decl_span: Span | None) -> Type:
        params = sig.params
        args = self._order_args(e, tuple(p for p, _ in params), f"`{name}`", decl_span)
        if args is None:
            return sig.ret
        for (pn, pt), a in zip(params, args):
            self.check(a, pt, f"expected `{pt}` for parameter `{pn}` of `{name}`")
        self.out.call_sigs[e] = sig
        self.out.call_args[e] = tuple(args)
        return sig.ret

    def construct(self, e: ast.Call, rt: RecordT) -> Type:
        fields = rt.fields
        given: dict[str, Any] = {}
        frefs = self.field_refs[rt]
        for a in e.args:
            if a.name is None:
                self.sink.error("E0315", f"record fields must be named: `{rt.name}(field: value, ...)`",
                                a.span, label="unnamed field value",
                                notes=(f"`{rt.name}` has the fields {_q(fields)}",) if fields else ())
                self.expr(a.value)
                continue
            ft = fields.get(a.name)
            if ft is None:
                sugg = _close(a.name, fields)
                self.sink.error("E0315", f"record `{rt.name}` has no field `{a.name}`", a.span,
                                label="unknown field",
                                notes=(f"`{rt.name}` has the fields {_q(fields)}",) if fields else (),
                                help=f"did you mean `{sugg}`?" if sugg else None)
                self.expr(a.value)
                continue
            if a.name in given:
                self.sink.error("E0315", f"field `{a.name}` is given twice", a.span,
                                label="already given", labels=(Label(given[a.name].span, "first given here"),))
                self.expr(a.value)
                continue
            given[a.name] = a
            self.refs[a] = frefs[a.name]
            self.check(a.value, ft, f"expected `{ft}` for field `{a.name}`")
        defaults = {f.name: f.default for f in rt.decl.fields if f.default is not None}
        missing = [f for f in fields if f not in given and f not in defaults]
        if missing and all(a.name is not None for a in e.args):
            self.sink.error("E0315", f"missing {'field' if len(missing) == 1 else 'fields'} {_q(missing)} "
                                     f"in `{rt.name}`", e.span,
                            label=f"every field of `{rt.name}` needs a value")
        elif not missing:  # a field left out takes its default expression (a constant)
            self.out.call_args[e] = tuple(given[f].value if f in given else defaults[f] for f in fields)
        self.out.call_sigs[e] = Signature(tuple(fields.items()), rt)
        return rt

    def call_builtin(self, e: ast.Call, b: Builtin) -> Type:
        args = self._order_args(e, b.params, f"`{b.name}`", None)
        if args is None:
            return ERROR
        overloads = b.overloads
        if len(overloads) == 1 and not b.generic:
            ps, ret = overloads[0]
            for pn, pt, a in zip(b.params, ps, args):
                self.check(a, pt, f"expected `{pt}` for parameter `{pn}` of `{b.name}`")
            self.out.call_sigs[e] = self._builtin_sig(b, ps, ret)
            self.out.call_args[e] = tuple(args)
            return self._refine_builtin(b, args, ret)
        ats = [self.expr(a) for a in args]
        if ERROR in ats:
            return ERROR
        for ps, ret in overloads:
            sub = self._match(ps, ats)
            if sub is None:
                continue
            inst = tuple(_subst(p, sub) for p in ps)
            for a, at, pt in zip(args, ats, inst):
                if at != pt:
                    self.coercions[a] = pt
            ret = _subst(ret, sub)
            self.out.call_sigs[e] = self._builtin_sig(b, inst, ret)
            self.out.call_args[e] = tuple(args)
            return self._refine_builtin(b, args, ret)
        self._builtin_mismatch(e, b, args, ats)
        return ERROR

    def _builtin_sig(self, b: Builtin, ps: tuple, ret: Type) -> Signature:
        key = (b.name, ps, ret)
        sig = self.builtin_sigs.get(key)
        if sig is None:
            sig = self.builtin_sigs[key] = Signature(tuple(zip(b.params, ps)), ret)
        return sig

    def _refine_builtin(self, b: Builtin, args, ret: Type) -> Type:
        if b.name == "from_minor" and len(args) == 2 and args[1].__class__ is ast.TextLit:
            code = args[1].value
            if code in CURRENCY_EXPONENTS:
                return money_t(code)
            sugg = _close_currency(code)
            self.sink.error("E0309", f"unknown currency `{code}`", args[1].span,
                            label="not an ISO 4217 currency code",
                            help=f"did you mean `{sugg}`?" if sugg else None)
        return ret

    def _match(self, ps, ats):
        sub: dict = {}
        for p, a in zip(ps, ats):
            pc = p.__class__
            if pc is TypeVar:
                prev = sub.get(p)
                if prev is None:
                    if not _in_bound(a, p.bound):
                        return None
                    sub[p] = a
                else:
                    if prev.__class__ is MoneyT and a.__class__ is MoneyT:
                        if prev.currency and a.currency and prev.currency != a.currency:
                            return None
                        j = money_t(prev.currency or a.currency)
                    else:
                        j = _join(prev, a)
                    if j is None or not _in_bound(j, p.bound):
                        return None
                    sub[p] = j
            elif pc is ArrayT and p.elem.__class__ is TypeVar:
                if a.__class__ is not ArrayT:
                    return None
                sub[p.elem] = a.elem
            elif pc is MapT and p.key.__class__ is TypeVar:
                if a.__class__ is not MapT:
                    return None
                sub[p.key] = a.key
                sub[p.value] = a.value
            elif p is MONEY:
                if a.__class__ is not MoneyT:
                    return None
            elif not self._convertible(a, p):
                return None
        return sub

    def _builtin_mismatch(self, e: ast.Call, b: Builtin, args, ats) -> None:
        for i, (a, at) in enumerate(zip(args, ats)):
            allowed: list[Type] = []
            for ps, _ in b.overloads:
                p = ps[i]
                if p.__class__ is TypeVar:
                    allowed.extend(p.bound)
                else:
                    allowed.append(p)
            if any(self._match((p,), (at,)) is not None for p in
                   {id(ps[i]): ps[i] for ps, _ in b.overloads}.values()):
                continue
            names = []
            for t in allowed:
                s = ("[T]" if t.__class__ is ArrayT and t.elem.__class__ is TypeVar else
                     "{K: V}" if t.__class__ is MapT and t.key.__class__ is TypeVar else str(t))
                if s not in names:
                    names.append(s)
            exp_text = _q(names).replace(" and ", " or ")
            help_ = None
            if at is INT and FLOAT in allowed and INT not in allowed:
                help_ = (f"write a float literal: `{a.value}.0`" if a.__class__ is ast.IntLit
                         else "convert it with `float(...)`")
            self.sink.error("E0301", f"mismatched types: expected {exp_text}, found `{at}`", a.span,
                            label=f"`{b.name}` takes {exp_text} here", help=help_)
            return
        # every argument fits some overload, but not together (min(1, 2.0), min(1.00 USD, 1.00 EUR))
        if all(t.__class__ is MoneyT for t in ats):
            self.sink.error("E0308", f"currency mismatch: `{ats[0].currency}` and `{ats[1].currency}`",
                            e.span, label=f"`{b.name}` needs one currency",
                            help="convert between currencies explicitly, with a declared rate")
            return
        self.sink.error("E0301", f"mismatched types: `{b.name}` needs arguments of one type, found "
                                 f"{_q(str(t) for t in ats)}", e.span,
                        label="arguments of different types",
                        help="convert with `float(...)` or `int(...)`" if INT in ats and FLOAT in ats else None)

    # ------------------------------------------------------------ match

    def _patterns(self, e: ast.Match, st: Type) -> bool:
        """Checks the arms' patterns against the subject type; True when exhaustive."""
        wild = False
        warned = False
        sink = self.sink
        if st.__class__ is EnumT:
            seen: dict[int, Span] = {}
            for arm in e.arms:
                if wild and not warned:
                    warned = True
                    sink.warning("W0104", "unreachable match arm", arm.span,
                                 label="an earlier `_` arm already matches everything")
                for p in arm.patterns:
                    pc = p.__class__
                    if pc is ast.WildcardPat:
                        wild = True
                        continue
                    if pc is not ast.VariantPat:
                        sink.error("E0312", f"expected a variant of `{st.name}`, found a literal", p.span,
                                   label=f"the subject is a `{st.name}`",
                                   notes=(f"the variants are {_q(st.variants)}",))
                        continue
                    parts = p.name.parts
                    vn = parts[-1]
                    if len(parts) > 1 and not self._names_enum(parts[:-1], st):
                        sink.error("E0312", f"`{p.name.text}` is not a variant of `{st.name}`", p.span,
                                   label=f"expected a variant of `{st.name}`",
                                   help=f"write `{vn}` or `{st.name}.{vn}`" if vn in st.index else None)
                        continue
                    i = st.index.get(vn)
                    if i is None:
                        sugg = _close(vn, st.variants)
                        sink.error("E0312", f"no variant `{vn}` in enum `{st.name}`", p.span,
                                   label=f"not a variant of `{st.name}`",
                                   notes=(f"the variants are {_q(st.variants)}",),
                                   help=f"did you mean `{sugg}`?" if sugg else None)
                        continue
                    if i in seen:
                        sink.error("E0312", f"variant `{vn}` is matched twice", p.span,
                                   label="already matched", labels=(Label(seen[i], "first matched here"),),
                                   help="remove one of them")
                        continue
                    seen[i] = p.span
                    self.refs[p] = self.variant_refs[st][i]
            if wild:
                return True
            missing = [v for i, v in enumerate(st.variants) if i not in seen]
            if missing:
                sink.error("E0305", f"non-exhaustive match: {'variant' if len(missing) == 1 else 'variants'} "
                                    f"{_q(missing)} not covered", e.subject.span,
                           label=f"{_q(missing)} not covered",
                           notes=(f"`{st.name}` has the variants {_q(st.variants)}",),
                           help="add an arm for each missing variant, or a final `_ => ...` arm")
                return False
            return True
        if st is INT or st is TEXT or st is BOOL:
            seen_v: dict = {}
            for arm in e.arms:
                if wild and not warned:
                    warned = True
                    sink.warning("W0104", "unreachable match arm", arm.span,
                                 label="an earlier `_` arm already matches everything")
                for p in arm.patterns:
                    pc = p.__class__
                    if pc is ast.WildcardPat:
                        wild = True
                        continue
                    if pc is ast.VariantPat:
                        sink.error("E0312", f"expected a `{st}` literal, found `{p.name.text}`", p.span,
                                   label=f"the subject is `{st}`, not an enum")
                        continue
                    v = p.value
                    pt = self.expr(v)
                    if pt is ERROR:
                        continue
                    if pt is not st:
                        sink.error("E0312", f"mismatched pattern: expected a `{st}` literal, found `{pt}`",
                                   p.span, label=f"the subject is `{st}`")
                        continue
                    key = v.value
                    if key in seen_v:
                        sink.error("E0312", "this value is matched twice", p.span, label="already matched",
                                   labels=(Label(seen_v[key], "first matched here"),))
                        continue
                    seen_v[key] = p.span
            if wild or (st is BOOL and True in seen_v and False in seen_v):
                return True
            sink.error("E0305", f"non-exhaustive match: not every `{st}` is covered", e.subject.span,
                       label=f"`{st}` has values no arm matches",
                       help="add a final `_ => ...` arm")
            return False
        if st is not ERROR:
            sink.error("E0301", f"cannot `match` on a value of type `{st}`", e.subject.span,
                       label="`match` needs an enum, `int`, `text` or `bool`",
                       help="use `if` / `else if` to test ranges")
        return True

    def _names_enum(self, parts, et: EnumT) -> bool:
        if len(parts) == 1:
            item = self.items.get(parts[0])
            if item is et.decl:
                if item is not self.cur_item:
                    self.mod.used.add(parts[0])
                return True
            return False
        if len(parts) == 2:
            m = self.imports.get(parts[0])
            if m is not None and m.exported(parts[1]) is et.decl:
                self.mod.used.add(parts[0])
                m.used.add(parts[1])
                return True
        return False

    def e_match(self, e: ast.Match, exp) -> Type:
        st = self.expr(e.subject)
        self._patterns(e, st)
        arms = e.arms
        if exp is not None:
            for arm in arms:
                b = arm.body
                if b.__class__ is ast.Block:
                    self._block_arm(arm, exp)
                else:
                    self.check(b, exp, f"expected `{exp}`, the type of the `match`")
            return exp
        j = None
        first = None
        for arm in arms:
            b = arm.body
            if b.__class__ is ast.Block:
                self._block_arm(arm, None)
                continue
            t = self.expr(b)
            if t is ERROR:
                continue
            if j is None:
                j, first = t, b
                continue
            if t is j:
                continue
            nj = _join(j, t)
            if nj is None:
                self.sink.error("E0301", f"mismatched types: `match` arms have incompatible types: "
                                         f"expected `{j}`, found `{t}`", b.span,
                                label=f"expected `{j}`", labels=(Label(first.span, f"this arm is `{j}`"),),
                                help=_conversion_help(b, t, j))
                continue
            j = nj
        if j is None:
            return ERROR
        if j is UNIT:
            return UNIT
        types = self.types
        for arm in arms:
            b = arm.body
            if b.__class__ is not ast.Block:
                t = types.get(b)
                if t is not j and t is not ERROR and t != j:
                    self.coercions[b] = j
        return j

    def _block_arm(self, arm: ast.MatchArm, exp) -> None:
        self.sink.error("E0301", "mismatched types: a `match` used as a value needs an expression in every arm",
                        arm.body.span, label=f"expected {'`' + str(exp) + '`' if exp else 'a value'}, found a block",
                        help="use the `match` as a statement, or give this arm an expression")
        self.block(arm.body)

    def match_stmt(self, e: ast.Match) -> bool:
        st = self.expr(e.subject)
        exhaustive = self._patterns(e, st)
        all_diverge = True
        for arm in e.arms:
            b = arm.body
            if b.__class__ is ast.Block:
                if not self.block(b):
                    all_diverge = False
            else:
                self.expr(b)
                all_diverge = False
        self.types[e] = UNIT
        return all_diverge and exhaustive and bool(e.arms)

    # ============================================================ warnings

    def _warnings(self) -> None:
        sink = self.sink
        for m in self.program.modules:
            used = m.used
            if not m.is_root:
                for name, item in m.items.items():
                    c = item.__class__
                    if c in _KIND and c is not ast.AxiomDecl and not item.public and name not in used:
                        word = _KIND_WORD[_KIND[c]]
                        sink.warning("W0101", f"{word} `{name}` is never used", item.name_span,
                                     label=f"private {word}, used nowhere in `{m.name}`",
                                     help="remove it, or mark it `pub` to export it")
            imports = m.import_decls or {}
            if not imports:
                for it in m.tree.items:
                    if it.__class__ is ast.Import and it.binding not in imports:
                        imports[it.binding] = it
            for binding, imp in imports.items():
                if binding not in used and binding not in m.missing_imports:
                    sink.warning("W0102", f"unused import: `{imp.path.text}`", imp.span,
                                 label="nothing from this module is used", help="remove the import")
        for loc in self.out.locals:
            if ((loc.kind == "let" or loc.kind == "var") and not loc.used and loc.type is not ERROR
                    and not loc.name.startswith("_")):
                sink.warning("W0103", f"unused variable: `{loc.name}`", loc.span,
                             label="never read",
                             help=f"if this is intentional, prefix it with an underscore: `_{loc.name}`")


# ---------------------------------------------------------------- pure helpers

def _snippet(e) -> str:
    """A short source-like rendering of simple expressions for help texts."""
    c = e.__class__
    if c is ast.IntLit or c is ast.FloatLit:
        return repr(e.value)
    if c is ast.BoolLit:
        return "true" if e.value else "false"
    if c is ast.MoneyLit:
        return f"{e.amount} {e.currency}"
    if c is ast.Name or c is ast.Field:
        return target_text(e)
    return "..."


def target_text(e) -> str:
    c = e.__class__
    if c is ast.Name:
        return e.name
    if c is ast.Field:
        return f"{target_text(e.obj)}.{e.name}"
    if c is ast.Index:
        return f"{target_text(e.obj)}[...]"
    return "..."


def _join(a: Type, b: Type) -> Type | None:
    """The one type both convert to (for arms, array elements, comparisons), or None."""
    if a is b or a == b:
        return a
    if a is ERROR:
        return b
    if b is ERROR:
        return a
    if (a is BOOL and b is TRUTH) or (a is TRUTH and b is BOOL):
        return TRUTH
    if (a is TRUTH and b is FLOAT) or (a is FLOAT and b is TRUTH):
        return FLOAT
    if a.__class__ is MoneyT and b.__class__ is MoneyT:
        return money_t(a.currency if a.currency == b.currency else None)
    if a.__class__ is ArrayT and b.__class__ is ArrayT:
        if a.elem.__class__ is MoneyT and b.elem.__class__ is MoneyT:
            return ArrayT(MONEY)
    if a.__class__ is MapT and b.__class__ is MapT and a.key == b.key:
        if a.value.__class__ is MoneyT and b.value.__class__ is MoneyT:
            return MapT(a.key, MONEY)
    return None


def _in_bound(t: Type, bound) -> bool:
    if not bound:
        return t is not UNIT
    for b in bound:
        if t is b or (b is MONEY and t.__class__ is MoneyT):
            return True
    return False


def _subst(t: Type, sub: dict) -> Type:
    if t.__class__ is TypeVar:
        return sub.get(t, ERROR)
    if t.__class__ is ArrayT and t.elem.__class__ is TypeVar:
        return ArrayT(sub.get(t.elem, ERROR))
    if t.__class__ is MapT and t.key.__class__ is TypeVar:
        return MapT(sub.get(t.key, ERROR), sub.get(t.value, ERROR))
    return t


def _conversion_help(e, t: Type, exp: Type) -> str | None:
    if t is INT and (exp is FLOAT or exp is TRUTH):
        if e.__class__ is ast.IntLit:
            return f"write a float literal: `{e.value}.0`"
        return "convert it with `float(...)`"
    if t is FLOAT and exp is INT:
        return "convert it with `int(...)` (truncates toward zero)"
    if t is FLOAT and exp is TRUTH:
        if e.__class__ is ast.FloatLit:
            return "a truth literal lies in [0, 1]"
        return "convert it with `clamp01(...)`, or `truth(...)` (checked at run time)"
    if t is TRUTH and exp is BOOL:
        return "compare the truth with a threshold: `x >= 0.5`"
    if exp is TEXT and t is not TEXT:
        return "format it with `text(...)`"
    if exp.__class__ is MoneyT and (t is INT or t is FLOAT):
        return "write the amount with its currency, e.g. `5.00 USD`"
    return None


def _fold_binary(op: str, a, b, t: Type):
    """Folds a binary operation on constant values (None when it fails or is not simple)."""
    if op == "and" or op == "or":
        if t is BOOL:
            return (a and b) if op == "and" else (a or b)
        x = float(a)
        y = float(b)
        return min(x, y) if op == "and" else max(x, y)
    if isinstance(a, MoneyValue) or isinstance(b, MoneyValue):
        return _fold_money(op, a, b)
    if op in ("==", "!=", "<", "<=", ">", ">="):
        if isinstance(a, bool) != isinstance(b, bool) and t is BOOL:
            a, b = float(a), float(b)
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if isinstance(a, str) and isinstance(b, str):
        return a + b if op == "+" else None
    if t is INT:
        if op == "+":
            v = a + b
        elif op == "-":
            v = a - b
        elif op == "*":
            v = a * b
        elif b == 0:
            return None
        elif op == "/":
            q = abs(a) // abs(b)
            v = q if (a >= 0) == (b >= 0) else -q
        else:
            v = abs(a) % abs(b)
            v = v if a >= 0 else -v
        return v if INT_MIN <= v <= INT_MAX else None
    if t is FLOAT:
        a = float(a)
        b = float(b)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0.0:
            return None
        if op == "/":
            return a / b
        return math.fmod(a, b)
    return None


def _fold_money(op: str, a, b):
    if isinstance(a, MoneyValue) and isinstance(b, MoneyValue):
        if a.currency != b.currency:
            return None
        if op == "+":
            v = a.minor + b.minor
        elif op == "-":
            v = a.minor - b.minor
        elif op == "/":
            return a.minor / b.minor if b.minor else None
        elif op in ("==", "!=", "<", "<=", ">", ">="):
            x, y = a.minor, b.minor
            return {"==": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
        else:
            return None
        return MoneyValue(v, a.currency) if INT_MIN <= v <= INT_MAX else None
    if op == "*":
        m, k = (a, b) if isinstance(a, MoneyValue) else (b, a)
        if isinstance(k, bool) or not isinstance(k, int):
            return None
        v = m.minor * k
        return MoneyValue(v, m.currency) if INT_MIN <= v <= INT_MAX else None
    return None
