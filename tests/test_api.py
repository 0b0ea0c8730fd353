"""The Python API: lwas.check and the design document's CompilationContext, in pydantic."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

import lwas


def test_check_returns_diagnostics_not_exceptions():
    assert lwas.check("axiom truth = 1.0\n") == []
    (d,) = lwas.check("axiom a = 1.5\n", filename="a.lwas")
    assert isinstance(d, lwas.Diagnostic)
    assert (d.code, d.span.file, d.span.line) == ("E0201", "a.lwas", 1)
    assert [x.code for x in lwas.check("fn (\n")] == ["E0001"]


def test_context_in_the_design_documents_style():
    ctx = lwas.CompilationContext()
    ctx.add_axiom(lwas.Axiom(name="truth", truth_value=1.0, dependencies=[]))
    ctx.add_axiom(lwas.Axiom(name="freedom", truth_value=0.8, dependencies=["truth"]))
    ctx.add_axiom(lwas.Axiom(name="hope", truth_value=(0.5, 0.9), dependencies=["truth"]))
    ctx.add_axiom(lwas.Axiom(name="care", dependencies=["freedom", "hope"]))
    assert ctx.check() == []
    assert ctx.source().splitlines()[2] == "axiom hope = 0.5..0.9 requires truth"


def test_context_reports_violations_with_the_chain():
    ctx = lwas.CompilationContext()
    for a in (lwas.Axiom(name="truth", truth_value=1.0),
              lwas.Axiom(name="decree", truth_value=0.4, dependencies=["truth"]),
              lwas.Axiom(name="law", truth_value=0.6, dependencies=["decree"]),
              lwas.Axiom(name="order", truth_value=0.7, contradicts=["law"])):
        ctx.add_axiom(a)
    codes = [d.code for d in ctx.check()]
    assert codes.count("E0203") == 1 and "E0204" in codes
    law = next(d for d in ctx.check() if d.code == "E0203")
    assert "law" in law.message and "decree" in " ".join(law.notes)


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "a", "truth_value": 1.5}, "truth_value"),
    ({"name": "a", "truth_value": float("nan")}, "truth_value"),
    ({"name": "a", "truth_value": (0.9, 0.5)}, "truth_value"),
    ({"name": "", "truth_value": 0.5}, "name"),
    ({"name": "two words", "truth_value": 0.5}, "name"),
    ({"name": "a", "dependencies": ["ok", "not ok"]}, "dependencies"),
    ({"name": "a", "surprise": 1}, "surprise"),
])
def test_invalid_models_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as e:
        lwas.Axiom(**kwargs)
    assert e.value.errors()[0]["loc"][0] == field
