"""Type checking (lwas.check): accepted programs, one failing program per diagnostic code,
expression types, references and the data later phases read from `Checked`."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from lwas.syntax import tree as ast
from lwas.semantics.builtins import BUILTINS
from lwas.semantics.typecheck import BuiltinRef, Checked, FieldRef, ItemRef, Local, ModuleRef, VariantRef, check_program
from lwas.syntax.diagnostics import Sink
from lwas.syntax.parse import parse_module
from lwas.semantics.resolve import Loader, Program, load, resolve
from lwas.syntax.source import SourceFile
from lwas.semantics.types import (BOOL, CURRENCY_EXPONENTS, FLOAT, INT, MONEY, TEXT, TRUTH, UNIT,
                        ArrayT, EnumT, MoneyValue, RecordT, money_t)

# ---------------------------------------------------------------- building programs
# Through the real loader and resolver, reading module texts from a dict instead of files.

STD = Path("/virtual-std")


def build(modules: dict[str, str] | str, root: str | None = None, sink: Sink | None = None,
          strict: bool = True) -> Program:
    """Load and resolve module texts (name -> text; the root is `root` or the last one).

    `std.x` modules live in a virtual standard library; the others beside the root file."""
    if isinstance(modules, str):
        modules = {"main": modules}
    root = root or list(modules)[-1]
    files = {}
    for name, text in modules.items():
        parts = name.split(".")
        path = STD.joinpath(*parts[1:]) if parts[0] == "std" and len(parts) > 1 else Path(*parts)
        files[str(path.with_suffix(".lwas"))] = text

    def read(path: Path) -> str:
        try:
            return files[str(path)]
        except KeyError:
            raise FileNotFoundError(str(path)) from None

    sink = sink if sink is not None else Sink()
    loader = Loader(parse=parse_module, stdlib_dir=STD, read=read)
    root_path = root.replace(".", "/") + ".lwas"
    program = load(SourceFile(root_path, modules[root]), loader, sink)
    resolve(program, sink)
    if strict:
        assert not sink.items, [(d.code, d.message) for d in sink.items]
    return program


def check(modules, root=None) -> tuple[Checked, Sink, Program]:
    sink = Sink()
    program = build(modules, root, sink)
    checked = check_program(program, sink)
    return checked, sink, program


def codes(sink: Sink) -> list[str]:
    return [d.code for d in sink.items]


def errors(sink: Sink) -> list:
    return [d for d in sink.items if d.is_error]


def only(sink: Sink, code: str):
    """The single diagnostic with this code (and no other errors)."""
    found = [d for d in sink.items if d.code == code]
    assert len(found) == 1, [(d.code, d.message) for d in sink.items]
    others = [d for d in errors(sink) if d.code != code]
    assert not others, [(d.code, d.message) for d in others]
    return found[0]


def clean(sink: Sink) -> None:
    assert not sink.items, [(d.code, d.message, str(d.span)) for d in sink.items]


def find(tree_or_program, cls, pred=lambda n: True):
    trees = ([m.tree for m in tree_or_program.modules] if isinstance(tree_or_program, Program)
             else [tree_or_program])
    for t in trees:
        for n in ast.walk(t):
            if isinstance(n, cls) and pred(n):
                return n
    raise LookupError(cls)


def item(program: Program, name: str, module: str | None = None):
    mod = program.root if module is None else next(m for m in program.modules if m.name == module)
    return mod.items[name]


# ---------------------------------------------------------------- the contract's program

LANGUAGE_PROGRAM = (Path(__file__).resolve().parent.parent / "examples" / "language_tour.lwas").read_text()


@pytest.fixture(scope="module")
def lang():
    return check({"ethics": LANGUAGE_PROGRAM})


def test_language_program_checks_clean(lang):
    _, sink, _ = lang
    clean(sink)


CONTRACT = Path(__file__).resolve().parent.parent / "docs" / "contract.md"  # the core language contract, as given


def test_contract_accepted_blocks_check_clean():
    text = CONTRACT.read_text(encoding="utf-8")
    rejected = (text.index("must be **rejected**"), text.index("## Types"))
    blocks = [m.group(1) for m in re.finditer(r"```lwas\n(.*?)```", text, re.S)
              if not rejected[0] < m.start() < rejected[1]]
    _, sink, _ = check({"ethics": "\n".join(blocks)})
    clean(sink)


def test_language_program_types(lang):
    ch, _, p = lang
    valid = item(p, "valid_amount")
    body = valid.body
    assert isinstance(body, ast.Binary) and body.op == "and"
    assert ch.types[body] is BOOL  # two comparisons...
    assert ch.converted_type(body) is TRUTH  # ...converted to the rule's truth
    assert ch.types[body.left.right] == money_t("USD")  # 0.00 USD
    assert ch.types[body.left.left] is MONEY  # tx.amount: currency known at run time
    assert ch.types[body.right.right] == money_t("USD")  # MAX_TRANSACTION
    assert ch.signatures[item(p, "signed_amount")].ret is MONEY
    assert ch.types[item(p, "signed_amount").body] is MONEY
    healthy = item(p, "healthy")
    assert ch.types[healthy.body] is TRUTH
    assert ch.types[healthy.body.left.operand] is TRUTH  # overloaded(cpu)
    assert ch.signatures[item(p, "overloaded")].ret is TRUTH
    assert str(ch.signatures[item(p, "mean")]) == "(xs: [float]) -> float"
    assert ch.const_types[item(p, "MAX_TRANSACTION")] == money_t("USD")
    assert ch.const_values[item(p, "MAX_TRANSACTION")] == MoneyValue(100_000_000, "USD")
    assert ch.const_values[item(p, "CPU_ALERT")] == 80.0
    circle = item(p, "circle_area").body
    assert ch.types[circle] is FLOAT


def test_language_program_refs_and_locals(lang):
    ch, _, p = lang
    fib = item(p, "fib")
    call = find(fib, ast.Call)
    ref = ch.refs[call.callee]
    assert isinstance(ref, ItemRef) and ref.kind == "fn" and ref.decl is fib
    assert ch.call_sigs[call] is ch.signatures[fib]
    sum_to = item(p, "sum_to")
    let = find(sum_to, ast.Let)
    assert ch.let_types[let] is INT
    loc = ch.bindings[let]
    assert loc.mutable and loc.assigned and loc.used
    loop = find(sum_to, ast.ForRange)
    assert ch.bindings[loop].kind == "for" and not ch.bindings[loop].mutable
    mean = item(p, "mean")
    len_call = find(mean, ast.Call, lambda c: isinstance(c.callee, ast.Name) and c.callee.name == "len")
    assert isinstance(ch.refs[len_call.callee], BuiltinRef)
    assert ch.call_sigs[len_call].params[0][1] == ArrayT(FLOAT)
    signed = item(p, "signed_amount")
    pat = find(signed, ast.VariantPat)
    assert isinstance(ch.refs[pat], VariantRef) and ch.refs[pat].name == "Payment"
    field = find(signed, ast.Field, lambda f: f.name == "tx_type")
    fr = ch.refs[field]
    assert isinstance(fr, FieldRef) and fr.index == 3 and isinstance(fr.record, RecordT)
    assert isinstance(ch.types[field], EnumT)
    healthy = item(p, "healthy")
    assert ch.refs[healthy.requires[0]].decl is item(p, "integrity")
    assert isinstance(ch.refs[find(healthy, ast.Name, lambda n: n.name == "cpu")], Local)
    rec = ch.records[item(p, "Transaction")]
    assert list(rec.fields) == ["id", "amount", "timestamp", "tx_type"]
    assert ch.enums[item(p, "TxType")].variants == ("Payment", "Refund", "Expense", "Revenue")


# ---------------------------------------------------------------- one failing program per code

def test_e0004_int_literal_out_of_range():
    _, sink, _ = check("fn f() -> int = 9223372036854775808\n")
    d = only(sink, "E0004")
    assert d.message == "integer literal out of range"
    assert (d.span.line, d.span.col) == (1, 17)


def test_e0004_min_int_is_fine_and_float_must_be_finite():
    _, sink, _ = check("fn f() -> int = -9223372036854775808\n")
    clean(sink)
    _, sink, _ = check("fn f() -> float = 1e999\n")
    assert only(sink, "E0004").message == "float literal out of range"


def test_e0101_undefined_name_with_suggestion():
    _, sink, _ = check("fn total(n: int) -> int {\n  let count = n\n  return cuont + 1\n}\n")
    d = only(sink, "E0101")
    assert d.message == "cannot find `cuont` in this scope"
    assert (d.span.line, d.span.col) == (3, 10)
    assert d.help == "a name with a similar spelling exists: `count`"


def test_e0101_private_member_of_another_module():
    _, sink, _ = check({
        "util": "module util\nfn secret() -> int = 1\npub fn open() -> int = secret()\n",
        "main": "import util\nfn f() -> int = util.secret()\n",
    })
    d = only(sink, "E0101")
    assert d.message == "cannot find `secret` in module `util`"
    assert d.notes == ("`secret` is declared in `util` but is not `pub`",)


def test_e0101_ambiguous_bare_variant():
    src = "enum A { X, Y }\nenum B { X, Z }\nfn f() -> A = X\nfn g() -> int {\n  let v = X\n  return 0\n}\n"
    ch, sink, p = check(src)
    d = only(sink, "E0101")  # `-> A = X` is resolved by the expected type; `let v = X` is not
    assert d.message == "`X` is ambiguous" and d.span.line == 5


def test_e0105_unknown_type():
    _, sink, _ = check("fn f(t: Transction) -> int = 1\nrecord Transaction { id: text }\n")
    d = only(sink, "E0105")
    assert d.message == "cannot find type `Transction` in this scope"
    assert (d.span.line, d.span.col) == (1, 9)
    assert "`Transaction`" in d.help


def test_e0301_return_type_mismatch():
    _, sink, _ = check("fn f(n: int) -> float {\n  return n\n}\n")
    d = only(sink, "E0301")
    assert d.message == "mismatched types: expected `float`, found `int`"
    assert d.label == "expected `float` because of the return type"
    assert (d.span.line, d.span.col) == (2, 10)
    assert d.help == "convert it with `float(...)`"


def test_e0301_int_literal_where_float_expected():
    _, sink, _ = check("fn f() -> float = 2\n")
    d = only(sink, "E0301")
    assert d.help == "write a float literal: `2.0`"


def test_e0301_truth_condition():
    _, sink, _ = check("fn f(t: truth) -> int {\n  if t {\n    return 1\n  }\n  return 0\n}\n")
    d = only(sink, "E0301")
    assert d.message == "mismatched types: expected `bool`, found `truth`"
    assert "x >= 0.5" in d.help


def test_e0301_assert_truth():
    _, sink, _ = check("test \"t\" {\n  assert 0.5 and true\n}\n")
    assert only(sink, "E0301").message == "mismatched types: expected `bool`, found `truth`"


def test_e0302_wrong_number_of_arguments():
    _, sink, _ = check("fn add(a: int, b: int) -> int = a + b\nfn f() -> int = add(1)\n")
    d = only(sink, "E0302")
    assert d.message == "`add` takes 2 arguments but 1 was given"
    assert d.label == "missing `b`"


def test_e0303_not_callable():
    _, sink, _ = check("const K: int = 3\nfn f() -> int = K(1)\n")
    d = only(sink, "E0303")
    assert d.message == "constant `K` is not callable"


def test_e0304_no_such_field():
    src = "record Point { x: float, y: float }\nfn f(p: Point) -> float = p.z\n"
    _, sink, _ = check(src)
    d = only(sink, "E0304")
    assert d.message == "no field `z` on type `Point`"
    assert d.notes == ("`Point` has the fields `x` and `y`",)
    assert (d.span.line, d.span.col) == (2, 29)


def test_e0305_non_exhaustive_names_missing_variants():
    src = ("enum TxType { Payment, Refund, Expense, Revenue }\n"
           "fn f(t: TxType) -> int = match t {\n  Payment => 1\n  Refund => 2\n}\n")
    _, sink, _ = check(src)
    d = only(sink, "E0305")
    assert d.message == "non-exhaustive match: variants `Expense` and `Revenue` not covered"
    assert (d.span.line, d.span.col) == (2, 32)


def test_e0305_literal_match_needs_wildcard_but_bool_can_be_exhaustive():
    _, sink, _ = check("fn f(n: int) -> int = match n {\n  0 => 1\n  1 => 2\n}\n")
    assert only(sink, "E0305").message == "non-exhaustive match: not every `int` is covered"
    _, sink, _ = check("fn f(b: bool) -> int = match b {\n  true => 1\n  false => 0\n}\n")
    clean(sink)


def test_e0306_missing_return():
    _, sink, _ = check("fn f(n: int) -> int {\n  if n > 0 {\n    return 1\n  }\n}\n")
    d = only(sink, "E0306")
    assert d.message == "missing return in function `f`"
    assert (d.span.line, d.span.col) == (5, 1)


def test_all_paths_return_forms():
    src = """enum E { A, B }
