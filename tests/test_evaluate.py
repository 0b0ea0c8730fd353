"""The reference evaluator (lwas.tools.evaluate): the programs of docs/contract.md, every built-in, each runtime
fault kind with its line, truth caps, money, and the C-like float corner cases the native code
must match."""
from __future__ import annotations

import math
import re
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

import lwas
from lwas.tools.evaluate import Evaluator, evaluator_for
from lwas.runtime.values import Money

INT_MIN = -(2 ** 63)
INT_MAX = 2 ** 63 - 1
LANGUAGE = Path(__file__).resolve().parent.parent / "docs" / "contract.md"  # the core language contract, as given


def ev(src: str) -> Evaluator:
    return evaluator_for(textwrap.dedent(src).lstrip("\n"))


def fault(kind: str, line: int, fn, *args, message: str | None = None):
    with pytest.raises(lwas.RuntimeError) as info:
        fn(*args)
    e = info.value
    assert (e.kind, e.position.line) == (kind, line), (e.kind, e.position, e.message)
    if message is not None:
        assert e.message == message
    return e


def bits(x: float) -> str:
    return math.copysign(1.0, x).hex() + x.hex() if x == x else "nan"


# ---------------------------------------------------------------- docs/contract.md


@pytest.fixture(scope="module")
def contract() -> Evaluator:
    """All accepted blocks of docs/contract.md, as one program (the rejected ones stand alone)."""
    text = LANGUAGE.read_text()
    blocks = re.findall(r"```lwas\n(.*?)```", text, re.S)
    rejected = text[text.index("must be **rejected**"):text.index("## Types, constants")]
    accepted = [b for b in blocks if b not in rejected]
    return evaluator_for("\n".join(accepted), "contract.lwas")


def test_contract_functions(contract):
    assert contract.call("fib", 10) == 55
    assert contract.call("fib", 0) == 0
    assert contract.call("sum_to", 4) == 6
    assert contract.call("sum_to", -5) == 0
    assert contract.call("circle_area", 2.0) == 3.141592653589793 * 2.0 * 2.0
    assert contract.call("mean", [1.0, 2.0, 6.0]) == 3.0
    assert math.isnan(contract.call("mean", []))  # 0.0 / 0.0


def test_contract_axioms_consts_and_tests(contract):
    assert contract.truth("truth") == 1.0
    assert contract.truth("freedom") == 0.8
    assert contract.truth("hope") == 0.5
    assert contract.truth("care") == 0.5  # the weakest premise
    assert contract.const("MAX_TRANSACTION") == Money(100_000_000, "USD")
    assert contract.const("CPU_ALERT") == 80.0
    assert contract.test_names() == ["fibonacci"]
    contract.run_test("fibonacci")


def test_contract_records_enums_and_rules(contract):
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    tx = {"id": "t1", "amount": Money(1250, "USD"), "timestamp": now, "tx_type": "Refund"}
    assert contract.call("signed_amount", tx) == Money(-1250, "USD")
    assert contract.call("signed_amount", dict(tx, tx_type="Revenue")) == Money(1250, "USD")
    assert contract.call("valid_amount", tx) == 1.0
    assert contract.call("valid_amount", dict(tx, amount=Money(0, "USD"))) == 0.0
    line = contract.program.root.items["valid_amount"].body.span.line
    fault("currency", line, contract.call, "valid_amount", dict(tx, amount=Money(5, "EUR")))
    assert contract.call("overloaded", 80.0) == 0.5
    assert contract.call("overloaded", 60.0) == 0.0
    assert contract.call("overloaded", 95.0) == 1.0
    assert contract.call("healthy", 10.0, 10.0) == 0.95  # capped by integrity
    assert contract.call("healthy", 80.0, 10.0) == 0.5
    assert contract.call("healthy", 95.0, 10.0) == 0.0


# ---------------------------------------------------------------- int


INTS = """
fn add(a: int, b: int) -> int = a + b
fn sub(a: int, b: int) -> int = a - b
fn mul(a: int, b: int) -> int = a * b
fn div(a: int, b: int) -> int = a / b
fn rem(a: int, b: int) -> int = a % b
fn neg(a: int) -> int = -a
fn absolute(a: int) -> int = abs(a)
fn compound(a: int, b: int) -> int {
  var x = a
  x *= b
  return x
}
"""


