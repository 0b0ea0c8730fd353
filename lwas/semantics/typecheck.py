"""Type checking: every expression gets a type, every name a meaning, every body a verdict.

`check_program(program, sink) -> Checked` runs once over the resolved program (modules in
dependency order) in one pass per body, dispatching on the node class through dicts. It reports
E0004, E0101, E0105, E0301-E0319 and W0101-W0104 (and E0102 for duplicate parameters, locals in
one block, record fields and enum variants, which resolve does not see). `Checked` holds
everything later phases need; see its docstring.

The checker is one class, `_Checker` (below), assembled from one mixin per concern, the way
go/types spreads its Checker over stmt.go, expr.go, call.go, ...:
  check_info.py     the results: what names refer to (Local, ItemRef, ...) and `Checked`
  check_items.py    declarations, signatures, bodies, defaults, the W0101-W0103 warnings
  check_typexpr.py  type annotations
  check_const.py    `const` initialisers and constant folding
  check_stmt.py     blocks, scopes, statements, divergence
  check_expr.py     `expr`/`check` and conversions, literals, operators, array/map literals
  check_names.py    names, `module.item`, `Enum.Variant`, fields
  check_call.py     calls, record construction, built-in overloads
  check_match.py    `match`: patterns, exhaustiveness, arms
  check_util.py     pure helpers (wording of messages, the join of two types)
This module holds the shared state (`_Checker.__init__`), the dispatch tables and the order of
the passes (`_Checker.run`), and re-exports check_info's names: import them from here.

Decisions (the language contract is docs/contract.md; these fill in its gaps):

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

from lwas.semantics.check_call import _Calls
from lwas.semantics.check_const import _Consts
from lwas.semantics.check_expr import _Exprs
from lwas.semantics.check_info import (BuiltinRef, Checked, FieldRef, ItemRef, Local, ModuleRef, Ref,
                                       VariantRef)
from lwas.semantics.check_items import _Items
from lwas.semantics.check_match import _Matches
from lwas.semantics.check_names import _Names
from lwas.semantics.check_stmt import _Stmts
from lwas.semantics.check_typexpr import _TypeExprs
from lwas.semantics.check_util import target_text
from lwas.semantics.resolve import ModuleInfo, Program
from lwas.semantics.types import Type
from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Sink
from lwas.syntax.source import Span

__all__ = ["BuiltinRef", "Checked", "FieldRef", "ItemRef", "Local", "ModuleRef", "Ref", "VariantRef",
           "check_program", "target_text"]


def check_program(program: Program, sink: Sink) -> Checked:
    return _Checker(program, sink).run()


class _Dispatch(dict):
    """A dispatch table: node class (or operator) -> method. A key it lacks is a node the checker
    has no case for, a compiler bug: it says so by name instead of raising a bare KeyError."""

    def __init__(self, what: str, cases: dict):
        super().__init__(cases)
        self.what = what

    def __missing__(self, key):
        name = getattr(key, "__name__", key)
        raise NotImplementedError(f"the type checker has no case for the {self.what} `{name}` "
                                  "(a compiler bug)")


class _Checker(_Items, _TypeExprs, _Consts, _Stmts, _Exprs, _Names, _Calls, _Matches):
    """One checker per program: the state every mixin shares, and the order of the passes."""

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

        self.ex = _Dispatch("expression node", {
            ast.IntLit: self.e_int, ast.FloatLit: self.e_float, ast.BoolLit: self.e_bool,
            ast.TextLit: self.e_text, ast.MoneyLit: self.e_money, ast.Name: self.e_name,
            ast.Unary: self.e_unary, ast.Binary: self.e_binary, ast.Call: self.e_call,
            ast.Field: self.e_field, ast.Index: self.e_index, ast.ArrayLit: self.e_array,
            ast.MapLit: self.e_map, ast.Match: self.e_match,
        })
        self.st = _Dispatch("statement node", {
            ast.Let: self.s_let, ast.Assign: self.s_assign, ast.If: self.s_if,
            ast.While: self.s_while, ast.ForRange: self.s_for_range, ast.ForEach: self.s_for_each,
            ast.Return: self.s_return, ast.Break: self.s_break, ast.Continue: self.s_continue,
            ast.Assert: self.s_assert, ast.ExprStmt: self.s_expr,
            ast.Append: self.s_append, ast.Delete: self.s_delete,
        })
        self.binops = _Dispatch("binary operator", {
            "+": self.b_arith, "-": self.b_arith, "*": self.b_arith, "/": self.b_arith,
            "%": self.b_arith, "and": self.b_logic, "or": self.b_logic, "==": self.b_eq,
            "!=": self.b_eq, "<": self.b_ord, "<=": self.b_ord, ">": self.b_ord, ">=": self.b_ord,
            "in": self.b_in,
        })

    def run(self) -> Checked:
        mods = self.program.modules
        for m in mods:  # item refs, record and enum shells (check_items.py)
            self._declare(m)
        for m in mods:  # record fields, fn/rule signatures
            self._enter(m)
            self._members(m)
        self._recursive_records()
        for m in mods:  # every constant, each on first use (check_const.py)
            self._enter(m)
            for it in m.tree.items:
                if it.__class__ is ast.ConstDecl:
                    self._const_type(self.item_refs[it])
        for m in mods:  # bodies and defaults (check_items.py, then check_stmt.py, check_expr.py, ...)
            self._enter(m)
            self._bodies(m)
        self._warnings()
        return self.out

    def _enter(self, m: ModuleInfo) -> None:
        """Makes m the module whose names are looked up."""
        self.mod = m
        self.items = m.items
        self.imports = m.imports
        self.mvariants = self.variants_of[m]
