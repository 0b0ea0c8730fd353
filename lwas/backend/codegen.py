"""Code generation: `ir.Program` -> LLVM IR (llvmlite.ir) -> optimized object code.

Each LwaS function becomes an internal `impl` that takes its arguments in value form (bool i1,
money/text/arrays/records as first-class structs) and returns `{result, i32 status}` (just the
i32 status for a unit result) in registers, plus an external wrapper named SYMBOL_PREFIX + name
with the exact ABI of lwas.abi that unpacks the parameters and writes the result to *out. Calls
between LwaS functions go to the impls, so LLVM sees only internal functions and may inline,
specialise and vectorise freely; returning in registers keeps recursion (fib) cheap.

Faults never trap: every division is guarded, every +,-,* on int goes through
`llvm.s*.with.overflow`, and a fault returns its error site + 1 as the status. Operands are
evaluated in the order of the IR's arguments (lower keeps source order), each with its checks,
before the operation checks its own faults (docs/language.md, "Evaluation order"). Each check is
a branch that returns, so the optimiser cannot make a later fault win over an earlier one.

Memory: text literals and array literals of constants are private constant globals. What is
built at run time (text concatenation, other array literals) is malloc'd into the call's arena:
every impl takes a hidden first parameter, the arena (a pointer to the head of a list of blocks),
which the exported wrapper creates empty on its stack and frees as a whole when the impl returns,
fault or not. Before that, the wrapper deep-copies a result that holds text or arrays into fresh
malloc'd buffers (one per text/array, nested ones included), so a result never points into the
arena, a constant or the caller's arguments: the caller owns it and frees every such buffer with
`free` after copying it (runtime.native does). So each call is leak-free, and calls on different
threads share nothing.

A failed malloc is a fault, not a crash: `lwas.alloc` returns null (linking nothing into the
arena) and each allocating operation (concatenation, a run-time array literal, `copy`) branches
to its "memory" error site, which unwinds like any fault; the arena is freed as usual. The
wrapper's copy of the result (`lwas.dup.N`, per shape of type) frees every buffer it already
made when a malloc fails (`lwas.drop.N`) and returns the function's "memory" site, at its
declaration. Programs that allocate nothing get no such sites and no such code.

Element assignment (`xs[i] = v`, `r.items[i].n += 1`) writes in place, so the storage written
must belong to the variable alone. lower marks such `var`s as owning their arrays: every value
bound to one is `copy`'d (each array, nested ones too, into the arena; text is shared, as nothing
writes text in place) and every read of one that yields arrays is copied as well, so parameters,
constants, other variables and `for` snapshots never see the write. Other arrays are shared
freely, as before. `ir.StoreAt` walks its steps from the variable's slot (a field: a GEP into the
struct; an element: a bounds check, then a GEP into the owned buffer) and stores the value.

Stack: recursion must not overflow the native stack (that would kill the host with SIGSEGV).
Every impl takes a second hidden parameter, the stack limit: the address below which the call
must not grow the stack. The exported wrapper computes it from its own stack pointer minus
STACK_BUDGET, so C callers need nothing new and each thread measures its own stack. Only calls
that can recurse (caller and callee in one cycle of the call graph: lower gives exactly those
calls a "stack" error site) are checked: before such a call, the caller compares its stack
pointer (read once, at entry) with the limit and, when below, returns that call's site as its
status, which unwinds like any fault. Every cycle of calls passes a check, so the stack used
beyond the limit is bounded by one chain of non-recursive calls (and libc); non-recursive code
is untouched. The check is a compare and a cold branch (fib(30) at -O2: no measurable cost).
Which call of a cycle reports the fault depends on frame sizes, so on the optimisation level.

Time (lwas.backend.budget): a call that outlives the module's budget (the global BUDGET_GLOBAL, set by
the runtime) returns a "timeout" site. The wrapper of a function that can loop or recurse puts
the call's deadline in its frame, exactly STACK_BUDGET above the stack limit it passes, so impls
find it without a new parameter; loops (back edges, or chunks of a `for`) and the entries of
recursive or looping functions count down and read the clock now and then.

Where the parts live: this module is the entry point (`generate`, `llvm_ir`, `assembly`) and
builds the module (globals, wrappers, helpers such as money's `scale`);
lwas.backend.codegen_fn builds each impl, with the primitive operations in
lwas.backend.codegen_prim; lwas.backend.memory holds the arena and the deep copies, and
lwas.backend.emit the LLVM forms of the types and the emitters they share. The names other
modules import from here (mem_type, SLICE, ARENA, owns_memory, ...) stay importable here.
"""
from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir as L

