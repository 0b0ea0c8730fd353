"""The truth-consistency phase: can the axioms' declared truths and premises hold together?

Semantics (docs/contract.md, "Axioms"). Each axiom a has a value x_a in [0, 1], within its declared
point or interval; `a requires d` means x_a <= x_d; `a contradicts b` means x_a + x_b <= 1; an
axiom without a value holds exactly its weakest premise, x_v = min over its premises x_d.

Why this is linear and needs no solver: every constraint is monotone, so the solutions are
closed under componentwise min and, when there is any, there is a least one, L. It is the least
fixed point of the "lower" half of the system (lower ends; `a requires d` pushes x_a onto x_d;
a valueless axiom is at least its weakest premise), found by one pass over the requires graph
with dependents before premises (the demand D) and one pass with premises first (a valueless
axiom's L is the weakest L of its premises). What is left (upper ends, contradictions) is
downward closed, so the program is consistent exactly when L satisfies it. The effective truth
of an axiom is L: what every solution guarantees. U, the least upper end among an axiom and
everything beneath it, is what its premises allow (hover text, E0203).

Which error. L breaks an upper end exactly when some axiom's lower end exceeds its U: each such
axiom gets E0203, with the chain down to its weakest premise. A contradiction L breaks gets
E0204 when the two declared lower ends alone break it, else E0206 (a bound came through
`requires` or a weakest premise). Together they cover every infeasible program, once per cause:
the demand stops at each axiom's upper end, so an overclaim is not reported a second time as a
contradiction further down. Bad values, valueless axioms without premises and cycles (E0201,
E0207, E0205) are reported and then relaxed or left out, so they do not cascade either.

Every error names the constraints behind it as a minimal infeasible set (dropping any one makes
it satisfiable), as text for people and as tuples for tools and tests:
    ("bound_lo", i, v)   x_i >= v          ("bound_hi", i, v)   x_i <= v
    ("requires", a, d)   x_a <= x_d        ("contradicts", a, b) x_a + x_b <= 1  (a == b allowed)
    ("min_ge", v)        x_v >= min of x_d over v's premises (the other half of "holds its
                         weakest premise" is the ("requires", v, d) constraints)

The columnar core `solve` works on plain lists; `check_truth` is the compiler phase on a
resolved Program.
"""
from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass, field
from itertools import chain, compress
from operator import gt, not_
from typing import Sequence

from lwas.syntax.diagnostics import Label, Sink, Suggestion

# Sums of decimal literals are not exact in binary (0.8 + 0.2 > 1 by one ulp): a contradiction
# is violated only when the sum exceeds 1 by more than this.
EPS = 1e-9
_LIMIT = 1.0 + EPS
_MINIMIZE_MAX = 300  # explanations with a min_ge are shrunk by deletion up to this size
_EXPLAINED_MAX = 500  # E0203 / E0206 errors explained in full, and their total constraints:
_EXPLAIN_BUDGET = 200_000  # beyond either, the rest are summed up in one error per code
_CHAIN_SHOWN = 10  # longer chains are shown with their middle elided
_LABELS_MAX = 40  # and at most this many axioms of a chain get a label


@dataclass(eq=False)
class Violation:
    """One error found by the core, already worded; check_truth adds the spans."""

    code: str
    message: str
    axioms: list[int]  # every axiom involved, in the order the chain names them
    note: str = ""  # the chain as text
    help: str = ""
    label: str = ""  # text under the primary caret
    constraints: list[tuple] = field(default_factory=list)  # the minimal infeasible set
    pair: tuple[int, int] | None = None  # E0204/E0206: a's `contradicts` clause names b
    lower_to: float | None = None  # E0203: the most axioms[0] may claim (the fix lowers it there)


@dataclass(eq=False)
class Solution:
    effective: list[float]  # L: the truth every solution guarantees (see the module docstring)
    upper: list[float]  # U: the most an axiom's own upper end and its premises allow
    feasible: bool  # the constraints that remain after exclusions can all hold
    violations: list[Violation]
    cycles: list[list[int]]  # one concrete cycle per strongly connected component
    excluded: set[int]  # axioms in a cycle: left out of every other check

    @property
    def ok(self) -> bool:
        return not self.violations


# ---------------------------------------------------------------- the columnar core

