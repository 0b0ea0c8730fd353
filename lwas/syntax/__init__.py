"""Source text to syntax tree: spans and source files (source), diagnostics and their stable
codes (diagnostics, codes), the tree (tree), the parser (parse, with the depth limit in nesting and
the bidi warnings in bidi), and the tools that work on text alone (format, highlight).

The bottom of the compiler: it imports nothing else of `lwas` but `lwas.errors`.
"""
