"""editors/vscode: the VS Code extension installs from its lockfile, its TextMate grammar passes
its scope tests, it packages into a .vsix, and the grammar knows every keyword of the language.

The npm steps need `node` (20+) and `npm` with access to the npm registry; `npm ci` runs once per
lockfile (a stamp in node_modules records which), so later runs reuse node_modules. Install
scripts are off (editors/vscode/.npmrc): nothing is fetched beyond the registry.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import zipfile

import pytest

from helpers import ROOT

EXT = ROOT / "editors" / "vscode"
GRAMMAR = EXT / "syntaxes" / "lwas.tmLanguage.json"
LARK = ROOT / "grammar" / "lwas.lark"

# `NAME.2: /word(?![A-Za-z0-9_])/` or `METHOD.2: /(get|post|...)(?![A-Za-z0-9_])/`
_KEYWORD_LINE = re.compile(r"^([A-Z_]+)\.\d+:\s*/\(?([a-z]+(?:\|[a-z]+)*)\)?\(\?!\[A-Za-z0-9_\]\)/\s*$")


def lark_keywords() -> set[str]:
    words = set()
    for line in LARK.read_text(encoding="utf-8").splitlines():
        m = _KEYWORD_LINE.match(line.strip())
        if m:
            words.update(m.group(2).split("|"))
    return words


def grammar() -> dict:
    return json.loads(GRAMMAR.read_text(encoding="utf-8"))


def grammar_keyword_words() -> set[str]:
    """The words listed in the grammar's keyword patterns: `\\b(?:if|else|...)\\b`."""
    words = set()
    for pat in grammar()["repository"]["keywords"]["patterns"]:
        for group in re.findall(r"\(\?:([a-z|]+)\)", pat["match"]):
            words.update(group.split("|"))
    return words


def test_lark_keywords_parsed():
    kws = lark_keywords()
    assert len(kws) >= 40, kws
    assert {"module", "fn", "get", "delete", "extern", "signed", "true", "false"} <= kws


def test_grammar_covers_every_keyword_terminal():
    missing = lark_keywords() - grammar_keyword_words()
    assert not missing, f"keywords of grammar/lwas.lark missing from {GRAMMAR.name}: {sorted(missing)}"


def test_keyword_patterns_match_each_keyword():
    """Each keyword is scoped where a keyword may stand (before a name or a string) and only as
    a whole word. The patterns are plain enough for Python's `re` to run them as Oniguruma would."""
    pats = [re.compile(p["match"]) for p in grammar()["repository"]["keywords"]["patterns"]]
    for kw in sorted(lark_keywords()):
        for after in (" name", ' "/path"'):
            assert any((m := p.match(kw + after)) and m.group(0) == kw for p in pats), (kw, after)
        assert not any(p.match(kw + "x") for p in pats), kw


def test_manifest():
    pkg = json.loads((EXT / "package.json").read_text(encoding="utf-8"))
    assert pkg["name"] == "lwas" and pkg["main"] == "./extension.js"
    assert "onLanguage:lwas" in pkg["activationEvents"]
    (lang,) = pkg["contributes"]["languages"]
    assert lang["id"] == "lwas" and ".lwas" in lang["extensions"]
    assert (EXT / lang["configuration"]).is_file()
    (gram,) = pkg["contributes"]["grammars"]
    assert gram["scopeName"] == "source.lwas" == grammar()["scopeName"]
    assert (EXT / gram["path"]).resolve() == GRAMMAR
    setting = pkg["contributes"]["configuration"]["properties"]["lwas.server.path"]
    assert setting["default"] == "lwas-lsp"
    assert pkg["devDependencies"]["@vscode/vsce"] == "3.9.1"
    assert {"test", "package"} <= set(pkg["scripts"])
    lock = json.loads((EXT / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["devDependencies"] == pkg["devDependencies"]
    assert lock["packages"][""]["dependencies"] == pkg["dependencies"]
    json.loads((EXT / "language-configuration.json").read_text(encoding="utf-8"))
    assert "Apache License" in (EXT / "LICENSE").read_text(encoding="utf-8")
    ignored = (EXT / ".gitignore").read_text(encoding="utf-8").split()
    assert "node_modules/" in ignored and "*.vsix" in ignored
    assert len(list((EXT / "test").glob("*.test.lwas"))) >= 5


# ---------------------------------------------------------------- npm: install, test, package

def _npm_env() -> dict:
    env = dict(os.environ)
    env.update(npm_config_audit="false", npm_config_fund="false", npm_config_update_notifier="false",
               CI="1", NO_COLOR="1")
    return env


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=EXT, env=_npm_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def npm_installed():
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node (20+) and npm are needed to build and test the VS Code extension"
    major = int(subprocess.run([node, "--version"], capture_output=True, text=True)
                .stdout.strip().lstrip("v").split(".")[0])
    assert major >= 20, f"@vscode/vsce needs node >= 20 (found {major})"
    lock = hashlib.sha256((EXT / "package-lock.json").read_bytes()).hexdigest()[:16]
    stamp = EXT / "node_modules" / f".lwas-npm-ci-{lock}"
    if not stamp.exists():
        t0 = time.monotonic()
        _run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], timeout=900)
        stamp.touch()
        print(f"npm ci: {time.monotonic() - t0:.1f}s")
    return npm


def test_grammar_scope_tests(npm_installed):
    proc = _run([npm_installed, "test"], timeout=300)
    out = proc.stdout + proc.stderr
    names = sorted(p.name for p in (EXT / "test").glob("*.test.lwas"))
    for name in names:
        assert f"test/{name} run successfuly" in out, out  # (sic: the tool's spelling)
    assert "failed" not in out, out
    assert "extension.smoke.js passed" in out, out  # extension.js with a stub `vscode` module


def test_package_vsix(npm_installed, tmp_path):
    pkg = json.loads((EXT / "package.json").read_text(encoding="utf-8"))
    vsix = tmp_path / f"lwas-{pkg['version']}.vsix"
    _run([npm_installed, "run", "package", "--", "--out", str(vsix)], timeout=300)
    assert vsix.is_file()
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        assert z.testzip() is None
        manifest = json.loads(z.read("extension/package.json"))
    assert manifest["name"] == "lwas" and manifest["version"] == pkg["version"]
    for f in ("extension/package.json", "extension/extension.js",
              "extension/syntaxes/lwas.tmLanguage.json", "extension/language-configuration.json",
              "extension/node_modules/vscode-languageclient/node.js", "extension.vsixmanifest"):
        assert f in names, f
    assert not any(n.startswith("extension/test/") for n in names), "scope tests are not shipped"
    assert not any(n.startswith("extension/node_modules/@vscode/vsce/") for n in names), \
        "dev dependencies are not shipped"
