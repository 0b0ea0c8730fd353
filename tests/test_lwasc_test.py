"""`lwasc test` (the runner, its reports), contracts (`requires`/`ensures`) and `--generate`."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lwas.driver import compile_source
from lwas.errors import RuntimeError as LwasRuntimeError
from lwas.tools.evaluate import evaluator_for
from lwas.tools.generate import generate
from lwas.runtime.native import NativeProgram

DATA = Path(__file__).parent / "data"

GOOD = """
fn total(xs: [int]) -> int {
  var s = 0
  for x in xs {
    s += x
  }
  return s
}

test "adds" {
  assert total([1, 2, 3]) == 6
}

test "wrong sum" {
  let xs = [1, 2, 3]
  assert total(xs) == 7, "sum of parts"
}

test "divides by zero" {
  let e: [int] = []
  assert 10 / len(e) == 1
}

test "after the error" {
  assert "héllo" + "!" == "héllo!"
}
"""


def lwasc(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lwas.tools.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture
def suite(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "sums.lwas").write_text(GOOD)
    (tmp_path / "ok.lwas").write_text('test "one" {\n  assert 1 + 1 == 2\n}\n')
    (tmp_path / "broken.lwas").write_text('test "t" {\n  assert nope == 1\n}\n')
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "skip.lwas").write_text('test "never" {\n  assert false\n}\n')
    return tmp_path


def test_the_runner_reports_each_file_each_failure_and_a_summary(suite):
    r = lwasc("test", str(suite))
    assert r.returncode == 1
    out = r.stdout
    lines = out.splitlines()
    assert f"{suite}/broken.lwas E" in lines and f"{suite}/ok.lwas ." in lines
    assert f"{suite}/pkg/sums.lwas .FF." in lines  # an error in one test does not stop the next
    assert "skip.lwas" not in out  # hidden directories are not searched
    # the failing assert: message, position, source line, and the operands' values
    assert 'test "wrong sum" failed (assert)' in out and "error: sum of parts" in out
    assert "sums.lwas:16:3" in out and "total(xs) = 6" in out and "7 = 7" not in out
    assert 'test "divides by zero" failed (div_zero)' in out and "division by zero" in out
    assert "cannot find `nope`" in out or "E0" in out  # the file that does not compile, rendered
    assert lines[-1].startswith("3 passed, 2 failed, 1 file not compiled in ")


def test_k_selects_by_file_and_name(suite):
    r = lwasc("test", str(suite / "pkg"), "-k", "WRONG")
    assert r.returncode == 1 and r.stdout.splitlines()[-1].startswith("0 passed, 1 failed")
    r = lwasc("test", str(suite / "pkg"), "-k", "sums.lwas::adds")
    assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("1 passed, 0 failed")


def test_json_and_junit_reports(suite, tmp_path):
    junit = tmp_path / "report.xml"
    r = lwasc("test", str(suite / "pkg"), str(suite / "ok.lwas"), "--format", "json", "--junit", str(junit))
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert (data["passed"], data["failed"], data["errors"]) == (3, 2, 0)
    wrong = next(t for t in data["tests"] if t["name"] == "wrong sum")
    assert wrong["outcome"] == "failed" and wrong["kind"] == "assert"
    assert wrong["position"]["line"] == 16 and wrong["operands"] == [["total(xs)", "6"], ["7", "7"]]
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "2" and root.get("tests") == "5"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["wrong sum"].find("failure").get("message") == "sum of parts"
    assert cases["adds"].find("failure") is None


def test_every_passing_suite_exits_zero_and_missing_paths_are_usage_errors(suite):
    assert lwasc("test", str(suite / "ok.lwas")).returncode == 0
    r = lwasc("test", str(suite / "nothing.lwas"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_the_stdlib_and_services_test_blocks_pass_under_the_runner():
    root = Path(__file__).parent.parent
    r = lwasc("test", "stdlib", "services", "examples", cwd=root)
    assert r.returncode == 0, r.stdout
    assert " 0 failed" in r.stdout.splitlines()[-1]


# ---------------------------------------------------------------- contracts

CONTRACTS = """
/// Integer square root.
fn isqrt(n: int) -> int
  requires n >= 0
  ensures result * result <= n and (result + 1) * (result + 1) > n {
  var r = 0
  while (r + 1) * (r + 1) <= n {
    r += 1
  }
  return r
}

fn lies(n: int) -> int requires n > 0 ensures result > n = n

fn countdown(n: int) -> int requires n >= 0 {
  if n == 0 {
    return 0
  }
  return countdown(n - 2)
}

