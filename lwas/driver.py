"""The compiler driver: one ordered list of named stages (STAGES), each timed.

Each stage reads what earlier stages produced on the `Compilation` and adds its own result;
none reaches back into an earlier phase's internals. Stages are run by name, like OPA's
compiler: `run(c, until="lower")`; `lwasc check` runs up to FRONT_END, `lwasc build` the whole
list. A stage that raises names itself (InternalError): a compiler bug says where it happened.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lwas.syntax.diagnostics import Diagnostic, Sink, sort_key
from lwas.syntax.nesting import call_deep
from lwas.syntax.source import SourceFile


@dataclass
class Compilation:
    root: SourceFile
    stdlib_dir: Path | None = None
    sink: Sink = field(default_factory=Sink)
    timings: list[tuple[str, float]] = field(default_factory=list)
    program: Any = None  # resolve.Program
    parsed_tree: Any = None  # the root module's tree as parsed, before contracts and services expand it
    checked: Any = None  # check.Checked
    truth: Any = None  # truth.TruthResult
    opt_level: int = 2
    contracts: bool = True  # check `requires`/`ensures` at run time (lwas.semantics.contracts)
    key: Any = None  # the Ed25519 private key the artifact stage signs with
    services: list = field(default_factory=list)  # plain-data service descriptions (describe)
    ir: Any = None  # ir.Program (lower)
    native: Any = None  # abi.NativeModule (codegen)
    artifact: bytes | None = None  # the signed artifact (artifact)

    @property
    def sources(self) -> dict[str, SourceFile]:
        return self.program.sources if self.program is not None else {self.root.path: self.root}

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return sorted(self.sink.items, key=lambda d: (d.span.file != self.root.path, sort_key(d)))

    @property
    def ok(self) -> bool:
        return not self.sink.has_errors


def _parse(c: Compilation) -> None:
    from lwas.syntax.parse import parse_module
    from lwas.semantics.resolve import Loader, load
    from lwas.syntax.source import default_stdlib_dir

    loader = Loader(parse=parse_module, stdlib_dir=c.stdlib_dir or default_stdlib_dir())
    c.program = load(c.root, loader, c.sink)
    c.parsed_tree = c.program.root.tree


def _contracts(c: Compilation) -> None:
    from lwas.semantics.contracts import expand

    for m in c.program.modules:
        m.tree = expand(m.tree, c.sources[m.path].text, c.contracts)


def _service(c: Compilation) -> None:
    from lwas.semantics.service import expand

    for m in c.program.modules:
        m.tree, m.services = expand(m.tree, c.sink, m.is_root)


def _describe(c: Compilation) -> None:
    from lwas.semantics.service import describe

    c.services = describe(c.program, c.checked, c.sink)


def _resolve(c: Compilation) -> None:
    from lwas.semantics.resolve import resolve

    resolve(c.program, c.sink)


def _check(c: Compilation) -> None:
    from lwas.semantics.typecheck import check_program

    c.checked = check_program(c.program, c.sink)


def _truth(c: Compilation) -> None:
    from lwas.semantics.truth import check_truth

    c.truth = check_truth(c.program, c.sink)


def report_unsupported(c: Compilation, exc: Exception) -> None:
    """A feature the native back end does not compile yet: a diagnostic (E0320), not a crash."""
    from lwas.syntax.source import Span

    span = getattr(exc, "span", None) or Span(c.root.path, 1, 1, 1, 1)
    message = getattr(exc, "message", None) or str(exc)
    c.sink.error("E0320", message, span, label="not supported by the native back end yet",
                 help="`lwasc check` accepts this program; rewrite this part to build it natively")


def unsupported_types() -> tuple[type, ...]:
    from lwas.backend import codegen, ir

    return tuple({ir.Unsupported, codegen.Unsupported})


def _lower(c: Compilation) -> None:
    from lwas.backend.lower import lower_program

    try:
        c.ir = lower_program(c.program, c.checked, c.truth)
    except unsupported_types() as exc:
        report_unsupported(c, exc)


def _codegen(c: Compilation) -> None:
    from lwas.backend.codegen import generate

    try:
        c.native = generate(c.ir, opt_level=c.opt_level)
    except unsupported_types() as exc:
        report_unsupported(c, exc)


def _artifact(c: Compilation) -> None:
    from lwas.backend.artifact import build, display_names

    if c.key is None:
        from lwas.backend.keys import dev_key

        c.key, _ = dev_key()
    paths = {m.name: m.path for m in c.program.modules}
    sources = {m.name: (m.path, c.sources[m.path].text) for m in c.program.modules}
    c.artifact = build(c.native, sources, c.program.root.name, c.key, display_names(paths, c.root.path),
                       c.services)


@dataclass(frozen=True)
class Stage:
    """One named step of the pipeline. `needs_clean`: skipped (with every later stage) once an
    earlier stage has reported an error, because its input would only make errors cascade."""
    name: str
    run: Callable[[Compilation], None]
    needs_clean: bool


STAGES: tuple[Stage, ...] = (
    Stage("parse", _parse, False),
    Stage("contracts", _contracts, True),  # contracts become asserts around the function
    Stage("service", _service, True),      # services become ordinary items (a file with syntax
    Stage("resolve", _resolve, True),      # errors is not resolved: it would only cascade)
    Stage("check", _check, False),         # duplicates and missing modules are reported without cascades
    Stage("truth", _truth, False),
    Stage("describe", _describe, True),    # what the runtime needs to host each service
    Stage("lower", _lower, True),          # the back end: each needs a clean program so far
    Stage("codegen", _codegen, True),
    Stage("artifact", _artifact, True),
)
NAMES = tuple(s.name for s in STAGES)
FRONT_END = "describe"  # the last stage of `lwasc check`: the program is checked and described


class InternalError(Exception):
    """A bug in the compiler (not in the program) raised inside stage `stage`."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__(f"in stage `{stage}`: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


