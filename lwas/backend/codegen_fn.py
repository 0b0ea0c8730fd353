"""One LwaS function's impl: its statements and expressions (lwas.backend.codegen builds the
module around it; the primitive operations are lwas.backend.codegen_prim's `Prims`).

An impl takes the arena and the stack limit as hidden parameters, keeps every variable in a
stack slot (mem2reg promotes them), and returns the fault's status at the first failed check
(codegen's docstring has the contract). Kept apart from the module builder so that each stays a
size one can read.
"""
from __future__ import annotations

from llvmlite import ir as L

from lwas.backend import ir
from lwas.backend.budget import LOOP_TICKS
from lwas.backend.codegen_prim import Prims
from lwas.backend.emit import (F64, I1, I8, I32, I64, MONEY, PTR, SLICE, cold_path, count_loop, impl_ret, mem_type,
                               phi, sizeof, val_type)
from lwas.backend.ir import Unsupported
from lwas.backend.typeinfo import has_array
from lwas.abi import pack_currency
from lwas.semantics.types import BOOL, FLOAT, INT, TEXT, TIME, TRUTH, UNIT, ArrayT, EnumT, MapT, MoneyT, RecordT

# How much stack (bytes) one call of an export may use for recursion, below the wrapper's frame.
# Well within the stack a thread gets by default on Linux (glibc: RLIMIT_STACK, usually 8 MiB,
# for the main thread and for other threads, 2 MiB if it is unlimited; Python's threads use the
# default unless threading.stack_size() says otherwise), leaving room for what ran before the
# call and for the non-recursive calls and libc (malloc, memcpy) that may run past the limit.
# A thread with less than ~1.5 MiB of stack left is not protected. It admits ~13_000 nested
# calls of `fib`-like functions at -O0 (80-byte frames), ~65_000 at -O2 (16 bytes).
STACK_BUDGET = 1 << 20