fn a(n: int) -> int {
  if n > 0 {
    return 1
  } else if n < 0 {
    return -1
  } else {
    return 0
  }
}
fn b(e: E) -> int {
  match e {
    A => { return 1 }
    B => { return 2 }
  }
}
fn c() -> int {
  while true {
    return 1
  }
}
fn d() -> int {
  while true {
    break
  }
}
"""
    _, sink, _ = check(src)
    d = only(sink, "E0306")
    assert d.message == "missing return in function `d`"


def test_e0307_let_reassignment():
    _, sink, _ = check("fn f() -> int {\n  let total = 0\n  total += 1\n  return total\n}\n")
    d = only(sink, "E0307")
    assert d.message == "cannot assign twice to immutable binding `total`"
    assert d.help == "declare it `var`: `var total = 0`"
    assert (d.span.line, d.span.col) == (3, 3)


def test_e0307_param_const_and_loop_variable():
    src = """const K: int = 1
fn f(n: int) {
  n = 2
  K = 3
  for i in 0..3 {
    i = 4
  }
}
"""
    _, sink, _ = check(src)
    assert codes(sink) == ["E0307", "E0307", "E0307"]
    assert [d.message for d in sink.items] == [
        "cannot assign to parameter `n`", "cannot assign to constant `K`", "cannot assign to loop variable `i`"]


def test_var_record_field_assignment_is_allowed():
    src = """record P { x: float, y: float }
