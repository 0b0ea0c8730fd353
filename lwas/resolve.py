"""Name resolution at module level: find and load imported modules, build each module's
table of items, and report duplicates, missing modules and import cycles.

Names inside bodies (locals, fields, calls) are resolved by `check`, which consults the
tables built here. Axiom premises are resolved here because the truth checker needs them
as a graph before any body is looked at.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import syntax as ast
from .diagnostics import Sink
from .source import SourceFile


@dataclass(eq=False)
class ModuleInfo:
    """One module of the program and what its names mean at the top level."""

    name: str  # "std.money", "models", or the root file's stem
    path: str
    tree: ast.Module
    is_root: bool
    items: dict[str, ast.Item] = field(default_factory=dict)  # top-level name -> declaration
    imports: dict[str, "ModuleInfo"] = field(default_factory=dict)  # bound name -> module
    import_decls: dict[str, ast.Import] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # item and import names used (for W0101/W0102)

    def exported(self, name: str) -> ast.Item | None:
        """An item another module may use: public ones (every item of the root is public)."""
        item = self.items.get(name)
        if item is None or isinstance(item, (ast.Import, ast.ModuleDecl, ast.TestDecl)):
            return None
        if self.is_root or getattr(item, "public", False):
            return item
        return None


@dataclass(eq=False)
class Program:
    """The resolved program: modules in dependency order (imports before importers)."""

    modules: list[ModuleInfo]
    root: ModuleInfo
    sources: dict[str, SourceFile]
    # every axiom, in module order, with its premises resolved to indices into `axioms`
    axioms: list[ast.AxiomDecl] = field(default_factory=list)
    axiom_names: list[str] = field(default_factory=list)  # display names ("truth", "ethics.truth")
    axiom_modules: list[ModuleInfo] = field(default_factory=list)
    requires: list[list[int]] = field(default_factory=list)  # -1: not an axiom (reported by truth)
    contradicts: list[list[int]] = field(default_factory=list)
    rules: list[tuple[ModuleInfo, ast.RuleDecl]] = field(default_factory=list)
    rule_requires: list[list[int]] = field(default_factory=list)

    def module_of(self, path: str) -> ModuleInfo | None:
        for m in self.modules:
            if m.path == path:
                return m
        return None