def test_int_arithmetic_and_faults():
    e = ev(INTS)
    assert e.call("div", 7, 2) == 3
    assert e.call("div", -7, 2) == -3
    assert e.call("div", 7, -2) == -3
    assert e.call("rem", -7, 2) == -1
    assert e.call("rem", 7, -2) == 1
    assert e.call("rem", INT_MIN, -1) == 0
    assert e.call("add", INT_MAX, 0) == INT_MAX
    assert e.call("sub", INT_MIN, 0) == INT_MIN
    fault("overflow", 1, e.call, "add", INT_MAX, 1)
    fault("overflow", 2, e.call, "sub", INT_MIN, 1)
    fault("overflow", 3, e.call, "mul", 2 ** 32, 2 ** 31)
    fault("overflow", 4, e.call, "div", INT_MIN, -1)
    fault("div_zero", 4, e.call, "div", 1, 0)
    fault("div_zero", 5, e.call, "rem", 1, 0)
    fault("overflow", 6, e.call, "neg", INT_MIN)
    fault("overflow", 7, e.call, "absolute", INT_MIN)
    assert e.call("absolute", -5) == 5
    fault("overflow", 10, e.call, "compound", INT_MAX, 2)
    assert e.call("compound", -3, 3) == -9


def test_fault_position_is_the_operator_expression():
    e = ev("""
    fn f(a: int) -> int {
      let b = 1
      return b + (a / 0)
    }
    """)
    err = fault("div_zero", 3, e.call, "f", 1, message="division by zero")
    assert (err.position.col, err.position.end_col) == (15, 20)  # `a / 0`, without the parentheses
    assert err.position.file == "<test>.lwas"


def test_faults_surface_in_evaluation_order():
    """docs/language.md, "Evaluation order": operands left to right, each before the operator's
    own check; arguments in parameter order, record fields in declaration order. The operands
    sit on their own lines, so the line says which one faulted."""
    e = ev("""
    record P {
      a: int
      b: int
    }
    fn g(a: int, b: int) -> int = a + b
    fn mul(x: int, y: float) -> money = (int(y)
      * (2.00 USD * x))
    fn mul_rev(x: int, y: float) -> money = ((2.00 USD * x)
      * int(y))
    fn div(x: int, z: int) -> int = (x + 1
      ) / z
    fn call(x: int, y: float) -> int = g(int(y),
      x + 1)
    fn named(x: int, y: float) -> int = g(b: int(y),
      a: x + 1)
    fn rec(x: int, y: float) -> P = P(b: int(y),
      a: x + 1)
    fn arr(x: int, y: float) -> [int] = [x + 1,
      int(y)]
    fn idx(xs: [[int]], i: int, y: float) -> int = xs[int(y)
      ][i + 1]
    fn cur(a: money, b: money, x: int) -> money = (a + b
      ) * x
    """)
    fault("int_range", 6, e.call, "mul", INT_MAX, math.nan)  # `int * money`: the int first
    fault("overflow", 8, e.call, "mul_rev", INT_MAX, math.nan)
    fault("overflow", 10, e.call, "div", INT_MAX, 0)  # the operand before the division's check
    fault("div_zero", 10, e.call, "div", 1, 0)
    fault("int_range", 12, e.call, "call", INT_MAX, math.nan)
    fault("overflow", 15, e.call, "named", INT_MAX, math.nan)  # parameter order
    fault("overflow", 17, e.call, "rec", INT_MAX, math.nan)  # field declaration order
    fault("overflow", 18, e.call, "arr", INT_MAX, math.nan)
    fault("int_range", 20, e.call, "idx", [[1]], INT_MAX, math.nan)
    fault("index", 20, e.call, "idx", [[1]], INT_MAX, 5.0)  # xs[5] checked before i + 1 runs
    fault("currency", 22, e.call, "cur", Money(1, "USD"), Money(1, "EUR"), 2)


# ---------------------------------------------------------------- float


FLOATS = """
fn div(a: float, b: float) -> float = a / b
fn rem(a: float, b: float) -> float = a % b
fn neg(a: float) -> float = -a
fn to_int(a: float) -> int = int(a)
fn to_float(a: int) -> float = float(a)
fn sq(a: float) -> float = sqrt(a)
fn ex(a: float) -> float = exp(a)
fn lg(a: float) -> float = ln(a)
fn fl(a: float) -> float = floor(a)
fn ce(a: float) -> float = ceil(a)
fn ab(a: float) -> float = abs(a)
fn lo(a: float, b: float) -> float = min(a, b)
fn hi(a: float, b: float) -> float = max(a, b)
fn mul(a: float, b: float) -> float = a * b
"""


