"""How runtime.native passes arrays of scalars: lists converted in one step, buffer-protocol
objects (array.array, memoryview, numpy) passed in place when their layout is the native one.

Real compilation, no mocks: check -> lower -> generate -> load from memory -> call, at O0 and O2.
"""
from __future__ import annotations

import array

import pytest

from lwas.backend import codegen, lower
from lwas.driver import check_source
from lwas.runtime.native import NativeProgram
from lwas.runtime.values import Money

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1

SOURCE = '''
fn fsum(xs: [float]) -> float {
  var s = 0.0
  for x in xs {
    s += x
  }
  return s
}
fn isum(xs: [int]) -> int {
  var s = 0
  for x in xs {
    s += x
  }
  return s
}
fn tsum(xs: [truth]) -> float {
  var s = 0.0
  for x in xs {
    s += float(x)
  }
  return s
}
fn tall(xs: [truth]) -> truth {
  var t: truth = 1.0
  for x in xs {
    t = t and x
  }
  return t
}
fn count(xs: [bool]) -> int {
  var n = 0
  for x in xs {
    if x {
      n += 1
    }
  }
  return n
}
fn flen(xs: [float]) -> int = len(xs)
fn ident(xs: [float]) -> [float] = xs
fn iident(xs: [int]) -> [int] = xs
fn poke(xs: [float]) -> [float] {
  var ys = xs
  ys[0] = 9.0
  return ys
}
fn both(xs: [float], ns: [int]) -> float = xs[0] + float(ns[0])
fn total(ms: [money]) -> money {
  var s = 0.00 USD
  for m in ms {
    s = s + m
  }
  return s
}
'''


@pytest.fixture(scope="module", params=[0, 2], ids=["O0", "O2"])
def fn(request):
    c = check_source(SOURCE, "binding.lwas")
    errors = [d for d in c.diagnostics if d.severity == "error"]
    assert not errors, errors
    mod = codegen.generate(lower.lower_program(c.program, c.checked, c.truth), request.param)
    return NativeProgram.from_object(mod.object_code, mod.describe()).fn


FLOATS = [0.5, -1.25, 3.0, 1e10, -2.0, 7]  # an int element is accepted for [float]
INTS = [1, -2, INT_MAX, INT_MIN, 3]  # sums to 1 + -2 + (-1) + 3 = 1 without overflowing
TRUTHS = [0.0, 0.25, 1.0, 0.5, 1, 0, -0.0]


def forms(values, code):
    """The same array as a list, a tuple, an array.array, a memoryview of it and a memoryview
    over raw bytes (a different exporter)."""
    a = array.array(code, values)
    return [list(values), tuple(values), a, memoryview(array.array(code, values)),
            memoryview(bytearray(a.tobytes())).cast(code)]


def test_float_forms_agree(fn):
    want = fn.fsum(FLOATS)
    assert want == 1e10 + 7.25
    for v in forms(FLOATS, "d"):
        assert fn.fsum(v) == want, type(v)
        assert fn.flen(v) == len(FLOATS)
        assert fn.ident(v) == [float(x) for x in FLOATS]


def test_int_forms_agree(fn):
    assert fn.isum(INTS) == 1
    for code in ("q", "l") if array.array("l").itemsize == 8 else ("q",):
        for v in forms(INTS, code):
            assert fn.isum(v) == 1, (code, type(v))
            assert fn.iident(v) == INTS


def test_truth_forms_agree(fn):
    assert fn.tsum(TRUTHS) == 2.75 and fn.tall(TRUTHS) == 0.0
    for v in forms(TRUTHS, "d"):
        assert fn.tsum(v) == 2.75 and fn.tall(v) == 0.0
    assert fn.tall(array.array("d", [0.75, 1.0, 0.5])) == 0.5


def test_bool_list(fn):
    assert fn.count([True, False, True, True]) == 3
    assert fn.count((False,) * 5) == 0


def test_large_arrays(fn):
    n = 200_000
    xs = [float(i % 7) for i in range(n)]
    want = float(sum(i % 7 for i in range(n)))
    assert fn.fsum(xs) == fn.fsum(array.array("d", xs)) == want
    assert fn.isum(list(range(n))) == fn.isum(array.array("q", range(n))) == n * (n - 1) // 2
    assert fn.count([i % 3 == 0 for i in range(n)]) == (n + 2) // 3


