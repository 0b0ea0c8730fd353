"""The truth checker against an independent oracle: HiGHS solving the same constraints as an
LP, or a MILP when a valueless axiom's "holds exactly its weakest premise" is involved
(x_v >= min_d x_d needs one binary per premise).

For random small programs (points, intervals, valueless axioms, requires as a DAG plus the
odd cycle, forward references, self-contradictions, unresolved names, bad values):
- the verdict matches the oracle;
- every explanation is a set of the program's own constraints that is infeasible and minimal
  (dropping any one constraint makes it feasible);
- the effective truths are the least solution and the upper bounds what the premises allow.
"""
from __future__ import annotations

import math

import highspy
import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lwas.semantics.truth import solve

_FEASIBLE = highspy.HighsModelStatus.kOptimal
_INFEASIBLE = highspy.HighsModelStatus.kInfeasible


def _model(n: int, cons, prem):
    """A HiGHS model of a constraint set over x_0..x_{n-1} in [0, 1] (None: bounds clash)."""
    lb, ub = [0.0] * n, [1.0] * n
    rows, mins = [], []
    for c in cons:
        kind = c[0]
        if kind == "bound_lo":
            lb[c[1]] = max(lb[c[1]], c[2])
        elif kind == "bound_hi":
            ub[c[1]] = min(ub[c[1]], c[2])
        elif kind == "requires":  # x_a - x_d <= 0
            rows.append((-math.inf, 0.0, [c[1], c[2]], [1.0, -1.0]))
        elif kind == "contradicts":  # x_a + x_b <= 1
            rows.append((-math.inf, 1.0, [c[1]], [2.0]) if c[1] == c[2]
                        else (-math.inf, 1.0, [c[1], c[2]], [1.0, 1.0]))
        elif kind == "min_ge":
            mins.append(c[1])
        else:
            raise AssertionError(f"unknown constraint {c!r}")
    if any(l > u for l, u in zip(lb, ub)):
        return None
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for i in range(n):
        h.addVar(lb[i], ub[i])
    col = n
    for v in mins:  # x_v >= x_d - (1 - z_d) for one chosen premise d: sum z = 1
        zs = []
        for d in dict.fromkeys(prem[v]):
            h.addVar(0.0, 1.0)
            h.changeColIntegrality(col, highspy.HighsVarType.kInteger)
            rows.append((-1.0, math.inf, [v, d, col], [1.0, -1.0, -1.0]))
            zs.append(col)
            col += 1
        rows.append((1.0, 1.0, zs, [1.0] * len(zs)))
    for lower, upper, idx, val in rows:
        h.addRow(lower, upper, len(idx), np.array(idx, dtype=np.int32), np.array(val, dtype=np.float64))
    return h


def oracle_feasible(n: int, cons, prem) -> bool:
    h = _model(n, cons, prem)
    if h is None:
        return False
    if n == 0:
        return True
    h.run()
    status = h.getModelStatus()
    assert status in (_FEASIBLE, _INFEASIBLE), status
    return status == _FEASIBLE


def oracle_extreme(n: int, cons, prem, i: int, sense: float) -> float:
    """min (sense=1) or max (sense=-1) of x_i subject to cons."""
    h = _model(n, cons, prem)
    h.changeColCost(i, sense)
    h.run()
    assert h.getModelStatus() == _FEASIBLE
    return h.getSolution().col_value[i]


# ---------------------------------------------------------------- the programs