fn f() -> float {
  var p = P(x: 1.0, y: 2.0)
  p.x = 3.0
  let q = P(x: 1.0, y: 2.0)
  q.y = 1.0
  return p.x + q.x
}
"""
    _, sink, _ = check(src)
    d = only(sink, "E0307")
    assert d.span.line == 6


def test_e0308_currency_mismatch():
    ch, sink, p = check("fn f() -> money = 1.00 USD + 1.00 EUR\n")
    d = only(sink, "E0308")
    assert d.message == "currency mismatch: `USD` and `EUR`"
    assert [l.message for l in d.labels] == ["this is `USD`", "this is `EUR`"]


def test_e0308_comparison_and_return():
    _, sink, _ = check("fn f(m: money) -> bool = 1.00 USD < 200 JPY\n")
    assert only(sink, "E0308")
    _, sink, _ = check("const C: money = 1.00 EUR\nfn f() -> bool = C == 1.00 USD\n")
    assert only(sink, "E0308")


def test_unknown_currency_is_checked_at_run_time():
    ch, sink, p = check("fn f(m: money) -> money = m + 1.00 USD\nfn g(m: money) -> bool = m > 0.00 EUR\n")
    clean(sink)
    assert ch.types[item(p, "f").body] == money_t("USD")


def test_e0309_unknown_currency():
    _, sink, _ = check("fn f() -> money = 5.00 USX\n")
    d = only(sink, "E0309")
    assert d.message == "unknown currency `USX`"
    assert d.help == "did you mean `USD`?"


def test_e0310_too_many_decimals():
    _, sink, _ = check("fn f() -> money = 99.999 USD\n")
    d = only(sink, "E0310")
    assert d.message == "too many decimals for `USD`: `99.999 USD` has 3, `USD` allows 2"
    assert (d.span.line, d.span.col, d.span.end_col) == (1, 19, 29)
    _, sink, _ = check("fn f() -> money = 1.5 JPY\n")
    assert only(sink, "E0310")
    ch, sink, p = check("fn f() -> money = 500 JPY\nfn g() -> money = 1.250 KWD\n")
    clean(sink)
    assert ch.money_values[find(item(p, "f"), ast.MoneyLit)] == MoneyValue(500, "JPY")
    assert ch.money_values[find(item(p, "g"), ast.MoneyLit)] == MoneyValue(1250, "KWD")


def test_e0311_int_float_mixing():
    _, sink, _ = check("fn f(r: float) -> float = 2 * r\n")
    d = only(sink, "E0311")
    assert d.message == "cannot multiply `int` by `float`"
    assert d.help == "write a float literal: `2.0`"
    _, sink, _ = check("fn f(r: float, n: int) -> float = r + n\n")
    d = only(sink, "E0311")
    assert d.message == "cannot add `int` to `float`"
    assert "float(...)" in d.help


def test_e0311_money_operators():
    _, sink, _ = check("fn f(m: money) -> money = m * 1.5\n")
    assert "scale(m, factor)" in only(sink, "E0311").help
    _, sink, _ = check("fn f(m: money) -> money = m / 3\n")
    assert only(sink, "E0311").message == "cannot divide `money` by `int`"
    ch, sink, p = check("fn f(m: money, n: int) -> money = m * n + n * m\nfn g(a: money, b: money) -> float = a / b\n")
    clean(sink)


def test_e0312_unknown_and_duplicate_variants():
    src = """enum E { A, B }
