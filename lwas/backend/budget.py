"""Call budgets: native code that runs longer than its budget stops with the fault `timeout`.

Contract. Every compiled module exports a writable global BUDGET_GLOBAL (lwas.abi), an i64: the
wall-clock budget of one call of an export, in nanoseconds of CLOCK_MONOTONIC; 0 (the initial
value) means no limit, so C callers that never touch it see the ABI of before. The runtime sets it
after mapping the object (runtime.native: LWAS_CALL_BUDGET_MS, default 1000 ms). A call that is
still running when its deadline passes returns the status of a "timeout" error site, which
unwinds like any fault (the arena is freed; a kept-arena call of the writer fails alone). Time
spent in the host (ledger appends, connectors) counts: the budget is wall time, per call.

How, and why this way:

- The deadline is per call and per thread: the exported wrapper reads the budget once, computes
  `now + budget` (no clock read when the budget is 0: the deadline is then INT64_MAX) and keeps it
  in a CTX {i64 deadline, i64 fuel} in its own frame. No new parameter carries it: the wrapper
  sets the stack limit (codegen's hidden parameter) to exactly STACK_BUDGET below the CTX, so an
  impl finds it at `limit + STACK_BUDGET`, computed where it is used (mostly on cold paths), and
  recursive code keeps the registers it had. Threads share nothing; no thread-local storage and
  no watchdog thread (a Python one could not run anyway: the binding keeps the GIL during calls).
- Only code that can run unboundedly pays: a loop, and the entry of a function that can recurse
  or holds a loop (lower gives exactly those a "timeout" site: `ir.Loop.site`,
  `Function.timeout_site`). Anything else runs a bounded number of steps per call. Wrappers of functions that reach neither
  (`long_running`) compute no deadline.
- A `for` loop (`ir.Loop.count`) runs in chunks of LOOP_TICKS iterations: its test becomes
  `i < stop`, stop = min(end, i + LOOP_TICKS), and the deadline is checked between chunks, so the
  hot path has the one compare it had. Another loop keeps a countdown in a stack slot that
  mem2reg turns into a register (a decrement and a branch per back edge) and checks every
  LOOP_TICKS back edges. The entry of a function that recurses or loops decrements CTX.fuel in
  memory (shared by every activation: a recursion tree of many shallow calls, like fib, counts as
  a whole, and so do many short loops in called functions) and checks every CALL_TICKS entries.
  A check is a call of the cold `lwas.tick`, which reads the clock and refills the fuel.
- How late a stop can be: a loop's count starts afresh in each activation, so between two checks
  run fewer than CALL_TICKS counted entries plus the frames on the stack, each activation with
  fewer than LOOP_TICKS iterations of its own: at most ~7e7 iterations (tens of ms for cheap
  ones), microseconds for plain runaway loops and recursions (tests/test_timeout.py measures
  the stops, a nest of short loops across functions included). Reading the clock (~20-50 ns)
  every LOOP_TICKS iterations costs well under 1 % on the tightest loop. Work inside one operation (a memcpy of a large array, a map operation)
  is bounded by the data and is not interrupted.
- LLVM cannot delete the checks: `lwas.tick` is a call that reads and writes memory, and the
  budget is the load of an external global. When LLVM turns a recursion into a loop (tail or
  accumulator recursion elimination at -O2: `fn f(n: int) -> int = f(n + 1) + 1`), the entry
  check becomes the loop's check, so the call still stops (before this module it hung, as the
  stack check vanished with the recursion). Real recursion keeps its stack check (codegen).
- The clock is `clock_gettime(CLOCK_MONOTONIC)` from the C library (a vDSO call, ~20-50 ns).
"""
from __future__ import annotations

from llvmlite import ir as L

from lwas.backend import ir
from lwas.backend.emit import I1, I32, I64, PTR, cold_path
from lwas.abi import BUDGET_GLOBAL

