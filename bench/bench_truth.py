"""Benchmark of the truth-consistency phase (lwas/semantics/truth.py) on random consistent programs.

    .venv/bin/python bench/bench_truth.py            # the standard table (takes a few minutes)
    .venv/bin/python bench/bench_truth.py --quick    # 100k cases only
    .venv/bin/python bench/bench_truth.py --n 1000000 --case points   # one size: per-case RSS

Programs are generated from a hidden solution so they are consistent (the checker must do
the whole job and find nothing). Premises are declared before the axioms that rest on them,
as people write them; the "shuffled" rows scramble the declaration order (forward references),
which sends the checker down its general path (Kahn's order + cycle search).
Generation is not timed. Times are medians of several runs on a shared, noisy machine; memory
is the tracemalloc peak of one extra run (everything the checker allocates) and the process's
peak RSS (which includes the generated program).
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from bisect import bisect_left

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lwas.syntax import tree as ast  # noqa: E402
from lwas.syntax.diagnostics import Sink  # noqa: E402
from lwas.semantics.resolve import Program  # noqa: E402
from lwas.syntax.source import Span  # noqa: E402
from lwas.semantics.truth import check_truth, solve  # noqa: E402


def generate(n: int, edges_per_axiom: int, n_contra: int, intervals: bool, seed: int = 1,
             shuffled: bool = False):
    """A consistent program as columns: a hidden value t falls with the index, premises have
    lower indices (so t_premise >= t_dependent), contradictions pair values summing to <= 1.
    With intervals: lo..hi around t, and 10% of axioms valueless (they hold their weakest
    premise, which is >= t, so the hidden solution raises them to that)."""
    rnd = random.Random(seed)
    # falling with the index, and created in index order as a parser creates them in source
    # order (sorting random floats would scatter them in memory and measure cache misses)
    t = [1.0 - (i + rnd.random()) / n for i in range(n)]
    requires: list[list[int]] = []
    for i in range(n):
        if i == 0:
            requires.append([])
            continue
        ps = {rnd.randrange(i)}  # a far premise
        while len(ps) < min(edges_per_axiom, i):
            ps.add(i - 1 - rnd.randrange(min(i, 8)))  # and near ones: long chains
        requires.append(list(ps))
    valued = [True] * n
    lo, hi = t[:], t[:]
    value = t[:]
    if intervals:
        for i in range(n):
            if i and rnd.random() < 0.1:
                valued[i] = False
                value[i] = min(value[d] for d in requires[i])
            else:
                lo[i] = max(0.0, t[i] - rnd.random() * 0.2)
                hi[i] = min(1.0, t[i] + rnd.random() * 0.2)
    contradicts: list[list[int]] = [[] for _ in range(n)]
    neg = [-v for v in value]  # not sorted once valueless are raised: fall back to a scan
    ordered = all(neg[i] <= neg[i + 1] for i in range(n - 1))
    made = 0
    while made < n_contra:
        a = rnd.randrange(n)
        room = 1.0 - value[a]
        if ordered:
            first = bisect_left(neg, -room)  # values <= room form a suffix
            if first >= n:
                continue
            b = rnd.randrange(first, n)
        else:
            b = rnd.randrange(n)
            if value[b] > room:
                continue
        contradicts[a].append(b)
        made += 1
    if shuffled:
        perm = list(range(n))
        rnd.shuffle(perm)
        lo2, hi2, va2 = [0.0] * n, [0.0] * n, [True] * n
        rq2: list[list[int]] = [[] for _ in range(n)]
        co2: list[list[int]] = [[] for _ in range(n)]
        for i in range(n):
            p = perm[i]
            lo2[p], hi2[p], va2[p] = lo[i], hi[i], valued[i]
            rq2[p] = [perm[d] for d in requires[i]]
            co2[p] = [perm[d] for d in contradicts[i]]
        # re-create the objects in the new declaration order, as a parser would have
        lo = [x + 0.0 for x in lo2]
        hi = [x + 0.0 for x in hi2]
        valued, requires, contradicts = va2, [list(r) for r in rq2], [list(c) for c in co2]
    return lo, hi, valued, requires, contradicts


def as_program(lo, hi, valued, requires, contradicts) -> Program:
    """The same program as AST objects, as the resolver would hand it to check_truth."""
    n = len(valued)
    names = [f"a{i}" for i in range(n)]
    axioms = []
    for i in range(n):
        sp = Span("bench.lwas", i + 1, 1, i + 1, 40)
        val = ast.TruthValue(lo[i], hi[i], sp) if valued[i] else None
        reqs = tuple(ast.QualName((names[d],), sp) for d in requires[i])
        cons = tuple(ast.QualName((names[d],), sp) for d in contradicts[i])
        axioms.append(ast.AxiomDecl(names[i], sp, val, reqs, cons, None, False, sp))
    return Program(modules=[], root=None, sources={}, axioms=axioms, axiom_names=names,
                   requires=requires, contradicts=contradicts)


def measure(fn, runs: int):
    """Median wall and CPU time over runs (CPU time suffers less when the machine is shared),
    then one traced run for the allocation peak."""
    walls, cpus = [], []
    for _ in range(runs):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        del result
    gc.collect()
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(walls), min(walls), max(walls), statistics.median(cpus), peak, result


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


CASES = [
    # name, axioms, requires per axiom, contradictions, intervals, shuffled, target seconds
    ("points", 100_000, 2, 10_000, False, False, 0.3),
    ("intervals", 100_000, 2, 10_000, True, False, 0.6),
    ("points shuffled", 100_000, 2, 10_000, False, True, None),
    ("points", 1_000_000, 2, 100_000, False, False, 3.0),
    ("intervals", 1_000_000, 2, 100_000, True, False, 6.0),
    ("points shuffled", 1_000_000, 2, 100_000, False, True, None),
    ("intervals shuffled", 1_000_000, 2, 100_000, True, True, None),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only the 100k cases")
    ap.add_argument("--runs", type=int, default=0, help="runs per case (default 5 for 100k, 3 for 1M)")
    ap.add_argument("--case", default="", help="only cases whose name contains this (e.g. 'points shuffled')")
    ap.add_argument("--n", type=int, default=0, help="only cases of this size (then peak RSS is per case)")
    args = ap.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; times are medians (min..max)")
    print()
    print("| case | axioms | requires | contradicts | wall median s | wall min..max s | CPU median s "
          "| target s | peak alloc MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, k, c, intervals, shuffled, target in CASES:
        if (args.quick and n > 100_000) or (args.n and n != args.n) or args.case not in name:
            continue
        cols = generate(n, k, c, intervals, shuffled=shuffled)
        edges = sum(map(len, cols[3]))
        runs = args.runs or (5 if n <= 100_000 else 3)
        med, lo_t, hi_t, cpu, peak, sol = measure(lambda: solve(*cols), runs)
        assert sol.ok, [v.message for v in sol.violations[:3]]
        print(f"| solve, {name} | {n:,} | {edges:,} | {c:,} | {med:.3f} | {lo_t:.3f}..{hi_t:.3f} | {cpu:.3f} | "
              f"{'' if target is None else f'<= {target}'} | {peak / 2**20:.0f} |", flush=True)
        if n == 100_000 and not shuffled:
            program = as_program(*cols)
            med, lo_t, hi_t, cpu, peak, res = measure(lambda: check_truth(program, Sink()), runs)
            assert res.consistent
            print(f"| check_truth (AST), {name} | {n:,} | {edges:,} | {c:,} | {med:.3f} | "
                  f"{lo_t:.3f}..{hi_t:.3f} | {cpu:.3f} |  | {peak / 2**20:.0f} |", flush=True)
            del program, res
        del cols, sol
        gc.collect()
    print()
    print(f"process peak RSS (generated programs included): {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