fn f(e: E) -> int = match e {
  A => 1
  C => 2
  A => 3
  _ => 4
}
"""
    _, sink, _ = check(src)
    assert codes(sink) == ["E0312", "E0312"]
    assert sink.items[0].message == "no variant `C` in enum `E`"
    assert sink.items[1].message == "variant `A` is matched twice"


def test_e0313_invalid_assignment_target():
    _, sink, _ = check("fn g() -> int = 1\nfn f() {\n  g() = 2\n}\n")
    d = only(sink, "E0313")
    assert d.message == "invalid assignment target"


def test_e0314_break_outside_loop():
    _, sink, _ = check("fn f() {\n  break\n}\n")
    d = only(sink, "E0314")
    assert d.message == "`break` outside a loop"
    assert (d.span.line, d.span.col) == (2, 3)


def test_e0315_record_construction():
    src = "record P { x: float, y: float }\nfn f() -> P = P(x: 1.0, x: 2.0)\n"
    _, sink, _ = check(src)
    assert codes(sink) == ["E0315", "E0315"]
    assert sink.items[0].message == "field `x` is given twice"
    assert sink.items[1].message == "missing field `y` in `P`"
    _, sink, _ = check("record P { x: float }\nfn f() -> P = P(1.0)\n")
    assert only(sink, "E0315").message == "record fields must be named: `P(field: value, ...)`"


def test_record_construction_data():
    src = "record P { x: float, y: float }\nfn f() -> P = P(y: 2.0, x: 1.0)\n"
    ch, sink, p = check(src)
    clean(sink)
    call = item(p, "f").body
    assert isinstance(ch.types[call], RecordT)
    assert [a.value for a in ch.call_args[call]] == [1.0, 2.0]  # field order
    assert ch.call_sigs[call].ret is ch.types[call]
    assert isinstance(ch.refs[call.args[0]], FieldRef) and ch.refs[call.args[0]].name == "y"


def test_e0316_constant_expression_required():
    _, sink, _ = check("fn f() -> int = 1\nconst K: int = f() + 1\n")
    d = only(sink, "E0316")
    assert d.message == "constant expression required"
    assert (d.span.line, d.span.col) == (2, 16)
    _, sink, _ = check("const A: int = B\nconst B: int = A\n")
    assert only(sink, "E0316").message.endswith("depends on itself")


def test_constant_folding():
    src = """const A: int = 6 * 7
