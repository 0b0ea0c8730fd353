"""The truth-consistency phase (lwas/semantics/truth.py): every E02xx code, docs/contract.md's axiom programs,
effective truths and rule caps.

Programs are written in LwaS axiom syntax and turned into a resolved Program by a tiny
line parser below, so the tests do not depend on the real parser and resolver while keeping
real spans (line, column) for every name.
"""
from __future__ import annotations

import re

import pytest

from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Sink, render_all
from lwas.semantics.resolve import Program
from lwas.syntax.source import SourceFile
from lwas.semantics.truth import check_truth, solve

# ---------------------------------------------------------------- building programs

_NUM = r"[-+]?(?:\d+(?:\.\d+)?|inf|nan)"
_LINE = re.compile(
    rf"\s*(axiom|rule)\s+(\w+)(?:\s*=\s*({_NUM})(?:\.\.({_NUM}))?)?"
    r"(?:\s+requires\s+([\w., ]+?))?(?:\s+contradicts\s+([\w., ]+?))?\s*(?://.*)?$")


def build(text: str, path: str = "t.lwas") -> Program:
    """`axiom NAME [= v | = lo..hi] [requires a, b] [contradicts c]` and `rule NAME requires a`
    lines; names resolve to the first axiom so named, else -1."""
    src = SourceFile(path, text)
    starts = src.line_starts()
    axioms, rules = [], []
    for ln, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.strip().startswith("//"):
            continue
        m = _LINE.match(line)
        assert m, f"test parser cannot read: {line!r}"
        base = starts[ln - 1]

        def span(g, g_end=None):
            return src.span(base + m.start(g), base + m.end(g_end or g))

        def names(g):
            out = []
            for nm in re.finditer(r"[\w.]+", m.group(g) or ""):
                s = base + m.start(g) + nm.start()
                out.append(ast.QualName(tuple(nm.group().split(".")), src.span(s, s + len(nm.group()))))
            return tuple(out)

        whole = src.span(base + m.start(1), base + len(line.rstrip()))
        if m.group(1) == "axiom":
            value = None
            if m.group(3):
                lo = float(m.group(3))
                hi = float(m.group(4)) if m.group(4) else lo
                value = ast.TruthValue(lo, hi, span(3, 4 if m.group(4) else 3))
            axioms.append(ast.AxiomDecl(m.group(2), span(2), value, names(5), names(6), None, False, whole))
        else:
            rules.append(ast.RuleDecl(m.group(2), span(2), (), None, ast.BoolLit(True, whole), names(5),
                                      None, False, whole))
    axiom_names = [a.name for a in axioms]

    def index(q):
        return axiom_names.index(q.text) if q.text in axiom_names else -1

    return Program(modules=[], root=None, sources={path: src}, axioms=axioms, axiom_names=axiom_names,
                   requires=[[index(q) for q in a.requires] for a in axioms],
                   contradicts=[[index(q) for q in a.contradicts] for a in axioms],
                   rules=[(None, r) for r in rules], rule_requires=[[index(q) for q in r.requires] for r in rules])


def check(text: str):
    program = build(text)
    sink = Sink()
    result = check_truth(program, sink)
    render_all(sink.items, program.sources)  # every diagnostic must render
    return program, sink.items, result


def where(program, name):
    """(line, col) of an axiom's name."""
    ax = next(a for a in program.axioms if a.name == name)
    return ax.name_span.line, ax.name_span.col


def label_texts(diag):
    return [l.message for l in diag.labels]


def label_places(diag):
    return {(l.span.line, l.span.col) for l in diag.labels}


# ---------------------------------------------------------------- docs/contract.md: accepted

ETHICS = """\
axiom truth = 1.0
axiom freedom = 0.8 requires truth
axiom hope = 0.5..0.9 requires truth        // interval: some value in [0.5, 0.9]
axiom care requires freedom, hope           // no value: holds exactly the weakest premise
"""


