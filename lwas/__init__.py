"""LwaS, the Language with a Soul: axioms, rules and services compiled to signed native code.

The public API is imported lazily so that `lwasc --version` and tools that only need one
piece start fast.
"""
__version__ = "0.1.0"

__all__ = ["check", "compile", "load", "ArtifactError", "Axiom", "CompilationContext", "Diagnostic", "RuntimeError", "CompileError", "__version__"]

_LAZY = {
    "check": ("lwas.tools.api", "check"),
    "compile": ("lwas.tools.api", "compile"),
    "load": ("lwas.tools.api", "load"),
    "ArtifactError": ("lwas.backend.artifact", "ArtifactError"),
    "Axiom": ("lwas.tools.api", "Axiom"),
    "CompilationContext": ("lwas.tools.api", "CompilationContext"),
    "Diagnostic": ("lwas.syntax.diagnostics", "Diagnostic"),
    "RuntimeError": ("lwas.errors", "RuntimeError"),
    "CompileError": ("lwas.errors", "CompileError"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lwas' has no attribute {name!r}")
