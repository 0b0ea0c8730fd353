"""Native snapshot codecs: a service's state to and from the ledger's canonical value encoding.

A snapshot holds the committed state encoded exactly as lwas.runtime.ledger.encode_value
encodes a value of the state's TypeDesc (big-endian integers and floats, text as a u32 length
and UTF-8 bytes, money as the minor units and three currency letters, an enum as its variant's
name, arrays and maps with a u32 count, maps in ascending key order, records field by field).
Going through Python values cost ~20 µs per state entry each way (a million transactions in
the economy's state: 21 s to write a snapshot, 30 s to start from one). These functions do it
in native code, straight from and into the kept state (lwas.runtime.state):

    i32 SNAP_ENCODE + svc(ptr state, ptr buf)          buf: {ptr data, i64 len, i64 cap},
                                                        zeroed; data is malloc'd (free it)
    i32 SNAP_DECODE + svc(ptr arena, ptr data, i64 len, ptr out)

Both return 0, or 1 when they cannot (encode: out of memory, a NaN, a text over 4 GiB;
decode: bytes that are not one canonical value — truncated, trailing, keys out of order, a bool
byte other than 0/1, a NaN, a malformed currency, an unknown variant — or out of memory). The
runtime then takes the Python path, which says exactly what is wrong. Decoding allocates in the
given arena (the new heap), so the result is a kept state like any other; a map is rebuilt as
a perfectly balanced tree straight from its sorted entries (O(n), no rebalancing).

The output is byte for byte what encode_value gives (tests/test_snapshot.py checks it against
that independent encoder), so snapshots written either way read either way.
"""
from __future__ import annotations

from llvmlite import ir as L

from lwas.backend.emit import (F64, I1, I8, I16, I32, I64, PTR, SLICE, const as _c, count_loop, mem_type, ret_struct,
                               sizeof, unless)
from lwas.backend.mapgen import KEY, LEFT, RIGHT, VALUE
from lwas.semantics.types import BOOL, FLOAT, INT, TEXT, TIME, TRUTH, UNIT, ArrayT, EnumT, MapT, MoneyT, RecordT

BUF = L.LiteralStructType([PTR, I64, I64])  # data, len, cap
CURSOR = L.LiteralStructType([PTR, PTR])  # next byte, end


def min_size(t) -> int:
    """The fewest bytes a value of t encodes to (lwas.runtime.ledger.min_size, on types)."""
    if t in (INT, FLOAT, TRUTH, TIME):
        return 8
    if t is BOOL:
        return 1
    c = t.__class__
    if t is TEXT or c in (ArrayT, MapT):
        return 4
    if c is MoneyT:
        return 11
    if c is EnumT:
        return 2
    if c is RecordT:
        return sum(min_size(f) for f in t.fields.values())
    return 0


