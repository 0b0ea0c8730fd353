"""Plain CPython versions of the kernels of bench/bench_native.py: the same algorithms as
kernels.lwas, written as a Python programmer would (explicit loops, no builtins doing the work).
Python integers do not overflow, so the only check kept is money's currency."""
from __future__ import annotations

import math


def fib(n: int) -> int:
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def sum_to(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def mandelbrot(size: int, max_iter: int) -> int:
    count = 0
    step_x = 2.5 / size
    step_y = 2.5 / size
    for py in range(size):
        ci = -1.25 + py * step_y
        for px in range(size):
            cr = -2.0 + px * step_x
            zr = zi = 0.0
            k = 0
            while k < max_iter and zr * zr + zi * zi <= 4.0:
                t = zr * zr - zi * zi + cr
                zi = 2.0 * zr * zi + ci
                zr = t
                k += 1
            if k == max_iter:
                count += 1
    return count


def sum_money(xs: list[tuple[int, str]]) -> tuple[int, str]:
    """xs: (minor units, currency) pairs; the total in USD, every currency checked."""
    total = 0
    for minor, cur in xs:
        if cur != "USD":
            raise ValueError(f"currency mismatch: USD and {cur}")
        total += minor
    return total, "USD"


def mean(xs: list[float]) -> float:
    s = 0.0
    for x in xs:
        s += x
    return s / len(xs)


def stddev(xs: list[float]) -> float:
    m = mean(xs)
    s = 0.0
    for x in xs:
        d = x - m
        s += d * d
    return math.sqrt(s / len(xs))


def zscore_outliers(xs: list[float], k: float) -> int:
    m = mean(xs)
    sd = stddev(xs)
    n = 0
    for x in xs:
        if abs((x - m) / sd) > k:
            n += 1
    return n
