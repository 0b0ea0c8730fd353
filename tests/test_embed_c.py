"""C embedding: `lwasc build --emit shared` gives a .so and a header that a C program uses
directly, in the calling convention of lwas/abi.py (status return, out pointer)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from lwas.tools.cli import main

PROG = """\
axiom truth = 1.0
axiom justice = 0.9 requires truth
enum Color { Red, Green }
fn fib(n: int) -> int {
  if n < 2 {
    return n
  }
  return fib(n - 1) + fib(n - 2)
}
fn mul(a: int, b: int) -> int = a * b
fn double(m: money) -> money = m + m
fn pick(c: Color) -> int = match c {
  Red => 1
  Green => 2
}
"""

MAIN_C = r"""
#include <stdio.h>
#include "libprog.h"

int main(void) {
  int64_t r = -1;
  int32_t s = lwas_fib(&r, 10);
  printf("fib(10) = %lld status %d\n", (long long)r, s);
  s = lwas_mul(&r, INT64_MAX, 2);
  printf("overflow status %d\n", s);
  lwas_money m;
  s = lwas_double(&m, 1250, 0x555344);
  printf("double %lld %06x status %d\n", (long long)m.minor, m.currency, s);
  s = lwas_pick(&r, lwas_Color_Green);
  printf("pick %lld\n", (long long)r);
  printf("justice %.2f\n", lwas_axioms[lwas_AXIOM_JUSTICE]);
  printf("budget %lld\n", (long long)lwas_budget_ns);  /* 0: no limit, the ABI of before */
  lwas_budget_ns = 20 * 1000000;  /* 20 ms: fib(90) would take centuries */
  s = lwas_fib(&r, 90);
  printf("runaway status %d\n", s);
  s = lwas_fib(&r, 20);
  printf("fib(20) = %lld status %d\n", (long long)r, s);
  return 0;
}
"""

pytestmark = [pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler"),
              pytest.mark.usefixtures("isolated_home")]  # never the real ~/.config or ~/.cache


def test_c_program_calls_the_shared_library(tmp_path):
    (tmp_path / "prog.lwas").write_text(PROG)
    lib = tmp_path / "libprog.so"
    assert main(["build", str(tmp_path / "prog.lwas"), "-o", str(lib), "--emit", "shared"]) == 0
    header = (tmp_path / "libprog.h").read_text()
    assert "int32_t lwas_fib(int64_t *out, int64_t n)" in header
    assert "int32_t lwas_double(lwas_money *out, int64_t m_minor, int32_t m_currency)" in header
    assert ": overflow: integer overflow in `n - 1` (prog.lwas:" in header  # error sites, by status
    (tmp_path / "main.c").write_text(MAIN_C)
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-o", str(tmp_path / "main"), str(tmp_path / "main.c"),
                    str(lib), "-Wl,-rpath," + str(tmp_path)], check=True, cwd=tmp_path)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "fib(10) = 55 status 0"
    status = int(lines[1].split()[-1])
    assert status != 0
    sites = [l for l in header.splitlines() if l.startswith(f" *   {status}: ")]
    assert sites and "integer overflow in `a * b`" in sites[0]  # the status names the error site
    assert lines[2:6] == ["double 2500 555344 status 0", "pick 2", "justice 0.90", "budget 0"]
    status = int(lines[6].split()[-1])
    sites = [l for l in header.splitlines() if l.startswith(f" *   {status}: ")]
    assert sites and ": timeout: the call ran longer than its budget (prog.lwas:" in sites[0]  # lwas.backend.budget
    assert lines[7:] == ["fib(20) = 6765 status 0"]
    assert 'extern int64_t lwas_budget_ns __asm__("lwas$budget_ns");' in header