from lwas.backend import ir
from lwas.backend.budget import Budget, long_running
from lwas.abi import (SNAP_DECODE, SNAP_ENCODE, ARENA_FREE, AXIOM_TABLE, KEEP_PREFIX, SYMBOL_PREFIX, NativeModule,
                      pack_currency)
from lwas.backend.codegen_fn import STACK_BUDGET, _FunctionBuilder
from lwas.backend.emit import (ARENA, F64, I1, I8, I32, I64, MONEY, PTR, SLICE, count_loop, impl_ret, mem_type,
                               phi, ret_struct, val_type)
from lwas.backend.ir import Unsupported
from lwas.backend.memory import ModuleMemory
from lwas.backend.typeinfo import owns_memory
from lwas.semantics.types import BOOL, CURRENCY_EXPONENTS, TEXT, UNIT, ArrayT, MoneyT, RecordT

__all__ = ["generate", "llvm_ir", "assembly", "Unsupported"]

_count_loop = count_loop  # its name here before lwas.backend.emit

# What native code may call in the runtime that hosts it (lwas.runtime.native binds them).
HOST_SYMBOLS = {
    "lwas_rt_append": L.FunctionType(I32, [I32, PTR]),
    "lwas_rt_extern": L.FunctionType(I32, [I32, PTR, PTR]),
    "lwas_rt_now": L.FunctionType(I64, []),
    "lwas_rt_config": L.FunctionType(I32, [PTR, I64, PTR]),
    "lwas_rt_ledger_root": L.FunctionType(I32, [I32, PTR]),
    "lwas_rt_ledger_has": L.FunctionType(I32, [I32, PTR, I64]),
    "lwas_rt_metric": L.FunctionType(F64, [I32]),
    "lwas_rt_config_int": L.FunctionType(I32, [PTR, I64, I64, PTR]),
}


# ---------------------------------------------------------------- public API

_initialized = False


def _target_machine(opt_level: int):
    global _initialized
    if not _initialized:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _initialized = True
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu="", features="", opt=min(max(opt_level, 0), 3),
                                        reloc="pic", codemodel="small")


def _compile(program: ir.Program, opt_level: int):
    tm = _target_machine(opt_level)
    module = build_module(program, llvm.get_process_triple())
    module.triple = llvm.get_process_triple()
    module.data_layout = str(tm.target_data)
    mod = llvm.parse_assembly(str(module))
    mod.verify()
    if opt_level > 0:
        pto = llvm.create_pipeline_tuning_options(speed_level=min(opt_level, 3))
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
    return tm, mod


def generate(program: ir.Program, opt_level: int = 2) -> NativeModule:
    tm, mod = _compile(program, opt_level)
    return NativeModule(object_code=tm.emit_object(mod), triple=llvm.get_process_triple(),
                        exports=list(program.exports), error_sites=list(program.error_sites),
                        axioms=list(program.axioms), opt_level=opt_level, externs=list(program.externs))


def llvm_ir(program: ir.Program, opt_level: int = 2) -> str:
    return str(_compile(program, opt_level)[1])


def assembly(program: ir.Program, opt_level: int = 2) -> str:
    tm, mod = _compile(program, opt_level)
    return tm.emit_assembly(mod)


# ---------------------------------------------------------------- module

def build_module(program: ir.Program, triple: str = "") -> L.Module:
    m = L.Module(name="lwas")
    table = L.ArrayType(F64, len(program.axioms))
    g = L.GlobalVariable(m, table, AXIOM_TABLE)
    g.initializer = L.Constant(table, [a.effective for a in program.axioms])
    g.global_constant = True
    impls = {}
    for fn in program.functions:
        ty = L.FunctionType(impl_ret(fn.ret), [PTR, I64] + [val_type(p.type) for p in fn.params])
        f = L.Function(m, ty, "impl$" + fn.name)
        f.linkage = "internal"
        impls[fn.name] = (f, fn)
    mb = _ModuleBuilder(m, impls)
    mb.budget = Budget(m, triple)
    mb.long_running = long_running(program)
    for fn in program.functions:
        _FunctionBuilder(mb, fn).build()
        _wrapper(mb, impls[fn.name][0], fn)
        if "$" in fn.name:  # the service stage's functions (user names cannot hold `$`)
            _wrapper(mb, impls[fn.name][0], fn, keep=True)
        if fn.name.endswith("$copy") and fn.params and fn.params[0].name == "state$":  # a service
            svc = fn.name[:-len("$copy")]
            mb.snaps.exports(SNAP_ENCODE + svc, SNAP_DECODE + svc, fn.params[0].type)
    free = L.Function(m, L.FunctionType(L.VoidType(), [PTR]), ARENA_FREE)
    b = L.IRBuilder(free.append_basic_block("entry"))
    b.call(mb.free_all(), [free.args[0]])
    b.ret_void()
    return m