def test_float_division_follows_ieee():
    e = ev(FLOATS)
    assert e.call("div", 1.0, 0.0) == math.inf
    assert e.call("div", -1.0, 0.0) == -math.inf
    assert e.call("div", 1.0, -0.0) == -math.inf
    assert math.isnan(e.call("div", 0.0, 0.0))
    assert math.isnan(e.call("div", math.nan, 0.0))
    assert e.call("mul", 1e308, 10.0) == math.inf
    assert math.isnan(e.call("rem", 1.0, 0.0))
    assert math.isnan(e.call("rem", math.inf, 2.0))
    assert e.call("rem", -7.5, 2.0) == -1.5
    assert e.call("rem", 2.0, math.inf) == 2.0
    assert bits(e.call("rem", -0.0, 3.0)) == bits(-0.0)
    assert bits(e.call("neg", 0.0)) == bits(-0.0)


def test_float_functions_never_raise_python_errors():
    e = ev(FLOATS)
    assert math.isnan(e.call("sq", -1.0))
    assert bits(e.call("sq", -0.0)) == bits(-0.0)
    assert e.call("sq", math.inf) == math.inf
    assert e.call("ex", 1000.0) == math.inf
    assert e.call("ex", -math.inf) == 0.0
    assert e.call("lg", 0.0) == -math.inf
    assert e.call("lg", -0.0) == -math.inf
    assert math.isnan(e.call("lg", -1.0))
    assert e.call("lg", math.inf) == math.inf
    assert e.call("fl", -0.5) == -1.0
    assert bits(e.call("ce", -0.5)) == bits(-0.0)
    assert bits(e.call("fl", -0.0)) == bits(-0.0)
    assert e.call("fl", math.inf) == math.inf
    assert math.isnan(e.call("ce", math.nan))
    assert e.call("ab", -math.inf) == math.inf
    assert bits(e.call("ab", -0.0)) == bits(0.0)


def test_float_min_max_are_std_min_max():
    e = ev(FLOATS)
    assert e.call("lo", 1.0, 2.0) == 1.0 and e.call("hi", 1.0, 2.0) == 2.0
    assert bits(e.call("lo", 0.0, -0.0)) == bits(0.0)  # ties: the first operand
    assert bits(e.call("hi", -0.0, 0.0)) == bits(-0.0)
    assert math.isnan(e.call("lo", math.nan, 1.0))  # incomparable: the first operand
    assert e.call("lo", 1.0, math.nan) == 1.0
    assert e.call("hi", 1.0, math.nan) == 1.0


def test_int_conversion_is_range_checked():
    e = ev(FLOATS)
    assert e.call("to_int", 2.9) == 2
    assert e.call("to_int", -2.9) == -2
    assert e.call("to_int", -(2.0 ** 63)) == INT_MIN
    assert e.call("to_int", 9.2e18) == 9200000000000000000
    fault("int_range", 4, e.call, "to_int", 2.0 ** 63)
    fault("int_range", 4, e.call, "to_int", math.nan)
    fault("int_range", 4, e.call, "to_int", -math.inf)
    assert e.call("to_float", INT_MAX) == 2.0 ** 63  # nearest
    assert e.call("to_float", 2 ** 53 + 1) == 2.0 ** 53  # ties to even


# ---------------------------------------------------------------- truth


TRUTHS = """
axiom base = 0.9
axiom half = 0.4..0.8 requires base
axiom weakest requires base, half
fn t(x: float) -> truth = truth(x)
fn tb(b: bool) -> truth = truth(b)
fn c(x: float) -> truth = clamp01(x)
fn r(x: float, lo: float, hi: float) -> truth = ramp(x, lo, hi)
fn both(a: truth, b: truth) -> truth = a and b
fn either(a: truth, b: truth) -> truth = a or b
fn neither(a: truth) -> truth = not a
fn mixed(a: truth, b: bool) -> truth = a and b
fn lazy_and(a: truth, n: int) -> truth = a and truth(1.0 / float(n) - 1.0)
fn lazy_or(b: bool, n: int) -> bool = b or 1 / n == 1
rule free(x: float) -> truth = ramp(x, 0.0, 10.0)
rule capped(x: float) -> truth = ramp(x, 0.0, 10.0) requires base, half
rule capped_block(x: float) -> truth requires weakest {
  if x > 5.0 {
    return true
  }
  return free(x)
}
fn axiom_value() -> float = half + 0.0
"""


