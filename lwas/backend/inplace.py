"""Which state maps a service's writers may change in place (lwas.backend.mapgen.insert_owned).

Maps are persistent: `state.days[d] = day` copies the path to `d` and shares the rest, so any
value that shares the old map keeps seeing it. A state field's nodes can be written in place
instead when nothing but the field itself can reach them. lwas.semantics.service makes every writer (an
`on` block, a mutating route, a timer) a function `f(state$: S, ...)` that starts with
`var state = state$`; a map field `F` of S is *owned* when, in every writer of S, `state.F`
only appears

- indexed (`state.F[k]`, read or as an assignment or `delete` target),
- as the map of `k in state.F` or of the reads `len`, `get`, `keys`, `values`, `first`,
  `after` (which copy out what they return),
- as a whole assignment target (`state.F = m`: the field then holds m's nodes, which no
  owned insert made, so none of them will be written),

and `state` itself only appears as `state.field`, as `return state`, as the target of
`state = ...`, or as an argument of a generated `$` function (the `on` block a route's
`append` calls, a reply record): uses that hand the state on and drop the old one.
Anything else (`let m = state.F`, `for k in state.F`, `f(state.F)`, `let s = state`)
could keep the old nodes alive beside the field, and makes the field (or every field) shared.
The check is over all writers of S at once, because a fold runs many of them under one edit
number. Readers (`get` routes, guards) never write, and see only committed, sealed nodes.
"""
from __future__ import annotations

from lwas.syntax import tree as ast
from lwas.semantics.typecheck import BuiltinRef, FieldRef
from lwas.semantics.types import MapT, RecordT

_MAP_READS = frozenset({"len", "get", "keys", "values", "first", "after"})


def owned_fields(fns, checked) -> dict[RecordT, frozenset[int]]:
    """For each state record S written by some function in fns (FnDecls), the indices of the
    map fields of S that every writer of S leaves owned."""
    out: dict[RecordT, set[int]] = {}
    for d in fns:
        s = state_local(d, checked)
        if s is None:
            continue
        rec = s.type
        mine = {i for i, t in enumerate(rec.fields.values()) if t.__class__ is MapT} - _shared(d.body, s, checked)
        out[rec] = out[rec] & mine if rec in out else mine
    return {r: frozenset(f) for r, f in out.items()}


def state_local(d, checked):
    """The `state` variable of a writer `f(state$: S, ...) { var state = state$ ... }`, or None."""
    if d.__class__ is not ast.FnDecl or not d.params or d.params[0].name != "state$" \
            or d.body.__class__ is not ast.Block or not d.body.stmts:
        return None
    first = d.body.stmts[0]
    if first.__class__ is not ast.Let or first.name != "state" or first.value.__class__ is not ast.Name \
            or first.value.name != "state$":
        return None
    s = checked.bindings.get(first)
    return s if s is not None and s.type.__class__ is RecordT else None


def _shared(body, s, checked) -> set[int]:
    """Indices of the map fields of s's record that body may share (all of them: `state` escapes)."""
    every = {i for i, t in enumerate(s.type.fields.values()) if t.__class__ is MapT}
    parents = _parents(body)
    bad: set[int] = set()
    for n, parent in parents.values():
        if n.__class__ is not ast.Name or checked.refs.get(n) is not s:
            continue
        c = parent.__class__
        if c is ast.Field:
            ref = checked.refs.get(parent)
            if ref.__class__ is FieldRef and ref.index in every and not _owned_use(parent, parents, checked):
                bad.add(ref.index)
        elif c is ast.Return or c is ast.Assign and parent.target is n:
            pass
        elif c is ast.Arg and _callee(parents[id(parent)][1]).count("$"):
            pass  # handed to a generated function
        else:
            return every
    return bad


def _owned_use(f, parents: dict, checked) -> bool:
    """Whether `state.F` (the node f) is used as an owned map may be (see the module docstring)."""
    parent = parents[id(f)][1]
    c = parent.__class__
    if c is ast.Index:
        return parent.obj is f
    if c is ast.Binary:
        return parent.op == "in" and parent.right is f
    if c is ast.Assign:
        return parent.target is f
    if c is ast.Arg:
        call = parents[id(parent)][1]
        return checked.refs.get(call.callee).__class__ is BuiltinRef and _callee(call) in _MAP_READS \
            and call.args[0] is parent
    return False


def _callee(call) -> str:
    return call.callee.name if call.__class__ is ast.Call and call.callee.__class__ is ast.Name else ""


def _parents(tree) -> dict:
    """id(node) -> (node, its parent) for every node under tree (syntax nodes are values, so
    they are told apart by identity)."""
    out: dict = {}
    stack = [(n, None) for n in ast.walk_roots(tree)]
    while stack:
        n, parent = stack.pop()
        out[id(n)] = (n, parent)
        stack.extend((c, n) for c in ast.children(n))
    return out