def _wrapper(mb: "_ModuleBuilder", impl: L.Function, fn: ir.Function, keep: bool = False) -> None:
    """The exported symbol: ABI parameters (money, text, arrays flattened; records by pointer).

    keep=True builds the kept-arena form `KEEP_PREFIX + name(ptr out, ptr arena, i64 adopt,
    params...)` of a service function, which lets a runtime keep values in native memory
    between calls (lwas.runtime.state): the caller owns `arena` (an ARENA: head, bytes and
    edit number, zeroed for a new one; freed with ARENA_FREE), every allocation of the call goes there and
    stays, and the result is written to *out as it is (no copy: it may point into the arena,
    into constants, or into the parameters). Parameter i whose bit is set in `adopt` is first
    copied into the arena with everything it points to (text, arrays, map nodes), so that a
    result may keep it after the caller's buffers are gone; a parameter already in the arena
    (the state) is passed with its bit clear."""
    m = mb.module
    params = [PTR] + ([PTR, I64] if keep else [])
    for p in fn.params:
        t = p.type
        c = t.__class__
        if c is MoneyT:
            params += [I64, I32]
        elif t is TEXT or c is ArrayT:
            params += [PTR, I64]
        elif c is RecordT:
            params.append(PTR)
        else:
            params.append(mem_type(t))
    w = L.Function(m, L.FunctionType(I32, params), (KEEP_PREFIX if keep else SYMBOL_PREFIX) + fn.name)
    b = L.IRBuilder(w.append_basic_block("entry"))
    args = list(w.args)
    out = args.pop(0)
    if keep:
        arena, adopt = args.pop(0), args.pop(0)
    else:
        arena = b.alloca(ARENA, name="arena")
        b.store(L.Constant(ARENA, None), arena)
    sp = mb.stack_pointer(b)
    budget = L.Constant(I64, STACK_BUDGET)
    if fn.name in mb.long_running:  # the call's deadline sits STACK_BUDGET above the limit (lwas.backend.budget)
        # (stacks live far above the first MiB of the address space: no wrap-around)
        limit = b.sub(b.ptrtoint(mb.budget.start(b), I64), budget, name="stack_limit")
    else:
        limit = b.select(b.icmp_unsigned(">", sp, budget), b.sub(sp, budget), L.Constant(I64, 0), name="stack_limit")
    vals = [arena, limit]
    for p in fn.params:
        t = p.type
        c = t.__class__
        if c is MoneyT or t is TEXT or c is ArrayT:
            ty = MONEY if c is MoneyT else SLICE
            v = b.insert_value(b.insert_value(L.Constant(ty, None), args.pop(0), 0), args.pop(0), 1)
        elif c is RecordT:
            v = b.load(args.pop(0), typ=mem_type(t))
        elif t is BOOL:
            v = b.icmp_unsigned("!=", args.pop(0), L.Constant(I8, 0))
        else:
            v = args.pop(0)
        vals.append(v)
    if keep:  # adopt the flagged parameters (a failed malloc: fn's "memory" site)
        for i, p in enumerate(fn.params):
            x = mb.adopt(p.type)
            if x is None:
                continue
            flagged = b.icmp_unsigned("!=", b.and_(adopt, L.Constant(I64, 1 << i)), L.Constant(I64, 0))
            start = b.block
            yes = w.append_basic_block(f"adopt{i}")
            oom = w.append_basic_block(f"adopt{i}_oom")
            go = w.append_basic_block(f"adopted{i}")
            join = w.append_basic_block(f"param{i}")
            b.cbranch(flagged, yes, join)
            b.position_at_end(yes)
            r = b.call(x, [arena, vals[i + 2]])
            b.cbranch(b.extract_value(r, 1), go, oom)
            b.position_at_end(oom)
            b.ret(L.Constant(I32, fn.memory_site + 1))
            b.position_at_end(go)
            got = b.extract_value(r, 0)
            b.branch(join)
            b.position_at_end(join)
            vals[i + 2] = phi(b, vals[i + 2].type, (vals[i + 2], start), (got, go))
    r = b.call(impl, vals)
    if keep:
        if fn.ret is UNIT:
            b.ret(r)
            return
        status = b.extract_value(r, 1)
        v = b.extract_value(r, 0)
        b.store(b.zext(v, I8) if fn.ret is BOOL else v, out)  # undefined unless status is 0
        b.ret(status)
        return
    if fn.ret is UNIT:
        b.call(mb.free_all(), [arena])
        b.ret(r)
        return
    status = b.extract_value(r, 1)
    v = b.extract_value(r, 0)
    if owns_memory(fn.ret):  # the caller's copy; a failed malloc: fn's "memory" site
        entry = b.block
        copy = b.append_basic_block("copy")
        store = b.append_basic_block("store")
        oom = b.append_basic_block("oom")
        done = b.append_basic_block("done")
        b.cbranch(b.icmp_unsigned("==", status, L.Constant(I32, 0)), copy, done)
        b.position_at_end(copy)
        r = b.call(mb.dup(fn.ret), [v])
        b.cbranch(b.extract_value(r, 1), store, oom)
        b.block.instructions[-1].set_weights([1000000, 1])
        b.position_at_end(store)
        b.store(b.extract_value(r, 0), out)
        b.branch(done)
        b.position_at_end(oom)
        b.branch(done)
        b.position_at_end(done)
        status = phi(b, I32, (status, entry), (L.Constant(I32, 0), store),
                     (L.Constant(I32, fn.memory_site + 1), oom))
    else:
        b.store(b.zext(v, I8) if fn.ret is BOOL else v, out)
    b.call(mb.free_all(), [arena])
    b.ret(status)