const B = A - 2
const C: float = 1.5 * 2.0
const D: money = 2.50 USD * 3
const E = "a" + "b"
const F: truth = 0.25
const G = ramp(1.0, 0.0, 2.0)
const H: int = 7 / -2
const I = 9223372036854775807 + 1
"""
    ch, sink, p = check(src)
    clean(sink)
    vals = {n: ch.const_values[item(p, n)] for n in "ABCDEFGHI"}
    assert vals == {"A": 42, "B": 40, "C": 3.0, "D": MoneyValue(750, "USD"), "E": "ab", "F": 0.25,
                    "G": None, "H": -3, "I": None}
    assert ch.const_types[item(p, "B")] is INT
    assert ch.const_types[item(p, "F")] is TRUTH
    assert ch.const_types[item(p, "D")] == money_t("USD")


def test_e0317_return_in_test():
    _, sink, _ = check("test \"t\" {\n  return\n}\n")
    d = only(sink, "E0317")
    assert d.message == "`return` outside a function"


def test_e0318_empty_array_needs_a_type():
    _, sink, _ = check("fn f() -> int {\n  let xs = []\n  return len(xs)\n}\n")
    assert only(sink, "E0318").message == "cannot infer the element type of an empty array"
    ch, sink, p = check("fn f() -> int {\n  let xs: [int] = []\n  return len(xs)\n}\n")
    clean(sink)
    assert ch.let_types[find(p, ast.Let)] == ArrayT(INT)


def test_e0319_recursive_record():
    src = "record A { b: B }\nrecord B { a: A, n: int }\nrecord Tree { kids: [Tree] }\n"
    _, sink, _ = check(src)
    d = only(sink, "E0319")
    assert d.message == "recursive record `A` has infinite size"
    assert d.notes == ("the cycle: A -> B -> A",)


def test_e0102_duplicates_in_bodies():
    src = "fn f(a: int, a: int) -> int {\n  let x = 1\n  let x = 2\n  return x\n}\n"
    _, sink, _ = check(src)
    assert [d.code for d in errors(sink)] == ["E0102", "E0102"]
    assert [d.message for d in errors(sink)] == ["the parameter `a` is defined more than once",
                                                 "the variable `x` is defined more than once"]


def test_shadowing_in_inner_block_and_parameter_rebinding():
    src = "fn f(n: int) -> int {\n  var n = n\n  n += 1\n  if n > 2 {\n    let n = 0\n    return n\n  }\n  return n\n}\n"
    _, sink, _ = check(src)
    clean(sink)


# ---------------------------------------------------------------- warnings

def test_w0101_only_private_items_of_non_root_modules():
    _, sink, _ = check({
        "lib": "module lib\nfn unused() -> int = 1\nfn rec(n: int) -> int = rec(n)\nfn used() -> int = 2\n"
               "pub fn api() -> int = used()\naxiom lonely = 0.5\nrecord R { a: int }\n",
        "main": "import lib\nfn private_root() -> int = lib.api()\n",
    })
    ws = [(d.code, d.message) for d in sink.items]
    assert ws == [("W0101", "function `unused` is never used"),
                  ("W0101", "function `rec` is never used"),
                  ("W0101", "record `R` is never used")]


def test_w0102_unused_import():
    _, sink, _ = check({
        "a": "module a\npub fn f() -> int = 1\n",
        "b": "module b\npub record T { x: int }\n",
        "main": "import a\nimport b\nfn g(t: b.T) -> int = t.x\n",
    })
    d = only(sink, "W0102")
    assert d.message == "unused import: `a`"
    assert d.severity == "warning"


def test_w0103_unused_locals_only():
    src = """fn f(unused_param: int) -> int {
  let a = 1
  let _b = 2
  var c = 3
  c = 4
  let d = 5
  for i in 0..3 {
    c += d
  }
  return 0
}
"""
    _, sink, _ = check(src)
    assert [(d.code, d.message, d.span.line) for d in sink.items] == [
        ("W0103", "unused variable: `a`", 2), ("W0103", "unused variable: `c`", 4)]


def test_w0104_unreachable():
    src = "fn f() -> int {\n  return 1\n  let x = 2\n  return x\n}\n"
    _, sink, _ = check(src)
    d = only(sink, "W0104")
    assert (d.span.line, d.span.col) == (3, 3)
    _, sink, _ = check("fn f(n: int) {\n  while n > 0 {\n    break\n    continue\n  }\n}\n")
    assert only(sink, "W0104").span.line == 4


# ---------------------------------------------------------------- modules

MODULES = {
    "std.money": "module std.money\npub fn fmt(m: money) -> text = text(m)\npub const ZERO: money = 0.00 USD\n",
    "models": "module models\npub enum TxType { Payment, Refund }\n"
              "pub record Transaction { id: text, amount: money, tx_type: TxType }\n",
    "main": """module main