def test_ethics_program_is_consistent_with_effective_truths():
    program, diags, res = check(ETHICS)
    assert diags == []
    assert res.consistent and res.solution.ok and res.solution.feasible
    eff = dict(zip(program.axiom_names, res.effective))
    assert eff == {"truth": 1.0, "freedom": 0.8, "hope": 0.5, "care": 0.5}
    up = dict(zip(program.axiom_names, res.upper))
    assert up == {"truth": 1.0, "freedom": 0.8, "hope": 0.9, "care": 0.8}
    assert res.declared == [(1.0, 1.0), (0.8, 0.8), (0.5, 0.9), None]


def test_rule_cap_is_the_weakest_required_axiom():
    _, diags, res = check(ETHICS + """\
axiom integrity = 0.95
rule healthy requires integrity
rule free requires integrity, care
rule plain
""")
    assert diags == []
    assert res.caps == [0.95, 0.5, 1.0]
    assert res.cap("healthy") == 0.95
    assert res.rule_names == ["healthy", "free", "plain"]


def test_interval_demand_raises_effective_truth():
    # care requires hope: hope must be at least what rests on it
    _, diags, res = check("axiom hope = 0.3..0.9\naxiom wish = 0.6 requires hope\n")
    assert diags == []
    assert res.effective == [0.6, 0.6]
    assert res.upper == [0.9, 0.6]


# ---------------------------------------------------------------- E0201

def test_e0201_out_of_range_and_no_cascade():
    program, diags, res = check("axiom too_much = 1.5\naxiom rests = 0.9 requires too_much\n")
    assert [d.code for d in diags] == ["E0201"]
    d = diags[0]
    assert d.message == "truth value 1.5 of axiom `too_much` is not in [0, 1]"
    assert (d.span.line, d.span.col, d.span.end_col) == (1, 18, 21)  # the value
    assert d.label == "not in [0, 1]"
    assert d.notes == ("too_much is treated as unconstrained (0.0..1.0) in the other checks",)
    assert d.help == "a truth value is a finite number from 0.0 (certainly false) to 1.0 (certainly true)"
    assert not res.consistent
    assert res.effective == [0.9, 0.9]  # too_much counts as 0.0..1.0


def test_e0201_empty_interval_and_out_of_range_interval():
    _, diags, _ = check("axiom a = 0.8..0.3\naxiom b = 0.5..1.2\naxiom c = -0.1\n")
    assert [d.code for d in diags] == ["E0201"] * 3
    assert diags[0].message == "interval 0.8..0.3 of axiom `a` is empty: 0.8 > 0.3"
    assert diags[0].help == "write the smaller end first: 0.3..0.8"
    assert diags[0].label == "empty interval"
    assert diags[1].message == "interval 0.5..1.2 of axiom `b` is not within [0, 1]"
    assert diags[2].message == "truth value -0.1 of axiom `c` is not in [0, 1]"


def test_e0201_not_finite():
    _, diags, _ = check("axiom n = nan\naxiom i = inf\n")
    assert [d.message for d in diags] == [
        "truth value nan of axiom `n` is not a finite number",
        "truth value inf of axiom `i` is not a finite number",
    ]


# ---------------------------------------------------------------- E0202

def test_e0202_undefined_premise_language_program():
    program, diags, res = check("""\
axiom ghost = 0.5 requires nothing_here     // undefined premise
axiom too_much = 1.5                        // out of range
axiom twice = 0.3
axiom twice = 0.4                           // duplicate name
""")
    # the duplicate is the resolver's E0102; the truth phase reports exactly these two
    assert sorted(d.code for d in diags) == ["E0201", "E0202"]
    d = next(d for d in diags if d.code == "E0202")
    assert d.message == "undefined premise `nothing_here`"
    assert (d.span.line, d.span.col, d.span.end_col) == (1, 28, 40)
    assert d.label == "`ghost` requires this, but it is not an axiom"
    assert label_places(d) == {where(program, "ghost")}
    assert label_texts(d) == ["ghost = 0.5"]
    assert d.notes == ("ghost requires nothing_here, which names no axiom",)
    assert d.help == ("declare it (`axiom nothing_here = 1.0`), fix the spelling, "
                      "or import the module that declares it")
    assert res.effective[0] == 0.5


