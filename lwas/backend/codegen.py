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
"""
from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir as L

from lwas.backend import ir
from lwas.backend.budget import LOOP_TICKS, Budget, long_running
from lwas.abi import SNAP_DECODE, SNAP_ENCODE, ARENA_FREE, AXIOM_TABLE, KEEP_PREFIX, SYMBOL_PREFIX, NativeModule
from lwas.backend.ir import Unsupported
from lwas.semantics.types import BOOL, CURRENCY_EXPONENTS, FLOAT, INT, TEXT, TIME, TRUTH, UNIT, ArrayT, EnumT, MapT, MoneyT, RecordT

__all__ = ["generate", "llvm_ir", "assembly", "Unsupported"]

I1, I8, I32, I64 = L.IntType(1), L.IntType(8), L.IntType(32), L.IntType(64)
F64 = L.DoubleType()
PTR = L.PointerType()
MONEY = L.LiteralStructType([I64, I32])
SLICE = L.LiteralStructType([PTR, I64])  # text and arrays
# The head of the arena's list of blocks, its bytes, and its edit number (lwas.backend.mapgen.insert_owned;
# 0 but in a kept state's heap).
ARENA = L.LiteralStructType([PTR, I64, I64])
INT_MIN = -(2 ** 63)
TIME_MIN, TIME_MAX = -62135596800000000, 253402300799999999  # 0001-01-01 .. 9999-12-31T23:59:59.999999Z

# How much stack (bytes) one call of an export may use for recursion, below the wrapper's frame.
# Well within the stack a thread gets by default on Linux (glibc: RLIMIT_STACK, usually 8 MiB,
# for the main thread and for other threads, 2 MiB if it is unlimited; Python's threads use the
# default unless threading.stack_size() says otherwise), leaving room for what ran before the
# call and for the non-recursive calls and libc (malloc, memcpy) that may run past the limit.
# A thread with less than ~1.5 MiB of stack left is not protected. It admits ~13_000 nested
# calls of `fib`-like functions at -O0 (80-byte frames), ~65_000 at -O2 (16 bytes).
STACK_BUDGET = 1 << 20


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


def mem_type(t) -> L.Type:
    """The native (ABI) form of a type, as stored in memory, arrays, records and *out."""
    if t is INT or t is TIME:
        return I64
    if t is FLOAT or t is TRUTH:
        return F64
    if t is BOOL:
        return I8
    c = t.__class__
    if c is EnumT:
        return I32
    if c is MoneyT:
        return MONEY
    if t is TEXT or c is ArrayT:
        return SLICE
    if c is MapT:
        return PTR  # the root node (lwas.backend.mapgen), null for the empty map
    if c is RecordT:
        return L.LiteralStructType([mem_type(ft) for ft in t.fields.values()])
    raise Unsupported(f"values of type `{t}` are not compiled yet")


def val_type(t) -> L.Type:
    """The form a value has in registers: like mem_type but bool is i1."""
    return I1 if t is BOOL else mem_type(t)


def impl_ret(t) -> L.Type:
    return I32 if t is UNIT else L.LiteralStructType([val_type(t), I32])


def pack_currency(code: str) -> int:
    b = code.encode("ascii")
    return (b[0] << 16) | (b[1] << 8) | b[2]


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
            phi = b.phi(vals[i + 2].type)
            phi.add_incoming(vals[i + 2], start)
            phi.add_incoming(got, go)
            vals[i + 2] = phi
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
        phi = b.phi(I32)
        phi.add_incoming(status, entry)
        phi.add_incoming(L.Constant(I32, 0), store)
        phi.add_incoming(L.Constant(I32, fn.memory_site + 1), oom)
        status = phi
    else:
        b.store(b.zext(v, I8) if fn.ret is BOOL else v, out)
    b.call(mb.free_all(), [arena])
    b.ret(status)


def owns_memory(t) -> bool:
    """Whether a value of type t holds text, arrays or maps (a result the caller must free)."""
    c = t.__class__
    return t is TEXT or c is ArrayT or c is MapT or c is RecordT and any(owns_memory(f) for f in t.fields.values())


class _ModuleBuilder:
    def __init__(self, module: L.Module, impls: dict):
        self.module = module
        self.impls = impls
        self.consts = 0
        self.intrinsics: dict = {}
        self.text: dict = {}
        self._maps = None
        self._snaps = None
        self.helpers: dict = {}  # key -> internal function (see `internal`)

    def internal(self, key: tuple, name: str, ret, params, build) -> L.Function:
        """The internal function for `key`, made on first use: declared, then filled by
        build(f), so that a recursive one can call itself (lwas.backend.mapgen, lwas.backend.snapgen)."""
        f = self.helpers.get(key)
        if f is None:
            f = self.helpers[key] = L.Function(self.module, L.FunctionType(ret, params),
                                               f"{name}.{len(self.helpers)}")
            f.linkage = "internal"
            build(f)
        return f

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
        r = b.trunc(b.select(neg, b.neg(mag), mag), I64)
        b.ret(b.insert_value(b.insert_value(L.Constant(res, None), r, 0), ok, 1))
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

    def libc(self, name: str) -> L.Function:
        """memcmp, memcpy, malloc or free from the C library (the process's, or the .so's)."""
        f = self.intrinsics.get(name)
        if f is None:
            ty = {"memcmp": L.FunctionType(I32, [PTR, PTR, I64]),
                  "memcpy": L.FunctionType(PTR, [PTR, PTR, I64]),
                  "malloc": L.FunctionType(PTR, [I64]),
                  "free": L.FunctionType(L.VoidType(), [PTR])}[name]
            f = self.intrinsics[name] = L.Function(self.module, ty, name)
        return f

    def alloc(self) -> L.Function:
        """`ptr lwas.alloc(ptr arena, i64 size)`: size bytes, freed with the arena. A block is
        16 bytes of header (the next block) then the payload. A failed malloc returns null and
        links nothing into the arena; every caller branches on it to its "memory" error site."""
        f = self.intrinsics.get("alloc")
        if f is None:
            f = self.intrinsics["alloc"] = L.Function(self.module, L.FunctionType(PTR, [PTR, I64]), "lwas.alloc")
            f.linkage = "internal"
            arena, size = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            block = b.call(self.libc("malloc"), [b.add(size, L.Constant(I64, 16))])
            ok = f.append_basic_block("ok")
            oom = f.append_basic_block("oom")
            b.cbranch(b.icmp_unsigned("==", b.ptrtoint(block, I64), L.Constant(I64, 0)), oom, ok)
            b.block.instructions[-1].set_weights([1, 1000000])
            b.position_at_end(oom)
            b.ret(L.Constant(PTR, None))
            b.position_at_end(ok)
            b.store(b.load(arena, typ=PTR), block)
            b.store(block, arena)
            used = b.gep(arena, [L.Constant(I32, 0), L.Constant(I32, 1)], source_etype=ARENA)
            b.store(b.add(b.load(used, typ=I64), b.add(size, L.Constant(I64, 16))), used)
            b.ret(b.gep(block, [L.Constant(I64, 16)], source_etype=I8))
        return f

    def free_all(self) -> L.Function:
        """`void lwas.free_all(ptr arena)`: frees every block of the arena."""
        f = self.intrinsics.get("free_all")
        if f is None:
            f = self.intrinsics["free_all"] = L.Function(self.module, L.FunctionType(L.VoidType(), [PTR]),
                                                         "lwas.free_all")
            f.linkage = "internal"
            b = L.IRBuilder(f.append_basic_block("entry"))
            loop = f.append_basic_block("loop")
            body = f.append_basic_block("body")
            end = f.append_basic_block("end")
            first = b.load(f.args[0], typ=PTR)
            b.branch(loop)
            b.position_at_end(loop)
            p = b.phi(PTR)
            p.add_incoming(first, f.entry_basic_block)
            b.cbranch(b.icmp_unsigned("==", b.ptrtoint(p, I64), L.Constant(I64, 0)), end, body)
            b.position_at_end(body)
            nxt = b.load(p, typ=PTR)
            b.call(self.libc("free"), [p])
            p.add_incoming(nxt, body)
            b.branch(loop)
            b.position_at_end(end)
            b.ret_void()
        return f

    def adopt(self, t) -> L.Function | None:
        """`{T, i1 ok} lwas.adopt.N(ptr arena, T v)`: v with every text, array and map node it
        holds copied into the arena (None: a value of type t points to nothing). What a kept
        value (lwas.runtime.state) may hold must outlive the buffers of the call that made it:
        parameters, and what the host hands back. A failed malloc returns ok = 0."""
        if not owns_memory(t):
            return None
        if t.__class__ is MapT:
            return self.maps.adopt(t)
        key = ("adopt", _shape(t))
        f = self.intrinsics.get(key)
        if f is not None:
            return f
        ty = mem_type(t)
        res = L.LiteralStructType([ty, I1])
        f = self.intrinsics[key] = L.Function(self.module, L.FunctionType(res, [PTR, ty]),
                                              f"lwas.adopt.{len(self.intrinsics)}")
        f.linkage = "internal"
        arena, v = f.args
        b = L.IRBuilder(f.append_basic_block("entry"))

        def guard(ok):
            good = f.append_basic_block("ok")
            bad = f.append_basic_block("oom")
            b.cbranch(ok, good, bad)
            b.position_at_end(bad)
            b.ret(L.Constant(res, None))
            b.position_at_end(good)

        if t.__class__ is RecordT:
            for i, ft in enumerate(t.fields.values()):
                x = self.adopt(ft)
                if x is not None:
                    r = b.call(x, [arena, b.extract_value(v, i)])
                    guard(b.extract_value(r, 1))
                    v = b.insert_value(v, b.extract_value(r, 0), i)
            b.ret(b.insert_value(b.insert_value(L.Constant(res, None), v, 0), L.Constant(I1, 1), 1))
            return f
        elem = I8 if t is TEXT else mem_type(t.elem)
        n = b.extract_value(v, 1)
        size = b.mul(n, b.ptrtoint(b.gep(L.Constant(PTR, None), [L.Constant(I64, 1)], source_etype=elem), I64))
        buf = b.call(self.alloc(), [arena, size])
        guard(b.icmp_unsigned("!=", b.ptrtoint(buf, I64), L.Constant(I64, 0)))
        b.call(self.libc("memcpy"), [buf, b.extract_value(v, 0), size])
        x = None if t is TEXT else self.adopt(t.elem)
        if x is not None:
            def adopt_elem(i):
                p = b.gep(buf, [i], source_etype=elem)
                r = b.call(x, [arena, b.load(p, typ=elem)])
                guard(b.extract_value(r, 1))
                b.store(b.extract_value(r, 0), p)

            _count_loop(b, f, n, ("adoptloop", "adoptelem", "adopted"), adopt_elem)
        v = b.insert_value(v, buf, 0)
        b.ret(b.insert_value(b.insert_value(L.Constant(res, None), v, 0), L.Constant(I1, 1), 1))
        return f

    def dup(self, t) -> L.Function:
        """`{T, i1 ok} lwas.dup.N(T v)` (T: the memory form of t, which holds text or arrays):
        v with every text and array copied into its own malloc'd buffer (what the wrapper hands
        the caller). When a malloc fails it frees every buffer it made and returns ok = 0."""
        if t.__class__ is MapT:
            return self.maps.dup(t)
        key = ("dup", _shape(t))
        f = self.intrinsics.get(key)
        if f is not None:
            return f
        ty = mem_type(t)
        res = L.LiteralStructType([ty, I1])
        f = self.intrinsics[key] = L.Function(self.module, L.FunctionType(res, [ty]),
                                              f"lwas.dup.{len(self.intrinsics)}")
        f.linkage = "internal"
        b = L.IRBuilder(f.append_basic_block("entry"))
        v = f.args[0]
        failed = L.Constant(res, None)  # ok = 0

        def on_fail(ok, cleanup):
            """Unless ok: run cleanup (frees what was made), return failed."""
            bad = f.append_basic_block("oom")
            good = f.append_basic_block("ok")
            b.cbranch(ok, good, bad)
            b.block.instructions[-1].set_weights([1000000, 1])
            b.position_at_end(bad)
            cleanup()
            b.ret(failed)
            b.position_at_end(good)

        if t.__class__ is RecordT:
            done = []  # (index, field type) of the fields already copied into v
            for i, ft in enumerate(t.fields.values()):
                if not owns_memory(ft):
                    continue
                r = b.call(self.dup(ft), [b.extract_value(v, i)])
                copied = v
                on_fail(b.extract_value(r, 1),
                        lambda copied=copied, done=list(done): [b.call(self.drop(dt), [b.extract_value(copied, j)])
                                                                for j, dt in done])
                v = b.insert_value(v, b.extract_value(r, 0), i)
                done.append((i, ft))
            b.ret(b.insert_value(b.insert_value(L.Constant(res, None), v, 0), L.Constant(I1, 1), 1))
            return f
        elem = I8 if t is TEXT else mem_type(t.elem)
        n = b.extract_value(v, 1)
        size = b.mul(n, b.ptrtoint(b.gep(L.Constant(PTR, None), [L.Constant(I64, 1)], source_etype=elem), I64))
        buf = b.call(self.libc("malloc"), [b.select(b.icmp_unsigned("==", size, L.Constant(I64, 0)),
                                                    L.Constant(I64, 1), size)])
        on_fail(b.icmp_unsigned("!=", b.ptrtoint(buf, I64), L.Constant(I64, 0)), lambda: None)
        b.call(self.libc("memcpy"), [buf, b.extract_value(v, 0), size])
        if t is not TEXT and owns_memory(t.elem):  # then copy each element's own buffers
            def drop_elem(j):
                b.call(self.drop(t.elem), [b.load(b.gep(buf, [j], source_etype=elem), typ=elem)])

            def copy_elem(i):
                p = b.gep(buf, [i], source_etype=elem)
                r = b.call(self.dup(t.elem), [b.load(p, typ=elem)])

                def undo():  # free elements 0 .. i-1 (copied), then buf
                    _count_loop(b, f, i, ("undoloop", "undoelem", "undone"), drop_elem)
                    b.call(self.libc("free"), [buf])

                on_fail(b.extract_value(r, 1), undo)
                b.store(b.extract_value(r, 0), p)

            _count_loop(b, f, n, ("copyloop", "copyelem", "copied"), copy_elem)
        v = b.insert_value(v, buf, 0)
        b.ret(b.insert_value(b.insert_value(L.Constant(res, None), v, 0), L.Constant(I1, 1), 1))
        return f

    def drop(self, t) -> L.Function:
        """`void lwas.drop.N(T v)`: frees every buffer of a value `dup` made (nested ones first)."""
        if t.__class__ is MapT:
            return self.maps.drop(t)
        key = ("drop", _shape(t))
        f = self.intrinsics.get(key)
        if f is not None:
            return f
        ty = mem_type(t)
        f = self.intrinsics[key] = L.Function(self.module, L.FunctionType(L.VoidType(), [ty]),
                                              f"lwas.drop.{len(self.intrinsics)}")
        f.linkage = "internal"
        b = L.IRBuilder(f.append_basic_block("entry"))
        v = f.args[0]
        if t.__class__ is RecordT:
            for i, ft in enumerate(t.fields.values()):
                if owns_memory(ft):
                    b.call(self.drop(ft), [b.extract_value(v, i)])
            b.ret_void()
            return f
        buf = b.extract_value(v, 0)
        if t is not TEXT and owns_memory(t.elem):
            elem = mem_type(t.elem)
            _count_loop(b, f, b.extract_value(v, 1), ("droploop", "dropelem", "dropped"),
                        lambda i: b.call(self.drop(t.elem), [b.load(b.gep(buf, [i], source_etype=elem), typ=elem)]))
        b.call(self.libc("free"), [buf])
        b.ret_void()
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


# ---------------------------------------------------------------- functions

class _FunctionBuilder:
    def __init__(self, mb: _ModuleBuilder, fn: ir.Function):
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

    def ret_status(self, status: int, value=None) -> None:
        if self.fn.ret is UNIT:
            self.b.ret(L.Constant(I32, status))
            return
        r = L.Constant(self.rtype, None)
        if value is not None:
            r = self.b.insert_value(r, value, 0)
        self.b.ret(self.b.insert_value(r, L.Constant(I32, status), 1))

    def fail(self, site: int) -> None:
        """Return the fault's status and continue emitting into a fresh (dead) block."""
        self.ret_status(site + 1)
        self.b.position_at_end(self.f.append_basic_block("dead"))

    def check(self, ok, site: int) -> None:
        """Branch to a fault at `site` unless `ok` (i1) holds; the fault path is cold."""
        bad = self.f.append_basic_block("fault")
        good = self.f.append_basic_block("ok")
        self.b.cbranch(ok, good, bad)
        self.b.block.instructions[-1].set_weights([1000000, 1])
        self.b.position_at_end(bad)
        self.ret_status(site + 1)
        self.b.position_at_end(good)

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
        bad = self.f.append_basic_block("propagate")
        good = self.f.append_basic_block("ok")
        self.b.cbranch(self.b.icmp_unsigned("==", status, L.Constant(I32, 0)), good, bad)
        self.b.block.instructions[-1].set_weights([1000000, 1])
        self.b.position_at_end(bad)
        if self.fn.ret is UNIT:
            self.b.ret(status)
        else:
            self.b.ret(self.b.insert_value(L.Constant(self.rtype, None), status, 1))
        self.b.position_at_end(good)
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
        phi = b.phi(left.type)
        phi.add_incoming(left, start)
        phi.add_incoming(right, rhs_end)
        return phi

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
        phi = b.phi(val_type(e.type))
        for v, blk in incoming:
            phi.add_incoming(v, blk)
        return phi

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
        ptr = b.phi(PTR)
        ptr.add_incoming(old_ptr, start)
        ptr.add_incoming(buf, grown)
        cap = b.phi(I64)
        cap.add_incoming(room, start)
        cap.add_incoming(want, grown)
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
        size = b.mul(n, b.ptrtoint(b.gep(L.Constant(PTR, None), [L.Constant(I64, 1)], source_etype=elem), I64))
        buf = self.alloc(size, site)
        b.call(self.mb.libc("memcpy"), [buf, b.extract_value(v, 0), size])
        if has_array(t.elem):
            def copy_elem(i):
                p = b.gep(buf, [i], source_etype=elem)
                b.store(self.copy(b.load(p, typ=elem), t.elem, site), p)

            _count_loop(b, self.f, n, ("copyloop", "copyelem", "copied"), copy_elem)
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
        return self.b.ptrtoint(self.b.gep(L.Constant(PTR, None), [L.Constant(I64, 1)], source_etype=mem_type(t)), I64)

    def alloc(self, size, site: int):
        """size bytes in the arena; a failed malloc faults at `site` (a "memory" site)."""
        buf = self.b.call(self.mb.alloc(), [self.arena, size])
        self.check(self.b.icmp_unsigned("!=", self.b.ptrtoint(buf, I64), L.Constant(I64, 0)), site)
        return buf

    def fminmax(self, which: str, a, x):
        """Python's min(a, x) / max(a, x): a unless x is strictly smaller / larger."""
        take = self.b.fcmp_ordered("<" if which == "min" else ">", x, a)
        return self.b.select(take, x, a)

    # ------------------------------------------------------------ primitives

    def prim(self, e: ir.Prim):
        op = e.op
        # Every operation evaluates its operands first, left to right (each one's faults surface
        # in that order), then checks its own faults: docs/language.md, "Evaluation order".
        args = [self.expr(a) for a in e.args]
        if op == "fail":
            self.fail(e.site)
            return L.Constant(val_type(e.type), None)
        b = self.b
        if op == "id":
            return args[0]
        if op in ("iadd", "isub", "imul", "neg"):
            if op == "neg":
                args = [L.Constant(I64, 0), args[0]]
            fn = {"iadd": b.sadd_with_overflow, "imul": b.smul_with_overflow}.get(op, b.ssub_with_overflow)
            r = fn(args[0], args[1])
            self.check(b.not_(b.extract_value(r, 1)), e.site)
            return b.extract_value(r, 0)
        if op == "add":  # proven not to overflow (loop counters)
            return b.add(args[0], args[1], flags=["nsw"])
        if op in ("idiv", "irem"):
            x, y = args
            self.check(b.icmp_signed("!=", y, L.Constant(I64, 0)), e.site)
            minus1 = b.icmp_signed("==", y, L.Constant(I64, -1))
            if op == "idiv":
                self.check(b.not_(b.and_(minus1, b.icmp_signed("==", x, L.Constant(I64, INT_MIN)))), e.arg)
                return b.sdiv(x, y)
            return b.srem(x, b.select(minus1, L.Constant(I64, 1), y))  # x % -1 == 0, even for INT_MIN
        if op == "iabs":
            x = args[0]
            self.check(b.icmp_signed("!=", x, L.Constant(I64, INT_MIN)), e.site)
            return b.select(b.icmp_signed("<", x, L.Constant(I64, 0)), b.neg(x), x)
        if op in ("imin", "imax"):
            take = b.icmp_signed("<" if op == "imin" else ">", args[1], args[0])
            return b.select(take, args[1], args[0])
        if op in ("fadd", "fsub", "fmul", "fdiv", "frem"):
            return getattr(b, op)(args[0], args[1])
        if op == "fneg":
            return b.fneg(args[0])
        if op in ("fmin", "fmax"):
            return self.fminmax(op[1:], args[0], args[1])
        if op in ("fabs", "fsqrt", "fexp", "fln", "ffloor", "fceil"):
            name = {"fln": "log", "fabs": "fabs"}.get(op, op[1:])
            return b.call(self.mb.intrinsic(f"llvm.{name}"), args)
        if op == "time_range":  # the instants a time can name: years 1 to 9999 (Python's datetime)
            x = args[0]
            self.check(b.and_(b.icmp_signed(">=", x, L.Constant(I64, TIME_MIN)),
                              b.icmp_signed("<=", x, L.Constant(I64, TIME_MAX))), e.site)
            return x
        if op == "host_append":
            return self.host_append(e, args)
        if op == "host_extern":
            return self.host_extern(e, args)
        if op == "host_now":
            return b.call(self.mb.host("lwas_rt_now"), [])
        if op == "btext":
            return b.select(args[0], self.mb.text_const("true"), self.mb.text_const("false"))
        if op == "itext":
            return self.itext(args[0], e.site)
        if op == "host_config_int":
            out = self.entry_alloca(I64, "config_int")
            name = args[0]
            status = b.call(self.mb.host("lwas_rt_config_int"),
                            [b.extract_value(name, 0), b.extract_value(name, 1), args[1], out])
            self.check(b.icmp_unsigned("==", status, L.Constant(I32, 0)), e.site)
            return b.load(out)
        if op == "host_has":  # 0: no, 1: yes, else a host failure
            key = args[1]
            status = b.call(self.mb.host("lwas_rt_ledger_has"),
                            [b.trunc(args[0], I32), b.extract_value(key, 0), b.extract_value(key, 1)])
            self.check(b.icmp_unsigned("<=", status, L.Constant(I32, 1)), e.site)
            return b.icmp_unsigned("==", status, L.Constant(I32, 1))
        if op == "host_metric":
            return b.call(self.mb.host("lwas_rt_metric"), [b.trunc(args[0], I32)])
        if op in ("host_config", "host_root"):  # text written by the host into *out
            out = self.entry_alloca(SLICE, "hosted")
            if op == "host_config":
                name = args[0]
                status = b.call(self.mb.host("lwas_rt_config"),
                                [b.extract_value(name, 0), b.extract_value(name, 1), out])
            else:
                status = b.call(self.mb.host("lwas_rt_ledger_root"), [b.trunc(args[0], I32), out])
            self.check(b.icmp_unsigned("==", status, L.Constant(I32, 0)), e.site)
            return self.adopt(b.load(out), TEXT, e.arg)
        if op == "itof":
            return b.sitofp(args[0], F64)
        if op == "ftoi":
            x = args[0]
            ok = b.and_(b.fcmp_ordered(">=", x, L.Constant(F64, -2.0 ** 63)),
                        b.fcmp_ordered("<", x, L.Constant(F64, 2.0 ** 63)))
            self.check(ok, e.site)
            return b.fptosi(x, I64)
        if op == "ftruth":
            x = args[0]
            ok = b.and_(b.fcmp_ordered(">=", x, L.Constant(F64, 0.0)), b.fcmp_ordered("<=", x, L.Constant(F64, 1.0)))
            self.check(ok, e.site)
            return x
        if op == "bool_to_truth":
            return b.uitofp(args[0], F64)
        if op == "not":
            return b.not_(args[0])
        if op == "tnot":
            return b.fsub(L.Constant(F64, 1.0), args[0])
        if op == "clamp01":
            x = args[0]
            self.check(b.fcmp_ordered("==", x, x), e.site)
            x = b.select(b.fcmp_ordered("<", x, L.Constant(F64, 0.0)), L.Constant(F64, 0.0), x)
            return b.select(b.fcmp_ordered(">", x, L.Constant(F64, 1.0)), L.Constant(F64, 1.0), x)
        if op == "ramp":
            return self.ramp(e, *args)
        if op in ("eq", "ne", "lt", "le", "gt", "ge"):
            return self.compare(e, op, args)
        if op == "field":
            rt = e.args[0].type
            return self.from_mem(b.extract_value(args[0], e.arg), list(rt.fields.values())[e.arg])
        if op == "set_field":
            ft = list(e.type.fields.values())[e.arg]
            return b.insert_value(args[0], self.to_mem(args[1], ft), e.arg)
        if op == "record":
            v = L.Constant(mem_type(e.type), None)
            for i, (a, ft) in enumerate(zip(args, e.type.fields.values())):
                v = b.insert_value(v, self.to_mem(a, ft), i)
            return v
        if op == "len":
            return b.extract_value(args[0], 1)
        if op == "index":
            arr, i = args
            elem = e.type
            if e.site >= 0:
                self.check(b.icmp_unsigned("<", i, b.extract_value(arr, 1)), e.site)
            p = b.gep(b.extract_value(arr, 0), [i], source_etype=mem_type(elem))
            return self.from_mem(b.load(p, typ=mem_type(elem)), elem)
        if op == "array":
            return self.array(e, args)
        if op == "copy":
            return self.copy(args[0], e.type, e.site)
        if op == "concat":  # text (bytes) or arrays (elements, shallow: see lower's ownership)
            x, y = args
            nx, ny = b.extract_value(x, 1), b.extract_value(y, 1)
            n = b.add(nx, ny)
            size = L.Constant(I64, 1) if e.type is TEXT else self.elem_size(e.type.elem)
            bx, by = b.mul(nx, size), b.mul(ny, size)
            buf = self.alloc(b.add(bx, by), e.site)
            b.call(self.mb.libc("memcpy"), [buf, b.extract_value(x, 0), bx])
            b.call(self.mb.libc("memcpy"), [b.gep(buf, [bx], source_etype=I8), b.extract_value(y, 0), by])
            return b.insert_value(b.insert_value(L.Constant(SLICE, None), buf, 0), n, 1)
        if op.startswith("map_"):
            return self.map_op(e, op, args)
        if op.startswith("m"):
            return self.money(e, op, args)
        if op == "cur_check":
            cur = b.extract_value(args[0], 1)
            self.check(b.icmp_unsigned("==", cur, L.Constant(I32, pack_currency(e.arg))), e.site)
            return args[0]
        raise Unsupported(f"the operation `{op}` is not compiled yet")

    def map_op(self, e: ir.Prim, op: str, args):
        """The map operations (lwas.backend.mapgen): map_get (a `key` fault when absent), map_get_or,
        map_has (key, map), map_len, map_insert and map_delete (new maps in the arena; map_insert
        with arg "owned" writes the state's own nodes in place: lwas.backend.inplace),
        map_keys and map_values (arrays in key order)."""
        b = self.b
        maps = self.mb.maps
        if op == "map_has":
            k, m = args
            t = e.args[1].type
            k = self.to_mem(k, t.key)
            return b.icmp_unsigned("!=", b.ptrtoint(b.call(maps.find(t), [m, k]), I64), L.Constant(I64, 0))
        t = e.args[0].type
        m = args[0]
        nt = maps.node_type(t)
        if op in ("map_get", "map_get_or"):
            node = b.call(maps.find(t), [m, self.to_mem(args[1], t.key)])
            found = b.icmp_unsigned("!=", b.ptrtoint(node, I64), L.Constant(I64, 0))
            if op == "map_get":
                self.check(found, e.site)
                p = b.gep(node, [L.Constant(I32, 0), L.Constant(I32, 4)], source_etype=nt)
                return self.from_mem(b.load(p, typ=mem_type(t.value)), t.value)
            hit = self.f.append_basic_block("map_hit")
            join = self.f.append_basic_block("map_join")
            start = b.block
            b.cbranch(found, hit, join)
            b.position_at_end(hit)
            p = b.gep(node, [L.Constant(I32, 0), L.Constant(I32, 4)], source_etype=nt)
            v = self.from_mem(b.load(p, typ=mem_type(t.value)), t.value)
            b.branch(join)
            b.position_at_end(join)
            phi = b.phi(val_type(t.value))
            phi.add_incoming(v, hit)
            phi.add_incoming(args[2], start)
            return phi
        if op == "map_len":
            return maps.size(b, t, m)
        if op == "map_insert":
            insert = maps.insert_owned(t) if e.arg == "owned" else maps.insert(t)
            r = b.call(insert, [self.arena, m, self.to_mem(args[1], t.key), self.to_mem(args[2], t.value)])
            self.check(b.icmp_unsigned("!=", b.ptrtoint(r, I64), L.Constant(I64, 0)), e.site)
            return r
        if op == "map_delete":
            r = b.call(maps.delete(t), [self.arena, m, self.to_mem(args[1], t.key)])
            self.check(b.extract_value(r, 1), e.site)
            return b.extract_value(r, 0)
        if op in ("map_first", "map_after"):
            nt_key = mem_type(t.key)
            bounded = op == "map_after"
            key = self.to_mem(args[1], t.key) if bounded else L.Constant(nt_key, None)
            r = b.call(maps.take(t), [self.arena, m, key, L.Constant(I1, int(bounded)), L.Constant(PTR, None),
                                      args[-1]])
            self.check(b.extract_value(r, 2), e.site)
            return b.extract_value(r, 0)
        if op in ("map_keys", "map_values"):
            elem = t.key if op == "map_keys" else t.value
            n = maps.size(b, t, m)
            buf = self.alloc(b.mul(n, self.elem_size(elem)), e.site)
            null = L.Constant(PTR, None)
            b.call(maps.fill(t), [m, buf if op == "map_keys" else null, null if op == "map_keys" else buf,
                                  L.Constant(I64, 0)])
            return b.insert_value(b.insert_value(L.Constant(SLICE, None), buf, 0), n, 1)
        raise Unsupported(f"the operation `{op}` is not compiled yet")

    def itext(self, x, site: int):
        """The decimal digits of an i64 (a '-' first when negative), written backwards into 20
        bytes of the arena; the magnitude is taken unsigned so INT_MIN needs no special case."""
        b = self.b
        buf = self.alloc(L.Constant(I64, 20), site)
        neg = b.icmp_signed("<", x, L.Constant(I64, 0))
        u0 = b.select(neg, b.sub(L.Constant(I64, 0), x), x)
        u_slot = self.entry_alloca(I64, "itext.u")
        pos_slot = self.entry_alloca(I64, "itext.pos")
        b.store(u0, u_slot)
        b.store(L.Constant(I64, 20), pos_slot)
        loop = self.f.append_basic_block("itext.loop")
        done = self.f.append_basic_block("itext.done")
        b.branch(loop)
        b.position_at_end(loop)
        u = b.load(u_slot)
        pos = b.sub(b.load(pos_slot), L.Constant(I64, 1))
        digit = b.trunc(b.add(b.urem(u, L.Constant(I64, 10)), L.Constant(I64, 48)), I8)
        b.store(digit, b.gep(buf, [pos], source_etype=I8))
        b.store(pos, pos_slot)
        rest = b.udiv(u, L.Constant(I64, 10))
        b.store(rest, u_slot)
        b.cbranch(b.icmp_unsigned("!=", rest, L.Constant(I64, 0)), loop, done)
        b.position_at_end(done)
        pos = b.load(pos_slot)
        minus = b.sub(pos, L.Constant(I64, 1))
        start = b.select(neg, minus, pos)
        with b.if_then(neg):
            b.store(L.Constant(I8, 45), b.gep(buf, [minus], source_etype=I8))
        ptr = b.gep(buf, [start], source_etype=I8)
        return b.insert_value(b.insert_value(L.Constant(SLICE, None), ptr, 0), b.sub(L.Constant(I64, 20), start), 1)

    def host_append(self, e: ir.Prim, args):
        """`i32 lwas_rt_append(i32 ledger, ptr entry)`: 0 appended, 1 the same entry was there
        already (idempotent retry), 2 another entry holds the key, anything else a host failure."""
        b = self.b
        t = e.args[1].type
        slot = self.entry_alloca(mem_type(t), "entry")
        b.store(args[1], slot)
        status = b.call(self.mb.host("lwas_rt_append"), [b.trunc(args[0], I32), slot])
        self.check(b.icmp_unsigned("!=", status, L.Constant(I32, 2)), e.site)
        self.check(b.icmp_unsigned("<=", status, L.Constant(I32, 1)), e.arg)
        return b.icmp_unsigned("==", status, L.Constant(I32, 0))

    def host_extern(self, e: ir.Prim, args):
        """`i32 lwas_rt_extern(i32 index, ptr argv, ptr out)`: argv holds one pointer per
        argument (each in its memory form); the host writes the result to out (text in it lives
        until the native call returns). Non-zero: the connector failed (a "host" fault)."""
        b = self.b
        vals = args[1:]
        n = max(len(vals), 1)
        argv = self.entry_alloca(L.ArrayType(I64, n), "argv")  # addresses, as the host reads them
        for i, (v, a) in enumerate(zip(vals, e.args[1:])):
            slot = self.entry_alloca(mem_type(a.type), f"arg{i}")
            b.store(self.to_mem(v, a.type), slot)
            at = b.gep(b.bitcast(argv, I64.as_pointer()), [L.Constant(I64, i)], source_etype=I64)
            b.store(b.ptrtoint(slot, I64), at)
        out = self.entry_alloca(mem_type(e.type), "extern_out")
        status = b.call(self.mb.host("lwas_rt_extern"), [b.trunc(args[0], I32), argv, out])
        self.check(b.icmp_unsigned("==", status, L.Constant(I32, 0)), e.site)
        return self.from_mem(self.adopt(b.load(out), e.type, e.arg), e.type)

    def ramp(self, e: ir.Prim, x, lo, hi):
        b = self.b
        lin = b.fdiv(b.fsub(x, lo), b.fsub(hi, lo))
        v = b.select(b.fcmp_ordered(">=", x, hi), L.Constant(F64, 1.0), lin)
        v = b.select(b.fcmp_ordered("<=", x, lo), L.Constant(F64, 0.0), v)
        self.check(b.fcmp_ordered("==", v, v), e.site)
        return v

    def compare(self, e: ir.Prim, op: str, args):
        b = self.b
        sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
        t = e.args[0].type
        x, y = args
        if t is FLOAT or t is TRUTH:
            return b.fcmp_ordered(sym, x, y) if op != "ne" else b.fcmp_unordered("!=", x, y)
        if t.__class__ is MoneyT:
            if e.arg >= 0:
                self.check(b.icmp_unsigned("==", b.extract_value(x, 1), b.extract_value(y, 1)), e.arg)
            return b.icmp_signed(sym, b.extract_value(x, 0), b.extract_value(y, 0))
        if t is TEXT:
            if op in ("eq", "ne"):
                eq = self.text_eq(x, y)
                return eq if op == "eq" else b.not_(eq)
            return b.icmp_signed(sym, self.text_cmp(x, y), L.Constant(I64, 0))
        if t is BOOL or t.__class__ is EnumT:
            return b.icmp_unsigned(sym, x, y)
        return b.icmp_signed(sym, x, y)

    def text_cmp(self, x, y):
        """<0, 0 or >0 as x orders before, with or after y: bytewise (memcmp compares unsigned
        bytes), a prefix first. On UTF-8 that is code-point order, the evaluator's (Python
        compares str by code points)."""
        b = self.b
        nx, ny = b.extract_value(x, 1), b.extract_value(y, 1)
        n = b.select(b.icmp_unsigned("<", nx, ny), nx, ny)
        r = b.sext(b.call(self.mb.libc("memcmp"), [b.extract_value(x, 0), b.extract_value(y, 0), n]), I64)
        by_len = b.sub(b.zext(b.icmp_unsigned(">", nx, ny), I64), b.zext(b.icmp_unsigned("<", nx, ny), I64))
        return b.select(b.icmp_signed("==", r, L.Constant(I64, 0)), by_len, r)

    def text_eq(self, x, y):
        b = self.b
        n = b.extract_value(x, 1)
        same_len = b.icmp_unsigned("==", n, b.extract_value(y, 1))
        start = b.block
        cmp_blk = self.f.append_basic_block("memcmp")
        end = self.f.append_basic_block("endcmp")
        b.cbranch(same_len, cmp_blk, end)
        b.position_at_end(cmp_blk)
        r = b.call(self.mb.libc("memcmp"), [b.extract_value(x, 0), b.extract_value(y, 0), n])
        eq = b.icmp_signed("==", r, L.Constant(I32, 0))
        b.branch(end)
        b.position_at_end(end)
        phi = b.phi(I1)
        phi.add_incoming(L.Constant(I1, 0), start)
        phi.add_incoming(eq, cmp_blk)
        return phi

    def array(self, e: ir.Prim, args: list):
        """An array literal (args: its elements, already evaluated in order)."""
        elem = e.type.elem
        if not all(_constant(a) for a in e.args):  # built at run time, in the arena
            assert e.site >= 0, "lower gives every run-time array literal a memory site"
            ty = mem_type(elem)
            n = len(args)
            size = self.b.ptrtoint(self.b.gep(L.Constant(PTR, None), [L.Constant(I64, max(n, 1))],
                                              source_etype=ty), I64)
            buf = self.alloc(size, e.site)
            for i, a in enumerate(args):
                self.b.store(self.to_mem(a, elem), self.b.gep(buf, [L.Constant(I64, i)], source_etype=ty))
            return self.b.insert_value(L.Constant(SLICE, [L.Constant(PTR, None), L.Constant(I64, n)]), buf, 0)
        values = []
        for a in e.args:  # constants: a private constant global
            while a.__class__ is ir.Prim and a.op == "id":
                a = a.args[0]
            values.append(L.Constant(I8, int(a.value)) if elem is BOOL else self.const(elem, a.value))
        g = self.mb.global_const(L.Constant(L.ArrayType(mem_type(elem), len(values)), values))
        return L.Constant(SLICE, [g.bitcast(PTR), L.Constant(I64, len(values))])

    def money(self, e: ir.Prim, op: str, args):
        b = self.b
        if op == "mmul" and e.args[0].type is INT:  # `int * money`: evaluated in that order
            args = [args[1], args[0]]
        if e.arg is not None and not isinstance(e.arg, str) and e.arg >= 0:  # currency check
            self.check(b.icmp_unsigned("==", b.extract_value(args[0], 1), b.extract_value(args[1], 1)), e.arg)
        if op == "mk_money":
            return b.insert_value(b.insert_value(L.Constant(MONEY, None), args[0], 0),
                                  L.Constant(I32, pack_currency(e.arg)), 1)
        if op == "mminor":
            return b.extract_value(args[0], 0)
        if op == "mcurrency":  # every money value has an ISO 4217 code (literals, from_minor, binding)
            index, text = self.mb.currencies()
            i = b.call(index, [b.extract_value(args[0], 1)])
            p = b.gep(text, [L.Constant(I64, 0), b.mul(i, L.Constant(I64, 3))], inbounds=True)
            return b.insert_value(L.Constant(SLICE, [L.Constant(PTR, None), L.Constant(I64, 3)]), p, 0)
        if op == "mfrom_minor":
            index, _ = self.mb.currencies()
            code = args[1]
            self.check(b.icmp_signed("==", b.extract_value(code, 1), L.Constant(I64, 3)), e.site)
            ptr = b.extract_value(code, 0)
            packed = L.Constant(I32, 0)
            for k in range(3):
                byte = b.load(b.gep(ptr, [L.Constant(I64, k)], source_etype=I8), typ=I8)
                packed = b.or_(b.shl(packed, L.Constant(I32, 8)), b.zext(byte, I32))
            self.check(b.icmp_signed(">=", b.call(index, [packed]), L.Constant(I64, 0)), e.site)
            return b.insert_value(b.insert_value(L.Constant(MONEY, None), args[0], 0), packed, 1)
        x = b.extract_value(args[0], 0)
        cur = b.extract_value(args[0], 1)
        if op in ("madd", "msub", "mmul", "mneg", "mabs"):
            if op == "mabs":
                self.check(b.icmp_signed("!=", x, L.Constant(I64, INT_MIN)), e.site)
                r = b.select(b.icmp_signed("<", x, L.Constant(I64, 0)), b.neg(x), x)
            else:
                y = args[1] if op == "mmul" else (
                    b.extract_value(args[1], 0) if op != "mneg" else x)
                if op == "mneg":
                    x, y = L.Constant(I64, 0), y
                fn = {"madd": b.sadd_with_overflow, "mmul": b.smul_with_overflow}.get(op, b.ssub_with_overflow)
                rr = fn(x, y)
                self.check(b.not_(b.extract_value(rr, 1)), e.site)
                r = b.extract_value(rr, 0)
            return b.insert_value(b.insert_value(L.Constant(MONEY, None), r, 0), cur, 1)
        if op == "mdiv":
            y = b.extract_value(args[1], 0)
            self.check(b.icmp_signed("!=", y, L.Constant(I64, 0)), e.site)
            return b.fdiv(b.sitofp(x, F64), b.sitofp(y, F64))
        if op in ("mmin", "mmax"):
            y = b.extract_value(args[1], 0)
            take = b.icmp_signed("<" if op == "mmin" else ">", y, x)
            return b.select(take, args[1], args[0])
        if op == "mscale":
            r = b.call(self.mb.scale(), [x, args[1]])
            self.check(b.extract_value(r, 1), e.site)
            return b.insert_value(b.insert_value(L.Constant(MONEY, None), b.extract_value(r, 0), 0), cur, 1)
        raise Unsupported(f"the money operation `{op}` is not compiled yet")