CTX = L.LiteralStructType([I64, I64])  # {deadline ns (INT64_MAX: none), fuel of recursive entries}
TIMESPEC = L.LiteralStructType([I64, I64])  # struct timespec on 64-bit Linux and macOS
NO_DEADLINE = 2 ** 63 - 1
LOOP_TICKS = 1 << 14  # iterations of a loop in one activation between clock reads
CALL_TICKS = 1 << 12  # entries of recursive or looping functions (in one call) between clock reads
CLOCK_MONOTONIC = {"darwin": 6}  # by OS in the target triple; Linux (and the default): 1


def clock_id(triple: str) -> int:
    return next((v for os, v in CLOCK_MONOTONIC.items() if os in triple), 1)


def long_running(program: ir.Program) -> set:
    """Names of the functions whose calls can loop or recurse (themselves or through a callee):
    only their wrappers compute a deadline."""
    direct = {}
    callees: dict = {}
    for fn in program.functions:
        found = [False]
        calls: set = set()
        _walk(fn.body, found, calls)
        direct[fn.name] = found[0] or fn.timeout_site >= 0
        callees[fn.name] = calls
    out = {n for n, v in direct.items() if v}
    changed = True
    while changed:
        changed = False
        for n, cs in callees.items():
            if n not in out and cs & out:
                out.add(n)
                changed = True
    return out


def _walk(x, found: list, calls: set) -> None:
    """Marks found[0] when x (statements or expressions) holds a checked loop; collects callees."""
    if isinstance(x, list):
        for y in x:
            _walk(y, found, calls)
        return
    if isinstance(x, tuple):
        for y in x:
            _walk(y, found, calls)
        return
    c = x.__class__
    if c is ir.Loop and x.site >= 0:
        found[0] = True
    elif c is ir.Call:
        calls.add(x.fn)
    if not hasattr(x, "__dataclass_fields__"):
        return
    for name in x.__dataclass_fields__:
        v = getattr(x, name)
        if isinstance(v, (list, tuple)) or hasattr(v, "__dataclass_fields__"):
            _walk(v, found, calls)


def _field(b: L.IRBuilder, ctx, i: int):
    """A pointer to field i of the CTX at ctx (an impl's parameter)."""
    return b.gep(ctx, [L.Constant(I32, 0), L.Constant(I32, i)], source_etype=CTX)


