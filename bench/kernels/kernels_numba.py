"""Numba versions of the kernels, run by bench/bench_native.py in a separate venv
(/tmp/numba-venv: Numba is not a project dependency). Usage:

    python kernels_numba.py FLOATS.bin MONEY.bin N_FIB N_SUM MANDEL_SIZE MANDEL_ITER Z_K RUNS C.so

Prints one JSON object: {kernel: {"median": seconds, "c_median": seconds, "runs": n,
"result": value}, ...} plus "compile" (seconds to JIT all kernels on first call). Each Numba call
alternates with a call of the same kernel in plain C (C.so, kernels.c), so that the Numba/C ratio
is measured under the same machine conditions (the machine is shared: speed drifts by up to 2x).
Numba integers wrap (no overflow checks).
"""
import ctypes
import json
import math
import statistics
import sys
import time

import numpy as np
from numba import njit

MONEY = np.dtype([("minor", "<i8"), ("currency", "<i4")], align=True)  # {i64, i32}: 16 bytes
USD = 0x555344


@njit(cache=False)
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


@njit(cache=False)
def sum_to(n):
    total = 0
    for i in range(n):
        total += i
    return total


@njit(cache=False)
def mandelbrot(size, max_iter):
    count = 0
    step_x = 2.5 / size
    step_y = 2.5 / size
    for py in range(size):
        ci = -1.25 + py * step_y
        for px in range(size):
            cr = -2.0 + px * step_x
            zr = 0.0
            zi = 0.0
            k = 0
            while k < max_iter and zr * zr + zi * zi <= 4.0:
                t = zr * zr - zi * zi + cr
                zi = 2.0 * zr * zi + ci
                zr = t
                k += 1
            if k == max_iter:
                count += 1
    return count


@njit(cache=False)
def sum_money(xs):
    total = 0
    for i in range(xs.shape[0]):
        if xs[i].currency != USD:
            return -1, 1  # currency mismatch
        total += xs[i].minor
    return total, 0


@njit(cache=False)
def mean(xs):
    s = 0.0
    for i in range(xs.shape[0]):
        s += xs[i]
    return s / xs.shape[0]


@njit(cache=False)
def stddev(xs):
    m = mean(xs)
    s = 0.0
    for i in range(xs.shape[0]):
        d = xs[i] - m
        s += d * d
    return math.sqrt(s / xs.shape[0])


@njit(cache=False)
def zscore_outliers(xs, k):
    m = mean(xs)
    sd = stddev(xs)
    n = 0
    for i in range(xs.shape[0]):
        if abs((xs[i] - m) / sd) > k:
            n += 1
    return n


def main():
    floats_path, money_path = sys.argv[1], sys.argv[2]
    n_fib, n_sum, size, iters = (int(a) for a in sys.argv[3:7])
    z_k = float(sys.argv[7])
    runs = int(sys.argv[8])
    xs = np.fromfile(floats_path, dtype="<f8")
    ms = np.fromfile(money_path, dtype=MONEY)
    lib = ctypes.CDLL(sys.argv[9])
    I64, F64, PTR = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p

    def c(name, argtypes, restype):
        f = getattr(lib, name)
        f.argtypes, f.restype = argtypes, restype
        return f

    c_fib, c_sum_to = c("plain_fib", [I64], I64), c("plain_sum_to", [I64], I64)
    c_mandel = c("plain_mandelbrot", [I64, I64], I64)
    c_money = c("plain_sum_money", [PTR, I64], I64)
    c_mean, c_sd = c("mean", [PTR, I64], F64), c("stddev", [PTR, I64], F64)
    c_z = c("zscore_outliers", [PTR, I64, F64], I64)
    xp, mp, n = xs.ctypes.data, ms.ctypes.data, xs.shape[0]
    c_cases = {
        "fib": lambda: c_fib(n_fib),
        "sum_to": lambda: c_sum_to(n_sum),
        "mandelbrot": lambda: c_mandel(size, iters),
        "sum_money": lambda: c_money(mp, ms.shape[0]),
        "mean": lambda: c_mean(xp, n),
        "stddev": lambda: c_sd(xp, n),
        "zscore_outliers": lambda: c_z(xp, n, z_k),
    }
    cases = {
        "fib": lambda: fib(n_fib),
        "sum_to": lambda: sum_to(n_sum),
        "mandelbrot": lambda: mandelbrot(size, iters),
        "sum_money": lambda: sum_money(ms)[0],
        "mean": lambda: mean(xs),
        "stddev": lambda: stddev(xs),
        "zscore_outliers": lambda: zscore_outliers(xs, z_k),
    }
    out = {}
    t0 = time.perf_counter()
    for f in cases.values():  # the first call of each compiles it
        f()
    out["compile"] = time.perf_counter() - t0
    for name, f in cases.items():
        times, c_times = [], []
        g = c_cases[name]
        g()
        for _ in range(runs):
            t = time.perf_counter()
            r = f()
            times.append(time.perf_counter() - t)
            t = time.perf_counter()
            g()
            c_times.append(time.perf_counter() - t)
        out[name] = {"median": statistics.median(times), "c_median": statistics.median(c_times), "runs": runs,
                     "result": float(r) if isinstance(r, (float, np.floating)) else int(r)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
