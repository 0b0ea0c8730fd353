"""LLVM building blocks shared by the back end's code generators (codegen and its modules,
mapgen, snapgen, budget).

The native forms of LwaS types (lwas.abi) as llvmlite types, and the few emitters each of those
modules needs in the same shape: leaving through a failure block (`unless`, `cold_path`), a
counted loop, returning a struct, sizeof, and the bytewise order of two texts. They sit below
codegen so that the modules codegen builds on can import them without a cycle.
"""
from __future__ import annotations

from llvmlite import ir as L

from lwas.backend.ir import Unsupported
from lwas.semantics.types import BOOL, FLOAT, INT, TEXT, TIME, TRUTH, UNIT, ArrayT, EnumT, MapT, MoneyT, RecordT

I1, I8, I16, I32, I64 = L.IntType(1), L.IntType(8), L.IntType(16), L.IntType(32), L.IntType(64)
F64 = L.DoubleType()
PTR = L.PointerType()
MONEY = L.LiteralStructType([I64, I32])
SLICE = L.LiteralStructType([PTR, I64])  # text and arrays
# The head of the arena's list of blocks, its bytes, and its edit number (lwas.backend.mapgen.insert_owned;
# 0 but in a kept state's heap).
ARENA = L.LiteralStructType([PTR, I64, I64])


def const(v, t=I64) -> L.Constant:
    return L.Constant(t, v)


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
    """What an impl returns: {result, i32 status}, or the status alone for a unit result."""
    return I32 if t is UNIT else L.LiteralStructType([val_type(t), I32])


def sizeof(b: L.IRBuilder, ty, count: int = 1):
    """count * sizeof(ty) as an i64 (the null-GEP idiom)."""
    return b.ptrtoint(b.gep(L.Constant(PTR, None), [L.Constant(I64, count)], source_etype=ty), I64)


def ret_struct(b: L.IRBuilder, res, *values) -> None:
    """Return the struct res made of values, field by field."""
    v = L.Constant(res, None)
    for i, x in enumerate(values):
        v = b.insert_value(v, x, i)
    b.ret(v)


def phi(b: L.IRBuilder, ty, *incoming):
    """A phi of type ty at b, with one (value, block) pair per predecessor."""
    p = b.phi(ty)
    for v, blk in incoming:
        p.add_incoming(v, blk)
    return p


def unless(b: L.IRBuilder, f: L.Function, ok, fail, names=("ok", "oom")) -> None:
    """Go on where ok (i1) holds; where it does not, fail() emits the way out (a return). The
    blocks are made in the order of `names`: the one that goes on, then the failure."""
    good = f.append_basic_block(names[0])
    bad = f.append_basic_block(names[1])
    b.cbranch(ok, good, bad)
    b.position_at_end(bad)
    fail()
    b.position_at_end(good)


def cold_path(b: L.IRBuilder, f: L.Function, cond, fail, names=("fault", "ok"), when: bool = False) -> None:
    """Leave through a cold block where cond (i1) is `when`: fail() emits its end (a return);
    b goes on where it is not. The cold block (names[0]) is made first, then names[1]; the
    branch weights tell LLVM which way is hot."""
    cold = f.append_basic_block(names[0])
    warm = f.append_basic_block(names[1])
    if when:
        b.cbranch(cond, cold, warm)
        b.block.instructions[-1].set_weights([1, 1000000])
    else:
        b.cbranch(cond, warm, cold)
        b.block.instructions[-1].set_weights([1000000, 1])
    b.position_at_end(cold)
    fail()
    b.position_at_end(warm)


def count_loop(b: L.IRBuilder, f: L.Function, n, names: tuple[str, str, str], body) -> None:
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


def text_cmp(b: L.IRBuilder, memcmp: L.Function, x, y):
    """<0, 0 or >0 (i64) as text x orders before, with or after text y: bytewise (memcmp
    compares unsigned bytes), a prefix first. On UTF-8 that is code-point order, the
    evaluator's (Python compares str by code points)."""
    nx, ny = b.extract_value(x, 1), b.extract_value(y, 1)
    n = b.select(b.icmp_unsigned("<", nx, ny), nx, ny)
    r = b.sext(b.call(memcmp, [b.extract_value(x, 0), b.extract_value(y, 0), n]), I64)
    by_len = b.sub(b.zext(b.icmp_unsigned(">", nx, ny), I64), b.zext(b.icmp_unsigned("<", nx, ny), I64))
    return b.select(b.icmp_signed("==", r, L.Constant(I64, 0)), by_len, r)
