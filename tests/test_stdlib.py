"""The standard library (stdlib/*.lwas): every module's own `test` blocks pass natively and in
the reference evaluator, and properties hold against Python's own arithmetic."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import ROOT, program_of
import lwas
from lwas.backend import keys
from lwas.tools.evaluate import evaluator_for
from lwas.runtime.values import Money
from lwas.semantics.types import CURRENCY_EXPONENTS

STD = ROOT / "stdlib"
MODULES = sorted(p.stem for p in STD.glob("*.lwas"))
KEY = keys.generate()


def _native(name: str):
    src = (STD / f"{name}.lwas").read_text()
    return program_of(src, f"{name}.lwas", KEY)


_programs: dict = {}


def native(name: str):
    if name not in _programs:
        _programs[name] = _native(name)
    return _programs[name]


@pytest.mark.parametrize("name", MODULES)
def test_module_tests_pass_natively_and_in_the_reference_evaluator(name):
    p = native(name)
    assert p.tests, f"std.{name} has no test blocks"
    for t in p.tests:
        p.run_test(t)
    ev = evaluator_for((STD / f"{name}.lwas").read_text(), f"{name}.lwas")
    assert ev.test_names() == p.tests
    for t in ev.test_names():
        ev.run_test(t)


floats = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(floats, st.floats(0.0, 100.0))
def test_stats_agree_with_numpy(xs, p):
    s = native("stats").call
    assert s("sorted", xs) == sorted(xs)
    assert s("median", xs) == statistics.median(xs)
    assert math.isclose(s("mean", xs), statistics.fmean(xs), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(s("variance", xs), float(np.var(xs)), rel_tol=1e-6, abs_tol=1e-3)
    assert math.isclose(s("percentile", xs, p), float(np.percentile(xs, p)), rel_tol=1e-9, abs_tol=1e-6)
    mad = float(np.median(np.abs(np.array(xs) - np.median(xs))))
    assert math.isclose(s("mad", xs), mad, rel_tol=1e-9, abs_tol=1e-6)


def test_stats_refuse_empty_input_with_a_message():
    with pytest.raises(lwas.RuntimeError, match=r"precondition `len\(xs\) > 0` of `median` violated"):
        native("stats").call("median", [])


currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**15, 10**15), currencies, st.integers(1, 40))
def test_money_allocation_loses_nothing_and_formats_like_the_runtime(minor, code, parts):
    m = native("money").call
    money = Money(minor, code)
    shares = m("allocate", money, parts)
    assert len(shares) == parts
    assert sum(x.minor for x in shares) == minor and {x.currency for x in shares} == {code}
    assert max(x.minor for x in shares) - min(x.minor for x in shares) <= 1
    assert m("format", money) == str(money)
    assert m("exponent", code) == CURRENCY_EXPONENTS[code]


@settings(max_examples=150, deadline=None)
@given(st.integers(-10**12, 10**12), st.lists(st.integers(0, 1000), min_size=1, max_size=12))
def test_money_allocation_by_weights_sums_exactly(minor, weights):
    if not any(weights):
        weights = weights + [1]
    shares = native("money").call("allocate_by", Money(minor, "USD"), weights)
    assert sum(x.minor for x in shares) == minor
    total = sum(weights)
    for x, w in zip(shares, weights):
        assert abs(x.minor - minor * w / total) <= len(weights)  # within the remainder spread
        if w == 0:
            assert x.minor == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
def test_entropy_of_counts(counts):
    n = sum(counts)
    want = 0.0 if n == 0 else -sum(c / n * math.log2(c / n) for c in counts if c)
    assert math.isclose(native("entropy").call("of_counts", counts), want, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(-2**63, 2**63 - 1), st.integers(-10**12, 10**12))
def test_time_arithmetic_is_checked_natively_and_in_the_evaluator(us, d):
    """`at_micros` names years 1 to 9999 only: beyond, a runtime error in both implementations."""
    src = "import std.time\nfn shift(us: int, d: int) -> int = micros(time.add(at_micros(us), d))\n"
    p = _shift_native(src)
    ev = evaluator_for(src, "shift.lwas")
    lo, hi = -62135596800000000, 253402300799999999

    def outcome(call):
        try:
            return call("shift", us, d)
        except lwas.RuntimeError as e:
            return e.kind

    if not lo <= us <= hi:
        want = "int_range"  # at_micros refuses the instant itself
    elif not lo <= us + d <= hi:
        want = "contract"  # time.add requires a result in years 1..9999 (checked before adding)
    else:
        want = us + d
    assert outcome(p.call) == outcome(ev.call) == want


_shift: dict = {}


def _shift_native(src: str):
    if src not in _shift:
        _shift[src] = program_of(src, "shift.lwas", KEY)
    return _shift[src]