def solve(lo: Sequence[float], hi: Sequence[float], valued: Sequence[bool],
          requires: Sequence[Sequence[int]], contradicts: Sequence[Sequence[int]] | None = None,
          names: Sequence[str] | None = None) -> Solution:
    """Decide consistency in O(N + E) and explain every violation.

    lo, hi, valued: one entry per axiom (lo == hi for a point; lo/hi of valueless axioms are
    ignored). requires[a] / contradicts[a]: lists of the indices of the axioms a requires /
    contradicts, as in resolve.Program; -1 marks a name that did not resolve (the caller reports
    it): it is ignored, and a valueless axiom with one becomes unconstrained. Any other index
    outside range(n) is a ValueError. names: for messages (default "#i"). The results are new
    lists; the arguments are not modified.

    Bad values (E0201) and valueless axioms without premises (E0207) are treated as [0, 1];
    axioms in a requires cycle (E0205) are left out of the other checks, so errors do not cascade.
    Fast path: when every premise has a lower index than its dependent (declared first, as
    people write), one backwards and one forwards sweep do everything. Otherwise Kahn's
    algorithm orders the axioms first (same O(N + E), about 3x the constant in CPython).
    """
    n = len(valued)
    if not (len(lo) == len(hi) == len(requires) == n) or (contradicts is not None and len(contradicts) != n):
        raise ValueError("lo, hi, valued, requires and contradicts must have one entry per axiom")
    con = contradicts if contradicts is not None else [[]] * n
    st = _State(n, names)
    st.lo_decl, st.hi_decl, st.valued_decl = lo, hi, valued
    lo_e, hi_e = list(lo), list(hi)
    ve = list(map(bool, valued))  # valued, or treated so: no "weakest premise" rule
    valueless = list(compress(range(n), map(not_, ve)))
    for i in valueless:
        lo_e[i], hi_e[i] = 0.0, 1.0
    req = requires

    # One demand pass settles the common case: premises declared before their dependents, every
    # value in range, every name resolved. Anything else is found during the pass and repaired
    # (it is an error or rarer), then the pass runs again.
    cycles: list[list[int]] = []
    excluded: set[int] = set()
    cycle_errors: list[Violation] = []
    bad: list[int] = []
    repaired: set[int] = set()
    while True:
        try:
            order, D, clamped, leftover, status = _demand(req, lo_e, hi_e)
        except IndexError:
            raise ValueError("a premise index is out of range") from None
        repair = -1 if status == _OK and leftover else status
        if repair in repaired:
            raise AssertionError("the same repair twice")  # each one happens at most once
        if repair != _OK:
            repaired.add(repair)
        if status == _UNRESOLVED:
            req = [[d for d in l if d >= 0] if l and min(l) < 0 else l for l in req]
        elif status == _BAD_VALUE:
            bad = [i for i in compress(range(n), ve) if not 0.0 <= lo_e[i] <= hi_e[i] <= 1.0]
            for i in bad:
                lo_e[i], hi_e[i] = 0.0, 1.0
        elif leftover:
            for comp in _cycle_components(req, leftover):
                cyc = _shortest_cycle(req, comp)
                cycles.append(cyc)
                excluded.update(comp)
                cycle_errors.append(_cycle(st, cyc, comp))
            req = _without(req, excluded, ve)
        else:
            break
    if order is not None:
        order.reverse()  # premises first
    violations = [_bad_value(st, i) for i in bad]
    for v in valueless:
        if not requires[v]:
            violations.append(_no_value(st, v))
            ve[v] = True
        elif len(req[v]) != len(requires[v]):
            ve[v] = True  # an unresolved or excluded premise: the weakest link is unknown
    violations += cycle_errors
    st.lo, st.hi, st.ve, st.req = lo_e, hi_e, ve, req

    # The premises-first pass: U for everyone, then L for valueless axioms.
    U = array("d", hi_e)
    for a, lst in (zip(order, map(req.__getitem__, order)) if order is not None else enumerate(req)):
        u = U[a]
        for d in lst:
            x = U[d]
            if x < u:
                u = x
        U[a] = u
    L = array("d", D)
    Lg = L.__getitem__
    vl = [v for v in valueless if not ve[v]]
    if order is not None and vl:
        vl = list(compress(order, map(not_, map(ve.__getitem__, order))))
    for v in vl:
        m = min(map(Lg, req[v]))
        if m > L[v]:
            L[v] = m
    st.D, st.L, st.U = D, L, U

    # E0203: claims above what the premises allow (exactly when the demand pass had to clamp).
    # Chains can be long; past a budget the rest are summed up so errors never cost O(N^2).
    feasible = True
    budget = _Budget()
    if clamped:
        feasible = False
        over = list(compress(range(n), map(gt, lo_e, U)))
        for k, a in enumerate(over):
            if budget.spent():
                violations.append(_more(st, "E0203", over[k:]))
                break
            violations.append(budget.charge(_over_premises(st, a)))

    # E0204 / E0206: contradictions the least solution violates, each unordered pair once
    seen: set[tuple[int, int]] = set()
    unexplained: list[int] = []
    for a in compress(range(n), con):
        la = L[a]
        for b in con[a]:
            if b >= 0 and la + L[b] > _LIMIT:
                if excluded and (a in excluded or b in excluded):
                    continue
                key = (a, b) if a <= b else (b, a)
                if key in seen:
                    continue
                seen.add(key)
                feasible = False
                if lo_e[a] + lo_e[b] > _LIMIT:
                    violations.append(_contradiction(st, a, b))
                elif budget.spent():
                    unexplained += [x for x in (a, b) if x not in unexplained]
                else:
                    violations.append(budget.charge(_infeasible(st, a, b)))
    if unexplained:
        violations.append(_more(st, "E0206", unexplained))

    return Solution(L.tolist(), U.tolist(), feasible, violations, cycles, excluded)


