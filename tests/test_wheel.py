"""The wheel is what users install: it must carry the grammar and stdlib and give a working
`lwasc` without the source tree anywhere on the path."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT


# what a copy of the tree leaves out when git cannot list the project's files
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
              "test-artifacts", "node_modules", ".lwas-cache", "var", "out")


def copy_project(dst: Path) -> Path:
    """The project's files (tracked, and new ones git does not ignore) copied to `dst`: a build
    there leaves the source tree as it was (no build/, no *.egg-info)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                check=True, capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: copy it all but the clutter
        shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(*NOT_SOURCE), dirs_exist_ok=True)
        return dst
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():  # not one deleted in the working tree
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    return dst


def build_outputs() -> set[str]:
    return {p.name for p in ROOT.iterdir() if p.name == "build" or p.name.endswith(".egg-info")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    before = build_outputs()
    src = copy_project(tmp_path_factory.mktemp("src"))
    # --no-isolation: build with the setuptools already in this venv (no network needed)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
                   check=True, capture_output=True, text=True)
    assert build_outputs() == before, "the wheel build wrote build/ or *.egg-info into the source tree"
    (whl,) = out.glob("lwas-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "lwas/grammar/lwas.lark" in names
    assert "lwas/runtime/__init__.py" in names and "lwas/lsp/__init__.py" in names
    page = {f"lwas/runtime/dashboard_static/{f}" for f in ("index.html", "dashboard.css", "dashboard.js",
                                                           "favicon.svg")}
    assert page <= names  # the dashboard's page (package data)
    assert not any(n.startswith(("runtime/", "lsp/", "grammar/", "stdlib/", "tests/")) for n in names)
    assert any(n.startswith("lwas-") and n.endswith("entry_points.txt") for n in names)


def test_installed_wheel_checks_an_example(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # dependencies come from this test environment's site-packages, the project itself only from the wheel
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    example = tmp_path / "ethics.lwas"
    example.write_text((ROOT / "examples" / "ethics.lwas").read_text())
    for cmd in ([str(venv / "bin" / "lwasc"), "check", str(example)],
                [str(py), "-m", "lwas", "check", str(example)]):
        r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    where = subprocess.run([str(py), "-c", "import lwas.grammar; print(lwas.grammar.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert str(venv) in where
    bad = tmp_path / "bad.lwas"
    bad.write_text("axiom a = 1.5\n")
    r = subprocess.run([str(venv / "bin" / "lwasc"), "check", str(bad)], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "error[E0201]" in r.stderr
