"""The axiom dependency graph as Graphviz DOT (`lwasc graph`).

Nodes show each axiom's declared and effective truth; an edge `a -> d` means a requires d,
a dashed undirected edge a contradiction. Edges that take part in a reported violation (the
constraints of its minimal explanation, or a cycle) are drawn red.
"""
from __future__ import annotations


def _q(s: str) -> str:
    """A DOT string literal; real newlines become DOT's \\n line breaks."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def to_dot(program, truth, diagnostics=()) -> str:
    names = program.axiom_names
    sol = truth.solution
    red: set[tuple[str, int, int]] = set()
    for v in sol.violations:
        for c in v.constraints:
            if c[0] in ("requires", "contradicts"):
                red.add((c[0], c[1], c[2]))
    for cyc in sol.cycles:
        for a, d in zip(cyc, cyc[1:] + cyc[:1]):
            red.add(("requires", a, d))
    bad_nodes = {i for v in sol.violations for i in v.axioms}

    out = ["digraph axioms {", "  rankdir=BT;", '  node [shape=box, style=rounded, fontname="Helvetica"];']
    for i, name in enumerate(names):
        declared = truth.declared[i]
        if declared is None:
            decl = "weakest premise"
        elif declared[0] == declared[1]:
            decl = f"declared {_fmt(declared[0])}"
        else:
            decl = f"declared {_fmt(declared[0])}..{_fmt(declared[1])}"
        label = f"{name}\n{decl}\neffective {_fmt(truth.effective[i])}"
        colour = ', color=red, fontcolor=red' if i in bad_nodes else ""
        out.append(f"  {_q(name)} [label={_q(label)}{colour}];")
    for a, premises in enumerate(program.requires):
        for d in premises:
            if d < 0:
                continue
            style = " [color=red, penwidth=2]" if ("requires", a, d) in red else ""
            out.append(f"  {_q(names[a])} -> {_q(names[d])}{style};")
    for a, others in enumerate(program.contradicts):
        for b in others:
            if b < 0:
                continue
            hot = ("contradicts", a, b) in red or ("contradicts", b, a) in red
            style = ', color=red, penwidth=2' if hot else ""
            out.append(f"  {_q(names[a])} -> {_q(names[b])} [style=dashed, dir=none, label=\"contradicts\"{style}];")
    out.append("}")
    return "\n".join(out)