def test_truth_conversions_and_faults():
    e = ev(TRUTHS)
    assert e.call("t", 0.25) == 0.25
    fault("truth_range", 4, e.call, "t", 1.5)
    fault("truth_range", 4, e.call, "t", -0.1)
    fault("truth_range", 4, e.call, "t", math.nan)
    assert e.call("tb", True) == 1.0 and e.call("tb", False) == 0.0
    assert e.call("c", 7.0) == 1.0
    assert e.call("c", -7.0) == 0.0
    assert e.call("c", 0.3) == 0.3
    assert bits(e.call("c", -0.0)) == bits(-0.0)
    fault("truth_range", 6, e.call, "c", math.nan)


def test_ramp():
    e = ev(TRUTHS)
    assert e.call("r", 5.0, 0.0, 10.0) == 0.5
    assert e.call("r", 0.0, 0.0, 10.0) == 0.0  # x <= lo
    assert e.call("r", 10.0, 0.0, 10.0) == 1.0  # x >= hi
    assert e.call("r", 3.0, 3.0, 3.0) == 0.0  # a step at lo
    assert e.call("r", 3.5, 3.0, 3.0) == 1.0
    assert e.call("r", math.inf, 0.0, 1.0) == 1.0
    fault("truth_range", 7, e.call, "r", math.nan, 0.0, 1.0)
    fault("truth_range", 7, e.call, "r", 0.0, -math.inf, 1.0)  # inf / inf


def test_truth_operators():
    e = ev(TRUTHS)
    assert e.call("both", 0.3, 0.7) == 0.3
    assert e.call("either", 0.3, 0.7) == 0.7
    assert e.call("neither", 0.25) == 0.75
    assert e.call("mixed", 0.6, True) == 0.6
    assert e.call("mixed", 0.6, False) == 0.0


def test_and_or_skip_the_right_operand_when_the_left_decides():
    e = ev(TRUTHS)
    assert e.call("lazy_and", 0.0, 0) == 0.0  # 1.0 / 0.0 - 1.0 = inf would be out of range
    fault("truth_range", 12, e.call, "lazy_and", 0.5, 0)
    assert e.call("lazy_or", True, 0) is True
    fault("div_zero", 13, e.call, "lazy_or", False, 0)


def test_rules_are_capped_by_their_axioms():
    e = ev(TRUTHS)
    assert e.truth("base") == 0.9
    assert e.truth("half") == 0.4
    assert e.truth("weakest") == 0.4
    assert e.call("axiom_value") == 0.4
    assert e.call("free", 10.0) == 1.0  # requires nothing: cap 1.0
    assert e.call("capped", 10.0) == 0.4
    assert e.call("capped", 2.0) == 0.2
    assert e.call("capped_block", 6.0) == 0.4
    assert e.call("capped_block", 1.0) == 0.1


# ---------------------------------------------------------------- money


MONEY = """
fn add(a: money, b: money) -> money = a + b
fn sub(a: money, b: money) -> money = a - b
fn times(a: money, n: int) -> money = a * n
fn times_left(n: int, a: money) -> money = n * a
fn ratio(a: money, b: money) -> float = a / b
fn neg(a: money) -> money = -a
fn less(a: money, b: money) -> bool = a < b
fn same(a: money, b: money) -> bool = a == b
fn sc(a: money, f: float) -> money = scale(a, f)
fn parts(a: money) -> int = minor(a)
fn code(a: money) -> text = currency(a)
fn make(n: int, c: text) -> money = from_minor(n, c)
fn smallest(a: money, b: money) -> money = min(a, b)
fn largest(a: money, b: money) -> money = max(a, b)
fn absolute(a: money) -> money = abs(a)
fn usd(a: money) -> money = a + 0.01 USD
fn as_usd(a: money) -> bool {
  let d: money = 1.00 USD
  return d < a
}
fn total(xs: [money]) -> money {
  var s = 0.00 USD
  for x in xs {
    s += x
  }
  return s
}
"""


def usd(n: int) -> Money:
    return Money(n, "USD")


