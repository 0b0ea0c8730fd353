"""The memory half of codegen's module builder: the arena, the C library, and the deep copies
of values that hold text, arrays or maps.

`ModuleMemory` is the base of codegen's `_ModuleBuilder` and makes each of these functions once
per module, on first use: `lwas.alloc` and `lwas.free_all` (the arena of a call, see codegen's
docstring), `lwas.adopt.N` (a value copied into an arena: what a kept value and what the host
hands back must be), `lwas.dup.N` (a result copied into malloc'd buffers for the caller) and
`lwas.drop.N` (frees what dup made). Maps have their own (lwas.backend.mapgen). Kept apart from
codegen because it is a subject of its own: who owns which bytes, and how each is freed.
"""
from __future__ import annotations

from llvmlite import ir as L

from lwas.backend.emit import (ARENA, I1, I8, I32, I64, PTR, cold_path, count_loop, mem_type, ret_struct, sizeof,
                               unless)
from lwas.backend.typeinfo import owns_memory
from lwas.semantics.types import TEXT, ArrayT, MapT, RecordT


class ModuleMemory:
    """Needs `module`, `intrinsics` and `helpers` (dicts) and `maps` (lwas.backend.mapgen.Maps)."""

    module: L.Module
    intrinsics: dict
    helpers: dict

    def _made(self, table: dict, key, name: str, ret, params, build) -> L.Function:
        """The internal function `table[key]`, made on first use: declared as name.N (N: the
        table's size), then filled by build(f), so that a recursive one can call itself."""
        f = table.get(key)
        if f is None:
            f = table[key] = L.Function(self.module, L.FunctionType(ret, params), f"{name}.{len(table)}")
            f.linkage = "internal"
            build(f)
        return f

    def internal(self, key: tuple, name: str, ret, params, build) -> L.Function:
        """The internal function for `key` (lwas.backend.mapgen, lwas.backend.snapgen): see `_made`."""
        return self._made(self.helpers, key, name, ret, params, build)

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
        ty = mem_type(t)
        res = L.LiteralStructType([ty, I1])

        def build(f):
            arena, v = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))

            def guard(ok):
                unless(b, f, ok, lambda: b.ret(L.Constant(res, None)))

            if t.__class__ is RecordT:
                for i, ft in enumerate(t.fields.values()):
                    x = self.adopt(ft)
                    if x is not None:
                        r = b.call(x, [arena, b.extract_value(v, i)])
                        guard(b.extract_value(r, 1))
                        v = b.insert_value(v, b.extract_value(r, 0), i)
                ret_struct(b, res, v, L.Constant(I1, 1))
                return
            elem = I8 if t is TEXT else mem_type(t.elem)
            n = b.extract_value(v, 1)
            size = b.mul(n, sizeof(b, elem))
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

                count_loop(b, f, n, ("adoptloop", "adoptelem", "adopted"), adopt_elem)
            ret_struct(b, res, b.insert_value(v, buf, 0), L.Constant(I1, 1))
        return self._made(self.intrinsics, ("adopt", _shape(t)), "lwas.adopt", res, [PTR, ty], build)

    def dup(self, t) -> L.Function:
        """`{T, i1 ok} lwas.dup.N(T v)` (T: the memory form of t, which holds text or arrays):
        v with every text and array copied into its own malloc'd buffer (what the wrapper hands
        the caller). When a malloc fails it frees every buffer it made and returns ok = 0."""
        if t.__class__ is MapT:
            return self.maps.dup(t)
        ty = mem_type(t)
        res = L.LiteralStructType([ty, I1])

        def build(f):
            b = L.IRBuilder(f.append_basic_block("entry"))
            v = f.args[0]

            def on_fail(ok, cleanup):
                """Unless ok: run cleanup (frees what was made), return ok = 0."""
                cold_path(b, f, ok, lambda: (cleanup(), b.ret(L.Constant(res, None))), ("oom", "ok"))

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
                ret_struct(b, res, v, L.Constant(I1, 1))
                return
            elem = I8 if t is TEXT else mem_type(t.elem)
            n = b.extract_value(v, 1)
            size = b.mul(n, sizeof(b, elem))
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
                        count_loop(b, f, i, ("undoloop", "undoelem", "undone"), drop_elem)
                        b.call(self.libc("free"), [buf])

                    on_fail(b.extract_value(r, 1), undo)
                    b.store(b.extract_value(r, 0), p)

                count_loop(b, f, n, ("copyloop", "copyelem", "copied"), copy_elem)
            ret_struct(b, res, b.insert_value(v, buf, 0), L.Constant(I1, 1))
        return self._made(self.intrinsics, ("dup", _shape(t)), "lwas.dup", res, [ty], build)

    def drop(self, t) -> L.Function:
        """`void lwas.drop.N(T v)`: frees every buffer of a value `dup` made (nested ones first)."""
        if t.__class__ is MapT:
            return self.maps.drop(t)

        def build(f):
            b = L.IRBuilder(f.append_basic_block("entry"))
            v = f.args[0]
            if t.__class__ is RecordT:
                for i, ft in enumerate(t.fields.values()):
                    if owns_memory(ft):
                        b.call(self.drop(ft), [b.extract_value(v, i)])
                b.ret_void()
                return
            buf = b.extract_value(v, 0)
            if t is not TEXT and owns_memory(t.elem):
                elem = mem_type(t.elem)
                count_loop(b, f, b.extract_value(v, 1), ("droploop", "dropelem", "dropped"),
                           lambda i: b.call(self.drop(t.elem), [b.load(b.gep(buf, [i], source_etype=elem), typ=elem)]))
            b.call(self.libc("free"), [buf])
            b.ret_void()
        return self._made(self.intrinsics, ("drop", _shape(t)), "lwas.drop", L.VoidType(), [mem_type(t)], build)


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
