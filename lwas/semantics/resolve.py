"""Name resolution at module level: find and load imported modules, build each module's
table of items, and report duplicates, missing modules and import cycles.

Names inside bodies (locals, fields, calls) are resolved by `check`, which consults the
tables built here. Axiom premises are resolved here because the truth checker needs them
as a graph before any body is looked at.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lwas.syntax import tree as ast
from lwas.syntax.diagnostics import Label, Sink
from lwas.syntax.source import SourceError, SourceFile, default_stdlib_dir, read_source


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
    missing_imports: set[str] = field(default_factory=set)  # bindings whose module failed to load
    services: list = field(default_factory=list)  # service.ServiceInfo, filled by the service stage

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


# ---------------------------------------------------------------- loading

STD_PREFIX = "std"


@dataclass
class Loader:
    """Finds, reads and parses modules; every file is parsed once."""

    parse: Callable[[SourceFile], tuple[ast.Module, list]]
    stdlib_dir: Path
    read: Callable[[Path], str] = lambda p: read_source(str(p))  # SourceError: E0005 if not UTF-8

    def locate(self, parts: tuple[str, ...], importer: str) -> Path:
        if parts[0] == STD_PREFIX and len(parts) > 1:
            return self.stdlib_dir.joinpath(*parts[1:]).with_suffix(".lwas")
        base = Path(importer).parent if not importer.startswith("<") else Path.cwd()
        return base.joinpath(*parts).with_suffix(".lwas")




def load(root: SourceFile, loader: Loader, sink: Sink) -> Program:
    """Parse the root file and, transitively, every module it imports (depth first).

    Reports syntax errors, missing modules (E0103) and import cycles (E0104, the whole cycle).
    """
    sources: dict[str, SourceFile] = {root.path: root}
    modules: list[ModuleInfo] = []  # post-order: imports before importers
    by_path: dict[str, ModuleInfo] = {}

    def parse(src: SourceFile, name: str | None, is_root: bool) -> ModuleInfo:
        tree, diags = loader.parse(src)
        for d in diags:
            sink.add(d)
        if name is None:  # the root: its `module` declaration, else the file's stem
            first = tree.items[0] if tree.items else None
            name = first.name.text if isinstance(first, ast.ModuleDecl) else _root_name(src)
        return ModuleInfo(name=name, path=src.path, tree=tree, is_root=is_root)

    root_info = parse(root, None, True)
    # iterative DFS so deep import chains cannot hit Python's recursion limit
    in_progress: list[ModuleInfo] = [root_info]
    by_path[root.path] = root_info
    stack: list[tuple[ModuleInfo, list[ast.Import]]] = [(root_info, _imports_of(root_info.tree))]
    while stack:
        info, pending = stack[-1]
        if not pending:
            stack.pop()
            in_progress.pop()
            modules.append(info)
            continue
        imp = pending.pop(0)
        binding = imp.binding
        if binding in info.import_decls:
            first = info.import_decls[binding]
            sink.error("E0102", f"the name `{binding}` is imported twice", imp.path.span,
                       label=f"`{binding}` imported again here",
                       labels=(Label(first.path.span, "first imported here"),),
                       help="remove one of the imports")
            continue
        info.import_decls[binding] = imp
        path = loader.locate(imp.path.parts, info.path)
        key = str(path)
        target = by_path.get(key)
        if target is not None:
            if target in in_progress:
                cycle = in_progress[in_progress.index(target):] + [target]
                chain = " -> ".join(m.name for m in cycle)
                sink.error("E0104", f"import cycle: {chain}", imp.span,
                           label=f"`{info.name}` imports `{target.name}` here",
                           notes=(f"the cycle: {chain}",),
                           help="move what both modules need into a third module that both import")
                info.missing_imports.add(binding)
                continue
            info.imports[binding] = target
            continue
        try:
            text = loader.read(path)
        except SourceError as e:
            if e.diagnostic is not None:  # not UTF-8: the file's own error, at the bad byte
                sources[key] = e.source
                sink.add(e.diagnostic)
                info.missing_imports.add(binding)
                continue
            text, failure = None, (OSError(str(e)) if path.exists() else FileNotFoundError())
        except (OSError, UnicodeDecodeError) as e:  # a caller's own `read`
            text, failure = None, e
        if text is None:
            e = failure
            where = "the standard library" if imp.path.parts[0] == STD_PREFIX else f"`{path.parent}`"
            reason = "no such file" if isinstance(e, FileNotFoundError) else str(e)
            sink.error("E0103", f"module `{imp.path.text}` not found", imp.path.span,
                       label=f"looked for `{path.name}` in {where}: {reason}",
                       help=_module_hint(imp.path.parts, loader))
            info.missing_imports.add(binding)
            continue
        src = SourceFile(key, text)
        sources[key] = src
        target = parse(src, imp.path.text, False)
        by_path[key] = target
        info.imports[binding] = target
        in_progress.append(target)
        stack.append((target, _imports_of(target.tree)))
    return Program(modules=modules, root=root_info, sources=sources)


def _root_name(src: SourceFile) -> str:
    return Path(src.path).stem if not src.path.startswith("<") else "main"


def _imports_of(tree: ast.Module) -> list[ast.Import]:
    return [i for i in tree.items if isinstance(i, ast.Import)]


def _module_hint(parts: tuple[str, ...], loader: Loader) -> str:
    if parts[0] == STD_PREFIX:
        names = sorted(p.stem for p in loader.stdlib_dir.glob("*.lwas"))
        return "the standard library has: " + ", ".join(f"std.{n}" for n in names) if names else \
            "the standard library is empty in this installation"
    return f"create `{'/'.join(parts)}.lwas` beside the importing file, or fix the name"


# ---------------------------------------------------------------- tables

_NAMED = (ast.AxiomDecl, ast.ConstDecl, ast.FnDecl, ast.RuleDecl, ast.RecordDecl, ast.EnumDecl)
_KIND = {ast.AxiomDecl: "axiom", ast.ConstDecl: "constant", ast.FnDecl: "function", ast.RuleDecl: "rule",
         ast.RecordDecl: "record", ast.EnumDecl: "enum"}


def resolve(program: Program, sink: Sink) -> Program:
    """Fill each module's item table and the axiom graph (premises as indices)."""
    for info in program.modules:
        _module_decl(info, sink)
        for item in info.tree.items:
            if not isinstance(item, _NAMED):
                continue
            first = info.items.get(item.name)
            if first is None and item.name in info.import_decls:
                first = info.import_decls[item.name]
            if first is not None:
                kind = _KIND[type(item)]
                what = "imported module" if isinstance(first, ast.Import) else _KIND[type(first)]
                first_span = first.path.span if isinstance(first, ast.Import) else first.name_span
                sink.error("E0102", f"the name `{item.name}` is defined more than once", item.name_span,
                           label=f"{kind} `{item.name}` redefined here",
                           labels=(Label(first_span, f"{what} `{item.name}` first defined here"),),
                           help=f"rename one of them; each name in a module means one thing")
                continue
            info.items[item.name] = item
    _axiom_graph(program)
    return program


