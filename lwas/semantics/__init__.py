"""Syntax tree to checked program: imports resolved (resolve), types (types, builtins), the type
checker (typecheck, one mixin per concern in check_*), truth and dependency consistency (truth), contracts and services expanded
and described (contracts, service), the axiom graph (graph).

Imports `lwas.syntax` below it; never the back end, the tools or the runtime.
"""