import std.money
import models
fn show(t: models.Transaction) -> text = money.fmt(t.amount)
fn is_payment(t: models.Transaction) -> bool = t.tx_type == models.TxType.Payment
fn is_refund(t: models.Transaction) -> bool = t.tx_type == Refund
fn kind(t: models.Transaction) -> int = match t.tx_type {
  Payment => 1
  models.TxType.Refund => 2
}
fn zero() -> money = money.ZERO
""",
}


def test_module_members_and_types():
    ch, sink, p = check(MODULES)
    clean(sink)
    show = item(p, "show")
    call = show.body
    ref = ch.refs[call.callee]
    assert isinstance(ref, ItemRef) and ref.module.name == "std.money" and ref.kind == "fn"
    assert isinstance(ch.refs[call.callee.obj], ModuleRef)
    assert call.callee.obj not in ch.types  # a module is not a value
    assert ch.types[call] is TEXT
    param_type = ch.type_exprs[show.params[0].type]
    assert isinstance(param_type, RecordT) and param_type.qualified == "models.Transaction"
    variant = item(p, "is_payment").body.right
    assert isinstance(ch.refs[variant], VariantRef) and isinstance(ch.types[variant], EnumT)
    bare = item(p, "is_refund").body.right  # resolved through the compared enum type
    assert ch.refs[bare].name == "Refund"
    assert ch.types[item(p, "zero").body] == money_t("USD")
    main = p.root
    assert {"money", "models"} <= main.used
    assert "fmt" in p.modules[0].used


def test_unknown_module_type_and_member():
    _, sink, _ = check({
        "models": "module models\npub record T { x: int }\n",
        "main": "import models\nfn f(t: models.U) -> int = models.nothing()\nfn g(t: modls.T) -> int = 1\n",
    })
    assert codes(sink) == ["E0105", "E0105", "E0101"]


def test_a_missing_module_does_not_cascade():
    sink = Sink()
    program = build({"main": "import models\nfn f(t: models.T) -> int = models.g(t)\n"}, sink=sink, strict=False)
    check_program(program, sink)
    assert codes(sink) == ["E0103"]


# ---------------------------------------------------------------- expressions and built-ins

def test_truth_and_bool_logic():
    src = """fn a(x: bool, y: bool) -> bool = x and not y
fn b(t: truth, x: bool) -> truth = t or x
fn c(t: truth) -> float = t * 2.0
rule r() = 0.5
rule s(t: truth) -> truth = t and 0.3
fn d(t: truth) -> bool = t >= 0.5
"""
    ch, sink, p = check(src)
    clean(sink)
    assert ch.types[item(p, "a").body] is BOOL
    b = item(p, "b").body
    assert ch.types[b] is TRUTH and ch.coercions[b.right] is TRUTH
    c = item(p, "c").body
    assert ch.types[c] is FLOAT and ch.coercions[c.left] is FLOAT
    assert ch.types[item(p, "r").body] is TRUTH  # a float literal in [0, 1] as truth
    assert ch.types[item(p, "s").body.right] is TRUTH


def test_truth_literal_out_of_range_and_rule_result():
    _, sink, _ = check("rule r() -> truth = 1.5\n")
    assert only(sink, "E0301").help == "a truth literal lies in [0, 1]"
    _, sink, _ = check("rule r() -> float = 0.5\n")
    assert only(sink, "E0301").message == "mismatched types: a rule returns `truth`, not `float`"


def test_builtins_and_overloads():
    src = """fn a(xs: [int]) -> int = len(xs)
