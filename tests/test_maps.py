"""Maps `{K: V}`: the checker, the reference evaluator and native code agree, and the native trees
are what lwas.backend.mapgen promises (ordered, weight-balanced, sizes right, persistent).

Native results are compared with the evaluator's and with a plain Python dict run through the
same operations (an independent model); the tree shape is read straight from native memory.
"""
from __future__ import annotations

import ctypes
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import program_of
from lwas.driver import check_source
from lwas.errors import RuntimeError as LwasRuntimeError
from lwas.tools.evaluate import evaluator_for
from lwas.runtime.models import BodyError, json_schema, parse_value, to_json
from lwas.runtime.nativevalues import map_node, release
from lwas.runtime.values import Money

SOURCE = """
enum Kind { A, B, C }

record Day {
  day: int
  revenue: money
  tags: [text] = []
}

record Book {
  name: text
  pages: {int: text}
}

/// ops[i]: 0 sets keys[i] to vals[i], 1 deletes keys[i], 2 adds vals[i] to keys[i] when present,
/// 3 reads keys[i] (a `key` fault when absent).
fn run(ops: [int], ks: [int], vs: [int]) -> {int: int} {
  var m: {int: int} = {}
  for i in 0..len(ops) {
    let k = ks[i]
    if ops[i] == 0 {
      m[k] = vs[i]
    } else if ops[i] == 1 {
      delete m[k]
    } else if ops[i] == 2 {
      if k in m {
        m[k] += vs[i]
      }
    } else {
      let x = m[k]
      m[k] = x
    }
  }
  return m
}

fn sorted_keys(m: {int: int}) -> [int] = keys(m)
fn sorted_values(m: {int: int}) -> [int] = values(m)
fn size(m: {int: int}) -> int = len(m)
fn lookup(m: {int: int}, k: int) -> int = get(m, k, -1)
fn holds(m: {int: int}, k: int) -> bool = k in m

fn pairs(m: {text: int}) -> text {
  var out = ""
  for k, v in m {
    out = out + k + "=" + text(v) + ";"
  }
  return out
}

fn texts() -> {text: int} {
  var m: {text: int} = {"b": 2, "a": 1, "é": 3, "ab": 4, "": 5}
  m["a"] += 10
  delete m["zz"]
  return m
}

fn days() -> {int: Day} {
  var d: {int: Day} = {}
  d[3] = Day(day: 3, revenue: 1.00 USD)
  d[3].revenue += 2.50 USD
  d[3].tags = d[3].tags + ["x"]
  d[1] = Day(day: 1, revenue: 0.00 USD, tags: ["q"])
  d[1].tags[0] = "r"
  return d
}

fn nested() -> {text: {int: int}} {
  var m: {text: {int: int}} = {"a": {1: 1}, "b": {}}
  m["a"][2] = 20
  m["a"][1] += 5
  m["b"][7] = 70
  delete m["a"][2]
  return m
}

fn book() -> Book {
  var b = Book(name: "x", pages: {})
  b.pages[2] = "two"
  b.pages[1] = "one"
  delete b.pages[2]
  return b
}

fn snapshot() -> int {
  var a = {1: 10, 2: 20}
  let b = a
  a[1] = 99
  delete a[2]
  return b[1] * 1000 + len(b) * 100 + len(a)
}

fn kinds() -> [Kind] {
  let m: {Kind: int} = {C: 1, A: 2}
  return keys(m)
}

fn flags(m: {bool: text}) -> [bool] = keys(m)
fn times(m: {time: int}) -> [int] = values(m)
fn missing(k: int) -> int {
  let m = {1: 2, 3: 4}
  return m[k]
}

fn missing_deep() -> int {
  var m: {text: {int: int}} = {"a": {}}
  m["b"][1] = 2
  return 0
}

fn missing_compound() -> int {
  var m: {int: int} = {}
  m[4] += 1
  return 0
}

fn literal_last_wins() -> {int: int} = {1: 1, 2: 2, 1: 3}
"""


@pytest.fixture(scope="module")
def native():
    return program_of(SOURCE, "maps.lwas")