class _ModuleBuilder(ModuleMemory):
    """What the functions of one module share: impls, constants, intrinsics and helpers (the
    memory ones in lwas.backend.memory.ModuleMemory)."""

    def __init__(self, module: L.Module, impls: dict):
        self.module = module
        self.impls = impls
        self.consts = 0
        self.intrinsics: dict = {}
        self.text: dict = {}
        self._maps = None
        self._snaps = None
        self.helpers: dict = {}  # key -> internal function (see `internal`)

    @property
    def snaps(self):
        """The snapshot codecs (lwas.backend.snapgen), built on first use."""
        if self._snaps is None:
            from lwas.backend.snapgen import Snaps

            self._snaps = Snaps(self)
        return self._snaps

    @property
    def maps(self):
        """The map functions (lwas.backend.mapgen), built on first use."""
        if self._maps is None:
            from lwas.backend.mapgen import Maps

            self._maps = Maps(self)
        return self._maps

    def intrinsic(self, name: str) -> L.Function:
        f = self.intrinsics.get(name)
        if f is None:
            f = self.intrinsics[name] = self.module.declare_intrinsic(name, [F64])
        return f

    def scale(self) -> L.Function:
        """`{i64, i1 ok} scale(i64 minor, double f)`: minor * f rounded half-even, exactly.

        Why not `roundeven(float(minor) * f)`: both the conversion and the product round, so large
        amounts (and products just off a .5 tie) would differ from the exact result the reference
        evaluator computes. f = mant * 2^exp exactly, so |minor| * mant (< 2^117) is exact in i128;
        then a shift with half-even rounding. Straight-line code (selects), no branches."""
        f = self.intrinsics.get("scale")
        if f is not None:
            return f
        i128 = L.IntType(128)
        res = L.LiteralStructType([I64, I1])
        f = self.intrinsics["scale"] = L.Function(self.module, L.FunctionType(res, [I64, F64]), "lwas.scale")
        f.linkage = "internal"
        b = L.IRBuilder(f.append_basic_block("entry"))
        minor, x = f.args
        c = lambda v, t=i128: L.Constant(t, v)  # noqa: E731
        bits = b.bitcast(x, I64)
        e = b.and_(b.lshr(bits, c(52, I64)), c(0x7FF, I64))
        frac = b.and_(bits, c((1 << 52) - 1, I64))
        normal = b.icmp_unsigned("!=", e, c(0, I64))
        mant = b.select(normal, b.or_(frac, c(1 << 52, I64)), frac)
        exp = b.sub(b.select(normal, e, c(1, I64)), c(1075, I64))  # value = mant * 2^exp
        neg = b.xor(b.icmp_signed("<", bits, c(0, I64)), b.icmp_signed("<", minor, c(0, I64)))
        m128 = b.sext(minor, i128)
        prod = b.mul(b.select(b.icmp_signed("<", m128, c(0)), b.neg(m128), m128), b.zext(mant, i128))
        # exp >= 0: magnitude prod << exp, which must not exceed 2^63
        up_sh = b.select(b.icmp_signed(">", exp, c(63, I64)), c(63, I64), exp)
        up_sh = b.select(b.icmp_signed("<", up_sh, c(0, I64)), c(0, I64), up_sh)
        up_ok = b.and_(b.icmp_signed("<=", exp, c(63, I64)),
                       b.icmp_unsigned("<=", prod, b.shl(c(1), b.zext(b.sub(c(63, I64), up_sh), i128))))
        up_ok = b.or_(up_ok, b.icmp_unsigned("==", prod, c(0)))
        up_mag = b.select(up_ok, b.shl(prod, b.zext(up_sh, i128)), c(0))
        # exp < 0: prod >> s rounded half-even (s > 126: the magnitude is below 2^-9, i.e. 0)
        s = b.sub(c(0, I64), exp)
        s = b.select(b.icmp_signed(">", s, c(126, I64)), c(127, I64), s)
        s = b.select(b.icmp_signed("<", s, c(1, I64)), c(1, I64), s)
        s128 = b.zext(s, i128)
        q = b.lshr(prod, s128)
        rem = b.and_(prod, b.sub(b.shl(c(1), s128), c(1)))
        half = b.shl(c(1), b.sub(s128, c(1)))
        round_up = b.or_(b.icmp_unsigned(">", rem, half),
                         b.and_(b.icmp_unsigned("==", rem, half), b.trunc(q, I1)))
        down_mag = b.add(q, b.zext(round_up, i128))
        mag = b.select(b.icmp_signed(">=", exp, c(0, I64)), up_mag, down_mag)
        ok = b.and_(b.icmp_unsigned("!=", e, c(0x7FF, I64)),
                    b.select(b.icmp_signed(">=", exp, c(0, I64)), up_ok, L.Constant(I1, 1)))
        limit = b.select(neg, c(1 << 63), c((1 << 63) - 1))
        ok = b.and_(ok, b.icmp_unsigned("<=", mag, limit))
        ret_struct(b, res, b.trunc(b.select(neg, b.neg(mag), mag), I64), ok)
        return f

    def currencies(self):
        """`i64 lwas.currency_index(i32 packed)` (-1: not ISO 4217) and the codes' text, 3 bytes
        per code in the same order: what `currency(m)` points into and `from_minor` checks."""
        f = self.intrinsics.get("currencies")
        if f is not None:
            return f
        codes = sorted(CURRENCY_EXPONENTS)
        text = self.global_const(L.Constant(L.ArrayType(I8, 3 * len(codes)),
                                            bytearray("".join(codes).encode("ascii"))))
        fn = L.Function(self.module, L.FunctionType(I64, [I32]), "lwas.currency_index")
        fn.linkage = "internal"
        b = L.IRBuilder(fn.append_basic_block("entry"))
        bad = fn.append_basic_block("unknown")
        sw = b.switch(fn.args[0], bad)
        for i, code in enumerate(codes):
            blk = fn.append_basic_block(code)
            sw.add_case(L.Constant(I32, pack_currency(code)), blk)
            b.position_at_end(blk)
            b.ret(L.Constant(I64, i))
        b.position_at_end(bad)
        b.ret(L.Constant(I64, -1))
        f = self.intrinsics["currencies"] = (fn, text)
        return f

    def stack_pointer(self, b: L.IRBuilder):
        """The stack pointer as an i64 (`llvm.stacksave`: a plain read of the register, unlike
        `llvm.frameaddress`, which would make the function set up a frame pointer). The stack
        grows down on every target lwas builds for."""
        f = self.intrinsics.get("stacksave")
        if f is None:
            f = self.intrinsics["stacksave"] = L.Function(self.module, L.FunctionType(PTR, []), "llvm.stacksave.p0")
        return b.ptrtoint(b.call(f, []), I64)

    def host(self, name: str) -> L.Function:
        """A runtime function (HOST_SYMBOLS): resolved when the runtime maps the object."""
        f = self.intrinsics.get(name)
        if f is None:
            f = self.intrinsics[name] = L.Function(self.module, HOST_SYMBOLS[name], name)
        return f

    def global_const(self, value: L.Constant) -> L.GlobalVariable:
        g = L.GlobalVariable(self.module, value.type, f"const${self.consts}")
        self.consts += 1
        g.initializer = value
        g.global_constant = True
        g.linkage = "private"
        g.unnamed_addr = True
        return g

    def text_const(self, s: str) -> L.Constant:
        data = s.encode("utf-8")
        g = self.text.get(data)
        if g is None:
            arr = L.ArrayType(I8, len(data))
            g = self.text[data] = self.global_const(L.Constant(arr, bytearray(data)))
        return L.Constant(SLICE, [g.bitcast(PTR), L.Constant(I64, len(data))])