def test_empty_arrays(fn):
    for v in ([], (), array.array("d"), memoryview(array.array("d"))):
        assert fn.fsum(v) == 0.0 and fn.flen(v) == 0 and fn.ident(v) == []
        assert fn.tsum(v) == 0.0 and fn.tall(v) == 1.0
    for v in ([], array.array("q"), memoryview(array.array("q"))):
        assert fn.isum(v) == 0 and fn.iident(v) == []
    assert fn.count([]) == 0
    assert fn.total([]) == Money(0, "USD")


def test_buffers_not_modified_and_released(fn):
    a = array.array("d", [1.0, 2.0, 3.0])
    assert fn.poke(a) == [9.0, 2.0, 3.0]
    assert fn.poke(memoryview(a)) == [9.0, 2.0, 3.0]
    assert fn.poke([1.0, 2.0, 3.0]) == [9.0, 2.0, 3.0]
    assert a.tolist() == [1.0, 2.0, 3.0]
    b = array.array("q", [5, 6])
    assert fn.iident(b) == [5, 6] and b.tolist() == [5, 6]
    # the export ends with the call (also after a rejected argument): the arrays can grow again
    with pytest.raises(TypeError):
        fn.both(a, [1.5])
    a.append(4.0)
    b.append(7)
    assert fn.fsum(a) == 10.0 and fn.isum(b) == 18


def test_explicit_byte_order_buffers(fn):
    """ctypes arrays export '<d' / '<q' (explicit native order): accepted like 'd' / 'q'."""
    import ctypes
    d = (ctypes.c_double * 3)(0.5, 0.25, 1.0)
    assert fn.fsum(d) == 1.75 and fn.tsum(d) == 1.75 and fn.tall(d) == 0.25
    assert fn.isum((ctypes.c_int64 * 3)(1, 2, INT_MAX - 3)) == INT_MAX
    with pytest.raises(ValueError, match=r"element 2: a truth must be in \[0, 1\], got 3.0"):
        fn.tsum((ctypes.c_double * 3)(0.5, 0.25, 3.0))
    with pytest.raises(TypeError, match=r"got format '<i'"):
        fn.isum((ctypes.c_int32 * 2)(1, 2))


def test_read_only_buffers(fn):
    ro = memoryview(array.array("d", [0.5, 0.25])).toreadonly()
    assert fn.fsum(ro) == 0.75 and fn.tsum(ro) == 0.75
    raw = memoryview(array.array("q", [3, 4]).tobytes()).cast("q")  # over bytes: read-only
    assert raw.readonly and fn.isum(raw) == 7


def test_wrong_buffer_format_rejected(fn):
    with pytest.raises(TypeError, match=r"fsum\(\): argument 'xs': a buffer for \[float\] must be one-dimensional with format 'd'.*got format 'f'"):
        fn.fsum(array.array("f", [1.0, 2.0]))
    with pytest.raises(TypeError, match=r"argument 'xs': a buffer for \[int\].*'q' or 'l'.*got format 'd'"):
        fn.isum(array.array("d", [1.0]))
    with pytest.raises(TypeError, match=r"a buffer for \[int\].*got format 'i'"):
        fn.isum(array.array("i", [1, 2]))
    with pytest.raises(TypeError, match=r"a buffer for \[float\].*got format 'q'"):
        fn.fsum(memoryview(array.array("q", [1])))
    with pytest.raises(TypeError, match=r"a buffer for \[truth\].*got format 'B'"):
        fn.tsum(b"\x00\x01")
    with pytest.raises(TypeError, match=r"a buffer for \[int\].*got format 'B'"):
        fn.isum(bytearray(b"\x01\x02"))
    with pytest.raises(TypeError, match=r"2 dimension\(s\)"):
        fn.fsum(memoryview(array.array("d", [1.0, 2.0, 3.0, 4.0])).cast("B").cast("d", (2, 2)))
    with pytest.raises(TypeError, match=r"argument 'xs': a buffer for \[float\] must be contiguous"):
        fn.fsum(memoryview(array.array("d", [1.0, 2.0, 3.0, 4.0]))[::2])
    with pytest.raises(TypeError, match=r"a buffer for \[float\].*got format 'f'"):
        fn.fsum(array.array("f"))  # even empty


