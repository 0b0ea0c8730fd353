"""What users run on top of the compiler: the `lwasc` command line (cli), the REPL (repl), the
test runner and generator (testing, generate), the reference evaluator (evaluate), the Python
API (api) and value printing (runvalues).

The only part of `lwas/` that may import the runtime (`lwas.runtime`).
"""
