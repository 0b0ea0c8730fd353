"""What a name denotes, in words: the hover text, a one-line detail and the doc comment.

Hover and completion both describe names (completion shows the detail and the doc beside each
label), so the wording lives here once. Axioms and rules also show their truths: the effective
truth from the truth phase and the chain of premises that bounds it.
"""
from __future__ import annotations

from lwas.syntax import tree as ast

from .analysis import Analysis, Occ


def num(x: float) -> str:
    """A truth or number as the compiler prints it."""
    from lwas.semantics.truth import _num

    return _num(x)


def truth_text(decl: ast.AxiomDecl) -> str:
    v = decl.value
    if v is None:
        return "no value: holds its weakest premise"
    return num(v.lo) if v.lo == v.hi else f"{num(v.lo)}..{num(v.hi)}"


def axiom_chain(a: Analysis, i: int) -> tuple[list[int], list[int]]:
    """(bound chain: premises down to the axiom whose upper end is what i's premises allow,
        effective chain: for a valueless axiom, the weakest premise down to a valued one)."""
    prog, tr = a.program, a.c.truth
    axioms, req = prog.axioms, prog.requires

    def hi(j):
        v = axioms[j].value
        return 1.0 if v is None else v.hi

    bound = tr.upper[i]
    path, j = [i], i
    while hi(j) != bound and len(path) <= len(axioms):
        nxt = next((d for d in (req[j] if j < len(req) else []) if d >= 0 and tr.upper[d] == bound), None)
        if nxt is None or nxt in path:
            break
        path.append(nxt)
        j = nxt
    eff_path, j = [i], i
    while axioms[j].value is None and len(eff_path) <= len(axioms):
        prem = [d for d in (req[j] if j < len(req) else []) if d >= 0]
        if not prem:
            break
        nxt = min(prem, key=lambda d: tr.effective[d])
        if nxt in eff_path:
            break
        eff_path.append(nxt)
        j = nxt
    return path, eff_path


def _steps(a: Analysis, path: list[int], eff: bool = False) -> str:
    prog, tr = a.program, a.c.truth
    out = []
    for j in path:
        v = num(tr.effective[j]) if eff else truth_text(prog.axioms[j])
        out.append(f"{prog.axiom_names[j]} ({v})")
    return " -> ".join(out)


def axiom_hover(a: Analysis, decl) -> list[str]:
    i = a.axiom_index.get(id(decl))
    lines = [f"```lwas\naxiom {decl.name} = {truth_text(decl)}\n```"]
    tr = a.c.truth
    if i is None or tr is None or i >= len(tr.effective):
        return lines
    path, eff_path = axiom_chain(a, i)
    lines.append(f"declared truth: {truth_text(decl)}  \neffective truth: {num(tr.effective[i])}  \n"
                 f"premises allow at most: {num(tr.upper[i])}")
    if len(path) > 1:
        lines.append(f"bounded by the chain: {_steps(a, path)}")
    if len(eff_path) > 1:
        lines.append(f"holds its weakest premise: {_steps(a, eff_path, eff=True)}")
    return lines


def rule_hover(a: Analysis, decl) -> list[str]:
    sig = a.checked.signatures.get(decl) if a.checked else None
    lines = [f"```lwas\nrule {decl.name}{sig if sig is not None else '(...)'}\n```"]
    k = a.rule_index.get(id(decl))
    tr = a.c.truth
    if k is None or tr is None or k >= len(tr.caps):
        return lines
    lines.append(f"capped at: {num(tr.caps[k])} (the weakest effective truth it requires)")
    prog = a.program
    targets = prog.rule_requires[k] if k < len(prog.rule_requires) else []
    good = [t for t in targets if t >= 0]
    if good:
        weakest = min(good, key=lambda t: tr.effective[t])
        _, eff_path = axiom_chain(a, weakest)
        chain = f"{decl.name} -> " + _steps(a, eff_path, eff=True)
        lines.append(f"bounded by the chain: {chain}")
    return lines


def item_detail(a: Analysis, t) -> str:
    """The one-line detail of an item (an ItemRef): signature, truth, type or members.
    Completion shows it beside every item, so it costs no truth chains."""
    d, chk = t.decl, a.checked
    if t.kind == "axiom":
        return f"axiom {d.name} = {truth_text(d)}"
    if t.kind in ("rule", "fn"):
        sig = chk.signatures.get(d)
        return f"{t.kind} {d.name}{sig if sig is not None else '(...)'}"
    if t.kind == "const":
        ty, val = chk.const_types.get(d), chk.const_values.get(d)
        return f"const {d.name}: {ty}" + (f" = {num(val) if isinstance(val, float) else val}" if val is not None else "")
    if t.kind == "record":
        rt = chk.records.get(d)
        fields = "; ".join(f"{k}: {v}" for k, v in (rt.fields.items() if rt else ()))
        return f"record {d.name} {{ {fields} }}"
    if t.kind == "enum":
        return f"enum {d.name} {{ {', '.join(v.name for v in d.variants)} }}"
    return f"{t.kind} {getattr(d, 'name', '')}"


def describe(a: Analysis, occ: Occ) -> tuple[str, str | None, str | None]:
    """(markdown hover, a one-line detail, doc) for what an occurrence denotes."""
    t = occ.target
    cls = type(t).__name__
    chk = a.checked
    doc = None
    if cls == "Local":
        kind = {"let": "let", "var": "var", "param": "param", "for": "for"}.get(t.kind, t.kind)
        detail = f"{kind} {t.name}: {t.type}"
        return f"```lwas\n{detail}\n```", detail, None
    if cls == "ItemRef":
        d = t.decl
        doc = getattr(d, "doc", None)
        detail = item_detail(a, t)
        if t.kind == "axiom":
            parts = axiom_hover(a, d)
        elif t.kind == "rule":
            parts = rule_hover(a, d)
        else:
            parts = [f"```lwas\n{detail}\n```"]
        if t.module is not None and not t.module.is_root:
            parts.insert(1, f"from module `{t.module.name}`")
    elif cls == "FieldRef":
        rt = t.record
        f = rt.decl.fields[t.index]
        doc = f.doc
        detail = f"{rt.name}.{f.name}: {rt.fields.get(f.name)}"
        parts = [f"```lwas\n{detail}\n```"]
    elif cls == "VariantRef":
        v = t.enum.decl.variants[t.index]
        doc = v.doc
        detail = f"{t.enum.name}.{v.name}"
        parts = [f"```lwas\n{detail}\n```", f"variant of enum `{t.enum.name}`"]
    elif cls == "ModuleRef":
        m = t.module
        detail = f"module {m.name}"
        first = m.tree.items[0] if m.tree.items else None
        doc = first.doc if isinstance(first, ast.ModuleDecl) else None
        parts = [f"```lwas\n{detail}\n```"]
    elif cls == "BuiltinRef":
        b = t.builtin
        detail = b.signature_text()
        doc = b.doc
        parts = [f"```lwas\n{detail}\n```", "built-in"]
    else:
        return "", None, None
    if occ.node is not None and chk is not None and not occ.decl:
        ty = chk.types.get(occ.node)
        conv = chk.coercions.get(occ.node)
        if ty is not None and cls not in ("Local",):
            parts.append(f"type here: `{ty}`" + (f" (converted to `{conv}`)" if conv is not None else ""))
    if doc:
        parts.append(doc)
    return "\n\n---\n\n".join([parts[0], "\n\n".join(parts[1:])]) if len(parts) > 1 else parts[0], detail, doc