class _FunctionBuilder(Prims):
    """Builds the impl of one ir.Function (made by codegen.build_module); `build()` fills it."""

    def __init__(self, mb, fn: ir.Function):
        self.mb = mb
        self.fn = fn
        self.f, _ = mb.impls[fn.name]
        self.entry = self.f.append_basic_block("entry")
        self.b = L.IRBuilder(self.entry)
        self.slots: dict = {}
        self.loops: list = []  # (continue block, break block)
        self.rtype = impl_ret(fn.ret)
        self.current = None  # (pointer, type) of the enclosing StoreAt's target

    def build(self) -> None:
        self.arena = self.f.args[0]
        self.limit = self.f.args[1]
        self.sp = None  # the stack pointer (i64), read at entry on first use
        self.ticks = None  # the loops' countdown (lwas.backend.budget), made on first use
        if self.fn.timeout_site >= 0:
            self.mb.budget.entry_check(self.b, self.f, self.ctx, lambda: self.ret_status(self.fn.timeout_site + 1))
        for p, a in zip(self.fn.params, self.f.args[2:]):
            self.b.store(a, self.slot(p))
        self.stmts(self.fn.body)
        if not self.b.block.is_terminated:
            if self.fn.ret is UNIT:
                self.ret_status(0)
            else:
                self.b.unreachable()

    def slot(self, var: ir.Var):
        s = self.slots.get(id(var))
        if s is None:
            s = self.slots[id(var)] = self.entry_alloca(val_type(var.type), var.name)
        return s

    def entry_alloca(self, ty, name: str):
        """A stack slot allocated in the entry block (so mem2reg promotes it and a loop does
        not grow the stack)."""
        with self.b.goto_block(self.entry):
            if self.entry.instructions:
                self.b.position_before(self.entry.instructions[0])
            return self.b.alloca(ty, name=name)

    def ctx(self):
        """The call's CTX (lwas.backend.budget), at STACK_BUDGET above the stack limit: computed where it
        is used (mostly cold paths), so no register holds it."""
        return self.b.inttoptr(self.b.add(self.limit, L.Constant(I64, STACK_BUDGET)), PTR)

    def loop_ticks(self):
        """The activation's loop countdown (an i64 slot set to LOOP_TICKS at entry)."""
        if self.ticks is None:
            self.ticks = self.entry_alloca(I64, "ticks")
            with self.b.goto_block(self.entry):
                self.b.position_after(self.ticks)
                self.b.store(L.Constant(I64, LOOP_TICKS), self.ticks)
        return self.ticks

    def stack_pointer(self):
        """The stack pointer at entry (after the prologue: this impl's frame is below it)."""
        if self.sp is None:
            with self.b.goto_block(self.entry):
                if self.entry.instructions:
                    self.b.position_before(self.entry.instructions[0])
                self.sp = self.mb.stack_pointer(self.b)
        return self.sp

    def ret_status(self, status, value=None) -> None:
        """Return status (an int, or an i32 value) and, when given, the result value."""
        if isinstance(status, int):
            status = L.Constant(I32, status)
        if self.fn.ret is UNIT:
            self.b.ret(status)
            return
        r = L.Constant(self.rtype, None)
        if value is not None:
            r = self.b.insert_value(r, value, 0)
        self.b.ret(self.b.insert_value(r, status, 1))

    def fail(self, site: int) -> None:
        """Return the fault's status and continue emitting into a fresh (dead) block."""
        self.ret_status(site + 1)
        self.b.position_at_end(self.f.append_basic_block("dead"))

    def check(self, ok, site: int) -> None:
        """Branch to a fault at `site` unless `ok` (i1) holds; the fault path is cold."""
        cold_path(self.b, self.f, ok, lambda: self.ret_status(site + 1))

    # ------------------------------------------------------------ statements

    def stmts(self, stmts: list) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s) -> None:
        b = self.b
        c = s.__class__
        if c is ir.Let or c is ir.Store:
            b.store(self.expr(s.value), self.slot(s.var))
        elif c is ir.StoreAt:
            self.store_at(s)
        elif c is ir.Push:
            self.push(s)
        elif c is ir.Eval:
            self.expr(s.value)
        elif c is ir.If:
            cond = self.expr(s.cond)
            then = self.f.append_basic_block("then")
            els = self.f.append_basic_block("else")
            end = self.f.append_basic_block("endif")
            b.cbranch(cond, then, els)
            for blk, body in ((then, s.then), (els, s.orelse)):
                b.position_at_end(blk)
                self.stmts(body)
                if not b.block.is_terminated:
                    b.branch(end)
            b.position_at_end(end)
        elif c is ir.Loop and s.count is not None and s.site >= 0:
            self.counted_loop(s)
        elif c is ir.Loop:
            head = self.f.append_basic_block("loop")
            body = self.f.append_basic_block("body")
            step = self.f.append_basic_block("step")
            end = self.f.append_basic_block("endloop")
            b.branch(head)
            b.position_at_end(head)
            b.cbranch(self.expr(s.cond), body, end)
            self.loop_body(s, body, step, end)
            if s.site >= 0:
                self.mb.budget.back_edge(b, self.f, self.ctx, self.loop_ticks(), head,
                                         lambda: self.ret_status(s.site + 1))
            else:
                b.branch(head)
            b.position_at_end(end)
        elif c is ir.SwitchStmt:
            subject = self.expr(s.subject)
            end = self.f.append_basic_block("endmatch")
            default = self.f.append_basic_block("default")
            blocks = [self.f.append_basic_block("arm") for _ in s.arms]
            self.dispatch(subject, s.subject.type, [k for k, _ in s.arms], blocks, default)
            for blk, (keys, body) in zip(blocks, s.arms):
                b.position_at_end(blk)
                self.stmts(body)
                if not b.block.is_terminated:
                    b.branch(end)
            b.position_at_end(default)
            self.stmts(s.default)
            if not b.block.is_terminated:
                b.branch(end)
            b.position_at_end(end)
        elif c is ir.Break or c is ir.Continue:
            b.branch(self.loops[-1][1 if c is ir.Break else 0])
            b.position_at_end(self.f.append_basic_block("dead"))
        elif c is ir.Return:
            v = self.expr(s.value) if s.value is not None else None
            self.ret_status(0, v if self.fn.ret is not UNIT else None)
            b.position_at_end(self.f.append_basic_block("dead"))
        elif c is ir.Fail:
            self.fail(s.site)
        else:  # pragma: no cover - lower produces nothing else
            raise Unsupported(f"IR statement {c.__name__}")

    def loop_body(self, s: ir.Loop, body, step, done) -> None:
        """s.body in block `body` (`continue` goes to `step`, `break` to `done`), falling through
        into `step`, then s.step there; b is left at the end of the step."""
        b = self.b
        b.position_at_end(body)
        self.loops.append((step, done))
        self.stmts(s.body)
        self.loops.pop()
        if not b.block.is_terminated:
            b.branch(step)
        b.position_at_end(step)
        self.stmts(s.step)

    def counted_loop(self, s: ir.Loop) -> None:
        """`for i in ..`: the loop runs in chunks of at most LOOP_TICKS iterations, `i < stop`
        with stop = min(end, i + LOOP_TICKS); when i reaches stop before end, one deadline check
        and the next chunk. The hot path keeps one compare, like a loop without a budget."""
        b, budget = self.b, self.mb.budget
        var, end_expr = s.count
        end = self.expr(end_expr)
        stop = self.entry_alloca(I64, "stop")
        slot = self.slot(var)
        chunk, head, body, step, done = (self.f.append_basic_block(n)
                                         for n in ("chunk", "loop", "body", "step", "endloop"))
        more = self.f.append_basic_block("next_chunk")
        b.branch(chunk)
        b.position_at_end(chunk)  # the outer loop: one per chunk (the inner one has a single latch)
        b.store(budget.chunk_end(b, b.load(slot, typ=I64), end), stop)
        b.branch(head)
        b.position_at_end(head)
        b.cbranch(b.icmp_signed("<", b.load(slot, typ=I64), b.load(stop, typ=I64)), body, more)
        b.block.instructions[-1].set_weights([64, 1])  # a chunk ends once per many iterations
        b.position_at_end(more)
        i = b.load(slot, typ=I64)
        tick = self.f.append_basic_block("chunk_tick")
        b.cbranch(b.icmp_signed("<", i, end), tick, done)
        b.position_at_end(tick)
        budget.on_expiry(b, self.f, self.ctx, lambda: self.ret_status(s.site + 1))
        b.branch(chunk)
        self.loop_body(s, body, step, done)
        b.branch(head)
        b.position_at_end(done)

    # ------------------------------------------------------------ expressions

    def to_mem(self, v, t):
        return self.b.zext(v, I8) if t is BOOL else v

    def from_mem(self, v, t):
        return self.b.icmp_unsigned("!=", v, L.Constant(I8, 0)) if t is BOOL else v

    def const(self, t, value):
        if t is INT or t is TIME:
            return L.Constant(I64, value)
        if t is FLOAT or t is TRUTH:
            return L.Constant(F64, float(value))
        if t is BOOL:
            return L.Constant(I1, int(bool(value)))
        if t.__class__ is EnumT:
            return L.Constant(I32, value)
        if t.__class__ is MoneyT:
            return L.Constant(MONEY, [L.Constant(I64, value[0]), L.Constant(I32, pack_currency(value[1]))])
        if t is TEXT:
            return self.mb.text_const(value)
        if t.__class__ is MapT and value is None:
            return L.Constant(PTR, None)  # the empty map
        raise Unsupported(f"constants of type `{t}` are not compiled yet")

    def expr(self, e):
        c = e.__class__
        if c is ir.Const:
            return self.const(e.type, e.value)
        if c is ir.Load:
            return self.b.load(self.slot(e.var), typ=val_type(e.var.type))
        if c is ir.Prim:
            return self.prim(e)
        if c is ir.Logic:
            return self.logic(e)
        if c is ir.Call:
            return self.call(e)
        if c is ir.Switch:
            return self.switch(e)
        if c is ir.Current:
            p, t = self.current
            return self.from_mem(self.b.load(p, typ=mem_type(t)), t)
        raise Unsupported(f"IR expression {c.__name__}")  # pragma: no cover

    def call(self, e: ir.Call):
        f, callee = self.mb.impls[e.fn]
        args = [self.expr(a) for a in e.args]
        site = e.site
        if site >= 0:
            self.check(self.b.icmp_unsigned(">=", self.stack_pointer(), self.limit), site)
        r = self.b.call(f, [self.arena, self.limit] + args)
        status = r if callee.ret is UNIT else self.b.extract_value(r, 1)
        cold_path(self.b, self.f, self.b.icmp_unsigned("==", status, L.Constant(I32, 0)),
                  lambda: self.ret_status(status), ("propagate", "ok"))
        return None if callee.ret is UNIT else self.b.extract_value(r, 0)

    def logic(self, e: ir.Logic):
        b = self.b
        left = self.expr(e.left)
        is_and = e.op == "and"
        if e.type is BOOL:
            decided = b.not_(left) if is_and else left
        else:  # the left value itself decides (so `-0.0 and x` is -0.0, as in the evaluator)
            decided = b.fcmp_ordered("==", left, L.Constant(F64, 0.0 if is_and else 1.0))
        start = b.block
        rhs = self.f.append_basic_block("rhs")
        end = self.f.append_basic_block("endlogic")
        b.cbranch(decided, end, rhs)
        b.position_at_end(rhs)
        right = self.expr(e.right)
        if e.type is not BOOL:
            right = self.fminmax("min" if is_and else "max", left, right)
        rhs_end = b.block
        b.branch(end)
        b.position_at_end(end)
        return phi(b, left.type, (left, start), (right, rhs_end))

    def switch(self, e: ir.Switch):
        b = self.b
        subject = self.expr(e.subject)
        end = self.f.append_basic_block("endmatch")
        default = self.f.append_basic_block("default")
        blocks = [self.f.append_basic_block("arm") for _ in e.arms]
        self.dispatch(subject, e.subject.type, [k for k, _ in e.arms], blocks, default)
        incoming = []
        for blk, (keys, arm) in zip(blocks, e.arms):
            b.position_at_end(blk)
            v = self.expr(arm)
            incoming.append((v, b.block))
            b.branch(end)
        b.position_at_end(default)
        if e.default is None:
            b.unreachable()
        else:
            v = self.expr(e.default)
            incoming.append((v, b.block))
            b.branch(end)
        b.position_at_end(end)
        return phi(b, val_type(e.type), *incoming)

    def dispatch(self, subject, t, keys: list, blocks: list, default) -> None:
        """Branch to blocks[i] when subject is one of keys[i] (the first such arm), else to
        default. Text: a chain of byte comparisons in arm order; otherwise a `switch`."""
        b = self.b
        if t is not TEXT:
            sw = b.switch(subject, default)
            for ks, blk in zip(keys, blocks):
                for k in ks:
                    sw.add_case(L.Constant(subject.type, k), blk)
            return
        for ks, blk in zip(keys, blocks):
            for k in ks:
                eq = self.text_eq(subject, self.mb.text_const(k))
                nxt = self.f.append_basic_block("nextcase")
                b.cbranch(eq, blk, nxt)
                b.position_at_end(nxt)
        b.branch(default)

    def store_at(self, s: ir.StoreAt) -> None:
        """An in-place store: walks the steps from the variable's slot (fields: a GEP into the
        struct; elements: bounds check, then a GEP into the array's buffer, which the variable
        owns), evaluates the value (`Current`: the old target value), stores it."""
        b = self.b
        p = self.slot(s.var)
        t = s.var.type
        for step in s.steps:
            if step[0] == "field":
                p = b.gep(p, [L.Constant(I32, 0), L.Constant(I32, step[1])], source_etype=mem_type(t))
                t = list(t.fields.values())[step[1]]
            else:
                arr = b.load(p, typ=SLICE)
                i = self.expr(step[1])
                self.check(b.icmp_unsigned("<", i, b.extract_value(arr, 1)), step[2])
                t = t.elem
                p = b.gep(b.extract_value(arr, 0), [i], source_etype=mem_type(t))
        saved = self.current
        self.current = (p, t)
        v = self.expr(s.value)
        self.current = saved
        b.store(self.to_mem(v, t), p)

    def push(self, s: ir.Push) -> None:
        """ir.Push: ys after xs's elements, in place when xs's room allows, else in a new buffer of
        twice the room (at least 4) in the arena; then xs and its room are stored."""
        b = self.b
        elem = s.var.type.elem
        ys = self.expr(s.value)
        xs = b.load(self.slot(s.var))
        room = b.load(self.slot(s.cap))
        n_old, n_add = b.extract_value(xs, 1), b.extract_value(ys, 1)
        old_ptr = b.extract_value(xs, 0)
        n = b.add(n_old, n_add)
        size = self.elem_size(elem)
        start = b.block
        grow = self.f.append_basic_block("push_grow")
        put = self.f.append_basic_block("push_put")
        b.cbranch(b.icmp_unsigned(">", n, room), grow, put)
        b.position_at_end(grow)
        twice = b.mul(room, L.Constant(I64, 2))
        want = b.select(b.icmp_unsigned(">", twice, n), twice, n)
        want = b.select(b.icmp_unsigned("<", want, L.Constant(I64, 4)), L.Constant(I64, 4), want)
        buf = self.alloc(b.mul(want, size), s.site)
        b.call(self.mb.libc("memcpy"), [buf, old_ptr, b.mul(n_old, size)])
        grown = b.block
        b.branch(put)
        b.position_at_end(put)
        ptr = phi(b, PTR, (old_ptr, start), (buf, grown))
        cap = phi(b, I64, (room, start), (want, grown))
        dest = b.gep(ptr, [b.mul(n_old, size)], source_etype=I8)
        b.call(self.mb.libc("memcpy"), [dest, b.extract_value(ys, 0), b.mul(n_add, size)])
        out = b.insert_value(b.insert_value(L.Constant(SLICE, None), ptr, 0), n, 1)
        b.store(out, self.slot(s.var))
        b.store(cap, self.slot(s.cap))

    def copy(self, v, t, site: int):
        """v with every array (nested ones included) copied into the arena; text is shared, as
        nothing writes text in place. A failed malloc faults at `site`."""
        b = self.b
        c = t.__class__
        if c is RecordT:
            for i, ft in enumerate(t.fields.values()):
                if has_array(ft):
                    v = b.insert_value(v, self.copy(b.extract_value(v, i), ft, site), i)
            return v
        if c is not ArrayT:
            return v
        elem = mem_type(t.elem)
        n = b.extract_value(v, 1)
        size = b.mul(n, sizeof(b, elem))
        buf = self.alloc(size, site)
        b.call(self.mb.libc("memcpy"), [buf, b.extract_value(v, 0), size])
        if has_array(t.elem):
            def copy_elem(i):
                p = b.gep(buf, [i], source_etype=elem)
                b.store(self.copy(b.load(p, typ=elem), t.elem, site), p)

            count_loop(b, self.f, n, ("copyloop", "copyelem", "copied"), copy_elem)
        return b.insert_value(v, buf, 0)

    def adopt(self, v, t, site: int):
        """v (what the host handed back) copied into the arena; a failed malloc faults at site."""
        f = self.mb.adopt(t)
        if f is None:
            return v
        r = self.b.call(f, [self.arena, v])
        self.check(self.b.extract_value(r, 1), site)
        return self.b.extract_value(r, 0)

    def elem_size(self, t):
        """sizeof(t's memory form) as an i64 constant expression (the null-GEP idiom)."""
        return sizeof(self.b, mem_type(t))

    def alloc(self, size, site: int):
        """size bytes in the arena; a failed malloc faults at `site` (a "memory" site)."""
        buf = self.b.call(self.mb.alloc(), [self.arena, size])
        self.check(self.b.icmp_unsigned("!=", self.b.ptrtoint(buf, I64), L.Constant(I64, 0)), site)
        return buf

    def fminmax(self, which: str, a, x):
        """Python's min(a, x) / max(a, x): a unless x is strictly smaller / larger."""
        take = self.b.fcmp_ordered("<" if which == "min" else ">", x, a)
        return self.b.select(take, x, a)
