"""Deeply nested source: a fixed nesting limit, and a deep stack for the stages that recurse.

The contract: no input makes the compiler overflow its stack. Two halves keep it:

* `MAX_DEPTH` bounds the depth of every syntax tree that leaves the parser. `parse_module`
  measures each item (iteratively: this walk cannot overflow) and replaces an item nested
  deeper than the limit by error E0006, so no later stage (resolve, check, truth, lower,
  codegen, the evaluator, the language server) ever sees a deeper tree. The parser itself
  does not recurse: Lark's LALR parser keeps an explicit stack and the builder is called per
  reduction.
* `call_deep` runs a stage with a stack and a recursion limit measured to hold trees of
  `MAX_DEPTH` in every recursive stage (the checker, lowering and code generation recurse on
  the tree, several Python frames per level). The thread's stack is virtual memory; only the
  pages a deep tree touches become resident, so memory stays linear in the input.

Why both: the limit alone would have to be a few hundred levels to fit Python's default
recursion limit (a 331-term `1 + 1 + ...` needed ~1,000 frames), which generated code
reaches; a deep stack alone has no bound, and a 2 MB file of `(` would exhaust any stack.
With both, a 10,000-term sum compiles and a 100,000-deep expression is refused with a
diagnostic. Like clang's `-fbracket-depth` and Go's parser (`maxNestLev`), the limit is
fixed; unlike theirs it counts syntax-tree levels, so `((1))` is one level and `1 + 1 + 1`
is three (a chain of binary operators nests to the left).
"""
from __future__ import annotations

import sys
import threading
from dataclasses import is_dataclass

from lwas.syntax.diagnostics import Diagnostic
from lwas.syntax.source import Span

MAX_DEPTH = 12_000
"""Deepest syntax tree an item may have (levels of nodes, the item itself included)."""

STACK_BYTES = 256 * 1024 * 1024
"""Stack of the thread `call_deep` runs in: measured to hold MAX_DEPTH in every stage."""

RECURSION_LIMIT = 250_000
"""Python frames `call_deep` allows: every stage ran trees of MAX_DEPTH in 100,000 frames and
32 MB of stack (tests/test_hostile_source.py); both bounds have a margin of 2.5 and 8."""


def _children(n):
    for name in n.__slots__:
        v = getattr(n, name)
        if v.__class__ is tuple:
            for x in v:
                if x.__class__ is tuple:
                    yield from (y for y in x if is_dataclass(y))
                elif is_dataclass(x):
                    yield x
        elif is_dataclass(v) and v.__class__ is not Span:
            yield v


def too_deep(item, limit: int = MAX_DEPTH):
    """The first node nested deeper than `limit` in `item`, or None. Iterative."""
    stack = [(item, 1)]
    while stack:
        n, d = stack.pop()
        if d > limit:
            return n
        for c in _children(n):
            stack.append((c, d + 1))
    return None


def may_be_too_deep(item, limit: int = MAX_DEPTH) -> bool:
    """Cheap test: every level of nesting takes at least one character of source, except for
    nodes that wrap another without a character of their own (an argument, an expression
    statement), which come at most one per level with one that has. So an item spanning fewer
    than limit / 2 characters cannot be too deep, and ordinary items are never walked."""
    s = item.span
    return 2 * (s.end - s.start) + 16 > limit


def check_depth(items: list, limit: int = MAX_DEPTH) -> tuple[list, list[Diagnostic]]:
    """The items, those nested deeper than `limit` left out, and an E0006 for each of them."""
    kept, diags = [], []
    for item in items:
        deep = too_deep(item, limit) if may_be_too_deep(item, limit) else None
        if deep is None:
            kept.append(item)
            continue
        s = deep.span  # its first character: the node may span the whole expression
        at = Span(s.file, s.line, s.col, s.line, s.col + 1, s.start, s.start + 1)
        diags.append(Diagnostic(
            "E0006", f"nesting too deep: more than {limit:,} levels", at,
            label=f"this is nested more than {limit:,} levels deep",
            help="split the expression: bind parts of it to `let` variables or move them into "
                 "functions; a long chain of `+` is one level per operator"))
    return kept, diags


def call_deep(fn, *args, **kwargs):
    """fn(*args, **kwargs) on a thread with STACK_BYTES of stack and RECURSION_LIMIT frames.

    Exceptions propagate to the caller. Already on such a thread, fn is called directly.
    """
    if getattr(_state, "deep", False):
        return fn(*args, **kwargs)
    box: dict = {}

    def body():
        _state.deep = True
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread
            box["error"] = e

    global _active, _saved_limit
    t = threading.Thread(target=body, name="lwas-deep", daemon=True)
    with _lock:  # stack_size and the recursion limit are process-wide: hold them only while needed
        if _active == 0:
            _saved_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_saved_limit, RECURSION_LIMIT))
        _active += 1
        old_stack = threading.stack_size(STACK_BYTES)  # read when the thread starts
        try:
            t.start()
        except BaseException:
            _release()
            raise
        finally:
            threading.stack_size(old_stack)
    try:
        t.join()
    finally:
        with _lock:
            _release()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _release() -> None:
    """One deep call fewer; the last one restores the recursion limit. Holds _lock."""
    global _active
    _active -= 1
    if _active == 0:
        sys.setrecursionlimit(_saved_limit)


_state = threading.local()
_lock = threading.Lock()
_active = 0  # deep calls running
_saved_limit = 1000  # the recursion limit before the first of them

__all__ = ["MAX_DEPTH", "check_depth", "call_deep", "too_deep"]
