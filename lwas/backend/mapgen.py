"""Native maps: the LLVM functions behind `{K: V}` (used by lwas.backend.codegen).

A map is a pointer to the root node of a persistent weight-balanced search tree ordered by key
(null: the empty map). A node is the struct

    {ptr left, ptr right, i64 size, K key, V value, i64 edit}     (K, V in their memory forms)

and is not written after it is made: an insert or a delete copies the O(log n) nodes on the
path to the key and shares every other node with the map it came from. So a map is a value
(`let b = a` shares, and no later change of `a` shows in `b`) without any copying, and a
version that readers hold stays valid while a writer makes the next one.

The one exception, `insert_owned` (a transient, as Clojure calls it): a service's writer
inserting into a state field that nothing else can see (lwas.backend.inplace proves which) writes in
place the nodes made since the runtime last sealed the state's heap. The heap's arena carries
an edit number (ARENA's third field; 0 in every other arena), the nodes an owned insert makes
carry it in `edit`, and the runtime moves the arena to a new number at every commit and before
every request (lwas.runtime.state), so nodes that a reader, a snapshot or a request that may
fail can see are never written. A replay folds a page of entries under one number: each path
is copied once per page, not once per entry, and the heap does not fill with garbage.

Balance is Adams' (as in Haskell's Data.Map): a node is balanced when neither subtree has more
than DELTA times the weight of the other; one single or double rotation (chosen with RATIO)
restores it after an insert or a delete. (DELTA, RATIO) = (3, 2) is the integer pair proven
correct for both operations (Hirai and Yamamoto, "Balancing weight-balanced trees", 2011). The
height is at most about 2.5 log2(n), so the recursive operations here nest at most ~75 deep
for 2^30 keys.

Keys order as the evaluator orders them: int and time as signed integers, bool false before
true, an enum by its tag (declaration order), text bytewise (UTF-8: code-point order), a
prefix first.

Memory: nodes are allocated in the calling function's arena like any other run-time value
(codegen's `lwas.alloc`); an operation whose malloc fails returns "not ok" and its caller
faults at its "memory" site. The exported wrapper's copy of a result (`dup`) gives every node
its own malloc'd buffer, as runtime.native frees them (one `free` per node).
"""
from __future__ import annotations

from llvmlite import ir as L

from lwas.backend.emit import ARENA, I1, I32, I64, PTR, const as _c, mem_type, phi, ret_struct, sizeof, text_cmp, unless
from lwas.backend.typeinfo import owns_memory
from lwas.semantics.types import BOOL, TEXT, MapT

DELTA, RATIO = 3, 2
LEFT, RIGHT, SIZE, KEY, VALUE, EDIT = range(6)
ARENA_EDIT = 2  # the edit number's field in ARENA
PTR_OK = L.LiteralStructType([PTR, I1])  # what a function that may run out of memory returns


