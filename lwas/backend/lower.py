"""Lowering: a checked program -> `ir.Program`.

Everything the checker decided is made explicit here so that codegen needs neither the syntax
tree nor `Checked`: implicit conversions become `Prim`s (a money coercion to a known currency
becomes a run-time `cur_check`), every operation that can fault gets an error site, compound
assignment, `for` loops and `assert` are desugared, consts are inlined as their initialiser
expressions, axioms become their effective truths and every `return` of a rule is capped by the
rule's `TruthResult` cap.

Evaluation order is kept: the arguments of every `Prim` and `Call` are in the order they are
evaluated (docs/language.md, "Evaluation order": source order; call arguments in parameter
order), and codegen evaluates them in that order. Operations whose native form wants another
operand order (`int * money`) keep source order here and codegen swaps the evaluated values.

Exports are every fn, rule and test, modules in dependency order, items in declaration order.
Constructs codegen cannot compile raise `codegen.Unsupported` (from codegen, or from here when
the construct never reaches the IR).
"""
from __future__ import annotations

from lwas.backend import inplace, ir
from lwas.syntax import tree as ast
from lwas.abi import SYMBOL_PREFIX, AxiomEntry, ErrorSite, Export, Extern, Param
from lwas.errors import KINDS
from lwas.backend.ir import Unsupported
from lwas.backend.typeinfo import has_array, is_constant, owns_memory
from lwas.semantics.typecheck import BuiltinRef, FieldRef, ItemRef, Local, VariantRef
from lwas.semantics.types import (BOOL, CURRENCY_EXPONENTS, FLOAT, INT, TEXT, TIME, TRUTH, UNIT, ArrayT, MapT, MoneyT,
                                  Type, type_desc)


def lower_program(program, checked, truth) -> ir.Program:
    return _Lowerer(program, checked, truth).run()


_ARITH = {"+": "add", "-": "sub", "*": "mul", "/": "div", "%": "rem"}
_CMP = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_MAP_READS = frozenset({"len", "get", "keys", "values", "first", "after"})  # read their argument only
_FLOAT_BUILTINS = {"sqrt": "fsqrt", "exp": "fexp", "ln": "fln", "floor": "ffloor", "ceil": "fceil"}


