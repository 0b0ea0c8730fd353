"""Every diagnostic code has a minimal program and the exact text `lwasc check` renders for it.

The expected text lives in tests/golden/CODE.txt. After an intended change of wording, run
`LWAS_UPDATE_GOLDEN=1 pytest tests/test_codes.py` and review the diff like code.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lwas.syntax.codes import CODES, explain
from lwas.syntax.diagnostics import render_all
from lwas.driver import check_source, compile_source
from lwas.syntax.source import SourceError, SourceFile, read_source

GOLDEN = Path(__file__).parent / "golden"
BACK_END_CODES = {"E0320"}  # reported by `lwasc build` (lower and codegen), not by `lwasc check`

# code -> {file name: source}; the first file is the one checked, the others sit beside it
PROGRAMS: dict[str, dict[str, str]] = {
    "E0001": {"main.lwas": "fn f(x) -> int = 1\n"},
    "E0002": {"main.lwas": "fn f(a: bool, b: bool) -> bool = a && b\n"},
    "E0003": {"main.lwas": 'const GREETING: text = "hello\n'},
    "E0004": {"main.lwas": "const BIG: int = 9_223_372_036_854_775_808\n"},
    # bytes that are not UTF-8 are written with surrogateescape: \udce9 is the Latin-1 byte E9
    "E0005": {"main.lwas": "// caf\udce9 au lait\nfn f() -> int = 1\n"},
    "E0006": {"main.lwas": "fn f() -> int = " + "1 + " * 12_000 + "1\n"},
    "E0101": {"main.lwas": "fn f(count: int) -> int = cuont + 1\n"},
    "E0102": {"main.lwas": "axiom twice = 0.3\naxiom twice = 0.4\n"},
    "E0103": {"main.lwas": "import std.nowhere\n"},
    "E0104": {"main.lwas": "import a\n", "a.lwas": "import b\n", "b.lwas": "import a\n"},
    "E0105": {"main.lwas": "fn f(x: Widget) -> int = 1\n"},
    "E0106": {"main.lwas": "fn f() -> int = 1\nmodule late\n"},
    "E0201": {"main.lwas": "axiom too_much = 1.5\n"},
    "E0202": {"main.lwas": "axiom ghost = 0.5 requires nothing_here\n"},
    "E0203": {"main.lwas": "axiom truth = 1.0\naxiom decree = 0.4 requires truth\n"
                           "axiom law = 0.6 requires decree\n"},
    "E0204": {"main.lwas": "axiom truth = 1.0\naxiom freedom = 0.8 requires truth\n"
                           "axiom order = 0.7 requires truth contradicts freedom\n"},
    "E0205": {"main.lwas": "axiom a = 0.5 requires b\naxiom b = 0.5 requires c\naxiom c = 0.5 requires a\n"},
    "E0206": {"main.lwas": "axiom lo = 0.6..0.9\naxiom hi = 0.1..0.7 contradicts lo\naxiom top = 0.7 requires hi\n"},
    "E0207": {"main.lwas": "axiom vague\n"},
    "E0208": {"main.lwas": "fn helper() -> int = 1\nrule r(x: float) -> truth = ramp(x, 0.0, 1.0) requires helper\n"},
    "E0301": {"main.lwas": "fn f() -> float = 1\n"},
    "E0302": {"main.lwas": "fn add(a: int, b: int) -> int = a + b\nfn g() -> int = add(1)\n"},
    "E0303": {"main.lwas": "const LIMIT: int = 3\nfn g() -> int = LIMIT(1)\n"},
    "E0304": {"main.lwas": "record P {\n  x: float\n}\nfn g(p: P) -> float = p.y\n"},
    "E0305": {"main.lwas": "enum Light { Red, Amber, Green }\n"
                           "fn stop(l: Light) -> bool = match l {\n  Red => true\n  Amber => true\n}\n"},
    "E0306": {"main.lwas": "fn sign(x: int) -> int {\n  if x > 0 {\n    return 1\n  }\n}\n"},
    "E0307": {"main.lwas": "fn count() -> int {\n  let total = 0\n  total += 1\n  return total\n}\n"},
    "E0308": {"main.lwas": "const TOTAL: money = 1.00 USD + 1.00 EUR\n"},
    "E0309": {"main.lwas": "const PRICE: money = 5.00 XYZ\n"},
    "E0310": {"main.lwas": "const PRICE: money = 99.999 USD\n"},
    "E0311": {"main.lwas": "fn f(n: int, x: float) -> float = x * n\n"},
    "E0312": {"main.lwas": "enum Light { Red, Green }\n"
                           "fn go(l: Light) -> bool = match l {\n  Green => true\n  Blue => false\n  _ => false\n}\n"},
    "E0313": {"main.lwas": "fn f() {\n  1 = 2\n}\n"},
    "E0314": {"main.lwas": "fn f() {\n  break\n}\n"},
    "E0315": {"main.lwas": "record P {\n  x: float\n  y: float\n}\nfn g() -> P = P(x: 1.0)\n"},
    "E0316": {"main.lwas": "fn seed() -> int = 4\nconst N: int = seed()\n"},
    "E0322": {"main.lwas": "fn total(prices: {float: int}) -> int = len(prices)\n"},
    "E0323": {"main.lwas": "fn seed() -> int = 4\nrecord Counter {\n  n: int = seed()\n}\n"},
    "E0317": {"main.lwas": 'test "early" {\n  return\n}\n'},
    "E0318": {"main.lwas": "fn f() -> int {\n  let xs = []\n  return len(xs)\n}\n"},
    "E0319": {"main.lwas": "record Node {\n  next: Node\n}\n"},
    "E0320": {"main.lwas": 'fn show(x: float) -> text = text(x)\n'},
    "E0321": {"main.lwas": "record T {\n  amount: money in cur\n  cur: int\n}\n"},
    "E0401": {"main.lwas": "record T {\n  id: text\n}\nservice s {\n  ledger log: T by id\n"
                           "  on logs(t) {\n  }\n}\n"},
    "E0402": {"main.lwas": "record T {\n  id: text\n}\nservice s {\n  ledger log: T by id\n"
                           "  state n: int = 0\n  post \"/t\" (t: T) -> int {\n    state.n += 1\n"
                           "    return state.n\n  }\n}\n"},
    "E0403": {"main.lwas": "service s {\n  get \"/item/{id}\" -> int {\n    return 1\n  }\n}\n"},
    "E0404": {"main.lwas": "record T {\n  id: text\n}\nservice s {\n  post \"/t\" (t: T) -> int "
                           "requires len(t.id) > 2 {\n    return 1\n  }\n}\n"},
    "E0405": {"main.lwas": "record T {\n  id: text\n}\nservice s {\n  ledger log: T by name\n}\n"},
    "E0406": {"main.lwas": "service s {\n  every \"soon\" {\n  }\n}\n"},
    "E0407": {"main.lwas": "record R {\n  ok: bool\n}\nextern fn ping(url: text) -> R = \"http.post_json\"\n"
                           "fn check() -> bool = ping(\"x\").ok\n"},
    "W0101": {"main.lwas": "import helpers\n", "helpers.lwas": "fn unused() -> int = 1\n"},
    "W0102": {"main.lwas": "import std.fuzzy\nfn f() -> int = 1\n"},
    "W0103": {"main.lwas": "fn f() -> int {\n  let spare = 2\n  return 1\n}\n"},
    "W0104": {"main.lwas": "fn f() -> int {\n  return 1\n  return 2\n}\n"},
    "W0105": {"main.lwas": "fn is_admin() -> bool = false  // \u202e } \u2066 if is_admin() \u2069 \u2066\n"},
}


def test_every_code_has_a_program_and_an_explanation():
    assert set(PROGRAMS) == set(CODES)
    for code in CODES:
        assert explain(code).startswith(f"{code}: ")


def _render(code: str, tmp_path: Path) -> tuple[str, list[str]]:
    files = PROGRAMS[code]
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    main = next(iter(files))
    try:
        read_source(str(tmp_path / main))  # as `lwasc check` reads it
    except SourceError as e:
        text = render_all([e.diagnostic], {e.source.path: e.source}).replace(str(tmp_path) + "/", "")
        return text + "\n", [e.diagnostic.code]
    if code in BACK_END_CODES:  # stop before the artifact stage: no signing key needed
        c = compile_source(files[main], str(tmp_path / main), until="codegen")
    else:
        c = check_source(files[main], str(tmp_path / main))
    text = render_all(c.diagnostics, c.sources).replace(str(tmp_path) + "/", "")
    return text + "\n", [d.code for d in c.diagnostics]


@pytest.mark.parametrize("code", sorted(PROGRAMS))
def test_rendered_text(code, tmp_path):
    text, codes = _render(code, tmp_path)
    assert code in codes, text
    golden = GOLDEN / f"{code}.txt"
    if os.environ.get("LWAS_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