@pytest.fixture(scope="module")
def native_o0():
    return program_of(SOURCE, "maps.lwas", opt_level=0)


@pytest.fixture(scope="module")
def ev():
    return evaluator_for(SOURCE, "maps.lwas")


def model(ops, ks, vs):
    """The same operations on a Python dict: (result, or the index of the faulting read)."""
    m: dict = {}
    for i, (op, k, v) in enumerate(zip(ops, ks, vs)):
        if op == 0:
            m[k] = v
        elif op == 1:
            m.pop(k, None)
        elif op == 2:
            if k in m:
                m[k] += v
        elif k not in m:
            return None, i
    return m, None


OPS = st.integers(0, 3)
SMALL_KEYS = st.integers(-20, 20)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 0, 0, 1, 1, 2, 3]), SMALL_KEYS, st.integers(-1000, 1000)),
                max_size=120))
def test_operations_agree_with_a_dict_and_the_evaluator(native, ev, steps):
    ops, ks, vs = (list(x) for x in zip(*steps)) if steps else ([], [], [])
    want, fault_at = model(ops, ks, vs)
    if fault_at is not None:
        for run in (native.fn.run, lambda *a: ev.call("run", *a)):
            with pytest.raises(LwasRuntimeError) as e:
                run(ops, ks, vs)
            assert e.value.kind == "key"
            assert e.value.position.line == SOURCE.splitlines().index("      let x = m[k]") + 1
        return
    got = native.fn.run(ops, ks, vs)
    assert got == want == ev.call("run", ops, ks, vs)
    assert list(got) == sorted(want)  # native results come back in key order
    assert native.fn.sorted_keys(got) == sorted(want) == ev.call("sorted_keys", want)
    assert native.fn.sorted_values(got) == [want[k] for k in sorted(want)]
    assert native.fn.size(got) == len(want)
    for k in range(-21, 22, 3):
        assert native.fn.lookup(got, k) == want.get(k, -1) == ev.call("lookup", want, k)
        assert native.fn.holds(got, k) is (k in want)


def _raw_root(program, name: str, *args):
    """Call export `name` through its address and return the raw root pointer of its map result
    (the caller then owns the nodes)."""
    sym = f"lwas${name}"
    n_args = []
    for a in args:  # [int] parameters: (ptr, len)
        buf = (ctypes.c_int64 * len(a))(*a)
        n_args += [buf, len(a)]
    proto = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, *([ctypes.c_void_p, ctypes.c_int64] * len(args)))
    out = ctypes.c_void_p()
    status = proto(program.address(sym))(
        ctypes.byref(out), *[ctypes.cast(x, ctypes.c_void_p) if not isinstance(x, int) else x for x in n_args])
    assert status == 0
    return out.value


def _check_tree(root: int, desc) -> list:
    """Every node ordered, its size right and weight-balanced (Adams, delta 3); the keys."""
    node = map_node(desc)

    def walk(at):
        if not at:
            return 0, []
        n = node.from_address(at)
        sl, kl = walk(n.left)
        sr, kr = walk(n.right)
        assert n.size == sl + sr + 1
        if sl + sr > 1:
            assert sl <= 3 * sr or sr == 0 and sl <= 1
            assert sr <= 3 * sl or sl == 0 and sr <= 1
        assert all(k < n.key for k in kl) and all(k > n.key for k in kr)
        return n.size, kl + [n.key] + kr

    return walk(root)[1]