def test_money_arithmetic():
    e = ev(MONEY)
    assert e.call("add", usd(150), usd(25)) == usd(175)
    assert e.call("sub", usd(150), usd(175)) == usd(-25)
    assert e.call("times", usd(150), 3) == usd(450)
    assert e.call("times_left", -2, usd(150)) == usd(-300)
    assert e.call("ratio", usd(1), usd(3)) == 1 / 3
    assert e.call("neg", usd(5)) == usd(-5)
    assert e.call("less", usd(5), usd(6)) is True
    assert e.call("same", usd(5), usd(5)) is True
    assert e.call("parts", Money(1250, "EUR")) == 1250
    assert e.call("code", Money(1250, "EUR")) == "EUR"
    assert e.call("make", 500, "JPY") == Money(500, "JPY")
    assert e.call("smallest", usd(5), usd(-6)) == usd(-6)
    assert e.call("largest", usd(5), usd(-6)) == usd(5)
    assert e.call("absolute", usd(-7)) == usd(7)
    assert e.call("usd", usd(1)) == usd(2)
    assert e.call("total", [usd(1), usd(2), usd(3)]) == usd(6)


def test_money_faults():
    e = ev(MONEY)
    fault("overflow", 1, e.call, "add", usd(INT_MAX), usd(1))
    fault("overflow", 2, e.call, "sub", usd(INT_MIN), usd(1))
    fault("overflow", 3, e.call, "times", usd(2 ** 62), 2)
    fault("overflow", 4, e.call, "times_left", -1, usd(INT_MIN))
    fault("div_zero", 5, e.call, "ratio", usd(1), usd(0))
    fault("overflow", 6, e.call, "neg", usd(INT_MIN))
    fault("overflow", 15, e.call, "absolute", usd(INT_MIN))
    fault("currency", 1, e.call, "add", usd(1), Money(1, "EUR"))
    fault("currency", 2, e.call, "sub", usd(1), Money(1, "EUR"))
    fault("currency", 5, e.call, "ratio", usd(1), Money(1, "EUR"))
    fault("currency", 7, e.call, "less", usd(1), Money(1, "EUR"))
    fault("currency", 8, e.call, "same", usd(1), Money(1, "EUR"))
    fault("currency", 13, e.call, "smallest", usd(1), Money(1, "EUR"))
    fault("currency", 16, e.call, "usd", Money(1, "EUR"))
    fault("currency", 19, e.call, "as_usd", Money(1, "EUR"))
    fault("currency", 12, e.call, "make", 1, "XYZ")
    fault("currency", 24, e.call, "total", [usd(1), Money(1, "EUR")])


def test_scale_rounds_half_even_from_the_exact_float():
    e = ev(MONEY)
    assert e.call("sc", usd(5), 0.5) == usd(2)  # 2.5 -> 2
    assert e.call("sc", usd(7), 0.5) == usd(4)  # 3.5 -> 4
    assert e.call("sc", usd(-5), 0.5) == usd(-2)
    assert e.call("sc", usd(100), 1.005) == usd(100)  # 100.49999999999998863131622783839702606201171875
    assert e.call("sc", usd(1000), 0.0015) == usd(2)  # 1.5000000000000000312... -> 2
    assert e.call("sc", usd(INT_MAX), 1.0) == usd(INT_MAX)  # exact, no trip through a double
    assert e.call("sc", usd(2 ** 53 + 1), 1.0) == usd(2 ** 53 + 1)
    assert e.call("sc", usd(3), -0.0) == usd(0)
    fault("overflow", 9, e.call, "sc", usd(INT_MAX), 2.0)
    fault("overflow", 9, e.call, "sc", usd(1), math.nan)
    fault("overflow", 9, e.call, "sc", usd(0), math.inf)


# ---------------------------------------------------------------- arrays, loops, control flow


