"""LwaS, the Language with a Soul: axioms, rules and services compiled to signed native code.

The public API is imported lazily so that `lwasc --version` and tools that only need one
piece start fast.
"""
__version__ = "0.1.0"

__all__ = ["check", "compile", "load", "ArtifactError", "Axiom", "CompilationContext", "Diagnostic", "RuntimeError", "CompileError", "__version__"]

_LAZY = {
    "check": ("lwas.api", "check"),
    "compile": ("lwas.api", "compile"),
    "load": ("lwas.api", "load"),
    "ArtifactError": ("lwas.artifact", "ArtifactError"),
    "Axiom": ("lwas.api", "Axiom"),
    "CompilationContext": ("lwas.api", "CompilationContext"),
    "Diagnostic": ("lwas.diagnostics", "Diagnostic"),
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