rule half(x: float) ensures result <= 0.5 = clamp01(x)
"""


def _native(src: str, contracts: bool = True):
    c = compile_source(src, "contracts.lwas", until="codegen", contracts=contracts)
    assert c.ok, c.diagnostics
    return NativeProgram.from_object(c.native.object_code, c.native.describe())


@pytest.mark.parametrize("call,args,kind,message", [
    ("isqrt", (10,), None, 3),
    ("isqrt", (-1,), "contract", "precondition `n >= 0` of `isqrt` violated"),
    ("lies", (3,), "contract", "postcondition `result > n` of `lies` violated"),
    ("countdown", (4,), None, 0),
    ("countdown", (3,), "contract", "precondition `n >= 0` of `countdown` violated"),  # checked on recursion
    ("half", (0.3,), None, 0.3),
    ("half", (0.9,), "contract", "postcondition `result <= 0.5` of `half` violated"),
])
def test_contracts_natively_and_in_the_evaluator(call, args, kind, message):
    native, ev = _native(CONTRACTS), evaluator_for(CONTRACTS, "contracts.lwas")
    for run in (native.call, ev.call):
        if kind is None:
            assert run(call, *args) == message
        else:
            with pytest.raises(LwasRuntimeError) as e:
                run(call, *args)
            assert (e.value.kind, e.value.message) == (kind, message)
            assert e.value.position.file == "contracts.lwas"


def test_release_builds_leave_contracts_out_only_when_asked(tmp_path):
    assert _native(CONTRACTS, contracts=False).call("lies", 3) == 3
    src = tmp_path / "c.lwas"
    src.write_text(CONTRACTS + "fn main() -> int = lies(3)\n")
    checked, release = tmp_path / "checked.lwasart", tmp_path / "release.lwasart"
    assert lwasc("build", str(src), "-o", str(checked)).returncode == 0
    assert lwasc("build", str(src), "-o", str(release), "--no-contracts").returncode == 0
    r = lwasc("run", str(checked))
    assert r.returncode != 0 and "postcondition `result > n` of `lies` violated" in r.stderr
    r = lwasc("run", str(release))
    assert r.returncode == 0 and r.stdout.strip() == "3"


def test_contract_conditions_are_type_checked():
    c = compile_source("fn f(x: int) -> int requires x + 1 ensures result = x\n", "bad.lwas", until="codegen")
    assert not c.ok and {d.code for d in c.diagnostics} & {"E0301", "E0302", "E0303", "E0304", "E0305"}


# ---------------------------------------------------------------- generated tests

def test_generate_finds_the_seeded_off_by_one_and_prints_its_minimal_input(tmp_path):
    r = lwasc("test", str(DATA / "offbyone.lwas"), "--generate")
    assert r.returncode == 1
    assert "sum_first fails on a generated input (index)" in r.stdout
    assert "let r = sum_first([], 0)" in r.stdout  # shrunk: the smallest input in the domain
    assert r.stdout.splitlines()[-1].startswith("1 passed, 1 failed")  # the rule `small` holds
    # the printed block is ready to paste: appended to the file, it fails the same way
    block = r.stdout[r.stdout.index('test "sum_first'):].split("\n}\n")[0] + "\n}\n"
    pasted = tmp_path / "pasted.lwas"
    pasted.write_text((DATA / "offbyone.lwas").read_text() + "\n" + block)
    again = lwasc("test", str(pasted), "--format", "json")
    data = json.loads(again.stdout)
    [t] = data["tests"]
    assert t["outcome"] == "failed" and t["kind"] == "index"


GENERATED = """
record Point {
  x: int
  y: int
}
enum Side { Left, Right }

fn manhattan(p: Point) -> int requires p.x > -1000000 and p.x < 1000000 and p.y > -1000000 and p.y < 1000000 {
  return abs(p.x) + abs(p.y)
}

fn pick(s: Side, a: money, b: money) -> money requires currency(a) == currency(b) = match s {
  Left => a
  Right => b
}

fn spin(n: int) -> int {
  var i = 0
  var s = 0
  while i < n {
    s = (s * 31 + i) % 1000003
    i += 1
  }
  return s
}

rule too_sure(x: truth) = truth(x * 2.0)
"""


def test_generate_covers_records_enums_money_and_bounds_time():
    c = compile_source(GENERATED, "gen.lwas", until="codegen")
    assert c.ok, c.diagnostics
    program = NativeProgram.from_object(c.native.object_code, c.native.describe())
    found = {f.name: f for f in generate(program, c.native.describe(), examples=100, budget=5.0)}
    assert found["manhattan"].ok and found["pick"].ok
    assert not found["spin"].ok and found["spin"].kind == "timeout"
    bad = found["too_sure"]
    assert not bad.ok and bad.kind == "truth_range" and "too_sure(" in bad.test_block


def test_generated_requests_find_the_route_that_answers_500():
    """bank.lwas's GET /average/{n} divides by n (a documented fault route); the generator finds
    it with the smallest request, and every other route answers 2xx or a documented 4xx."""
    from lwas.driver import compile_file
    from lwas.tools.generate import generate_services
    from lwas.backend.keys import generate as new_key

    root = Path(__file__).parent.parent
    key = new_key()
    found = {}
    for f in ("examples/bank.lwas", "services/economy.lwas", "services/telemetry.lwas"):
        c = compile_file(root / f, key=key)
        found.update({(f, r.route): r for r in generate_services(c.artifact, key, examples=40)})
    avg = found[("examples/bank.lwas", "GET /average/{n}")]
    assert not avg.ok and avg.status == 500 and avg.request == "GET /average/0" and "div_zero" in avg.answer
    bad = [k for k, r in found.items() if not r.ok and k[1] != "GET /average/{n}"]
    assert bad == []
    assert found[("services/economy.lwas", "POST /transaction")].requests >= 20  # bodies were sent