def _count_loop(b: L.IRBuilder, f: L.Function, n, names: tuple[str, str, str], body) -> None:
    """Emits `for i in 0..n { body(i) }` (n unsigned) and leaves b after the loop. `body` may
    branch away and continue in other blocks; the back edge starts from wherever it ends."""
    start = b.block
    loop, blk, end = (f.append_basic_block(name) for name in names)
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(L.Constant(I64, 0), start)
    b.cbranch(b.icmp_unsigned("<", i, n), blk, end)
    b.position_at_end(blk)
    body(i)
    i.add_incoming(b.add(i, L.Constant(I64, 1)), b.block)
    b.branch(loop)
    b.position_at_end(end)

def _shape(t) -> str:
    """The memory layout of a type holding text or arrays, as `dup`/`drop` see it: types of one
    shape share those helpers."""
    c = t.__class__
    if t is TEXT:
        return "text"
    if c is ArrayT:
        return f"[{_shape(t.elem)}]" if owns_memory(t.elem) else f"[{mem_type(t.elem)}]"
    if c is MapT:
        return f"map{t!r}"
    if c is RecordT:
        return "{" + ",".join(_shape(ft) if owns_memory(ft) else str(mem_type(ft))
                              for ft in t.fields.values()) + "}"
    return str(mem_type(t))


def has_array(t) -> bool:
    """Whether a value of type t holds arrays (what `copy` copies)."""
    c = t.__class__
    return c is ArrayT or c is RecordT and any(has_array(f) for f in t.fields.values())


def _constant(x) -> bool:
    """A literal, possibly behind an identity conversion."""
    while x.__class__ is ir.Prim and x.op == "id":
        x = x.args[0]
    return x.__class__ is ir.Const