def test_e0202_in_contradicts_and_valueless_axiom_does_not_cascade():
    _, diags, res = check("axiom v requires nowhere\naxiom w = 0.9 contradicts elsewhere, v\n")
    assert [(d.code, d.message) for d in diags] == [
        ("E0202", "undefined premise `nowhere`"),
        ("E0202", "undefined premise `elsewhere`"),
    ]
    assert diags[1].label == "`w` contradicts this, but it is not an axiom"
    assert res.effective[0] == 0.0  # its weakest link is unknown: unconstrained


# ---------------------------------------------------------------- E0203

LAW = """\
axiom truth = 1.0
axiom decree = 0.4 requires truth
axiom law = 0.6 requires decree             // law claims 0.6 but rests on decree (0.4)
axiom justice = 0.9 requires law, truth     // chain: justice -> law -> decree (0.4)
"""


def test_e0203_requires_chain_language_program():
    program, diags, res = check(LAW)
    assert [d.code for d in diags] == ["E0203", "E0203"]
    law, justice = diags
    assert law.message == "axiom `law` (0.6) is more certain than its premises allow (at most 0.4)"
    assert (law.span.line, law.span.col) == where(program, "law")
    assert law.label == "claims 0.6, but its premises allow at most 0.4"
    assert law.notes == ("law (0.6) -> decree (0.4)",)
    assert law.help == "lower `law` to at most 0.4, or raise `decree`"
    assert label_texts(law) == ["decree = 0.4"]
    assert label_places(law) == {where(program, "decree")}

    assert justice.message == "axiom `justice` (0.9) is more certain than its premises allow (at most 0.4)"
    assert justice.notes == ("justice (0.9) -> law (0.6) -> decree (0.4)",)
    assert justice.help == "lower `justice` to at most 0.4, or raise `law` and `decree`"
    assert label_texts(justice) == ["law = 0.6", "decree = 0.4"]
    assert not res.consistent

    v = res.solution.violations[1]
    assert v.constraints == [("bound_lo", 3, 0.9), ("requires", 3, 2), ("requires", 2, 1), ("bound_hi", 1, 0.4)]
    assert v.axioms == [3, 2, 1]


def test_e0203_through_a_valueless_axiom_and_an_interval():
    _, diags, _ = check("axiom cap = 0.2..0.5\naxiom mid requires cap\naxiom top = 0.6..0.8 requires mid\n")
    assert [d.code for d in diags] == ["E0203"]
    d = diags[0]
    assert d.message == "axiom `top` (0.6..0.8) is more certain than its premises allow (at most 0.5)"
    assert d.notes == ("top (0.6..0.8) -> mid (no value) -> cap (0.2..0.5)",)
    assert d.help == "lower the lower end of `top` to at most 0.5, or raise `cap`"
    assert label_texts(d) == ["mid has no value: it holds its weakest premise", "cap = 0.2..0.5"]


# ---------------------------------------------------------------- E0204

def test_e0204_contradiction_language_program():
    program, diags, _ = check("""\
axiom truth = 1.0
axiom freedom = 0.8 requires truth
axiom order = 0.7 requires truth contradicts freedom   // 0.7 + 0.8 > 1
""")
    assert [d.code for d in diags] == ["E0204"]
    d = diags[0]
    assert d.message == "`order` (0.7) and `freedom` (0.8) contradict each other but sum to 1.5 > 1"
    assert (d.span.line, d.span.col, d.span.end_col) == (3, 46, 53)  # `freedom` in the clause
    assert d.label == "order contradicts freedom"
    assert label_places(d) == {where(program, "order"), where(program, "freedom")}
    assert sorted(label_texts(d)) == ["freedom = 0.8", "order = 0.7"]
    assert d.notes == ("order (0.7) contradicts freedom (0.8): 0.7 + 0.8 = 1.5 > 1",)
    assert d.help == "lower `order` to at most 0.2, or `freedom` to at most 0.3"


def test_e0204_self_contradiction_and_intervals():
    _, diags, _ = check("axiom doubt = 0.6 contradicts doubt\naxiom x = 0.5..0.9\naxiom y = 0.7..1.0 contradicts x\n")
    assert [d.code for d in diags] == ["E0204", "E0204"]
    assert diags[0].message == "`doubt` (0.6) contradicts itself but 0.6 + 0.6 = 1.2 > 1"
    assert diags[0].help == "lower `doubt` to at most 0.5"
    assert diags[0].label == "doubt contradicts itself"
    assert diags[1].message == "`y` (0.7..1.0) and `x` (0.5..0.9) contradict each other but sum to at least 1.2 > 1"
    assert diags[1].help == "lower the lower end of `y` to at most 0.5, or the lower end of `x` to at most 0.3"