def _index(name: str) -> int:
    try:
        return NAMES.index(name)
    except ValueError:
        raise ValueError(f"no compiler stage `{name}` (the stages: {', '.join(NAMES)})") from None


def stages(start: str = NAMES[0], until: str = NAMES[-1], replace: dict[str, Callable] | None = None,
           then: tuple[Stage, ...] = ()) -> list[Stage]:
    """The stages from `start` to `until` (both included, by name), with the functions of those
    named in `replace` swapped (the language server parses with its own loader), then `then`."""
    for name in replace or ():
        _index(name)
    chosen = STAGES[_index(start):_index(until) + 1]
    return [Stage(s.name, replace[s.name], s.needs_clean) if replace and s.name in replace else s
            for s in chosen] + list(then)


def run(c: Compilation, until: str = NAMES[-1], *, start: str = NAMES[0],
        replace: dict[str, Callable] | None = None, then: tuple[Stage, ...] = ()) -> Compilation:
    """Run the named stages from `start` to `until` (see `stages`) on a deep stack
    (lwas.syntax.nesting): the checker, lowering and code generation recurse on the syntax tree,
    which the parser allows MAX_DEPTH levels deep. An exception escaping a stage is a compiler
    bug: it comes out as InternalError naming the stage."""
    return call_deep(_run, c, stages(start, until, replace, then))


def _run(c: Compilation, todo: list[Stage]) -> Compilation:
    for stage in todo:
        if stage.needs_clean and c.sink.has_errors:
            break
        t0 = time.perf_counter()
        try:
            stage.run(c)
        except (InternalError, MemoryError):  # already named; out of memory is not a bug
            raise
        except Exception as exc:  # noqa: BLE001 - named, then handed to the caller
            raise InternalError(stage.name, exc) from exc
        c.timings.append((stage.name, time.perf_counter() - t0))
    return c


def check_source(text: str, path: str = "<string>", stdlib_dir: Path | None = None) -> Compilation:
    return run(Compilation(SourceFile(path, text), stdlib_dir), until=FRONT_END)


def check_file(path: str | Path) -> Compilation:
    p = Path(path)
    return check_source(p.read_text(encoding="utf-8"), str(p))


def compile_source(text: str, path: str = "<string>", key: Any = None, opt_level: int = 2,
                   stdlib_dir: Path | None = None, until: str = NAMES[-1], then: tuple[Stage, ...] = (),
                   contracts: bool = True) -> Compilation:
    """Front end and back end: on success `c.artifact` holds the signed artifact.

    `key` is an Ed25519 private key; None signs with the per-user development key.
    `until` names the last stage (e.g. "codegen": native code, no artifact); `then` adds stages.
    `contracts=False` drops `requires`/`ensures` checks (`lwasc build --no-contracts`).
    """
    c = Compilation(SourceFile(path, text), stdlib_dir, opt_level=opt_level, key=key, contracts=contracts)
    return run(c, until, then=then)


def compile_file(path: str | Path, key: Any = None, opt_level: int = 2, until: str = NAMES[-1]) -> Compilation:
    p = Path(path)
    return compile_source(p.read_text(encoding="utf-8"), str(p), key, opt_level, until=until)


def source_digests(c: Compilation) -> dict[str, str]:
    """Module name -> SHA-512 of its text: what a build's output depends on besides the compiler."""
    import hashlib

    return {m.name: hashlib.sha512(c.sources[m.path].text.encode("utf-8")).hexdigest()
            for m in c.program.modules}


def format_timings(c: Compilation, lines: int | None = None) -> str:
    total = sum(t for _, t in c.timings)
    rows = [f"{name:<10} {t * 1000:9.2f} ms" for name, t in c.timings]
    rows.append(f"{'total':<10} {total * 1000:9.2f} ms")
    if lines is not None and total > 0:
        rows.append(f"{lines} lines, {lines / total:,.0f} lines/s")
    return "\n".join(rows)