def test_arrays_and_loops():
    e = ev("""
    fn at(xs: [int], i: int) -> int = xs[i]
    fn count(xs: [int]) -> int = len(xs)
    fn copies() -> int {
      var a = [1, 2, 3]
      var b = a
      b[0] = 10
      return a[0] + b[0]
    }
    fn range_end_once(n: int) -> int {
      var end = n
      var steps = 0
      for i in 0..end {
        end -= 1
        steps += 1
      }
      return steps
    }
    fn empty_range(a: int, b: int) -> int {
      var steps = 0
      for i in a..b {
        steps += 1
      }
      return steps
    }
    fn loops(n: int) -> int {
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
    fn nested(xs: [[int]]) -> int {
      var s = 0
      for row in xs {
        for x in row {
          s += x
        }
      }
      return s
    }
    fn set_at(i: int) -> int {
      var xs = [1, 2, 3]
      xs[i] += 5
      return xs[i]
    }
    """)
    assert e.call("at", [4, 5, 6], 2) == 6
    fault("index", 1, e.call, "at", [4, 5, 6], 3)
    fault("index", 1, e.call, "at", [4, 5, 6], -1)
    fault("index", 1, e.call, "at", [], 0)
    assert e.call("count", [1, 2]) == 2
    assert e.call("copies") == 11
    assert e.call("range_end_once", 4) == 4
    assert e.call("empty_range", 5, 5) == 0
    assert e.call("empty_range", 5, -5) == 0
    assert e.call("empty_range", INT_MAX - 2, INT_MAX) == 2
    assert e.call("loops", 6) == 1 + 3 + 5
    assert e.call("nested", [[1, 2], [], [3]]) == 6
    assert e.call("set_at", 1) == 7
    fault("index", 51, e.call, "set_at", 3)


def test_assert_messages_and_tests():
    e = ev("""
    fn check(n: int) {
      assert n > 0
      assert n < 10, "too big"
    }
    test "passes" {
      check(5)
    }
    test "fails" {
      assert 1 + 1 == 3, "arithmetic"
    }
    """)
    assert e.call("check", 5) is None
    fault("assert", 2, e.call, "check", 0, message="assertion failed")
    fault("assert", 3, e.call, "check", 10, message="too big")
    e.run_test("passes")
    fault("assert", 9, e.run_test, "fails", message="arithmetic")
    with pytest.raises(KeyError):
        e.run_test("missing")


# ---------------------------------------------------------------- records, enums, match, consts


def test_records_enums_and_match():
    e = ev("""
    enum Level { Low, Mid, High }
    record Point {
      x: int
      y: int
    }
    fn make(x: int) -> Point = Point(y: x * 2, x: x)
    fn moved(p: Point) -> Point {
      var q = p
      q.x += 1
      return q
    }
    fn level(n: int) -> Level = match n {
      0 => Low
      1 | 2 => Level.Mid
      -1 => High
      _ => High
    }
    fn score(l: Level) -> int = match l {
      Low => 1
      Mid | High => 2
    }
    fn flag(b: bool) -> text = match b {
      true => "yes"
      false => "no"
    }
    fn stmt(l: Level) -> int {
      var n = 0
      match l {
        Low => {
          n = 10
        }
        _ => {
          n = 20
        }
      }
      return n
    }
    fn word(t: text) -> int = match t {
      "a" => 1
      _ => 0
    }
    """)
    assert e.call("make", 3) == {"x": 3, "y": 6}
    p = {"x": 1, "y": 2}
    assert e.call("moved", p) == {"x": 2, "y": 2}
    assert p == {"x": 1, "y": 2}  # the caller's value is untouched
    assert [e.call("level", n) for n in (0, 1, 2, -1, 7)] == ["Low", "Mid", "Mid", "High", "High"]
    assert [e.call("score", v) for v in ("Low", "Mid", "High")] == [1, 2, 2]
    assert e.call("flag", True) == "yes" and e.call("flag", False) == "no"
    assert e.call("stmt", "Low") == 10 and e.call("stmt", "High") == 20
    assert e.call("word", "a") == 1 and e.call("word", "b") == 0


def test_consts():
    e = ev("""
    axiom sure = 0.75
    const LIMIT: int = 10 * 3
    const PRICE: money = 12.50 USD
    const DOUBLE: money = PRICE * 2
    const SURE: truth = sure
    const RATIO: float = 1.0 / 0.0
    const BROKEN: int = 1 / 0
    const NAMES: [text] = ["a", "b"]
    fn limit() -> int = LIMIT + 1
    """)
    assert e.const("LIMIT") == 30
    assert e.const("PRICE") == Money(1250, "USD")
    assert e.const("DOUBLE") == Money(2500, "USD")
    assert e.const("SURE") == 0.75
    assert e.const("RATIO") == math.inf
    assert e.const("NAMES") == ["a", "b"]
    assert e.call("limit") == 31
    fault("div_zero", 7, e.const, "BROKEN")


