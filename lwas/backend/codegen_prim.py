"""The primitive operations of `ir.Prim` (ir.py lists them): a mixin of the function builder.

Split from lwas.backend.codegen_fn, which walks statements and expressions, because the
operations are many and each is local: integer and float arithmetic with their fault checks,
conversions, comparisons, text, arrays, money, maps (lwas.backend.mapgen) and the calls into the
host (codegen's HOST_SYMBOLS). `Prims` uses the builder's `b`, `f`, `mb`, `arena`, `expr`,
`const`, `check`, `fail`, `alloc`, `copy`, `adopt`, `elem_size`, `entry_alloca`, `to_mem`,
`from_mem` and `fminmax` (lwas.backend.codegen_fn._FunctionBuilder).
"""
from __future__ import annotations

from llvmlite import ir as L

from lwas.abi import TIME_MAX, TIME_MIN, pack_currency
from lwas.backend import ir
from lwas.backend.emit import F64, I1, I8, I32, I64, MONEY, PTR, SLICE, mem_type, phi, sizeof, text_cmp, val_type
from lwas.backend.ir import Unsupported
from lwas.backend.typeinfo import is_constant
from lwas.semantics.types import BOOL, FLOAT, INT, INT_MIN, TEXT, TRUTH, EnumT, MoneyT


class Prims:
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
            return phi(b, val_type(t.value), (v, hit), (args[2], start))
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
        """<0, 0 or >0 as text x orders before, with or after y (lwas.backend.emit.text_cmp)."""
        return text_cmp(self.b, self.mb.libc("memcmp"), x, y)

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
        return phi(b, I1, (L.Constant(I1, 0), start), (eq, cmp_blk))

    def array(self, e: ir.Prim, args: list):
        """An array literal (args: its elements, already evaluated in order)."""
        elem = e.type.elem
        if not all(is_constant(a) for a in e.args):  # built at run time, in the arena
            assert e.site >= 0, "lower gives every run-time array literal a memory site"
            ty = mem_type(elem)
            n = len(args)
            buf = self.alloc(sizeof(self.b, ty, max(n, 1)), e.site)
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