@dataclass(eq=False)
class _State:
    """What explanations need to look back at after the passes."""

    n: int
    names: Sequence[str] | None
    lo_decl: Sequence[float] = ()
    hi_decl: Sequence[float] = ()
    valued_decl: Sequence[bool] = ()
    lo: list[float] = field(default_factory=list)  # effective lower ends (0 for valueless, bad)
    hi: list[float] = field(default_factory=list)
    ve: list[bool] = field(default_factory=list)  # treated as valued (no "weakest premise" rule)
    req: Sequence[Sequence[int]] = ()
    D: array | None = None
    L: array | None = None
    U: array | None = None
    _deps: list[list[int]] | None = None

    def name(self, i: int) -> str:
        return self.names[i] if self.names is not None else f"#{i}"

    def value(self, i: int) -> str:
        """The declared value as written: 0.6, 0.6..0.9, or "no value"."""
        if not self.valued_decl[i]:
            return "no value"
        l, h = self.lo_decl[i], self.hi_decl[i]
        return _num(l) if l == h else f"{_num(l)}..{_num(h)}"

    def deps(self) -> list[list[int]]:
        """Dependents of each axiom (reverse requires edges), built only to explain an error."""
        if self._deps is None:
            deps: list[list[int]] = [[] for _ in range(self.n)]
            for a, lst in enumerate(self.req):
                for d in lst:
                    deps[d].append(a)
            self._deps = deps
        return self._deps


_OK, _BAD_VALUE, _UNORDERED, _UNRESOLVED = 0, 1, 2, 3


def _demand(req, lo, hi):
    """The demand pass: in declaration order when that is a topological order (the common,
    fast case), else in Kahn's order. Returns (order or None, D, clamped, leftover, status)."""
    D, clamped, status = _demand_ordered(req, lo, hi)
    if status != _UNORDERED:
        return None, D, clamped, [], status
    least = min(chain.from_iterable(req), default=0)
    if least < -1:
        raise ValueError("a premise index is out of range")
    if least == -1:
        return None, None, [], [], _UNRESOLVED
    return _demand_kahn(req, lo, hi)


def _demand_ordered(req, lo, hi):
    """D(d) = max(lo_d, D of every dependent), clamped at hi_d, walking from the last axiom to
    the first. Valid only if every premise index is below its dependent's: stops with
    _UNORDERED at the first that is not (or is negative), and with _BAD_VALUE at a value not in
    [0, 1] (checked here, where it costs least)."""
    D = array("d", lo)
    clamped = []
    a = len(req)
    for lst, l, h in zip(reversed(req), reversed(lo), reversed(hi)):
        a -= 1
        x = D[a]
        if x > h or not 0.0 <= l <= h <= 1.0:
            if not 0.0 <= l <= h <= 1.0:
                return D, clamped, _BAD_VALUE
            x = h
            D[a] = x
            clamped.append(a)
        for d in lst:
            if not 0 <= d < a:
                return D, clamped, _UNORDERED
            if D[d] < x:
                D[d] = x
    return D, clamped, _OK