def test_text_and_time():
    e = ev("""
    fn t_int(x: int) -> text = text(x)
    fn t_float(x: float) -> text = text(x)
    fn t_bool(x: bool) -> text = text(x)
    fn t_money(x: money) -> text = text(x)
    fn t_time(x: time) -> text = text(x)
    fn joined(a: text, b: text) -> text = a + b
    fn before(a: time, b: time) -> bool = a < b
    fn order(a: text, b: text) -> bool = a < b
    """)
    assert e.call("t_int", -42) == "-42"
    assert e.call("t_float", 3.5) == "3.5"
    assert e.call("t_bool", True) == "true"
    assert e.call("t_money", Money(1250, "USD")) == "12.50 USD"
    assert e.call("t_money", Money(-500, "JPY")) == "-500 JPY"
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    t1 = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone.utc)
    assert e.call("t_time", t0) == "2026-01-02T03:04:05Z"
    assert e.call("t_time", t1) == "2026-01-02T03:04:05.120000Z"
    assert e.call("joined", "a", "é") == "aé"
    assert e.call("before", t0, t1) is True
    assert e.call("order", "ab", "b") is True


def test_other_modules_are_called_by_qualified_name():
    e = ev("""
    import std.fuzzy
    fn tri(x: float) -> truth = fuzzy.triangle(x, 0.0, 5.0, 10.0)
    """)
    assert e.call("tri", 2.5) == 0.5
    assert e.call("std.fuzzy.trapezoid", 5.0, 0.0, 2.0, 4.0, 6.0) == 0.5
    assert e.call("std.fuzzy.t_lukasiewicz", 0.25, 0.5) == 0.0
    with pytest.raises(KeyError):
        e.call("triangle", 1.0, 0.0, 1.0, 2.0)


def test_named_arguments_follow_parameter_order():
    e = ev("""
    fn order(a: int, b: int) -> int = a - b
    fn r(x: float) -> truth = ramp(x, hi: 10.0, lo: 0.0)
    fn f() -> int = order(b: 1, a: 10)
    """)
    assert e.call("f") == 9
    assert e.call("r", 2.5) == 0.25


def test_deep_recursion_is_not_a_python_error():
    e = ev("""
    fn depth(n: int) -> int {
      if n == 0 {
        return 0
      }
      return 1 + depth(n - 1)
    }
    """)
    assert e.call("depth", 1500) == 1500


def test_ill_typed_programs_are_refused():
    with pytest.raises(ValueError, match="E0311"):
        ev("fn f() -> int = 1 + 1.0\n")


def test_for_range_continue_and_unit_bodies():
    e = ev("""
    enum Mode { On, Off }
    fn odd_sum(n: int) -> int {
      var s = 0
      for i in 0..n {
        if i % 2 == 0 {
          continue
        }
        if i > 7 {
          break
        }
        s += i
      }
      return s
    }
    fn noop(m: Mode) = match m {
      On => {
        assert true
      }
      Off => {
        assert false, "off"
      }
    }
    fn flip(b: bool) -> bool = not b
    fn shadow(x: int) -> int {
      var x = x + 1
      if true {
        let x = 100
        assert x == 100
      }
      return x
    }
    """)
    assert e.call("odd_sum", 100) == 1 + 3 + 5 + 7
    assert e.call("noop", "On") is None
    fault("assert", 20, e.call, "noop", "Off", message="off")
    assert e.call("flip", True) is False
    assert e.call("shadow", 1) == 2


def test_axioms_of_other_modules_are_qualified(tmp_path):
    (tmp_path / "ethics.lwas").write_text("module ethics\npub axiom truth = 0.75\n")
    root = tmp_path / "main.lwas"
    root.write_text("import ethics\naxiom mine = 0.5 requires ethics.truth\n"
                    "fn t() -> truth = ethics.truth\n")
    from lwas.driver import check_file

    c = check_file(root)
    assert c.ok, [d.message for d in c.diagnostics]
    e = Evaluator(c.program, c.checked, c.truth)
    assert e.truth("ethics.truth") == 0.75
    assert e.truth("mine") == 0.5
    assert e.call("t") == 0.75


def test_runaway_recursion_is_a_stack_error_not_a_python_crash():
    import lwas
    from lwas.tools.evaluate import evaluator_for

    ev = evaluator_for("fn down(n: int) -> int {\n  if n == 0 {\n    return 0\n  }\n  return down(n - 1) + 1\n}\n")
    assert ev.call("down", 100) == 100
    with pytest.raises(lwas.RuntimeError) as e:
        ev.call("down", 10_000_000)
    assert e.value.kind == "stack"
    assert ev.call("down", 5) == 5
