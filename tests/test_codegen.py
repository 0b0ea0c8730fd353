"""Native code generation end to end: check -> lower -> generate -> load from memory -> call.

Real compilation, no mocks. One program (docs/contract.md's accepted blocks plus functions that
exercise each feature and each runtime fault) is compiled once per optimisation level; every
behaviour is checked at O0 and O2, and a fault must leave the process able to run more calls.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lwas
from lwas.backend import codegen, lower
from lwas.abi import SYMBOL_PREFIX
from lwas.driver import check_source
from lwas.runtime.native import NativeProgram
from lwas.runtime.values import Money

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1

LANGUAGE = (Path(__file__).resolve().parent.parent / "examples" / "language_tour.lwas").read_text()

EXTRA = '''
record Point {
  x: float
  y: float
  on: bool
}

fn div(a: int, b: int) -> int = a / b
fn rem(a: int, b: int) -> int = a % b
fn add(a: int, b: int) -> int = a + b
fn mul(a: int, b: int) -> int = a * b
fn neg(a: int) -> int = -a
fn to_int(x: float) -> int = int(x)
fn fdiv(a: float, b: float) -> float = a / b
fn check_pos(x: int) -> int {
  assert x > 0, "x must be positive"
  assert x < 100
  return x
}
fn at(xs: [int], i: int) -> int = xs[i]
fn money_add(a: money, b: money) -> money = a + b
fn money_less(a: money, b: money) -> bool = a < b
fn money_ratio(a: money, b: money) -> float = a / b
fn plus_dollar(a: money) -> money = a + 1.00 USD
fn scale_it(m: money, f: float) -> money = scale(m, f)
fn triple(m: money) -> money = 3 * m
fn money_abs(m: money) -> money = abs(m)
fn cheaper(a: money, b: money) -> money = min(a, b)
fn minor_of(m: money) -> int = minor(m)
fn yen(n: int) -> money = from_minor(n, "JPY")
fn clamp(x: float) -> truth = clamp01(x)
fn ramp01(x: float) -> truth = ramp(x, 0.0, 1.0)
fn short_and(x: int) -> bool = x != 0 and 10 / x > 1
fn short_or(x: int) -> bool = x == 0 or 10 / x > 1
fn tand(a: truth, b: truth) -> truth = a and b
fn tor(a: truth, b: truth) -> truth = a or not b
fn tbool(a: bool, b: truth) -> truth = a and b
fn classify(n: int) -> int = match n {
  0 => 10
  1 | 2 => 20
  -1 => 5
  _ => 30
}
fn kind_code(t: TxType) -> int {
  match t {
    Payment => { return 1 }
    _ => { return 2 }
  }
}
fn mk(x: float) -> Point = Point(x: x, y: 2.0, on: x > 0.0)
fn moved(p: Point, dx: float) -> Point {
  var q = p
  q.x += dx
  q.on = not q.on
  return q
}
fn norm1(p: Point) -> float = abs(p.x) + abs(p.y)
fn count_big(xs: [int], limit: int) -> int {
  var n = 0
  for x in xs {
    if x > limit {
      n += 1
    }
  }
  return n
}
fn odd_sum(n: int) -> int {
  var i = 0
  var s = 0
  while true {
    i += 1
    if i > n {
      break
    }
    if i % 2 == 0 {
      continue
    }
    s += i
  }
  return s
}
fn small() -> [int] = [1, 2, 3]
fn kinds() -> [TxType] = [Refund, Payment]
fn same(a: text, b: text) -> bool = a == b
fn greet() -> text = "héllo"
fn echo(t: text) -> text = t
fn later(a: time, b: time) -> bool = a > b
fn ident(xs: [float]) -> [float] = xs
fn bounds(lo: int, hi: int) -> int {
  var c = 0
  for i in lo..hi {
    c += 1
  }
  return c
}
fn trust() -> truth = integrity
fn biggest(a: int, b: int) -> int = max(a, abs(b))
fn tx_of(t: Transaction) -> TxType = t.tx_type
fn limit() -> money = MAX_TRANSACTION
fn nothing(x: int) {
  assert x != 3, "three"
}
fn sqrt_of(x: float) -> float = sqrt(x)
fn code_of(m: money) -> text = currency(m)
fn money_of(n: int, code: text) -> money = from_minor(n, code)

test "arith" {
  assert div(-7, 2) == -3
  assert rem(-7, 2) == -1
  assert classify(-1) == 5
}
test "broken" {
  assert 1 + 1 == 3, "math is broken"
}
'''

SOURCE = LANGUAGE + EXTRA
UTC = timezone.utc
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def line_of(snippet: str) -> int:
    """The 1-based line of SOURCE that contains snippet (the one place a fault must point at)."""
    hits = [i for i, text in enumerate(SOURCE.splitlines(), 1) if snippet in text]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


def build(source: str, opt_level: int = 2):
    c = check_source(source, "prog.lwas")
    errors = [d for d in c.diagnostics if d.severity == "error"]
    assert not errors, errors
    return codegen.generate(lower.lower_program(c.program, c.checked, c.truth), opt_level)


@pytest.fixture(scope="module")
def modules():
    return {opt: build(SOURCE, opt) for opt in (0, 2)}


@pytest.fixture(scope="module", params=[0, 2], ids=["O0", "O2"])
def prog(request, modules):
    m = modules[request.param]
    return NativeProgram.from_object(m.object_code, m.describe())


def tx(amount: Money, kind: str = "Payment") -> dict:
    return {"id": "t1", "amount": amount, "timestamp": T0, "tx_type": kind}


# ---------------------------------------------------------------- docs/contract.md


def test_language_functions(prog):
    f = prog.fn
    assert f.fib(10) == 55
    assert f.fib(30) == 832040
    assert f.sum_to(4) == 6
    assert f.sum_to(0) == 0 and f.sum_to(-5) == 0
    assert f.sum_to(1_000_000) == 499999500000  # a runtime bound: the loop is not folded away
    assert f.circle_area(2.0) == 3.141592653589793 * 2.0 * 2.0
    assert f.mean([1.0, 2.0, 4.5]) == 2.5
    assert math.isnan(f.mean([]))
    assert f.signed_amount(tx(Money(1250, "USD"), "Refund")) == Money(-1250, "USD")
    assert f.signed_amount(tx(Money(1250, "EUR"), "Revenue")) == Money(1250, "EUR")
    assert f.valid_amount(tx(Money(1250, "USD"))) == 1.0
    assert f.valid_amount(tx(Money(0, "USD"))) == 0.0
    assert f.valid_amount(tx(Money(100_000_001, "USD"))) == 0.0
    assert f.overloaded(80.0) == 0.5 and f.overloaded(60.0) == 0.0 and f.overloaded(95.0) == 1.0
    assert f.healthy(10.0, 10.0) == 0.95  # capped by integrity
    assert f.healthy(80.0, 80.0) == 0.5
    assert f.healthy(80.0, 90.0) == 0.25
    assert prog.call("fib", 12) == 144 and getattr(prog.fn, "fib")(3) == 2


def test_axiom_table(prog):
    assert prog.truth("truth") == 1.0
    assert prog.truth("freedom") == 0.8
    assert prog.truth("hope") == 0.5
    assert prog.truth("care") == 0.5
    assert prog.truth("integrity") == 0.95
    assert prog.fn.trust() == 0.95


def test_tests_run(prog):
    assert prog.tests == ["fibonacci", "arith", "broken"]
    prog.run_test("fibonacci")
    prog.run_test("arith")
    with pytest.raises(lwas.RuntimeError) as e:
        prog.run_test("broken")
    assert e.value.kind == "assert" and e.value.message == "math is broken"
    assert e.value.position.line == line_of('"math is broken"')


def test_exports_and_symbols(modules):
    m = modules[2]
    names = [e.name for e in m.exports]
    assert names[:8] == ["fib", "sum_to", "circle_area", "mean", "signed_amount", "valid_amount",
                         "overloaded", "healthy"]
    e = m.exports[0]
    assert e.symbol == SYMBOL_PREFIX + "fib" and e.kind == "fn" and e.result == "int"
    assert e.line == line_of("fn fib(")
    test = next(x for x in m.exports if x.kind == "test")
    assert test.name == "fibonacci" and test.symbol == SYMBOL_PREFIX + "test$0"
    rule = next(x for x in m.exports if x.name == "valid_amount")
    assert rule.kind == "rule" and rule.result == "truth"
    assert rule.params[0].type["record"] == "Transaction"


# ---------------------------------------------------------------- faults

FAULTS = [
    ("div", (1, 0), "div_zero", "fn div("),
    ("div", (INT_MIN, -1), "overflow", "fn div("),
    ("rem", (5, 0), "div_zero", "fn rem("),
    ("add", (INT_MAX, 1), "overflow", "fn add("),
    ("add", (INT_MIN, -1), "overflow", "fn add("),
    ("mul", (2 ** 62, 2), "overflow", "fn mul("),
    ("neg", (INT_MIN,), "overflow", "fn neg("),
    ("to_int", (math.nan,), "int_range", "fn to_int("),
    ("to_int", (9.3e18,), "int_range", "fn to_int("),
    ("to_int", (math.inf,), "int_range", "fn to_int("),
    ("check_pos", (0,), "assert", '"x must be positive"'),
    ("check_pos", (100,), "assert", "assert x < 100"),
    ("at", ([1, 2, 3], 3), "index", "fn at("),
    ("at", ([1, 2, 3], -1), "index", "fn at("),
    ("at", ([], 0), "index", "fn at("),
    ("money_add", (Money(1, "USD"), Money(1, "EUR")), "currency", "fn money_add("),
    ("money_add", (Money(INT_MAX, "USD"), Money(1, "USD")), "overflow", "fn money_add("),
    ("money_less", (Money(1, "USD"), Money(1, "EUR")), "currency", "fn money_less("),
    ("money_ratio", (Money(1, "USD"), Money(0, "USD")), "div_zero", "fn money_ratio("),
    ("plus_dollar", (Money(1, "EUR"),), "currency", "fn plus_dollar("),
    ("scale_it", (Money(1, "USD"), math.nan), "overflow", "fn scale_it("),
    ("scale_it", (Money(10, "USD"), 1e300), "overflow", "fn scale_it("),
    ("triple", (Money(INT_MAX // 2, "USD"),), "overflow", "fn triple("),
    ("money_abs", (Money(INT_MIN, "USD"),), "overflow", "fn money_abs("),
    ("cheaper", (Money(1, "USD"), Money(1, "JPY")), "currency", "fn cheaper("),
    ("clamp", (math.nan,), "truth_range", "fn clamp("),
    ("ramp01", (math.nan,), "truth_range", "fn ramp01("),
    ("biggest", (1, INT_MIN), "overflow", "fn biggest("),
    ("nothing", (3,), "assert", '"three"'),
    ("valid_amount", (tx(Money(5, "EUR")),), "currency", "tx.amount > 0.00 USD"),
    ("money_of", (5, "EURO"), "currency", "fn money_of("),
    ("money_of", (5, "XXX"), "currency", "fn money_of("),
]


@pytest.mark.parametrize("name,args,kind,where", FAULTS, ids=[f"{f[0]}-{f[2]}-{i}" for i, f in enumerate(FAULTS)])
def test_fault(prog, name, args, kind, where):
    with pytest.raises(lwas.RuntimeError) as e:
        prog.call(name, *args)
    err = e.value
    assert err.kind == kind
    assert err.position.file == "prog.lwas" and err.position.line == line_of(where)
    assert err.position.col >= 1 and err.message
    assert prog.fn.fib(15) == 610  # the process and the program stay healthy


def test_fault_messages(prog):
    with pytest.raises(lwas.RuntimeError) as e:
        prog.fn.div(1, 0)
    assert e.value.message == "division by zero in `a / b`"
    assert str(e.value).startswith(f"prog.lwas:{line_of('fn div(')}:")


# ---------------------------------------------------------------- integers and floats


@pytest.mark.parametrize("a", [7, -7, 0, 1, INT_MAX, INT_MIN, -1, 3037000499])
@pytest.mark.parametrize("b", [2, -2, 1, -1, 3, INT_MAX, INT_MIN])
def test_division_truncates_and_remainder_has_dividend_sign(modules, a, b):
    p = _o2(modules)
    if a == INT_MIN and b == -1:
        assert p.fn.rem(a, b) == 0
        return
    q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
    assert p.fn.div(a, b) == q
    assert p.fn.rem(a, b) == a - q * b


_cache: dict = {}


def _o2(modules):
    if "o2" not in _cache:
        m = modules[2]
        _cache["o2"] = NativeProgram.from_object(m.object_code, m.describe())
    return _cache["o2"]


def test_checked_boundaries(prog):
    f = prog.fn
    assert f.add(INT_MAX, 0) == INT_MAX and f.add(INT_MIN, 0) == INT_MIN
    assert f.mul(3037000499, 3037000499) == 3037000499 ** 2
    assert f.neg(INT_MAX) == -INT_MAX
    assert f.to_int(3.9) == 3 and f.to_int(-3.9) == -3
    assert f.to_int(-9.223372036854775808e18) == INT_MIN
    assert f.fdiv(1.0, 0.0) == math.inf and f.fdiv(-1.0, 0.0) == -math.inf
    assert math.isnan(f.fdiv(0.0, 0.0))
    assert math.isnan(f.sqrt_of(-1.0)) and f.sqrt_of(9.0) == 3.0


def test_truth_operators_and_short_circuit(prog):
    f = prog.fn
    assert f.short_and(0) is False  # 10 / 0 is never evaluated
    assert f.short_or(0) is True
    assert f.short_and(2) is True and f.short_and(20) is False
    assert f.tand(0.3, 0.6) == 0.3
    assert math.copysign(1.0, f.tand(-0.0, 0.6)) == -1.0  # the deciding left value itself
    assert f.tor(0.3, 0.6) == 0.4
    assert f.tbool(True, 0.4) == 0.4 and f.tbool(False, 0.4) == 0.0
    assert [f.clamp(x) for x in (-1.0, 0.3, 2.0)] == [0.0, 0.3, 1.0]
    assert [f.ramp01(x) for x in (-1.0, 0.25, 1.0, 7.0)] == [0.0, 0.25, 1.0, 1.0]


def test_control_flow(prog):
    f = prog.fn
    assert [f.classify(n) for n in (0, 1, 2, -1, 3, INT_MIN)] == [10, 20, 20, 5, 30, 30]
    assert f.kind_code("Payment") == 1 and f.kind_code("Expense") == 2
    assert f.odd_sum(10) == 25
    assert f.bounds(3, 7) == 4 and f.bounds(7, 3) == 0 and f.bounds(INT_MAX - 2, INT_MAX) == 2
    assert f.check_pos(5) == 5
    assert f.nothing(1) is None


# ---------------------------------------------------------------- money, records, arrays, text, time


def test_money(prog):
    f = prog.fn
    usd = Money(150, "USD")
    assert f.money_add(usd, usd) == Money(300, "USD")
    assert f.money_less(Money(100, "EUR"), Money(101, "EUR")) is True
    assert f.money_ratio(usd, Money(50, "USD")) == 3.0
    assert f.plus_dollar(usd) == Money(250, "USD")
    assert f.scale_it(Money(5, "USD"), 0.5) == Money(2, "USD")  # half-even
    assert f.scale_it(Money(15, "USD"), 0.5) == Money(8, "USD")
    assert f.scale_it(Money(-25, "USD"), 0.5) == Money(-12, "USD")
    assert f.scale_it(Money(INT_MAX, "USD"), 1.0) == Money(INT_MAX, "USD")  # exact, no float detour
    assert f.scale_it(Money(3, "USD"), 0.1) == Money(0, "USD")
    assert f.triple(usd) == Money(450, "USD")
    assert f.money_abs(Money(-7, "JPY")) == Money(7, "JPY")
    assert f.cheaper(Money(9, "USD"), Money(3, "USD")) == Money(3, "USD")
    assert f.minor_of(usd) == 150 and f.yen(500) == Money(500, "JPY")
    assert f.limit() == Money(100_000_000, "USD")
    assert f.code_of(Money(1, "KWD")) == "KWD" and f.code_of(Money(1, "AED")) == "AED"
    assert f.money_of(-7, "JPY") == Money(-7, "JPY")
    with pytest.raises(ValueError):
        f.code_of(Money(1, "ABC"))  # the binding admits only ISO 4217 codes


def test_records_arrays_text_time(prog):
    f = prog.fn
    assert f.mk(1.5) == {"x": 1.5, "y": 2.0, "on": True}
    assert f.moved({"x": 1.0, "y": 0.0, "on": True}, 2.0) == {"x": 3.0, "y": 0.0, "on": False}
    assert f.norm1({"x": -1.0, "y": 2.5, "on": False}) == 3.5
    assert f.tx_of(tx(Money(1, "USD"), "Expense")) == "Expense"
    assert f.count_big([1, 5, 10, 20], 4) == 3 and f.count_big([], 0) == 0
    assert f.small() == [1, 2, 3] and f.kinds() == ["Refund", "Payment"]
    assert f.ident([1.0, 2.5]) == [1.0, 2.5]
    assert f.same("a", "a") is True and f.same("ab", "ac") is False and f.same("", "") is True
    assert f.same("a", "ab") is False
    assert f.greet() == "héllo" and f.echo("wörld ✓") == "wörld ✓"
    assert f.later(T0, datetime(2020, 1, 1, tzinfo=UTC)) is True


def test_binding_rejects_bad_arguments(prog):
    with pytest.raises(TypeError):
        prog.fn.fib()
    with pytest.raises(TypeError):
        prog.fn.fib(2 ** 63)
    with pytest.raises(TypeError):
        prog.fn.fib(1.5)
    with pytest.raises(ValueError):
        prog.fn.kind_code("Gift")
    assert prog.fn.fib(1) == 1


def test_signed_amount_with_static_currency_parameter():
    m = build("fn cents(m: money) -> int = minor(m + 0.01 USD)\n")
    p = NativeProgram.from_object(m.object_code, m.describe())
    assert p.fn.cents(Money(99, "USD")) == 100
    with pytest.raises(lwas.RuntimeError) as e:
        p.fn.cents(Money(99, "GBP"))
    assert e.value.kind == "currency" and e.value.position.line == 1


def test_truth_conversion():
    m = build("fn t(x: float) -> truth = truth(x)\n")
    p = NativeProgram.from_object(m.object_code, m.describe())
    assert p.fn.t(0.25) == 0.25 and p.fn.t(1.0) == 1.0
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(lwas.RuntimeError) as e:
            p.fn.t(bad)
        assert e.value.kind == "truth_range" and e.value.position.line == 1


def test_imported_functions_have_qualified_names():
    m = build("import std.fuzzy\n\nfn tri(x: float) -> truth = fuzzy.triangle(x, 0.0, 1.0, 2.0)\n")
    names = [e.name for e in m.exports]
    assert names[-1] == "tri" and "std.fuzzy.triangle" in names  # dependency order
    p = NativeProgram.from_object(m.object_code, m.describe())
    assert p.fn.tri(0.5) == 0.5
    assert p.fn.std.fuzzy.triangle(1.5, 0.0, 1.0, 2.0) == 0.5
    assert getattr(p.fn, "std.fuzzy.ramp_down")(0.0, 1.0, 2.0) == 1.0
    assert p.call("std.fuzzy.trapezoid", 2.0, 0.0, 1.0, 3.0, 4.0) == 1.0


# ---------------------------------------------------------------- unsupported, determinism, emit


def test_unsupported_is_reported_with_a_span():
    src = "fn show(n: float) -> text {\n  let x = n + 1.0\n  return text(x)\n}\n"
    c = check_source(src, "u.lwas")
    with pytest.raises(codegen.Unsupported) as e:
        codegen.generate(lower.lower_program(c.program, c.checked, c.truth))
    assert "`text`" in e.value.message and e.value.span.line == 3


# ---------------------------------------------------------------- element assignment, text order
# Each compared with the reference evaluator on the same program, faults by kind and position.

MUTATE = '''
record Item {
  name: text
  n: int
  ok: bool
}
record Bag {
  items: [int]
  tag: text
}
fn set_first(xs: [int], v: int) -> [int] {
  var ys = xs
  ys[0] = v
  return ys
}
fn keeps_param(xs: [int]) -> int {
  var ys = xs
  ys[0] = 99
  return xs[0] * 1000 + ys[0]
}
fn bump(xs: [int], i: int, d: int) -> [int] {
  var ys = xs
  ys[i] += 10 / d
  ys[i] *= ys[0]
  return ys
}
fn in_record(b: Bag, i: int, v: int) -> [Bag] {
  var c = b
  c.items[i] = v
  c.items[i] -= 1
  c.tag = "changed"
  return [b, c]
}
fn items(i: int, name: text) -> [Item] {
  var xs = [Item(name: "a", n: 1, ok: false), Item(name: "b", n: 2, ok: true)]
  xs[i].n += 5
  xs[i].name = name
  xs[i].name += "!"
  xs[i].ok = not xs[i].ok
  return xs
}
fn grid(i: int, j: int) -> [[int]] {
  var g = [[1, 2], [3, 4]]
  let row = g[0]
  g[i][j] = 7
  var h = g
  h[0][0] = 100
  let b = Bag(items: g[1], tag: "t")
  g[1][1] = -1
  return [row, g[0], g[1], h[0], b.items]
}
fn snapshot() -> int {
  var xs = [1, 2, 3]
  var s = 0
  for x in xs {
    xs[2] = 50
    s += x
  }
  return s * 1000 + xs[2]
}
fn rebind(xs: [int], k: int) -> [[int]] {
  var ys = [0, 0]
  let first = ys
  var i = 0
  while i < k {
    ys = xs
    ys[i % len(ys)] += i
    i += 1
  }
  return [first, ys, xs]
}
fn evaluation_order(i: int, d: int) -> [int] {
  var xs = [1, 2, 3]
  xs[i] = 10 / d
  return xs
}
fn passes(xs: [int]) -> int {
  var ys = xs
  ys[1] = 5
  return total(ys) * 100 + total(xs)
}
fn total(xs: [int]) -> int {
  var s = 0
  for x in xs {
    s += x
  }
  return s
}
fn words(ws: [text], i: int) -> [text] {
  var out = ws
  out[i] = out[i] + "?"
  return out
}
fn order(a: text, b: text) -> [bool] = [a < b, a <= b, a > b, a >= b, a == b, a != b]
fn sort3(a: text, b: text, c: text) -> [text] {
  var xs = [a, b, c]
  for i in 0..3 {
    for j in 0..2 {
      if xs[j] > xs[j + 1] {
        let t = xs[j]
        xs[j] = xs[j + 1]
        xs[j + 1] = t
      }
    }
  }
  return xs
}
fn classify(s: text) -> int = match s {
  "a" | "b" => 1
  "héllo" => 2
  "" => 4
  _ => 3
}
fn describe(s: text) -> text {
  var r = "none"
  match s {
    "x" => {
      r = "ex"
    }
    "y" | "é" => {
      r = "why"
    }
    _ => {
      r = "other"
    }
  }
  return r
}
'''


@pytest.fixture(scope="module")
def reference():
    from lwas.tools.evaluate import evaluator_for
    return evaluator_for(MUTATE, "prog.lwas")


@pytest.fixture(scope="module", params=[0, 2], ids=["O0", "O2"])
def mutate(request):
    m = build(MUTATE, request.param)
    return NativeProgram.from_object(m.object_code, m.describe())


def _outcome(f, *args):
    try:
        return "ok", f(*args)
    except lwas.RuntimeError as e:
        return e.kind, (e.position.line if e.position else None)


BAG = {"items": [1, 2, 3], "tag": "t"}
CASES = [
    ("set_first", ([1, 2, 3], 5)), ("set_first", ([], 5)),
    ("keeps_param", ([1, 2],)),
    ("bump", ([3, 4], 1, 2)), ("bump", ([3, 4], -1, 2)), ("bump", ([3, 4], 2, 2)),
    ("bump", ([3, 4], 2, 0)), ("bump", ([3, 4], 0, 0)), ("bump", ([2 ** 62, 4], 0, 1)),
    ("in_record", (BAG, 2, 9)), ("in_record", (BAG, 3, 9)), ("in_record", (BAG, -1, 9)),
    ("items", (1, "zé")), ("items", (0, "")), ("items", (2, "x")),
    ("grid", (1, 0)), ("grid", (0, 1)), ("grid", (0, 2)), ("grid", (2, 0)),
    ("snapshot", ()),
    ("rebind", ([5, 6, 7], 0)), ("rebind", ([5, 6, 7], 4)), ("rebind", ([], 1)),
    ("evaluation_order", (5, 0)), ("evaluation_order", (1, 0)), ("evaluation_order", (1, 2)),
    ("passes", ([1, 2, 3],)), ("passes", ([1],)),
    ("words", (["a", "bé"], 1)), ("words", (["a"], 1)),
]
TEXTS = ["", "a", "b", "ab", "abc", "é", "z", "ÿ", "\uffff", "\U0001F600", "a\x00", "héllo", "x", "y"]


@pytest.mark.parametrize("name,args", CASES, ids=[f"{n}{a}"[:40] for n, a in CASES])
def test_element_assignment_matches_the_evaluator(mutate, reference, name, args):
    import copy
    native_args = copy.deepcopy(args)
    expected = _outcome(lambda *a: reference.call(name, *a), *copy.deepcopy(args))
    assert _outcome(getattr(mutate.fn, name), *native_args) == expected
    assert native_args == args  # the caller's values are never written


def test_text_order_and_match_match_the_evaluator(mutate, reference):
    for a in TEXTS:
        for b in TEXTS:
            assert mutate.fn.order(a, b) == reference.call("order", a, b), (a, b)
            # code-point order is bytewise UTF-8 order, and Python's str order
            assert mutate.fn.order(a, b)[0] == (a.encode() < b.encode()) == (a < b)
        assert mutate.fn.classify(a) == reference.call("classify", a), a
        assert mutate.fn.describe(a) == reference.call("describe", a), a
    for trio in (["b", "a", "c"], ["é", "z", "e"], ["", "\U0001F600", "\uffff"]):
        assert mutate.fn.sort3(*trio) == reference.call("sort3", *trio) == sorted(trio)


def test_owned_copies_are_freed_with_the_call(mutate):
    import resource

    bag = {"items": list(range(2_000)), "tag": "t"}
    for _ in range(1_000):
        mutate.fn.in_record(bag, 5, 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(20_000):  # ~48 kB of copies per call: a leak would be ~1 GB
        mutate.fn.in_record(bag, 5, 1)
        mutate.fn.grid(1, 0)
        with pytest.raises(lwas.RuntimeError):
            mutate.fn.in_record(bag, 2_000, 1)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB


def test_only_assigned_arrays_are_copied():
    """A var whose elements are never assigned shares its value (no `copy` in the IR)."""
    src = "fn f(xs: [int]) -> int {\n  var ys = xs\n  ys = xs\n  return len(ys)\n}\n" \
          "fn g(xs: [int]) -> int {\n  var ys = xs\n  ys[0] = 1\n  return len(ys) + ys[0]\n}\n"
    c = check_source(src, "c.lwas")
    p = lower.lower_program(c.program, c.checked, c.truth)
    ops = {fn.name: repr(fn.body).count("op='copy'") for fn in p.functions}
    assert ops == {"f": 0, "g": 1}  # g: the bind only; `len(ys)` and `ys[0]` read in place


ALLOC = '''
record Label {
  text: text
  parts: [text]
  n: int
}
fn hello(name: text) -> text = "hi " + name + "!"
fn pair(a: int, b: int) -> [int] = [a, b, a + b]
fn nested(a: int) -> [[int]] = [[a], [a, a], []]
fn label(name: text, n: int) -> Label = Label(text: "#" + name, parts: [name, "x"], n: n)
fn labels(name: text) -> [Label] = [label(name, 1), label(name + name, 2)]
fn total(a: int, b: int) -> int {
  var s = 0
  for x in pair(a, b) {
    s += x
  }
  return s
}
fn fail_late(name: text, d: int) -> text {
  let t = "tmp " + name
  return t + [t][10 / d]
}
'''


@pytest.fixture(scope="module")
def alloc():
    m = build(ALLOC, 2)
    return NativeProgram.from_object(m.object_code, m.describe())


def test_runtime_text_and_arrays(alloc):
    f = alloc.fn
    assert f.hello("wörld") == "hi wörld!" and f.hello("") == "hi !"
    assert f.pair(2, 3) == [2, 3, 5]
    assert f.nested(7) == [[7], [7, 7], []]
    assert f.label("a", 3) == {"text": "#a", "parts": ["a", "x"], "n": 3}
    assert f.labels("b") == [{"text": "#b", "parts": ["b", "x"], "n": 1},
                             {"text": "#bb", "parts": ["bb", "x"], "n": 2}]
    assert f.total(2, 3) == 10
    with pytest.raises(lwas.RuntimeError) as e:
        f.fail_late("x", 0)
    assert e.value.kind == "div_zero"
    with pytest.raises(lwas.RuntimeError) as e:
        f.fail_late("x", 1)
    assert e.value.kind == "index"


def test_runtime_allocation_does_not_leak(alloc):
    """Temporaries are freed by the call, results by the binding: memory stays flat."""
    import resource

    big = "y" * 10_000
    f = alloc.fn
    for _ in range(2_000):  # warm up allocator pools
        f.labels(big)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(20_000):  # 20k calls x ~80 kB each: a leak would be 1.6 GB
        f.labels(big)
        with pytest.raises(lwas.RuntimeError):
            f.fail_late(big, 0)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 50_000  # kB


def test_object_code_is_deterministic(modules):
    again = build(SOURCE, 2)
    assert again.object_code == modules[2].object_code
    assert again.describe() == modules[2].describe()
    code = ("import sys, hashlib; sys.path.insert(0, %r); import test_codegen as t; "
            "print(hashlib.sha256(t.build(t.SOURCE, 2).object_code).hexdigest())") % str(_here())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import hashlib
    assert out.stdout.strip() == hashlib.sha256(modules[2].object_code).hexdigest()


def _here():
    from pathlib import Path
    return Path(__file__).resolve().parent


def test_emit_ir_and_assembly():
    c = check_source(LANGUAGE, "lang.lwas")
    p = lower.lower_program(c.program, c.checked, c.truth)
    text = codegen.llvm_ir(p, 2)
    assert '@"lwas$fib"' in text and "lwas$axioms" in text and "sadd.with.overflow" in text
    asm = codegen.assembly(p, 0)
    assert "lwas$healthy" in asm


# ---------------------------------------------------------------- stack overflow

RECURSION = '''fn down(n: int) -> int {
  if n == 0 {
    return 0
  }
  return down(n - 1) + 1
}
fn ping(n: int) -> int {
  if n == 0 {
    return 0
  }
  return pong(n - 1) + 1
}
fn pong(n: int) -> int = ping(n)
fn via(n: int) -> int = down(n) + 0
fn count(n: int) {
  if n > 0 {
    count(n - 1)
    assert n != 123456789, "not a tail call"
  }
}
'''
DEEP = 10_000_000  # ~160 MB of stack even with 16-byte frames: far beyond any thread's stack


def rline(snippet: str) -> int:
    hits = [i for i, text in enumerate(RECURSION.splitlines(), 1) if snippet in text]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


@pytest.fixture(scope="module", params=[0, 2], ids=["O0", "O2"])
def rec(request):
    m = build(RECURSION, request.param)
    return NativeProgram.from_object(m.object_code, m.describe())


def test_only_recursive_calls_get_a_stack_site():
    m = build(RECURSION, 2)
    stack = [s for s in m.error_sites if s.kind == "stack"]
    assert {s.line for s in stack} == {rline("return down("), rline("return pong("), rline("fn pong("),
                                       rline("count(n - 1)")}  # not `via`'s call of down
    assert all(s.message.startswith("stack overflow (recursion too deep) in `") for s in stack)
    timeouts = [s for s in m.error_sites if s.kind == "timeout"]  # lwas.backend.budget: appended after them
    assert m.error_sites[-len(stack) - len(timeouts):] == stack + timeouts  # other sites keep their numbers
    assert not any(s.kind == "stack" for s in build("fn f(n: int) -> int = n + 1\nfn g() -> int = f(1)\n").error_sites)


def test_deep_recursion_is_a_runtime_error(rec):
    f = rec.fn
    assert f.down(1000) == 1000 and f.ping(1000) == 1000 and f.via(1000) == 1000  # legitimate depth
    assert f.count(1000) is None
    for call, lines in ((lambda: f.down(DEEP), {rline("return down(")}),
                        (lambda: f.via(DEEP), {rline("return down(")}),
                        (lambda: f.count(DEEP), {rline("count(n - 1)")}),
                        # which call of the cycle crosses the limit depends on the frame sizes
                        (lambda: f.ping(DEEP), {rline("return pong("), rline("fn pong(")})):
        with pytest.raises(lwas.RuntimeError) as e:
            call()
        err = e.value
        assert err.kind == "stack" and err.message.startswith("stack overflow (recursion too deep)")
        assert err.position.file == "prog.lwas" and err.position.line in lines and err.position.col > 1
        assert f.down(1000) == 1000 and f.ping(7) == 7  # the process and the program stay healthy


def test_deep_recursion_in_a_thread(rec):
    """Each thread measures its own stack (Python threads get the platform default, 8 MiB)."""
    import threading

    out = []

    def run():
        try:
            rec.fn.down(DEEP)
        except lwas.RuntimeError as e:
            out.append(e.kind)
        out.append(rec.fn.down(500))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert out == ["stack", 500]


def test_deep_recursion_does_not_kill_the_process():
    """The same in a child process: a native stack overflow would kill it with SIGSEGV."""
    code = ("import sys; sys.path.insert(0, %r); import test_codegen as t, lwas\n"
            "from lwas.runtime.native import NativeProgram\n"
            "for opt in (0, 2):\n"
            "    m = t.build(t.RECURSION, opt)\n"
            "    p = NativeProgram.from_object(m.object_code, m.describe())\n"
            "    for f in (p.fn.down, p.fn.ping):\n"
            "        try:\n"
            "            f(t.DEEP)\n"
            "        except lwas.RuntimeError as e:\n"
            "            print(opt, e.kind, e.position.line)\n"
            "    print(opt, p.fn.down(1000))\n") % str(_here())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    lines = out.stdout.splitlines()
    assert len(lines) == 6
    for opt in (0, 2):
        mine = [l.split() for l in lines if l.startswith(f"{opt} ")]
        assert mine[0] == [str(opt), "stack", str(rline("return down("))]
        assert mine[1][1] == "stack" and int(mine[1][2]) in (rline("return pong("), rline("fn pong("))
        assert mine[2] == [str(opt), "1000"]


STACK_C = r"""
#include <pthread.h>
#include <stdio.h>
#include "librec.h"