fn b(n: int) -> float = float(n) + float(0.5)
fn c(x: float) -> int = int(x)
fn d(m: money) -> money = abs(m) + min(m, 1.00 USD)
fn e(t: truth) -> float = max(t, 0.75)
fn f() -> money = from_minor(1250, "EUR")
fn g(m: money) -> money = scale(m, 1.1)
fn h(x: float) -> truth = clamp01(x) and ramp(x, 0.0, 1.0)
fn i(n: int) -> text = text(n) + text(1.00 USD)
"""
    ch, sink, p = check(src)
    clean(sink)
    b_call = item(p, "b").body.left
    assert ch.call_sigs[b_call].params == (("x", INT),)
    d_min = item(p, "d").body.right
    assert ch.types[d_min] == money_t("USD")
    e_call = item(p, "e").body
    assert ch.types[e_call] is FLOAT and ch.coercions[e_call.args[0].value] is FLOAT
    assert ch.types[item(p, "f").body] == money_t("EUR")
    g_call = item(p, "g").body
    assert ch.call_sigs[g_call].params == (("m", MONEY), ("factor", FLOAT))


def test_builtin_errors():
    _, sink, _ = check("fn f(s: text) -> float = float(s)\n")
    d = only(sink, "E0301")
    assert d.message == "mismatched types: expected `int` or `float`, found `text`"
    _, sink, _ = check("fn f() -> int = min(1, 2.0)\n")
    assert only(sink, "E0301").message.startswith("mismatched types: `min` needs arguments of one type")
    _, sink, _ = check("fn f() -> money = min(1.00 USD, 1.00 EUR)\n")
    assert only(sink, "E0308")
    _, sink, _ = check("fn f() -> int = len()\n")
    assert only(sink, "E0302").message == "`len` takes 1 argument but 0 were given"


def test_named_arguments():
    src = "fn f(a: int, b: float) -> float = b\nfn g() -> float = f(1, b: 2.0) + f(b: 1.0, a: 2)\n"
    ch, sink, p = check(src)
    clean(sink)
    second = item(p, "g").body.right
    assert [type(a).__name__ for a in ch.call_args[second]] == ["IntLit", "FloatLit"]
    _, sink, _ = check("fn f(a: int) -> int = a\nfn g() -> int = f(b: 1)\n")
    assert only(sink, "E0302").message == "`f` has no parameter named `b`"


def test_arrays_index_and_loops():
    src = """fn f(xs: [money]) -> money {
  var total = 0.00 USD
  for x in xs {
    total = total + x
  }
  return total + xs[0]
}
fn g() -> [float] = [1.0, 2.0, 3.0]
fn h(t: truth) -> [float] = [t, 1.5]
"""
    ch, sink, p = check(src)
    clean(sink)
    assert ch.let_types[find(item(p, "f"), ast.Let)] == money_t("USD")
    assert ch.types[item(p, "g").body] == ArrayT(FLOAT)
    h = item(p, "h").body
    assert ch.types[h] == ArrayT(FLOAT) and ch.coercions[h.elems[0]] is FLOAT
    _, sink, _ = check("fn f() -> [int] = [1, 2.0]\n")
    assert only(sink, "E0301").message == "mismatched types: expected `int`, found `float`"


def test_match_expression_join_and_statement_form():
    src = """enum E { A, B, C }
