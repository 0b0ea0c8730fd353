"""lwas.driver: stages run by name, a stage's failure names the stage, and the IR printer
(`lwasc build --emit lir`) covers every program the repository holds."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lwas.backend.irprint import format_program
from lwas.driver import FRONT_END, NAMES, Compilation, InternalError, compile_source, run, stages
from lwas.syntax.source import SourceFile
from lwas.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent
SRC = "fn f(n: int) -> int = n * 2\ntest \"f\" { assert f(2) == 4 }\n"


def test_stages_are_named_and_in_pipeline_order():
    assert NAMES == ("parse", "contracts", "service", "resolve", "check", "truth", "describe",
                     "lower", "codegen", "artifact")
    assert [s.name for s in stages(until=FRONT_END)] == list(NAMES[:NAMES.index("describe") + 1])
    assert [s.name for s in stages(start="lower", until="codegen")] == ["lower", "codegen"]


def test_run_stops_after_the_named_stage():
    c = run(Compilation(SourceFile("a.lwas", SRC)), until="lower")
    assert c.ok and c.ir is not None and c.native is None and c.artifact is None
    assert [name for name, _ in c.timings] == list(NAMES[:NAMES.index("lower") + 1])
    run(c, start="codegen")
    assert c.native is not None and c.artifact is not None


def test_the_parsed_tree_is_kept_before_services_expand_it():
    c = run(Compilation(SourceFile("a.lwas", "service s {\n  get \"/x\" -> int {\n    return 1\n  }\n}\n")),
            until=FRONT_END)
    assert c.ok and c.parsed_tree is not None and c.parsed_tree is not c.program.root.tree


@pytest.mark.parametrize("kw", [{"until": "lowr"}, {"start": "pars"}, {"replace": {"typecheck": print}}])
def test_an_unknown_stage_name_is_refused_with_the_names(kw):
    with pytest.raises(ValueError, match="the stages: parse, contracts"):
        run(Compilation(SourceFile("a.lwas", SRC)), **kw)


def test_a_stage_that_raises_is_named(monkeypatch):
    def boom(*a, **k):
        raise KeyError("x")
    monkeypatch.setattr("lwas.semantics.truth.check_truth", boom)
    with pytest.raises(InternalError) as e:
        compile_source(SRC, "a.lwas")
    assert e.value.stage == "truth" and isinstance(e.value.cause, KeyError)
    assert str(e.value) == "in stage `truth`: KeyError: 'x'"


def test_a_replaced_stage_runs_in_its_place():
    seen = []
    run(Compilation(SourceFile("a.lwas", SRC)), until="check", replace={"truth": seen.append})
    assert seen == []  # `truth` is after `check`
    c = run(Compilation(SourceFile("a.lwas", SRC)), until="truth", replace={"truth": seen.append})
    assert seen == [c] and c.truth is None


_PROGRAMS = sorted([*ROOT.glob("examples/*.lwas"), *ROOT.glob("services/*.lwas")])


@pytest.mark.parametrize("path", _PROGRAMS, ids=lambda p: p.name)
def test_lir_prints_every_function_and_error_site(path):
    c = compile_source(path.read_text(encoding="utf-8"), str(path), until="lower")
    assert c.ok, [d.message for d in c.sink.items]
    text = format_program(c.ir)
    headers = re.findall(r"^(fn|rule|test) (\S+)\(", text, re.M)
    assert headers == [(f.kind, f.name) for f in c.ir.functions]
    sites = re.findall(r"^  !(\d+) (\w+) at ", text, re.M)
    assert sites == [(str(i), s.kind) for i, s in enumerate(c.ir.error_sites)]
    used = {int(n) for n in re.findall(r"!(\d+)", text.split("\nerror sites:")[0])}
    assert used <= set(range(len(c.ir.error_sites)))


def test_lwasc_build_emits_lir(tmp_path):
    src = tmp_path / "a.lwas"
    src.write_text("fn total(xs: [int]) -> int {\n  var s = 0\n  for x in xs { s += x }\n  return s\n}\n")
    out = tmp_path / "a.lir"
    assert main(["build", "--emit", "lir", str(src), "-o", str(out)]) == 0
    text = out.read_text()
    assert "fn total(xs.0: [int]) -> int" in text
    assert "(iadd!" in text and "overflow at" in text and "counting $i.0" in text
