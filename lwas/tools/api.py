"""The Python API: `lwas.check(source)` and the design document's CompilationContext.

    ctx = CompilationContext()
    ctx.add_axiom(Axiom(name="truth", truth_value=1.0, dependencies=[]))
    ctx.check()  # -> list[Diagnostic]

A context is compiled through the same pipeline as a source file: it renders its axioms as
LwaS source (`ctx.source()`), so diagnostics point at real lines people can read.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lwas.syntax.diagnostics import Diagnostic
from lwas.driver import check_source

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
Ident = Annotated[str, Field(min_length=1, pattern=_IDENT)]


def check(source: str, filename: str = "<string>") -> list[Diagnostic]:
    """Parse and check a program; every problem comes back as a Diagnostic, never an exception."""
    return check_source(source, filename).diagnostics


def compile(source: str, filename: str = "<string>", key=None, opt_level: int = 2) -> bytes:  # noqa: A001
    """Compile a program to a signed artifact (docs/artifact.md).

    `key`: an Ed25519 private key, its PKCS#8 PEM, or a PEM file's path; None signs with the
    per-user development key (created on first use under $XDG_CONFIG_HOME/lwas).
    Raises lwas.CompileError carrying the diagnostics when the program does not compile.
    """
    from lwas.syntax.diagnostics import render_all
    from lwas.driver import compile_source
    from lwas.errors import CompileError
    from lwas.backend.keys import load_private

    c = compile_source(source, filename, None if key is None else load_private(key), opt_level)
    if c.artifact is None:
        raise CompileError(c.diagnostics, render_all(c.diagnostics, c.sources))
    return c.artifact


def load(artifact: bytes, trusted):
    """The program in a signed artifact, after its signature verified against `trusted` (public
    keys: PEM text or bytes, raw 32 bytes, key objects). Raises lwas.ArtifactError otherwise."""
    from lwas.runtime.loader import load as _load

    if isinstance(trusted, (str, bytes)):
        trusted = [trusted]
    return _load(artifact, trusted)


class Axiom(BaseModel):
    """A named truth: a value in [0, 1] (or an interval, or None to hold the weakest premise)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Ident
    truth_value: float | tuple[float, float] | None = None
    dependencies: list[Ident] = []
    contradicts: list[Ident] = []

    @field_validator("truth_value")
    @classmethod
    def _in_unit_interval(cls, v):
        values = v if isinstance(v, tuple) else (v,) if v is not None else ()
        for x in values:
            if not (0.0 <= x <= 1.0):  # also rejects NaN
                raise ValueError(f"a truth value must be a number in [0, 1], got {x}")
        if isinstance(v, tuple) and v[0] > v[1]:
            raise ValueError(f"an interval needs lo <= hi, got {v[0]}..{v[1]}")
        return v

    def source(self) -> str:
        line = f"axiom {self.name}"
        if isinstance(self.truth_value, tuple):
            line += f" = {self.truth_value[0]!r}..{self.truth_value[1]!r}"
        elif self.truth_value is not None:
            line += f" = {self.truth_value!r}"
        if self.dependencies:
            line += " requires " + ", ".join(self.dependencies)
        if self.contradicts:
            line += " contradicts " + ", ".join(self.contradicts)
        return line


class CompilationContext(BaseModel):
    """Collects axioms and checks them as one program."""

    model_config = ConfigDict(extra="forbid")

    module: Ident = "context"
    axioms: list[Axiom] = []

    def add_axiom(self, axiom: Axiom) -> "CompilationContext":
        self.axioms.append(axiom)
        return self

    def source(self) -> str:
        return "".join(a.source() + "\n" for a in self.axioms)

    def check(self) -> list[Diagnostic]:
        return check(self.source(), f"<{self.module}>")

    def compile(self, key=None) -> bytes:
        """The context as a signed artifact (see `lwas.compile`)."""
        return compile(self.source(), f"<{self.module}>", key)