def test_sums_of_decimals_that_are_exactly_one_are_fine():
    _, diags, _ = check("axiom a = 0.8\naxiom b = 0.2 contradicts a\naxiom c = 0.7\naxiom d = 0.3 contradicts c\n")
    assert diags == []


def test_a_contradiction_written_twice_is_reported_once():
    _, diags, _ = check("axiom a = 0.8 contradicts b\naxiom b = 0.8 contradicts a\n")
    assert [d.code for d in diags] == ["E0204"]
    assert diags[0].label == "a contradicts b"


# ---------------------------------------------------------------- E0205

def test_e0205_cycle_language_program():
    program, diags, res = check("""\
axiom a = 0.5 requires b
axiom b = 0.5 requires c
axiom c = 0.5 requires a                    // cycle: a -> b -> c -> a
""")
    assert [d.code for d in diags] == ["E0205"]
    d = diags[0]
    assert d.message == "axioms require each other in a cycle: a -> b -> c -> a"
    assert (d.span.line, d.span.col) == where(program, "a")
    assert d.label == "a requires b"
    assert label_texts(d) == ["b requires c", "c requires a"]
    assert label_places(d) == {where(program, "b"), where(program, "c")}
    assert d.notes == ("a (0.5) -> b (0.5) -> c (0.5) -> a",)
    assert d.help == "break the cycle: let one of `a`, `b` or `c` rest on an axiom outside it"
    assert res.solution.cycles == [[0, 1, 2]]


def test_e0205_one_report_per_component_and_no_cascade():
    # two cycles sharing b form one tangle; top rests on it with a claim no cycle could hold
    _, diags, res = check("""\
axiom a = 0.5 requires b
axiom b = 0.5 requires a, c
axiom c = 0.5 requires b
axiom top = 0.9 requires a
axiom me = 0.3 requires me
axiom x = 0.9 contradicts c
""")
    assert [d.message for d in diags] == [
        "axioms require each other in a cycle: a -> b -> a",
        "axioms require each other in a cycle: me -> me",
    ]
    assert diags[0].notes == ("a (0.5) -> b (0.5) -> a; c is caught in the same tangle",)
    assert res.solution.excluded == {0, 1, 2, 4}


# ---------------------------------------------------------------- E0206

def test_e0206_intervals_language_program():
    program, diags, res = check("""\
axiom lo = 0.6..0.9
axiom hi = 0.1..0.7 contradicts lo          // feasible on its own (hi = 0.1, lo = 0.6 .. 0.9)
axiom top = 0.7 requires hi                 // needs hi >= 0.7, so lo <= 0.3: infeasible with lo >= 0.6
""")
    assert [d.code for d in diags] == ["E0206"]
    d = diags[0]
    assert d.message == "no truth values satisfy `top`, `hi` and `lo`"
    assert d.notes == ("top >= 0.7 -> requires hi, so hi >= 0.7 -> hi contradicts lo, so lo <= 0.3, but lo >= 0.6",)
    assert d.help == "lower `top` to at most 0.4, or the lower end of `lo` to at most 0.3"
    assert (d.span.line, d.span.col) == (2, 33)  # `lo` in hi's contradicts clause
    assert d.label == "hi contradicts lo"
    assert label_texts(d) == ["top = 0.7", "hi = 0.1..0.7", "lo = 0.6..0.9"]
    v = res.solution.violations[0]
    assert sorted(v.constraints) == sorted([("bound_lo", 2, 0.7), ("requires", 2, 1), ("contradicts", 1, 0),
                                            ("bound_lo", 0, 0.6)])
    assert v.pair == (1, 0)