@pytest.mark.parametrize("pattern", ["ascending", "descending", "zigzag", "deletes"])
def test_native_trees_stay_ordered_and_weight_balanced(native, pattern):
    n = 3000
    if pattern == "ascending":
        ks = list(range(n))
    elif pattern == "descending":
        ks = list(range(n, 0, -1))
    else:
        ks = [(i * 7919) % 4001 * (1 if i % 2 else -1) for i in range(n)]
    ops = [0] * n
    if pattern == "deletes":  # insert all, then delete two thirds in a scattered order
        ops += [1] * (2 * n // 3)
        ks += [ks[(i * 31) % n] for i in range(2 * n // 3)]
    vs = list(range(len(ops)))
    desc = {"map": "int", "value": "int"}
    root = _raw_root(native, "run", ops, ks, vs)
    try:
        got = _check_tree(root, desc)
    finally:
        release(desc, ctypes.c_void_p(root))
    want, _ = model(ops, ks, vs)
    assert got == sorted(want)


def test_text_enum_bool_and_time_keys_order_like_the_evaluator(native, ev):
    assert native.fn.texts() == ev.call("texts") == {"": 5, "a": 11, "ab": 4, "b": 2, "é": 3}
    assert list(native.fn.texts()) == ["", "a", "ab", "b", "é"]  # UTF-8 bytes, a prefix first
    assert native.fn.pairs({"é": 1, "z": 2, "a": 3}) == "a=3;z=2;é=1;" == ev.call("pairs", {"é": 1, "z": 2, "a": 3})
    assert native.fn.kinds() == ["A", "C"] == ev.call("kinds")
    assert native.fn.flags({True: "t", False: "f"}) == [False, True]
    t = lambda us: datetime.fromtimestamp(us / 1e6, timezone.utc)  # noqa: E731
    assert native.fn.times({t(3_000_000): 3, t(-1_000_000): 1, t(2_000_000): 2}) == [1, 2, 3]


def test_values_of_every_shape_and_assignments_through_maps(native, native_o0, ev):
    for prog in (native, native_o0):
        assert prog.fn.days() == ev.call("days") == {
            1: {"day": 1, "revenue": Money(0, "USD"), "tags": ["r"]},
            3: {"day": 3, "revenue": Money(350, "USD"), "tags": ["x"]}}
        assert prog.fn.nested() == ev.call("nested") == {"a": {1: 6}, "b": {7: 70}}
        assert prog.fn.book() == ev.call("book") == {"name": "x", "pages": {1: "one"}}
        assert prog.fn.snapshot() == ev.call("snapshot") == 10201  # b kept 10 and both keys
        assert prog.fn.literal_last_wins() == ev.call("literal_last_wins") == {1: 3, 2: 2}


@pytest.mark.parametrize("fn,args,line", [
    ("missing", (5,), "  return m[k]"),
    ("missing_deep", (), '  m["b"][1] = 2'),
    ("missing_compound", (), "  m[4] += 1"),
])
def test_missing_keys_fault_alike(native, native_o0, ev, fn, args, line):
    where = SOURCE.splitlines().index(line) + 1
    for run in (getattr(native.fn, fn), getattr(native_o0.fn, fn), lambda *a: ev.call(fn, *a)):
        with pytest.raises(LwasRuntimeError) as e:
            run(*args)
        assert e.value.kind == "key" and e.value.position.line == where
    assert native.fn.missing(3) == 4


def test_large_maps_cross_the_boundary_both_ways(native):
    big = {(i * 104729) % 1_000_003: i for i in range(20_000)}
    assert native.fn.size(big) == len(big)
    assert native.fn.sorted_keys(big) == sorted(big)
    assert native.fn.lookup(big, 104729) == 1
    out = native.fn.run([0] * 5000, list(range(5000)), list(range(5000)))
    assert out == {i: i for i in range(5000)}


@pytest.mark.parametrize("src,code", [
    ("fn f(m: {float: int}) -> int = len(m)\n", "E0322"),
    ("fn f() -> int {\n  let m = {}\n  return 0\n}\n", "E0318"),
    ("fn f(m: {text: int}) -> int = m[1]\n", "E0301"),
    ("fn f(xs: [int]) -> bool = 1 in xs\n", "E0311"),
    ("fn f(m: {text: int}) {\n  delete m[\"a\"]\n}\n", "E0307"),
    ("fn f(xs: [int]) -> int {\n  var s = 0\n  for a, b in xs {\n    s += b\n  }\n  return s\n}\n", "E0301"),
    ("fn f(a: {int: int}, b: {int: int}) -> bool = a == b\n", "E0311"),
    ("fn f() -> {text: int} = {\"a\": 1, 2: 3}\n", "E0301"),
    ("fn seed() -> int = 1\nrecord R {\n  n: int = seed()\n}\n", "E0323"),
    ("record R {\n  n: int = \"x\"\n}\n", "E0301"),
    ("fn f(n: int = 3) -> int = n\n", "E0323"),
    ("service s {\n  get \"/x/{n}\" (n: int = 3) -> int {\n    return n\n  }\n}\n", "E0403"),
    ("service s {\n  get \"/x\" (n: float) -> float {\n    return n\n  }\n}\n", "E0403"),
])
def test_checker_refuses(src, code):
    c = check_source(src, "bad.lwas")
    assert code in [d.code for d in c.diagnostics if d.severity == "error"], c.diagnostics


def test_field_defaults_fill_record_literals_and_reach_the_manifest(native, ev):
    src = SOURCE + "\nfn fresh() -> Day = Day(day: 9, revenue: 1.00 USD)\n"
    prog = program_of(src, "d.lwas")
    want = {"day": 9, "revenue": Money(100, "USD"), "tags": []}
    assert prog.fn.fresh() == want == evaluator_for(src, "d.lwas").call("fresh")
    day = next(e for e in prog.described["exports"] if e["name"] == "fresh")["result"]
    assert day["defaults"] == {"tags": []}


def test_json_forms_text_keys_as_objects_others_as_pairs():
    by_text = {"map": "text", "value": {"money": "USD"}}
    assert to_json(by_text, {"b": Money(1, "USD"), "a": Money(250, "USD")}) == {
        "a": {"amount": "2.50", "currency": "USD", "minor": 250},
        "b": {"amount": "0.01", "currency": "USD", "minor": 1}}
    assert list(to_json(by_text, {"é": Money(0, "USD"), "z": Money(0, "USD")})) == ["z", "é"]
    assert parse_value(by_text, {"a": {"amount": "2.50", "currency": "USD"}}) == {"a": Money(250, "USD")}
    by_int = {"map": "int", "value": "text"}
    assert to_json(by_int, {3: "c", -1: "a"}) == [[-1, "a"], [3, "c"]]
    assert parse_value(by_int, [[3, "c"], [-1, "a"]]) == {3: "c", -1: "a"}
    with pytest.raises(BodyError, match="given twice"):
        parse_value(by_int, [[3, "c"], [3, "d"]])
    with pytest.raises(BodyError):
        parse_value(by_int, {"3": "c"})  # only text-keyed maps are objects
    assert json_schema(by_text)["type"] == "object"
    assert json_schema(by_int)["items"]["prefixItems"][0]["type"] == "integer"


PAGES = """
fn head(m: {int: text}, n: int) -> {int: text} = first(m, n)
fn page(m: {int: text}, k: int, n: int) -> {int: text} = after(m, k, n)
fn tpage(m: {text: int}, k: text, n: int) -> {text: int} = after(m, k, n)
"""


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(-50, 50), st.text(max_size=3), max_size=60), st.integers(-60, 60),
       st.integers(-2, 70))
def test_first_and_after_take_a_page_in_key_order(pages, m, k, n):
    native, ev = pages
    want_head = dict(sorted(m.items())[:max(n, 0)])
    want_page = dict([kv for kv in sorted(m.items()) if kv[0] > k][:max(n, 0)])
    assert native.fn.head(m, n) == want_head == ev.call("head", m, n)
    assert native.fn.page(m, k, n) == want_page == ev.call("page", m, k, n)
    tm = {str(x): x for x in m}
    want = dict([kv for kv in sorted(tm.items(), key=lambda kv: kv[0].encode()) if kv[0].encode() > str(k).encode()][:max(n, 0)])
    assert native.fn.tpage(tm, str(k), n) == want == ev.call("tpage", tm, str(k), n)


@pytest.fixture(scope="module")
def pages():
    prog = program_of(PAGES, "p.lwas")
    return prog, evaluator_for(PAGES, "p.lwas")