def _demand_kahn(req, lo, hi):
    """The demand pass in Kahn's order (dependents first). What is left over is every axiom in
    a cycle or beneath one. Every premise index must be in range(n)."""
    n = len(req)
    indeg = [0] * n
    for lst in req:
        for d in lst:
            indeg[d] += 1
    D = array("d", lo)
    clamped = []
    order = list(compress(range(n), map(not_, indeg)))
    append = order.append
    for a in order:  # grows while we walk it
        x = D[a]
        h = hi[a]
        if x > h or not 0.0 <= lo[a] <= h <= 1.0:
            if not 0.0 <= lo[a] <= h <= 1.0:
                return None, None, [], [], _BAD_VALUE
            x = h
            D[a] = x
            clamped.append(a)
        for d in req[a]:
            if D[d] < x:
                D[d] = x
            k = indeg[d] - 1
            indeg[d] = k
            if not k:
                append(d)
    leftover = list(compress(range(n), indeg)) if len(order) < n else []
    return order, D, clamped, leftover, _OK


def _cycle_components(req, nodes) -> list[list[int]]:
    """Strongly connected components with a cycle (Tarjan, iterative), in first-seen order."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    found: list[list[int]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, 0)]
        while work:
            v, i = work[-1]
            lst = req[v]
            if i < len(lst):
                work[-1] = (v, i + 1)
                w = lst[i]
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, 0))
                elif w in on_stack and index[w] < low[v]:
                    low[v] = index[w]
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in req[v]:
                    found.append(sorted(comp))
    found.sort()
    return found


def _shortest_cycle(req, comp: list[int]) -> list[int]:
    """A shortest cycle through the component's first axiom (BFS inside the component)."""
    inside = set(comp)
    start = comp[0]
    parent = {start: -1}
    queue = deque([start])
    while queue:
        u = queue.popleft()
        for w in req[u]:
            if w == start:
                path = [u]
                while parent[path[-1]] != -1:
                    path.append(parent[path[-1]])
                return path[::-1]
            if w in inside and w not in parent:
                parent[w] = u
                queue.append(w)
    raise AssertionError("a strongly connected component without a cycle")


def _without(req, excluded: set[int], ve: list[bool]):
    """The requires lists with excluded axioms cut out; a valueless axiom that loses a premise
    becomes unconstrained (its weakest link is unknown)."""
    out = list(req)
    for a, lst in enumerate(req):
        if a in excluded:
            out[a] = []
            ve[a] = True
        elif lst and not excluded.isdisjoint(lst):
            out[a] = [d for d in lst if d not in excluded]
            ve[a] = True
    return out


# ---------------------------------------------------------------- explanations

@dataclass
class _Budget:
    """How much explaining is left: a huge broken program gets its first errors in full."""

    errors: int = _EXPLAINED_MAX
    constraints: int = _EXPLAIN_BUDGET

    def spent(self) -> bool:
        return self.errors <= 0 or self.constraints <= 0

    def charge(self, v: Violation) -> Violation:
        self.errors -= 1
        self.constraints -= len(v.constraints)
        return v


def _more(st: _State, code: str, axioms: list[int]) -> Violation:
    """The summary after the budget: which axioms are still involved, without chains."""
    shown = [f"`{st.name(i)}`" for i in axioms[:5]]
    if len(axioms) > 5:
        shown.append(f"{len(axioms) - 5} more")
    what = ("more axioms are more certain than their premises allow" if code == "E0203"
            else "more axioms are in contradictions that cannot hold")
    return Violation(code, f"{len(axioms)} {what}: {_and(shown)}", list(axioms),
                     note="not explained one by one: fix the errors above first, most of these often follow",
                     help="run the check again after fixing the errors above", label="and more like it")


def _bad_value(st: _State, i: int) -> Violation:
    l, h = st.lo_decl[i], st.hi_decl[i]
    name = st.name(i)
    if l == h or (l != l and h != h):
        what = "in [0, 1]" if math.isfinite(l) else "a finite number"
        msg = f"truth value {_num(l)} of axiom `{name}` is not {what}"
        hint = "a truth value is a finite number from 0.0 (certainly false) to 1.0 (certainly true)"
        label = f"not {what}"
    elif 0.0 <= h <= l <= 1.0:
        msg = f"interval {_num(l)}..{_num(h)} of axiom `{name}` is empty: {_num(l)} > {_num(h)}"
        hint = f"write the smaller end first: {_num(h)}..{_num(l)}"
        label = "empty interval"
    else:
        msg = f"interval {_num(l)}..{_num(h)} of axiom `{name}` is not within [0, 1]"
        hint = "an interval `lo..hi` needs 0 <= lo <= hi <= 1"
        label = "not within [0, 1]"
    return Violation("E0201", msg, [i], note=f"{name} is treated as unconstrained (0.0..1.0) in the other checks",
                     help=hint, label=label)


