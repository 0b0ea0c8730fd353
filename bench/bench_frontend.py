"""Front-end speed: `lwasc check` on a generated 10,000-line program, per stage, and CLI start-up.

Prints medians over several runs (the machine is shared and noisy). Goals (issue 2):
check of 10k lines <= 0.5 s; `lwasc --version` <= 150 ms.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen import program  # noqa: E402

from lwas.driver import check_source  # noqa: E402
from lwas.syntax.parse import parser  # noqa: E402

RUNS = 7


def main() -> None:
    text = program(10_000)
    lines = text.count("\n")
    parser()  # build (or load the cached) parse tables once, as a long-lived process would
    runs = []
    for _ in range(RUNS):
        c = check_source(text, "generated.lwas")
        assert c.ok, c.diagnostics[:3]
        runs.append(dict(c.timings))
    stages = list(runs[0])
    print(f"front end on a generated program of {lines:,} lines (median of {RUNS} runs)")
    total = [sum(r.values()) for r in runs]
    for s in stages:
        print(f"  {s:<10} {statistics.median(r[s] for r in runs) * 1000:8.1f} ms")
    med = statistics.median(total)
    print(f"  {'total':<10} {med * 1000:8.1f} ms   ({lines / med:,.0f} lines/s; goal <= 500 ms)")

    # a whole process, as a user runs it
    path = Path("/tmp/lwas-bench-10k.lwas")
    path.write_text(text)
    wall = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lwas", "check", str(path)], check=True, capture_output=True)
        wall.append(time.perf_counter() - t0)
    print(f"  `lwasc check` process wall time: {statistics.median(wall) * 1000:.0f} ms (median of 5)")

    start = []
    for _ in range(11):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lwas", "--version"], check=True, capture_output=True)
        start.append(time.perf_counter() - t0)
    base = []
    for _ in range(11):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)
        base.append(time.perf_counter() - t0)
    print(f"`lwasc --version` start-up: {statistics.median(start) * 1000:.0f} ms "
          f"(bare `python -c pass`: {statistics.median(base) * 1000:.0f} ms; goal <= 150 ms)")


if __name__ == "__main__":
    main()
