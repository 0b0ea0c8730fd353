"""Exceptions that LwaS raises to Python callers.

`lwas.RuntimeError` is a fault in a running LwaS program (overflow, division by zero, an index
out of range, a failed assert, ...): it carries the kind, the message and the LwaS source
position, never a Python or native traceback. `lwas.CompileError` carries the diagnostics of a
program that did not compile.
"""
from __future__ import annotations

import builtins
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Position:
    file: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# The kinds of runtime fault, shared by the native code's error-site table and the evaluator.
KINDS = {
    "overflow": "integer overflow",
    "div_zero": "division by zero",
    "index": "index out of range",
    "key": "key not in map",
    "truth_range": "truth value out of [0, 1]",
    "int_range": "float out of the range of int",
    "currency": "currency mismatch",
    "assert": "assertion failed",
    "contract": "contract violated",
    "stack": "stack overflow (recursion too deep)",
    "memory": "out of memory",
    "conflict": "ledger key conflict",
    "host": "host failure",
    "timeout": "the call ran longer than its budget",
}


class LwasError(Exception):
    """Base of every error LwaS raises on purpose."""


class RuntimeError(LwasError, builtins.RuntimeError):  # noqa: A001 - exported as lwas.RuntimeError
    def __init__(self, kind: str, message: str, position: Position | None = None):
        self.kind = kind
        self.message = message
        self.position = position
        where = f"{position}: " if position else ""
        super().__init__(f"{where}{message}")


class CompileError(LwasError):
    def __init__(self, diagnostics: list, rendered: str = ""):
        self.diagnostics = diagnostics
        self.rendered = rendered
        errors = [d for d in diagnostics if d.severity == "error"]
        first = f": {errors[0].message}" if errors else ""
        super().__init__(f"{len(errors)} error(s){first}")