def _module_decl(info: ModuleInfo, sink: Sink) -> None:
    decls = [i for i in info.tree.items if isinstance(i, ast.ModuleDecl)]
    for d in decls:
        if d is not info.tree.items[0] or d is not decls[0]:
            sink.error("E0106", "`module` must be the first item of the file", d.span,
                       label="module declaration here", help="move it to the top, once per file")


def _axiom_graph(program: Program) -> None:
    index: dict[tuple[int, str], int] = {}
    for info in program.modules:
        for item in info.tree.items:
            if isinstance(item, ast.AxiomDecl) and info.items.get(item.name) is item:
                index[(id(info), item.name)] = len(program.axioms)
                program.axioms.append(item)
                program.axiom_names.append(item.name if info.is_root else f"{info.name}.{item.name}")
                program.axiom_modules.append(info)

    def lookup(info: ModuleInfo, q: ast.QualName) -> int:
        if len(q.parts) == 1:
            item = info.items.get(q.parts[0])
            if isinstance(item, ast.AxiomDecl):
                info.used.add(q.parts[0])
                return index[(id(info), q.parts[0])]
            return -1
        target = info.imports.get(q.parts[0])
        if target is None or len(q.parts) != 2:
            return -1
        info.used.add(q.parts[0])
        item = target.exported(q.parts[1])
        if isinstance(item, ast.AxiomDecl):
            return index[(id(target), q.parts[1])]
        return -1

    for decl, info in zip(program.axioms, program.axiom_modules):
        program.requires.append([lookup(info, q) for q in decl.requires])
        program.contradicts.append([lookup(info, q) for q in decl.contradicts])
    for info in program.modules:
        for item in info.tree.items:
            if isinstance(item, ast.RuleDecl) and info.items.get(item.name) is item:
                program.rules.append((info, item))
                program.rule_requires.append([lookup(info, q) for q in item.requires])
