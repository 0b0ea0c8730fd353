"""The IR as text (`lwasc build --emit lir`): what lowering made of a program, before LLVM.

One function per block, statements one per line, expressions as prefix forms
`(op!site <static data> args...)`, so a reader sees every implicit conversion, fault site and copy that lowering
made explicit (lwas.backend.ir). A variable prints as `name.k`: bindings are unique `Var`s, and
`k` tells apart two bindings with the same name. `!N` after an operation is its error site (the
fault the native status N + 1 reports); the sites are listed at the end with what they mean.

The text is for people: nothing parses it back, and its layout may change.
"""
from __future__ import annotations

from lwas.backend import ir


def format_program(p: ir.Program) -> str:
    out = []
    for f in p.functions:
        out.append(format_function(f))
    if p.externs:
        out.append("externs:")
        out.extend(f"  #{i} {x.name}({', '.join(f'{q.name}: {_desc(q.type)}' for q in x.params)})"
                   f" -> {_desc(x.result)} = {x.binding!r}" for i, x in enumerate(p.externs))
    if p.axioms:
        out.append("axioms:")
        out.extend(f"  {a.name} = {a.effective!r}" + (f" (declared {a.declared[0]!r}..{a.declared[1]!r})"
                                                       if a.declared else "") for a in p.axioms)
    if p.error_sites:
        out.append("error sites:")
        out.extend(f"  !{i} {s.kind} at {s.file}:{s.line}:{s.col}: {s.message}" for i, s in enumerate(p.error_sites))
    return "\n".join(out) + "\n"


def format_function(f: ir.Function) -> str:
    names = _Names()
    params = ", ".join(f"{names(v)}: {v.type}" for v in f.params)
    where = f"  ; {f.span.file}:{f.span.line}" if f.span is not None else ""
    sites = "".join(f" {k}=!{s}" for k, s in (("memory", f.memory_site), ("timeout", f.timeout_site)) if s >= 0)
    lines = [f"{f.kind} {f.name}({params}) -> {f.ret}{sites} {{{where}"]
    _block(f.body, 1, lines, names)
    lines.append("}")
    return "\n".join(lines) + "\n"


class _Names:
    """`name.k`: the k-th distinct binding called `name` in this function."""

    def __init__(self):
        self.seen: dict[int, str] = {}
        self.count: dict[str, int] = {}

    def __call__(self, v: ir.Var) -> str:
        key = id(v)
        if key not in self.seen:
            k = self.count.get(v.name, 0)
            self.count[v.name] = k + 1
            self.seen[key] = f"{v.name}.{k}"
        return self.seen[key]


def _block(stmts: list, depth: int, lines: list[str], names: _Names) -> None:
    for s in stmts:
        _stmt(s, depth, lines, names)


def _stmt(s, depth: int, lines: list[str], names: _Names) -> None:
    pad = "  " * depth
    e = lambda x: _expr(x, names)  # noqa: E731
    if isinstance(s, ir.Let):
        lines.append(f"{pad}let {names(s.var)}: {s.var.type} = {e(s.value)}")
    elif isinstance(s, ir.Store):
        lines.append(f"{pad}{names(s.var)} = {e(s.value)}")
    elif isinstance(s, ir.StoreAt):
        steps = "".join(f".{st[1]}" if st[0] == "field" else f"[{e(st[1])}]!{st[2]}" for st in s.steps)
        lines.append(f"{pad}{names(s.var)}{steps} = {e(s.value)}")
    elif isinstance(s, ir.Push):
        lines.append(f"{pad}push {names(s.var)} (room {names(s.cap)}) {e(s.value)}!{s.site}")
    elif isinstance(s, ir.If):
        _braced(f"if {e(s.cond)}", s.then, "else", s.orelse, depth, lines, names)
    elif isinstance(s, ir.Loop):
        extra = f" !{s.site}" if s.site >= 0 else ""
        if s.count is not None:
            extra += f" counting {names(s.count[0])} to {e(s.count[1])}"
        _braced(f"while {e(s.cond)}{extra}", s.body, "step", s.step, depth, lines, names)
    elif isinstance(s, ir.SwitchStmt):
        lines.append(f"{pad}switch {e(s.subject)} {{")
        for consts, body in s.arms:
            lines.append(f"{pad}  case {', '.join(map(repr, consts))}:")
            _block(body, depth + 2, lines, names)
        if s.default:
            lines.append(f"{pad}  default:")
            _block(s.default, depth + 2, lines, names)
        lines.append(f"{pad}}}")
    elif isinstance(s, ir.Break):
        lines.append(f"{pad}break")
    elif isinstance(s, ir.Continue):
        lines.append(f"{pad}continue")
    elif isinstance(s, ir.Return):
        lines.append(f"{pad}return" + (f" {e(s.value)}" if s.value is not None else ""))
    elif isinstance(s, ir.Fail):
        lines.append(f"{pad}fail !{s.site}")
    elif isinstance(s, ir.Eval):
        lines.append(f"{pad}{e(s.value)}")
    else:
        raise TypeError(f"irprint: no form for the statement {type(s).__name__}")


def _braced(head: str, first: list, word: str, second: list, depth: int, lines: list[str], names: _Names) -> None:
    """`head { first } word { second }`, the second block left out when it is empty."""
    pad = "  " * depth
    lines.append(f"{pad}{head} {{")
    _block(first, depth + 1, lines, names)
    if second:
        lines.append(f"{pad}}} {word} {{")
        _block(second, depth + 1, lines, names)
    lines.append(f"{pad}}}")


def _expr(x, names: _Names) -> str:
    if isinstance(x, ir.Const):
        return _const(x)
    if isinstance(x, ir.Load):
        return names(x.var)
    if isinstance(x, ir.Prim):
        args = "".join(" " + _expr(a, names) for a in x.args)
        arg = f" <{x.arg!r}>" if x.arg is not None and x.arg != -1 else ""  # static data (ir.Prim)
        site = f"!{x.site}" if x.site >= 0 else ""
        return f"({x.op}{site}{arg}{args})"
    if isinstance(x, ir.Logic):
        return f"({x.op} {_expr(x.left, names)} {_expr(x.right, names)})"
    if isinstance(x, ir.Call):
        site = f"!{x.site}" if x.site >= 0 else ""
        return f"(call{site} {x.fn}" + "".join(" " + _expr(a, names) for a in x.args) + ")"
    if isinstance(x, ir.Current):
        return "current"
    if isinstance(x, ir.Switch):
        arms = " ".join(f"[{', '.join(map(repr, c))}] {_expr(v, names)}" for c, v in x.arms)
        default = f" _ {_expr(x.default, names)}" if x.default is not None else ""
        return f"(switch {_expr(x.subject, names)} {arms}{default})"
    raise TypeError(f"irprint: no form for the expression {type(x).__name__}")


def _const(c: ir.Const) -> str:
    v = c.value
    if isinstance(v, tuple) and len(v) == 2:  # money: (minor, currency)
        return f"{v[0]}{v[1] or ''}minor"
    return f"{v!r}:{c.type}"


def _desc(d) -> str:
    return d if isinstance(d, str) else repr(d)
