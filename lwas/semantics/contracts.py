"""Contracts as ordinary code: the `contracts` stage, between parse and service.

`fn f(x: int) -> int requires x > 0 ensures result >= x { ... }` becomes two functions:

    fn f$body(x: int) -> int { ... }                  the original body
    fn f(x: int) -> int {                             what callers call
      assert x > 0          (kind "contract": "precondition `x > 0` of `f` violated")
      let result = f$body(x)
      assert result >= x    (kind "contract": "postcondition `result >= x` of `f` violated")
      return result
    }

so the checker types the conditions (`result` is the result; parameters are in scope), and the
native back end and the reference evaluator need nothing new: a violation is a runtime error of
kind `contract` at the condition's position. A rule may have `ensures` only (its `requires`
names axioms); its wrapper is a rule without axioms around the original rule, which keeps them.

With `checks=False` (`lwasc build --no-contracts`, for release builds that ask for it) the
conditions are dropped and the functions stay as written.
"""
from __future__ import annotations

from dataclasses import replace

from lwas.syntax import tree as ast


def expand(tree: ast.Module, source: str, checks: bool = True) -> ast.Module:
    if not any(getattr(i, "contracts", ()) for i in tree.items):
        return tree
    items: list = []
    for it in tree.items:
        cs = getattr(it, "contracts", ())
        if not cs or not checks:
            items.append(replace(it, contracts=()) if cs else it)
            continue
        items.extend(_wrap(it, cs, source))
    return replace(tree, items=tuple(items))


def _text(source: str, e) -> str:
    s = e.span
    return " ".join(source[s.start:s.end].split()) if 0 <= s.start < s.end <= len(source) else "condition"


def _wrap(d, contracts: tuple, source: str) -> list:
    s = d.span
    inner = f"{d.name}$body"
    is_rule = d.__class__ is ast.RuleDecl
    body_fn = replace(d, name=inner, public=False, doc=None, contracts=())
    args = tuple(ast.Arg(ast.Name(p.name, p.span), None, p.span) for p in d.params)
    call = ast.Call(ast.Name(inner, d.name_span), args, s)
    stmts: list = []
    for kind, e in contracts:
        if kind == "requires":
            stmts.append(ast.Assert(e, f"precondition `{_text(source, e)}` of `{d.name}` violated", e.span, "contract"))
    returns = is_rule or d.ret is not None
    if returns:
        stmts.append(ast.Let("result", s, False, None, call, s))
    else:
        stmts.append(ast.ExprStmt(call, s))
    for kind, e in contracts:
        if kind == "ensures":
            stmts.append(ast.Assert(e, f"postcondition `{_text(source, e)}` of `{d.name}` violated", e.span, "contract"))
    if returns:
        stmts.append(ast.Return(ast.Name("result", s), s))
    block = ast.Block(tuple(stmts), s)
    params = tuple(replace(p) for p in d.params)  # nodes are bound by identity: one set per function
    if is_rule:
        wrapper = replace(d, params=params, body=block, requires=(), contracts=())
    else:
        wrapper = replace(d, params=params, body=block, contracts=())
    return [wrapper, body_fn]