def test_e0206_through_a_weakest_premise():
    _, diags, res = check("axiom p = 0.7\naxiom q = 0.8\naxiom v requires p, q\naxiom w = 0.4 contradicts v\n")
    assert [d.code for d in diags] == ["E0206"]
    d = diags[0]
    assert d.message == "no truth values satisfy `v`, `p`, `q` and `w`"
    assert d.notes == ("v holds its weakest premise (p >= 0.7; q >= 0.8), so v >= 0.7 -> "
                       "v contradicts w, so w <= 0.3, but w >= 0.4",)
    assert d.help == "lower one of `p`, `q` or `w`, or drop one of the `requires` or `contradicts` in the chain"
    assert d.label == "w contradicts v"
    assert ("min_ge", 2) in res.solution.violations[0].constraints


def test_e0206_chains_on_both_sides():
    _, diags, _ = check("axiom a = 0.2..1\naxiom b = 0.1..1 contradicts a\n"
                        "axiom s = 0.6 requires a\naxiom t = 0.5 requires b\n")
    assert [d.code for d in diags] == ["E0206"]
    d = diags[0]
    assert d.message == "no truth values satisfy `t`, `b`, `s` and `a`"
    assert d.notes == ("t >= 0.5 -> requires b, so b >= 0.5 -> b contradicts a, so a <= 0.5, "
                       "but s >= 0.6 -> requires a, so a >= 0.6",)
    assert d.help == "lower `t` to at most 0.4, or `s` to at most 0.5"


def test_e0206_self_contradiction_through_a_premise():
    _, diags, _ = check("axiom a = 0.1..1 contradicts a\naxiom s = 0.7 requires a\n")
    assert [d.code for d in diags] == ["E0206"]
    assert diags[0].notes == ("s >= 0.7 -> requires a, so a >= 0.7 -> a contradicts itself, so a <= 0.5",)
    assert diags[0].help == "lower `s` to at most 0.5"


# ---------------------------------------------------------------- E0207, E0208

def test_e0207_neither_value_nor_premises_and_no_cascade():
    program, diags, res = check("axiom empty\naxiom user = 0.9 requires empty\n")
    assert [d.code for d in diags] == ["E0207"]
    d = diags[0]
    assert d.message == "axiom `empty` has neither a value nor premises"
    assert (d.span.line, d.span.col) == where(program, "empty")
    assert d.notes == ("an axiom without a value holds exactly its weakest premise, and `empty` has none",)
    assert d.help == "give it a value (`axiom empty = 1.0`) or premises (`axiom empty requires ...`)"
    assert res.effective == [0.9, 0.9]


def test_e0208_rule_requires_something_that_is_not_an_axiom():
    program, diags, res = check("axiom integrity = 0.95\nrule healthy requires integrity, helper\n")
    assert [d.code for d in diags] == ["E0208"]
    d = diags[0]
    assert d.message == "rule `healthy` requires `helper`, which is not an axiom"
    assert (d.span.line, d.span.col, d.span.end_col) == (2, 34, 40)
    assert d.label == "not an axiom"
    assert d.help == "name an axiom here, or declare `axiom helper = ...`"
    assert res.caps == [0.95]
    assert not res.consistent


# ---------------------------------------------------------------- across codes

def test_no_error_is_reported_twice_and_every_axiom_is_named():
    program, diags, res = check(LAW + "axiom free = 0.9 contradicts justice\n"
                                "axiom lo = 0.6..0.9\naxiom hi = 0.1..0.7 contradicts lo\naxiom top = 0.7 requires hi\n"
                                "axiom a = 0.5 requires b\naxiom b = 0.5 requires a\naxiom empty\naxiom bad = 2.0\n")
    # law and justice overclaim (E0203 each); free + justice (declared 0.9 + 0.9) contradict
    assert sorted(d.code for d in diags) == ["E0201", "E0203", "E0203", "E0204", "E0205", "E0206", "E0207"]
    assert len({(d.code, d.message) for d in diags}) == len(diags)
    for d, v in zip(diags, res.solution.violations):
        assert d.code == v.code
        places = {(d.span.line, d.span.col)} | label_places(d)
        named = {where(program, program.axiom_names[i]) for i in v.axioms}
        if d.code == "E0201":
            named = {(program.axioms[v.axioms[0]].value.span.line, program.axioms[v.axioms[0]].value.span.col)}
        assert named <= places, d.message