def _no_value(st: _State, v: int) -> Violation:
    name = st.name(v)
    return Violation(
        "E0207", f"axiom `{name}` has neither a value nor premises", [v],
        note=f"an axiom without a value holds exactly its weakest premise, and `{name}` has none",
        help=f"give it a value (`axiom {name} = 1.0`) or premises (`axiom {name} requires ...`)",
        label="no value and no premises")


def _cycle(st: _State, cyc: list[int], comp: list[int]) -> Violation:
    names = [st.name(i) for i in cyc]
    ring = " -> ".join(names + names[:1])
    note = " -> ".join([f"{st.name(i)} ({st.value(i)})" for i in cyc] + names[:1])
    on_cycle = set(cyc)
    others = [st.name(i) for i in comp if i not in on_cycle]
    if others:
        note += f"; {_and(others)} {'is' if len(others) == 1 else 'are'} caught in the same tangle"
    edges = [("requires", a, cyc[(k + 1) % len(cyc)]) for k, a in enumerate(cyc)]
    return Violation("E0205", f"axioms require each other in a cycle: {ring}", list(cyc), note=note,
                     help=f"break the cycle: let one of {_and([f'`{x}`' for x in names], 'or')} rest on an axiom outside it",
                     label=f"{names[0]} requires {names[1 % len(names)]}", constraints=edges)


def _over_premises(st: _State, a: int) -> Violation:
    """lo_a > U(a): follow premises whose U is U(a) down to the one whose own upper end it is."""
    bound = st.U[a]
    path = [a]
    j = a
    while j == a or st.hi[j] != bound:
        j = next(d for d in st.req[j] if st.U[d] == bound)
        path.append(j)
    cons = [("bound_lo", a, st.lo[a])]
    cons += [("requires", path[k], path[k + 1]) for k in range(len(path) - 1)]
    cons.append(("bound_hi", j, st.hi[j]))
    name = st.name(a)
    raise_ = [f"`{st.name(i)}`" for i in path[1:] if st.hi[i] < st.lo[a]]
    steps = [f"{st.name(i)} ({st.value(i)})" for i in path]
    return Violation(
        "E0203",
        f"axiom `{name}` ({st.value(a)}) is more certain than its premises allow (at most {_num(bound)})",
        path, note=_elide(steps),
        help=f"lower {_claim(st, a)} to at most {_num(bound)}, or raise {_and(raise_)}",
        label=f"claims {st.value(a)}, but its premises allow at most {_num(bound)}", constraints=cons,
        lower_to=bound)


def _contradiction(st: _State, a: int, b: int) -> Violation:
    """Declared lower ends alone break `a contradicts b` (E0204)."""
    la, lb = st.lo[a], st.lo[b]
    na, nb = st.name(a), st.name(b)
    points = st.lo_decl[a] == st.hi_decl[a] and st.lo_decl[b] == st.hi_decl[b]
    total = _num(la + lb)
    if a == b:
        msg = f"`{na}` ({st.value(a)}) contradicts itself but {_num(la)} + {_num(la)} = {total} > 1"
        note = f"{na} ({st.value(a)}) contradicts itself: {_num(la)} + {_num(la)} = {total} > 1"
        hint = f"lower {_claim(st, a)} to at most 0.5"
        cons = [("bound_lo", a, la), ("contradicts", a, a)]
    else:
        msg = (f"`{na}` ({st.value(a)}) and `{nb}` ({st.value(b)}) contradict each other but sum to "
               f"{'' if points else 'at least '}{total} > 1")
        note = f"{na} ({st.value(a)}) contradicts {nb} ({st.value(b)}): {_num(la)} + {_num(lb)} = {total} > 1"
        hint = f"lower {_claim(st, a)} to at most {_num(1 - lb)}, or {_claim(st, b)} to at most {_num(1 - la)}"
        cons = [("bound_lo", a, la), ("bound_lo", b, lb), ("contradicts", a, b)]
    return Violation("E0204", msg, [a] if a == b else [a, b], note=note, help=hint, label=_pair_label(st, a, b),
                     constraints=cons, pair=(a, b))