def test_out_of_range_int_rejected(fn):
    for bad in (INT_MAX + 1, INT_MIN - 1, 2 ** 200):
        with pytest.raises(TypeError, match=r"isum\(\): argument 'xs': element 2: expected an int in the 64-bit range, got "):
            fn.isum([1, 2, bad, 4])
    with pytest.raises(TypeError, match=r"argument 'xs': element 1: expected an int in the 64-bit range, got 1.0"):
        fn.isum([1, 1.0])
    with pytest.raises(TypeError, match=r"element 0: expected an int in the 64-bit range, got True"):
        fn.isum((True, 1))


def test_bad_float_and_bool_elements_rejected(fn):
    with pytest.raises(TypeError, match=r"fsum\(\): argument 'xs': element 1: expected a float, got True"):
        fn.fsum([1.0, True])
    with pytest.raises(TypeError, match=r"element 2: expected a float, got '3'"):
        fn.fsum([1.0, 2.0, "3"])
    with pytest.raises(TypeError, match=r"element 0: expected a float, got None"):
        fn.fsum([None])
    with pytest.raises(OverflowError, match=r"argument 'xs': element 1: int too large"):
        fn.fsum([1.0, 10 ** 400])
    with pytest.raises(TypeError, match=r"count\(\): argument 'xs': element 1: expected a bool, got 1"):
        fn.count([True, 1])
    with pytest.raises(TypeError, match=r"argument 'xs'"):
        fn.fsum(iter([1.0]))  # an iterator has no length, as before


def test_truth_outside_unit_interval_rejected(fn):
    cases = [([0.5, 1.5], 1, "1.5"), ([-0.1, 0.5], 0, "-0.1"), ([0.2, 0.3, float("nan")], 2, "nan"),
             ([float("nan"), 0.5], 0, "nan"), ([0.5, float("inf")], 1, "inf"), ([0.5, 2], 1, "2")]
    for values, i, shown in cases:
        for v in (values, tuple(values), array.array("d", values), memoryview(array.array("d", values))):
            with pytest.raises(ValueError, match=rf"tsum\(\): argument 'xs': element {i}: a truth must be in \[0, 1\], got {shown}"):
                fn.tsum(v)


def test_scalar_arguments_name_the_parameter(fn):
    with pytest.raises(TypeError, match=r"both\(\): argument 'ns': element 0: expected an int"):
        fn.both([1.0], [1.5])
    with pytest.raises(TypeError, match=r"total\(\): argument 'ms': element 1: expected Money, got 3"):
        fn.total([Money(1, "USD"), 3])
    assert fn.total([Money(150, "USD"), Money(-50, "USD")]) == Money(100, "USD")
    assert fn.both(array.array("d", [0.5]), array.array("q", [2])) == 2.5


def test_numpy_arrays():
    import numpy as np  # a test dependency (pyproject: test extra)
    c = check_source(SOURCE, "binding.lwas")
    mod = codegen.generate(lower.lower_program(c.program, c.checked, c.truth), 2)
    fn = NativeProgram.from_object(mod.object_code, mod.describe()).fn
    xs = np.array([0.5, 0.25, 1.0])
    assert fn.fsum(xs) == 1.75 and fn.tsum(xs) == 1.75 and fn.ident(xs) == [0.5, 0.25, 1.0]
    assert fn.fsum(np.array([0.5, 0.25], dtype="<f8")) == 0.75
    assert fn.tsum(np.array([0.5, 0.25], dtype="<f8")) == 0.75
    assert fn.isum(np.arange(10, dtype=np.int64)) == 45
    ro = np.arange(4.0)
    ro.flags.writeable = False
    assert fn.fsum(ro) == 6.0
    with pytest.raises(TypeError, match="contiguous"):
        fn.fsum(np.arange(8.0)[::2])
    with pytest.raises(TypeError, match="got format 'i'"):
        fn.isum(np.arange(3, dtype=np.int32))
    with pytest.raises(TypeError, match="got format 'f'"):
        fn.fsum(np.zeros(3, dtype=np.float32))
    with pytest.raises(TypeError, match="native byte order"):
        fn.fsum(np.zeros(3, dtype=">f8" if np.little_endian else "<f8"))
    with pytest.raises(ValueError, match="element 1: a truth must be in"):
        fn.tsum(np.array([0.5, 1.5]))