@st.composite
def programs(draw):
    """Columns for solve(): values on a 0.1 grid so sums are clearly <= 1 or > 1."""
    n = draw(st.integers(1, 8))
    lo, hi, valued = [], [], []
    for _ in range(n):
        kind = draw(st.sampled_from(["point"] * 3 + ["interval"] * 3 + ["none"] * 3 + ["bad"]))
        if kind == "point":
            v = draw(st.integers(0, 10)) / 10
            lo.append(v), hi.append(v), valued.append(True)
        elif kind == "interval":
            a = draw(st.integers(0, 10))
            b = draw(st.integers(a, 10))
            lo.append(a / 10), hi.append(b / 10), valued.append(True)
        elif kind == "none":
            lo.append(0.0), hi.append(1.0), valued.append(False)
        else:
            l, h = draw(st.sampled_from([(1.5, 1.5), (-0.2, -0.2), (0.8, 0.3), (math.nan, math.nan),
                                         (0.2, 1.2), (math.inf, math.inf)]))
            lo.append(l), hi.append(h), valued.append(True)
    requires = []
    for a in range(n):
        least = 1 if not valued[a] and draw(st.integers(0, 9)) else 0  # mostly give valueless premises
        premises = draw(st.lists(st.integers(0, a - 1), min_size=least, max_size=3, unique=True)) if a else []
        if draw(st.integers(0, 19)) == 0:  # now and then a back edge: maybe a cycle
            premises.append(draw(st.integers(0, n - 1)))
        if draw(st.integers(0, 29)) == 0:
            premises.append(-1)  # an unresolved name
        requires.append(premises)
    contradicts = [[] for _ in range(n)]
    for a, b in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=5)):
        contradicts[a].append(b)
    perm = draw(st.permutations(range(n)))  # declaration order need not be premises-first

    def p(i):
        return perm[i] if i >= 0 else i

    cols = [[None] * n for _ in range(5)]
    for i in range(n):
        j = perm[i]
        cols[0][j], cols[1][j], cols[2][j] = lo[i], hi[i], valued[i]
        cols[3][j] = [p(d) for d in requires[i]]
        cols[4][j] = [p(d) for d in contradicts[i]]
    return tuple(cols)


def on_cycles(n: int, requires) -> set[int]:
    """Axioms that reach themselves through requires edges."""
    out = set()
    for s in range(n):
        seen, stack = set(), [d for d in requires[s] if d >= 0]
        while stack:
            u = stack.pop()
            if u == s:
                out.add(s)
                break
            if u not in seen:
                seen.add(u)
                stack.extend(d for d in requires[u] if d >= 0)
    return out


def constraints_of(lo, hi, valued, requires, contradicts, excluded=frozenset()):
    """The program's constraints as the checker judges them: bad values and valueless axioms
    whose weakest link is unknown (no premises, an unresolved or excluded one) unconstrained;
    axioms in cycles left out. Returns (constraints, premises for min_ge)."""
    n = len(valued)
    cons, prem = [], [[] for _ in range(n)]
    for i in range(n):
        if valued[i] and 0.0 <= lo[i] <= hi[i] <= 1.0:
            cons += [("bound_lo", i, lo[i]), ("bound_hi", i, hi[i])]
    for a in range(n):
        kept = [d for d in requires[a] if d >= 0 and a not in excluded and d not in excluded]
        cons += [("requires", a, d) for d in kept]
        if not valued[a] and requires[a] and len(kept) == len(requires[a]):
            cons.append(("min_ge", a))
            prem[a] = kept
    for a in range(n):
        cons += [("contradicts", a, b) for b in contradicts[a] if b >= 0 and a not in excluded and b not in excluded]
    return cons, prem


