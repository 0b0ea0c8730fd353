"""Arrays that grow cheaply: `xs = xs + ys` and `xs += ys` on a `var` grow its buffer in place
(amortised O(len(ys))), and values that share the old buffer never see the new elements."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from helpers import program_of
from lwas.backend import keys
from lwas.tools.evaluate import evaluator_for

SOURCE = """
fn grow(n: int) -> int {
  var xs: [int] = []
  for i in 0..n {
    xs = xs + [i]
  }
  return len(xs) * 1000000 + xs[n - 1]
}

fn alias() -> [int] {
  var v: [int] = []
  v += [1, 2, 3]
  v = v + [4]
  let w = v
  v = v + [5]
  var u = w
  u += [9]
  v = v + [6]
  u = v
  u += [7]
  return w + [0] + u + [0] + v
}

fn owned(n: int) -> [text] {
  var out: [text] = []
  for i in 0..n {
    out += [text(i)]
  }
  out[0] = "zero"
  return out
}

fn loop_snapshot() -> int {
  var xs = [1, 2]
  var seen = 0
  for x in xs {
    xs += [x * 10]
    seen += 1
  }
  return seen * 100 + len(xs)
}

fn records(n: int) -> [[int]] {
  var rows: [[int]] = []
  var row: [int] = []
  for i in 0..n {
    row += [i]
    rows = rows + [row]
  }
  return rows
}
"""


def test_pushes_agree_with_the_evaluator_and_keep_sharing_values_intact():
    key = keys.generate()
    ev = evaluator_for(SOURCE, "push.lwas")
    for opt in (0, 2):
        prog = program_of(SOURCE, "push.lwas", key, opt_level=opt)
        # w kept [1..4] though v grew in place after it; u = v then u += [7] left v alone
        assert prog.fn.alias() == ev.call("alias") == [1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6]
        assert prog.fn.owned(6) == ev.call("owned", 6) == ["zero", "1", "2", "3", "4", "5"]
        assert prog.fn.loop_snapshot() == ev.call("loop_snapshot") == 204
        assert prog.fn.records(4) == ev.call("records", 4) == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]
        assert prog.fn.grow(1000) == ev.call("grow", 1000) == 1000 * 1000000 + 999


def test_two_hundred_thousand_appends_stay_under_50_mb():
    """Peak RSS growth of the call, in a fresh process (the issue: 40,000 appends used 6.3 GB)."""
    code = textwrap.dedent(f'''
        import resource, lwas
        from lwas.backend import keys
        key = keys.generate()
        prog = lwas.load(lwas.compile({SOURCE!r}, filename="p.lwas", key=key), trusted=[keys.public_pem(key)])
        prog.fn.grow(10)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert prog.fn.grow(200_000) == 200_000 * 1_000_000 + 199_999
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown_kb = int(out.stdout.strip())
    assert grown_kb < 50 * 1024, f"the loop grew the process by {grown_kb} KiB"
