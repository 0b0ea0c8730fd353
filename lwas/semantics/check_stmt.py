"""Statements: each `s_*` method checks one statement kind and returns True when it diverges
(control never reaches the next statement), which is what E0306 (missing return) and W0104
(unreachable code) are decided from.

Scopes are a stack: `block` opens one, `_bind` adds a Local to the innermost (two bindings of
one name in one block are E0102; shadowing an outer one is fine) and `_pop_scope` restores
what the block's names shadowed. Assignments report E0307 (immutable target) and E0313 (not
a variable, field or element).
"""
from __future__ import annotations

from lwas.semantics.check_info import FieldRef, ItemRef, Local, ModuleRef
from lwas.semantics.check_util import _snippet, target_text
from lwas.semantics.types import BOOL, ERROR, INT, TRUTH, UNIT, ArrayT, MapT
from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Label


class _Stmts:
    """Mixin of `_Checker` (lwas.semantics.typecheck): blocks, scopes and statements."""

    def block(self, b: ast.Block) -> bool:
        """Checks a block in a new scope; True when it diverges."""
        scope: dict = {}
        self.scopes.append(scope)
        self.scope_spans.append(b.span)
        st = self.st
        diverges = False
        warned = False
        for s in b.stmts:
            if diverges and not warned:
                warned = True
                self.sink.warning("W0104", "unreachable statement", s.span,
                                  label="this can never run",
                                  help="remove it, or move it before the `return`, `break` or `continue`")
            if st[s.__class__](s):
                diverges = True
        self._pop_scope()
        return diverges

    def _pop_scope(self) -> None:
        scope = self.scopes.pop()
        self.scope_spans.pop()
        if scope:
            env = self.env
            for name, prev in scope.items():
                if prev is None:
                    del env[name]
                else:
                    env[name] = prev

    def _bind(self, loc: Local, key=None) -> None:
        scope = self.scopes[-1]
        name = loc.name
        if name in scope:
            first = self.env.get(name)
            if first is not None:
                self._dup(name, loc.span, first.span, "variable")
        else:
            scope[name] = self.env.get(name)
        self.env[name] = loc
        self.out.locals.append(loc)
        self.out.bindings[loc.node if key is None else key] = loc

    def s_let(self, s: ast.Let) -> bool:
        if s.type is not None:
            t = self.resolve_type(s.type)
            self.check(s.value, t, f"expected `{t}` because of the annotation", s.type.span)
        else:
            t = self.value(s.value)
        self.out.let_types[s] = t
        self._bind(Local(s.name, t, "var" if s.mutable else "let", s, s.name_span, self.scope_spans[-1]))
        return False

    def s_assign(self, s: ast.Assign) -> bool:
        target = s.target
        tc = target.__class__
        t = ERROR
        if tc is ast.Name:
            loc = self.env.get(target.name)
            if loc is not None:
                self.refs[target] = loc
                t = loc.type
                self.types[target] = t
                self._mark_assigned(s, target, loc)
            else:
                ref = self.lookup(target.name, None)
                if ref is None:
                    self.undefined(target)
                else:
                    self.refs[target] = ref
                    self._not_assignable(s, target, ref)
                self.expr(s.value)
                return False
        elif tc is ast.Field or tc is ast.Index:
            root, loc = self._root_local(target)
            was_used = loc.used if loc is not None else False
            t = self.expr(target)
            if loc is not None:
                loc.used = was_used
                if not self._mark_assigned(s, root, loc):
                    t = ERROR
            elif t is not ERROR:
                ref = self.refs.get(target) if tc is ast.Field else None
                if ref.__class__ is not FieldRef and ref is not None:
                    self._not_assignable(s, target, ref)
                else:
                    rref = self.refs.get(root) if root.__class__ is ast.Name else None
                    if rref.__class__ is ItemRef and rref.kind == "const":
                        self._not_assignable(s, root, rref)
                    elif rref.__class__ is ModuleRef:
                        self._not_assignable(s, target, self.refs.get(target.obj) or rref)
                    else:
                        self.sink.error("E0313", "invalid assignment target", target.span,
                                        label="this is a temporary value, not a variable",
                                        help="assign to a `var`, or to a field or element of one")
                t = ERROR
        else:
            self.expr(target)
            self.sink.error("E0313", "invalid assignment target", target.span,
                            label="cannot assign to this expression",
                            help="only variables, record fields and array elements can be assigned to")
            t = ERROR
        op = s.op
        if op == "=":
            self.check(s.value, t, f"expected `{t}` because of the type of the target")
            return False
        vt = self.expr(s.value)
        if t is ERROR or vt is ERROR:
            return False
        bop = op[0]
        rt = self._arith(bop, t, vt, s, target, s.value)
        if rt is ERROR:
            return False
        if not self._convertible(rt, t):
            self.sink.error("E0301", f"mismatched types: `{target_text(target)} {bop} ...` gives `{rt}`, "
                                     f"which cannot be stored in a `{t}`", s.span,
                            label=f"the result is `{rt}`",
                            help="write the assignment out with an explicit conversion")
        return False

    def _root_local(self, target):
        """The name under a field/element target (`xs[i].f` -> `xs`) and its Local, or None."""
        root = target
        while root.__class__ is ast.Field or root.__class__ is ast.Index:
            root = root.obj
        return root, (self.env.get(root.name) if root.__class__ is ast.Name else None)

    def _mark_assigned(self, s, target, loc: Local) -> bool:
        """Statement s assigns to loc (named by target): True for a `var`, else E0307."""
        if loc.kind != "var":
            self._immutable(s, target, loc)
            return False
        loc.assigned = True
        return True

    def _immutable(self, s, target, loc: Local) -> None:
        name = loc.name
        if loc.kind == "param":
            msg = f"cannot assign to parameter `{name}`"
            help_ = f"parameters are immutable; copy it into a variable: `var {name} = {name}`"
            first = "parameter declared here"
        elif loc.kind == "for":
            msg = f"cannot assign to loop variable `{name}`"
            help_ = f"loop variables are immutable; copy it: `var {name}2 = {name}`"
            first = "loop variable bound here"
        else:
            msg = f"cannot assign twice to immutable binding `{name}`"
            help_ = f"declare it `var`: `var {name} = {_snippet(loc.node.value)}`"
            first = "first bound here"
        self.sink.error("E0307", msg, s.span, label="cannot assign to an immutable binding",
                        labels=(Label(loc.span, first),), help=help_)

    def _not_assignable(self, s, target, ref) -> None:
        if ref.__class__ is ItemRef and ref.kind == "const":
            self.sink.error("E0307", f"cannot assign to constant `{ref.name}`", s.span,
                            label="constants cannot change",
                            labels=(Label(ref.decl.name_span, "constant declared here"),),
                            help="declare it `var` inside a function body to have a variable")
            return
        what = self._describe_ref(ref)
        self.sink.error("E0313", "invalid assignment target", target.span,
                        label=f"`{target_text(target)}` is {what}, not a variable",
                        help="only variables, record fields and array elements can be assigned to")

    def s_if(self, s: ast.If) -> bool:
        self.cond(s.cond, "`if` conditions")
        d = self.block(s.then)
        o = s.orelse
        if o is None:
            return False
        if o.__class__ is ast.If:
            d2 = self.s_if(o)
        else:
            d2 = self.block(o)
        return d and d2

    def s_while(self, s: ast.While) -> bool:
        self.cond(s.cond, "`while` conditions")
        flag = [False]
        self.loops.append(flag)
        self.block(s.body)
        self.loops.pop()
        c = s.cond
        return c.__class__ is ast.BoolLit and c.value is True and not flag[0]

    def _loop_body(self, loc: Local, body: ast.Block, value: Local | None = None) -> None:
        self.scopes.append({})
        self.scope_spans.append(body.span)
        self._bind(loc)
        if value is not None:
            self._bind(value, (loc.node, "value"))
        self.loops.append([False])
        self.block(body)
        self.loops.pop()
        self._pop_scope()

    def s_for_range(self, s: ast.ForRange) -> bool:
        self.check(s.start, INT, "a range `a..b` counts with `int`s")
        self.check(s.end, INT, "a range `a..b` counts with `int`s")
        self._loop_body(Local(s.var, INT, "for", s, s.var_span, s.body.span), s.body)
        return False

    def s_for_each(self, s: ast.ForEach) -> bool:
        t = self.expr(s.iterable)
        el = vt = ERROR
        if t.__class__ is MapT:
            el, vt = t.key, t.value
        elif t.__class__ is ArrayT and s.value_var is None:
            el = t.elem
        elif t.__class__ is ArrayT:
            self.sink.error("E0301", f"mismatched types: expected a map, found `{t}`", s.iterable.span,
                            label="`for k, v in ...` walks a map's keys and values",
                            help=f"walk the elements with `for {s.var} in ...`, or count: "
                                 f"`for i in 0..len(xs)`")
        elif t is not ERROR:
            self.sink.error("E0301", f"mismatched types: expected an array or a map, found `{t}`",
                            s.iterable.span, label="`for x in ...` walks an array (or a map's keys)",
                            help="count with a range instead: `for i in 0..n`" if t is INT else None)
        value = None
        if s.value_var is not None:
            value = Local(s.value_var, vt, "for", s, s.value_span, s.body.span)
        self._loop_body(Local(s.var, el, "for", s, s.var_span, s.body.span), s.body, value)
        return False

    def s_delete(self, s: ast.Delete) -> bool:
        """`delete m[k]`: like an assignment to `m[k]` (m must be a `var`, or state in an `on`
        block), without reading the element: deleting an absent key changes nothing."""
        target = s.target
        if target.__class__ is not ast.Index:
            self.expr(target)
            self.sink.error("E0313", "invalid `delete` target", target.span,
                            label="`delete` removes a key from a map: `delete m[k]`")
            return False
        mt = self.expr(target.obj)
        if mt is ERROR:
            self.expr(target.index)
            return False
        if mt.__class__ is not MapT:
            self.expr(target.index)
            self.sink.error("E0311", f"cannot `delete` from a value of type `{mt}`", target.obj.span,
                            label="not a map",
                            help="arrays keep their length: build a new one without the element"
                            if mt.__class__ is ArrayT else None)
            return False
        self.check(target.index, mt.key, f"map keys are `{mt.key}`")
        self.types[target] = mt.value
        root, loc = self._root_local(target)
        if loc is None:
            self.sink.error("E0313", "invalid `delete` target", target.span,
                            label="this is not a variable", help="delete from a `var`: `var m2 = m` first")
        else:
            self._mark_assigned(s, root, loc)
        return False

    def s_return(self, s: ast.Return) -> bool:
        v = s.value
        if self.kind == "test" or self.kind == "const":
            self.sink.error("E0317", "`return` outside a function", s.span,
                            label="a test ends when its block ends",
                            help="use `assert` to check values; remove the `return`")
            if v is not None:
                self.expr(v)
            return True
        ret = self.ret
        if v is None:
            if ret is not UNIT and ret is not ERROR:
                self.sink.error("E0301", f"mismatched types: expected `{ret}`, found `()`", s.span,
                                label=f"`return` needs a value of type `{ret}`",
                                labels=(Label(self.ret_span, f"the result type is `{ret}`"),))
            return True
        if ret is UNIT:
            t = self.expr(v)
            if t is not ERROR:
                self.sink.error("E0301", f"mismatched types: expected `()`, found `{t}`", v.span,
                                label="this function has no result type",
                                labels=(Label(self.ret_span, "declared without `-> T`"),),
                                help=f"declare the result type: `-> {t}`" if t is not UNIT else None)
            return True
        self.check(v, ret, f"expected `{ret}` because of the return type", self.ret_span)
        return True

    def s_break(self, s) -> bool:
        if not self._in_loop(s, "break"):
            return False
        self.loops[-1][0] = True
        return True

    def s_continue(self, s) -> bool:
        return self._in_loop(s, "continue")

    def _in_loop(self, s, word: str) -> bool:
        """Whether `break`/`continue` (word) is inside a loop; E0314 when it is not."""
        if self.loops:
            return True
        self.sink.error("E0314", f"`{word}` outside a loop", s.span,
                        label=f"cannot `{word}` outside a `while` or `for`")
        return False

    def s_append(self, s: ast.Append) -> bool:
        """The service stage rewrites every `append` it owns, so one that reaches the checker is
        outside a service."""
        self.sink.error("E0402", "`append` outside a service", s.span, label="ledgers belong to services",
                        help="append in a service's post/put/patch/delete route or timer")
        return False

    def s_assert(self, s: ast.Assert) -> bool:
        self.cond(s.cond, "`assert` conditions")
        return False

    def s_expr(self, s: ast.ExprStmt) -> bool:
        e = s.expr
        if e.__class__ is ast.Match:
            return self.match_stmt(e)
        self.expr(e)
        return False

    def cond(self, e, what: str) -> None:
        t = self.expr(e)
        if t is BOOL or t is ERROR:
            return
        if t is TRUTH:
            self.sink.error("E0301", "mismatched types: expected `bool`, found `truth`", e.span,
                            label=f"{what} must be `bool`",
                            help="compare the truth with a threshold: `x >= 0.5`")
        else:
            self.sink.error("E0301", f"mismatched types: expected `bool`, found `{t}`", e.span,
                            label=f"{what} must be `bool`")