# ---------------------------------------------------------------- the properties


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_checker_agrees_with_the_oracle(cols):
    lo, hi, valued, requires, contradicts = cols
    n = len(valued)
    sol = solve(lo, hi, valued, requires, contradicts)
    for v in sol.violations:  # shown by --hypothesis-show-statistics
        event(v.code + (" with min_ge" if any(c[0] == "min_ge" for c in v.constraints) else ""))
    event("feasible" if sol.feasible else "infeasible")

    # cycles: exactly the axioms on one are excluded, and each reported cycle is real
    cyclic = on_cycles(n, requires)
    assert sol.excluded == cyclic
    for cyc in sol.cycles:
        assert all(cyc[(k + 1) % len(cyc)] in requires[a] for k, a in enumerate(cyc))
    assert sum(v.code == "E0205" for v in sol.violations) == len(sol.cycles)

    # the verdict on what is left equals the oracle's
    cons, prem = constraints_of(lo, hi, valued, requires, contradicts, cyclic)
    assert sol.feasible == oracle_feasible(n, cons, prem)
    structural = any(v.code in ("E0201", "E0205", "E0207") for v in sol.violations) or \
        any(d < 0 for r in requires for d in r)
    if not structural:  # the whole program, as written
        assert sol.ok == oracle_feasible(n, *constraints_of(lo, hi, valued, requires, contradicts))
    if not sol.feasible:
        assert any(v.code in ("E0203", "E0204", "E0206") for v in sol.violations)

    # every explanation: the program's own constraints, infeasible, minimal
    own = set(cons)
    pairs = set()
    for v in sol.violations:
        if v.code not in ("E0203", "E0204", "E0206"):
            continue
        c = v.constraints
        assert c and len(set(c)) == len(c)
        assert set(c) <= own, (v.code, set(c) - own)
        assert not oracle_feasible(n, c, prem), (v.code, v.note)
        for k in range(len(c)):
            assert oracle_feasible(n, c[:k] + c[k + 1:], prem), (v.code, "not minimal without", c[k])
        named = {con[1] for con in c} | {con[2] for con in c if con[0] in ("requires", "contradicts")}
        assert set(v.axioms) >= named  # every axiom involved is named
        if v.pair is not None:
            key = tuple(sorted(v.pair))
            assert key not in pairs  # one report per contradiction
            pairs.add(key)

    # effective truths are the least solution; upper bounds what hi and premises allow
    if sol.feasible:
        for i in range(n):
            if i not in cyclic:
                assert math.isclose(sol.effective[i], oracle_extreme(n, cons, prem, i, 1.0), abs_tol=1e-7)
    ups = [c for c in cons if c[0] in ("bound_hi", "requires")]
    for i in range(n):
        if i not in cyclic:
            assert math.isclose(sol.upper[i], oracle_extreme(n, ups, prem, i, -1.0), abs_tol=1e-7)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.randoms(use_true_random=False))
def test_verdict_does_not_depend_on_declaration_order(cols, rnd):
    lo, hi, valued, requires, contradicts = cols
    n = len(valued)
    perm = list(range(n))
    rnd.shuffle(perm)
    moved = [[None] * n for _ in range(5)]
    for i in range(n):
        j = perm[i]
        moved[0][j], moved[1][j], moved[2][j] = lo[i], hi[i], valued[i]
        moved[3][j] = [perm[d] if d >= 0 else d for d in requires[i]]
        moved[4][j] = [perm[d] if d >= 0 else d for d in contradicts[i]]
    a = solve(lo, hi, valued, requires, contradicts)
    b = solve(*moved)
    assert (a.ok, a.feasible) == (b.ok, b.feasible)
    assert sorted(v.code for v in a.violations) == sorted(v.code for v in b.violations)
    for i in range(n):
        assert a.effective[i] == b.effective[perm[i]]
        assert a.upper[i] == b.upper[perm[i]]


def test_language_programs_explanations_are_minimal():
    # the interval program of docs/contract.md: lo = 0.6..0.9, hi = 0.1..0.7 contradicts lo, top = 0.7 requires hi
    sol = solve([0.6, 0.1, 0.7], [0.9, 0.7, 0.7], [True] * 3, [[], [], [1]], [[], [0], []])
    (v,) = sol.violations
    assert v.code == "E0206"
    prem = [[], [], [1]]
    assert not oracle_feasible(3, v.constraints, prem)
    for k in range(len(v.constraints)):
        assert oracle_feasible(3, v.constraints[:k] + v.constraints[k + 1:], prem)
    # without top the program is consistent
    assert solve([0.6, 0.1], [0.9, 0.7], [True] * 2, [[], []], [[], [0]]).ok
