"""A small typed tree IR between the checked syntax tree and LLVM.

Why a tree and not SSA: LLVM builds SSA itself (every variable is a stack slot that mem2reg
promotes). The IR's job is to make explicit what the syntax leaves implicit, so that codegen is a
plain walk with no knowledge of the checker:

- every implicit conversion is a `Prim` (`bool_to_truth`, `cur_check`, ...);
- every operation that can fault carries `site`, an index into `Program.error_sites`
  (the native status is site + 1);
- compound assignment (but for element targets: `StoreAt` with `Current`), `for` loops, `assert`,
  consts and axioms are gone (desugared/inlined);
- rules end in `min(value, cap)`.

Types are `lwas.semantics.types` types (their native forms are in `lwas.abi`). Variables are `Var`s,
unique per binding; a function's parameters are `Var`s too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from lwas.syntax.source import Span
# Unsupported: a construct the native code generator does not compile (yet); defined with the
# types so that lwas.semantics.types.type_desc can raise it too.
from lwas.semantics.types import Type, Unsupported  # noqa: F401


@dataclass(eq=False)
class Var:
    name: str
    type: Type


# ---------------------------------------------------------------- expressions

@dataclass(eq=False)
class Const:
    """int/float/bool/time: a Python number; enum: the tag; money: (minor, currency);
    text: str."""
    type: Type
    value: Any


@dataclass(eq=False)
class Load:
    var: Var

    @property
    def type(self) -> Type:
        return self.var.type


@dataclass(eq=False)
class Prim:
    """A primitive operation (codegen's `prim` implements each). `site` is the error site of
    its fault (-1: it cannot fail); `arg` holds static data: a second site (`idiv`'s overflow,
    a money operation's currency check), a currency code (`cur_check`, `mk_money`) or a field
    index (`field`, `set_field`).

    int      iadd isub imul neg idiv irem iabs imin imax, add (unchecked: loop counters)
    float    fadd fsub fmul fdiv frem fneg fmin fmax fabs fsqrt fexp fln ffloor fceil
    convert  id itof ftoi ftruth bool_to_truth cur_check clamp01 ramp time_range
             itext btext (int and bool as text)
    logic    not tnot; compare eq ne lt le gt ge (on the operands' type)
    money    madd msub mmul mneg mabs mdiv mmin mmax mminor mscale mcurrency mfrom_minor
             mk_money
    host     host_append (ledger index, entry record → bool "the key was new"; `site` is the
             key conflict, `arg` the host's failure), host_now (the clock, time), host_config
             (a configuration value, text; `site`: unset), host_root (a ledger's Merkle root,
             hex text), host_metric (a system metric, float), host_config_int (name, default → int;
             `site`: malformed): calls into
             the runtime through the symbols in codegen's HOST_SYMBOLS; what the host hands back
             (text, an extern's result) is copied into the arena at once (`arg`: the "memory"
             site of host_config, host_root and host_extern), as the host's buffers live only
             until the call returns
    maps     map_get (`site`: "key") map_get_or map_has (key, map) map_len map_insert
             map_delete map_keys map_values map_first (map, n) map_after (map, key, n)
             (`site`: "memory"): see lwas.backend.mapgen
    values   field set_field record len index array concat, fail (always faults, after
             evaluating its operands),
             copy (the value with its arrays, nested ones included, copied into the arena:
             what an owned variable stores, see lower's `element_targets`)

    `concat`, `copy` and a run-time `array` (not all elements constant) allocate in the arena:
    their `site` is a "memory" error site (a failed malloc)."""
    op: str
    args: list
    type: Type
    site: int = -1
    arg: Any = None


@dataclass(eq=False)
class Logic:
    """Short-circuit `and`/`or` on bool or truth: the right operand runs only when the left
    does not decide (bool false / truth 0.0 for `and`, bool true / truth 1.0 for `or`)."""
    op: str
    left: "Expr"
    right: "Expr"
    type: Type


@dataclass(eq=False)
class Call:
    fn: str  # the callee's Function.name
    args: list
    type: Type
    site: int = -1  # a "stack" error site when the call can recurse (see Lowering.stack_sites)


@dataclass(eq=False)
class Current:
    """The value the target of the enclosing `StoreAt` holds before the store (`xs[i] += v`)."""
    type: Type


@dataclass(eq=False)
class Switch:
    """`match` as a value: the first arm whose constants include the subject's value;
    `default` is the `_` arm (None when the arms are exhaustive). Constants are ints (enum
    tags, bools 0/1, ints) or, for a text subject, strs."""
    subject: "Expr"
    arms: list  # [(list of int or str constants, Expr)]
    default: "Expr | None"
    type: Type


Expr = Union[Const, Load, Prim, Logic, Call, Switch, Current]


# ---------------------------------------------------------------- statements

@dataclass(eq=False)
class Let:
    var: Var
    value: Expr


@dataclass(eq=False)
class Store:
    var: Var
    value: Expr


@dataclass(eq=False)
class StoreAt:
    """An in-place store into storage `var` owns: `steps` lead from the variable to the target,
    each ("field", index) or ("index", Expr, error site), evaluated and bounds-checked in order
    before `value` (which may read the old target value as `Current`)."""
    var: Var
    steps: list
    value: Expr


@dataclass(eq=False)
class Push:
    """`xs = xs + ys` (or `xs += ys`) on a `var` that only it grows: ys's elements are written
    after xs's in place when `cap` (a hidden int variable: the elements xs's buffer has room
    for) allows, else into a buffer twice as large. Amortised O(len(ys)) in time and memory.
    Only xs's own pushes give it room: every other store to xs sets cap to its length, so no
    two variables ever grow into the same room (a value shared with xs keeps its length and
    never sees the new elements). `site`: "memory"."""
    var: Var
    cap: Var
    value: "Expr"
    site: int


@dataclass(eq=False)
class If:
    cond: Expr
    then: list
    orelse: list


@dataclass(eq=False)
class Loop:
    """while cond { body; step }: `continue` jumps to `step`, `break` leaves. `site`: the
    "timeout" error site its back edge checks (lwas.backend.budget; -1: unchecked). `count`: for a
    counting loop, (i, end) when cond is exactly `i < end`, end is the same on every iteration
    and only `step` changes i, by adding 1 (`for` loops): codegen then checks the deadline once
    per chunk of iterations instead of at every back edge."""
    cond: Expr
    body: list
    step: list
    site: int = -1
    count: tuple | None = None


@dataclass(eq=False)
class SwitchStmt:
    subject: Expr
    arms: list  # [(list of int or str constants, list of Stmt)]
    default: list


@dataclass(eq=False)
class Break:
    pass


@dataclass(eq=False)
class Continue:
    pass


@dataclass(eq=False)
class Return:
    value: Expr | None


@dataclass(eq=False)
class Fail:
    """Stop with the runtime fault at error site `site` (a failed assert)."""
    site: int


@dataclass(eq=False)
class Eval:
    value: Expr


Stmt = Union[Let, Store, StoreAt, Push, If, Loop, SwitchStmt, Break, Continue, Return, Fail, Eval]


# ---------------------------------------------------------------- program

@dataclass(eq=False)
class Function:
    name: str  # qualified LwaS name ("fib", "fuzzy.triangle"; tests: "test$0")
    kind: str  # "fn", "rule" or "test"
    params: list  # [Var]
    ret: Type
    body: list  # [Stmt]
    span: Span | None = None
    # a "memory" error site, at the declaration, for the wrapper's copy of a result holding
    # text or arrays into malloc'd buffers (-1: the result holds none)
    memory_site: int = -1
    # a "timeout" error site, at the declaration: its entries are counted towards the call's next
    # deadline check when it can recurse or holds a loop (lwas.backend.budget; -1: neither)
    timeout_site: int = -1


@dataclass(eq=False)
class Program:
    functions: list = field(default_factory=list)  # [Function], exports in stable order
    exports: list = field(default_factory=list)  # [abi.Export], parallel to `functions`
    error_sites: list = field(default_factory=list)  # [abi.ErrorSite]
    axioms: list = field(default_factory=list)  # [abi.AxiomEntry]
    externs: list = field(default_factory=list)  # [abi.Extern], by index of `host_extern`