def _infeasible(st: _State, a: int, b: int) -> Violation:
    """A contradiction broken only by propagated bounds (E0206): derive why x_a and x_b are at
    least L, shrink that to a minimal set when a "weakest premise" step is in it, and word it."""
    cons = _derive(st, [a, b])
    cons.append(("contradicts", a, b))
    prem = st.req
    if any(c[0] == "min_ge" for c in cons) and len(cons) <= _MINIMIZE_MAX:
        cons = _minimize(cons, prem)
    infeasible, L, why = _least(cons, prem)
    assert infeasible, "an explanation must be infeasible"
    names: dict[int, None] = {}  # axioms in the order the text names them
    own = [why.get(i, ("bound_lo",))[0] == "bound_lo" for i in (a, b)]
    first, second = (b, a) if own[0] and not own[1] else (a, b)  # the propagated side first
    text = _chain(st, first, L, why, prem, names)
    nf, ns = st.name(first), st.name(second)
    if a == b:
        text += f" -> {nf} contradicts itself, so {nf} <= 0.5"
    else:
        text += f" -> {nf} contradicts {ns}, so {ns} <= {_num(1 - L[first])}, but "
        text += _chain(st, second, L, why, prem, names)
    lows = {c[1] for c in cons if c[0] == "bound_lo"}
    roots = [i for i in names if i in lows]
    if any(c[0] == "min_ge" for c in cons):
        hint = (f"lower one of {_and([_claim(st, r) for r in roots], 'or')}, "
                "or drop one of the `requires` or `contradicts` in the chain")
    else:
        ra, rb = _root(why, first), _root(why, second)
        if a == b or ra == rb:
            hint = f"lower {_claim(st, ra)} to at most 0.5"
        else:
            hint = (f"lower {_claim(st, ra)} to at most {_num(1 - L[rb])}, "
                    f"or {_claim(st, rb)} to at most {_num(1 - L[ra])}")
    involved = list(names) + [i for i in sorted({x for c in cons for x in _vars(c, prem)}) if i not in names]
    return Violation("E0206", f"no truth values satisfy {_and([f'`{st.name(i)}`' for i in names])}",
                     involved, note=text, help=hint, label=_pair_label(st, a, b), constraints=cons, pair=(a, b))


def _pair_label(st: _State, a: int, b: int) -> str:
    return f"{st.name(a)} contradicts itself" if a == b else f"{st.name(a)} contradicts {st.name(b)}"


def _derive(st: _State, targets: list[int]) -> list[tuple]:
    """Constraints that force x_t >= L(t) for each target, one reason per axiom: its own lower
    end, the dependent that pushed the largest demand onto it, or its weakest premise."""
    out: dict[tuple, None] = {}
    done_full: set[int] = set()
    done_demand: set[int] = set()
    deps = st.deps()
    D, L, lo = st.D, st.L, st.lo
    stack = [(True, t) for t in reversed(targets)]
    while stack:
        full, i = stack.pop()
        if full:
            if i in done_full:
                continue
            done_full.add(i)
            if st.ve[i] or D[i] >= L[i]:
                stack.append((False, i))
            else:
                out[("min_ge", i)] = None
                stack.extend((True, d) for d in reversed(st.req[i]))
            continue
        path = []
        j = i
        while j not in done_demand:
            done_demand.add(j)
            best, parent = lo[j], -1
            for p in deps[j]:
                if D[p] > best:
                    best, parent = D[p], p
            if parent < 0:
                if lo[j] > 0.0:
                    path.append(("bound_lo", j, lo[j]))
                break
            path.append(("requires", parent, j))
            j = parent
        for c in reversed(path):
            out[c] = None
    return list(out)


def _vars(c: tuple, prem) -> list[int]:
    if c[0] in ("bound_lo", "bound_hi"):
        return [c[1]]
    if c[0] == "min_ge":
        return [c[1], *prem[c[1]]]
    return [c[1], c[2]]


