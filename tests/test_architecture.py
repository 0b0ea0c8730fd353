"""The house rules a newcomer relies on: imports go one way (import-linter's contracts in
pyproject.toml, checked on the package as it installs), and no product file outgrows a reader."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# top-level folders that install under the `lwas` namespace (pyproject's package-dir)
MAPPED = {"runtime": "runtime", "lsp": "lsp"}


def _installed_layout(tmp: Path) -> Path:
    """The package as a wheel installs it (runtime/ and lsp/ inside lwas/), as Python files only:
    import-linter walks a package's folder, and in the repository they stand beside it."""
    top = tmp / "lwas"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dashboard_static")
    shutil.copytree(ROOT / "lwas", top, ignore=ignore)
    for name, folder in MAPPED.items():
        shutil.copytree(ROOT / folder, top / name, ignore=ignore)
    return tmp


def test_import_contracts_hold(tmp_path):
    where = _installed_layout(tmp_path / "pkg")
    env = {**os.environ, "PYTHONPATH": str(where)}
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "0 broken" in out and "Contracts: 3 kept" in out, out


def test_a_contract_breach_is_caught(tmp_path):
    """The check can fail: a syntax module importing the runtime breaks the core's contract."""
    where = _installed_layout(tmp_path / "pkg")
    (where / "lwas" / "syntax" / "leak.py").write_text("import lwas.runtime.values\n")
    env = {**os.environ, "PYTHONPATH": str(where)}
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "lwas.syntax.leak -> lwas.runtime.values" in r.stdout


def test_no_product_file_is_over_1000_lines():
    long = {}
    for folder in ("lwas", "runtime", "lsp"):
        for f in (ROOT / folder).rglob("*.py"):
            n = f.read_text(encoding="utf-8").count("\n")
            if n > 1000:
                long[str(f.relative_to(ROOT))] = n
    assert long == {}


def test_every_benchmark_imports():
    """bench/ is not run by `make test`, but what it imports must exist: a module that moves
    takes its benchmarks with it. Each script is loaded, and every `from X import Y` in it
    (inside functions too) that names lwas or a test helper is resolved."""
    import ast

    script = """
import ast, importlib, importlib.util, sys
sys.argv = ['bench']
path = {path!r}
sys.path[:0] = [{bench!r}, {tests!r}]
spec = importlib.util.spec_from_file_location('b', path)
spec.loader.exec_module(importlib.util.module_from_spec(spec))
for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        top = node.module.split('.')[0]
        if top == 'lwas' or importlib.util.find_spec(top) and (importlib.util.find_spec(top).origin or '').startswith({tests!r}):
            mod = importlib.import_module(node.module)
            for a in node.names:
                if not hasattr(mod, a.name):
                    importlib.import_module(node.module + '.' + a.name)  # a submodule
"""
    for path in sorted((ROOT / "bench").glob("bench_*.py")):
        code = script.format(path=str(path), bench=str(ROOT / "bench"), tests=str(ROOT / "tests"))
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "bench", capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, f"{path.name}: {r.stderr[-2000:]}"
