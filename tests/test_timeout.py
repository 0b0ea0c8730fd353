"""Call budgets (lwas.backend.budget, issue 20): runaway native code stops with the fault `timeout`.

- at -O0 and -O2, `while true {}`, a recursion LLVM turns into a loop, a wide recursion (fib), a
  loop over a huge range, a map-heavy loop and a nest of short loops spread over functions each
  stop with `timeout` within the budget plus a margin, at a loop (or a function entry) on the
  runaway path in the source; a recursion that really grows the stack still stops with `stack`;
- the budget is per call: terminating calls that together run far longer than it succeed;
- 0 means no limit; LWAS_CALL_BUDGET_MS configures it (default 1000 ms), bad values are refused;
- the checks survive -O2 (the IR still calls the clock), and code without loops or recursion
  gets no timeout site and reads no clock;
- a service whose POST handler (the writer) or GET handler (a reader) loops forever: that call
  fails with `timeout` and the next call on the same service succeeds.
"""
from __future__ import annotations

import faulthandler
import time

import pytest

from helpers import compile_loaded
import lwas
from lwas.backend import codegen, lower
from lwas.driver import check_source
from lwas.errors import RuntimeError as LwasRuntimeError
from lwas.runtime import native
from lwas.runtime.native import NativeProgram
from lwas.runtime.snapshot import Policy
from lwas.runtime.store import open_store

BUDGET_MS = 100
# How late a stop may come: the clock is read every LOOP_TICKS back edges / CALL_TICKS recursive
# entries (microseconds here), but this machine is shared and may deschedule the thread.
MARGIN_S = 1.0

RUNAWAY = '''
fn spin() -> int {
  while true {}
  return 0
}
fn up(n: int) -> int = up(n + 1) + 1
fn fib(n: int) -> int {
  if n < 2 {
    return n
  }
  return fib(n - 1) + fib(n - 2)
}
fn count(n: int) {
  if n > 0 {
    count(n - 1)
    assert n != 123456789, "not a tail call"
  }
}
fn sum_to(n: int) -> int {
  var total = 0
  for i in 0..n {
    total += i % 7
  }
  return total
}
fn lookups(n: int) -> int {
  var m: {int: int} = {}
  for i in 0..1000 {
    m[i] = i * 3
  }
  var t = 0
  var i = 0
  while i < n {
    t += get(m, i % 1000, 0) % 5
    if (i % 1001) in m {
      t -= 1
    }
    i += 1
  }
  return t + len(m)
}
fn inner(n: int) -> int {
  var s = 0
  for j in 0..n {
    s += j % 3
  }
  return s
}
fn middle(n: int) -> int {
  var s = 0
  for x in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
    s += inner(n) % 2 + x
  }
  return s
}
fn nest() -> int {
  var t = 0
  while t >= 0 {
    t = middle(16000) % 10  // short loops (< LOOP_TICKS each), 1.6e5 iterations a round
  }
  return t
}
fn add(a: int, b: int) -> int = a + b
'''