def _least(cons: list[tuple], prem) -> tuple[bool, dict[int, float], dict[int, tuple]]:
    """The least solution of a small constraint set, with the reason for each value, and whether
    the set is infeasible. A worklist fixpoint: values only rise, through a finite set."""
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    succ: dict[int, list[int]] = {}
    watch: dict[int, list[int]] = {}
    pairs = []
    nodes: set[int] = set()
    for c in cons:
        nodes.update(_vars(c, prem))
        kind = c[0]
        if kind == "bound_lo":
            lo[c[1]] = max(lo.get(c[1], 0.0), c[2])
        elif kind == "bound_hi":
            hi[c[1]] = min(hi.get(c[1], 1.0), c[2])
        elif kind == "requires":
            succ.setdefault(c[1], []).append(c[2])
        elif kind == "contradicts":
            pairs.append((c[1], c[2]))
        else:
            for d in prem[c[1]]:
                watch.setdefault(d, []).append(c[1])
    L = {v: lo.get(v, 0.0) for v in nodes}
    why: dict[int, tuple] = {v: ("bound_lo", v, x) for v, x in lo.items()}
    queue = deque(sorted(nodes))
    queued = set(nodes)
    while queue:
        a = queue.popleft()
        queued.discard(a)
        x = L[a]
        for d in succ.get(a, ()):
            if L[d] < x:
                L[d] = x
                why[d] = ("requires", a, d)
                if d not in queued:
                    queued.add(d)
                    queue.append(d)
        for v in watch.get(a, ()):
            m = min(L[d] for d in prem[v])
            if m > L[v]:
                L[v] = m
                why[v] = ("min_ge", v)
                if v not in queued:
                    queued.add(v)
                    queue.append(v)
    infeasible = any(L[v] > h for v, h in hi.items()) or any(L[p] + L[q] > _LIMIT for p, q in pairs)
    return infeasible, L, why


def _minimize(cons: list[tuple], prem) -> list[tuple]:
    """Deletion filter: drop each constraint the rest does not need. The result is minimal."""
    cur = list(cons)
    i = 0
    while i < len(cur):
        trial = cur[:i] + cur[i + 1:]
        if _least(trial, prem)[0]:
            cur = trial
        else:
            i += 1
    return cur


def _chain(st: _State, i: int, L, why, prem, names: dict[int, None], depth: int = 0) -> str:
    """Why x_i >= L[i], as "top >= 0.7 -> requires hi, so hi >= 0.7"; records names in order.
    Recursion only descends into weakest-premise steps, and stops at a readable depth."""
    steps = []
    j = i
    while why.get(j, ("",))[0] == "requires":
        steps.append(j)
        j = why[j][1]
    r = why.get(j, ("bound_lo", j, 0.0))
    names[j] = None
    nj = st.name(j)
    if r[0] == "min_ge" and depth < 8:
        parts = [_chain(st, d, L, why, prem, names, depth + 1) for d in prem[j]]
        head = f"{nj} holds its weakest premise ({'; '.join(parts)}), so {nj} >= {_num(L[j])}"
    else:
        head = f"{nj} >= {_num(L[j])}"
    texts = [head]
    for k in reversed(steps):
        names[k] = None
        texts.append(f"requires {st.name(k)}, so {st.name(k)} >= {_num(L[k])}")
    return _elide(texts)


def _root(why, i: int) -> int:
    while why[i][0] == "requires":
        i = why[i][1]
    return i


# ---------------------------------------------------------------- wording helpers

def _num(x: float) -> str:
    """A truth for people: 0.3 not 0.30000000000000004, 1.0 not 1."""
    if x != x or x in (math.inf, -math.inf):
        return str(x)
    s = f"{x:.12g}"
    return s if any(ch in s for ch in ".e") else s + ".0"


