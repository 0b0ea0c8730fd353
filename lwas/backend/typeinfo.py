"""What lowering and code generation both ask of a type or an IR value, answered once.

Kept free of LLVM so that lwas.backend.lower can use it without loading the code generator.
"""
from __future__ import annotations

from lwas.backend import ir
from lwas.semantics.types import TEXT, ArrayT, MapT, RecordT


def has_array(t) -> bool:
    """Whether a value of type t holds arrays: storage an element assignment can write, and
    what codegen's `copy` copies."""
    c = t.__class__
    return c is ArrayT or c is RecordT and any(has_array(f) for f in t.fields.values())


def owns_memory(t) -> bool:
    """Whether a value of type t holds text, arrays or maps (a result the exported wrapper
    copies into malloc'd buffers, which the caller frees)."""
    c = t.__class__
    return t is TEXT or c is ArrayT or c is MapT or c is RecordT and any(owns_memory(f) for f in t.fields.values())


def is_constant(x) -> bool:
    """A literal, possibly behind an identity conversion (an array literal of only these is a
    constant global and allocates nothing)."""
    while x.__class__ is ir.Prim and x.op == "id":
        x = x.args[0]
    return x.__class__ is ir.Const