class Maps:
    """The map functions of one module, built on first use, one set per map shape."""

    def __init__(self, mb):
        self.mb = mb
        self.fns: dict = {}  # the zero node of each shape (a constant)

    # ------------------------------------------------------------ helpers

    def node_type(self, t: MapT) -> L.Type:
        return L.LiteralStructType([PTR, PTR, I64, mem_type(t.key), mem_type(t.value), I64])

    def _fn(self, t: MapT, what: str, ret, params, build):
        return self.mb.internal(("map", what, repr(t)), f"lwas.map.{what}", ret, params, build)

    def _ok_fn(self, t: MapT, what: str, params, build):
        """A map function that returns {ptr, i1 ok}: build(f, b, ret) fills it from its entry
        block, ret(p, ok=1) returning p and ok."""
        def made(f):
            b = L.IRBuilder(f.append_basic_block("entry"))
            build(f, b, lambda p, ok=1: ret_struct(b, PTR_OK, p, _c(ok, I1)))
        return self._fn(t, what, PTR_OK, params, made)

    def _field(self, b, t: MapT, node, i: int, name: str = ""):
        nt = self.node_type(t)
        return b.load(b.gep(node, [_c(0, I32), _c(i, I32)], source_etype=nt), typ=nt.elements[i], name=name)

    def _set(self, b, t: MapT, node, i: int, value) -> None:
        nt = self.node_type(t)
        b.store(value, b.gep(node, [_c(0, I32), _c(i, I32)], source_etype=nt))

    @staticmethod
    def _unbalanced(b, sl, sr):
        """Whether subtrees of sizes sl and sr need `balance`'s rotation (its first tests)."""
        heavy = b.or_(b.icmp_unsigned(">", sr, b.mul(sl, _c(DELTA))), b.icmp_unsigned(">", sl, b.mul(sr, _c(DELTA))))
        return b.and_(b.icmp_unsigned(">", b.add(sl, sr), _c(1)), heavy)

    def _size(self, b, t: MapT, node):
        """size(node), 0 for null."""
        nt = self.node_type(t)
        is_null = b.icmp_unsigned("==", b.ptrtoint(node, I64), _c(0))
        # a select cannot skip the load: read through a pointer that is never null
        safe = b.select(is_null, self._zero_node(t), node)
        n = b.load(b.gep(safe, [_c(0, I32), _c(SIZE, I32)], source_etype=nt), typ=I64)
        return b.select(is_null, _c(0), n)

    def _zero_node(self, t: MapT):
        key = ("map", "zero", str(self.node_type(t)))
        g = self.fns.get(key)
        if g is None:
            nt = self.node_type(t)
            g = self.fns[key] = self.mb.global_const(L.Constant(nt, None))
        return g

    def cmp(self, b, t: MapT, x, y):
        """-1, 0 or 1 (i64) as key x orders before, with or after key y."""
        k = t.key
        if k is TEXT:
            r = text_cmp(b, self.mb.libc("memcmp"), x, y)
            return b.sub(b.zext(b.icmp_signed(">", r, _c(0)), I64), b.zext(b.icmp_signed("<", r, _c(0)), I64))
        signed = k is not BOOL
        lt = b.icmp_signed("<", x, y) if signed else b.icmp_unsigned("<", x, y)
        gt = b.icmp_signed(">", x, y) if signed else b.icmp_unsigned(">", x, y)
        return b.sub(b.zext(gt, I64), b.zext(lt, I64))

    def _is_null(self, b, p):
        return b.icmp_unsigned("==", b.ptrtoint(p, I64), _c(0))

    def _not_null(self, b, p):
        return b.icmp_unsigned("!=", b.ptrtoint(p, I64), _c(0))

    def _if_null(self, b, f, p):
        """Branch on p being null: the (null, not null) blocks; b stays where it was."""
        empty = f.append_basic_block("empty")
        walk = f.append_basic_block("walk")
        b.cbranch(self._is_null(b, p), empty, walk)
        return empty, walk

    def _three_way(self, b, f, c):
        """Branch on a comparison's -1, 0 or 1: the (equal, less, greater) blocks."""
        here = f.append_basic_block("here")
        left = f.append_basic_block("left")
        right = f.append_basic_block("right")
        sw = b.switch(c, here)
        sw.add_case(_c(-1), left)
        sw.add_case(_c(1), right)
        return here, left, right

    # ------------------------------------------------------------ making nodes

    def node(self, t: MapT):
        """`ptr node(ptr arena, K k, V v, ptr l, ptr r)`: a new node (null: out of memory)."""
        def build(f):
            arena, k, v, l, r = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            nt = self.node_type(t)
            size = sizeof(b, nt)
            p = b.call(self.mb.alloc(), [arena, size])
            unless(b, f, self._not_null(b, p), lambda: b.ret(L.Constant(PTR, None)))
            n = b.add(b.add(self._size(b, t, l), self._size(b, t, r)), _c(1))
            v_ = L.Constant(nt, None)
            for i, x in ((LEFT, l), (RIGHT, r), (SIZE, n), (KEY, k), (VALUE, v)):
                v_ = b.insert_value(v_, x, i)
            b.store(v_, p)
            b.ret(p)
        nt = self.node_type(t)
        return self._fn(t, "node", PTR, [PTR, nt.elements[KEY], nt.elements[VALUE], PTR, PTR], build)

    def balance(self, t: MapT):
        """`ptr balance(ptr arena, K k, V v, ptr l, ptr r)`: a node for k, v over l and r, with one
        rotation when l and r are out of balance by one insert or delete (null: out of memory)."""
        def build(f):
            arena, k, v, l, r = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            mk = self.node(t)
            sl, sr = self._size(b, t, l), self._size(b, t, r)
            plain = f.append_basic_block("plain")
            check_l = f.append_basic_block("check_left")
            rot_l = f.append_basic_block("rotate_left")
            check_r = f.append_basic_block("check_right")
            rot_r = f.append_basic_block("rotate_right")
            b.cbranch(b.icmp_unsigned("<=", b.add(sl, sr), _c(1)), plain, check_l)
            b.position_at_end(check_l)
            b.cbranch(b.icmp_unsigned(">", sr, b.mul(sl, _c(DELTA))), rot_l, check_r)
            b.position_at_end(check_r)
            b.cbranch(b.icmp_unsigned(">", sl, b.mul(sr, _c(DELTA))), rot_r, plain)
            b.position_at_end(plain)
            b.ret(b.call(mk, [arena, k, v, l, r]))

            def fields(node):
                return [self._field(b, t, node, i) for i in (KEY, VALUE, LEFT, RIGHT)]

            def checked(x, then):
                """Return null when x is null (out of memory), else go on with then(x)."""
                unless(b, f, self._not_null(b, x), lambda: b.ret(L.Constant(PTR, None)))
                return then(x)

            def rotate(side):
                """The rotation toward `side` (LEFT when r outweighs l; RIGHT is its mirror
                image), single or double; the comments name the nodes of the left one."""
                def mirror(x, y):
                    return (x, y) if side == LEFT else (y, x)

                light, heavy = mirror(l, r)
                b.position_at_end(rot_l if side == LEFT else rot_r)
                k2, v2, hl, hr = fields(heavy)
                inner, outer = mirror(hl, hr)  # r = (k2, v2, rl, rr)
                name = "left" if side == LEFT else "right"
                single = f.append_basic_block(f"single_{name}")
                double = f.append_basic_block(f"double_{name}")
                b.cbranch(b.icmp_unsigned("<", self._size(b, t, inner), b.mul(self._size(b, t, outer), _c(RATIO))),
                          single, double)
                b.position_at_end(single)  # (k2, v2, (k, v, l, rl), rr)
                checked(b.call(mk, [arena, k, v, *mirror(light, inner)]),
                        lambda a: b.ret(b.call(mk, [arena, k2, v2, *mirror(a, outer)])))
                b.position_at_end(double)  # rl = (k3, v3, rll, rlr): (k3, v3, (k, v, l, rll), (k2, v2, rlr, rr))
                k3, v3, il, ir = fields(inner)
                near, far = mirror(il, ir)
                lo, hi = mirror([k, v, *mirror(light, near)], [k2, v2, *mirror(far, outer)])  # the new children
                checked(b.call(mk, [arena, *lo]), lambda a: checked(
                    b.call(mk, [arena, *hi]), lambda c: b.ret(b.call(mk, [arena, k3, v3, a, c]))))

            rotate(LEFT)
            rotate(RIGHT)
        nt = self.node_type(t)
        return self._fn(t, "balance", PTR, [PTR, nt.elements[KEY], nt.elements[VALUE], PTR, PTR], build)

    # ------------------------------------------------------------ operations

    def find(self, t: MapT):
        """`ptr find(ptr root, K k)`: the node holding k, or null."""
        def build(f):
            root, k = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            loop = f.append_basic_block("loop")
            body = f.append_basic_block("body")
            found = f.append_basic_block("found")
            nxt = f.append_basic_block("next")
            missing = f.append_basic_block("missing")
            start = b.block
            b.branch(loop)
            b.position_at_end(loop)
            p = b.phi(PTR)
            p.add_incoming(root, start)
            b.cbranch(self._is_null(b, p), missing, body)
            b.position_at_end(body)
            c = self.cmp(b, t, k, self._field(b, t, p, KEY))
            b.cbranch(b.icmp_signed("==", c, _c(0)), found, nxt)
            b.position_at_end(nxt)
            child = b.select(b.icmp_signed("<", c, _c(0)), self._field(b, t, p, LEFT), self._field(b, t, p, RIGHT))
            p.add_incoming(child, nxt)
            b.branch(loop)
            b.position_at_end(found)
            b.ret(p)
            b.position_at_end(missing)
            b.ret(L.Constant(PTR, None))
        return self._fn(t, "find", PTR, [PTR, self.node_type(t).elements[KEY]], build)

    def insert(self, t: MapT):
        """`ptr insert(ptr arena, ptr root, K k, V v)`: the map with k set to v (null: out of
        memory; a map with a key is never empty)."""
        def build(f):
            arena, root, k, v = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            empty, walk = self._if_null(b, f, root)
            b.position_at_end(empty)
            b.ret(b.call(self.node(t), [arena, k, v, L.Constant(PTR, None), L.Constant(PTR, None)]))
            b.position_at_end(walk)
            nk, nv, nl, nr = (self._field(b, t, root, i) for i in (KEY, VALUE, LEFT, RIGHT))
            here, left, right = self._three_way(b, f, self.cmp(b, t, k, nk))
            b.position_at_end(here)
            b.ret(b.call(self.node(t), [arena, k, v, nl, nr]))
            for blk, side in ((left, LEFT), (right, RIGHT)):
                b.position_at_end(blk)
                sub = b.call(f, [arena, nl if side == LEFT else nr, k, v])
                unless(b, f, self._not_null(b, sub), lambda: b.ret(L.Constant(PTR, None)))
                l2, r2 = (sub, nr) if side == LEFT else (nl, sub)
                b.ret(b.call(self.balance(t), [arena, nk, nv, l2, r2]))
        nt = self.node_type(t)
        return self._fn(t, "insert", PTR, [PTR, PTR, nt.elements[KEY], nt.elements[VALUE]], build)

    def insert_owned(self, t: MapT):
        """`ptr insert_owned(ptr arena, ptr root, K k, V v)`: `insert`, but the nodes on the path
        that carry the arena's edit number (not 0) are written in place, and the nodes it makes
        carry that number (see the module docstring). Null: out of memory; nodes already
        written then belong to the request that fails, which the runtime discards."""
        def build(f):
            arena, root, k, v = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            at = b.gep(arena, [_c(0, I32), _c(ARENA_EDIT, I32)], source_etype=ARENA)
            b.ret(b.call(self.insert_marked(t), [arena, b.load(at, typ=I64), root, k, v]))
        nt = self.node_type(t)
        return self._fn(t, "insert_owned", PTR, [PTR, PTR, nt.elements[KEY], nt.elements[VALUE]], build)

    def insert_marked(self, t: MapT):
        """`ptr insert_marked(ptr arena, i64 edit, ptr root, K k, V v)`: insert_owned's walk."""
        def build(f):
            arena, edit, root, k, v = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            null = L.Constant(PTR, None)

            def marked(n):
                unless(b, f, self._not_null(b, n), lambda: b.ret(null))
                self._set(b, t, n, EDIT, edit)
                b.ret(n)

            empty, walk = self._if_null(b, f, root)
            b.position_at_end(empty)
            marked(b.call(self.node(t), [arena, k, v, null, null]))
            b.position_at_end(walk)
            nk, nv, nl, nr = (self._field(b, t, root, i) for i in (KEY, VALUE, LEFT, RIGHT))
            ours = b.and_(b.icmp_unsigned("!=", edit, _c(0)),
                          b.icmp_unsigned("==", self._field(b, t, root, EDIT), edit))
            here, left, right = self._three_way(b, f, self.cmp(b, t, k, nk))
            b.position_at_end(here)
            write, copy = f.append_basic_block("write"), f.append_basic_block("copy")
            b.cbranch(ours, write, copy)
            b.position_at_end(write)
            self._set(b, t, root, VALUE, v)
            b.ret(root)
            b.position_at_end(copy)
            marked(b.call(self.node(t), [arena, k, v, nl, nr]))
            for blk, side in ((left, LEFT), (right, RIGHT)):
                b.position_at_end(blk)
                sub = b.call(f, [arena, edit, nl if side == LEFT else nr, k, v])
                unless(b, f, self._not_null(b, sub), lambda: b.ret(null))
                l2, r2 = (sub, nr) if side == LEFT else (nl, sub)
                sl, sr = self._size(b, t, l2), self._size(b, t, r2)
                write, copy = f.append_basic_block("write"), f.append_basic_block("copy")
                b.cbranch(b.and_(ours, b.not_(self._unbalanced(b, sl, sr))), write, copy)
                b.position_at_end(write)
                self._set(b, t, root, side, sub)
                self._set(b, t, root, SIZE, b.add(b.add(sl, sr), _c(1)))
                b.ret(root)
                b.position_at_end(copy)
                marked(b.call(self.balance(t), [arena, nk, nv, l2, r2]))
        nt = self.node_type(t)
        return self._fn(t, "insert_marked", PTR, [PTR, I64, PTR, nt.elements[KEY], nt.elements[VALUE]], build)

    def delete(self, t: MapT):
        """`{ptr, i1 ok} delete(ptr arena, ptr root, K k)`: the map without k (the same map when
        k is absent; ok = 0: out of memory)."""
        def build(f, b, ret):
            arena, root, k = f.args
            empty, walk = self._if_null(b, f, root)
            b.position_at_end(empty)
            ret(root)
            b.position_at_end(walk)
            nk, nv, nl, nr = (self._field(b, t, root, i) for i in (KEY, VALUE, LEFT, RIGHT))
            here, left, right = self._three_way(b, f, self.cmp(b, t, k, nk))
            b.position_at_end(here)
            r = b.call(self.glue(t), [arena, nl, nr])
            b.ret(r)
            for blk, side in ((left, LEFT), (right, RIGHT)):
                b.position_at_end(blk)
                old = nl if side == LEFT else nr
                r = b.call(f, [arena, old, k])
                sub = b.extract_value(r, 0)
                unless(b, f, b.extract_value(r, 1), lambda: ret(L.Constant(PTR, None), 0))
                same = f.append_basic_block("unchanged")
                changed = f.append_basic_block("changed")
                b.cbranch(b.icmp_unsigned("==", b.ptrtoint(sub, I64), b.ptrtoint(old, I64)), same, changed)
                b.position_at_end(same)  # the key is absent: share the whole map
                ret(root)
                b.position_at_end(changed)
                l2, r2 = (sub, nr) if side == LEFT else (nl, sub)
                p = b.call(self.balance(t), [arena, nk, nv, l2, r2])
                # balance's null means out of memory (the node holds nk, so it is never empty)
                unless(b, f, self._not_null(b, p), lambda: ret(L.Constant(PTR, None), 0))
                ret(p)
        return self._ok_fn(t, "delete", [PTR, PTR, self.node_type(t).elements[KEY]], build)

    def glue(self, t: MapT):
        """`{ptr, i1 ok} glue(ptr arena, ptr l, ptr r)`: l and r (every key of l before every
        key of r, balanced with each other) joined into one tree."""
        def build(f, b, ret):
            arena, l, r = f.args
            l_null = f.append_basic_block("left_empty")
            l_some = f.append_basic_block("left_some")
            r_null = f.append_basic_block("right_empty")
            both = f.append_basic_block("both")
            b.cbranch(self._is_null(b, l), l_null, l_some)
            b.position_at_end(l_null)
            ret(r)
            b.position_at_end(l_some)
            b.cbranch(self._is_null(b, r), r_null, both)
            b.position_at_end(r_null)
            ret(l)
            b.position_at_end(both)
            from_left = f.append_basic_block("from_left")
            from_right = f.append_basic_block("from_right")
            b.cbranch(b.icmp_unsigned(">", self._size(b, t, l), self._size(b, t, r)), from_left, from_right)
            for blk, side in ((from_left, LEFT), (from_right, RIGHT)):
                b.position_at_end(blk)
                x = b.call(self.pop_end(t, side), [arena, l if side == LEFT else r])
                extreme, rest, ok = (b.extract_value(x, i) for i in range(3))
                unless(b, f, ok, lambda: ret(L.Constant(PTR, None), 0))
                ek, ev = self._field(b, t, extreme, KEY), self._field(b, t, extreme, VALUE)
                l2, r2 = (rest, r) if side == LEFT else (l, rest)
                p = b.call(self.balance(t), [arena, ek, ev, l2, r2])
                unless(b, f, self._not_null(b, p), lambda: ret(L.Constant(PTR, None), 0))
                ret(p)
        return self._ok_fn(t, "glue", [PTR, PTR, PTR], build)

    def pop_end(self, t: MapT, side: int):
        """`{ptr node, ptr rest, i1 ok} pop(ptr arena, ptr root)` (root not null): the node with
        the greatest key (side LEFT: taken from a left subtree) or the least (RIGHT), and the
        tree without it."""
        res = L.LiteralStructType([PTR, PTR, I1])
        toward = RIGHT if side == LEFT else LEFT  # the greatest key is rightmost

        def build(f):
            arena, root = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))

            def ret(node, rest, ok=1):
                ret_struct(b, res, node, rest, _c(ok, I1))

            nk, nv, nl, nr = (self._field(b, t, root, i) for i in (KEY, VALUE, LEFT, RIGHT))
            child = nr if toward == RIGHT else nl
            last = f.append_basic_block("last")
            deeper = f.append_basic_block("deeper")
            b.cbranch(self._is_null(b, child), last, deeper)
            b.position_at_end(last)  # root is the extreme: the rest is its other subtree
            ret(root, nl if toward == RIGHT else nr)
            b.position_at_end(deeper)
            x = b.call(f, [arena, child])
            node, rest, ok = (b.extract_value(x, i) for i in range(3))
            failed = lambda: ret(L.Constant(PTR, None), L.Constant(PTR, None), 0)  # noqa: E731
            unless(b, f, ok, failed)
            l2, r2 = (nl, rest) if toward == RIGHT else (rest, nr)
            p = b.call(self.balance(t), [arena, nk, nv, l2, r2])
            unless(b, f, self._not_null(b, p), failed)
            ret(node, p)
        return self._fn(t, f"pop{side}", res, [PTR, PTR], build)

    def size(self, b, t: MapT, root):
        """len(m) at b (an i64)."""
        return self._size(b, t, root)

    def fill(self, t: MapT):
        """`i64 fill(ptr node, ptr keys, ptr values, i64 i)`: writes the keys and values of the
        subtree in ascending key order from index i (either buffer may be null: skipped);
        returns the index after the last one written."""
        def build(f):
            node, keys, values, i = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))
            done = f.append_basic_block("done")
            walk = f.append_basic_block("walk")
            b.cbranch(self._is_null(b, node), done, walk)
            b.position_at_end(done)
            b.ret(i)
            b.position_at_end(walk)
            nt = self.node_type(t)
            j = b.call(f, [self._field(b, t, node, LEFT), keys, values, i])
            for buf, idx in ((keys, KEY), (values, VALUE)):
                skip = f.append_basic_block("skip")
                write = f.append_basic_block("write")
                b.cbranch(self._is_null(b, buf), skip, write)
                b.position_at_end(write)
                b.store(self._field(b, t, node, idx), b.gep(buf, [j], source_etype=nt.elements[idx]))
                b.branch(skip)
                b.position_at_end(skip)
            b.ret(b.call(f, [self._field(b, t, node, RIGHT), keys, values, b.add(j, _c(1))]))
        return self._fn(t, "fill", I64, [PTR, PTR, PTR, I64], build)

    def adopt(self, t: MapT):
        """`{ptr, i1 ok} adopt(ptr arena, ptr root)`: the map rebuilt node by node in the arena,
        keys and values adopted too (lwas.backend.memory's `adopt`: what a kept value may point to)."""
        def build(f, b, ret):
            arena, root = f.args
            nt = self.node_type(t)

            def guard(ok):
                unless(b, f, ok, lambda: ret(L.Constant(PTR, None), 0))

            empty, walk = self._if_null(b, f, root)
            b.position_at_end(empty)
            ret(root)
            b.position_at_end(walk)
            v = b.insert_value(b.load(root, typ=nt), _c(0), EDIT)  # a copy belongs to no edit
            for idx in (LEFT, RIGHT):
                r = b.call(f, [arena, b.extract_value(v, idx)])
                guard(b.extract_value(r, 1))
                v = b.insert_value(v, b.extract_value(r, 0), idx)
            for idx, ft in ((KEY, t.key), (VALUE, t.value)):
                x = self.mb.adopt(ft)
                if x is None:
                    continue
                r = b.call(x, [arena, b.extract_value(v, idx)])
                guard(b.extract_value(r, 1))
                v = b.insert_value(v, b.extract_value(r, 0), idx)
            size = sizeof(b, nt)
            p = b.call(self.mb.alloc(), [arena, size])
            guard(self._not_null(b, p))
            b.store(v, p)
            ret(p)
        return self._ok_fn(t, "adopt", [PTR, PTR], build)

    def take(self, t: MapT):
        """`{ptr acc, i64 left, i1 ok} take(ptr arena, ptr node, K key, i1 bounded, ptr acc, i64 left)`:
        acc with up to `left` entries of the subtree added, in key order, skipping keys at or
        before `key` when bounded: O(log n + taken) nodes visited (`first`, `after`)."""
        nt = self.node_type(t)
        res = L.LiteralStructType([PTR, I64, I1])

        def build(f):
            arena, node, key, bounded, acc, left = f.args
            b = L.IRBuilder(f.append_basic_block("entry"))

            def ret(a, n, ok=1):
                ret_struct(b, res, a, n, _c(ok, I1))

            done = f.append_basic_block("done")
            walk = f.append_basic_block("walk")
            b.cbranch(b.or_(self._is_null(b, node), b.icmp_signed("<=", left, _c(0))), done, walk)
            b.position_at_end(done)
            ret(acc, left)
            b.position_at_end(walk)
            nk = self._field(b, t, node, KEY)
            wanted = b.or_(b.not_(bounded), b.icmp_signed(">", self.cmp(b, t, nk, key), _c(0)))
            # left subtree: only when this key is wanted (else every key there is too small)
            go_left = f.append_basic_block("go_left")
            here = f.append_basic_block("here")
            start = b.block
            b.cbranch(wanted, go_left, here)
            b.position_at_end(go_left)
            r = b.call(f, [arena, self._field(b, t, node, LEFT), key, bounded, acc, left])
            ok_left = f.append_basic_block("left_ok")
            oom = f.append_basic_block("oom")
            b.cbranch(b.extract_value(r, 2), ok_left, oom)
            b.position_at_end(oom)
            ret(L.Constant(PTR, None), _c(0), 0)
            b.position_at_end(ok_left)
            acc1, left1 = b.extract_value(r, 0), b.extract_value(r, 1)
            b.branch(here)
            b.position_at_end(here)
            acc2 = phi(b, PTR, (acc, start), (acc1, ok_left))
            left2 = phi(b, I64, (left, start), (left1, ok_left))
            add = f.append_basic_block("add")
            right = f.append_basic_block("right")
            b.cbranch(b.and_(wanted, b.icmp_signed(">", left2, _c(0))), add, right)
            b.position_at_end(add)
            ins = b.call(self.insert(t), [arena, acc2, nk, self._field(b, t, node, VALUE)])
            ok_add = f.append_basic_block("add_ok")
            b.cbranch(self._is_null(b, ins), oom, ok_add)
            b.position_at_end(ok_add)
            left3 = b.sub(left2, _c(1))
            b.branch(right)
            b.position_at_end(right)
            acc4 = phi(b, PTR, (acc2, here), (ins, ok_add))
            left4 = phi(b, I64, (left2, here), (left3, ok_add))
            b.ret(b.call(f, [arena, self._field(b, t, node, RIGHT), key, bounded, acc4, left4]))
        return self._fn(t, "take", res, [PTR, PTR, nt.elements[KEY], I1, PTR, I64], build)

    # ------------------------------------------------------------ results (see lwas.backend.memory)

    def dup(self, t: MapT):
        """`{ptr, i1 ok} dup(ptr root)`: the map with every node (and what its key and value
        own) in its own malloc'd buffer; on a failed malloc everything made is freed, ok = 0."""
        def build(f, b, ret):
            root = f.args[0]
            nt = self.node_type(t)

            def guard(ok, undo):
                unless(b, f, ok, lambda: (undo(), ret(L.Constant(PTR, None), 0)))

            empty, walk = self._if_null(b, f, root)
            b.position_at_end(empty)
            ret(root)
            b.position_at_end(walk)
            drop = self.drop(t)
            v = b.insert_value(b.load(root, typ=nt), _c(0), EDIT)
            rl = b.call(f, [b.extract_value(v, LEFT)])
            guard(b.extract_value(rl, 1), lambda: None)
            l2 = b.extract_value(rl, 0)
            rr = b.call(f, [b.extract_value(v, RIGHT)])
            guard(b.extract_value(rr, 1), lambda: b.call(drop, [l2]))
            r2 = b.extract_value(rr, 0)
            made = []  # (index, type) of the key/value already copied

            def undo(copied, done):
                """Free both copied subtrees and the key/value copies in done (of copied)."""
                return lambda: [b.call(drop, [l2]), b.call(drop, [r2])] + \
                    [b.call(self.mb.drop(jt), [b.extract_value(copied, j)]) for j, jt in done]

            for idx, ft in ((KEY, t.key), (VALUE, t.value)):
                if not owns_memory(ft):
                    continue
                x = b.call(self.mb.dup(ft), [b.extract_value(v, idx)])
                guard(b.extract_value(x, 1), undo(v, list(made)))
                v = b.insert_value(v, b.extract_value(x, 0), idx)
                made.append((idx, ft))
            size = sizeof(b, nt)
            p = b.call(self.mb.libc("malloc"), [size])
            guard(self._not_null(b, p), undo(v, made))
            v = b.insert_value(b.insert_value(v, l2, LEFT), r2, RIGHT)
            b.store(v, p)
            ret(p)
        return self._ok_fn(t, "dup", [PTR], build)

    def drop(self, t: MapT):
        """`void drop(ptr root)`: frees a map `dup` made (every node, and what keys and values own)."""
        def build(f):
            root = f.args[0]
            b = L.IRBuilder(f.append_basic_block("entry"))
            done = f.append_basic_block("done")
            walk = f.append_basic_block("walk")
            b.cbranch(self._is_null(b, root), done, walk)
            b.position_at_end(done)
            b.ret_void()
            b.position_at_end(walk)
            nt = self.node_type(t)
            v = b.load(root, typ=nt)
            b.call(f, [b.extract_value(v, LEFT)])
            b.call(f, [b.extract_value(v, RIGHT)])
            for idx, ft in ((KEY, t.key), (VALUE, t.value)):
                if owns_memory(ft):
                    b.call(self.mb.drop(ft), [b.extract_value(v, idx)])
            b.call(self.mb.libc("free"), [root])
            b.ret_void()
        return self._fn(t, "drop", L.VoidType(), [PTR], build)