static void *deep(void *arg) {
  int64_t r = -1;
  int32_t s = lwas_down(&r, 10000000);
  printf("thread status %d\n", s);
  return arg;
}

int main(void) {
  int64_t r = -1;
  int32_t s = lwas_down(&r, 10000000);
  printf("status %d\n", s);
  s = lwas_down(&r, 1000);
  printf("down(1000) = %lld status %d\n", (long long)r, s);
  pthread_t t;
  if (pthread_create(&t, NULL, deep, NULL) != 0 || pthread_join(t, NULL) != 0)
    return 1;
  return 0;
}
"""


def test_c_callers_get_the_stack_guard(tmp_path, monkeypatch):
    """The exported wrapper sets the limit itself: a C caller of the .so needs nothing new."""
    import shutil

    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler")
    from lwas.tools.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "rec.lwas").write_text(RECURSION)
    lib = tmp_path / "librec.so"
    assert main(["build", str(tmp_path / "rec.lwas"), "-o", str(lib), "--emit", "shared"]) == 0
    header = (tmp_path / "librec.h").read_text()
    (tmp_path / "main.c").write_text(STACK_C)
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-pthread", "-o", str(tmp_path / "main"),
                    str(tmp_path / "main.c"), str(lib), "-Wl,-rpath," + str(tmp_path)], check=True, cwd=tmp_path)
    run = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, (run.returncode, run.stderr)
    lines = run.stdout.splitlines()
    status = int(lines[0].split()[-1])
    site = [l for l in header.splitlines() if l.startswith(f" *   {status}: ")]
    assert site and ": stack: stack overflow (recursion too deep) in `down(n - 1)`" in site[0]
    assert lines[1:] == ["down(1000) = 1000 status 0", f"thread status {status}"]


def test_a_bound_function_outlives_its_program_object():
    import gc

    c = check_source("fn twice(n: int) -> int = n * 2\n", "keep.lwas")
    mod = codegen.generate(lower.lower_program(c.program, c.checked, c.truth), opt_level=0)
    twice = NativeProgram.from_object(mod.object_code, mod.describe()).fn.twice
    gc.collect()
    assert twice(21) == 42


# ---------------------------------------------------------------- out of memory

OOM = '''record Pair {
  a: text
  b: text
}

fn grow(k: int) -> int {
  var s = "ab"
  var i = 0
  while i < k {
    s = s + s
    i += 1
  }
  if s == "x" {
    return -1
  }
  return i
}

fn pair(k: int) -> Pair {
  var s = "ab"
  for i in 0..k {
    s = s + s
  }
  return Pair(a: s, b: s)
}
'''


def test_out_of_memory_is_a_runtime_error():
    """A failed malloc (real: the address space of a subprocess is limited with RLIMIT_AS) is a
    "memory" fault at the expression that allocated, or at the declaration for the copy of a
    result, never a crash; the call's arena is freed, so the process goes on."""
    def oline(snippet):
        hits = [i for i, t in enumerate(OOM.splitlines(), 1) if snippet in t]
        assert len(hits) == 1
        return hits[0]

    code = ("import sys; sys.path.insert(0, %r); import test_codegen as t, lwas, resource\n"
            "from lwas.runtime.native import NativeProgram\n"
            "progs = []\n"
            "for opt in (0, 2):\n"
            "    m = t.build(t.OOM, opt)\n"
            "    progs.append((opt, NativeProgram.from_object(m.object_code, m.describe())))\n"
            "def vm():\n"
            "    for l in open('/proc/self/status'):\n"
            "        if l.startswith('VmSize:'):\n"
            "            return int(l.split()[1]) * 1024\n"
            "S = 1 << 25  # pair(24): two texts of S bytes; its arena holds ~2S\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vm() + 7 * S // 2, resource.RLIM_INFINITY))\n"
            "for opt, p in progs:\n"
            "    try:\n"
            "        p.fn.grow(1000)\n"
            "    except lwas.RuntimeError as e:\n"
            "        print(opt, e.kind, e.position.line)\n"
            "    print(opt, p.fn.grow(24))\n"
            "    before = vm()\n"
            "    try:\n"
            "        p.fn.pair(24)  # arena 2S + a S + b S > 3.5S: b's copy fails, a's is freed\n"
            "    except lwas.RuntimeError as e:\n"
            "        print(opt, e.kind, e.position.line, e.message)\n"
            "    print(opt, 'leak', vm() - before >= S // 2)\n"
            "    print(opt, p.fn.grow(3), p.fn.pair(2) == {'a': 'ab' * 4, 'b': 'ab' * 4})\n") % str(_here())
    # one malloc arena: the compiler's deep-stack thread (lwas.syntax.nesting) leaves a thread arena
    # whose reserved space glibc would fall back on when the main arena hits the limit
    env = {**os.environ, "MALLOC_ARENA_MAX": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    grows = [i for i, t in enumerate(OOM.splitlines(), 1) if "s = s + s" in t]
    for opt in (0, 2):
        mine = [l.split(" ", 3) for l in out.stdout.splitlines() if l.startswith(f"{opt} ")]
        assert mine[0] == [str(opt), "memory", str(grows[0])], out.stdout
        assert mine[1] == [str(opt), "24"]
        assert mine[2] == [str(opt), "memory", str(oline("fn pair(")),
                           "out of memory copying the result of `pair`"], out.stdout
        assert mine[3] == [str(opt), "leak", "False"]
        assert mine[4] == [str(opt), "3", "True"]


def test_memory_sites_only_where_allocation_happens():
    c = check_source(OOM + "fn add3(a: int) -> int = a + 3\nfn lit() -> [int] = [1, 2]\n", "oom.lwas")
    p = lower.lower_program(c.program, c.checked, c.truth)
    sites = [(s.kind, s.line) for s in p.error_sites]
    lines = OOM.splitlines()
    concat = [i for i, t in enumerate(lines, 1) if "s = s + s" in t]
    assert [s for s in sites if s[0] == "memory"] == [
        ("memory", concat[0]), ("memory", concat[1]),
        ("memory", next(i for i, t in enumerate(lines, 1) if "fn pair(" in t)),
        ("memory", len(lines) + 2)]  # lit: a constant array, but its result is copied for the caller
    ir_text = codegen.llvm_ir(p, 0)
    assert "lwas.dup" in ir_text and "lwas.drop" in ir_text


ARRAYS = """
record Item {
  name: text
  tags: [text]
}

fn joined(a: [int], b: [int]) -> [int] = a + b

fn grow(n: int) -> [Item] {
  var out: [Item] = []
  for i in 0..n {
    out = out + [Item(name: "item", tags: ["t"])]
    out[i].tags = out[i].tags + ["u"]
  }
  return out
}

fn independent() -> int {
  let a = [1, 2]
  var b = a + [3]
  b[0] = 9
  var c = b + b
  c[3] = 7
  return a[0] * 10000 + b[0] * 1000 + c[0] * 100 + c[3] * 10 + len(c)
}
"""


def test_array_concatenation_is_a_new_array():
    """`+` on arrays builds a new array (value semantics: writing to it never shows through
    either operand); natively and in the reference evaluator alike."""
    from lwas.tools.evaluate import evaluator_for

    m = build(ARRAYS)
    p = NativeProgram.from_object(m.object_code, m.describe())
    ev = evaluator_for(ARRAYS)
    for call in (p.call, ev.call):
        assert call("joined", [1, 2], [3]) == [1, 2, 3]
        assert call("joined", [], []) == []
        items = call("grow", 3)
        assert len(items) == 3 and all(i["tags"] == ["t", "u"] for i in items)
        assert call("independent") == 19976


@settings(max_examples=200, deadline=None)
@given(st.integers(-2**63, 2**63 - 1))
def test_int_as_text_natively(n):
    m = _itext_module()
    assert m.call("show", n) == str(n)
    assert m.call("flag", n % 2 == 0) == ("true" if n % 2 == 0 else "false")


_itext: list = []


def _itext_module():
    if not _itext:
        m = build('fn show(n: int) -> text = text(n)\nfn flag(b: bool) -> text = text(b)\n')
        _itext.append(NativeProgram.from_object(m.object_code, m.describe()))
    return _itext[0]


def test_lowering_keeps_operands_in_evaluation_order():
    """`int * money` stays (int, money) in the IR, codegen swaps the evaluated values, so the
    int operand's faults come first (docs/language.md, "Evaluation order"); an unknown currency
    code known at compile time (a const) still evaluates the amount before it faults."""
    src = ('const BAD: text = "ZZZ"\n'
           "fn f(p0: money, y: float) -> money = int(y) * (p0 * 4611686018427387904)\n"
           "fn g(x: int) -> money = from_minor(x + 1, BAD)\n")
    c = check_source(src, "order.lwas")
    p = lower.lower_program(c.program, c.checked, c.truth)
    fns = {f.name: f for f in p.functions}
    mul = fns["f"].body[0].value
    assert (mul.op, [str(a.type) for a in mul.args], [a.op for a in mul.args]) == \
        ("mmul", ["int", "money"], ["ftoi", "mmul"])
    fail = fns["g"].body[0].value
    assert fail.op == "fail" and [a.op for a in fail.args] == ["iadd"]
    for opt in (0, 2):
        m = codegen.generate(p, opt)
        prog = NativeProgram.from_object(m.object_code, m.describe())
        with pytest.raises(lwas.RuntimeError) as e:
            prog.call("f", Money(100, "USD"), math.nan)
        assert e.value.kind == "int_range"
        assert prog.call("f", Money(1, "USD"), -1.0) == Money(-4611686018427387904, "USD")
        with pytest.raises(lwas.RuntimeError) as e:
            prog.call("f", Money(100, "USD"), 0.0)
        assert e.value.kind == "overflow"
        with pytest.raises(lwas.RuntimeError) as e:
            prog.call("g", INT_MAX)
        assert e.value.kind == "overflow"
        with pytest.raises(lwas.RuntimeError) as e:
            prog.call("g", 1)
        assert e.value.kind == "currency"