class Snaps:
    """The codec functions of one module, one per type shape, built on first use."""

    def __init__(self, mb):
        self.mb = mb

    def _fn(self, what: str, t, ret, params, build):
        return self.mb.internal(("snap", what, repr(t)), f"lwas.snap.{what}", ret, params, build)

    def _libc(self, name: str, ty) -> L.Function:
        g = self.mb.module.globals.get(name)
        return g if g is not None else L.Function(self.mb.module, ty, name)

    def _bswap(self, b, x):
        f = self.mb.module.declare_intrinsic("llvm.bswap", [x.type])
        return b.call(f, [x])

    @staticmethod
    def _slot(b, ty):
        """A stack slot for a ty, allocated in the function's entry block."""
        entry = b.function.entry_basic_block
        with b.goto_block(entry):
            if entry.instructions:
                b.position_before(entry.instructions[0])
            return b.alloca(ty)

    @staticmethod
    def _field(b, ty, p, i: int):
        """Field i of the ty at p (an opaque pointer, or a slot's typed one)."""
        if not p.type.is_opaque:
            return b.gep(p, [_c(0, I32), _c(i, I32)])
        return b.gep(p, [_c(0, I32), _c(i, I32)], source_etype=ty)

    # ------------------------------------------------------------ exports

    def exports(self, encode_name: str, decode_name: str, state) -> None:
        """The two exported functions of a service whose state has type `state` (a RecordT)."""
        m = self.mb.module
        f = L.Function(m, L.FunctionType(I32, [PTR, PTR]), encode_name)
        b = L.IRBuilder(f.append_basic_block("entry"))
        ok = b.call(self.encoder(state), [f.args[1], f.args[0]])
        b.ret(b.select(ok, _c(0, I32), _c(1, I32)))

        f = L.Function(m, L.FunctionType(I32, [PTR, PTR, I64, PTR]), decode_name)
        arena, data, n, out = f.args
        b = L.IRBuilder(f.append_basic_block("entry"))
        cur = self._slot(b, CURSOR)
        b.store(data, self._field(b, CURSOR, cur, 0))
        b.store(b.gep(data, [n], source_etype=I8), self._field(b, CURSOR, cur, 1))
        ok = b.call(self.decoder(state), [arena, cur, out])
        rest = b.icmp_unsigned("==", b.load(self._field(b, CURSOR, cur, 0), typ=PTR),
                               b.load(self._field(b, CURSOR, cur, 1), typ=PTR))
        b.ret(b.select(b.and_(ok, rest), _c(0, I32), _c(1, I32)))

    # ------------------------------------------------------------ writing

    def _reserve(self):
        """`ptr reserve(ptr buf, i64 n)`: where n more bytes go (len advanced), null when out of memory."""
        def build(f):
            buf, n = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            data_p, len_p, cap_p = (self._field(b, BUF, buf, i) for i in range(3))
            used, cap = b.load(len_p, typ=I64), b.load(cap_p, typ=I64)
            need = b.add(used, n)
            grow, ready = f.append_basic_block("grow"), f.append_basic_block("ready")
            b.cbranch(b.icmp_unsigned(">", need, cap), grow, ready)
            b.position_at_end(grow)
            twice = b.mul(cap, _c(2))
            size = b.select(b.icmp_unsigned(">", twice, need), twice, need)
            size = b.select(b.icmp_unsigned("<", size, _c(4096)), _c(4096), size)
            realloc = self._libc("realloc", L.FunctionType(PTR, [PTR, I64]))
            p = b.call(realloc, [b.load(data_p, typ=PTR), size])
            oom, grown = f.append_basic_block("oom"), f.append_basic_block("grown")
            b.cbranch(b.icmp_unsigned("==", b.ptrtoint(p, I64), _c(0)), oom, grown)
            b.position_at_end(oom)
            b.ret(L.Constant(PTR, None))
            b.position_at_end(grown)
            b.store(p, data_p)
            b.store(size, cap_p)
            b.branch(ready)
            b.position_at_end(ready)
            b.store(need, len_p)
            b.ret(b.gep(b.load(data_p, typ=PTR), [used], source_etype=I8))
        return self._fn("reserve", None, PTR, [PTR, I64], build)

    def _put(self, b, f, buf, value, width: int) -> None:
        """Append value (an integer of `width` bytes) big-endian; return 0 from f when out of memory."""
        at = b.call(self._reserve(), [buf, _c(width)])
        self._or_fail(b, f, b.icmp_unsigned("!=", b.ptrtoint(at, I64), _c(0)))
        b.store(value if width == 1 else self._bswap(b, value), at, align=1)

    @staticmethod
    def _or_fail(b, f, ok) -> None:
        """Go on where ok holds; else return 0 (cannot) from f, an i1 codec function."""
        unless(b, f, ok, lambda: b.ret(_c(0, I1)), ("ok", "fail"))

    def encoder(self, t) -> L.Function:
        """`i1 enc(ptr buf, ptr value)`: append the encoding of *value (t's memory form)."""
        def build(f):
            buf, p = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            self._encode(b, f, t, buf, p)
            b.ret(_c(1, I1))
        return self._fn("enc", t, I1, [PTR, PTR], build)

    def _encode(self, b, f, t, buf, p) -> None:
        if t in (INT, TIME):
            self._put(b, f, buf, b.load(p, typ=I64), 8)
        elif t in (FLOAT, TRUTH):
            x = b.load(p, typ=F64)
            self._or_fail(b, f, b.fcmp_ordered("ord", x, x))  # NaN is not a value
            self._put(b, f, buf, b.bitcast(x, I64), 8)
        elif t is BOOL:
            self._put(b, f, buf, b.load(p, typ=I8), 1)
        elif t is TEXT:
            self._bytes(b, f, buf, p)
        elif t is UNIT:
            pass
        else:
            c = t.__class__
            if c is MoneyT:
                self._put(b, f, buf, b.load(self._field(b, mem_type(t), p, 0), typ=I64), 8)
                cur = b.load(self._field(b, mem_type(t), p, 1), typ=I32)
                for shift in (16, 8, 0):
                    self._put(b, f, buf, b.trunc(b.lshr(cur, _c(shift, I32)), I8), 1)
            elif c is EnumT:
                self._variant(b, f, t, buf, b.load(p, typ=I32))
            elif c is RecordT:
                ty = mem_type(t)
                for i, ft in enumerate(t.fields.values()):
                    self._or_fail(b, f, b.call(self.encoder(ft), [buf, self._field(b, ty, p, i)]))
            elif c is ArrayT:
                self._array(b, f, t, buf, p)
            elif c is MapT:
                root = b.load(p, typ=PTR)
                self._put(b, f, buf, b.trunc(self.mb.maps.size(b, t, root), I32), 4)
                self._or_fail(b, f, b.call(self._walk(t), [buf, root]))
            else:  # pragma: no cover - every type a state can hold is above
                raise TypeError(f"no snapshot encoding for {t!r}")

    def _bytes(self, b, f, buf, p) -> None:
        """A text (SLICE at p): its u32 length, then its bytes."""
        ptr = b.load(self._field(b, SLICE, p, 0), typ=PTR)
        n = b.load(self._field(b, SLICE, p, 1), typ=I64)
        self._or_fail(b, f, b.icmp_unsigned("<", n, _c(1 << 32)))
        self._put(b, f, buf, b.trunc(n, I32), 4)
        at = b.call(self._reserve(), [buf, n])
        self._or_fail(b, f, b.icmp_unsigned("!=", b.ptrtoint(at, I64), _c(0)))
        b.call(self.mb.libc("memcpy"), [at, ptr, n])

    def _variant(self, b, f, t: EnumT, buf, tag) -> None:
        """An enum's variant name: u16 length, then its UTF-8 bytes."""
        names = [self.mb.text_const(v) for v in t.variants]
        table = self.mb.global_const(L.Constant(L.ArrayType(SLICE, len(names)), names))
        at = b.gep(table, [_c(0), b.zext(tag, I64)])  # (a global's pointer is typed)
        n = b.load(self._field(b, SLICE, at, 1), typ=I64)
        self._put(b, f, buf, b.trunc(n, I16), 2)
        dst = b.call(self._reserve(), [buf, n])
        self._or_fail(b, f, b.icmp_unsigned("!=", b.ptrtoint(dst, I64), _c(0)))
        b.call(self.mb.libc("memcpy"), [dst, b.load(self._field(b, SLICE, at, 0), typ=PTR), n])

    def _array(self, b, f, t: ArrayT, buf, p) -> None:
        data = b.load(self._field(b, SLICE, p, 0), typ=PTR)
        n = b.load(self._field(b, SLICE, p, 1), typ=I64)
        self._put(b, f, buf, b.trunc(n, I32), 4)
        et = mem_type(t.elem)

        def each(i):
            self._or_fail(b, f, b.call(self.encoder(t.elem), [buf, b.gep(data, [i], source_etype=et)]))
        count_loop(b, f, n, ("elems", "elem", "elems_done"), each)

    def _walk(self, t: MapT) -> L.Function:
        """`i1 walk(ptr buf, ptr node)`: the subtree's keys and values in ascending key order."""
        def build(f):
            buf, node = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            done, walk = f.append_basic_block("done"), f.append_basic_block("walk")
            b.cbranch(b.icmp_unsigned("==", b.ptrtoint(node, I64), _c(0)), done, walk)
            b.position_at_end(done)
            b.ret(_c(1, I1))
            b.position_at_end(walk)
            nt = self.mb.maps.node_type(t)
            self._or_fail(b, f, b.call(f, [buf, b.load(self._field(b, nt, node, LEFT), typ=PTR)]))
            self._or_fail(b, f, b.call(self.encoder(t.key), [buf, self._field(b, nt, node, KEY)]))
            self._or_fail(b, f, b.call(self.encoder(t.value), [buf, self._field(b, nt, node, VALUE)]))
            self._or_fail(b, f, b.call(f, [buf, b.load(self._field(b, nt, node, RIGHT), typ=PTR)]))
            b.ret(_c(1, I1))
        return self._fn("walk", t, I1, [PTR, PTR], build)

    # ------------------------------------------------------------ reading

    def _take(self):
        """`ptr take(ptr cursor, i64 n)`: the next n bytes (the cursor moves past them), or null
        when fewer are left."""
        def build(f):
            cur, n = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            at_p, end_p = self._field(b, CURSOR, cur, 0), self._field(b, CURSOR, cur, 1)
            at, end = b.load(at_p, typ=PTR), b.load(end_p, typ=PTR)
            left = b.sub(b.ptrtoint(end, I64), b.ptrtoint(at, I64))
            short, enough = f.append_basic_block("short"), f.append_basic_block("enough")
            b.cbranch(b.icmp_unsigned(">", n, left), short, enough)
            b.position_at_end(short)
            b.ret(L.Constant(PTR, None))
            b.position_at_end(enough)
            b.store(b.gep(at, [n], source_etype=I8), at_p)
            b.ret(at)
        return self._fn("take", None, PTR, [PTR, I64], build)

    def _get(self, b, f, cur, ty, width: int):
        """The next big-endian integer of `width` bytes (as ty); return 0 from f when short."""
        at = b.call(self._take(), [cur, _c(width)])
        self._or_fail(b, f, b.icmp_unsigned("!=", b.ptrtoint(at, I64), _c(0)))
        x = b.load(at, typ=ty, align=1)
        return x if width == 1 else self._bswap(b, x)

    def _left(self, b, cur):
        at = b.load(self._field(b, CURSOR, cur, 0), typ=PTR)
        end = b.load(self._field(b, CURSOR, cur, 1), typ=PTR)
        return b.sub(b.ptrtoint(end, I64), b.ptrtoint(at, I64))

    def decoder(self, t) -> L.Function:
        """`i1 dec(ptr arena, ptr cursor, ptr out)`: read one value of t into *out (memory form)."""
        def build(f):
            arena, cur, out = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            self._decode(b, f, t, arena, cur, out)
            b.ret(_c(1, I1))
        return self._fn("dec", t, I1, [PTR, PTR, PTR], build)

    def _decode(self, b, f, t, arena, cur, out) -> None:
        if t in (INT, TIME):
            b.store(self._get(b, f, cur, I64, 8), out)
        elif t in (FLOAT, TRUTH):
            x = b.bitcast(self._get(b, f, cur, I64, 8), F64)
            self._or_fail(b, f, b.fcmp_ordered("ord", x, x))
            b.store(x, out)
        elif t is BOOL:
            x = self._get(b, f, cur, I8, 1)
            self._or_fail(b, f, b.icmp_unsigned("<=", x, _c(1, I8)))
            b.store(x, out)
        elif t is TEXT:
            n = b.zext(self._get(b, f, cur, I32, 4), I64)
            src = b.call(self._take(), [cur, n])
            self._or_fail(b, f, b.icmp_unsigned("!=", b.ptrtoint(src, I64), _c(0)))
            dst = b.call(self.mb.alloc(), [arena, n])
            self._or_fail(b, f, b.icmp_unsigned("!=", b.ptrtoint(dst, I64), _c(0)))
            b.call(self.mb.libc("memcpy"), [dst, src, n])
            b.store(dst, self._field(b, SLICE, out, 0))
            b.store(n, self._field(b, SLICE, out, 1))
        elif t is UNIT:
            pass
        else:
            c = t.__class__
            if c is MoneyT:
                ty = mem_type(t)
                b.store(self._get(b, f, cur, I64, 8), self._field(b, ty, out, 0))
                packed = _c(0, I32)
                for _ in range(3):
                    ch = self._get(b, f, cur, I8, 1)
                    upper = b.and_(b.icmp_unsigned(">=", ch, _c(ord("A"), I8)), b.icmp_unsigned("<=", ch, _c(ord("Z"), I8)))
                    self._or_fail(b, f, upper)
                    packed = b.or_(b.shl(packed, _c(8, I32)), b.zext(ch, I32))
                b.store(packed, self._field(b, ty, out, 1))
            elif c is EnumT:
                self._read_variant(b, f, t, cur, out)
            elif c is RecordT:
                ty = mem_type(t)
                for i, ft in enumerate(t.fields.values()):
                    self._or_fail(b, f, b.call(self.decoder(ft), [arena, cur, self._field(b, ty, out, i)]))
            elif c is ArrayT:
                self._read_array(b, f, t, arena, cur, out)
            elif c is MapT:
                n = b.zext(self._get(b, f, cur, I32, 4), I64)
                self._or_fail(b, f, b.icmp_unsigned("<=", n, self._left(b, cur)))  # every entry takes a byte
                pt = L.LiteralStructType([I1, mem_type(t.key)])
                prev = self._slot(b, pt)
                b.store(L.Constant(pt, None), prev)
                r = b.call(self._build(t), [arena, cur, n, prev])
                self._or_fail(b, f, b.extract_value(r, 1))
                b.store(b.extract_value(r, 0), out)
            else:  # pragma: no cover
                raise TypeError(f"no snapshot encoding for {t!r}")

    def _read_variant(self, b, f, t: EnumT, cur, out) -> None:
        n = b.zext(self._get(b, f, cur, I16, 2), I64)
        name = b.call(self._take(), [cur, n])
        self._or_fail(b, f, b.icmp_unsigned("!=", b.ptrtoint(name, I64), _c(0)))
        for i, v in enumerate(t.variants):
            data = v.encode("utf-8")
            lit = self.mb.text_const(v)
            same_len = b.icmp_unsigned("==", n, _c(len(data)))
            hit, miss = f.append_basic_block(f"variant{i}"), f.append_basic_block(f"not_variant{i}")
            check = f.append_basic_block(f"check_variant{i}")
            b.cbranch(same_len, check, miss)
            b.position_at_end(check)
            c = b.call(self.mb.libc("memcmp"), [name, b.extract_value(lit, 0), _c(len(data))])
            b.cbranch(b.icmp_signed("==", c, _c(0, I32)), hit, miss)
            b.position_at_end(hit)
            b.store(_c(i, I32), out)
            b.ret(_c(1, I1))
            b.position_at_end(miss)
        b.ret(_c(0, I1))  # no variant of that name
        b.position_at_end(f.append_basic_block("unreachable"))

    def _read_array(self, b, f, t: ArrayT, arena, cur, out) -> None:
        n = b.zext(self._get(b, f, cur, I32, 4), I64)
        least = min_size(t.elem)
        bound = b.mul(n, _c(least)) if least else n
        limit = self._left(b, cur) if least else _c(1 << 20)
        self._or_fail(b, f, b.icmp_unsigned("<=", bound, limit))  # a forged count allocates nothing
        et = mem_type(t.elem)
        size = b.mul(n, sizeof(b, et))
        data = b.call(self.mb.alloc(), [arena, size])
        self._or_fail(b, f, b.icmp_unsigned("!=", b.ptrtoint(data, I64), _c(0)))

        def each(i):
            self._or_fail(b, f, b.call(self.decoder(t.elem), [arena, cur, b.gep(data, [i], source_etype=et)]))
        count_loop(b, f, n, ("items", "item", "items_done"), each)
        b.store(data, self._field(b, SLICE, out, 0))
        b.store(n, self._field(b, SLICE, out, 1))

    def _build(self, t: MapT) -> L.Function:
        """`{ptr, i1 ok} build(ptr arena, ptr cursor, i64 n, ptr prev)`: the next n entries
        (ascending keys, checked against *prev = {has, key}) as a balanced tree: the first n/2
        on the left, then the root's entry, then the rest on the right."""
        res = L.LiteralStructType([PTR, I1])

        def build(f):
            arena, cur, n, prev = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            null = L.Constant(PTR, None)

            def check(ok):
                unless(b, f, ok, lambda: ret_struct(b, res, null, _c(0, I1)), ("ok", "fail"))

            empty, some = f.append_basic_block("empty"), f.append_basic_block("some")
            b.cbranch(b.icmp_unsigned("==", n, _c(0)), empty, some)
            b.position_at_end(empty)
            ret_struct(b, res, null, _c(1, I1))
            b.position_at_end(some)
            half = b.udiv(n, _c(2))
            left = b.call(f, [arena, cur, half, prev])
            check(b.extract_value(left, 1))
            kt, vt = mem_type(t.key), mem_type(t.value)
            k, v = self._slot(b, kt), self._slot(b, vt)
            check(b.call(self.decoder(t.key), [arena, cur, k]))
            pt = L.LiteralStructType([I1, kt])
            has, last = self._field(b, pt, prev, 0), self._field(b, pt, prev, 1)
            key = b.load(k, typ=kt)
            first, later = f.append_basic_block("first_key"), f.append_basic_block("later_key")
            b.cbranch(b.load(has, typ=I1), later, first)
            b.position_at_end(later)  # strictly ascending: one order, no duplicate
            check(b.icmp_signed("<", self.mb.maps.cmp(b, t, b.load(last, typ=kt), key), _c(0)))
            b.branch(first)
            b.position_at_end(first)
            b.store(_c(1, I1), has)
            b.store(key, last)
            check(b.call(self.decoder(t.value), [arena, cur, v]))
            right = b.call(f, [arena, cur, b.sub(b.sub(n, half), _c(1)), prev])
            check(b.extract_value(right, 1))
            node = b.call(self.mb.maps.node(t), [arena, key, b.load(v, typ=vt), b.extract_value(left, 0),
                                                  b.extract_value(right, 0)])
            check(b.icmp_unsigned("!=", b.ptrtoint(node, I64), _c(0)))
            ret_struct(b, res, node, _c(1, I1))
        return self._fn("build", t, res, [PTR, PTR, I64, PTR], build)