def test_overclaim_does_not_cascade_into_a_contradiction():
    # top pushes 0.9 onto low (0.2): E0203; low's contradiction is judged at its own 0.2
    _, diags, _ = check("axiom low = 0.2\naxiom top = 0.9 requires low\naxiom other = 0.5 contradicts low\n")
    assert [d.code for d in diags] == ["E0203"]


def test_forward_references_take_the_general_path():
    _, diags, res = check("axiom care requires freedom, hope\naxiom freedom = 0.8 requires truth\n"
                          "axiom hope = 0.5..0.9 requires truth\naxiom truth = 1.0\n")
    assert diags == []
    assert res.effective == [0.5, 0.8, 0.5, 1.0]


def test_columnar_core_without_an_ast():
    sol = solve(lo=[1.0, 0.4, 0.6], hi=[1.0, 0.4, 0.6], valued=[True, True, True],
                requires=[[], [0], [1]], contradicts=[[], [], []])
    assert not sol.ok and not sol.feasible
    (v,) = sol.violations
    assert v.code == "E0203"
    assert v.message == "axiom `#2` (0.6) is more certain than its premises allow (at most 0.4)"
    assert v.constraints == [("bound_lo", 2, 0.6), ("requires", 2, 1), ("bound_hi", 1, 0.4)]
    assert sol.effective == [1.0, 0.4, 0.6]  # the demand on decree stops at its upper end
    assert sol.upper == [1.0, 0.4, 0.4]

    ok = solve([0.3, 0.0], [0.9, 1.0], [True, False], [[], [0]], None, names=["x", "y"])
    assert ok.ok and ok.effective == [0.3, 0.3] and ok.upper == [0.9, 0.9]


def test_columnar_core_rejects_ragged_columns_and_bad_indices():
    with pytest.raises(ValueError):
        solve([0.5], [0.5, 0.5], [True, True], [[], []])
    for requires in ([[1], [2]], [[5], []], [[], [2]]):
        with pytest.raises(ValueError, match="out of range"):
            solve([0.5, 0.5], [0.5, 0.5], [True, True], requires)


def test_unresolved_premise_inside_a_cycle():
    sol = solve([0.5, 0.5, 0.0], [0.5, 0.5, 1.0], [True, True, False], [[1], [0, -1], [-1]], None)
    assert [v.code for v in sol.violations] == ["E0205"]
    assert sol.cycles == [[0, 1]] and sol.excluded == {0, 1}
    assert sol.feasible


def test_long_chains_are_shown_elided():
    n = 30
    lines = ["axiom base = 0.1"] + [f"axiom n{i} = 0.5..1 requires {'base' if i == 0 else f'n{i - 1}'}" for i in range(n)]
    lines.append(f"axiom top = 0.9 requires n{n - 1}")
    _, diags, _ = check("\n".join(lines) + "\n")
    # every n_i claims 0.5 over base's 0.1; top claims 0.9
    assert len(diags) == n + 1 and {d.code for d in diags} == {"E0203"}
    note = diags[-1].notes[0]
    assert note.startswith("top (0.9) -> n29 (0.5..1.0) -> ") and note.endswith(" -> n0 (0.5..1.0) -> base (0.1)")
    assert "... (22 more) ..." in note
    assert len(diags[-1].labels) == n + 1  # every axiom of the chain is labelled, elided or not
    assert diags[-1].labels[-1].span.line == 1  # base


def test_a_huge_broken_program_gets_its_first_errors_in_full_then_a_summary():
    # a chain of 700 axioms claiming 0.5 on a base of 0.1: every one of them overclaims
    n = 701
    lo = [0.1] + [0.5] * (n - 1)
    sol = solve(lo, lo, [True] * n, [[]] + [[i - 1] for i in range(1, n)], None)
    assert len(sol.violations) == 501
    assert all(v.code == "E0203" and v.constraints for v in sol.violations[:500])
    last = sol.violations[-1]
    assert last.code == "E0203" and last.constraints == []
    assert last.message == ("200 more axioms are more certain than their premises allow: "
                            "`#501`, `#502`, `#503`, `#504`, `#505` and 195 more")
    assert last.axioms == list(range(501, n))
