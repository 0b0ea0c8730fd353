"""The reference evaluator: a tree-walking interpreter over the checked program.

It exists to be obviously right, not fast: the native code generator is tested against it
(differential testing) and constant folding may use it. It never runs users' programs in
production.

    ev = Evaluator(program, checked, truth)     # from driver.check_source(...)
    ev.call("fib", 10)                           # root-module names; `module.name` for others
    ev.truth("care"); ev.const("MAX"); ev.run_test("fibonacci")

Values are those of runtime/values.py: int, float (also truth), bool, str (text and enum
variant names), Money, list, dict (records, fields in declaration order), datetime (time).
Faults raise lwas.RuntimeError(kind, message, Position) at the offending expression or
statement (a binary operator: the whole `a + b`; a call: the call; a coercion: the coerced
expression; an assert or compound assignment: the statement).

Semantics (decided; the native code generator implements exactly the same):
- evaluation order (docs/language.md, "Evaluation order"): operands left to right, each one
  with its implicit conversion, then the operator's own checks (money: currency first); call
  arguments in parameter order (`Checked.call_args`), record fields in declaration order; the
  first fault raised in that order is the one reported. Every method below evaluates in that
  order and raises at the first fault; none evaluates ahead or reorders.
- int is i64 and never wraps: + - * and unary - outside the range are "overflow"; `/`
  truncates toward zero, `%` has the sign of the dividend; / or % by zero is "div_zero";
  INT_MIN / -1 is "overflow", INT_MIN % -1 is 0.
- floats are C doubles: x / 0.0 is +-inf, 0 / 0 and fmod(x, 0) are NaN, exp overflows to inf,
  ln(0) is -inf, sqrt of a negative is NaN; never a Python exception. int(x) truncates; NaN or
  outside [-2^63, 2^63) is "int_range". truth(x) and clamp01(x) of NaN, truth(x) outside
  [0, 1] and a NaN ramp are "truth_range".
- truths: and = min, or = max, not = 1 - x, a bool is 1.0/0.0 where a truth is needed
  (Checked.coercions). `and`/`or` evaluate the left operand first and skip the right one when
  the left decides (false / 0.0 for and, true / 1.0 for or); the value is then the left one.
- a rule's value is min(its body's value, the cap of the axioms it requires) (TruthResult.caps).
- money: + - unary - and money * int outside i64 are "overflow"; + - and every comparison of
  two currencies are "currency"; money / money is a float ("div_zero" for a zero divisor);
  scale(m, f) rounds m.minor * f half-even from the float's exact value (NaN, inf and results
  outside i64 are "overflow").
- an index outside [0, len) is "index"; `for i in a..b` evaluates b once and is half-open;
  a failed assert is "assert" with its message (default "assertion failed").

Choices beyond those (keep them in step with codegen):
- min/max on floats are C++'s std::min/std::max: min(a, b) = b < a ? b : a, max(a, b) =
  a < b ? b : a (the first operand wins ties and NaN comparisons). `and`/`or` on truths use
  the same functions.
- clamp01(x) = 0.0 if x < 0, 1.0 if x > 1, else x (so -0.0 stays -0.0); NaN -> truth_range.
- money `==`/`!=` with different currencies is a "currency" fault, like `<`.
- money / money converts both minor amounts to double and divides (as C would), it does not
  divide exactly.
- from_minor with an unknown currency code is a "currency" fault.
- maps are dicts; a missing key read (`m[k]`, `m[k] += v`, `m[k].f = v`) is a "key" fault at
  the `m[k]`; `m[k] = v` and `delete m[k]` never fault; iteration, `keys` and `values` follow
  the key order (text by UTF-8 bytes, an enum in declaration order: `map_sort_key`).
- Records and arrays are values: `let`/`var`, `=` and parameters copy them, `for x in xs`
  walks a snapshot.
- In `a[i] op= v` the target (its indices, bounds-checked) is evaluated before v.
- text(float) is Python's shortest round-trip repr ("0.1", "3.0", "inf", "nan").
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from lwas.syntax import tree as ast
from lwas.errors import KINDS, Position, RuntimeError as LwasRuntimeError
from lwas.runtime.values import Money, micros_to_time, time_to_micros
from lwas.semantics.types import (BOOL, CURRENCY_EXPONENTS, FLOAT, INT_MAX, INT_MIN, TEXT, TRUTH, UNIT, EnumT, MapT,
                    MoneyT, MoneyValue)
from lwas.semantics.typecheck import BuiltinRef, FieldRef, ItemRef, Local, VariantRef

# ---------------------------------------------------------------- control flow


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# ---------------------------------------------------------------- faults and C-like arithmetic


def position(span) -> Position:
    return Position(span.file, span.line, span.col, span.end_line, span.end_col)


def fault(kind: str, message: str, node) -> LwasRuntimeError:
    return LwasRuntimeError(kind, message, position(node.span))


def check_int(v: int, node, what: str = "integer overflow") -> int:
    """An i64 result, or the "overflow" fault: ints never wrap."""
    if v < INT_MIN or v > INT_MAX:
        raise fault("overflow", what, node)
    return v


def int_div(a: int, b: int, node) -> int:
    """Truncating division (C's `/` on i64), with the faults the native code checks for."""
    if b == 0:
        raise fault("div_zero", "division by zero", node)
    if a == INT_MIN and b == -1:
        raise fault("overflow", "integer overflow", node)
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def int_rem(a: int, b: int, node) -> int:
    """C's `%` on i64: the sign of the dividend; INT_MIN % -1 is 0."""
    if b == 0:
        raise fault("div_zero", "division by zero", node)
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def float_div(a: float, b: float) -> float:
    """IEEE division: x / 0.0 is +-inf (sign of both zeros' signs), 0/0 and NaN/0 are NaN."""
    if b == 0.0:
        if a == 0.0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def float_rem(a: float, b: float) -> float:
    """C's fmod: NaN for a zero divisor or an infinite dividend (Python raises instead)."""
    if a != a or b != b or math.isinf(a) or b == 0.0:
        return math.nan
    return math.fmod(a, b)


def c_min(a, b):
    return b if b < a else a


def c_max(a, b):
    return b if a < b else a


def c_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def c_ln(x: float) -> float:
    if x != x:
        return x
    if x == 0.0:
        return -math.inf
    if x < 0.0:
        return math.nan
    return math.log(x)


def c_sqrt(x: float) -> float:
    if x < 0.0:
        return math.nan
    return math.sqrt(x)


def c_floor(x: float) -> float:
    if not math.isfinite(x):
        return x
    return math.copysign(float(math.floor(x)), x)


def c_ceil(x: float) -> float:
    if not math.isfinite(x):
        return x
    return math.copysign(float(math.ceil(x)), x)


def float_text(x: float) -> str:
    return repr(x)


def time_text(t: datetime) -> str:
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{t.microsecond:06d}Z" if t.microsecond else f"{base}Z"


def value_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return float_text(v)
    if isinstance(v, datetime):
        return time_text(v)
    return str(v)  # int, Money


def scale_money(m: Money, f: float, node) -> Money:
    """m * f rounded half-even, computed from the float's exact binary value."""
    if not math.isfinite(f):
        raise fault("overflow", "money scaled by a non-finite factor", node)
    v = round(Fraction(m.minor) * Fraction(f))
    return Money(check_int(v, node, "money overflow"), m.currency)


def same_currency(a: Money, b: Money, node) -> None:
    if a.currency != b.currency:
        raise fault("currency", f"currency mismatch: {a.currency} and {b.currency}", node)


# ---------------------------------------------------------------- binary operators


def _arith(op: str, a, b, node):
    """+ - * / % on two evaluated operands (after implicit conversions)."""
    if isinstance(a, Money) or isinstance(b, Money):
        return _money_arith(op, a, b, node)
    if isinstance(a, (str, list)):  # text or array concatenation
        return a + b
    if isinstance(a, float):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return float_div(a, b)
        return float_rem(a, b)
    if op == "+":
        return check_int(a + b, node)
    if op == "-":
        return check_int(a - b, node)
    if op == "*":
        return check_int(a * b, node)
    if op == "/":
        return int_div(a, b, node)
    return int_rem(a, b, node)


def _money_arith(op: str, a, b, node):
    if op == "*":
        m, k = (a, b) if isinstance(a, Money) else (b, a)
        return Money(check_int(m.minor * k, node, "money overflow"), m.currency)
    same_currency(a, b, node)
    if op == "+":
        return Money(check_int(a.minor + b.minor, node, "money overflow"), a.currency)
    if op == "-":
        return Money(check_int(a.minor - b.minor, node, "money overflow"), a.currency)
    if op == "/":
        if b.minor == 0:
            raise fault("div_zero", "division by a zero amount", node)
        return float(a.minor) / float(b.minor)
    raise AssertionError(f"money {op} money passed the type checker")


_COMPARE = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _compare(op: str, a, b, node) -> bool:
    if isinstance(a, Money):
        same_currency(a, b, node)
        a, b = a.minor, b.minor
    return _COMPARE[op](a, b)


# ---------------------------------------------------------------- built-ins


def _b_int(args, call, sig):
    x = args[0]
    if isinstance(x, int):
        return x
    if x != x or not (-2.0 ** 63 <= x < 2.0 ** 63):
        raise fault("int_range", f"float {float_text(x)} is out of the range of int", call)
    return int(x)


def _b_truth(args, call, sig):
    x = args[0]
    if isinstance(x, bool):
        return 1.0 if x else 0.0
    if x != x or x < 0.0 or x > 1.0:
        raise fault("truth_range", f"truth value {float_text(x)} out of [0, 1]", call)
    return x


def _b_clamp01(args, call, sig):
    x = args[0]
    if x != x:
        raise fault("truth_range", "clamp01 of NaN", call)
    if x < 0.0:
        return 0.0
    if x > 1.0:
        return 1.0
    return x


def _b_ramp(args, call, sig):
    x, lo, hi = args
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    v = float_div(x - lo, hi - lo)
    if v != v:
        raise fault("truth_range", "ramp gives NaN", call)
    return v


def _b_abs(args, call, sig):
    x = args[0]
    if isinstance(x, Money):
        return Money(check_int(abs(x.minor), call, "money overflow"), x.currency)
    if isinstance(x, float):
        return math.fabs(x)
    return check_int(abs(x), call)


def _b_minmax(pick):
    def f(args, call, sig):
        a, b = args
        if isinstance(a, Money):
            same_currency(a, b, call)
            return a if pick(a.minor, b.minor) == a.minor else b
        return pick(a, b)
    return f


def _b_from_minor(args, call, sig):
    n, code = args
    if code not in CURRENCY_EXPONENTS:
        raise fault("currency", f"unknown currency code {code!r}", call)
    return Money(n, code)


def _b_scale(args, call, sig):
    return scale_money(args[0], args[1], call)


def _at_micros(us: int, call):
    if not -62135596800000000 <= us <= 253402300799999999:
        raise fault("int_range", "time out of range (years 1 to 9999)", call)
    return micros_to_time(us)


BUILTIN_IMPLS = {
    "len": lambda args, call, sig: len(args[0]),
    "float": lambda args, call, sig: float(args[0]),
    "int": _b_int,
    "truth": _b_truth,
    "text": lambda args, call, sig: value_text(args[0]),
    "ramp": _b_ramp,
    "clamp01": _b_clamp01,
    "abs": _b_abs,
    "min": _b_minmax(c_min),
    "max": _b_minmax(c_max),
    "sqrt": lambda args, call, sig: c_sqrt(args[0]),
    "exp": lambda args, call, sig: c_exp(args[0]),
    "ln": lambda args, call, sig: c_ln(args[0]),
    "floor": lambda args, call, sig: c_floor(args[0]),
    "ceil": lambda args, call, sig: c_ceil(args[0]),
    "minor": lambda args, call, sig: args[0].minor,
    "currency": lambda args, call, sig: args[0].currency,
    "from_minor": _b_from_minor,
    "scale": _b_scale,
    "micros": lambda args, call, sig: time_to_micros(args[0]),
    "at_micros": lambda args, call, sig: _at_micros(args[0], call),
}


# ---------------------------------------------------------------- the evaluator


class MemoryHost:
    """The evaluator's stand-in for the service runtime: ledgers as dicts of key -> entry and a
    settable clock. `keys` maps a ledger's index to its key field (default: the first field)."""

    def __init__(self, keys: dict[int, str] | None = None, now: datetime | None = None):
        self.keys = keys or {}
        self.settings: dict[str, str] = {}  # what config() reads
        self.metrics: dict[int, float] = {}  # what cpu_percent() and friends read (lwas.semantics.service.METRICS)
        self.entries: dict = {}
        self.clock = now
        self.externs: dict = {}  # binding ("stripe.create_payment_intent") -> callable(*args) -> value

    def extern(self, binding: str, args: list):
        f = self.externs.get(binding)
        if f is None:
            raise LookupError(f"no connector {binding!r} in this host")
        return f(*args)

    def append(self, ledger: int, entry) -> int:
        book = self.entries.setdefault(ledger, {})
        field = self.keys.get(ledger)
        key = entry[field] if field is not None else next(iter(entry.values()))
        if key in book:
            return 1 if book[key] == entry else 2
        book[key] = entry
        return 0

    def config(self, name: str) -> str | None:
        return self.settings.get(name)

    def metric(self, which: int) -> float:
        return self.metrics.get(which, 0.0)

    def ledger_has(self, ledger: int, key: str) -> bool:
        return any(str(k) == key for k in self.entries.get(ledger, {}))  # keys as the ledger writes them

    def ledger_root(self, ledger: int) -> str:
        """The RFC 6962 root over the entries' reprs (the evaluator has no entry encoding)."""
        from lwas.runtime.merkle import MerkleTree, leaf_hash

        return MerkleTree([leaf_hash(repr(e).encode()) for e in self.entries.get(ledger, {}).values()]).root().hex()

    def now(self) -> datetime:
        from datetime import timezone

        return self.clock or datetime.now(timezone.utc)


@dataclass
class _Frame:
    """One call's variables, keyed by the checker's Local objects (unique per binding, so
    shadowing and nested scopes need no bookkeeping)."""

    vars: dict


class Evaluator:
    """Evaluates a checked program (one that compiled without errors)."""

    def __init__(self, program, checked, truth):
        self.program = program
        self.checked = checked
        self.truth_result = truth
        self.types = checked.types
        self.coercions = checked.coercions
        self.refs = checked.refs
        self.axiom_values = {id(d): v for d, v in zip(program.axioms, truth.effective)}
        self.caps = {id(d): c for (_, d), c in zip(program.rules, truth.caps)}
        self.const_cache: dict = {}
        self.const_busy: set = set()
        self.ex = {
            ast.IntLit: self.e_lit, ast.FloatLit: self.e_lit, ast.BoolLit: self.e_lit,
            ast.TextLit: self.e_lit, ast.MoneyLit: self.e_money, ast.Name: self.e_name,
            ast.Unary: self.e_unary, ast.Binary: self.e_binary, ast.Call: self.e_call,
            ast.Field: self.e_field, ast.Index: self.e_index, ast.ArrayLit: self.e_array,
            ast.MapLit: self.e_map, ast.Match: self.e_match,
        }
        self.st = {
            ast.Let: self.s_let, ast.Assign: self.s_assign, ast.If: self.s_if,
            ast.While: self.s_while, ast.ForRange: self.s_for_range, ast.ForEach: self.s_for_each,
            ast.Return: self.s_return, ast.Break: self.s_break, ast.Continue: self.s_continue,
            ast.Assert: self.s_assert, ast.ExprStmt: self.s_expr, ast.Block: self.block,
            ast.Delete: self.s_delete,
        }
        self.frame = _Frame({})
        self.host = MemoryHost()  # what services' `append` and `now()` use (see lwas.semantics.service)

    # ------------------------------------------------------------ public API

    def _lookup(self, name: str, kinds: tuple):
        mod_name, _, item = name.rpartition(".")
        for m in self.program.modules:
            if (m.is_root and not mod_name) or m.name == mod_name:
                d = m.items.get(item)
                if d is not None and isinstance(d, kinds):
                    return d
        raise KeyError(f"no {'/'.join(k.__name__ for k in kinds)} named {name!r}")

    def call(self, name: str, *args):
        """Calls a fn or rule by name with Python values; returns its value (None for unit)."""
        decl = self._lookup(name, (ast.FnDecl, ast.RuleDecl))
        sig = self.checked.signatures[decl]
        if len(args) != len(sig.params):
            raise TypeError(f"{name} takes {len(sig.params)} arguments, {len(args)} given")
        args = [float(a) if t in (FLOAT, TRUTH) and isinstance(a, int) and not isinstance(a, bool)
                else a for a, (_, t) in zip(args, sig.params)]
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 20000))
        try:
            return self.invoke(decl, [copy.deepcopy(a) for a in args])
        except RecursionError:  # the evaluator's own stack, like the native guard's
            raise LwasRuntimeError("stack", KINDS["stack"]) from None
        finally:
            sys.setrecursionlimit(old)

    def truth(self, axiom_name: str) -> float:
        """The effective truth of an axiom (display name: `truth`, `ethics.truth`)."""
        return self.truth_result.effective[self.program.axiom_names.index(axiom_name)]

    def const(self, name: str):
        return self.const_value(self._lookup(name, (ast.ConstDecl,)))

    def run_test(self, name: str) -> None:
        """Runs a test of the root module; a failure raises lwas.RuntimeError."""
        for item in self.program.root.tree.items:
            if isinstance(item, ast.TestDecl) and item.name == name:
                saved, self.frame = self.frame, _Frame({})
                try:
                    self.block(item.body)
                finally:
                    self.frame = saved
                return
        raise KeyError(f"no test named {name!r}")

    def test_names(self) -> list[str]:
        return [i.name for i in self.program.root.tree.items if isinstance(i, ast.TestDecl)]

    # ------------------------------------------------------------ items

    def invoke(self, decl, args: list):
        """Runs a fn or rule body in a fresh frame; a rule's value is capped by its axioms."""
        sig = self.checked.signatures[decl]
        if decl.__class__ is ast.FnDecl and decl.extern is not None:
            try:
                return self.host.extern(decl.extern, args)
            except Exception as e:  # noqa: BLE001 - as native code sees a failed connector
                raise LwasRuntimeError("host", f"the external call `{decl.name}` ({decl.extern}) failed: {e}") from None
        frame = _Frame({self.checked.bindings[p]: a for p, a in zip(decl.params, args)})
        saved, self.frame = self.frame, frame
        try:
            body = decl.body
            if body.__class__ is ast.Block:
                try:
                    self.block(body)
                    result = None
                except _Return as r:
                    result = r.value
            elif sig.ret is UNIT and body.__class__ is ast.Match:
                self.match(body, as_value=False)
                result = None
            else:
                result = self.expr(body)
        finally:
            self.frame = saved
        if decl.__class__ is ast.RuleDecl:
            result = c_min(result, self.caps.get(id(decl), 1.0))
        return result

    def const_value(self, decl):
        key = id(decl)
        if key in self.const_cache:
            return self.const_cache[key]
        v = self.checked.const_values.get(decl)
        if isinstance(v, MoneyValue):
            v = Money(v.minor, v.currency)
        if v is None:
            if key in self.const_busy:
                raise AssertionError(f"constant {decl.name} depends on itself")
            self.const_busy.add(key)
            saved, self.frame = self.frame, _Frame({})
            try:
                v = self.expr(decl.value)
            finally:
                self.frame = saved
                self.const_busy.discard(key)
        elif self.checked.const_types.get(decl) is TRUTH and isinstance(v, bool):
            v = 1.0 if v else 0.0
        self.const_cache[key] = v
        return v

    def ref_value(self, ref, node):
        c = ref.__class__
        if c is Local:
            return self.frame.vars[ref]
        if c is VariantRef:
            return ref.name
        if c is ItemRef:
            if ref.kind == "const":
                return self.const_value(ref.decl)
            if ref.kind == "axiom":
                return self.axiom_values[id(ref.decl)]
        raise AssertionError(f"{node} does not denote a value")

    # ------------------------------------------------------------ expressions

    def expr(self, e):
        """The value of e where it is used: after the implicit conversion the checker recorded."""
        v = self.ex[e.__class__](e)
        to = self.coercions.get(e)
        if to is not None:
            v = self.convert(v, to, e)
        return v

    def convert(self, v, to, e):
        if to is TRUTH and isinstance(v, bool):
            return 1.0 if v else 0.0
        if to.__class__ is MoneyT and to.currency is not None and isinstance(v, Money):
            if v.currency != to.currency:
                raise fault("currency", f"expected {to.currency}, found {v.currency}", e)
        return v  # truth -> float, money -> money (unknown currency), arrays of money

    def e_lit(self, e):
        return e.value

    def e_money(self, e):
        mv = self.checked.money_values[e]
        return Money(mv.minor, mv.currency)

    def e_name(self, e):
        return self.ref_value(self.refs[e], e)

    def e_field(self, e):
        ref = self.refs[e]
        if ref.__class__ is FieldRef:
            return self.expr(e.obj)[ref.name]
        return self.ref_value(ref, e)

    def e_index(self, e):
        xs = self.expr(e.obj)
        i = self.expr(e.index)
        if type(xs) is dict:  # a map
            if i not in xs:
                raise fault("key", "key not in map", e)
            return xs[i]
        if not 0 <= i < len(xs):
            raise fault("index", f"index {i} out of range for length {len(xs)}", e)
        return xs[i]

    def e_array(self, e):
        return [copy.deepcopy(self.expr(x)) for x in e.elems]

    def e_map(self, e):
        out = {}
        for x in e.entries:  # key, then value, entry by entry; a repeated key: the last wins
            k = self.expr(x.key)
            out[k] = copy.deepcopy(self.expr(x.value))
        return out

    def e_unary(self, e):
        v = self.expr(e.operand)
        if e.op == "not":
            if isinstance(v, bool):
                return not v
            return 1.0 - v
        if isinstance(v, Money):
            return Money(check_int(-v.minor, e, "money overflow"), v.currency)
        if isinstance(v, float):
            return -v
        return check_int(-v, e)

    def e_binary(self, e):
        op = e.op
        if op == "and" or op == "or":
            return self.logic(e)
        a = self.expr(e.left)
        b = self.expr(e.right)
        if op == "in":
            return a in b
        if op in _COMPARE:
            return _compare(op, a, b, e)
        return _arith(op, a, b, e)

    def logic(self, e):
        """`and`/`or`, left first; the right operand is skipped when the left decides."""
        a = self.expr(e.left)
        is_and = e.op == "and"
        if self.types[e] is BOOL:
            if a is (not is_and):  # true or ..., false and ...
                return a
            return self.expr(e.right)
        if (is_and and a == 0.0) or (not is_and and a == 1.0):
            return a
        b = self.expr(e.right)
        return c_min(a, b) if is_and else c_max(a, b)

    def e_call(self, e):
        ref = self.refs[e.callee]
        args = [self.expr(a) for a in self.checked.call_args[e]]
        if ref.__class__ is BuiltinRef:
            name = ref.builtin.name
            if name == "append$":
                return self.append(args[0], args[1], e)
            if name == "now$":
                return self.host.now()
            if name == "config_int$":
                v = self.host.config(args[0])
                if v is None:
                    return args[1]
                try:
                    return check_int(int(v.strip(), 10), e)
                except ValueError:
                    raise fault("host", "this configuration value is not an int", e) from None
            if name == "metric$":
                return float(self.host.metric(args[0]))
            if name == "ledger_root$":
                return self.host.ledger_root(args[0])
            if name == "ledger_has$":
                return self.host.ledger_has(args[0], args[1])
            if name == "config$":
                v = self.host.config(args[0])
                if v is None:
                    raise fault("host", "this configuration value is not set", e)
                return v
            if name in ("keys", "values"):
                order = map_sort_key(self.checked.call_sigs[e].param_types[0])
                items = sorted(args[0].items(), key=lambda kv: order(kv[0]))
                return [copy.deepcopy(kv[0 if name == "keys" else 1]) for kv in items]
            if name in ("first", "after"):
                order = map_sort_key(self.checked.call_sigs[e].param_types[0])
                n = args[-1]
                items = sorted(args[0].items(), key=lambda kv: order(kv[0]))
                if name == "after":
                    items = [kv for kv in items if order(kv[0]) > order(args[1])]
                return {k: copy.deepcopy(v) for k, v in items[:max(n, 0)]}
            if name == "get":
                return copy.deepcopy(args[0][args[1]]) if args[1] in args[0] else args[2]
            return BUILTIN_IMPLS[name](args, e, self.checked.call_sigs[e])
        if ref.kind == "record":
            rt = self.checked.call_sigs[e].ret
            return {name: copy.deepcopy(v) for name, v in zip(rt.fields, args)}
        return self.invoke(ref.decl, [copy.deepcopy(a) for a in args])

    def append(self, ledger: int, entry, e) -> bool:
        status = self.host.append(ledger, copy.deepcopy(entry))
        if status == 2:
            raise fault("conflict", "the ledger already holds another entry under this key", e)
        if status not in (0, 1):
            raise fault("host", "the runtime could not append to the ledger", e)
        return status == 0

    def e_match(self, e):
        return self.match(e, as_value=True)

    def match(self, e, as_value: bool):
        subject = self.expr(e.subject)
        for arm in e.arms:
            if any(self.matches(p, subject) for p in arm.patterns):
                if arm.body.__class__ is ast.Block:
                    self.block(arm.body)
                    return None
                return self.expr(arm.body)
        raise AssertionError("no match arm matched an exhaustive match")

    def matches(self, p, subject) -> bool:
        c = p.__class__
        if c is ast.WildcardPat:
            return True
        if c is ast.VariantPat:
            return self.refs[p].name == subject
        return self.expr(p.value) == subject

    # ------------------------------------------------------------ statements

    def block(self, b: ast.Block) -> None:
        for s in b.stmts:
            self.st[s.__class__](s)

    def s_let(self, s):
        self.frame.vars[self.checked.bindings[s]] = copy.deepcopy(self.expr(s.value))

    def s_assign(self, s):
        target = s.target
        if s.op == "=":
            if target.__class__ is ast.Name:
                self.frame.vars[self.refs[target]] = copy.deepcopy(self.expr(s.value))
                return
            container, key = self.place(target)
            container[key] = copy.deepcopy(self.expr(s.value))
            return
        if target.__class__ is ast.Name:
            loc = self.refs[target]
            old = self.frame.vars[loc]
            self.frame.vars[loc] = _arith(s.op[0], old, self.expr(s.value), s)
            return
        container, key = self.place(target)
        if type(container) is dict and target.__class__ is ast.Index and key not in container:
            raise fault("key", "key not in map", target)
        old = container[key]
        container[key] = _arith(s.op[0], old, self.expr(s.value), s)

    def s_delete(self, s):
        container, key = self.place(s.target)
        container.pop(key, None)

    def place(self, target):
        """(container, key) of a field or element target, evaluating indices left to right."""
        c = target.__class__
        if c is ast.Name:
            return self.frame.vars, self.refs[target]
        container, key = self.place(target.obj)
        through_map = target.obj.__class__ is ast.Index and self.types.get(target.obj.obj).__class__ is MapT
        if through_map and key not in container:
            raise fault("key", "key not in map", target.obj)  # going on through an absent key
        obj = container[key]
        if c is ast.Field:
            return obj, self.refs[target].name
        i = self.expr(target.index)
        if type(obj) is dict:  # a map: any key may be set
            return obj, i
        if not 0 <= i < len(obj):
            raise fault("index", f"index {i} out of range for length {len(obj)}", target)
        return obj, i

    def s_if(self, s):
        if self.expr(s.cond):
            self.block(s.then)
        elif s.orelse is not None:
            self.st[s.orelse.__class__](s.orelse)

    def loop_body(self, body) -> bool:
        """Run one iteration; False when it ended with `break`."""
        try:
            self.block(body)
        except _Break:
            return False
        except _Continue:
            pass
        return True

    def s_while(self, s):
        while self.expr(s.cond) and self.loop_body(s.body):
            pass

    def s_for_range(self, s):
        i = self.expr(s.start)
        end = self.expr(s.end)
        loc = self.checked.bindings[s]
        while i < end:
            self.frame.vars[loc] = i
            if not self.loop_body(s.body):
                break
            i += 1

    def s_for_each(self, s):
        xs = copy.deepcopy(self.expr(s.iterable))
        loc = self.checked.bindings[s]
        if type(xs) is dict:  # a map: its keys (and values) in key order
            order = map_sort_key(self.types[s.iterable])
            value = self.checked.bindings.get((s, "value"))
            for k in sorted(xs, key=order):
                self.frame.vars[loc] = k
                if value is not None:
                    self.frame.vars[value] = xs[k]
                if not self.loop_body(s.body):
                    break
            return
        for x in xs:
            self.frame.vars[loc] = x
            if not self.loop_body(s.body):
                break

    def s_return(self, s):
        raise _Return(None if s.value is None else self.expr(s.value))

    def s_break(self, s):
        raise _Break()

    def s_continue(self, s):
        raise _Continue()

    def s_assert(self, s):
        if not self.expr(s.cond):
            err = fault(s.kind, s.message if s.message is not None else "assertion failed", s)
            c = s.cond
            if c.__class__ is ast.Binary and c.op in ("==", "!=", "<", "<=", ">", ">="):
                err.operands = (self.expr(c.left), self.expr(c.right))  # pure: safe to compute again
            raise err

    def s_expr(self, s):
        if s.expr.__class__ is ast.Match:
            self.match(s.expr, as_value=False)
        else:
            self.expr(s.expr)


def map_sort_key(t: MapT):
    """The key order of map type t on the evaluator's values (the native tree's order)."""
    k = t.key
    if k is TEXT:
        return lambda s: s.encode("utf-8")
    if k.__class__ is EnumT:
        return k.index.__getitem__
    return lambda x: x


def evaluator_for(source: str, path: str = "<test>.lwas") -> Evaluator:
    """Checks a source text and returns its evaluator (ValueError if it does not compile)."""
    from lwas.driver import check_source

    c = check_source(source, path)
    if not c.ok:
        raise ValueError("; ".join(f"{d.code} {d.message} at {d.span}" for d in c.diagnostics
                                   if d.severity == "error"))
    return Evaluator(c.program, c.checked, c.truth)