class Budget:
    """The module's budget machinery (built on first use by a _ModuleBuilder)."""

    def __init__(self, module: L.Module, triple: str = ""):
        self.module = module
        self.clock = clock_id(triple)
        g = L.GlobalVariable(module, I64, BUDGET_GLOBAL)
        g.initializer = L.Constant(I64, 0)
        self.budget = g
        self._now = None
        self._tick = None

    def now(self) -> L.Function:
        """`i64 lwas.now_ns()`: CLOCK_MONOTONIC in nanoseconds."""
        if self._now is None:
            gettime = L.Function(self.module, L.FunctionType(I32, [I32, PTR]), "clock_gettime")
            f = self._now = L.Function(self.module, L.FunctionType(I64, []), "lwas.now_ns")
            f.linkage = "internal"
            b = L.IRBuilder(f.append_basic_block("entry"))
            ts = b.alloca(TIMESPEC, name="ts")
            b.call(gettime, [L.Constant(I32, self.clock), ts])
            sec = b.load(b.gep(ts, [L.Constant(I32, 0), L.Constant(I32, 0)], source_etype=TIMESPEC), typ=I64)
            nsec = b.load(b.gep(ts, [L.Constant(I32, 0), L.Constant(I32, 1)], source_etype=TIMESPEC), typ=I64)
            b.ret(b.add(b.mul(sec, L.Constant(I64, 1_000_000_000)), nsec))
        return self._now

    def tick(self) -> L.Function:
        """`i1 lwas.tick(ptr ctx)`: refills ctx's fuel, then whether its deadline has passed
        (never reads the clock when there is no deadline). Cold and never inlined: the hot
        paths keep only a decrement and a branch."""
        if self._tick is None:
            f = self._tick = L.Function(self.module, L.FunctionType(I1, [PTR]), "lwas.tick")
            f.linkage = "internal"
            f.attributes.add("noinline")
            f.attributes.add("cold")
            b = L.IRBuilder(f.append_basic_block("entry"))
            ctx = f.args[0]
            b.store(L.Constant(I64, CALL_TICKS), self.fuel(b, ctx))
            deadline = b.load(_field(b, ctx, 0), typ=I64)
            limited = f.append_basic_block("limited")
            free = f.append_basic_block("unlimited")
            b.cbranch(b.icmp_signed("==", deadline, L.Constant(I64, NO_DEADLINE)), free, limited)
            b.position_at_end(free)
            b.ret(L.Constant(I1, 0))
            b.position_at_end(limited)
            b.ret(b.icmp_signed(">=", b.call(self.now(), []), deadline))
        return self._tick

    @staticmethod
    def fuel(b: L.IRBuilder, ctx):
        return _field(b, ctx, 1)

    def start(self, b: L.IRBuilder):
        """In a wrapper: a CTX in its frame holding this call's deadline; returns its pointer."""
        ctx = b.alloca(CTX, name="budget")
        budget = b.load(self.budget, typ=I64)
        f = b.function
        timed = f.append_basic_block("deadline")
        join = f.append_basic_block("deadline_set")
        start = b.block
        b.cbranch(b.icmp_signed(">", budget, L.Constant(I64, 0)), timed, join)
        b.position_at_end(timed)
        now = b.call(self.now(), [])
        room = b.sub(L.Constant(I64, NO_DEADLINE), now)  # saturate rather than wrap
        at = b.select(b.icmp_signed(">", budget, room), L.Constant(I64, NO_DEADLINE), b.add(now, budget))
        b.branch(join)
        b.position_at_end(join)
        deadline = b.phi(I64, name="deadline")
        deadline.add_incoming(L.Constant(I64, NO_DEADLINE), start)
        deadline.add_incoming(at, timed)
        b.store(b.insert_value(L.Constant(CTX, [L.Constant(I64, 0), L.Constant(I64, CALL_TICKS)]), deadline, 0), ctx)
        return ctx

    def on_expiry(self, b: L.IRBuilder, f: L.Function, ctx, fail) -> None:
        """Calls lwas.tick(ctx()); when the deadline has passed, runs fail() (which must end its
        block: a return of the timeout status); b continues on the path that goes on."""
        cold_path(b, f, b.call(self.tick(), [ctx()]), fail, ("timeout", "in_time"), when=True)

    def entry_check(self, b: L.IRBuilder, f: L.Function, ctx, fail) -> None:
        """At the entry of a function that can recurse: one decrement of the shared fuel; every
        CALL_TICKS entries, a clock read."""
        p = self.fuel(b, ctx())
        left = b.sub(b.load(p, typ=I64), L.Constant(I64, 1))
        b.store(left, p)
        slow = f.append_basic_block("tick")
        go = f.append_basic_block("entered")
        b.cbranch(b.icmp_signed("<=", left, L.Constant(I64, 0)), slow, go)
        b.block.instructions[-1].set_weights([1, 1000000])
        b.position_at_end(slow)
        self.on_expiry(b, f, ctx, fail)
        b.branch(go)
        b.position_at_end(go)

    @staticmethod
    def chunk_end(b: L.IRBuilder, i, end):
        """min(end, i + LOOP_TICKS) without overflow (end itself when i >= end)."""
        far = b.and_(b.icmp_signed("<", i, end), b.icmp_unsigned(">", b.sub(end, i), L.Constant(I64, LOOP_TICKS)))
        return b.select(far, b.add(i, L.Constant(I64, LOOP_TICKS)), end)

    def back_edge(self, b: L.IRBuilder, f: L.Function, ctx, counter, head, fail) -> None:
        """A loop's back edge to `head`: counter (an i64 slot of the activation) counts down;
        at zero, a clock read and a refill. Ends b's block (every path goes to head or fails)."""
        left = b.sub(b.load(counter, typ=I64), L.Constant(I64, 1))
        b.store(left, counter)
        slow = f.append_basic_block("loop_tick")
        b.cbranch(b.icmp_signed("<=", left, L.Constant(I64, 0)), slow, head)
        b.block.instructions[-1].set_weights([1, 1000000])
        b.position_at_end(slow)
        b.store(L.Constant(I64, LOOP_TICKS), counter)
        self.on_expiry(b, f, ctx, fail)
        b.branch(head)