def _and(items: list[str], word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _claim(st: _State, i: int) -> str:
    """What to lower: `law`, or the lower end of `hope` for an interval."""
    name = f"`{st.name(i)}`"
    if st.valued_decl[i] and st.lo_decl[i] != st.hi_decl[i]:
        return f"the lower end of {name}"
    return name


def _elide(steps: list[str]) -> str:
    if len(steps) > _CHAIN_SHOWN:
        k = _CHAIN_SHOWN // 2
        steps = steps[:k] + [f"... ({len(steps) - 2 * k} more) ..."] + steps[-k:]
    return " -> ".join(steps)


# ---------------------------------------------------------------- the compiler phase

@dataclass(eq=False)
class TruthResult:
    declared: list[tuple[float, float] | None]  # per axiom, as written (None: no value)
    effective: list[float]  # per axiom: L, the truth every solution guarantees
    upper: list[float]  # per axiom: U, the most its premises allow
    caps: list[float]  # per rule, parallel to program.rules: min effective truth it requires
    rule_names: list[str]
    consistent: bool  # no truth error at all
    solution: Solution

    def cap(self, rule: str) -> float:
        """The cap of the first rule with this name."""
        return self.caps[self.rule_names.index(rule)]


def check_truth(program, sink: Sink) -> TruthResult:
    """The truth phase: report E0201..E0208 into sink; compute effective truths and rule caps."""
    axioms = program.axioms
    n = len(axioms)
    names = list(program.axiom_names) if len(program.axiom_names) == n else [ax.name for ax in axioms]
    values = [ax.value for ax in axioms]
    valued = [v is not None for v in values]
    lo = [0.0 if v is None else v.lo for v in values]
    hi = [1.0 if v is None else v.hi for v in values]
    declared = [None if v is None else (v.lo, v.hi) for v in values]
    req = program.requires if len(program.requires) == n else [[] for _ in range(n)]
    con = program.contradicts if len(program.contradicts) == n else [[] for _ in range(n)]
    before = len(sink.items)

    if min(chain.from_iterable(req), default=0) < 0 or min(chain.from_iterable(con), default=0) < 0:
        for i, ax in enumerate(axioms):
            for clause, targets in (("requires", req[i]), ("contradicts", con[i])):
                for q, t in zip(getattr(ax, clause), targets):
                    if t < 0:
                        sink.error("E0202", f"undefined premise `{q.text}`", q.span,
                                   label=f"`{names[i]}` {clause} this, but it is not an axiom",
                                   labels=(Label(ax.name_span, f"{names[i]} = {_shown(ax)}"),),
                                   notes=(f"{names[i]} {clause} {q.text}, which names no axiom",),
                                   help=f"declare it (`axiom {q.parts[-1]} = 1.0`), fix the spelling, "
                                        "or import the module that declares it")

    sol = solve(lo, hi, valued, req, con, names)
    for v in sol.violations:
        _report(program, names, con, v, sink)

    caps, rule_names = [], []
    eff = sol.effective
    rule_req = program.rule_requires if len(program.rule_requires) == len(program.rules) else [[] for _ in program.rules]
    for (module, rule), targets in zip(program.rules, rule_req):
        rule_names.append(rule.name)
        cap = 1.0
        for q, t in zip(rule.requires, targets):
            if t < 0:
                sink.error("E0208", f"rule `{rule.name}` requires `{q.text}`, which is not an axiom", q.span,
                           label="not an axiom", labels=(Label(rule.name_span, f"rule {rule.name}"),),
                           notes=(f"{rule.name} requires {q.text}: a rule's value is capped by the effective "
                                  "truth of the axioms it requires",),
                           help=f"name an axiom here, or declare `axiom {q.parts[-1]} = ...`")
            elif eff[t] < cap:
                cap = eff[t]
        caps.append(cap)
    consistent = not any(d.is_error for d in sink.items[before:])
    return TruthResult(declared, eff, sol.upper, caps, rule_names, consistent, sol)


def _shown(ax) -> str:
    v = ax.value
    if v is None:
        return "no value"
    return _num(v.lo) if v.lo == v.hi else f"{_num(v.lo)}..{_num(v.hi)}"


def _report(program, names, con, v: Violation, sink: Sink) -> None:
    """Attach spans to a core violation: the primary place, and a label on every axiom named."""
    axioms = program.axioms

    def label(i: int) -> Label:
        ax = axioms[i]
        if ax.value is None:
            return Label(ax.name_span, f"{names[i]} has no value: it holds its weakest premise")
        return Label(ax.name_span, f"{names[i]} = {_shown(ax)}")

    first = v.axioms[0]
    primary = axioms[first].name_span
    labels = [label(i) for i in v.axioms[1:]]
    if v.code == "E0201":
        primary = axioms[first].value.span
    elif v.code == "E0205":
        cyc = v.axioms
        labels = [Label(axioms[a].name_span, f"{names[a]} requires {names[cyc[(k + 1) % len(cyc)]]}")
                  for k, a in enumerate(cyc) if k]
    elif v.pair is not None:
        a, b = v.pair
        primary = axioms[a].contradicts[con[a].index(b)].span
        labels = [label(i) for i in v.axioms]
    if len(labels) > _LABELS_MAX:  # a huge chain: its two ends
        labels = labels[:_LABELS_MAX // 2] + labels[-(_LABELS_MAX // 2):]
    fix = () if v.lower_to is None else _lowered(axioms[first], names[first], v.lower_to)
    sink.error(v.code, v.message, primary, label=v.label, labels=tuple(labels),
               notes=(v.note,) if v.note else (), help=v.help or None, suggestions=fix)


def _lowered(ax, name: str, bound: float) -> tuple[Suggestion, ...]:
    """E0203's fix: the axiom's declared value lowered to what its premises allow (an interval
    keeps its upper end when that is still above the bound)."""
    v = ax.value
    if v is None:
        return ()
    new = _num(bound) if v.lo == v.hi or v.hi <= bound else f"{_num(bound)}..{_num(v.hi)}"
    return (Suggestion(v.span, new, f"lower `{name}` to {new} (what its premises allow)"),)