fn f(e: E) -> float {
  let v = match e {
    A => 1.0
    B => 2.0
    C => 0.5
  }
  match e {
    A => { return v }
    _ => { }
  }
  return 0.0
}
fn g(s: text) -> int = match s {
  "a" | "b" => 1
  _ => 2
}
"""
    ch, sink, p = check(src)
    clean(sink)
    assert ch.let_types[find(item(p, "f"), ast.Let)] is FLOAT
    _, sink, _ = check("fn f(n: int) -> int = match n {\n  0 => 1\n  _ => \"x\"\n}\n")
    assert only(sink, "E0301")


def test_unit_function_and_bare_return():
    src = "fn log(n: int) {\n  if n > 0 {\n    return\n  }\n}\nfn f() -> int {\n  log(1)\n  return 0\n}\n"
    ch, sink, p = check(src)
    clean(sink)
    assert ch.signatures[item(p, "log")].ret is UNIT
    _, sink, _ = check("fn log(n: int) {\n  return n\n}\n")
    assert only(sink, "E0301").message == "mismatched types: expected `()`, found `int`"
    _, sink, _ = check("fn f() -> int {\n  return\n}\n")
    assert only(sink, "E0301").message == "mismatched types: expected `int`, found `()`"


def test_money_currency_coercions_for_run_time_checks():
    src = """fn f(x: money) -> money {
  var total = 0.00 USD
  total = x
  let any: money = total
  return any
}
"""
    ch, sink, p = check(src)
    clean(sink)
    f = item(p, "f")
    assign = find(f, ast.Assign)
    assert ch.coercions[assign.value] == money_t("USD")  # checked at run time
    let_any = [n for n in ast.walk(f) if isinstance(n, ast.Let)][1]
    assert ch.let_types[let_any] is MONEY and ch.coercions[let_any.value] is MONEY


def test_unreachable_match_arm_and_code_after_endless_loop():
    src = """fn f(n: int) -> int {
  let k = match n {
    _ => 1
    2 => 3
  }
  while true {
    if k > n {
      return k
    }
  }
  return 0
}
"""
    _, sink, _ = check(src)
    assert [(d.code, d.message, d.span.line) for d in sink.items] == [
        ("W0104", "unreachable match arm", 4), ("W0104", "unreachable statement", 11)]


def test_unit_function_with_match_body_may_use_block_arms():
    src = "enum E { A, B }\nfn f(e: E) = match e {\n  A => { assert true }\n  B => { }\n}\n"
    _, sink, _ = check(src)
    clean(sink)
    src = "enum E { A, B }\nfn f(e: E) -> int = match e {\n  A => { return 1 }\n  B => 2\n}\n"
    _, sink, _ = check(src)
    assert only(sink, "E0301").message == ("mismatched types: a `match` used as a value needs an "
                                           "expression in every arm")


def test_error_type_does_not_cascade():
    src = "fn f() -> float {\n  let x = nope + 1\n  let y = x * 2.0 + x.field\n  return y\n}\n"
    _, sink, _ = check(src)
    assert codes(sink) == ["E0101"]


def test_axiom_as_value_and_builtin_shadowing():
    src = "axiom truth = 1.0\nrule r(x: float) -> truth = truth and ramp(x, 0.0, 1.0)\n"
    ch, sink, p = check(src)
    clean(sink)
    name = item(p, "r").body.left
    assert isinstance(ch.refs[name], ItemRef) and ch.refs[name].kind == "axiom"


def test_currency_table():
    assert CURRENCY_EXPONENTS["USD"] == 2 and CURRENCY_EXPONENTS["JPY"] == 0
    assert CURRENCY_EXPONENTS["KWD"] == 3 and CURRENCY_EXPONENTS["CLF"] == 4
    assert len(CURRENCY_EXPONENTS) > 150
    assert all(re.fullmatch(r"[A-Z]{3}", c) for c in CURRENCY_EXPONENTS)
    assert "XAU" not in CURRENCY_EXPONENTS  # no minor unit: not money


def test_every_builtin_has_a_doc():
    assert {"len", "float", "int", "truth", "ramp", "clamp01"} <= set(BUILTINS)
    assert all(b.doc and "\n" not in b.doc for b in BUILTINS.values())


# ---------------------------------------------------------------- performance

def _big_program(lines: int) -> str:
    out = ["module big", "enum Kind { A, B, C, D }",
           "record Item { id: text, amount: money, kind: Kind, score: float }",
           "axiom base = 0.9", "const LIMIT: money = 1_000.00 USD", "const RATE: float = 0.5", ""]
    i = 0
    while len(out) < lines:
        out += f"""fn calc{i}(xs: [float], n: int) -> float {{
  var s = 0.0
  var count = 0
  for x in xs {{
    s += x * RATE
    count += 1
  }}
  for j in 0..n {{
    if j % 2 == 0 and count > 3 {{
      s = s + float(j) / 2.0
    }} else if j > 100 {{
      break
    }} else {{
      s -= 1.0
    }}
  }}
  let m = match n {{
    0 => 1.0
    _ => 3.0
  }}
  assert s >= 0.0 or m > 1.0, "non-negative"
  return s / float(len(xs)) + m
}}

fn kind_value{i}(it: Item) -> money = match it.kind {{
  A | B => it.amount
  C => -it.amount
  D => it.amount * 2
}}

rule good{i}(it: Item, cpu: float) -> truth =
  it.amount > 0.00 USD and it.amount <= LIMIT and not ramp(cpu, 70.0, 90.0) requires base

fn make{i}(k: int) -> Item {{
  let it = Item(id: "x", amount: 12.50 USD, kind: Kind.A, score: calc{i}([1.0, 2.0], k))
  var total = 0
  while total < k {{
    total += 1
  }}
  return it
}}
""".split("\n")
        i += 1
    return "\n".join(out) + "\n"


def test_a_10k_line_program_checks_clean():
    # speed is measured in bench/bench_frontend.py, not here
    text = _big_program(10_000)
    assert text.count("\n") >= 10_000
    program = build(text)
    sink = Sink()
    check_program(program, sink)
    clean(sink)



def test_spelling_suggestions_never_name_an_internal_function():
    _, sink, _ = check("fn f() -> int = metrc(1)\n")
    assert only(sink, "E0101").help is None  # not `metric$`, which cannot be written
    _, sink, _ = check("fn metric() -> int = 1\nfn f() -> int = metrc()\n")
    assert only(sink, "E0101").help == "a name with a similar spelling exists: `metric`"