@pytest.fixture(autouse=True)
def watchdog():
    """Runaway code that is not stopped would hang the run with the GIL held: faulthandler's
    own thread then prints the stacks and ends the process, a loud failure instead of a hang."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def line(snippet: str) -> int:
    hits = [i for i, text in enumerate(RUNAWAY.splitlines(), 1) if snippet in text]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


def build(source: str, opt: int):
    c = check_source(source, "prog.lwas")
    errors = [d for d in c.diagnostics if d.severity == "error"]
    assert not errors, errors
    return codegen.generate(lower.lower_program(c.program, c.checked, c.truth), opt)


@pytest.fixture(scope="module", params=[0, 2], ids=["O0", "O2"])
def prog(request):
    m = build(RUNAWAY, request.param)
    p = NativeProgram.from_object(m.object_code, m.describe(), budget_ms=BUDGET_MS)
    p.opt = request.param
    return p


def stops(call, kind: str = "timeout"):
    """The fault call() stops with (it must), after checking how long it took."""
    t0 = time.perf_counter()
    with pytest.raises(LwasRuntimeError) as e:
        call()
    took = time.perf_counter() - t0
    assert e.value.kind == kind, (e.value.kind, e.value.message)
    if kind == "timeout":
        assert BUDGET_MS / 1000 * 0.99 <= took <= BUDGET_MS / 1000 + MARGIN_S, took
        assert e.value.message == f"the call ran longer than its budget of {BUDGET_MS} ms"
    else:
        assert took <= BUDGET_MS / 1000 + MARGIN_S, took
    return e.value


@pytest.mark.parametrize("name, args, where", [
    ("spin", (), ["while true {}"]),
    ("fib", (80,), ["fn fib("]),  # a wide recursion: ~1e16 calls, never deeper than 80
    ("sum_to", (10 ** 15,), ["for i in 0..n {"]),
    ("lookups", (10 ** 15,), ["while i < n {"]),
    # a check that finds the deadline passed reports: a loop or a function entry on the way
    ("nest", (), ["while t >= 0 {", "fn middle(", "for x in [", "fn inner(", "for j in 0..n {"]),
])
def test_runaway_code_stops_with_timeout_at_its_loop(prog, name, args, where):
    err = stops(lambda: prog.call(name, *args))
    assert err.position.file == "prog.lwas" and err.position.line in {line(w) for w in where}
    assert prog.fn.add(2, 3) == 5 and prog.fn.fib(20) == 6765  # the program stays healthy


def test_recursion_that_becomes_a_loop_stops(prog):
    """At -O2 LLVM turns `up` into a loop (no stack grows, the stack check is gone): the entry
    check stops it. At -O0 the recursion is real and the stack check stops it first."""
    err = stops(lambda: prog.fn.up(0), "timeout" if prog.opt == 2 else "stack")
    assert err.position.line == line("fn up(")


def test_deep_recursion_is_still_a_stack_fault(prog):
    err = stops(lambda: prog.fn.count(10_000_000), "stack")
    assert err.position.line == line("count(n - 1)")
    assert prog.fn.count(1000) is None


def test_the_budget_is_per_call(prog):
    """Several terminating calls, each well under the budget, together far over it."""
    n = 20_000_000 if prog.opt == 2 else 2_000_000
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 3 * BUDGET_MS / 1000:
        assert prog.fn.sum_to(n) == sum(i % 7 for i in range(7)) * (n // 7) + sum(i % 7 for i in range(n % 7))
        assert prog.fn.fib(22) == 17711


def test_zero_is_no_limit():
    m = build(RUNAWAY, 2)
    p = NativeProgram.from_object(m.object_code, m.describe(), budget_ms=0)
    assert p.budget_ms == 0
    n = 10 ** 9  # ~0.3-1 s here: over a 20 ms budget
    p.set_budget_ms(20)
    t0 = time.perf_counter()
    with pytest.raises(LwasRuntimeError) as e:
        p.fn.sum_to(n)
    assert e.value.kind == "timeout" and e.value.message.endswith("of 20 ms")
    took = time.perf_counter() - t0
    p.set_budget_ms(0)
    t0 = time.perf_counter()
    assert p.fn.sum_to(n) == 2_999_999_997
    assert time.perf_counter() - t0 > took  # it ran past where the budget had stopped it


def test_configuration(monkeypatch):
    assert native.budget_ms_from_env({}) == 1000
    assert native.budget_ms_from_env({"LWAS_CALL_BUDGET_MS": ""}) == 1000
    assert native.budget_ms_from_env({"LWAS_CALL_BUDGET_MS": " 250 "}) == 250
    assert native.budget_ms_from_env({"LWAS_CALL_BUDGET_MS": "0"}) == 0
    for bad in ("nan", "-1", "1.5", "1e3", "١٢", str(native.MAX_BUDGET_MS + 1)):
        with pytest.raises(ValueError, match="LWAS_CALL_BUDGET_MS"):
            native.budget_ms_from_env({"LWAS_CALL_BUDGET_MS": bad})
    m = build(RUNAWAY, 0)
    monkeypatch.setenv("LWAS_CALL_BUDGET_MS", "30")
    p = NativeProgram.from_object(m.object_code, m.describe())
    assert p.budget_ms == 30
    with pytest.raises(LwasRuntimeError, match="budget of 30 ms"):
        p.fn.spin()
    monkeypatch.delenv("LWAS_CALL_BUDGET_MS")
    assert NativeProgram.from_object(m.object_code, m.describe()).budget_ms == 1000
    monkeypatch.setenv("LWAS_CALL_BUDGET_MS", "soon")
    with pytest.raises(ValueError, match="LWAS_CALL_BUDGET_MS='soon'"):
        NativeProgram.from_object(m.object_code, m.describe())
    with pytest.raises(ValueError):
        p.set_budget_ms(-5)


def test_checks_survive_optimisation_and_cost_nothing_where_not_needed():
    c = check_source(RUNAWAY, "prog.lwas")
    p = lower.lower_program(c.program, c.checked, c.truth)
    text = codegen.llvm_ir(p, 2)
    for fn in ("spin", "up", "fib", "sum_to", "lookups", "nest"):
        body = text.split(f'@"lwas${fn}"(')[1].split("\n}\n")[0]
        assert "clock_gettime" in body or "lwas.now_ns" in body, fn  # the deadline is computed
    assert "call" in text.split('@"lwas.tick"(')[0]  # and checked somewhere
    assert {s.kind for s in p.error_sites} >= {"timeout", "stack"}
    assert p.error_sites[-1].kind == "timeout"  # appended last: other sites keep their numbers
    plain = build("fn add(a: int, b: int) -> int = a + b\nfn twice(a: int) -> int = add(a, a)\n", 2)
    assert not any(s.kind == "timeout" for s in plain.error_sites)
    c = check_source("fn add(a: int, b: int) -> int = a + b\n", "plain.lwas")
    assert "clock_gettime" not in codegen.llvm_ir(lower.lower_program(c.program, c.checked, c.truth), 2)


SERVICE = '''module t
record E {
  id: text
  k: int
}
service t {
  ledger es: E by id
  state n: int = 0

  on es(e) {
    state.n += 1
  }

  post "/e" (e: E) -> int {
    if e.k < 0 {
      while true {}
    }
    append es(e)
    return e.k
  }

  get "/n/{k}" (k: int) -> int {
    var i = 0
    while k < 0 {
      i += 1
    }
    return state.n + i
  }
}
'''


def test_a_service_keeps_serving_after_a_runaway_handler(tmp_path):
    b = compile_loaded(SERVICE, "t.lwas")
    program, desc = b.program, b.desc
    assert program.budget_ms == 1000  # the default
    program.set_budget_ms(BUDGET_MS)
    post = next(r for r in desc["routes"] if r["method"] == "POST")
    get = next(r for r in desc["routes"] if r["method"] == "GET")
    svc = b.service(open_store(str(tmp_path / "t.db")), settings={}, snapshots=Policy(0, 0))
    svc.start()
    try:
        assert svc.call(post, ({"id": "a", "k": 1},)).response == 1
        stops(lambda: svc.call(post, ({"id": "b", "k": -1},)))  # the writer's job fails alone
        assert svc.call(post, ({"id": "c", "k": 3},)).response == 3
        stops(lambda: svc.read(get, (-1,)))  # a reader
        assert svc.read(get, (5,)) == 2  # a and c, not b
    finally:
        svc.stop()
        svc.store.close()
