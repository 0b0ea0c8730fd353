"""Artifact benchmark: compile times at -O0 and -O2 and load-time medians for a program of about
200 functions. The target is a load (verify + map) of at most 50 ms.

    .venv/bin/python bench/bench_artifact.py [FUNCTIONS]
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen  # noqa: E402

from lwas.backend import keys  # noqa: E402
from lwas.backend.artifact import verify  # noqa: E402
from lwas.driver import compile_source  # noqa: E402
from lwas.runtime.loader import load  # noqa: E402


def source_with(functions: int) -> str:
    """A generated program with at least `functions` fns and rules (3 per group of gen.program)."""
    lines = 300
    while True:
        src = gen.program(lines)
        if src.count("\nfn ") + src.count("\nrule ") >= functions:
            return src
        lines += 300


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    functions = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    src = source_with(functions)
    key = keys.generate()
    trusted = [key.public_key()]
    print(f"program: {src.count(chr(10))} lines, {src.count(chr(10) + 'fn ') + src.count(chr(10) + 'rule ')} "
          f"functions and rules")
    for opt in (0, 2):
        t0 = time.perf_counter()
        c = compile_source(src, "gen.lwas", key=key, opt_level=opt)
        total = time.perf_counter() - t0
        if c.artifact is None:
            raise SystemExit(f"did not compile: {c.diagnostics[:3]}")
        stages = ", ".join(f"{n} {t * 1000:.0f}" for n, t in c.timings)
        print(f"-O{opt}: compile {total * 1000:7.1f} ms ({stages}); artifact {len(c.artifact):,} bytes, "
              f"object {len(c.native.object_code):,} bytes")
        data = c.artifact
        load(data, trusted)  # warm up imports and LLVM's target initialisation
        v = median_ms(lambda: verify(data, trusted), 21)
        ld = median_ms(lambda: load(data, trusted), 21)
        print(f"       load median {ld:6.2f} ms (of which verify {v:5.2f} ms)  "
              f"{'OK' if ld <= 50 else 'OVER'} the 50 ms target")


if __name__ == "__main__":
    main()
