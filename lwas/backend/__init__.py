"""Checked program to signed native artifact: the IR (ir, printed by irprint) and its lowering
(lower, with the in-place analysis in inplace and call budgets in budget), LLVM code generation
(codegen with codegen_fn, codegen_prim, memory and emit; maps in mapgen, snapshot codecs in
snapgen), the C header (cheader), and the signed, reproducible artifact (artifact, keys).

Imports `lwas.semantics` and `lwas.syntax`; never the tools or the runtime.
"""