class _Lowerer:
    def __init__(self, program, checked, truth):
        self.program = program
        self.c = checked
        self.truth = truth
        self.out = ir.Program()
        self.names: dict = {}  # FnDecl/RuleDecl -> qualified name
        self.vars: dict = {}  # typecheck.Local -> ir.Var
        self.axiom_index = {id(d): i for i, d in enumerate(program.axioms)}
        self.rule_index = {id(d): i for i, (_, d) in enumerate(program.rules)}
        self.cap = 1.0
        self.current = ""  # the Function.name being lowered
        self.calls: list = []  # (caller, ir.Call, span) of every call of a fn or rule
        self.owned: set = set()  # typecheck.Local of every `var` whose array elements are assigned
        self.caps: dict = {}  # typecheck.Local of a `var` that grows by `xs = xs + ys` -> its room (ir.Var)
        self.owned_maps: dict = {}  # state RecordT -> indices of its owned map fields (lwas.backend.inplace)
        self.state = None  # the `state` variable (typecheck.Local) of the writer being lowered
        self.loops: list = []  # (ir.Loop, span, Function.name) of every loop, for timeout_sites

    # ------------------------------------------------------------ program

    def run(self) -> ir.Program:
        p = self.program
        for m in p.modules:
            for it in m.tree.items:
                if it.__class__ in (ast.FnDecl, ast.RuleDecl):
                    self.names[it] = it.name if m.is_root else f"{m.name}.{it.name}"
        self.owned_maps = inplace.owned_fields([it for m in p.modules for it in m.tree.items], self.c)
        n_tests = 0
        for m in p.modules:
            for it in m.tree.items:
                c = it.__class__
                if c is ast.FnDecl or c is ast.RuleDecl:
                    self.function(it)
                elif c is ast.TestDecl and m.is_root:
                    self.test(it, n_tests)
                    n_tests += 1
        self.stack_sites()
        self.timeout_sites()
        t = self.truth
        for i, name in enumerate(p.axiom_names):
            self.out.axioms.append(AxiomEntry(name, t.declared[i], t.effective[i]))
        return self.out

    def stack_sites(self) -> None:
        """Gives every call that can recurse (caller and callee in one strongly connected
        component of the call graph) a "stack" error site, at the call: codegen checks the stack
        there (see codegen's module docstring). Other calls need no check, as their depth is
        bounded. Sites are appended after every other site, so programs without recursion keep
        their table. The site is stored on the ir.Call (`site`, -1: unchecked)."""
        graph: dict = {f.name: [] for f in self.out.functions}
        for caller, call, _ in self.calls:
            graph[caller].append(call.fn)
        comp = _sccs(graph)
        for caller, call, span in self.calls:
            call.site = self.site("stack", span) if comp[caller] == comp[call.fn] else -1

    def timeout_sites(self) -> None:
        """Gives every loop, and every function that can recurse (one with a "stack" site) or
        holds a loop, a "timeout" error site: codegen checks the call's deadline at the loop's
        back edge and counts the function's entries (see lwas.backend.budget). Appended after every
        other site (stack sites included), so programs without loops or recursion keep their
        table."""
        message = KINDS["timeout"]  # the runtime adds the budget in effect
        counted = {caller for caller, call, _ in self.calls if call.site >= 0}
        for loop, span, fn in self.loops:
            loop.site = self.site("timeout", span, message)
            counted.add(fn)
        for fn in self.out.functions:
            if fn.name in counted:
                fn.timeout_site = self.site("timeout", fn.span, message)

    def loop(self, cond, body: list, step: list, span, count=None) -> ir.Loop:
        loop = ir.Loop(cond, body, step, count=count)
        self.loops.append((loop, span, self.current))
        return loop

    def function(self, d) -> None:
        sig = self.c.signatures[d]
        name = self.names[d]
        self.current = name
        is_rule = d.__class__ is ast.RuleDecl
        self.vars = {}
        self.owned = self.element_targets(d.body)
        self.caps = self.push_targets(d.body)
        self.state = inplace.state_local(d, self.c)
        self.cap = self.truth.caps[self.rule_index[id(d)]] if is_rule else 1.0
        params = []
        for p, (_, t) in zip(d.params, sig.params):
            v = ir.Var(p.name, t)
            if p in self.c.bindings:  # an extern's parameters bind nothing (it has no body)
                self.vars[self.c.bindings[p]] = v
            params.append(v)
        b = d.body
        if d.__class__ is ast.FnDecl and d.extern is not None:
            body = [ir.Return(self.extern(d, name, params, sig.ret))]
        elif b.__class__ is ast.Block:
            body = self.block(b)
        elif sig.ret is UNIT:
            body = self.stmt(ast.ExprStmt(b, b.span))
        else:
            body = [self.ret(self.expr(b))]
        fn = ir.Function(name, "rule" if is_rule else "fn", params, sig.ret, body, d.span)
        if owns_memory(sig.ret) or "$" in name:  # the wrapper mallocs the caller's copy of the result
            # (and a service function's kept form copies its parameters into the arena)
            fn.memory_site = self.site("memory", d.span, f"out of memory copying the result of `{name}`")
        self.add(fn,
                 name, [Param(p.name, type_desc(v.type)) for p, v in zip(d.params, params)],
                 type_desc(sig.ret))

    def extern(self, d, name: str, params: list, ret) -> ir.Prim:
        """The body of an `extern fn`: one host call, numbered in `Program.externs`."""
        index = len(self.out.externs)
        self.out.externs.append(Extern(name, d.extern, tuple(Param(v.name, type_desc(v.type)) for v in params),
                                       type_desc(ret), d.span.file, d.span.line))
        site = self.site("host", d.span, f"the external call `{name}` ({d.extern}) failed")
        memory = self.site("memory", d.span, f"out of memory taking the result of `{name}`")
        return ir.Prim("host_extern", [ir.Const(INT, index)] + [ir.Load(v) for v in params], ret, site, memory)

    def test(self, d, index: int) -> None:
        self.vars = {}
        self.owned = self.element_targets(d.body)
        self.caps = self.push_targets(d.body)
        self.state = None
        self.cap = 1.0
        self.current = f"test${index}"
        fn = ir.Function(self.current, "test", [], UNIT, self.block(d.body), d.span)
        self.add(fn, d.name, [], "unit")

    def element_targets(self, body) -> set:
        """The `var`s assigned through an array index somewhere in body (`xs[i] = v`,
        `r.items[i].n += 1`). Such a variable owns its arrays: every value bound to it is copied
        (arrays, deeply, into the call's arena: `copy`) and every read of it that yields arrays
        is copied too, so no other value ever shares the storage its element assignments write."""
        out = set()
        for n in ast.walk(body):
            if n.__class__ is not ast.Assign and n.__class__ is not ast.Delete:
                continue
            root, indexed = n.target, False
            while root.__class__ in (ast.Field, ast.Index):
                indexed = indexed or root.__class__ is ast.Index
                root = root.obj
            ref = self.c.refs.get(root) if root.__class__ is ast.Name else None
            if indexed and ref.__class__ is Local:
                out.add(ref)
        return out

    def push_targets(self, body) -> dict:
        """The array `var`s grown by `xs = xs + ys` or `xs += ys` in body, each with the hidden
        variable that holds its room (ir.Push)."""
        out = {}
        for n in ast.walk(body):
            if n.__class__ is not ast.Assign or n.target.__class__ is not ast.Name:
                continue
            ref = self.c.refs.get(n.target)
            if ref.__class__ is not Local or ref.type.__class__ is not ArrayT or ref in out:
                continue
            v = n.value
            if n.op == "+=" or (n.op == "=" and v.__class__ is ast.Binary and v.op == "+"
                                and v.left.__class__ is ast.Name and self.c.refs.get(v.left) is ref):
                out[ref] = ir.Var(f"{ref.name}$cap", INT)
        return out

    def room(self, loc, v: ir.Var) -> list:
        """After any store to v other than its own push: its room is its length."""
        cap = self.caps.get(loc)
        return [] if cap is None else [ir.Store(cap, ir.Prim("len", [ir.Load(v)], INT))]

    def owned_root(self, e) -> bool:
        """Whether e is a variable of `owned`, or a field/element chain rooted at one."""
        while e.__class__ is ast.Index or e.__class__ is ast.Field and \
                self.c.refs.get(e).__class__ is FieldRef:
            e = e.obj
        return e.__class__ is ast.Name and self.c.refs.get(e) in self.owned

    def add(self, fn: ir.Function, export_name: str, params, result) -> None:
        self.out.functions.append(fn)
        self.out.exports.append(Export(export_name, SYMBOL_PREFIX + fn.name, fn.kind, tuple(params),
                                       result, fn.span.file, fn.span.line))

    def site(self, kind: str, span, message: str | None = None) -> int:
        if message is None:
            text = self.text(span)
            message = f"{KINDS[kind]} in `{text}`" if text and len(text) <= 60 else KINDS[kind]
        self.out.error_sites.append(ErrorSite(kind, message, span.file, span.line, span.col,
                                              span.end_line, span.end_col))
        return len(self.out.error_sites) - 1

    def text(self, span) -> str:
        """The source text of a span on one line (for messages)."""
        src = self.program.sources.get(span.file)
        return " ".join(src.text[span.start:span.end].split()) if src is not None else ""

    def ret(self, value):
        if value is not None and self.cap < 1.0:
            value = ir.Prim("fmin", [value, ir.Const(TRUTH, self.cap)], TRUTH)
        return ir.Return(value)

    # ------------------------------------------------------------ statements

    def block(self, b: ast.Block) -> list:
        out = []
        for s in b.stmts:
            out.extend(self.stmt(s))
        return out

    def stmt(self, s) -> list:
        c = s.__class__
        if c is ast.Let:
            v = ir.Var(s.name, self.c.let_types[s])
            value = self.expr(s.value)
            loc = self.c.bindings[s]
            self.vars[loc] = v
            out = [ir.Let(v, self.own(value, s.value.span) if loc in self.owned else value)]
            cap = self.caps.get(loc)
            if cap is not None:
                out.append(ir.Let(cap, ir.Prim("len", [ir.Load(v)], INT)))
            return out
        if c is ast.Assign or c is ast.Delete:
            return self.assign(s)
        if c is ast.If:
            orelse = s.orelse
            els = [] if orelse is None else (self.block(orelse) if orelse.__class__ is ast.Block
                                            else self.stmt(orelse))
            return [ir.If(self.expr(s.cond), self.block(s.then), els)]
        if c is ast.While:
            return [self.loop(self.expr(s.cond), self.block(s.body), [], s.span)]
        if c is ast.ForRange:
            return self.for_range(s)
        if c is ast.ForEach:
            return self.for_each(s)
        if c is ast.Return:
            return [self.ret(None if s.value is None else self.expr(s.value))]
        if c is ast.Break:
            return [ir.Break()]
        if c is ast.Continue:
            return [ir.Continue()]
        if c is ast.Assert:
            site = self.site(s.kind, s.span, s.message if s.message is not None else "assertion failed")
            return [ir.If(self.expr(s.cond), [], [ir.Fail(site)])]
        e = s.expr
        if e.__class__ is ast.Match and (self.c.types.get(e) is UNIT
                                         or any(a.body.__class__ is ast.Block for a in e.arms)):
            return [self.match_stmt(e)]
        return [ir.Eval(self.expr(e))]

    def assign(self, s) -> list:
        """`x = v`, `r.a.b = v` (rebuilds r with the new field: records are values), element
        targets (`xs[i] = v`, `r.items[i].n = v`: an in-place `ir.StoreAt` into storage the
        variable owns, see `element_targets`), the compound forms (`x op= v` is `x = x op v`,
        the target read first), and targets through a map (`m[k] = v`, `delete m[k]`,
        `state.days[d].revenue += r`: see `map_assign`)."""
        chain = []  # the target's steps, from the variable out
        root = s.target
        while root.__class__ is ast.Index or root.__class__ is ast.Field and \
                self.c.refs.get(root).__class__ is FieldRef:
            chain.append(root)
            root = root.obj
        chain.reverse()
        ref = self.c.refs.get(root) if root.__class__ is ast.Name else None
        if ref.__class__ is not Local:  # pragma: no cover - the checker allows only vars
            raise Unsupported("this assignment target is not compiled yet", s.span)
        if s.__class__ is ast.Delete or any(self.is_map_step(e) for e in chain):
            return self.map_assign(s, self.vars[ref], chain)
        if not chain and ref in self.caps:
            push = self.push(s, ref)
            if push is not None:
                return [push]
        return [self.assign_plain(s)] + (self.room(ref, self.vars[ref]) if not chain else [])

    def push(self, s: ast.Assign, ref):
        """`xs = xs + ys` / `xs += ys` as an in-place ir.Push (None: another form of assignment)."""
        v = s.value
        if s.op == "+=":
            ys = v
        elif s.op == "=" and v.__class__ is ast.Binary and v.op == "+" and v.left.__class__ is ast.Name \
                and self.c.refs.get(v.left) is ref and self.c.converted_type(v.left) == ref.type:
            ys = v.right
        else:
            return None
        if self.c.converted_type(ys).__class__ is not ArrayT:
            return None
        value = self.expr(ys)
        if ref in self.owned:
            value = self.own(value, ys.span)
        return ir.Push(self.vars[ref], self.caps[ref], value, self.site("memory", s.span))

    def is_map_step(self, e) -> bool:
        return e.__class__ is ast.Index and self.c.types.get(e.obj).__class__ is MapT

    def map_assign(self, s, v: ir.Var, chain: list) -> list:
        """An assignment (or `delete`) whose target goes through a map. Maps are persistent, so
        the map is rebuilt, not written in place: the steps before the first map step are
        evaluated once (their indices into temporaries), the key once; then either the new map
        is `map_insert(m, k, value)` (or `map_delete`), or, when the target goes on into the
        element (`m[k].f = v`), the element is read (a `key` fault if absent) into an owned
        temporary, assigned into along the remaining steps, and inserted back. The new map is
        stored where the old one was. Order: target steps left to right, each checked when
        reached, then the value (compound: the current value first). An insert into an owned
        field of a writer's state (`state.F[k]`, lwas.backend.inplace) is marked "owned": it may write
        the nodes its edit made in place (lwas.backend.mapgen.insert_owned)."""
        out: list = []
        j = next(i for i, e in enumerate(chain) if self.is_map_step(e) or
                 (s.__class__ is ast.Delete and i == len(chain) - 1))
        steps = []  # from v to the map: ("field", i) or ("index", ir.Expr, site)
        for e in chain[:j]:
            if e.__class__ is ast.Index:
                i = ir.Var("$i", INT)
                out.append(ir.Let(i, self.expr(e.index)))
                steps.append(("index", ir.Load(i), self.site("index", e.span)))
            else:
                steps.append(("field", self.c.refs[e].index))
        at = chain[j]
        mt = self.c.types.get(at.obj)
        key = ir.Var("$key", mt.key)
        out.append(ir.Let(key, self.expr(at.index)))

        def read_map():
            x = ir.Load(v)
            for st in steps:
                if st[0] == "field":
                    x = ir.Prim("field", [x], list(x.type.fields.values())[st[1]], -1, st[1])
                else:
                    x = ir.Prim("index", [x, st[1]], x.type.elem, st[2])
            return x

        rest = chain[j + 1:]
        memory = self.site("memory", s.span, "out of memory building the new map")
        owned = "owned" if self.state is not None and v is self.vars.get(self.state) and len(steps) == 1 \
            and steps[0][0] == "field" and steps[0][1] in self.owned_maps.get(self.state.type, ()) else None
        if s.__class__ is ast.Delete and not rest:
            new = ir.Prim("map_delete", [read_map(), ir.Load(key)], mt, memory)
        elif not rest:
            if s.op == "=":
                value = self.expr(s.value)
            else:
                cur = ir.Prim("map_get", [read_map(), ir.Load(key)], mt.value, self.key_site(at))
                left = self.convert(cur, mt.value, self.c.coercions.get(s.target), s.target)
                value = self.binary(s.op[0], left, self.expr(s.value), s.target, s.value, s)
            new = ir.Prim("map_insert", [read_map(), ir.Load(key), value], mt, memory, owned)
        else:
            elem = ir.Var("$elem", mt.value)
            got = ir.Prim("map_get", [read_map(), ir.Load(key)], mt.value, self.key_site(at))
            out.append(ir.Let(elem, self.own(got, at.span)))
            if s.__class__ is ast.Delete or any(self.is_map_step(e) for e in rest):
                out.extend(self.map_assign(s, elem, rest))
            elif any(e.__class__ is ast.Index for e in rest):
                out.append(self.store_at(s, elem, rest))
            else:
                out.append(self.assign_fields(s, elem, [self.c.refs[e].index for e in reversed(rest)]))
            new = ir.Prim("map_insert", [read_map(), ir.Load(key), ir.Load(elem)], mt, memory, owned)
        if not steps:
            out.append(ir.Store(v, new))
        elif all(st[0] == "field" for st in steps):
            out.append(self.rebuild(v, [st[1] for st in reversed(steps)], new))
        else:
            out.append(ir.StoreAt(v, steps, new))
        return out

    def key_site(self, e: ast.Index) -> int:
        return self.site("key", e.span, f"key not in map in `{self.text(e.span)}`"
                         if len(self.text(e.span)) <= 60 else "key not in map")

    def assign_plain(self, s: ast.Assign):
        target = s.target
        path = []  # field indices from the variable down to the target
        root = target
        indexed = False
        while root.__class__ is ast.Index or root.__class__ is ast.Field and \
                self.c.refs.get(root).__class__ is FieldRef:
            if root.__class__ is ast.Index:
                indexed = True
            else:
                path.append(self.c.refs[root].index)
            root = root.obj
        ref = self.c.refs.get(root) if root.__class__ is ast.Name else None
        if ref.__class__ is not Local:  # pragma: no cover - the checker allows only vars
            raise Unsupported("this assignment target is not compiled yet", s.span)
        v = self.vars[ref]
        if indexed:
            chain = []
            e = s.target
            while e.__class__ is not ast.Name:
                chain.append(e)
                e = e.obj
            return self.store_at(s, v, chain[::-1])
        return self.assign_fields(s, v, path, ref in self.owned)

    def assign_fields(self, s: ast.Assign, v: ir.Var, path: list, owned: bool = True):
        """`v.a.b op= value` (path: the field indices from the target up to v)."""
        target = s.target
        if s.op == "=":
            value = self.expr(s.value)
            if owned:
                value = self.own(value, s.value.span)
        else:
            if path:
                left = ir.Load(v)
                for i in reversed(path):
                    left = ir.Prim("field", [left], list(left.type.fields.values())[i], -1, i)
                left = self.convert(left, left.type, self.c.coercions.get(target), target)
            else:
                left = self.convert(ir.Load(v), v.type, self.c.coercions.get(target), target)
            value = self.binary(s.op[0], left, self.expr(s.value), target, s.value, s)
        return self.rebuild(v, path, value)

    def rebuild(self, v: ir.Var, path: list, value):
        """`v = v` with the field at path (indices from the target up to v) set to value."""
        objs = [ir.Load(v)]
        for i in reversed(path[1:]):
            o = objs[-1]
            objs.append(ir.Prim("field", [o], list(o.type.fields.values())[i], -1, i))
        for o, i in zip(reversed(objs), path):
            value = ir.Prim("set_field", [o, value], o.type, -1, i)
        return ir.Store(v, value)

    def store_at(self, s: ast.Assign, v: ir.Var, chain: list):
        """An assignment whose target goes through an array element: the steps (chain: target
        nodes from v out) down to the target (indices evaluated and bounds-checked left to
        right), then the value."""
        steps = []
        for e in chain:
            if e.__class__ is ast.Index:
                steps.append(("index", self.expr(e.index), self.site("index", e.span)))
            else:
                steps.append(("field", self.c.refs[e].index))
        target = s.target
        tt = self.c.types.get(target)
        if s.op == "=":
            value = self.own(self.expr(s.value), s.value.span)
        else:
            left = self.convert(ir.Current(tt), tt, self.c.coercions.get(target), target)
            value = self.binary(s.op[0], left, self.expr(s.value), target, s.value, s)
        return ir.StoreAt(v, steps, value)

    def own(self, x, span):
        """x with its arrays copied into the arena (when it holds any): for owned variables.
        The copy allocates: a "memory" site at span, the expression copied."""
        return ir.Prim("copy", [x], x.type, self.site("memory", span)) if has_array(x.type) else x

    def for_range(self, s: ast.ForRange) -> list:
        i = ir.Var(s.var, INT)
        self.vars[self.c.bindings[s]] = i
        end = ir.Var("$end", INT)
        start = self.expr(s.start)
        stop = self.expr(s.end)
        cond = ir.Prim("lt", [ir.Load(i), ir.Load(end)], BOOL)
        step = ir.Store(i, ir.Prim("add", [ir.Load(i), ir.Const(INT, 1)], INT))  # i < end: no overflow
        return [ir.Let(i, start), ir.Let(end, stop),
                self.loop(cond, self.block(s.body), [step], s.span, (i, ir.Load(end)))]

    def for_each(self, s: ast.ForEach) -> list:
        mt = self.c.types.get(s.iterable)
        if mt.__class__ is MapT:
            return self.for_map(s, mt)
        at = self.c.converted_type(s.iterable)
        arr = ir.Var("$xs", at)
        idx = ir.Var("$i", INT)
        x = ir.Var(s.var, at.elem)
        self.vars[self.c.bindings[s]] = x
        iterable = self.expr(s.iterable)
        cond = ir.Prim("lt", [ir.Load(idx), ir.Prim("len", [ir.Load(arr)], INT)], BOOL)
        head = ir.Let(x, ir.Prim("index", [ir.Load(arr), ir.Load(idx)], at.elem))  # in bounds
        step = ir.Store(idx, ir.Prim("add", [ir.Load(idx), ir.Const(INT, 1)], INT))
        return [ir.Let(arr, iterable), ir.Let(idx, ir.Const(INT, 0)),
                self.loop(cond, [head] + self.block(s.body), [step], s.span,
                          (idx, ir.Prim("len", [ir.Load(arr)], INT)))]

    def for_map(self, s: ast.ForEach, mt: MapT) -> list:
        """`for k in m` / `for k, v in m`: over the keys (and values) taken once, in key order."""
        m = ir.Var("$m", mt)
        ks = ir.Var("$keys", ArrayT(mt.key))
        idx = ir.Var("$i", INT)
        memory = self.site("memory", s.iterable.span)
        out = [ir.Let(m, self.place(s.iterable)), ir.Let(ks, ir.Prim("map_keys", [ir.Load(m)], ks.type, memory))]
        k = ir.Var(s.var, mt.key)
        self.vars[self.c.bindings[s]] = k
        head = [ir.Let(k, ir.Prim("index", [ir.Load(ks), ir.Load(idx)], mt.key))]  # in bounds
        if s.value_var is not None:
            vs = ir.Var("$values", ArrayT(mt.value))
            out.append(ir.Let(vs, ir.Prim("map_values", [ir.Load(m)], vs.type, memory)))
            x = ir.Var(s.value_var, mt.value)
            self.vars[self.c.bindings[(s, "value")]] = x
            head.append(ir.Let(x, ir.Prim("index", [ir.Load(vs), ir.Load(idx)], mt.value)))
        cond = ir.Prim("lt", [ir.Load(idx), ir.Prim("len", [ir.Load(ks)], INT)], BOOL)
        step = ir.Store(idx, ir.Prim("add", [ir.Load(idx), ir.Const(INT, 1)], INT))
        return out + [ir.Let(idx, ir.Const(INT, 0)),
                      self.loop(cond, head + self.block(s.body), [step], s.span,
                                (idx, ir.Prim("len", [ir.Load(ks)], INT)))]

    def match_stmt(self, e: ast.Match):
        arms, default = [], []
        for keys, arm in self.match_arms(e):
            body = self.block(arm.body) if arm.body.__class__ is ast.Block else \
                [ir.Eval(self.expr(arm.body))]
            if keys is None:
                default = body
                break
            arms.append((keys, body))
        return ir.SwitchStmt(self.expr(e.subject), arms, default)

    def match_arms(self, e: ast.Match):
        """(tags or None for `_`, arm) pairs; an arm's tags are ints (enum tags, bools 0/1) or,
        for a text subject, strs."""
        seen: set = set()
        out = []
        for arm in e.arms:
            keys = []
            for p in arm.patterns:
                pc = p.__class__
                if pc is ast.WildcardPat:
                    keys = None
                    break
                if pc is ast.VariantPat:
                    k = self.c.refs[p].index
                else:
                    k = self.literal_key(p.value)
                if k not in seen:  # a repeated pattern never matches again
                    seen.add(k)
                    keys.append(k)
            out.append((keys, arm))
            if keys is None:
                break
        return out

    def literal_key(self, v):
        c = v.__class__
        if c is ast.IntLit or c is ast.BoolLit:
            return int(v.value)
        if c is ast.Unary and v.operand.__class__ is ast.IntLit:
            return -v.operand.value
        if c is ast.TextLit:
            return v.value
        raise Unsupported("this pattern is not compiled yet", v.span)

    # ------------------------------------------------------------ expressions

    def expr(self, e):
        if self.owned and self.owned_root(e):
            return self.own(self.place(e), e.span)
        return self.place(e)

    def place(self, e):
        """e without the copy `expr` makes of reads of owned variables (for the inner steps of
        such reads and for reads that cannot share storage, like `len`)."""
        x = self.raw(e)
        to = self.c.coercions.get(e)
        return self.convert(x, self.c.types.get(e), to, e) if to is not None else x

    def convert(self, x, frm: Type, to: Type | None, e):
        if to is None or to is frm:
            return x
        if frm is BOOL and to is TRUTH:
            return ir.Prim("bool_to_truth", [x], TRUTH)
        if to.__class__ is MoneyT and frm.__class__ is MoneyT and to.currency is not None \
                and frm.currency != to.currency:
            site = self.site("currency", e.span, f"currency mismatch: expected {to.currency} in `{self.text(e.span)}`")
            return ir.Prim("cur_check", [x], to, site, to.currency)
        return ir.Prim("id", [x], to)  # truth -> float, money -> money of unknown currency, arrays

    def raw(self, e):
        c = e.__class__
        t = self.c.types.get(e)
        if c is ast.IntLit or c is ast.FloatLit or c is ast.BoolLit or c is ast.TextLit:
            return ir.Const(t, e.value)
        if c is ast.MoneyLit:
            mv = self.c.money_values[e]
            return ir.Const(t, (mv.minor, mv.currency))
        if c is ast.Name or c is ast.Field:
            return self.name(e, t)
        if c is ast.Unary:
            return self.unary(e, t)
        if c is ast.Binary:
            if e.op in ("and", "or"):
                return ir.Logic(e.op, self.expr(e.left), self.expr(e.right), t)
            if e.op == "in":  # key, then map
                return ir.Prim("map_has", [self.expr(e.left), self.place(e.right)], BOOL)
            return self.binary(e.op, self.expr(e.left), self.expr(e.right), e.left, e.right, e)
        if c is ast.Call:
            return self.call(e, t)
        if c is ast.Index:
            if self.c.types.get(e.obj).__class__ is MapT:
                return ir.Prim("map_get", [self.place(e.obj), self.expr(e.index)], t, self.key_site(e))
            site = self.site("index", e.span)
            return ir.Prim("index", [self.place(e.obj), self.expr(e.index)], t, site)
        if c is ast.MapLit:  # inserted left to right (a repeated key: the last value wins)
            m = ir.Const(t, None)
            for x in e.entries:
                m = ir.Prim("map_insert", [m, self.expr(x.key), self.expr(x.value)], t, self.site("memory", e.span))
            return m
        if c is ast.ArrayLit:  # built at run time (a "memory" site) unless all constants
            elems = [self.expr(x) for x in e.elems]
            site = -1 if all(is_constant(x) for x in elems) else self.site("memory", e.span)
            return ir.Prim("array", elems, t, site)
        if c is ast.Match:
            arms, default = [], None
            for keys, arm in self.match_arms(e):
                if keys is None:
                    default = self.expr(arm.body)
                else:
                    arms.append((keys, self.expr(arm.body)))
            return ir.Switch(self.expr(e.subject), arms, default, t)
        raise Unsupported(f"`{c.__name__}` expressions are not compiled yet", e.span)

    def name(self, e, t):
        ref = self.c.refs.get(e)
        rc = ref.__class__
        if rc is Local:
            return ir.Load(self.vars[ref])
        if rc is FieldRef:
            return ir.Prim("field", [self.place(e.obj)], t, -1, ref.index)
        if rc is VariantRef:
            return ir.Const(ref.enum, ref.index)
        if rc is ItemRef and ref.kind == "const":
            return self.expr(ref.decl.value)
        if rc is ItemRef and ref.kind == "axiom":
            return ir.Const(TRUTH, self.truth.effective[self.axiom_index[id(ref.decl)]])
        raise Unsupported(f"`{self.text(e.span)}` is not a value the code generator knows", e.span)

    def unary(self, e: ast.Unary, t):
        x = self.expr(e.operand)
        if e.op == "not":
            return ir.Prim("not" if t is BOOL else "tnot", [x], t)
        if t is FLOAT:
            return ir.Prim("fneg", [x], t)
        return ir.Prim("neg" if t is INT else "mneg", [x], t, self.site("overflow", e.span))

    def binary(self, op: str, left, right, l, r, e):
        """`left op right` for arithmetic and comparison operators (l, r: the syntax operands)."""
        lt = self.c.converted_type(l)
        rt = self.c.converted_type(r)
        if op in _CMP:
            site = self.currency_site(lt, rt, e)
            return ir.Prim(_CMP[op], [left, right], BOOL, -1, site)
        name = _ARITH[op]
        if lt is INT and rt is INT:
            if name in ("div", "rem"):
                return ir.Prim("i" + name, [left, right], INT, self.site("div_zero", e.span),
                               self.site("overflow", e.span) if name == "div" else -1)
            return ir.Prim("i" + name, [left, right], INT, self.site("overflow", e.span))
        if lt is FLOAT and rt is FLOAT or lt is TRUTH or rt is TRUTH:
            return ir.Prim("f" + name, [left, right], FLOAT)
        if lt is TEXT:
            return ir.Prim("concat", [left, right], TEXT, self.site("memory", e.span))
        if lt.__class__ is ArrayT:
            t = self.c.types.get(e) if e.__class__ is ast.Binary else lt
            return ir.Prim("concat", [left, right], t, self.site("memory", e.span))
        t = self.c.types.get(e) if e.__class__ is ast.Binary else lt
        if name == "mul":  # `money * int` or `int * money`: operands stay in source order
            return ir.Prim("mmul", [left, right], t, self.site("overflow", e.span))
        cur = self.currency_site(lt, rt, e)
        if name == "div":
            return ir.Prim("mdiv", [left, right], FLOAT, self.site("div_zero", e.span), cur)
        return ir.Prim("m" + name, [left, right], t, self.site("overflow", e.span), cur)

    def currency_site(self, lt, rt, e) -> int:
        """A run-time currency check for money operands whose currencies are not both known."""
        if lt.__class__ is MoneyT and rt.__class__ is MoneyT and \
                (lt.currency is None or rt.currency is None):
            return self.site("currency", e.span)
        return -1

    def call(self, e: ast.Call, t):
        ref = self.c.refs.get(e.callee)
        if ref.__class__ is BuiltinRef and ref.builtin.name in _MAP_READS:  # no copy
            args = [self.place(a) for a in self.c.call_args[e]]
        else:
            args = [self.expr(a) for a in self.c.call_args[e]]
        if ref.__class__ is ItemRef and ref.kind in ("fn", "rule"):
            call = ir.Call(self.names[ref.decl], args, t)
            self.calls.append((self.current, call, e.span))
            return call
        if ref.__class__ is ItemRef and ref.kind == "record":
            return ir.Prim("record", args, t)
        if ref.__class__ is BuiltinRef:
            return self.builtin(ref.builtin.name, self.c.call_sigs[e], args, e, t)
        raise Unsupported("this call is not compiled yet", e.span)

    def builtin(self, name: str, sig, args, e, t):
        ps = sig.param_types
        p0 = ps[0] if ps else None
        if name == "len":
            return ir.Prim("map_len" if p0.__class__ is MapT else "len", args, INT)
        if name == "get":
            return ir.Prim("map_get_or", args, t)
        if name in ("keys", "values", "first", "after"):
            return ir.Prim("map_" + name, args, t, self.site("memory", e.span))
        if name == "float":
            return ir.Prim("itof" if p0 is INT else "id", args, FLOAT)
        if name == "int":
            return ir.Prim("ftoi", args, INT, self.site("int_range", e.span)) if p0 is FLOAT else args[0]
        if name == "truth":
            if p0 is BOOL:
                return ir.Prim("bool_to_truth", args, TRUTH)
            return ir.Prim("ftruth", args, TRUTH, self.site("truth_range", e.span))
        if name in ("ramp", "clamp01"):
            return ir.Prim(name, args, TRUTH, self.site("truth_range", e.span))
        if name in _FLOAT_BUILTINS:
            return ir.Prim(_FLOAT_BUILTINS[name], args, FLOAT)
        if name == "abs":
            if p0 is FLOAT:
                return ir.Prim("fabs", args, FLOAT)
            return ir.Prim("iabs" if p0 is INT else "mabs", args, t, self.site("overflow", e.span))
        if name in ("min", "max"):
            if p0.__class__ is MoneyT:
                return ir.Prim("m" + name, args, t, -1, self.currency_site(ps[0], ps[1], e))
            return ir.Prim(("i" if p0 is INT else "f") + name, args, t)
        if name == "minor":
            return ir.Prim("mminor", args, INT)
        if name == "scale":
            return ir.Prim("mscale", args, t, self.site("overflow", e.span))
        if name == "currency":
            return ir.Prim("mcurrency", args, TEXT)
        if name == "from_minor":
            code = args[1]
            if code.__class__ is not ir.Const:
                return ir.Prim("mfrom_minor", args, t, self.site("currency", e.span, "unknown currency code"))
            if code.value not in CURRENCY_EXPONENTS:  # (a const's text): the amount still runs first
                return ir.Prim("fail", args[:1], t, self.site("currency", e.span,
                                                               f"unknown currency code {code.value!r}"))
            return ir.Prim("mk_money", [args[0]], t, -1, code.value)
        if name == "micros":  # both are i64 microseconds natively
            return ir.Prim("id", args, t)
        if name == "at_micros":
            return ir.Prim("time_range", args, t, self.site("int_range", e.span, "time out of range (years 1 to 9999)"))
        if name == "append$":
            conflict = self.site("conflict", e.span, "the ledger already holds another entry under this key")
            host = self.site("host", e.span, "the runtime could not append to the ledger")
            return ir.Prim("host_append", args, BOOL, conflict, host)
        if name == "now$":
            return ir.Prim("host_now", [], TIME)
        if name == "text" and p0 is INT:
            return ir.Prim("itext", args, TEXT, self.site("memory", e.span))
        if name == "text" and p0 is BOOL:
            return ir.Prim("btext", args, TEXT)
        if name == "metric$":
            return ir.Prim("host_metric", args, FLOAT)
        if name == "config_int$":
            return ir.Prim("host_config_int", args, INT, self.site("host", e.span, "this configuration value is not an int"))
        if name == "ledger_has$":
            return ir.Prim("host_has", args, BOOL, self.site("host", e.span, "the ledger could not be read"))
        if name == "ledger_root$":
            return ir.Prim("host_root", args, TEXT, self.site("host", e.span, "the ledger root is not available"),
                           self.site("memory", e.span))
        if name == "config$":
            return ir.Prim("host_config", args, TEXT, self.site("host", e.span, "this configuration value is not set"),
                           self.site("memory", e.span))
        raise Unsupported(f"the built-in `{name}` is not compiled yet", e.span)


def _sccs(graph: dict) -> dict:
    """Tarjan's algorithm, iterative: node -> the index of its strongly connected component.
    A node on no cycle is a component of its own (a self-call puts it on a cycle: caller and
    callee are then the same node, hence in the same component)."""
    index: dict = {}
    low: dict = {}
    comp: dict = {}
    stack: list = []
    on: set = set()
    n = 0
    ncomp = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = n
        n += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = n
                    n += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp[w] = ncomp
                        if w == v:
                            break
                    ncomp += 1
    return comp
